package dev.jvllm.models;

import dev.jvllm.cpu.CpuBackend;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.PackedQkv;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.Int4Weight;
import dev.jvllm.weights.PackedIntCheckpoint;
import dev.jvllm.weights.PackedIntCheckpoint.Format;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;
import dev.jvllm.weights.WeightsException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How a model's weights reach a backend that multiplies by 4-bit weights as they are (the CUDA
 * backend): GPTQ's and AWQ's projections as {@link Int4Weight}s, stacked siblings as one, their host
 * memory freed after; other weights, and 4-bit weights without a 4-bit form, decoded as before. The
 * backend here is the CPU's, taking each 4-bit weight as the constant of its values, so the values
 * that arrive are compared with the decoded checkpoint's.
 */
class Int4WeightRoutingTest {

    private static final int OUT = 32, IN = 128;

    @TempDir
    Path work;

    private final Backend cpu = new CpuBackend(new BackendOptions(1));
    private final List<Int4Weight> received = new ArrayList<>();
    private final List<String> calls = new ArrayList<>();
    /** Whether the backend stacks 4-bit weights (LoRA's does not). */
    private boolean stacksInt4 = true;

    @AfterEach
    void close() {
        cpu.close();
    }

    /** The CPU backend as one that reads 4-bit weights (as constants of their values) and stacks weights. */
    private Backend readingInt4(boolean reads) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class},
                (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "readsInt4Weights" -> {
                            return reads;
                        }
                        case "int4Weight" -> {
                            Int4Weight w = (Int4Weight) args[0];
                            calls.add("int4 " + w.name());
                            received.add(w);
                            return cpu.constant(values(List.of(w)), w.rows(), w.cols());
                        }
                        case "stackedInt4Weight" -> {
                            @SuppressWarnings("unchecked") List<Int4Weight> parts = (List<Int4Weight>) args[0];
                            calls.add("stacked int4 " + parts.size());
                            received.addAll(parts);
                            return stacksInt4 ? cpu.constant(values(parts), parts.stream().mapToInt(Int4Weight::rows).sum(), IN) : null;
                        }
                        case "stackedWeight" -> {
                            @SuppressWarnings("unchecked") List<WeightTensor> parts = (List<WeightTensor>) args[0];
                            calls.add("stacked decoded " + parts.size());
                            return null;
                        }
                        case "weight" -> calls.add("decoded " + ((WeightTensor) args[0]).name());
                        default -> {
                        }
                    }
                    try {
                        return method.invoke(cpu, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    private static float[] values(List<Int4Weight> parts) {
        int rows = parts.stream().mapToInt(Int4Weight::rows).sum();
        float[] out = new float[rows * IN];
        int row = 0;
        for (Int4Weight w : parts) {
            for (int r = 0; r < w.rows(); r++, row++) {
                for (int k = 0; k < IN; k++) out[row * IN + k] = w.value(r, k);
            }
        }
        return out;
    }

    private Path packed(String dir, int group, boolean actOrder) throws Exception {
        Path model = Files.createDirectories(work.resolve(dir));
        PackedIntCheckpointTest.writePacked(model, Format.GPTQ, 4, OUT, IN, group, actOrder, new Random(5),
                "l.q_proj", "l.k_proj", "l.v_proj");
        return model;
    }

    @Test
    void fourBitProjectionsArriveAsFourBitWeightsHoldingTheDecodedValuesAndAreFreedAfter() throws Exception {
        Path model = packed("act-order", 64, true);
        try (PackedIntCheckpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, Format.GPTQ, 4, 64)) {
            WeightScope layer = WeightScope.root(checkpoint, readingInt4(true)).child("l");
            Tensor q = layer.child("q_proj").tensor("weight", OUT, IN);
            assertEquals(List.of("int4 l.q_proj.weight"), calls);
            assertArrayEquals(WeightValues.floats(checkpoint.get("l.q_proj.weight")), cpu.toFloatArray(q), 1e-6f);

            calls.clear();
            Tensor[] siblings = layer.siblingWeights(List.of("q_proj", "k_proj", "v_proj"), IN, OUT, OUT, OUT);
            assertEquals(List.of("stacked int4 3"), calls);
            for (int i = 0; i < 3; i++) {
                String name = "l." + List.of("q_proj", "k_proj", "v_proj").get(i) + ".weight";
                assertArrayEquals(WeightValues.floats(checkpoint.get(name)), cpu.toFloatArray(siblings[i]), 1e-6f, name);
            }
            assertEquals(4, received.size());
            for (Int4Weight w : received) assertFalse(w.words().scope().isAlive(), w.name() + "'s packed words are freed");
        }
    }

    @Test
    void siblingsABackendDoesNotStackArriveEachFromTheSameRepack() throws Exception {
        stacksInt4 = false;
        Path model = packed("unstacked", 64, true);
        try (PackedIntCheckpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, Format.GPTQ, 4, 64)) {
            WeightScope layer = WeightScope.root(checkpoint, readingInt4(true)).child("l");
            Linear[] siblings = Linear.loadSiblings(layer, List.of("q_proj", "k_proj", "v_proj"), IN, false, OUT, OUT, OUT);
            assertEquals(List.of("stacked int4 3", "int4 l.q_proj.weight", "int4 l.k_proj.weight", "int4 l.v_proj.weight"), calls);
            for (int i = 0; i < 3; i++) {
                assertSame(received.get(i), received.get(3 + i), "each part is repacked once");
                assertArrayEquals(WeightValues.floats(checkpoint.get(received.get(i).name())), cpu.toFloatArray(siblings[i].weight()), 1e-6f);
                assertFalse(received.get(i).words().scope().isAlive(), received.get(i).name() + "'s packed words are freed");
            }
        }
    }

    @Test
    void aFourBitWeightOfAnotherShapeIsRefusedNamingIt() throws Exception {
        Path model = packed("plain", 128, false);
        try (PackedIntCheckpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, Format.GPTQ, 4, 128)) {
            WeightScope layer = WeightScope.root(checkpoint, readingInt4(true)).child("l");
            var wrong = assertThrows(WeightsException.class, () -> layer.child("q_proj").tensor("weight", OUT, IN / 2));
            assertTrue(wrong.getMessage().contains("'l.q_proj.weight'") && wrong.getMessage().contains("[32, 64]"), wrong.getMessage());
            var wrongPart = assertThrows(WeightsException.class, () -> layer.siblingWeights(List.of("q_proj", "k_proj"), IN, OUT, 16));
            assertTrue(wrongPart.getMessage().contains("'l.k_proj.weight'"), wrongPart.getMessage());
            for (Int4Weight w : received) assertFalse(w.words().scope().isAlive());
        }
    }

    @Test
    void weightsWithoutAFourBitFormAndBackendsThatDoNotReadThemGetDecodedWeights() throws Exception {
        Path narrow = packed("groups-of-32", 32, false);
        try (PackedIntCheckpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(narrow), DType.F32, Format.GPTQ, 4, 32)) {
            WeightScope layer = WeightScope.root(checkpoint, readingInt4(true)).child("l");
            layer.siblingWeights(List.of("q_proj", "k_proj", "v_proj"), IN, OUT, OUT, OUT);
            assertEquals(List.of("stacked decoded 3", "decoded l.q_proj.weight", "decoded l.k_proj.weight", "decoded l.v_proj.weight"), calls,
                    "groups of 32 inputs are decoded and stacked as any weights (this backend stacks no decoded weights)");
        }
        calls.clear();
        Path model = packed("cpu", 64, false);
        try (PackedIntCheckpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, Format.GPTQ, 4, 64)) {
            WeightScope.root(checkpoint, readingInt4(false)).child("l").child("v_proj").tensor("weight", OUT, IN);
            assertEquals(List.of("decoded l.v_proj.weight"), calls);
        }
    }

    @Test
    void askingWhetherAFourBitWeightExistsDecodesNothingAndADecodedScopeDecodes() throws Exception {
        Path model = packed("has", 64, false);
        try (PackedIntCheckpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.BF16, Format.GPTQ, 4, 64)) {
            WeightScope layer = WeightScope.root(checkpoint, readingInt4(true)).child("l");
            assertTrue(layer.has("q_proj.weight"));
            assertFalse(layer.has("o_proj.weight"));
            assertEquals(0, checkpoint.releaseDecoded(), "bytes decoded by has()");
            // A mixture's experts: kernels that read unquantized weights only.
            layer.decoded().child("k_proj").tensor("weight", OUT, IN);
            assertEquals(List.of("decoded l.k_proj.weight"), calls);
            layer.decoded().siblingWeights(List.of("q_proj", "v_proj"), IN, OUT, OUT);
            assertEquals(List.of("decoded l.k_proj.weight", "stacked decoded 2", "decoded l.q_proj.weight", "decoded l.v_proj.weight"), calls);
        }
    }

    @Test
    void aFusedFourBitWeightSlicedOffTileBoundariesIsDecoded() throws Exception {
        Path model = Files.createDirectories(work.resolve("fused"));
        PackedIntCheckpointTest.writePacked(model, Format.GPTQ, 4, OUT, IN, 64, false, new Random(9), "l.qkv");
        try (PackedIntCheckpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, Format.GPTQ, 4, 64)) {
            WeightScope layer = WeightScope.root(checkpoint, readingInt4(true)).child("l");
            Linear[] onTiles = Linear.loadRowBlocks(layer, "qkv", IN, 16, 16);
            assertEquals(List.of("int4 l.qkv.weight"), calls);
            Linear[] offTiles = Linear.loadRowBlocks(layer, "qkv", IN, 24, 8);
            assertEquals(List.of("int4 l.qkv.weight", "decoded l.qkv.weight"), calls, "blocks of 24 and 8 rows are not whole tiles");
            float[] all = WeightValues.floats(checkpoint.get("l.qkv.weight"));
            assertArrayEquals(Arrays.copyOfRange(all, 24 * IN, 32 * IN), cpu.toFloatArray(offTiles[1].weight()), 1e-6f);
            assertArrayEquals(Arrays.copyOfRange(all, 16 * IN, 32 * IN), cpu.toFloatArray(onTiles[1].weight()), 1e-6f);
            PackedQkv.blocks(8, 8, 16).load(layer, "qkv", IN, false);
            assertEquals("decoded l.qkv.weight", calls.getLast());
        }
    }
}
