package dev.jvllm.benchmarks;

import dev.jvllm.ImageInput;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.cuda.KernelTimes;
import dev.jvllm.engine.EngineMetrics;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static dev.jvllm.benchmarks.JsonLines.emit;

/**
 * Image requests on a vision-language checkpoint (made by tools/gpu/make_llava_checkpoint.py:
 * LLaVA-1.5-7B's shape, or make_phi3v_checkpoint.py: Phi-3-Vision's; random weights): one request alone (time to the first token, which holds
 * the image's preprocessing, encoding and the prompt's prefill; then the whole answer), then many
 * requests with an image each, batched. Images are random 640 × 480 pixels, a different one a
 * request, so no feature or prefix is reused; prompts are token ids holding the image placeholder
 * once, answers ignore EOS.
 *
 * <pre>
 * java ... dev.jvllm.benchmarks.VisionBenchmark --model DIR [--requests 64] [--output 128] [--device cuda] [--max-model-len 2048] [--text-only]
 * </pre>
 * {@code --text-only}: the same prompt lengths with the placeholders' positions given as text tokens
 * and no image, to tell the images' cost from the language model's.
 * <pre>
 * </pre>
 */
public final class VisionBenchmark {

    private VisionBenchmark() {
    }

    public static void main(String[] args) {
        Path model = null;
        int requests = 64, output = 128, maxModelLen = 2048;
        String device = "auto";
        boolean textOnly = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model" -> model = Path.of(args[++i]);
                case "--requests" -> requests = Integer.parseInt(args[++i]);
                case "--output" -> output = Integer.parseInt(args[++i]);
                case "--device" -> device = args[++i];
                case "--max-model-len" -> maxModelLen = Integer.parseInt(args[++i]);
                case "--text-only" -> textOnly = true;
                default -> throw new IllegalArgumentException("unknown option " + args[i]
                        + " (--model DIR, --requests N, --output N, --device NAME, --max-model-len N, --text-only)");
            }
        }
        if (model == null) throw new IllegalArgumentException("--model DIR is required");
        long start = System.nanoTime();
        // Runs on the CPU too (--device cpu) on a tiny LLaVA, e.g. model-zoo's test resources
        // vision-goldens/llava-default, to check the benchmark itself.
        try (LLM llm = LLM.builder().model(model.toString()).device(device).maxModelLen(maxModelLen).build()) {
            emit("load", "seconds", seconds(start), "images", !textOnly);
            int placeholder = llm.modelConfig().intOr(32000, "image_token_index", "image_token_id");
            int vocab = llm.modelConfig().section("text_config").intOr(llm.modelConfig().intOr(32000, "vocab_size"), "vocab_size");
            SplittableRandom random = new SplittableRandom(7);
            // Question tokens below the placeholder and the model's added tokens.
            int[] question = random.ints(24, 3, Math.min(placeholder, vocab) - 1).toArray();
            int[] ids = new int[question.length + 3];
            ids[0] = 1;
            ids[1] = placeholder;
            ids[2] = 13;
            System.arraycopy(question, 0, ids, 3, question.length);
            if (textOnly) {
                // The image's positions as text tokens: as many as the model gives the benchmark's image.
                int positions = llm.engine().promptLength(ids, List.of(image(random))) - ids.length + 1;
                int[] text = new int[ids.length - 1 + positions];
                text[0] = 1;
                for (int k = 1; k <= positions; k++) text[k] = 3 + random.nextInt(Math.min(placeholder, vocab) - 4);
                System.arraycopy(ids, 2, text, positions + 1, ids.length - 2);
                ids = text;
            }
            boolean withImages = !textOnly;
            java.util.function.Function<int[], Prompt> prompt = tokens -> withImages
                    ? Prompt.tokens(tokens, List.of(image(random))) : Prompt.tokens(tokens);
            SamplingParams first = SamplingParams.builder().temperature(0).maxTokens(1).ignoreEos(true).build();
            SamplingParams whole = SamplingParams.builder().temperature(0).maxTokens(output).ignoreEos(true).build();
            for (int w = 0; w < 3; w++) {
                llm.generatePrompts(List.of(prompt.apply(ids)), whole);
            }
            KernelTimes.reportAndReset("warm-up");  // the phases below report their own
            Prompt firstPrompt = prompt.apply(ids);  // images are made before the clock starts
            EngineMetrics before = llm.metrics();
            long t = System.nanoTime();
            RequestOutput one = llm.generatePrompts(List.of(firstPrompt), first).getFirst();
            emit("image_request_first_token", "seconds", seconds(t), "prompt_tokens", one.promptTokenIds().size());
            before = GpuBenchmark.phaseDone("first token", llm, before);
            Prompt alonePrompt = prompt.apply(ids);
            t = System.nanoTime();
            llm.generatePrompts(List.of(alonePrompt), whole);
            double alone = seconds(t);
            emit("image_request_alone", "seconds", alone, "output_tokens", output,
                    "tok_s", Math.round(output / alone * 10) / 10.0);
            before = GpuBenchmark.phaseDone("one request", llm, before);
            List<Prompt> batch = new ArrayList<>();
            for (int r = 0; r < requests; r++) batch.add(prompt.apply(ids));
            t = System.nanoTime();
            List<RequestOutput> outputs = llm.generatePrompts(batch, whole);
            double elapsed = seconds(t);
            GpuBenchmark.phaseDone(requests + " requests batched", llm, before);
            long generated = outputs.stream().mapToLong(o -> o.outputs().getFirst().tokenIds().size()).sum();
            emit("image_requests_batched", "requests", requests, "seconds", elapsed,
                    "requests_s", Math.round(requests / elapsed * 100) / 100.0,
                    "output_tok_s", Math.round(generated / elapsed), "prompt_tokens_each", outputs.getFirst().promptTokenIds().size());
        }
    }

    private static ImageInput image(SplittableRandom random) {
        byte[] rgb = new byte[640 * 480 * 3];
        for (int i = 0; i < rgb.length; i++) rgb[i] = (byte) random.nextInt(256);
        return ImageInput.rgb(640, 480, rgb);
    }

    private static double seconds(long start) {
        return Math.round((System.nanoTime() - start) / 1e6) / 1e3;
    }

}
