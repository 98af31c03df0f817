package dev.jvllm.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Loads the kernel modules into the current context on first use and launches their kernels on
 * one stream. Arguments are given in the kernel's parameter order: {@link Integer} for int,
 * {@link Long} for long long, {@link Float} for float, a {@link CudaTensor} (or null) for a pointer.
 */
final class KernelLauncher implements AutoCloseable {

    private final CudaDriver driver;
    private final KernelCompiler compiler;
    private final MemorySegment stream;
    private final Map<String, MemorySegment> modules = new HashMap<>();
    private final Map<Kernel, MemorySegment> functions = new EnumMap<>(Kernel.class);

    KernelLauncher(CudaDriver driver, KernelCompiler compiler, MemorySegment stream) {
        this.driver = driver;
        this.compiler = compiler;
        this.stream = stream;
    }

    /** A one-dimensional grid. */
    void launch(Kernel kernel, int blocks, int threads, Object... arguments) {
        launchGrid(kernel, blocks, 1, threads, arguments);
    }

    /** A two-dimensional grid of {@code gridX × gridY} blocks. */
    void launchGrid(Kernel kernel, int gridX, int gridY, int threads, Object... arguments) {
        if (gridX == 0 || gridY == 0) return;
        MemorySegment function = functions.computeIfAbsent(kernel, this::resolve);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment values = arena.allocate(8L * Math.max(1, arguments.length), 8);
            MemorySegment pointers = arena.allocate(ADDRESS, Math.max(1, arguments.length));
            for (int i = 0; i < arguments.length; i++) {
                MemorySegment value = values.asSlice(8L * i, 8);
                switch (arguments[i]) {
                    case null -> value.set(JAVA_LONG, 0, 0L);
                    case Integer v -> value.set(JAVA_INT, 0, v);
                    case Long v -> value.set(JAVA_LONG, 0, v);
                    case Float v -> value.set(JAVA_FLOAT, 0, v);
                    case CudaTensor t -> value.set(JAVA_LONG, 0, t.address());
                    case DeviceBuffer b -> value.set(JAVA_LONG, 0, b.address());
                    default -> throw new IllegalArgumentException(kernel + ": argument " + i + " of type "
                            + arguments[i].getClass().getSimpleName() + " cannot be passed to a kernel");
                }
                pointers.setAtIndex(ADDRESS, i, value);
            }
            driver.launch(function, gridX, gridY, 1, threads, 1, 1, 0, stream, pointers);
        }
    }

    private MemorySegment resolve(Kernel kernel) {
        MemorySegment module = modules.computeIfAbsent(kernel.module, name -> driver.loadModule(compiler.cubin(name)));
        return driver.function(module, kernel.function);
    }

    @Override
    public void close() {
        for (MemorySegment module : modules.values()) driver.unloadModule(module);
        modules.clear();
        functions.clear();
    }
}
