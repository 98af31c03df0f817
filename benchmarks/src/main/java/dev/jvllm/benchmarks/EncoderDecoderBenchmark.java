package dev.jvllm.benchmarks;

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
 * Requests to an encoder-decoder checkpoint (tools/gpu/encoder_decoder_bench.py makes a BART-large-shaped
 * one with random weights): one request alone, then many batched, each an encoder prompt of random
 * token ids and a fixed number of new tokens (EOS ignored), after a warm-up of both. Each prompt
 * differs, so no encoder output or prefix is reused.
 *
 * <pre>
 * java ... dev.jvllm.benchmarks.EncoderDecoderBenchmark --model DIR [--requests 64] [--input 512] [--output 128] [--device cuda]
 *     [--enforce-eager] [--sample-host]
 * </pre>
 * {@code --sample-host} samples the engine thread's stack through each phase ({@link HostSampler}),
 * to see where the host's time a step goes.
 * Each phase also reports where the engine's thread spent it (an engine_time line), and with
 * -Djvllm.cuda.kernelTimes=true each kernel's device time on standard error.
 * Runs on the CPU too (--device cpu) on a tiny checkpoint, e.g. the plugin's test resources, to check the benchmark itself.
 */
public final class EncoderDecoderBenchmark {

    /** How often --sample-host takes the engine thread's stack. */
    private static final long SAMPLE_MICROS = 200;

    private EncoderDecoderBenchmark() {
    }

    public static void main(String[] args) {
        Path model = null;
        int requests = 64, input = 512, output = 128;
        String device = "auto";
        boolean enforceEager = false;
        boolean sampleHost = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model" -> model = Path.of(args[++i]);
                case "--requests" -> requests = Integer.parseInt(args[++i]);
                case "--input" -> input = Integer.parseInt(args[++i]);
                case "--output" -> output = Integer.parseInt(args[++i]);
                case "--device" -> device = args[++i];
                case "--enforce-eager" -> enforceEager = true;
                case "--sample-host" -> sampleHost = true;
                default -> throw new IllegalArgumentException("unknown option " + args[i]
                        + " (--model DIR, --requests N, --input N, --output N, --device NAME, --enforce-eager, --sample-host)");
            }
        }
        if (model == null) throw new IllegalArgumentException("--model DIR is required");
        long start = System.nanoTime();
        try (LLM llm = LLM.builder().model(model.toString()).device(device).enforceEager(enforceEager).build()) {
            emit("load", "seconds", seconds(start), "enforce_eager", enforceEager);
            int vocab = llm.modelConfig().vocabSize();
            SplittableRandom random = new SplittableRandom(7);
            int length = input;
            java.util.function.Supplier<Prompt> prompt = () -> Prompt.tokens(random.ints(length, 3, vocab - 1).toArray());
            SamplingParams whole = SamplingParams.builder().temperature(0).maxTokens(output).ignoreEos(true).build();
            for (int w = 0; w < 3; w++) llm.generatePrompts(List.of(prompt.get()), whole);
            // The batch once ahead as well, so that its decode shapes' CUDA graphs are captured before the
            // clock starts (as vLLM captures its graphs at start-up).
            llm.generatePrompts(java.util.stream.Stream.generate(prompt).limit(requests).toList(), whole);
            KernelTimes.reportAndReset("warm-up");  // the phases below report their own
            Prompt alonePrompt = prompt.get();
            EngineMetrics before = llm.metrics();
            HostSampler sampler = sampleHost ? new HostSampler("one request", Thread.currentThread(), SAMPLE_MICROS) : null;
            long t = System.nanoTime();
            llm.generatePrompts(List.of(alonePrompt), whole);
            double alone = seconds(t);
            if (sampler != null) sampler.close();
            emit("request_alone", "seconds", alone, "output_tokens", output, "tok_s", Math.round(output / alone * 10) / 10.0);
            before = GpuBenchmark.phaseDone("one request", llm, before);
            List<Prompt> batch = new ArrayList<>();
            for (int r = 0; r < requests; r++) batch.add(prompt.get());
            sampler = sampleHost ? new HostSampler(requests + " requests batched", Thread.currentThread(), SAMPLE_MICROS) : null;
            t = System.nanoTime();
            List<RequestOutput> outputs = llm.generatePrompts(batch, whole);
            double elapsed = seconds(t);
            if (sampler != null) sampler.close();
            GpuBenchmark.phaseDone(requests + " requests batched", llm, before);
            long generated = outputs.stream().mapToLong(o -> o.outputs().getFirst().tokenIds().size()).sum();
            emit("requests_batched", "requests", requests, "seconds", elapsed,
                    "requests_s", Math.round(requests / elapsed * 100) / 100.0,
                    "output_tok_s", Math.round(generated / elapsed), "input_tokens_each", input);
        }
    }

    private static double seconds(long start) {
        return Math.round((System.nanoTime() - start) / 1e6) / 1e3;
    }
}
