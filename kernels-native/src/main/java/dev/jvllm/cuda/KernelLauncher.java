package dev.jvllm.cuda;

import dev.jvllm.weights.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Loads the kernel modules, built for one activation type, into the current context on first use
 * and launches their kernels on one stream. Arguments are given in the kernel's parameter order: {@link Integer} for int,
 * {@link Long} for long long, {@link Float} for float, a {@link CudaTensor} (or null) for a pointer.
 */
final class KernelLauncher implements AutoCloseable {

    private static final int MAX_ARGUMENTS = 40;
    /** Dynamic shared memory a block may take without asking (cuFuncSetAttribute). */
    private static final int DEFAULT_DYNAMIC_SHARED_BYTES = 48 * 1024;
    /**
     * Kernels never launched, for timing experiments only ({@code -Djvllm.cuda.omitKernels=a,b}): each
     * entry a kernel's function name or a launch's label (as {@link KernelTimes} prints it, such as
     * {@code gemv_rows N=4096 K=14336}). A step's time without a kernel, against with it, is that
     * kernel's cost inside a CUDA graph, where no timer can reach. The model's outputs are then wrong.
     */
    private static final Set<String> OMITTED = omittedKernels(System.getProperty("jvllm.cuda.omitKernels", ""));

    private final CudaDriver driver;
    private final KernelCompiler compiler;
    private final DType activationType;
    private final MemorySegment stream;
    private final Map<String, MemorySegment> modules = new HashMap<>();
    private final Map<Kernel, MemorySegment> functions = new EnumMap<>(Kernel.class);
    private final Map<Kernel, Boolean> supported = new EnumMap<>(Kernel.class);
    private final long[] launchCounts = new long[Kernel.values().length];
    /**
     * Argument values, 8 bytes each, and the array of pointers to them that cuLaunchKernel reads:
     * both reused by every launch (one thread launches at a time), the pointers set once.
     */
    private final MemorySegment values = Arena.ofAuto().allocate(8L * MAX_ARGUMENTS, 8);
    private final MemorySegment pointers = Arena.ofAuto().allocate(ADDRESS, MAX_ARGUMENTS);
    /** The graph being captured or replayed, or null when launches simply run. */
    private GraphRecording recording;
    private KernelTimes.Timer timer;
    /** The label of the next timed launch ({@link #labelNext}), or null for its kernel's name. */
    private String nextLabel;
    /**
     * The launch configuration of programmatic dependent launches (every kernel may start while
     * the one before it finishes; common.cuh says how kernels wait), or null where the device
     * predates them (compute capability below 9.0) or they are turned off.
     */
    private final MemorySegment programmaticConfig;
    /** The launch configuration of launches in clusters (programmatic too where those are on), made on first use. */
    private MemorySegment clusterConfig;

    KernelLauncher(CudaDriver driver, KernelCompiler compiler, DType activationType, MemorySegment stream,
                   boolean programmaticLaunches) {
        this.driver = driver;
        this.compiler = compiler;
        this.activationType = activationType;
        for (int i = 0; i < MAX_ARGUMENTS; i++) pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
        this.stream = stream;
        if (programmaticLaunches) {
            programmaticConfig = Arena.ofAuto().allocate(CudaDriver.LAUNCH_CONFIG_BYTES + CudaDriver.LAUNCH_ATTRIBUTE_BYTES, 8);
            CudaDriver.prepareProgrammaticLaunch(programmaticConfig, stream);
        } else {
            programmaticConfig = null;
        }
    }

    /** Times eager launches from now on ({@link KernelTimes}). */
    void setTimer(KernelTimes.Timer timer) {
        this.timer = timer;
    }

    /**
     * Times the next eager launch under {@code label} instead of its kernel's name (a product's
     * shape, say), while launches are timed.
     */
    void labelNext(String label) {
        nextLabel = label;
    }

    /** Whether launches want their labels ({@link #labelNext}): while they are timed, or while some are omitted. */
    boolean wantsLabels() {
        return eagerTimer() != null || !OMITTED.isEmpty();
    }

