package dev.jvllm.spi;

import dev.jvllm.weights.DType;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The calls that let a backend fold a pre-norm layer's RMSNorms and residual adds into its
 * products default to the calls they stand for, in order and on the same tensors, so a backend
 * that does not override them (the CPU's) computes what it computed before.
 */
class FusedNormDefaultsTest {

    private static final Set<String> FUSED = Set.of("rmsNormLinears", "rmsNormGatedLinear", "linearAdd",
            "linearAddRmsNorm");

    private final List<String> calls = new ArrayList<>();
    private final Backend backend = recording(calls);

    @Test
    void rmsNormLinearsNormalizesThenRunsTheProductsOnTheNormalizedRows() {
        backend.rmsNormLinears(t("x"), t("norm"), 1e-6f, 1f, t("normed"), new Tensor[]{t("q"), t("k"), t("v")},
                new Tensor[]{null, t("kBias"), null}, new Tensor[]{t("qOut"), t("kOut"), t("vOut")});
        assertEquals(List.of("rmsNorm(x, norm, 1.0E-6, 1.0, normed)",
                "linears(normed, [q, k, v], [null, kBias, null], [qOut, kOut, vOut])"), calls);
    }

    @Test
    void rmsNormGatedLinearNormalizesThenRunsTheGatedProductOnTheNormalizedRows() {
        backend.rmsNormGatedLinear(Activation.SILU, t("x"), t("norm"), 1e-5f, 0f, t("normed"), t("gate"), t("up"),
                t("upScratch"), t("out"));
        assertEquals(List.of("rmsNorm(x, norm, 1.0E-5, 0.0, normed)",
                "gatedLinear(SILU, normed, gate, up, upScratch, out)"), calls);
    }

    @Test
    void linearAddRunsTheProductIntoItsScratchThenAddsThatToTheResidual() {
        backend.linearAdd(t("x"), t("w"), t("bias"), t("product"), t("residual"));
        assertEquals(List.of("linear(x, w, bias, product)", "add(residual, product, residual)"), calls);
    }

    @Test
    void linearAddRmsNormAddsAndNormalizesInOnePassAndSaysTheNormIsApplied() {
        boolean applied = backend.linearAddRmsNorm(t("x"), t("w"), null, t("product"), t("residual"), t("norm"), 1e-6f,
                0f, t("normed"));
        assertTrue(applied, "the composed default leaves no norm pending");
        assertEquals(List.of("linear(x, w, null, product)", "addRmsNorm(residual, product, norm, 1.0E-6, 0.0, normed)"),
                calls);
    }

    /** A backend that notes each call with its arguments; the fused calls run their defaults through it. */
    private static Backend recording(List<String> calls) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class},
                (proxy, method, args) -> {
                    if (FUSED.contains(method.getName())) {
                        return InvocationHandler.invokeDefault(proxy, method, args);
                    }
                    calls.add(Arrays.stream(args).map(a -> a instanceof Object[] array ? Arrays.toString(array)
                            : String.valueOf(a)).collect(Collectors.joining(", ", method.getName() + "(", ")")));
                    return null;
                });
    }

    private static Tensor t(String name) {
        return new Named(name);
    }

    /** A tensor that is only its name: the defaults pass tensors on without reading them. */
    private record Named(String name) implements Tensor {

        @Override
        public DType dtype() {
            return DType.F32;
        }

        @Override
        public int rows() {
            return 1;
        }

        @Override
        public int cols() {
            return 1;
        }

        @Override
        public Tensor rows(int start, int count) {
            throw new UnsupportedOperationException();
        }

        @Override
        public Tensor reshape(int rows, int cols) {
            throw new UnsupportedOperationException();
        }

        @Override
        public String toString() {
            return name;
        }
    }
}
