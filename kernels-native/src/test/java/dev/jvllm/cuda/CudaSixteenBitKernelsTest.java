package dev.jvllm.cuda;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

import static dev.jvllm.cuda.CudaTestData.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA backend computing in bfloat16 and float16 against the CPU backend in float32 on the
 * same (rounded) inputs: within the precision of a 16-bit result. The attention cases send prompt
 * chunks longer than one 64-token tile and one 32-key tile through the tensor-core flash_prefill
 * kernel beside decode tokens through paged_attention; latent and encoder attention run on 16-bit
 * caches and activations. Skipped where no GPU is found.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaSixteenBitKernelsTest extends GpuAgainstCpuTest {

    /** Relative L2 error allowed: a few units of bf16's 2^-8 rounding after sums of rounded terms. */
    private static final double TOLERANCE = 2e-2;

    @Override
    List<DType> activationTypes() {
        return List.of(DType.BF16, DType.F16);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void weightsOfAnotherTypeAreConvertedToTheActivationTypeOnUpload(DType type) {
        CudaBackend gpu = gpus.get(type);
        float[] values = random(7 * 9, 1);
        Tensor uploaded = gpu.weight(weight("w", DType.F32, values, 7, 9));
        assertEquals(type, uploaded.dtype());
        assertArrayEquals(roundTo(type, values), gpu.toFloatArray(uploaded));
    }

    /**
     * One-row inputs with a width a multiple of 8, up to 16384, take gemv_rows: a warp per row
     * (264, 8200), or rows split over 2 or 4 warps (4096, 8224, 14336: Llama-3-8B's down
     * projection); the others cuBLAS.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 1, 203", "BF16, 37, 203", "F16, 5, 203", "BF16, 1, 4096", "F16, 1, 264", "BF16, 8, 520",
            "F16, 3, 264", "BF16, 1, 14336", "F16, 1, 8224", "BF16, 1, 8200", "BF16, 1, 16392"})
    void linearRmsNormSiluMulAndAddMatchCpu(DType type, int tokens, int in) {
        CudaBackend gpu = gpus.get(type);
        int out = 90;
        WeightTensor w = weight("w", type, random(out * in, 2), out, in);
        WeightTensor norm = weight("norm", DType.F32, random(in, 3), 1, in);
        float[] x = roundTo(type, random(tokens * in, 4));
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor input = activations(b, x, tokens, in);
            Tensor normed = b.allocate(tokens, in);
            b.rmsNorm(input, b.weight(norm), 1e-5f, 0f, normed);
            b.add(normed, input, normed);
            Tensor y = b.allocate(tokens, out);
            b.linear(normed, b.weight(w), null, y);
            Tensor gated = b.allocate(tokens, out / 2);
            b.siluMul(y.reshape(tokens * 2, out / 2).rows(0, tokens), y.reshape(tokens * 2, out / 2).rows(tokens, tokens), gated);
            results[i] = concat(b.toFloatArray(y), b.toFloatArray(gated));
        }
        assertClose(type + " linear, rmsNorm, add, siluMul", results[0], results[1]);
    }

    /**
     * The elementwise kernels' 16-byte paths against the CPU, and their element-at-a-time paths where a
     * row is not whole pieces (77) or, for layerNorm, more than 1024 of them (8200): a biased product
     * (add_bias_rows; for one row gemv_rows3 adds it), layerNorm with a bias, GELU, an add in place, and
     * addLayerNorm into delta's own rows (a post-norm stream) and into others without a bias.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 7, 1024", "F16, 3, 1024", "BF16, 5, 77", "BF16, 2, 8200", "F16, 9, 96", "BF16, 1, 1024", "F16, 1, 77"})
    void biasLayerNormActivationAndAddMatchCpu(DType type, int tokens, int cols) {
        CudaBackend gpu = gpus.get(type);
        int in = 64;
        WeightTensor w = weight("w", type, random(cols * in, 30), cols, in);
        WeightTensor bias = weight("b", DType.F32, random(cols, 31), 1, cols);
        WeightTensor scale = weight("ln", DType.BF16, random(cols, 32), 1, cols);
        WeightTensor shift = weight("ln.b", DType.F32, random(cols, 33), 1, cols);
        float[] x = roundTo(type, random(tokens * in, 34));
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor y = b.allocate(tokens, cols);
            b.linear(activations(b, x, tokens, in), b.weight(w), b.weight(bias), y);
            Tensor normed = b.allocate(tokens, cols);
            b.layerNorm(y, b.weight(scale), b.weight(shift), 1e-5f, normed);
            Tensor activated = b.allocate(tokens, cols);
            b.activation(Activation.GELU, normed, activated);
            b.add(activated, y, activated);
            float[] first = concat(b.toFloatArray(y), concat(b.toFloatArray(normed), b.toFloatArray(activated)));
            b.addLayerNorm(activated, y, b.weight(scale), b.weight(shift), 1e-5f, y);
            Tensor unbiased = b.allocate(tokens, cols);
            b.addLayerNorm(normed, activated, b.weight(scale), null, 1e-5f, unbiased);
            results[i] = concat(first, concat(b.toFloatArray(activated), concat(b.toFloatArray(y),
                    concat(b.toFloatArray(normed), b.toFloatArray(unbiased)))));
        }
        assertClose(type + " bias, layerNorm, GELU, add over rows of " + cols, results[0], results[1]);
    }

    /**
     * A linear layer and its activation: one row through gemv_rows_activated (rows of 4096 split between
     * warps on every card, 301 rows so that the last block has rows past the end; no bias, a float32
     * constant's, or a weight's converted to the activation type), several rows through cuBLAS and the
     * activation kernel; each function the kernels know, against the CPU's product then activation.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 1, GELU, F32", "F16, 1, RELU, NONE", "BF16, 1, GELU_TANH, WEIGHT", "BF16, 1, QUICK_GELU, NONE",
            "F16, 1, SILU, F32", "BF16, 5, GELU, WEIGHT"})
    void linearActivationMatchesCpu(DType type, int tokens, Activation fn, String bias) {
        CudaBackend gpu = gpus.get(type);
        int in = 4096, out = 301;
        WeightTensor w = weight("w", type, random(out * in, 40), out, in);
        float[] biasValues = roundTo(type, random(out, 41));
        float[] x = roundTo(type, random(tokens * in, 42));
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor biasTensor = switch (bias) {
                case "F32" -> b.constant(biasValues, 1, out);
                case "WEIGHT" -> b.weight(weight("b", DType.F32, biasValues, 1, out));
                default -> null;
            };
            Tensor y = b.allocate(tokens, out);
            long fused = gpu.launches(Kernel.GEMV_ROWS_ACTIVATED);
            b.linearActivation(fn, activations(b, x, tokens, in), b.weight(w), biasTensor, y);
            results[i] = b.toFloatArray(y);
            if (b == gpu) {
                assertEquals(tokens == 1 ? 1 : 0, gpu.launches(Kernel.GEMV_ROWS_ACTIVATED) - fused,
                        "gemv_rows_activated launches for " + tokens + " rows");
            }
        }
        assertClose(type + " linear then " + fn + ", bias " + bias + ", over " + tokens + " rows", results[0], results[1]);
    }

    /**
     * Q, K and V, and gate and up, uploaded as one stacked weight each and used as its row views:
     * one row through the gemv kernels, 3 and 64 rows through one cuBLAS call split by
     * split_columns or gated by gated_halves, 1100 rows (above the stacked products' limit) through
     * each view's own call; all as the CPU computes them from the separate weights.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 1", "BF16, 3", "BF16, 64", "F16, 64", "BF16, 1100"})
    void stackedWeightsRowViewsMatchCpu(DType type, int tokens) {
        CudaBackend gpu = gpus.get(type);
        int in = 256;
        int[] outs = {96, 32, 32};
        WeightTensor[] w = new WeightTensor[3];
        for (int i = 0; i < 3; i++) w[i] = weight("w" + i, type, random(outs[i] * in, 20 + i), outs[i], in);
        WeightTensor bias = weight("b", DType.F32, random(32, 23), 1, 32);
        WeightTensor gate = weight("gate", type, random(72 * in, 24), 72, in);
        WeightTensor up = weight("up", type, random(72 * in, 25), 72, in);
        float[] x = roundTo(type, random(tokens * in, 26));
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor[] projections;
            Tensor gateWeight, upWeight;
            if (b == gpu) {
                Tensor qkv = gpu.stackedWeight(List.of(w[0], w[1], w[2]));
                Tensor gateUp = gpu.stackedWeight(List.of(gate, up));
                projections = new Tensor[]{qkv.rows(0, 96), qkv.rows(96, 32), qkv.rows(128, 32)};
                gateWeight = gateUp.rows(0, 72);
                upWeight = gateUp.rows(72, 72);
            } else {
                assertEquals(null, cpu.stackedWeight(List.of(w[0], w[1], w[2])), "the CPU keeps weights mapped apart");
                projections = new Tensor[]{b.weight(w[0]), b.weight(w[1]), b.weight(w[2])};
                gateWeight = b.weight(gate);
                upWeight = b.weight(up);
            }
            Tensor input = activations(b, x, tokens, in);
            Tensor[] products = new Tensor[3];
            for (int j = 0; j < 3; j++) products[j] = b.allocate(tokens, outs[j]);
            b.linears(input, projections, new Tensor[]{null, b.weight(bias), null}, products);
            Tensor[] pair = {b.allocate(tokens, 32), b.allocate(tokens, 32)};
            b.linears(input, new Tensor[]{projections[1], projections[2]}, new Tensor[]{null, null}, pair);
            Tensor gated = b.allocate(tokens, 72);
            b.gatedLinear(Activation.SILU, input, gateWeight, upWeight, b.allocate(tokens, 72), gated);
            results[i] = concat(concat(b.toFloatArray(products[0]), b.toFloatArray(products[1])),
                    concat(concat(b.toFloatArray(products[2]), b.toFloatArray(pair[0])),
                            concat(b.toFloatArray(pair[1]), b.toFloatArray(gated))));
        }
        assertClose(type + " stacked weights, " + tokens + " tokens", results[0], results[1]);
    }

    /**
     * Q, K and V of one input in one call, with and without biases, and a gated MLP's first half
     * (gemv_rows3 and gemv_gated at one row; the cuBLAS products at several).
     */
    @ParameterizedTest
    @CsvSource({"BF16, 1, 256", "BF16, 3, 256", "F16, 1, 136", "BF16, 1, 4104", "BF16, 1, 8200", "BF16, 1, 4096",
            "F16, 1, 8192"})
    void fusedProjectionsMatchCpu(DType type, int tokens, int in) {
        CudaBackend gpu = gpus.get(type);
        int[] outs = {96, 40, 40};
        WeightTensor[] w = new WeightTensor[3];
        for (int i = 0; i < 3; i++) w[i] = weight("w" + i, type, random(outs[i] * in, 10 + i), outs[i], in);
        WeightTensor bias = weight("b", DType.F32, random(40, 13), 1, 40);
        WeightTensor gate = weight("gate", type, random(72 * in, 14), 72, in);
        WeightTensor up = weight("up", type, random(72 * in, 15), 72, in);
        float[] x = roundTo(type, random(tokens * in, 16));
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor input = activations(b, x, tokens, in);
            Tensor[] products = new Tensor[3];
            for (int j = 0; j < 3; j++) products[j] = b.allocate(tokens, outs[j]);
            b.linears(input, new Tensor[]{b.weight(w[0]), b.weight(w[1]), b.weight(w[2])},
                    new Tensor[]{null, b.weight(bias), null}, products);
            Tensor single = b.allocate(tokens, outs[0]);
            b.linears(input, new Tensor[]{b.weight(w[0])}, new Tensor[]{null}, new Tensor[]{single});
            Tensor gated = b.allocate(tokens, 72);
            Tensor gelu = b.allocate(tokens, 72);
            b.gatedLinear(Activation.SILU, input, b.weight(gate), b.weight(up), b.allocate(tokens, 72), gated);
            b.gatedLinear(Activation.GELU_TANH, input, b.weight(gate), b.weight(up), b.allocate(tokens, 72), gelu);
            results[i] = concat(concat(b.toFloatArray(products[0]), b.toFloatArray(products[1])),
                    concat(concat(b.toFloatArray(products[2]), b.toFloatArray(single)),
                            concat(b.toFloatArray(gated), b.toFloatArray(gelu))));
        }
        assertClose(type + " linears and gatedLinear, " + tokens + " × " + in, results[0], results[1]);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void scatterAddRowsWithRepeatedTargetsMatchesCpu(DType type) {
        CudaBackend gpu = gpus.get(type);
        float[] base = roundTo(type, random(9 * 38, 5));
        float[] source = roundTo(type, random(6 * 38, 6));
        int[] rows = {3, 0, 8, 3, 5, 3};
        float[] weights = {0.5f, -1.25f, 2f, 0.75f, 1f, -0.5f};
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor out = activations(b, base, 9, 38);
            b.scatterAddRows(activations(b, source, 6, 38), b.indices(rows), b.constant(weights, 1, 6), out);
            results[i] = b.toFloatArray(out);
        }
        assertClose(type + " scatterAddRows", results[0], results[1]);
    }

    /**
     * Step one prefills two prompts (100 and 37 tokens: two and one query tiles, several key
     * tiles, one sequence's blocks out of order); step two decodes one token of the first beside
     * a 70-token second chunk of the other, which must see its first chunk through the cache.
     * Groups above 8, and above 4 at 256, have no paged_decode: their decode token takes
     * paged_attention beside flash_prefill's chunk.
     */
    @ParameterizedTest
    @CsvSource({
            "BF16, 8, 2, 128, 0, 0, false",
            "BF16, 4, 4, 64, 0, 0, false",
            "BF16, 4, 1, 128, 40, 0, false",
            "BF16, 4, 2, 64, 0, 30, false",
            "BF16, 4, 4, 64, 0, 0, true",
            "BF16, 2, 2, 96, 0, 0, false",
            "BF16, 8, 1, 96, 40, 0, false",
            "BF16, 4, 2, 256, 0, 30, false",
            "F16, 4, 2, 256, 40, 0, false",
            "BF16, 8, 1, 256, 0, 0, false",
            "BF16, 4, 1, 256, 0, 0, true",
            "BF16, 4, 4, 80, 0, 0, false",
            "F16, 8, 1, 80, 40, 0, false",
            "BF16, 4, 2, 80, 0, 30, false",
            "BF16, 4, 1, 80, 0, 0, true",
            "BF16, 16, 1, 64, 0, 0, false",
            "F16, 8, 2, 128, 0, 0, false"})
    void attentionMatchesCpuThroughFlashPrefillAndDecode(DType type, int heads, int kvHeads, int headDim, int window,
                                                         float softcap, boolean alibi) {
        CudaBackend gpu = gpus.get(type);
        float[] slopes = alibi ? new float[]{0.5f, 0.25f, 0.125f, 0.0625f} : null;
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)),
                window, softcap, slopes);
        int blockSize = 16;
        KvCacheSpec spec = new KvCacheSpec(2, 24, blockSize, kvHeads, headDim);
        int[][] tables = {{3, 7, 9, 2, 4, 6, 8}, {1, 0, 5, 11, 13, 12, 10}};
        ForwardBatch prefill = batch(tables, blockSize, new int[]{100, 37}, new int[]{0, 0}, new int[]{100, 37});
        ForwardBatch mixed = batch(tables, blockSize, new int[]{101, 107}, new int[]{100, 37}, new int[]{1, 70});
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            try (KvCache cache = b.allocateKvCache(spec)) {
                float[] first = attend(b, type, cache, prefill, params, 30);
                float[] second = attend(b, type, cache, mixed, params, 40);
                results[i] = concat(first, second);
            }
        }
        assertClose(type + " attention " + params, results[0], results[1]);
    }

    /**
     * Decode tokens over contexts that span several partitions of paged_decode (merged within
     * their cluster of blocks, on compute capability 9.0), with a sliding window that leaves the
     * first partitions empty.
     */
    @ParameterizedTest
    @CsvSource({
            "BF16, 8, 2, 128, 0",
            "BF16, 4, 4, 64, 0",
            "BF16, 8, 1, 128, 100",
            "BF16, 8, 1, 64, 0",
            "BF16, 4, 4, 96, 0",
            "BF16, 8, 1, 96, 100",
            "F16, 4, 2, 96, 0",
            "BF16, 4, 2, 256, 0",
            "BF16, 4, 4, 256, 50",
            "BF16, 8, 1, 256, 0",
            "BF16, 4, 4, 80, 0",
            "F16, 8, 1, 80, 100",
            "F16, 4, 2, 128, 0"})
    void decodeOverContextsOfSeveralPartitionsMatchesCpu(DType type, int heads, int kvHeads, int headDim, int window) {
        decodeMatchesCpu(type, heads, kvHeads, headDim, window, new int[]{600, 300, 40});
    }

    /**
     * Decode tokens of a small batch over contexts of up to 2000 positions, which it splits into
     * one cluster's 16 partitions of 128 (merged in the cluster on compute capability 9.0); with a
     * window of 500, the first partitions of 2000 and 1100 hold no keys.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 0", "BF16, 500"})
    void decodeOverContextsOfOneClustersPartitionsMatchesCpu(DType type, int window) {
        decodeMatchesCpu(type, 8, 2, 128, window, new int[]{2000, 1100, 700});
    }

    /**
     * Decode tokens of a small batch over contexts of up to 5000 positions: ten partitions of 512,
     * merged in one cluster; with a window of 700 the first partitions of 5000 and 2600 hold no keys.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 0", "BF16, 700"})
    void decodeOverLongContextsOfOneClustersPartitionsMatchesCpu(DType type, int window) {
        decodeMatchesCpu(type, 8, 2, 128, window, new int[]{5000, 2600, 40});
    }

    /**
     * Decode tokens over contexts of more partitions than a cluster holds: 9000 positions make 18
     * partitions of 512, whose parts meet through global memory; with a window of 500 only the
     * last two of them hold keys of 9000, and the shorter contexts' parts straddle partitions.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 0", "BF16, 500"})
    void decodeOverContextsLongerThanAClusterMatchesCpu(DType type, int window) {
        decodeMatchesCpu(type, 8, 2, 128, window, new int[]{9000, 1100, 700});
    }

    private void decodeMatchesCpu(DType type, int heads, int kvHeads, int headDim, int window, int[] lengths) {
        decodeMatchesCpu(type, heads, kvHeads, headDim, window, 0f, lengths);
    }

    /**
     * Gemma's, Phi-3's and Phi-2's heads in decode over contexts short enough to merge their
     * partitions in a cluster (3 tokens × 2 KV heads), with Gemma-2's logit softcap of 50 and without.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 4, 2, 256, 50", "BF16, 4, 2, 256, 0", "F16, 8, 2, 96, 50", "BF16, 8, 1, 256, 50", "BF16, 4, 2, 80, 50",
            "F16, 4, 2, 80, 0"})
    void decodeWithSoftcapAndClusterMergeMatchesCpu(DType type, int heads, int kvHeads, int headDim, float softcap) {
        decodeMatchesCpu(type, heads, kvHeads, headDim, 0, softcap, new int[]{300, 200, 40});
    }

    /**
     * A prefill, then two decode steps: paged_decode caches each step's keys and values itself (a step
     * of single tokens only), and the second step reads the first's back through the cache.
     */
    private void decodeMatchesCpu(DType type, int heads, int kvHeads, int headDim, int window, float softcap, int[] lengths) {
        decodeMatchesCpu(type, new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)), window, softcap,
                null), lengths);
    }

    /**
     * T5's decoder self-attention: scores given a learned bias by relative position (distances clamped
     * at 20; scaled by 1/√d here, where T5 leaves them unscaled, so that the softmax is not one-hot and a
     * wrong bias shows; a prefill of the generic kernel, then decode steps through paged_decode's
     * _relative kernels over contexts of several partitions and of two keys), against the CPU, and the
     * _relative kernel is what ran; groups above 4 keep the generic kernel (the 8-of-1 case).
     */
    @ParameterizedTest
    @CsvSource({"BF16, 8, 8, 64", "F16, 12, 12, 64", "BF16, 8, 2, 128", "BF16, 16, 16, 64", "BF16, 8, 1, 64"})
    void decodeWithARelativeBiasMatchesCpu(DType type, int heads, int kvHeads, int headDim) {
        int distance = 20;
        float[] table = random(heads * (2 * distance + 1), 77);
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)), 0, 0f, null)
                .withRelativeBias(new AttentionParams.RelativeBias(table, distance));
        Kernel relative = headDim == 64 ? Kernel.PAGED_DECODE_64_G4_RELATIVE : Kernel.PAGED_DECODE_128_G4_RELATIVE;
        CudaBackend gpu = gpus.get(type);
        long before = gpu.launches(relative);
        decodeMatchesCpu(type, params, new int[]{300, 40, 1});
        long launched = gpu.launches(relative) - before;
        if (heads / kvHeads <= 4) {
            assertTrue(launched >= 2, relative + " served the two decode steps: " + launched + " launches");
        } else {
            assertEquals(0, launched, "a group of " + heads / kvHeads + " takes the generic kernel");
        }
    }

    private void decodeMatchesCpu(DType type, AttentionParams params, int[] lengths) {
        CudaBackend gpu = gpus.get(type);
        int kvHeads = params.numKvHeads(), headDim = params.headDim();
        int blockSize = 16;
        int sequences = lengths.length;
        int blocks = 0;
        for (int length : lengths) blocks += (length + 1 + blockSize) / blockSize;
        KvCacheSpec spec = new KvCacheSpec(1, blocks, blockSize, kvHeads, headDim);
        int[][] tables = tablesDownFrom(blocks - 1, blockSize, lengths, 1);
        int[] decodeContexts = Arrays.stream(lengths).map(l -> l + 1).toArray();
        int[] secondContexts = Arrays.stream(lengths).map(l -> l + 2).toArray();
        int[] ones = new int[sequences];
        Arrays.fill(ones, 1);
        ForwardBatch prefill = batch(tables, blockSize, lengths, new int[sequences], lengths);
        ForwardBatch decode = batch(tables, blockSize, decodeContexts, lengths, ones);
        ForwardBatch second = batch(tables, blockSize, secondContexts, decodeContexts, ones);
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            try (KvCache cache = b.allocateKvCache(spec)) {
                attend(b, type, cache, prefill, params, 0, 50);
                results[i] = concat(attend(b, type, cache, decode, params, 0, 60), attend(b, type, cache, second, params, 0, 70));
            }
        }
        assertClose(type + " decode over " + Arrays.toString(lengths) + " " + params, results[0], results[1]);
    }

    /**
     * A decode step of 40 sequences of 530-599 positions, 8 KV heads, with and without a sliding
     * window: the batch shape of a busy server, each (token, head) over three partitions of 256
     * positions, merged by the last block of each.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 0", "BF16, 300"})
    void decodeOfManySequencesOverSeveralPartitionsMatchesCpu(DType type, int window) {
        CudaBackend gpu = gpus.get(type);
        AttentionParams params = new AttentionParams(8, 8, 64, 0.125f, window, 0f, null);
        int blockSize = 16, sequences = 40;
        int[] lengths = new int[sequences];
        int[][] tables = new int[sequences][];
        int next = 0;
        for (int s = 0; s < sequences; s++) {
            lengths[s] = 530 + (s * 7) % 70;
            tables[s] = new int[(lengths[s] + blockSize) / blockSize];
            for (int b = 0; b < tables[s].length; b++) tables[s][b] = next++;
        }
        KvCacheSpec spec = new KvCacheSpec(1, next, blockSize, 8, 64);
        int[] decodeContexts = Arrays.stream(lengths).map(l -> l + 1).toArray();
        int[] ones = new int[sequences];
        Arrays.fill(ones, 1);
        ForwardBatch prefill = batch(tables, blockSize, lengths, new int[sequences], lengths);
        ForwardBatch decode = batch(tables, blockSize, decodeContexts, lengths, ones);
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            try (KvCache cache = b.allocateKvCache(spec)) {
                attend(b, type, cache, prefill, params, 0, 100);
                results[i] = attend(b, type, cache, decode, params, 0, 110);
            }
        }
        assertClose(type + " decode of " + sequences + " sequences " + params, results[0], results[1]);
    }

    /**
     * rotaryAttention: a prefill (rotary, cache write and flash_prefill as separate launches) then
     * two decode steps, where paged_decode rotates the queries and keys itself and caches the keys
     * and values: the second decode step reads the first's keys back through the cache, over
     * contexts of several partitions, against the CPU's rotary then attention. The table rows are
     * offset from the positions, as Phi-3's long-context rows are.
     */
    @ParameterizedTest
    @CsvSource({
            "BF16, 8, 2, 128, 128, true, 0",
            "BF16, 4, 4, 64, 32, false, 0",
            "BF16, 8, 1, 128, 64, true, 100",
            "BF16, 4, 4, 96, 96, true, 0",
            "BF16, 8, 2, 96, 96, false, 0",
            "BF16, 4, 2, 256, 256, true, 0",
            "BF16, 4, 4, 80, 32, true, 0",
            "BF16, 8, 1, 256, 256, true, 0",
            "F16, 4, 2, 128, 128, true, 0"})
    void rotaryAttentionOfDecodeStepsMatchesCpu(DType type, int heads, int kvHeads, int headDim, int rotaryDim,
                                                boolean neox, int window) {
        CudaBackend gpu = gpus.get(type);
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)),
                window, 0f, null);
        int blockSize = 16, tableOffset = 7, maxPositions = 700;
        KvCacheSpec spec = new KvCacheSpec(1, 80, blockSize, kvHeads, headDim);
        int[] lengths = {600, 300, 40};
        int[][] tables = tablesDownFrom(79, blockSize, lengths, 2);
        float[] cosSin = random(maxPositions * rotaryDim, 70);
        ForwardBatch prefill = batch(tables, blockSize, lengths, new int[]{0, 0, 0}, lengths);
        ForwardBatch first = batch(tables, blockSize, new int[]{601, 301, 41}, lengths, new int[]{1, 1, 1});
        ForwardBatch second = batch(tables, blockSize, new int[]{602, 302, 42}, new int[]{601, 301, 41},
                new int[]{1, 1, 1});
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor table = b.constant(cosSin, maxPositions, rotaryDim);
            try (KvCache cache = b.allocateKvCache(spec)) {
                float[][] steps = new float[3][];
                ForwardBatch[] batches = {prefill, first, second};
                for (int step = 0; step < 3; step++) {
                    steps[step] = attendRotated(b, type, cache, batches[step], params, table, rotaryDim, neox,
                            tableOffset, 80 + 10L * step);
                }
                results[i] = concat(steps[0], concat(steps[1], steps[2]));
            }
        }
        assertClose(type + " rotary attention " + params, results[0], results[1]);
    }

    @Test
    void decodeStepPositionPastTheRotaryTableIsReported() {
        CudaBackend gpu = gpus.get(DType.BF16);
        AttentionParams params = AttentionParams.causal(4, 2, 64);
        KvCacheSpec spec = new KvCacheSpec(1, 4, 16, 2, 64);
        ForwardBatch decode = batch(new int[][]{{0}, {1}}, 16, new int[]{3, 5}, new int[]{2, 4}, new int[]{1, 1});
        try (KvCache cache = gpu.allocateKvCache(spec)) {
            Tensor table = gpu.constant(random(4 * 64, 71), 4, 64);
            assertThrows(IndexOutOfBoundsException.class,
                    () -> attendRotated(gpu, DType.BF16, cache, decode, params, table, 64, true, 0, 72));
        }
    }

    /**
     * linearAddRmsNorm over a deep product (8192 inputs): split over four slices of K with the
     * slices summed in the norm from 2 to 128 rows, whole beyond; the residual stream and the
     * normalized output match the CPU's linear then addRmsNorm, with Gemma's weight offset too.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 2, 0", "BF16, 17, 0", "BF16, 64, 1", "BF16, 128, 0", "BF16, 129, 0", "F16, 64, 0"})
    void linearAddRmsNormOfDeepProductsMatchesCpu(DType type, int tokens, float weightOffset) {
        CudaBackend gpu = gpus.get(type);
        gpu.useDecodeFusions(false, 4);
        try {
            linearAddRmsNormMatchesCpu(gpu, type, tokens, weightOffset);
        } finally {
            gpu.resetDecodeFusions();
        }
    }

    private void linearAddRmsNormMatchesCpu(CudaBackend gpu, DType type, int tokens, float weightOffset) {
        int depth = 8192, width = 512;
        float[] values = random(width * depth, 100);
        for (int i = 0; i < values.length; i++) values[i] *= 0.02f;
        WeightTensor weight = weight("down", type, values, width, depth);
        float[] input = roundTo(type, random(tokens * depth, 101));
        float[] residual = roundTo(type, random(tokens * width, 102));
        float[] scale = random(width, 103);
        float[][] outs = new float[2][], streams = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor stream = activations(b, residual, tokens, width);
            Tensor out = b.allocate(tokens, width);
            b.linearAddRmsNorm(activations(b, input, tokens, depth), b.weight(weight), b.allocate(tokens, width), stream,
                    b.constant(scale, 1, width), 1e-5f, weightOffset, out);
            outs[i] = b.toFloatArray(out);
            streams[i] = b.toFloatArray(stream);
        }
        assertClose(type + " residual after linearAddRmsNorm, T=" + tokens, streams[0], streams[1]);
        assertClose(type + " linearAddRmsNorm, T=" + tokens, outs[0], outs[1]);
    }

    /**
     * A captured pass of linearAddRmsNorm's split form: on a replay the product is only compared
     * with the capture's, and the norm's launch still follows it, so the graph is kept and launched
     * (not given up for an eager pass), and each run, on new inputs, matches the CPU.
     */
    @Test
    void splitLinearAddRmsNormReplaysAsCaptured() {
        CudaBackend gpu = gpus.get(DType.BF16);
        gpu.useDecodeFusions(false, 4);
        try {
            int tokens = 64, depth = 8192, width = 512;
            float[] values = random(width * depth, 110);
            for (int i = 0; i < values.length; i++) values[i] *= 0.02f;
            WeightTensor weight = weight("down", DType.BF16, values, width, depth);
            float[] scale = random(width, 111);
            Tensor w = gpu.weight(weight), normWeight = gpu.constant(scale, 1, width);
            Tensor x = gpu.allocate(tokens, depth), stream = gpu.allocate(tokens, width);
            Tensor product = gpu.allocate(tokens, width), out = gpu.allocate(tokens, width);
            Supplier<Tensor> pass = () -> {
                gpu.linearAddRmsNorm(x, w, product, stream, normWeight, 1e-5f, 0f, out);
                return out;
            };
            pass.get();  // eager, so that the partials' buffer is made before the capture
            int graphs = gpu.capturedGraphs();
            long launches = gpu.graphLaunches();
            int[] rows = new int[tokens];
            Arrays.setAll(rows, i -> i);
            for (int run = 0; run < 2; run++) {
                float[] input = roundTo(DType.BF16, random(tokens * depth, 112 + run));
                float[] residual = roundTo(DType.BF16, random(tokens * width, 114 + run));
                gpu.embedding(gpu.constant(input, tokens, depth), gpu.indices(rows), x);
                gpu.embedding(gpu.constant(residual, tokens, width), gpu.indices(rows), stream);
                float[] got = gpu.toFloatArray(gpu.runCaptured("split linearAddRmsNorm", pass));
                Tensor cpuStream = activations(cpu, residual, tokens, width), cpuOut = cpu.allocate(tokens, width);
                cpu.linearAddRmsNorm(activations(cpu, input, tokens, depth), cpu.weight(weight), cpu.allocate(tokens, width),
                        cpuStream, cpu.constant(scale, 1, width), 1e-5f, 0f, cpuOut);
                assertClose("split linearAddRmsNorm, " + (run == 0 ? "captured" : "replayed"), cpu.toFloatArray(cpuOut), got);
            }
            assertEquals(graphs + 1, gpu.capturedGraphs(), "the pass was captured once and kept");
            assertEquals(launches + 2, gpu.graphLaunches(), "the capture and the replay launched the graph");
        } finally {
            gpu.resetDecodeFusions();
        }
    }

    /**
     * projectedRotaryAttention over q, k and v weights stacked in one tensor (as a checkpoint's fused
     * qkv or the backend's stacked upload), for a prompt of three sequences and then two decode steps
     * of all three: on a decode step the GPU reads the queries, keys and values from the one
     * product's columns. Its outputs equal, bit for bit, those of the GPU's linears then
     * rotaryAttention on a cache of their own, and match the CPU's.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 8, 2, 128, 128, true", "BF16, 4, 4, 64, 32, false", "F16, 8, 1, 128, 64, true"})
    void projectedRotaryAttentionOfDecodeStepsMatchesCpu(DType type, int heads, int kvHeads, int headDim, int rotaryDim,
                                                         boolean neox) {
        CudaBackend gpu = gpus.get(type);
        gpu.useDecodeFusions(true, 1);
        try {
            projectedRotaryAttentionMatchesCpu(gpu, type, heads, kvHeads, headDim, rotaryDim, neox);
        } finally {
            gpu.resetDecodeFusions();
        }
    }

    private void projectedRotaryAttentionMatchesCpu(CudaBackend gpu, DType type, int heads, int kvHeads, int headDim,
                                                    int rotaryDim, boolean neox) {
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)), 0, 0f, null);
        int blockSize = 16, hidden = 256, maxPositions = 400;
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim, stackedRows = qWidth + 2 * kvWidth;
        KvCacheSpec spec = new KvCacheSpec(1, 40, blockSize, kvHeads, headDim);
        int[] lengths = {300, 130, 20};
        int[][] tables = tablesDownFrom(39, blockSize, lengths, 2);
        float[] values = random(stackedRows * hidden, 90);
        for (int i = 0; i < values.length; i++) values[i] *= 0.1f;
        WeightTensor stacked = weight("qkv", type, values, stackedRows, hidden);
        float[] cosSin = random(maxPositions * rotaryDim, 91);
        ForwardBatch[] steps = {batch(tables, blockSize, lengths, new int[]{0, 0, 0}, lengths),
                batch(tables, blockSize, new int[]{301, 131, 21}, lengths, new int[]{1, 1, 1}),
                batch(tables, blockSize, new int[]{302, 132, 22}, new int[]{301, 131, 21}, new int[]{1, 1, 1})};
        float[][] results = new float[3][];
        Backend[] backends = {cpu, gpu, gpu};
        for (int i = 0; i < 3; i++) {
            Backend b = backends[i];
            boolean composed = i == 2;
            Tensor w = b.weight(stacked);
            Tensor[] weights = {w.rows(0, qWidth), w.rows(qWidth, kvWidth), w.rows(qWidth + kvWidth, kvWidth)};
            Tensor table = b.constant(cosSin, maxPositions, rotaryDim);
            try (KvCache cache = b.allocateKvCache(spec)) {
                float[] all = new float[0];
                for (int step = 0; step < steps.length; step++) {
                    ForwardBatch batch = steps[step];
                    int tokens = batch.numTokens();
                    Tensor x = activations(b, roundTo(type, random(tokens * hidden, 92 + step)), tokens, hidden);
                    Tensor[] qkv = {b.allocate(tokens, qWidth), b.allocate(tokens, kvWidth), b.allocate(tokens, kvWidth)};
                    Tensor out = b.allocate(tokens, qWidth);
                    Tensor rows = b.indices(batch.positions());
                    if (composed) {
                        b.linears(x, weights, new Tensor[3], qkv);
                        b.rotaryAttention(qkv[0], qkv[1], qkv[2], rotaryDim, neox, table, rows, cache, 0, batch, params, out);
                    } else {
                        b.projectedRotaryAttention(x, weights, qkv, rotaryDim, neox, table, rows, cache, 0, batch, params, out);
                    }
                    all = concat(all, b.toFloatArray(out));
                }
                results[i] = all;
            }
        }
        assertClose(type + " projected rotary attention " + params, results[0], results[1]);
        assertArrayEquals(results[2], results[1], "the GPU's one product read in columns gives what its split gives");
    }

    /**
     * Block tables for sequences of these lengths with room for {@code spare} more positions each,
     * the blocks handed out downwards from {@code lastBlock} (against the pool's order).
     */
    private static int[][] tablesDownFrom(int lastBlock, int blockSize, int[] lengths, int spare) {
        int[][] tables = new int[lengths.length][];
        int next = lastBlock;
        for (int s = 0; s < lengths.length; s++) {
            tables[s] = new int[(lengths[s] + spare + blockSize) / blockSize];
            for (int b = 0; b < tables[s].length; b++) tables[s][b] = next--;
        }
        return tables;
    }

    private float[] attendRotated(Backend b, DType type, KvCache cache, ForwardBatch batch, AttentionParams params,
                                  Tensor cosSin, int rotaryDim, boolean neox, int tableOffset, long seed) {
        int tokens = batch.numTokens();
        int qWidth = params.numHeads() * params.headDim(), kvWidth = params.numKvHeads() * params.headDim();
        int[] rows = batch.positions().clone();
        for (int t = 0; t < rows.length; t++) rows[t] += tableOffset;
        Tensor out = b.allocate(tokens, qWidth);
        b.rotaryAttention(activations(b, roundTo(type, random(tokens * qWidth, seed)), tokens, qWidth),
                activations(b, roundTo(type, random(tokens * kvWidth, seed + 1)), tokens, kvWidth),
                activations(b, roundTo(type, random(tokens * kvWidth, seed + 2)), tokens, kvWidth),
                rotaryDim, neox, cosSin, b.indices(rows), cache, 0, batch, params, out);
        return b.toFloatArray(out);
    }

    /**
     * Multi-head latent attention over a 16-bit latent cache: prompts of 100 and 37 tokens (blocks
     * out of order), then a decode token of the first beside a 70-token second chunk of the other.
     */
    @ParameterizedTest
    @CsvSource({
            "BF16, 4, 512, 64",    // DeepSeek-V2/V3's kv_lora_rank and qk_rope_head_dim
            "BF16, 8, 32, 16",
            "F16, 4, 512, 64"})
    void latentAttentionMatchesCpuForPrefillAndDecode(DType type, int heads, int rank, int ropeDim) {
        CudaBackend gpu = gpus.get(type);
        AttentionParams params = new AttentionParams(heads, 1, rank, (float) (1 / Math.sqrt(rank + ropeDim)),
                0, 0f, null);
        int blockSize = 16;
        KvCacheSpec spec = KvCacheSpec.latent(2, 24, blockSize, rank + ropeDim);
        int[][] tables = {{3, 7, 9, 2, 4, 6, 8}, {1, 0, 5, 11, 13, 12, 10}};
        ForwardBatch prefill = batch(tables, blockSize, new int[]{100, 37}, new int[]{0, 0}, new int[]{100, 37});
        ForwardBatch mixed = batch(tables, blockSize, new int[]{101, 107}, new int[]{100, 37}, new int[]{1, 70});
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            try (KvCache cache = b.allocateKvCache(spec)) {
                float[] first = attendLatent(b, type, cache, prefill, params, ropeDim, 70);
                float[] second = attendLatent(b, type, cache, mixed, params, ropeDim, 80);
                results[i] = concat(first, second);
            }
        }
        assertClose(type + " latent attention " + params + " rope " + ropeDim, results[0], results[1]);
    }

    private float[] attendLatent(Backend b, DType type, KvCache cache, ForwardBatch batch, AttentionParams params,
                                 int ropeDim, long seed) {
        int tokens = batch.numTokens();
        int heads = params.numHeads(), rank = params.headDim();
        Tensor out = b.allocate(tokens, heads * rank);
        b.latentAttention(activations(b, roundTo(type, random(tokens * heads * rank, seed)), tokens, heads * rank),
                activations(b, roundTo(type, random(tokens * heads * ropeDim, seed + 1)), tokens, heads * ropeDim),
                activations(b, roundTo(type, random(tokens * rank, seed + 2)), tokens, rank),
                activations(b, roundTo(type, random(tokens * ropeDim, seed + 3)), tokens, ropeDim),
                cache, 1, batch, params, out);
        return b.toFloatArray(out);
    }

    /**
     * Encoder sequences of 1, 100, 7 and 33 tokens, each attending over its own keys only (encoder_flash's
     * 64-token tiles straddle them); 80 is Qwen2-VL's vision heads.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 12, 12, 64", "BF16, 4, 2, 32", "F16, 8, 8, 64", "BF16, 16, 16, 80", "F16, 8, 4, 128"})
    void encoderAttentionMatchesCpu(DType type, int heads, int kvHeads, int headDim) {
        encoderAttentionMatchesCpu(type, AttentionParams.causal(heads, kvHeads, headDim));
    }

    /**
     * T5's encoder: a learned bias by the distance from query to key within each sequence, both ways
     * (clamped at 20, so that sequences of 100 and 33 reach the clamp), through encoder_flash's
     * _relative kernels at 64 and 128, and the generic kernel at 32; scores scaled so that the softmax
     * is not one-hot and a wrong bias shows.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 8, 8, 64", "F16, 12, 12, 64", "BF16, 4, 4, 128", "BF16, 4, 4, 32"})
    void encoderAttentionWithARelativeBiasMatchesCpu(DType type, int heads, int kvHeads, int headDim) {
        int distance = 20;
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)), 0, 0f, null)
                .withRelativeBias(new AttentionParams.RelativeBias(random(heads * (2 * distance + 1), 78), distance));
        CudaBackend gpu = gpus.get(type);
        Kernel relative = headDim == 128 ? Kernel.ENCODER_FLASH_128_RELATIVE : Kernel.ENCODER_FLASH_64_RELATIVE;
        long before = gpu.launches(relative);
        encoderAttentionMatchesCpu(type, params);
        boolean tiled = headDim == 64 || headDim == 128;
        assertEquals(tiled, gpu.launches(relative) > before, relative + (tiled ? " served" : " did not serve") + " heads of " + headDim);
    }

    private void encoderAttentionMatchesCpu(DType type, AttentionParams params) {
        CudaBackend gpu = gpus.get(type);
        int heads = params.numHeads(), kvHeads = params.numKvHeads(), headDim = params.headDim();
        ForwardBatch batch = CudaKernelsTest.encoderBatch(1, 100, 7, 33);
        int tokens = batch.numTokens();
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        float[] q = roundTo(type, random(tokens * qWidth, 90));
        float[] k = roundTo(type, random(tokens * kvWidth, 91));
        float[] v = roundTo(type, random(tokens * kvWidth, 92));
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor out = b.allocate(tokens, qWidth);
            b.encoderAttention(activations(b, q, tokens, qWidth), activations(b, k, tokens, kvWidth),
                    activations(b, v, tokens, kvWidth), batch, params, out);
            results[i] = b.toFloatArray(out);
        }
        assertClose(type + " encoder attention " + params, results[0], results[1]);
    }

    /**
     * Cross-attention of queries of one token a sequence (decode steps) and of several (a decoder
     * prompt) over ranges of 1 to 700 rows: through paged_decode where every range starts at a
     * multiple of 16 (the kept rows' alignment; 700 rows span several partitions), through the
     * generic kernel where one does not (misaligned by 5).
     */
    @ParameterizedTest
    @CsvSource({"BF16, 16, 16, 64, 0", "F16, 16, 16, 64, 0", "BF16, 8, 2, 128, 0", "F16, 12, 4, 96, 0", "BF16, 16, 16, 64, 5"})
    void crossAttentionMatchesCpu(DType type, int heads, int kvHeads, int headDim, int misalignment) {
        CudaBackend gpu = gpus.get(type);
        AttentionParams params = AttentionParams.causal(heads, kvHeads, headDim);
        int rows = 1600, longest = 1024;
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        float[] k = roundTo(type, random(rows * kvWidth, 94));
        float[] v = roundTo(type, random(rows * kvWidth, 95));
        for (ForwardBatch batch : List.of(CudaKernelsTest.encoderBatch(1, 1, 1, 1), CudaKernelsTest.encoderBatch(1, 6, 3, 2))) {
            int[] ranges = {misalignment, 512, 528, 1, 544, 300, 848, 700};
            int tokens = batch.numTokens();
            float[] q = roundTo(type, random(tokens * qWidth, 93 + tokens));
            float[][] results = new float[2][];
            Backend[] backends = {cpu, gpu};
            long generic = gpu.launches(Kernel.CROSS_ATTENTION);
            for (int i = 0; i < 2; i++) {
                Backend b = backends[i];
                Tensor out = b.allocate(tokens, qWidth);
                b.crossAttention(activations(b, q, tokens, qWidth), activations(b, k, rows, kvWidth), activations(b, v, rows, kvWidth),
                        ranges, longest, batch, params, out);
                results[i] = b.toFloatArray(out);
            }
            assertEquals(misalignment != 0, gpu.launches(Kernel.CROSS_ATTENTION) > generic,
                    "the generic cross_attention kernel " + (misalignment != 0 ? "served" : "was left for paged_decode in") + " this case");
            assertClose(type + " cross attention of " + tokens + " tokens, " + params + ", rows misaligned by " + misalignment,
                    results[0], results[1]);
        }
    }

    private float[] attend(Backend b, DType type, KvCache cache, ForwardBatch batch, AttentionParams params, long seed) {
        return attend(b, type, cache, batch, params, 1, seed);
    }

    private float[] attend(Backend b, DType type, KvCache cache, ForwardBatch batch, AttentionParams params, int layer,
                           long seed) {
        int tokens = batch.numTokens();
        int qWidth = params.numHeads() * params.headDim(), kvWidth = params.numKvHeads() * params.headDim();
        Tensor out = b.allocate(tokens, qWidth);
        b.attention(activations(b, roundTo(type, random(tokens * qWidth, seed)), tokens, qWidth),
                activations(b, roundTo(type, random(tokens * kvWidth, seed + 1)), tokens, kvWidth),
                activations(b, roundTo(type, random(tokens * kvWidth, seed + 2)), tokens, kvWidth),
                cache, layer, batch, params, out);
        return b.toFloatArray(out);
    }

    private static void assertClose(String what, float[] expected, float[] actual) {
        CudaTestData.assertClose(what, expected, actual, TOLERANCE);
    }

    private WeightTensor weight(String name, DType type, float[] values, int rows, int cols) {
        return CudaTestData.weight(arena, name, type, values, rows, cols);
    }
}