    static Set<String> omittedKernels(String list) {
        Set<String> omitted = Set.copyOf(Arrays.stream(list.split(",")).map(String::strip).filter(e -> !e.isEmpty()).toList());
        if (!omitted.isEmpty()) {
            org.slf4j.LoggerFactory.getLogger(KernelLauncher.class).warn(
                    "jvllm.cuda.omitKernels: {} are never launched; every output is wrong (timing experiments only)", omitted);
        }
        return omitted;
    }

    /** The timer of eager launches while one is set and no graph is being captured, else null. */
    KernelTimes.Timer eagerTimer() {
        return recording == null ? timer : null;
    }

    /** Launches made (eager or into a capture) of {@code kernel} so far: which kernel a path took, for tests. */
    long launches(Kernel kernel) {
        return launchCounts[kernel.ordinal()];
    }

    void setRecording(GraphRecording recording) {
        this.recording = recording;
    }

    /** A one-dimensional grid. */
    void launch(Kernel kernel, int blocks, int threads, Object... arguments) {
        launchGrid(kernel, blocks, 1, threads, arguments);
    }

    /**
     * A one-dimensional grid of {@code blocks} in clusters of {@code cluster} (a divisor of blocks;
     * above 1 only on compute capability 9.0 and later).
     */
    void launchClustered(Kernel kernel, int blocks, int cluster, int threads, Object... arguments) {
        launchVolumeClustered(kernel, blocks, 1, 1, cluster, 1, threads, arguments);
    }

    /**
     * A three-dimensional grid of {@code gridX × gridY × gridZ} blocks in clusters of {@code
     * clusterX} along x or {@code clusterZ} along z (divisors of the grid's; above 1 only on compute
     * capability 9.0 and later). Where a kernel has clusters above 8 blocks, the most a device is
     * sure to serve, it must have been allowed them ({@link #allowLargeClusters}).
     */
    void launchVolumeClustered(Kernel kernel, int gridX, int gridY, int gridZ, int clusterX, int clusterZ, int threads,
                               Object... arguments) {
        if (clusterX < 1 || clusterZ < 1 || gridX % clusterX != 0 || gridZ % clusterZ != 0) {
            throw new IllegalArgumentException(kernel + ": a grid of " + gridX + " × " + gridY + " × " + gridZ
                    + " blocks in clusters of " + clusterX + " × 1 × " + clusterZ);
        }
        if (gridX == 0 || gridY == 0 || gridZ == 0) return;
        if (!OMITTED.isEmpty() && (OMITTED.contains(kernel.function) || nextLabel != null && OMITTED.contains(nextLabel))) {
            nextLabel = null;
            return;
        }
        // Every block its own cluster is what a plain launch gives (and the only form before 9.0).
        boolean clustered = clusterX > 1 || clusterZ > 1;
        MemorySegment function = function(kernel, arguments);
        if (recording != null && !recording.launch(kernel.ordinal(), gridX, gridY, gridZ, threads,
                clustered ? clusterX | (long) clusterZ << 32 : 0L, values, arguments.length)) {
            return;
        }
        launchCounts[kernel.ordinal()]++;
        KernelTimes.Timer timing = beginTiming(kernel);
        if (clustered) {
            if (clusterConfig == null) {
                clusterConfig = Arena.ofAuto().allocate(CudaDriver.LAUNCH_CONFIG_BYTES + 2 * CudaDriver.LAUNCH_ATTRIBUTE_BYTES, 8);
                CudaDriver.prepareClusterLaunch(clusterConfig, stream, programmaticConfig != null);
            }
            driver.launchClustered(function, clusterConfig, gridX, gridY, gridZ, threads, clusterX, 1, clusterZ,
                    kernel.dynamicSharedBytes, pointers);
        } else if (programmaticConfig != null) {
            driver.launchProgrammatic(function, programmaticConfig, gridX, gridY, gridZ, threads, kernel.dynamicSharedBytes,
                    pointers);
        } else {
            driver.launch(function, gridX, gridY, gridZ, threads, 1, 1, kernel.dynamicSharedBytes, stream, pointers);
        }
        if (timing != null) timing.end();
    }

