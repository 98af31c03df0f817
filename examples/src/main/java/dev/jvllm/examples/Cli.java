package dev.jvllm.examples;

import dev.jvllm.ChatMessage;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.engine.AsyncLLMEngine;
import dev.jvllm.engine.RequestStream;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;

/** The command lines behind {@code ./jvllm generate} and {@code ./jvllm chat}. */
public final class Cli {

    private static final String USAGE = """
            usage: ./jvllm generate [options] [prompt ...]
                   ./jvllm chat [options]        a conversation: one message a line on stdin, answers streamed
              --model M          local directory or Hugging Face id (default: models/jvllm-demo)
              --max-tokens N     tokens to generate per prompt or answer (default 64)
              --temperature T    0 for greedy (default 0.8)
              --top-p P          nucleus sampling (default 0.95)
              --top-k K          (default off)
              --seed S           reproducible sampling
              --n N              sequences per prompt (default 1; generate only)
              --system S         a system message opening the conversation (chat only)
              --threads N        CPU threads (default: all)
            """;

    private Cli() {
    }

    public static void main(String[] args) throws IOException {
        boolean chat = args.length > 0 && args[0].equals("chat");
        if (args.length > 0 && (args[0].equals("generate") || chat)) {
            args = Arrays.copyOfRange(args, 1, args.length);
        }
        String model = "models/jvllm-demo";
        String system = null;
        SamplingParams.Builder params = SamplingParams.builder().temperature(0.8).topP(0.95).maxTokens(64);
        LLM.Builder llm = LLM.builder();
        List<String> prompts = new ArrayList<>();
        try {
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--model" -> model = args[++i];
                    case "--max-tokens" -> params.maxTokens(Integer.parseInt(args[++i]));
                    case "--temperature" -> params.temperature(Double.parseDouble(args[++i]));
                    case "--top-p" -> params.topP(Double.parseDouble(args[++i]));
                    case "--top-k" -> params.topK(Integer.parseInt(args[++i]));
                    case "--seed" -> params.seed(Long.parseLong(args[++i]));
                    case "--n" -> params.n(Integer.parseInt(args[++i]));
                    case "--system" -> system = args[++i];
                    case "--threads" -> llm.threads(Integer.parseInt(args[++i]));
                    case "-h", "--help" -> {
                        System.out.print(USAGE);
                        return;
                    }
                    default -> {
                        if (args[i].startsWith("--")) throw new IllegalArgumentException("unknown option " + args[i]);
                        if (chat) throw new IllegalArgumentException("chat reads its messages from stdin, not from arguments");
                        prompts.add(args[i]);
                    }
                }
            }
        } catch (RuntimeException e) {
            System.err.println("jvllm: " + e.getMessage() + "\n" + USAGE);
            System.exit(2);
        }
        if (chat) {
            chat(llm.model(model), params.build(), system,
                    new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)), System.out);
            return;
        }
        if (prompts.isEmpty()) prompts = List.of("The European Parliament", "Mr President, I would like to");
        try (LLM engine = llm.model(model).build()) {
            for (RequestOutput out : engine.generate(prompts, params.build())) {
                for (var completion : out.outputs()) {
                    System.out.println("\u001b[1m" + out.prompt() + "\u001b[0m" + completion.text());
                    System.out.println();
                }
            }
        }
    }

    /**
     * A conversation: each line of {@code in} is a user message (an empty line or the end of input
     * ends it), answered through the model's chat template with the whole conversation so far, its
     * text written to {@code out} as it is generated. Returns the answers.
     */
    static List<String> chat(LLM.Builder model, SamplingParams params, String system, BufferedReader in, PrintStream out)
            throws IOException {
        List<String> answers = new ArrayList<>();
        LLM llm = model.build();
        try (AsyncLLMEngine engine = new AsyncLLMEngine(llm.engine(), llm)) {
            List<ChatMessage> conversation = new ArrayList<>();
            if (system != null) conversation.add(ChatMessage.system(system));
            out.print("> ");
            out.flush();
            for (String line; (line = in.readLine()) != null && !line.isBlank(); ) {
                conversation.add(ChatMessage.user(line));
                int[] prompt = llm.tokenizer().encode(llm.renderChat(conversation), false);
                RequestStream stream = engine.submit("chat-" + answers.size(), prompt, params);
                CompletableFuture<Void> printedAll = new CompletableFuture<>(); // deltas arrive on other threads
                stream.subscribe(new Flow.Subscriber<>() {
                    @Override
                    public void onSubscribe(Flow.Subscription subscription) {
                        subscription.request(Long.MAX_VALUE);
                    }

                    @Override
                    public void onNext(RequestOutput delta) {
                        out.print(delta.text());
                        out.flush();
                    }

                    @Override
                    public void onError(Throwable error) {
                        printedAll.completeExceptionally(error);
                    }

                    @Override
                    public void onComplete() {
                        printedAll.complete(null);
                    }
                });
                printedAll.join();
                String answer = stream.result().join().text();
                out.print("\n> ");
                out.flush();
                answers.add(answer);
                conversation.add(ChatMessage.assistant(answer));
            }
            out.println();
        }
        return answers;
    }
}
