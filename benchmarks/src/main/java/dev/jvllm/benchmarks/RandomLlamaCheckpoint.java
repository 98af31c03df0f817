package dev.jvllm.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Writes a Llama checkpoint of random BF16 weights (config.json, generation_config.json,
 * model.safetensors) for benchmarks that need a real model's size but not its answers. Weights are
 * uniform with the standard deviation of Transformers' initializer (0.02); norms are 1. Written into
 * a temporary directory and moved into place, so an interrupted write never leaves a checkpoint
 * behind; an existing one is reused.
 *
 * <pre>
 * ./jvllm java dev.jvllm.benchmarks.RandomLlamaCheckpoint [--shape hidden=..,layers=..] [--cache DIR] [--sparse]
 * </pre>
 */
public final class RandomLlamaCheckpoint {

    /** Where checkpoints are cached unless told otherwise: never inside the repository. */
    public static final Path DEFAULT_CACHE = Path.of(System.getProperty("user.home"), ".cache", "jvllm", "bench");

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final float INIT_STD = 0.02f;

    /** What a tensor holds: random BF16 weights, BF16 ones (norms), or a 4-bit projection's parts as AutoGPTQ writes them. */
    private enum Fill {
        RANDOM, ONES, RANDOM_WORDS, ZERO_WORDS, SCALES;

        String dtype() {
            return switch (this) {
                case RANDOM, ONES -> "BF16";
                case RANDOM_WORDS, ZERO_WORDS -> "I32";
                case SCALES -> "F16";
            };
        }

        int elementBytes() {
            return this == RANDOM_WORDS || this == ZERO_WORDS ? 4 : 2;
        }
    }

    private record Tensor(String name, long rows, long cols, Fill fill) {
        Tensor(String name, long rows, long cols, boolean ones) {
            this(name, rows, cols, ones ? Fill.ONES : Fill.RANDOM);
        }

        long bytes() {
            return rows * cols * fill.elementBytes();
        }

        boolean ones() {
            return fill == Fill.ONES;
        }
    }

    private RandomLlamaCheckpoint() {
    }

