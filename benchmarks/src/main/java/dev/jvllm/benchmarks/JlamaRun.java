package dev.jvllm.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.model.ModelSupport;
import com.github.tjake.jlama.model.functions.Generator;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.safetensors.prompt.PromptContext;
import com.github.tjake.jlama.util.PhysicalCoreExecutor;

import java.io.File;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;

/**
 * Jlama (com.github.tjake:jlama-core) on a checkpoint directory, for {@link CpuBenchmark}: run in a
 * child JVM because Jlama fixes its thread count once per process. Loads the model (BF16 weights,
 * F32 working memory), warms the JIT with one untimed generation, then generates {@code outputLen}
 * tokens greedily after a prompt of {@code inputLen} tokens and prints one line
 * {@code JLAMA_RESULT {json}} with Jlama's own prompt and generation timings.
 * <p>Usage: {@code JlamaRun DIR THREADS INPUT_LEN OUTPUT_LEN}
 */
public final class JlamaRun {

    private JlamaRun() {
    }

    public static void main(String[] args) throws Exception {
        File dir = new File(args[0]);
        int threads = Integer.parseInt(args[1]);
        int inputLen = Integer.parseInt(args[2]);
        int outputLen = Integer.parseInt(args[3]);
        PhysicalCoreExecutor.overrideThreadCount(threads);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("threads", threads);
        long start = System.nanoTime();
        AbstractModel model = ModelSupport.loadModel(dir, DType.F32, DType.F32);
        // A short generation (Jlama's limit counts the prompt): time from the load call to the first forward, as for jvllm.
        model.generate(UUID.randomUUID(), PromptContext.of("Hello"), 0f, 8, (s, f) -> { });
        out.put("load_to_first_forward_first_in_process_s", CpuBenchmark.round((System.nanoTime() - start) / 1e9));
        String prompt = promptOf(model, inputLen);
        // Jlama's token limit counts the prompt (generation runs to position promptTokens + outputLen).
        int promptTokens = model.getTokenizer().encode(prompt).length;
        // Warm-up: the same prompt length and a short output, so the JIT compiles prefill and decode.
        model.generate(UUID.randomUUID(), PromptContext.of(prompt), 0f, promptTokens + 16, (s, f) -> { });
        Generator.Response r = model.generate(UUID.randomUUID(), PromptContext.of(prompt), 0f, promptTokens + outputLen, (s, f) -> { });
        out.put("prompt_tokens", r.promptTokens);
        out.put("generated_tokens", r.generatedTokens);
        out.put("finish_reason", String.valueOf(r.finishReason));
        out.put("prompt_time_ms", r.promptTimeMs);
        out.put("generate_time_ms", r.generateTimeMs);
        out.put("prefill_tok_s", CpuBenchmark.round(r.promptTokens / (r.promptTimeMs / 1e3)));
        out.put("decode_tok_s", CpuBenchmark.round(r.generatedTokens / (r.generateTimeMs / 1e3)));
        out.put("rss_bytes_after", CpuBenchmark.rssBytes());
        System.out.println("JLAMA_RESULT " + new ObjectMapper().writeValueAsString(out));
        System.out.flush();
        System.exit(0);
    }

    /** A prompt of about {@code tokens} tokens by Jlama's own tokenizer (" the" is one Llama 3 token). */
    private static String promptOf(AbstractModel model, int tokens) {
        StringBuilder sb = new StringBuilder("The");
        while (model.getTokenizer().encode(sb.toString()).length < tokens) sb.append(" the");
        return sb.toString();
    }
}
