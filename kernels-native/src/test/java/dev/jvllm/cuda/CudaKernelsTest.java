package dev.jvllm.cuda;

import dev.jvllm.JvllmException;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.List;

import static dev.jvllm.cuda.CudaTestData.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every kernel of the CUDA backend against the CPU backend's, on seeded random data of odd sizes.
 * Float32 kernels agree to rounding (relative error under 1e-5); the 16-bit weight paths are
 * compared with the CPU given the same rounded operands. Skipped where no GPU is found.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaKernelsTest extends GpuAgainstCpuTest {

    private static final double TOLERANCE = 1e-5;

    private CudaBackend gpu;

    @Override
    List<DType> activationTypes() {
        return List.of(DType.F32);
    }

    @BeforeAll
    void pickFloat32Backend() {
        gpu = gpus.get(DType.F32);
    }

    // ---- gathers ----------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void embeddingMatchesCpu(DType type) {
        WeightTensor table = weight("embed", type, random(37 * 29, 1), 37, 29);
        int[] ids = {0, 36, 5, 5, 17, 2, 33, 1, 0, 20, 9};
        assertMatches("embedding " + type, run(b -> {
            Tensor out = b.allocate(ids.length, 29);
            b.embedding(b.weight(table), b.indices(ids), out);
            return out;
        }));
    }

    @Test
    void gatherRowsMatchesCpu() {
        float[] x = random(13 * 41, 2);
        int[] rows = {12, 0, 7};
        assertMatches("gatherRows", run(b -> {
            Tensor out = b.allocate(rows.length, 41);
            b.gatherRows(b.constant(x, 13, 41), b.indices(rows), out);
            return out;
        }));
    }

    @Test
    void scatterAddRowsMatchesCpuWithRepeatedTargetRows() {
        float[] base = random(9 * 37, 21);
        float[] source = random(5 * 37, 22);
        int[] rows = {3, 0, 8, 3, 5};
        float[] weights = {0.5f, -1.25f, 2f, 0.75f, 1f};
        assertMatches("scatterAddRows", run(b -> {
            Tensor out = b.constant(base, 9, 37);
            b.scatterAddRows(b.constant(source, 5, 37), b.indices(rows), b.constant(weights, 1, 5), out);
            return out;
        }));
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void headwiseLinearMatchesCpu(DType type) {
        int tokens = 5, heads = 3, in = 19, outPerHead = 23;
        WeightTensor w = weight("w", type, random(heads * outPerHead * in, 23), heads * outPerHead, in);
        float[] x = random(tokens * heads * in, 24);
        assertMatches("headwiseLinear " + type, run(b -> {
            Tensor y = b.allocate(tokens, heads * outPerHead);
            b.headwiseLinear(b.constant(x, tokens, heads * in), b.weight(w), heads, y);
            return y;
        }));
    }

    @Test
    void outOfRangeIdIsReportedAtTheNextReadAndTheBackendGoesOn() {
        Tensor table = gpu.constant(random(7 * 5, 3), 7, 5);
        Tensor out = gpu.allocate(2, 5);
        gpu.embedding(table, gpu.indices(new int[]{1, 7}), out);
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> gpu.toFloatArray(out));
        assertTrue(e.getMessage().contains("index 7 at 1"), e.getMessage());
        gpu.embedding(table, gpu.indices(new int[]{1, 6}), out);
        assertEquals(10, gpu.toFloatArray(out).length);
    }

    /**
     * Heap arrays too large for the page-locked staging (a vision tower pass's pixels) go through
     * two upload areas in turn without waiting for the stream: three uploads, each followed by work
     * on what came before, and the source arrays overwritten after each call, arrive intact.
     */
    @Test
    void largeUploadsFromTheHeapArriveIntactWhileEarlierWorkRuns() {
        int rows = 3_000, cols = 1_000;  // 12 MB of float32, beyond the 8 MB staging
        float[][] expected = new float[3][];
        Tensor[] uploaded = new Tensor[3];
        Tensor sum = gpu.allocate(rows, cols);
        for (int i = 0; i < 3; i++) {
            float[] values = random(rows * cols, 40 + i);
            expected[i] = values.clone();
            uploaded[i] = gpu.stepValues(values, rows, cols);
            java.util.Arrays.fill(values, Float.NaN);  // the call has taken its copy
            gpu.add(uploaded[i], i == 0 ? uploaded[i] : sum, sum);
        }
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(expected[i], gpu.toFloatArray(uploaded[i]), "upload " + i);
        }
        float[] total = gpu.toFloatArray(sum);
        for (int e = 0; e < total.length; e += 997) {
            assertEquals(2 * expected[0][e] + expected[1][e] + expected[2][e], total[e], 1e-4, "sum at " + e);
        }
        // A larger one than the slot holds: the slot grows, once its last copy has finished.
        float[] larger = random(4 * rows * cols, 44);
        assertArrayEquals(larger, gpu.toFloatArray(gpu.stepValues(larger.clone(), 4 * rows, cols)), "the larger upload");
    }

    // ---- linear -----------------------------------------------------------------------------

    @ParameterizedTest
    @CsvSource({"F32, 1, false", "F32, 7, true", "F32, 33, false", "BF16, 1, true", "BF16, 9, false", "F16, 5, true"})
    void linearMatchesCpu(DType type, int tokens, boolean withBias) {
        int in = 203, out = 45;
        WeightTensor w = weight("w", type, random(out * in, 4), out, in);
        WeightTensor bias = weight("b", type, random(out, 5), 1, out);
        // cuBLAS takes 16-bit weights with 16-bit inputs, so the CPU gets the same rounded inputs.
        float[] x = roundTo(type, random(tokens * in, 6));
        assertMatches("linear " + type, run(b -> {
            Tensor y = b.allocate(tokens, out);
            b.linear(b.constant(x, tokens, in), b.weight(w), withBias ? b.weight(bias) : null, y);
            return y;
        }));
    }

    @Test
    void linearOfAModelSizedLayerMatchesCpu() {
        int tokens = 19, in = 1024, out = 768;
        WeightTensor w = weight("w", DType.F32, random(out * in, 7), out, in);
        float[] x = random(tokens * in, 8);
        assertMatches("linear 1024→768", run(b -> {
            Tensor y = b.allocate(tokens, out);
            b.linear(b.constant(x, tokens, in), b.weight(w), null, y);
            return y;
        }));
    }

    @Test
    void transposedWeightMatchesCpu() {
        WeightTensor inByOut = weight("c_attn", DType.BF16, random(21 * 13, 9), 21, 13);
        float[] x = roundTo(DType.BF16, random(3 * 21, 10));
        assertMatches("transposed linear", run(b -> {
            Tensor y = b.allocate(3, 13);
            b.linear(b.constant(x, 3, 21), b.transposedWeight(inByOut), null, y);
            return y;
        }));
    }

    // ---- norms ------------------------------------------------------------------------------

    @ParameterizedTest
    @CsvSource({"F32, 0, 1", "BF16, 1, 5", "F16, 0, 3", "F32, 0, 4096"})
    void rmsNormMatchesCpu(DType type, float weightOffset, int cols) {
        WeightTensor weight = weight("norm", type, random(cols, 11), 1, cols);
        float[] x = random(9 * cols, 12);
        assertMatches("rmsNorm", run(b -> {
            Tensor out = b.allocate(9, cols);
            b.rmsNorm(b.constant(x, 9, cols), b.weight(weight), 1e-5f, weightOffset, out);
            return out;
        }));
    }

    @Test
    void rmsNormInPlaceMatchesCpu() {
        WeightTensor weight = weight("norm", DType.F32, random(131, 13), 1, 131);
        float[] x = random(4 * 131, 14);
        assertMatches("rmsNorm in place", run(b -> {
            Tensor t = b.allocate(4, 131);
            b.add(b.constant(x, 4, 131), b.constant(new float[4 * 131], 4, 131), t);
            b.rmsNorm(t, b.weight(weight), 1e-6f, 0f, t);
            return t;
        }));
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void layerNormMatchesCpu(boolean withBias) {
        WeightTensor weight = weight("ln", DType.BF16, random(77, 15), 1, 77);
        WeightTensor bias = weight("ln.b", DType.F32, random(77, 16), 1, 77);
        float[] x = shift(random(6 * 77, 17), 3f);
        assertMatches("layerNorm", run(b -> {
            Tensor out = b.allocate(6, 77);
            b.layerNorm(b.constant(x, 6, 77), b.weight(weight), withBias ? b.weight(bias) : null, 1e-5f, out);
            return out;
        }));
    }

    // ---- elementwise ------------------------------------------------------------------------

    @Test
    void addSiluMulScaleAndSoftcapMatchCpu() {
        float[] a = random(5 * 1031, 18);
        float[] c = random(5 * 1031, 19);
        assertMatches("add", run(b -> {
            Tensor out = b.allocate(5, 1031);
            b.add(b.constant(a, 5, 1031), b.constant(c, 5, 1031), out);
            return out;
        }));
        assertMatches("siluMul", run(b -> {
            Tensor out = b.allocate(5, 1031);
            b.siluMul(b.constant(a, 5, 1031), b.constant(c, 5, 1031), out);
            return out;
        }));
        assertMatches("scale", run(b -> {
            Tensor out = b.allocate(5, 1031);
            b.scale(b.constant(a, 5, 1031), 0.37f, out);
            return out;
        }));
        assertMatches("softcap", run(b -> {
            Tensor out = b.allocate(5, 1031);
            b.softcap(b.constant(a, 5, 1031), 2.5f, out);
            return out;
        }));
    }

    @Test
    void addInPlaceMatchesCpu() {
        float[] a = random(3 * 17, 20);
        float[] c = random(3 * 17, 21);
        assertMatches("add in place", run(b -> {
            Tensor x = b.allocate(3, 17);
            b.scale(b.constant(a, 3, 17), 1f, x);
            b.add(x, b.constant(c, 3, 17), x);
            return x;
        }));
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void activationsMatchCpu(Activation fn) {
        float[] x = random(7 * 123, 22);
        float[] up = random(7 * 123, 23);
        assertMatches(fn + "", run(b -> {
            Tensor out = b.allocate(7, 123);
            b.activation(fn, b.constant(x, 7, 123), out);
            return out;
        }));
        assertMatches(fn + " gated", run(b -> {
            Tensor out = b.allocate(7, 123);
            b.gatedActivation(fn, b.constant(x, 7, 123), b.constant(up, 7, 123), out);
            return out;
        }));
    }

    // ---- rotary -----------------------------------------------------------------------------

    @ParameterizedTest
    @CsvSource({"true, 3, 10, 10", "false, 3, 10, 10", "true, 4, 16, 8", "false, 2, 12, 6", "true, 32, 128, 128"})
    void rotaryMatchesCpu(boolean neox, int heads, int headDim, int rotaryDim) {
        int tokens = 11, maxPositions = 50;
        float[] x = random(tokens * heads * headDim, 24);
        float[] table = random(maxPositions * rotaryDim, 25);
        int[] positions = {0, 1, 2, 49, 7, 7, 30, 3, 4, 5, 12};
        assertMatches("rotary", run(b -> {
            Tensor t = b.allocate(tokens, heads * headDim);
            b.scale(b.constant(x, tokens, heads * headDim), 1f, t);
            b.rotary(t, heads, headDim, rotaryDim, neox, b.constant(table, maxPositions, rotaryDim), b.indices(positions));
            return t;
        }));
    }

    /** A layer's queries and keys in one call rotate as two rotary calls do. */
    @ParameterizedTest
    @CsvSource({"true, 32, 8, 128, 128", "false, 4, 2, 16, 8", "true, 3, 3, 10, 10"})
    void rotaryPairMatchesTwoRotaryCalls(boolean neox, int qHeads, int kHeads, int headDim, int rotaryDim) {
        int tokens = 5, maxPositions = 40;
        float[] q = random(tokens * qHeads * headDim, 30);
        float[] k = random(tokens * kHeads * headDim, 31);
        float[] table = random(maxPositions * rotaryDim, 32);
        int[] positions = {0, 39, 7, 7, 12};
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor queries = b.allocate(tokens, qHeads * headDim);
            Tensor keys = b.allocate(tokens, kHeads * headDim);
            b.scale(b.constant(q, tokens, qHeads * headDim), 1f, queries);
            b.scale(b.constant(k, tokens, kHeads * headDim), 1f, keys);
            Tensor cosSin = b.constant(table, maxPositions, rotaryDim);
            Tensor pos = b.indices(positions);
            if (b == cpu) {
                b.rotary(queries, qHeads, headDim, rotaryDim, neox, cosSin, pos);
                b.rotary(keys, kHeads, headDim, rotaryDim, neox, cosSin, pos);
            } else {
                b.rotaryPair(queries, qHeads, keys, kHeads, headDim, rotaryDim, neox, cosSin, pos);
            }
            results[i] = concat(b.toFloatArray(queries), b.toFloatArray(keys));
        }
        assertClose("rotaryPair", results[0], results[1]);
    }

    @Test
    void rotaryPositionPastTheTableIsReported() {
        Tensor x = gpu.allocate(2, 8);
        gpu.rotary(x, 1, 8, 8, true, gpu.constant(new float[4 * 8], 4, 8), gpu.indices(new int[]{0, 4}));
        assertThrows(IndexOutOfBoundsException.class, gpu::synchronize);
    }

    // ---- attention --------------------------------------------------------------------------

    /**
     * Two steps over one cache: first two prefills (one sequence's blocks out of order), then a
     * decode token of the first sequence beside a second chunk of the other, which must see the
     * first chunk's keys through the cache.
     */
    @ParameterizedTest
    @CsvSource({
            "6, 2, 24, 0, 0, false",
            "4, 1, 128, 0, 0, false",
            "2, 2, 256, 0, 0, false",
            "8, 8, 64, 3, 0, false",
            "4, 2, 32, 0, 5, false",
            "4, 4, 40, 0, 0, true"})
    void pagedAttentionMatchesCpuForPrefillAndDecode(int heads, int kvHeads, int headDim, int window, float softcap,
                                                     boolean alibi) {
        float[] slopes = alibi ? new float[]{0.5f, 0.25f, 0.125f, 0.0625f} : null;
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)),
                window, softcap, slopes);
        assertPagedAttentionMatchesCpu("paged attention " + params, params);
    }

    /** T5's decoder: a learned bias by distance (clamped past 5), through the generic kernel, prefill and decode. */
    @Test
    void pagedAttentionWithARelativeBiasMatchesCpu() {
        assertPagedAttentionMatchesCpu("paged attention with a relative bias", new AttentionParams(4, 2, 32, 1f, 0, 0f, null)
                .withRelativeBias(dev.jvllm.cpu.PagedAttentionTestAccess.relativeBias(4, 5, 77)));
    }

    /** The two steps above on both backends: the GPU's outputs are the CPU's. */
    private void assertPagedAttentionMatchesCpu(String what, AttentionParams params) {
        KvCacheSpec spec = new KvCacheSpec(2, 12, 4, params.numKvHeads(), params.headDim());
        int[][] tables = {{3, 7, 9}, {1, 0, 5, 11}};
        ForwardBatch prefill = batch(tables, new int[]{7, 5}, new int[]{0, 0}, new int[]{7, 5});
        ForwardBatch mixed = batch(tables, new int[]{8, 10}, new int[]{7, 5}, new int[]{1, 5});
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            try (KvCache cache = b.allocateKvCache(spec)) {
                float[] first = attend(b, cache, prefill, params, 1, 30);
                float[] second = attend(b, cache, mixed, params, 1, 40);
                results[i] = concat(first, second);
            }
        }
        assertClose(what, results[0], results[1]);
    }

    /** T5's encoder: the relative bias both ways within each sequence, through the generic kernel. */
    @Test
    void encoderAttentionWithARelativeBiasMatchesCpu() {
        AttentionParams params = new AttentionParams(4, 4, 64, 1f, 0, 0f, null)
                .withRelativeBias(dev.jvllm.cpu.PagedAttentionTestAccess.relativeBias(4, 6, 78));
        ForwardBatch batch = encoderBatch(1, 7, 20);
        int tokens = batch.numTokens(), width = 256;
        float[] q = random(tokens * width, 86), k = random(tokens * width, 87), v = random(tokens * width, 88);
        assertMatches("encoder attention with a relative bias", run(b -> {
            Tensor out = b.allocate(tokens, width);
            b.encoderAttention(b.constant(q, tokens, width), b.constant(k, tokens, width), b.constant(v, tokens, width), batch,
                    params, out);
            return out;
        }));
    }

    private float[] attend(Backend b, KvCache cache, ForwardBatch batch, AttentionParams params, int layer, long seed) {
        int tokens = batch.numTokens();
        int qWidth = params.numHeads() * params.headDim(), kvWidth = params.numKvHeads() * params.headDim();
        Tensor out = b.allocate(tokens, qWidth);
        b.attention(b.constant(random(tokens * qWidth, seed), tokens, qWidth),
                b.constant(random(tokens * kvWidth, seed + 1), tokens, kvWidth),
                b.constant(random(tokens * kvWidth, seed + 2), tokens, kvWidth),
                cache, layer, batch, params, out);
        return b.toFloatArray(out);
    }

    /**
     * Three steps over one latent cache: prefills of 7 and 5 tokens (blocks out of order, contexts
     * of several blocks), then a decode token of the first beside a 5-token second chunk of the
     * other, then a decode token of each; the later steps read the earlier rows through the cache.
     * The scores use both halves of each row ([latent ; keyRope]) and the values its latent half.
     */
    @ParameterizedTest
    @CsvSource({
            "4, 16, 4, 0, 0, false",      // the tiny DeepSeek of LatentKvCacheEngineTest
            "4, 32, 16, 0, 0, false",
            "3, 512, 64, 0, 0, false",    // DeepSeek-V2/V3: kv_lora_rank 512, qk_rope_head_dim 64
            "16, 512, 64, 0, 0, false",
            "2, 40, 8, 3, 5, true"})      // the CPU kernel's window, soft-cap and ALiBi apply too
    void latentAttentionMatchesCpuForPrefillAndDecode(int heads, int rank, int ropeDim, int window, float softcap,
                                                      boolean alibi) {
        float[] slopes = alibi ? new float[]{0.5f, 0.25f} : null;
        AttentionParams params = new AttentionParams(heads, 1, rank, (float) (1 / Math.sqrt(rank + ropeDim)),
                window, softcap, slopes);
        KvCacheSpec spec = KvCacheSpec.latent(2, 12, 4, rank + ropeDim);
        int[][] tables = {{3, 7, 9}, {1, 0, 5, 11}};
        ForwardBatch prefill = batch(tables, new int[]{7, 5}, new int[]{0, 0}, new int[]{7, 5});
        ForwardBatch mixed = batch(tables, new int[]{8, 10}, new int[]{7, 5}, new int[]{1, 5});
        ForwardBatch decode = batch(tables, new int[]{9, 11}, new int[]{8, 10}, new int[]{1, 1});
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            try (KvCache cache = b.allocateKvCache(spec)) {
                float[] first = attendLatent(b, cache, prefill, params, ropeDim, 50);
                float[] second = attendLatent(b, cache, mixed, params, ropeDim, 60);
                float[] third = attendLatent(b, cache, decode, params, ropeDim, 70);
                results[i] = concat(concat(first, second), third);
            }
        }
        assertClose("latent attention " + params + " rope " + ropeDim, results[0], results[1]);
    }

    private float[] attendLatent(Backend b, KvCache cache, ForwardBatch batch, AttentionParams params, int ropeDim,
                                 long seed) {
        int tokens = batch.numTokens();
        int heads = params.numHeads(), rank = params.headDim();
        Tensor out = b.allocate(tokens, heads * rank);
        b.latentAttention(b.constant(random(tokens * heads * rank, seed), tokens, heads * rank),
                b.constant(random(tokens * heads * ropeDim, seed + 1), tokens, heads * ropeDim),
                b.constant(random(tokens * rank, seed + 2), tokens, rank),
                b.constant(random(tokens * ropeDim, seed + 3), tokens, ropeDim),
                cache, 1, batch, params, out);
        return b.toFloatArray(out);
    }

    @Test
    void latentAttentionRefusesRowsWiderThanItsKernel() {
        AttentionParams params = new AttentionParams(1, 1, 544, 1f, 0, 0f, null);
        ForwardBatch one = batch(new int[][]{{0}}, new int[]{1}, new int[]{0}, new int[]{1});
        try (KvCache cache = gpu.allocateKvCache(KvCacheSpec.latent(1, 1, 4, 544 + 64))) {
            var e = assertThrows(JvllmException.class, () -> gpu.latentAttention(gpu.allocate(1, 544),
                    gpu.allocate(1, 64), gpu.allocate(1, 544), gpu.allocate(1, 64), cache, 0, one, params,
                    gpu.allocate(1, 544)));
            assertTrue(e.getMessage().contains("544 + 64"), e.getMessage());
        }
    }

    /**
     * Sequences of 1, 7, 70, 2 and 1 tokens side by side: every token attends over all the keys of
     * its own sequence, before and after it, and over no other's.
     */
    @ParameterizedTest
    @CsvSource({
            "4, 4, 32, 0",
            "12, 12, 64, 0",     // BERT-base and XLM-R-base heads
            "8, 2, 64, 0",
            "3, 3, 40, 0",
            "5, 5, 80, 0",       // ViT-H heads, the widest the tiled form takes
            "4, 2, 32, 0",       // the narrowest the tiled form takes, grouped
            "2, 2, 64, 2"})
    void encoderAttentionMatchesCpu(int heads, int kvHeads, int headDim, float softcap) {
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)),
                0, softcap, null);
        ForwardBatch batch = encoderBatch(1, 7, 70, 2, 1);
        int tokens = batch.numTokens();
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        float[] q = random(tokens * qWidth, 80), k = random(tokens * kvWidth, 81), v = random(tokens * kvWidth, 82);
        assertMatches("encoder attention " + params, run(b -> {
            Tensor out = b.allocate(tokens, qWidth);
            b.encoderAttention(b.constant(q, tokens, qWidth), b.constant(k, tokens, kvWidth),
                    b.constant(v, tokens, kvWidth), batch, params, out);
            return out;
        }));
    }

    /** Cross-attention: sequences of 1, 7 and 3 queries over rows [90, 130), [5, 6) and [0, 80) of 130 keys. */
    @ParameterizedTest
    @CsvSource({"4, 4, 32", "16, 16, 64", "8, 2, 128"})
    void crossAttentionMatchesCpu(int heads, int kvHeads, int headDim) {
        AttentionParams params = AttentionParams.causal(heads, kvHeads, headDim);
        ForwardBatch batch = encoderBatch(1, 7, 3);
        int tokens = batch.numTokens(), rows = 130;
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        int[] ranges = {90, 40, 5, 1, 0, 80};
        float[] q = random(tokens * qWidth, 83), k = random(rows * kvWidth, 84), v = random(rows * kvWidth, 85);
        assertMatches("cross attention " + params, run(b -> {
            Tensor out = b.allocate(tokens, qWidth);
            b.crossAttention(b.constant(q, tokens, qWidth), b.constant(k, rows, kvWidth), b.constant(v, rows, kvWidth),
                    ranges, 80, batch, params, out);
            return out;
        }));
    }

    @Test
    void encoderAttentionRefusesAlibiAsTheCpuDoes() {
        AttentionParams params = new AttentionParams(2, 2, 8, 1f, 0, 0f, new float[]{0.5f, 0.25f});
        Tensor x = gpu.allocate(3, 16);
        var e = assertThrows(IllegalArgumentException.class,
                () -> gpu.encoderAttention(x, x, x, encoderBatch(3), params, gpu.allocate(3, 16)));
        assertTrue(e.getMessage().startsWith("encoderAttention: ALiBi"), e.getMessage());
    }

    /** An encoder batch: sequences of the given lengths end to end, no cache. */
    static ForwardBatch encoderBatch(int... lengths) {
        int total = Arrays.stream(lengths).sum();
        int[] starts = new int[lengths.length + 1];
        int[] positions = new int[total];
        for (int s = 0; s < lengths.length; s++) {
            starts[s + 1] = starts[s] + lengths[s];
            for (int p = 0; p < lengths[s]; p++) positions[starts[s] + p] = p;
        }
        int[] zeros = new int[total];
        return new ForwardBatch(zeros, positions, zeros, starts, lengths.clone(), new int[lengths.length][], 16,
                new int[0]);
    }

    @Test
    void argmaxRowsMatchesTheCpuSamplersRuleOnTiesNanAndMaskedRows() {
        int cols = 3001;
        float[] x = random(4 * cols, 28);
        x[5] = 9f;
        x[2000] = 9f;                                   // row 0: a tie, the first wins
        x[cols + 7] = Float.NaN;
        x[cols + 8] = 50f;                              // row 1: NaN is never chosen
        Arrays.fill(x, 2 * cols, 3 * cols, Float.NEGATIVE_INFINITY);  // row 2: everything masked
        x[3 * cols + cols - 1] = 1e30f;                 // row 3: the last column
        Tensor logits = gpu.constant(x, 4, cols);
        int[] expected = cpu.argmaxRows(cpu.constant(x, 4, cols));
        assertArrayEquals(new int[]{5, 8, 0, cols - 1}, expected);
        assertArrayEquals(expected, gpu.argmaxRows(logits));
    }

    /** Vocabulary-sized rows are split over many blocks: the rule holds across the slices' borders. */
    @Test
    void argmaxOfVocabularySizedRowsKeepsTheRuleAcrossSlices() {
        int cols = 128256;
        float[] x = random(3 * cols, 29);
        x[100] = 7f;
        x[100_000] = 7f;                                // row 0: a tie far apart, the first wins
        x[cols + 4095] = Float.NaN;
        x[cols + 4096] = 40f;                           // row 1: at a slice border, beside a NaN
        Arrays.fill(x, 2 * cols, 3 * cols, Float.NEGATIVE_INFINITY);  // row 2: everything masked
        int[] expected = cpu.argmaxRows(cpu.constant(x, 3, cols));
        assertArrayEquals(new int[]{100, 4096, 0}, expected);
        assertArrayEquals(expected, gpu.argmaxRows(gpu.constant(x, 3, cols)));
        assertArrayEquals(new int[]{100}, gpu.argmaxRows(gpu.constant(Arrays.copyOf(x, cols), 1, cols)));
    }

    // ---- memory -----------------------------------------------------------------------------

    @Test
    void toFloatArrayWidensWeightsAndIndices() {
        float[] values = roundTo(DType.BF16, random(3 * 5, 26));
        assertArrayEquals(values, gpu.toFloatArray(gpu.weight(weight("w", DType.BF16, values, 3, 5))));
        assertArrayEquals(new float[]{4, -1, 7}, gpu.toFloatArray(gpu.indices(new int[]{4, -1, 7})));
    }

    @Test
    void rowViewsAndReshapesSeeTheSameStorage() {
        float[] x = random(6 * 4, 27);
        Tensor t = gpu.constant(x, 6, 4);
        assertArrayEquals(Arrays.copyOfRange(x, 8, 16), gpu.toFloatArray(t.rows(2, 2)));
        assertArrayEquals(x, gpu.toFloatArray(t.reshape(3, 8)));
    }

    @Test
    void eventTimingAndMemoryInfoWork() {
        Tensor x = gpu.allocate(1024, 1024);
        float millis = gpu.timeMillis(() -> gpu.scale(x, 2f, x));
        assertTrue(millis >= 0 && millis < 10_000, "timed " + millis + " ms");
        long[] info = gpu.memoryInfo();
        assertTrue(info[0] > 0 && info[0] <= info[1], Arrays.toString(info));
    }

    // ---- helpers ----------------------------------------------------------------------------

    private interface Computation {
        Tensor on(Backend backend);
    }

    /** The same computation on the CPU (index 0) and on the GPU (index 1), read back. */
    private float[][] run(Computation computation) {
        return new float[][]{cpu.toFloatArray(computation.on(cpu)), gpu.toFloatArray(computation.on(gpu))};
    }

    private static void assertMatches(String what, float[][] cpuThenGpu) {
        assertClose(what, cpuThenGpu[0], cpuThenGpu[1]);
    }

    private static float[] shift(float[] v, float by) {
        for (int i = 0; i < v.length; i++) v[i] += by;
        return v;
    }

    /** Sequences over blocks of 4 tokens. */
    private static ForwardBatch batch(int[][] tables, int[] contexts, int[] cached, int[] queryLengths) {
        return CudaTestData.batch(tables, 4, contexts, cached, queryLengths);
    }

    private static void assertClose(String what, float[] expected, float[] actual) {
        CudaTestData.assertClose(what, expected, actual, TOLERANCE);
    }

    private WeightTensor weight(String name, DType type, float[] values, int rows, int cols) {
        return CudaTestData.weight(arena, name, type, values, rows, cols);
    }
}