    public static void main(String[] args) {
        LlamaShape shape = LlamaShape.LLAMA_3_2_1B;
        Path cache = DEFAULT_CACHE;
        boolean sparse = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--shape" -> shape = shape.with(args[++i]);
                case "--cache" -> cache = Path.of(args[++i]);
                case "--sparse" -> sparse = true;
                default -> throw new IllegalArgumentException("unknown option " + args[i]
                        + " (--shape SPEC, --cache DIR, --sparse)");
            }
        }
        System.out.println(ensure(shape, cache, sparse));
    }

    /** The checkpoint of {@code shape} under {@code cache}, written first if missing. */
    public static Path ensure(LlamaShape shape, Path cache) {
        return ensure(shape, cache, false);
    }

    /**
     * The checkpoint of {@code shape}, written first if missing; with {@code sparse}, only the
     * weights that steer the work are written (the embeddings, the norms and the experts' routers,
     * so that tokens spread over the experts as with real weights) and every other weight is left
     * a hole of the file, read as zeros: a checkpoint larger than the disk (Mixtral-8x7B's 94 GB
     * on a 64 GiB disk) for timing, where a product costs the same whatever its values.
     */
    public static Path ensure(LlamaShape shape, Path cache, boolean sparse) {
        Path dir = cache.resolve(shape.directoryName() + (sparse ? "-sparse" : ""));
        if (Files.isRegularFile(dir.resolve("model.safetensors")) && Files.isRegularFile(dir.resolve("config.json"))) {
            return dir;
        }
        try {
            Files.createDirectories(cache);
            Path partial = Files.createTempDirectory(cache, shape.directoryName() + ".incomplete-");
            long start = System.nanoTime();
            Files.writeString(partial.resolve("config.json"), config(shape).toPrettyString());
            Files.writeString(partial.resolve("generation_config.json"), "{\"bos_token_id\": 1, \"eos_token_id\": 2}\n");
            writeWeights(shape, partial.resolve("model.safetensors"), sparse);
            Files.move(partial, dir, StandardCopyOption.ATOMIC_MOVE);
            System.err.printf("wrote %,d random parameters to %s in %.1f s%n", shape.parameters(), dir,
                    (System.nanoTime() - start) / 1e9);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write a random checkpoint into " + cache, e);
        }
    }

    private static ObjectNode config(LlamaShape s) {
        ObjectNode c = JSON.createObjectNode();
        boolean moe = s.experts() > 0;
        c.putArray("architectures").add(moe ? "MixtralForCausalLM" : "LlamaForCausalLM");
        c.put("model_type", moe ? "mixtral" : "llama");
        if (moe) {
            c.put("num_local_experts", s.experts());
            c.put("num_experts_per_tok", s.expertsPerToken());
        }
        c.put("hidden_size", s.hidden());
        c.put("intermediate_size", s.intermediate());
        c.put("num_hidden_layers", s.layers());
        c.put("num_attention_heads", s.heads());
        c.put("num_key_value_heads", s.kvHeads());
        c.put("head_dim", s.headDim());
        c.put("vocab_size", s.vocab());
        c.put("max_position_embeddings", 131072);
        c.put("rms_norm_eps", 1e-5);
        c.put("hidden_act", "silu");
        c.put("tie_word_embeddings", s.tiedEmbeddings());
        c.put("bos_token_id", 1);
        c.put("eos_token_id", 2);
        c.put("torch_dtype", "bfloat16");
        if (s.int4Group() > 0) {
            ObjectNode quantization = c.putObject("quantization_config");
            quantization.put("quant_method", "gptq").put("bits", 4).put("group_size", s.int4Group())
                    .put("desc_act", false).put("sym", true).put("checkpoint_format", "gptq");
        }
        ObjectNode rope = c.putObject("rope_parameters");
        rope.put("rope_theta", s.experts() > 0 ? 1_000_000.0 : 500000.0);
        if (s.llama3Rope()) {
            rope.put("rope_type", "llama3");
            rope.put("factor", 32.0);
            rope.put("low_freq_factor", 1.0);
            rope.put("high_freq_factor", 4.0);
            rope.put("original_max_position_embeddings", 8192);
        } else {
            rope.put("rope_type", "default");
        }
        return c;
    }

    private static List<Tensor> tensors(LlamaShape s) {
        int h = s.hidden(), d = s.headDim();
        List<Tensor> t = new ArrayList<>();
        t.add(new Tensor("model.embed_tokens.weight", s.vocab(), h, false));
        for (int i = 0; i < s.layers(); i++) {
            String p = "model.layers." + i + ".";
            t.add(new Tensor(p + "input_layernorm.weight", 1, h, true));
            t.add(new Tensor(p + "self_attn.q_proj.weight", (long) s.heads() * d, h, false));
            t.add(new Tensor(p + "self_attn.k_proj.weight", (long) s.kvHeads() * d, h, false));
            t.add(new Tensor(p + "self_attn.v_proj.weight", (long) s.kvHeads() * d, h, false));
            t.add(new Tensor(p + "self_attn.o_proj.weight", h, (long) s.heads() * d, false));
            t.add(new Tensor(p + "post_attention_layernorm.weight", 1, h, true));
            if (s.experts() > 0) {
                t.add(new Tensor(p + "block_sparse_moe.gate.weight", s.experts(), h, false));
                for (int e = 0; e < s.experts(); e++) {
                    String x = p + "block_sparse_moe.experts." + e + ".";
                    t.add(new Tensor(x + "w1.weight", s.intermediate(), h, false));
                    t.add(new Tensor(x + "w3.weight", s.intermediate(), h, false));
                    t.add(new Tensor(x + "w2.weight", h, s.intermediate(), false));
                }
            } else {
                t.add(new Tensor(p + "mlp.gate_proj.weight", s.intermediate(), h, false));
                t.add(new Tensor(p + "mlp.up_proj.weight", s.intermediate(), h, false));
                t.add(new Tensor(p + "mlp.down_proj.weight", h, s.intermediate(), false));
            }
        }
        t.add(new Tensor("model.norm.weight", 1, h, true));
        if (!s.tiedEmbeddings()) t.add(new Tensor("lm_head.weight", s.vocab(), h, false));
        return s.int4Group() > 0 ? packed(t, s.int4Group()) : t;
    }

    /**
     * The layers' projections as AutoGPTQ's 4-bit tensors: qweight [in / 8, out] of random words,
     * qzeros [groups, out / 8] each stored 7 (zero 8, its symmetric form), scales [groups, out] of
     * float16 that give the weights about the BF16 ones' spread.
     */
    private static List<Tensor> packed(List<Tensor> tensors, int group) {
        List<Tensor> out = new ArrayList<>();
        for (Tensor t : tensors) {
            if (t.ones() || !t.name().startsWith("model.layers.") || t.name().endsWith(".gate.weight")) {
                out.add(t);
                continue;
            }
            String prefix = t.name().substring(0, t.name().length() - ".weight".length());
            out.add(new Tensor(prefix + ".qweight", t.cols() / 8, t.rows(), Fill.RANDOM_WORDS));
            out.add(new Tensor(prefix + ".qzeros", t.cols() / group, t.rows() / 8, Fill.ZERO_WORDS));
            out.add(new Tensor(prefix + ".scales", t.cols() / group, t.rows(), Fill.SCALES));
        }
        return out;
    }

    private static void writeWeights(LlamaShape shape, Path file, boolean sparse) throws IOException {
        List<Tensor> tensors = tensors(shape);
        ObjectNode header = JSON.createObjectNode();
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode info = header.putObject(t.name());
            info.put("dtype", t.fill().dtype());
            if (t.rows() == 1) info.putArray("shape").add(t.cols());
            else info.putArray("shape").add(t.rows()).add(t.cols());
            info.putArray("data_offsets").add(offset).add(offset + t.bytes());
            offset += t.bytes();
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        byte[] padded = Arrays.copyOf(json, (json.length + 7) / 8 * 8);
        Arrays.fill(padded, json.length, padded.length, (byte) ' ');
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer prefix = ByteBuffer.allocate(8 + padded.length).order(ByteOrder.LITTLE_ENDIAN);
            prefix.putLong(padded.length).put(padded).flip();
            writeFully(out, prefix);
            ByteBuffer chunk = ByteBuffer.allocateDirect(1 << 22).order(ByteOrder.LITTLE_ENDIAN);
            long state = 0x9E3779B97F4A7C15L;
            // Uniform on [-a, a] has standard deviation a / sqrt(3).
            float scale = INIT_STD * (float) Math.sqrt(3) / (1 << 23);
            short one = bf16(1f);
            // Levels 0..15 around the zero 8, times this, spread as the BF16 weights do.
            short int4Scale = Float.floatToFloat16(INIT_STD * (float) Math.sqrt(3) / 8);
            for (Tensor t : tensors) {
                if (sparse && !steersWork(t)) {
                    out.position(out.position() + t.bytes());
                    continue;
                }
                for (long left = t.rows() * t.cols(); left > 0; ) {
                    int n = (int) Math.min(left, chunk.capacity() / t.fill().elementBytes());
                    chunk.clear();
                    for (int i = 0; i < n; i++) {
                        switch (t.fill()) {
                            case ONES -> chunk.putShort(one);
                            case SCALES -> chunk.putShort(int4Scale);
                            case ZERO_WORDS -> chunk.putInt(0x77777777);
                            case RANDOM, RANDOM_WORDS -> {
                                state ^= state << 13; // xorshift64: fast, and plenty for weights nobody reads
                                state ^= state >>> 7;
                                state ^= state << 17;
                                if (t.fill() == Fill.RANDOM_WORDS) chunk.putInt((int) (state >>> 32));
                                else chunk.putShort(bf16(((int) (state >>> 40) - (1 << 23)) * scale));
                            }
                        }
                    }
                    chunk.flip();
                    writeFully(out, chunk);
                    left -= n;
                }
            }
            long end = 8 + padded.length + offset;
            if (out.size() < end) {
                out.write(ByteBuffer.wrap(new byte[1]), end - 1);  // a hole up to the end of the file
            }
        }
    }

    private static boolean steersWork(Tensor t) {
        return t.ones() || t.name().equals("model.embed_tokens.weight") || t.name().endsWith("block_sparse_moe.gate.weight");
    }

        private static short bf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16); // round to nearest even
    }

    private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) out.write(buffer);
    }
}
