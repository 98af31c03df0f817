package dev.jvllm.models.layers;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Latent attention with the up-projections absorbed, reading only the cached latents, against the
 * textbook form: every head's keys and values expanded from the latent by kv_b_proj, the rotary
 * key shared by all heads, ordinary causal softmax attention.
 */
class MultiHeadLatentAttentionTest {

    private static final int HIDDEN = 32, HEADS = 4, KV_RANK = 16, NOPE = 8, ROPE = 4, VALUE = 6, TOKENS = 11;
    private static final double THETA = 10000;

    private Backend backend;
    private RandomCheckpoint checkpoint;

    @BeforeEach
    void open() {
        backend = Backends.create("cpu", BackendOptions.defaults());
        checkpoint = new RandomCheckpoint(11);
    }

    @AfterEach
    void close() {
        checkpoint.close();
        backend.close();
    }

    /** @param qRank 0 for queries straight from x (q_lora_rank null) */
    private MultiHeadLatentAttention layer(int qRank) {
        int qk = NOPE + ROPE;
        if (qRank == 0) {
            checkpoint.random("attn.q_proj.weight", 0.3, HEADS * qk, HIDDEN);
        } else {
            checkpoint.random("attn.q_a_proj.weight", 0.3, qRank, HIDDEN);
            checkpoint.nearOne("attn.q_a_layernorm.weight", qRank);
            checkpoint.random("attn.q_b_proj.weight", 0.3, HEADS * qk, qRank);
        }
        checkpoint.random("attn.kv_a_proj_with_mqa.weight", 0.3, KV_RANK + ROPE, HIDDEN);
        checkpoint.nearOne("attn.kv_a_layernorm.weight", KV_RANK);
        checkpoint.random("attn.kv_b_proj.weight", 0.3, HEADS * (NOPE + VALUE), KV_RANK);
        checkpoint.random("attn.o_proj.weight", 0.3, HIDDEN, HEADS * VALUE);
        var shape = new MultiHeadLatentAttention.Shape(HIDDEN, HEADS, qRank, KV_RANK, NOPE, ROPE, VALUE, false);
        var rope = ModelConfig.parse("{\"rope_theta\": " + THETA + "}").rope();
        var rotary = RotaryEmbedding.create(backend, rope, ROPE, 64, false, ROPE);
        return MultiHeadLatentAttention.load(WeightScope.root(checkpoint, backend).child("attn"), shape, rotary,
                (float) (1 / Math.sqrt(NOPE + ROPE)), 0);
    }

    @ParameterizedTest(name = "q_lora_rank {0}")
    @ValueSource(ints = {0, 24})
    void absorbedAttentionOverTheLatentCacheEqualsAttentionOverExpandedKeysAndValues(int qRank) {
        MultiHeadLatentAttention attention = layer(qRank);
        float[] x = input();
        float[] expected = expandedReference(x, qRank);
        KvCacheSpec spec = attention.cacheSpec(1, 4, 16);
        try (KvCache cache = backend.allocateKvCache(spec)) {
            float[] prefill = run(attention, cache, x, 0, TOKENS);
            assertArrayEquals(expected, prefill, 2e-5f);
        }
    }

    @ParameterizedTest(name = "q_lora_rank {0}")
    @ValueSource(ints = {0, 24})
    void decodingOneTokenAfterAPrefillReadsTheCachedLatentsOfTheEarlierTokens(int qRank) {
        MultiHeadLatentAttention attention = layer(qRank);
        float[] x = input();
        float[] expected = expandedReference(x, qRank);
        try (KvCache cache = backend.allocateKvCache(attention.cacheSpec(1, 4, 16))) {
            run(attention, cache, Arrays.copyOf(x, (TOKENS - 1) * HIDDEN), 0, TOKENS - 1);
            float[] last = run(attention, cache, Arrays.copyOfRange(x, (TOKENS - 1) * HIDDEN, TOKENS * HIDDEN), TOKENS - 1, 1);
            assertArrayEquals(Arrays.copyOfRange(expected, (TOKENS - 1) * HIDDEN, TOKENS * HIDDEN), last, 2e-5f);
        }
    }

    @Test
    void aCacheSlotHoldsTheLatentAndTheRotaryKeyOnly() {
        KvCacheSpec spec = layer(0).cacheSpec(3, 8, 16);
        assertEquals(KvCacheSpec.Layout.LATENT, spec.layout());
        assertEquals(KV_RANK + ROPE, spec.slotWidth());
        assertEquals(3L * (KV_RANK + ROPE) * Float.BYTES, spec.bytesPerToken(Float.BYTES));
    }

