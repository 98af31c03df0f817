package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;
import dev.jvllm.weights.WeightsException;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Projections read by one input (q/k/v, gate/up) load as row blocks of one stacked weight where
 * the backend stacks, and each on its own where it does not (the CPU); the model computes the
 * same either way.
 */
class SiblingProjectionsTest {

    private static final int IN = 6;
    private static final List<String> NAMES = List.of("q_proj", "k_proj", "v_proj");

    private static RandomCheckpoint checkpoint(int kRows) {
        RandomCheckpoint checkpoint = new RandomCheckpoint(7);
        checkpoint.random("q_proj.weight", 1, 4, IN);
        checkpoint.random("k_proj.weight", 1, kRows, IN);
        checkpoint.random("v_proj.weight", 1, 2, IN);
        for (String name : NAMES) checkpoint.random(name + ".bias", 1, name.equals("q_proj") ? 4 : name.equals("k_proj") ? kRows : 2);
        return checkpoint;
    }

    /** The CPU backend, except that it stacks weights (as the CUDA backend does) by copying their values. */
    private static Backend stacking(Backend cpu) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("stackedWeight")) {
                        @SuppressWarnings("unchecked") List<WeightTensor> parts = (List<WeightTensor>) args[0];
                        int rows = parts.stream().mapToInt(p -> (int) p.dim(0)).sum();
                        float[] values = new float[rows * IN];
                        int at = 0;
                        for (WeightTensor part : parts) {
                            float[] v = WeightValues.floats(part);
                            System.arraycopy(v, 0, values, at, v.length);
                            at += v.length;
                        }
                        return cpu.constant(values, rows, IN);
                    }
                    try {
                        return method.invoke(cpu, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    @Test
    void stackedRowBlocksComputeWhatSeparateWeightsDo() {
        try (RandomCheckpoint checkpoint = checkpoint(2); Backend cpu = Backends.create("cpu", BackendOptions.defaults())) {
            Backend stacker = stacking(cpu);
            Linear[] separate = Linear.loadSiblings(WeightScope.root(checkpoint, cpu), NAMES, IN, true, 4, 2, 2);
            Linear[] stacked = Linear.loadSiblings(WeightScope.root(checkpoint, stacker), NAMES, IN, true, 4, 2, 2);
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(checkpoint.values(NAMES.get(i) + ".weight"), cpu.toFloatArray(separate[i].weight()));
                assertArrayEquals(checkpoint.values(NAMES.get(i) + ".weight"), cpu.toFloatArray(stacked[i].weight()),
                        NAMES.get(i) + " as a row block of the stacked weight");
                assertArrayEquals(checkpoint.values(NAMES.get(i) + ".bias"), cpu.toFloatArray(stacked[i].bias()));
            }
            Tensor x = cpu.constant(new float[]{1, -2, 0.5f, 3, 0, -1, 2, 2, -0.5f, 1, 1, 0}, 2, IN);
            Tensor[] a = {cpu.allocate(2, 4), cpu.allocate(2, 2), cpu.allocate(2, 2)};
            Tensor[] b = {cpu.allocate(2, 4), cpu.allocate(2, 2), cpu.allocate(2, 2)};
            Linear.applyAll(cpu, x, separate, a);
            Linear.applyAll(cpu, x, stacked, b);
            for (int i = 0; i < 3; i++) assertArrayEquals(cpu.toFloatArray(a[i]), cpu.toFloatArray(b[i]), 1e-6f);
        }
    }

    @Test
    void theCpuKeepsEachWeightApart() {
        try (RandomCheckpoint checkpoint = checkpoint(2); Backend cpu = Backends.create("cpu", BackendOptions.defaults())) {
            Tensor[] weights = WeightScope.root(checkpoint, cpu).siblingWeights(NAMES, IN, 4, 2, 2);
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(WeightValues.floats(checkpoint.get(NAMES.get(i) + ".weight")), cpu.toFloatArray(weights[i]), 0f);
            }
        }
    }

    @Test
    void aPartOfTheWrongShapeIsNamedBeforeAnythingIsStacked() {
        try (RandomCheckpoint checkpoint = checkpoint(3); Backend cpu = Backends.create("cpu", BackendOptions.defaults())) {
            WeightsException e = assertThrows(WeightsException.class,
                    () -> Linear.loadSiblings(WeightScope.root(checkpoint, stacking(cpu)), NAMES, IN, false, 4, 2, 2));
            assertTrue(e.getMessage().contains("k_proj.weight") && e.getMessage().contains("[3, 6]"), e.getMessage());
        }
    }
}