    /**
     * Allows {@code kernel} clusters above 8 blocks (up to 16 on an H100); false where the device
     * refuses, and the kernel's clusters must then stay within 8.
     */
    boolean allowLargeClusters(Kernel kernel) {
        return driver.trySetAttribute(functions.computeIfAbsent(kernel, this::resolve),
                CudaDriver.FUNCTION_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1);
    }

    /**
     * Whether {@code kernel} can be launched on this device: a kernel of more than 48 KB of dynamic
     * shared memory must be allowed them, which a device with less shared memory a block refuses
     * (the caller then takes another kernel).
     */
    boolean supports(Kernel kernel) {
        if (kernel.dynamicSharedBytes <= DEFAULT_DYNAMIC_SHARED_BYTES) return true;
        return supported.computeIfAbsent(kernel, k -> driver.trySetAttribute(functions.computeIfAbsent(k, this::resolve),
                CudaDriver.FUNCTION_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, k.dynamicSharedBytes));
    }

    /** A two-dimensional grid of {@code gridX × gridY} blocks. */
    void launchGrid(Kernel kernel, int gridX, int gridY, int threads, Object... arguments) {
        launchVolume(kernel, gridX, gridY, 1, threads, arguments);
    }

    /** A three-dimensional grid of {@code gridX × gridY × gridZ} blocks. */
    void launchVolume(Kernel kernel, int gridX, int gridY, int gridZ, int threads, Object... arguments) {
        launchVolumeClustered(kernel, gridX, gridY, gridZ, 1, 1, threads, arguments);
    }

    /** The eager timer, started for this launch, or null while launches are not timed. */
    private KernelTimes.Timer beginTiming(Kernel kernel) {
        KernelTimes.Timer timing = eagerTimer();
        if (timing != null) timing.begin(nextLabel != null ? nextLabel : kernel.function);
        nextLabel = null;
        return timing;
    }

    /** The kernel's function, its arguments written into the launch's parameter slots. */
    private MemorySegment function(Kernel kernel, Object[] arguments) {
        MemorySegment function = functions.computeIfAbsent(kernel, this::resolve);
        if (kernel.dynamicSharedBytes > DEFAULT_DYNAMIC_SHARED_BYTES && supported.get(kernel) != Boolean.TRUE) {
            throw new IllegalStateException(kernel + ": " + kernel.dynamicSharedBytes
                    + " bytes of shared memory a block were not allowed (check supports first)");
        }
        if (arguments.length > MAX_ARGUMENTS) {
            throw new IllegalArgumentException(kernel + ": " + arguments.length + " arguments, at most " + MAX_ARGUMENTS);
        }
        for (int i = 0; i < arguments.length; i++) {
            long at = 8L * i;
            switch (arguments[i]) {
                case null -> values.set(JAVA_LONG, at, 0L);
                // Whole 8-byte slots, so that no bytes of an earlier launch remain (a graph replay compares them).
                case Integer v -> values.set(JAVA_LONG, at, v & 0xFFFF_FFFFL);
                case Long v -> values.set(JAVA_LONG, at, v);
                case Float v -> values.set(JAVA_LONG, at, Float.floatToRawIntBits(v) & 0xFFFF_FFFFL);
                case CudaTensor t -> {
                    values.set(JAVA_LONG, at, t.address());
                    if (recording != null) recording.hold(t.buffer());
                }
                case DeviceBuffer b -> {
                    values.set(JAVA_LONG, at, b.address());
                    if (recording != null) recording.hold(b);
                }
                default -> throw new IllegalArgumentException(kernel + ": argument " + i + " of type "
                        + arguments[i].getClass().getSimpleName() + " cannot be passed to a kernel");
            }
        }
        return function;
    }

    private MemorySegment resolve(Kernel kernel) {
        MemorySegment module = modules.computeIfAbsent(kernel.module, name -> driver.loadModule(compiler.cubin(name, activationType)));
        return driver.function(module, kernel.function);
    }

    @Override
    public void close() {
        for (MemorySegment module : modules.values()) driver.unloadModule(module);
        modules.clear();
        functions.clear();
        supported.clear();
    }
}