    /** Runs {@code count} tokens of one sequence starting at position {@code first}. */
    private float[] run(MultiHeadLatentAttention attention, KvCache cache, float[] x, int first, int count) {
        int[] positions = IntStream.range(first, first + count).toArray();
        ForwardBatch batch = new ForwardBatch(new int[count], positions, positions, new int[]{0, count},
                new int[]{first + count}, new int[][]{{0, 1, 2, 3}}, 16, new int[]{count - 1});
        Tensor out = backend.allocate(count, HIDDEN);
        attention.forward(backend, backend.constant(x, count, HIDDEN), backend.indices(positions), cache, batch,
                new Scratch(backend), out);
        return backend.toFloatArray(out);
    }

    private static float[] input() {
        Random random = new Random(5);
        float[] x = new float[TOKENS * HIDDEN];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        return x;
    }

    /** DeepSeek-V2's attention as Transformers writes it, in double precision. */
    private float[] expandedReference(float[] x, int qRank) {
        int qk = NOPE + ROPE;
        double[][] q = new double[TOKENS][], k = new double[TOKENS][], v = new double[TOKENS][];
        for (int t = 0; t < TOKENS; t++) {
            double[] xt = row(x, t, HIDDEN);
            double[] qt = qRank == 0 ? matVec("attn.q_proj.weight", xt)
                    : matVec("attn.q_b_proj.weight", rmsNorm(matVec("attn.q_a_proj.weight", xt), "attn.q_a_layernorm.weight"));
            double[] compressed = matVec("attn.kv_a_proj_with_mqa.weight", xt);
            double[] latent = rmsNorm(Arrays.copyOf(compressed, KV_RANK), "attn.kv_a_layernorm.weight");
            double[] keyRope = rotate(Arrays.copyOfRange(compressed, KV_RANK, KV_RANK + ROPE), t);
            double[] kv = matVec("attn.kv_b_proj.weight", latent);
            q[t] = new double[HEADS * qk];
            k[t] = new double[HEADS * qk];
            v[t] = new double[HEADS * VALUE];
            for (int h = 0; h < HEADS; h++) {
                System.arraycopy(qt, h * qk, q[t], h * qk, NOPE);
                System.arraycopy(rotate(Arrays.copyOfRange(qt, h * qk + NOPE, (h + 1) * qk), t), 0, q[t], h * qk + NOPE, ROPE);
                System.arraycopy(kv, h * (NOPE + VALUE), k[t], h * qk, NOPE);
                System.arraycopy(keyRope, 0, k[t], h * qk + NOPE, ROPE);
                System.arraycopy(kv, h * (NOPE + VALUE) + NOPE, v[t], h * VALUE, VALUE);
            }
        }
        float[] out = new float[TOKENS * HIDDEN];
        for (int t = 0; t < TOKENS; t++) {
            double[] context = new double[HEADS * VALUE];
            for (int h = 0; h < HEADS; h++) {
                double[] scores = new double[t + 1];
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    for (int d = 0; d < qk; d++) scores[j] += q[t][h * qk + d] * k[j][h * qk + d];
                    scores[j] /= Math.sqrt(qk);
                    max = Math.max(max, scores[j]);
                }
                for (int j = 0; j <= t; j++) sum += scores[j] = Math.exp(scores[j] - max);
                for (int j = 0; j <= t; j++) {
                    for (int d = 0; d < VALUE; d++) context[h * VALUE + d] += scores[j] / sum * v[j][h * VALUE + d];
                }
            }
            double[] o = matVec("attn.o_proj.weight", context);
            for (int i = 0; i < HIDDEN; i++) out[t * HIDDEN + i] = (float) o[i];
        }
        return out;
    }

    /** DeepSeek-V2's complex rotation: feature pairs (2i, 2i+1) turned by position · θ^(−2i/d). */
    private static double[] rotate(double[] pairs, int position) {
        double[] out = new double[pairs.length];
        for (int i = 0; i < pairs.length / 2; i++) {
            double angle = position * Math.pow(THETA, -2.0 * i / pairs.length);
            double a = pairs[2 * i], b = pairs[2 * i + 1];
            out[2 * i] = a * Math.cos(angle) - b * Math.sin(angle);
            out[2 * i + 1] = b * Math.cos(angle) + a * Math.sin(angle);
        }
        return out;
    }

    private double[] matVec(String weight, double[] in) {
        float[] w = checkpoint.values(weight);
        double[] out = new double[w.length / in.length];
        for (int r = 0; r < out.length; r++) {
            for (int c = 0; c < in.length; c++) out[r] += w[r * in.length + c] * in[c];
        }
        return out;
    }

    private double[] rmsNorm(double[] in, String weight) {
        float[] w = checkpoint.values(weight);
        double squares = 0;
        for (double value : in) squares += value * value;
        double inverse = 1 / Math.sqrt(squares / in.length + 1e-6);
        double[] out = new double[in.length];
        for (int i = 0; i < in.length; i++) out[i] = in[i] * inverse * w[i];
        return out;
    }

    private static double[] row(float[] x, int t, int width) {
        double[] out = new double[width];
        for (int i = 0; i < width; i++) out[i] = x[t * width + i];
        return out;
    }
}
