package dev.jvllm.benchmarks;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The dimensions of a Llama checkpoint, for random-weight benchmark models.
 *
 * @param hidden         hidden_size
 * @param intermediate   intermediate_size of the SwiGLU MLP
 * @param layers         num_hidden_layers
 * @param heads          num_attention_heads
 * @param kvHeads        num_key_value_heads
 * @param vocab          vocab_size
 * @param tiedEmbeddings whether the LM head reuses the token embeddings
 * @param llama3Rope     llama3 rotary scaling (factor 32, as Llama 3.2) instead of plain rotary
 * @param experts        0 for a dense MLP; else a Mixtral mixture of this many experts of
 *                       {@code intermediate} each (written as MixtralForCausalLM)
 * @param expertsPerToken experts each token is routed to (Mixtral: 2)
 */
public record LlamaShape(int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab,
                         boolean tiedEmbeddings, boolean llama3Rope, int experts, int expertsPerToken, int int4Group) {

    /** Unquantized (BF16) projections. */
    public LlamaShape(int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab,
                      boolean tiedEmbeddings, boolean llama3Rope, int experts, int expertsPerToken) {
        this(hidden, intermediate, layers, heads, kvHeads, vocab, tiedEmbeddings, llama3Rope, experts, expertsPerToken, 0);
    }

    public LlamaShape(int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab,
                      boolean tiedEmbeddings, boolean llama3Rope) {
        this(hidden, intermediate, layers, heads, kvHeads, vocab, tiedEmbeddings, llama3Rope, 0, 0);
    }

    /** mistralai/Mixtral-8x7B-v0.1. */
    public static final LlamaShape MIXTRAL_8X7B = new LlamaShape(4096, 14336, 32, 32, 8, 32000, false, false, 8, 2);

    /** meta-llama/Llama-3.2-1B. */
    public static final LlamaShape LLAMA_3_2_1B = new LlamaShape(2048, 8192, 16, 32, 8, 128256, true, true);

    public LlamaShape {
        if (hidden <= 0 || intermediate <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0
                || hidden % heads != 0 || heads % kvHeads != 0 || experts < 0
                || (experts > 0 && (expertsPerToken <= 0 || expertsPerToken > experts))
                || int4Group < 0 || (int4Group > 0 && (hidden % int4Group != 0 || intermediate % int4Group != 0 || int4Group % 8 != 0))) {
            // The fields are not yet assigned in a compact constructor: name the arguments.
            throw new IllegalArgumentException("not a Llama shape: hidden=" + hidden + ", intermediate=" + intermediate
                    + ", layers=" + layers + ", heads=" + heads + ", kv-heads=" + kvHeads + ", vocab=" + vocab
                    + ", experts=" + experts + ", experts-per-token=" + expertsPerToken + ", int4-group=" + int4Group
                    + " (hidden must divide by heads, heads by kv-heads; hidden and intermediate by int4-group, a multiple of 8)");
        }
    }

    public int headDim() {
        return hidden / heads;
    }

    /** Parameters of the checkpoint (the LM head counted only when untied). */
    public long parameters() {
        long attention = (long) hidden * headDim() * (heads + 2L * kvHeads) + (long) heads * headDim() * hidden;
        long mlp = 3L * hidden * intermediate * Math.max(1, experts) + (long) experts * hidden;
        long perLayer = attention + mlp + 2L * hidden;
        return (long) vocab * hidden * (tiedEmbeddings ? 1 : 2) + layers * perLayer + hidden;
    }

    /**
     * This shape with fields overridden by {@code spec}, comma-separated {@code key=value} pairs with
     * keys hidden, intermediate, layers, heads, kv-heads, vocab, tied (true/false), llama3-rope (true/false),
     * experts, experts-per-token, int4-group (the projections as AutoGPTQ's 4-bit weights in groups of
     * that many inputs; 0, the default, for BF16).
     */
    public LlamaShape with(String spec) {
        Map<String, String> v = new LinkedHashMap<>();
        for (String pair : spec.split(",")) {
            if (pair.isBlank()) continue;
            String[] kv = pair.split("=", 2);
            if (kv.length != 2) throw new IllegalArgumentException("shape field '" + pair + "' is not key=value");
            v.put(kv[0].trim().toLowerCase(Locale.ROOT), kv[1].trim());
        }
        LlamaShape s = new LlamaShape(intOr(v, "hidden", hidden), intOr(v, "intermediate", intermediate),
                intOr(v, "layers", layers), intOr(v, "heads", heads), intOr(v, "kv-heads", kvHeads),
                intOr(v, "vocab", vocab), boolOr(v, "tied", tiedEmbeddings), boolOr(v, "llama3-rope", llama3Rope),
                intOr(v, "experts", experts), intOr(v, "experts-per-token", expertsPerToken), intOr(v, "int4-group", int4Group));
        if (!v.isEmpty()) throw new IllegalArgumentException("unknown shape fields " + v.keySet());
        return s;
    }

    /** A directory name that tells shapes apart. */
    public String directoryName() {
        return "llama-h" + hidden + "-i" + intermediate + "-l" + layers + "-a" + heads + "-kv" + kvHeads + "-v" + vocab
                + (tiedEmbeddings ? "-tied" : "") + (llama3Rope ? "-rope3" : "")
                + (experts > 0 ? "-e" + experts + "k" + expertsPerToken : "") + (int4Group > 0 ? "-gptq4g" + int4Group : "");
    }

    private static int intOr(Map<String, String> values, String key, int fallback) {
        String v = values.remove(key);
        return v == null ? fallback : Integer.parseInt(v);
    }

    private static boolean boolOr(Map<String, String> values, String key, boolean fallback) {
        String v = values.remove(key);
        return v == null ? fallback : Boolean.parseBoolean(v);
    }
}
