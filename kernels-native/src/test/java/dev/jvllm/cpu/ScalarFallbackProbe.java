package dev.jvllm.cpu;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Tensor;

/**
 * Run in a child JVM by {@link CpuBackendTest} without {@code --add-modules jdk.incubator.vector}:
 * creates the backend through its provider, runs one linear and prints which loops it used.
 * Exits with 1 if the result is wrong.
 */
public final class ScalarFallbackProbe {

    private ScalarFallbackProbe() {
    }

    public static void main(String[] args) {
        try (Backend backend = new CpuBackendProvider().create(BackendOptions.defaults())) {
            float[] w = {1, 2, 3, 4, 5, 6};
            Tensor out = backend.allocate(1, 2);
            backend.linear(backend.constant(new float[]{1, 1, 2}, 1, 3), backend.constant(w, 2, 3), null, out);
            float[] result = backend.toFloatArray(out);
            System.out.println("loops: " + ((CpuBackend) backend).kernelDescription());
            System.out.println("vector module: " + ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent());
            if (result[0] != 9f || result[1] != 21f) {
                System.out.println("wrong result " + result[0] + ", " + result[1]);
                System.exit(1);
            }
        }
    }
}
