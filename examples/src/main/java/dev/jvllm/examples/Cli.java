package dev.jvllm.examples;

import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;

import java.util.ArrayList;
import java.util.List;

/** The command line behind {@code ./jvllm generate}. */
public final class Cli {

    private static final String USAGE = """
            usage: ./jvllm generate [options] [prompt ...]
              --model M          local directory or Hugging Face id (default: models/jvllm-demo)
              --max-tokens N     tokens to generate per prompt (default 64)
              --temperature T    0 for greedy (default 0.8)
              --top-p P          nucleus sampling (default 0.95)
              --top-k K          (default off)
              --seed S           reproducible sampling
              --n N              sequences per prompt (default 1)
              --threads N        CPU threads (default: all)
            """;

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("generate")) {
            args = java.util.Arrays.copyOfRange(args, 1, args.length);
        }
        String model = "models/jvllm-demo";
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
                    case "--threads" -> llm.threads(Integer.parseInt(args[++i]));
                    case "-h", "--help" -> {
                        System.out.print(USAGE);
                        return;
                    }
                    default -> {
                        if (args[i].startsWith("--")) throw new IllegalArgumentException("unknown option " + args[i]);
                        prompts.add(args[i]);
                    }
                }
            }
        } catch (RuntimeException e) {
            System.err.println("jvllm: " + e.getMessage() + "\n" + USAGE);
            System.exit(2);
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
}
