package dev.jvllm.benchmarks;

import dev.jvllm.LLM;

/**
 * Untimed requests before a benchmark, repeated for {@code --warmup-seconds}: the JVM interprets a
 * kernel before it compiles it, and a small model's short loops take many calls to get compiled,
 * so an unwarmed run measures the JIT rather than the engine.
 */
final class Warmup {

    private Warmup() {
    }

    static void run(LLM llm, BenchmarkOptions options) {
        if (options.warmupSeconds <= 0) return;
        int vocab = llm.modelConfig().vocabSize();
        int batch = Math.min(options.maxNumSeqs, 4);
        int promptLength = Math.min(options.inputLen, 32);
        long deadline = System.nanoTime() + (long) (options.warmupSeconds * 1e9);
        for (int round = 0; round == 0 || System.nanoTime() < deadline; round++) {
            TimedRun.run(llm.engine(), BenchmarkOptions.randomPrompts(batch, promptLength, vocab, -1 - round),
                    options.samplingParams(Math.min(options.outputLen, 8)), "warmup" + round + "-");
        }
    }
}
