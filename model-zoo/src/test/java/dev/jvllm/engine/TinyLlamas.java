package dev.jvllm.engine;

import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.Backend;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

/**
 * The golden tiny Llama checkpoints (vocabulary 512, random weights) as engines for tests: builders
 * with KV pools of a given number of blocks, random prompts, greedy parameters, and the reference
 * outputs of each prompt generated alone.
 */
public final class TinyLlamas {

    static final List<String> CASES = List.of("llama-plain", "llama-gqa", "llama-tied", "llama3-rope");
    static final int VOCAB = 512;
    static final int BLOCK_SIZE = 16;

    private TinyLlamas() {
    }

    static Path checkpoint(String name) {
        try {
            return Path.of(TinyLlamas.class.getResource("/goldens/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A builder of {@code name} with blocks of {@value #BLOCK_SIZE} tokens and the given maximum length. */
    static LLM.Builder builder(String name, int maxModelLen) {
        return LLM.builder().model(checkpoint(name).toString()).blockSize(BLOCK_SIZE).maxModelLen(maxModelLen).threads(1);
    }

    /**
     * Bytes of KV cache that hold exactly {@code blocks} blocks of {@code name}: keys and values per
     * token, or one latent row of {@code kv_lora_rank + qk_rope_head_dim} for latent attention.
     */
    static long kvBytesForBlocks(String name, int blocks) {
        ModelConfig config = ModelConfig.load(checkpoint(name));
        long perLayer = config.intOr(0, "kv_lora_rank") > 0
                ? config.intOr(0, "kv_lora_rank") + config.intOr(0, "qk_rope_head_dim")
                : 2L * config.numKvHeads() * config.headDim();
        return perLayer * config.numLayers() * Float.BYTES * BLOCK_SIZE * blocks;
    }

    /** Prompts of the given lengths, of token ids drawn from a generator seeded with {@code seed}. */
    static List<int[]> randomPrompts(long seed, int... lengths) {
        Random random = new Random(seed);
        List<int[]> prompts = new ArrayList<>();
        for (int length : lengths) prompts.add(random.ints(length, 3, VOCAB).toArray());
        return prompts;
    }

    static SamplingParams greedy(int maxTokens) {
        return SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(maxTokens).build();
    }

    static List<Prompt> asPrompts(List<int[]> tokenIds) {
        return tokenIds.stream().map(Prompt::tokens).toList();
    }

    /** The first sequence's output tokens of each output. */
    static List<List<Integer>> tokens(List<RequestOutput> outputs) {
        return outputs.stream().map(o -> o.outputs().getFirst().tokenIds()).toList();
    }

    /** Each prompt generated on its own, by an engine with an ample pool and no prefix cache. */
    static List<List<Integer>> aloneOutputs(String name, int maxModelLen, List<int[]> prompts, SamplingParams params) {
        try (LLM llm = builder(name, maxModelLen).enablePrefixCaching(false).build()) {
            List<List<Integer>> outputs = new ArrayList<>();
            for (int[] prompt : prompts) outputs.add(llm.generate(prompt, params).outputs().getFirst().tokenIds());
            return outputs;
        }
    }

    /**
     * {@code base}, with the calls named in {@code overrides} answered by them instead (method name
     * to the answer for the call's arguments): a CPU backend posing as a device, for engine tests.
     */
    public static Backend withOverrides(Backend base, Map<String, Function<Object[], Object>> overrides) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class},
                (proxy, method, args) -> {
                    Function<Object[], Object> override = overrides.get(method.getName());
                    if (override != null) return override.apply(args);
                    try {
                        return method.invoke(base, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }
}
