package dev.jvllm.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static dev.jvllm.cuda.NativeLibrary.call;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA driver API ({@code libcuda.so.1}), the calls jvllm makes and no more. Device pointers
 * ({@code CUdeviceptr}) are longs; handles (contexts, streams, modules, functions, events) are
 * addresses. Every call's result is checked: a failure is a {@link CudaException} naming the call
 * and the driver's name for the error.
 */
final class CudaDriver {

    static final int ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    static final int ATTRIBUTE_MEMORY_CLOCK_RATE = 36;
    static final int ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37;
    static final int ATTRIBUTE_L2_CACHE_SIZE = 38;
    static final int ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    static final int ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    private static final int STREAM_NON_BLOCKING = 1;
    private static final int MEMPOOL_ATTRIBUTE_RELEASE_THRESHOLD = 4;
    private static final int STREAM_CAPTURE_MODE_RELAXED = 2;

    private static final NativeLibrary.LazyBinding<CudaDriver> BINDING = new NativeLibrary.LazyBinding<>(() -> {
        CudaDriver driver = new CudaDriver(NativeLibrary.open("libcuda.so.1"));
        driver.check("cuInit", call(driver.cuInit, 0));
        return driver;
    });

    /** The driver, loaded and initialized once; throws the reason when it cannot be. */
    static CudaDriver get() {
        return BINDING.get();
    }

    private final MethodHandle cuInit;
    private final MethodHandle cuDriverGetVersion;
    private final MethodHandle cuGetErrorName;
    private final MethodHandle cuGetErrorString;
    private final MethodHandle cuDeviceGetCount;
    private final MethodHandle cuDeviceGet;
    private final MethodHandle cuDeviceGetName;
    private final MethodHandle cuDeviceGetAttribute;
    private final MethodHandle cuDeviceTotalMem;
    private final MethodHandle cuDevicePrimaryCtxRetain;
    private final MethodHandle cuDevicePrimaryCtxRelease;
    private final MethodHandle cuCtxSetCurrent;
    private final MethodHandle cuMemGetInfo;
    private final MethodHandle cuPointerGetAttribute;
    private final MethodHandle cuMemAlloc;
    private final MethodHandle cuMemFree;
    private final MethodHandle cuMemAllocAsync;
    private final MethodHandle cuMemFreeAsync;
    private final MethodHandle cuDeviceGetDefaultMemPool;
    private final MethodHandle cuMemPoolSetAttribute;
    private final MethodHandle cuMemAllocHost;
    private final MethodHandle cuMemFreeHost;
    private final MethodHandle cuMemcpyHtoDAsync;
    private final MethodHandle cuMemcpyDtoHAsync;
    private final MethodHandle cuMemcpyDtoDAsync;
    private final MethodHandle cuMemsetD8Async;
    private final MethodHandle cuModuleLoadData;
    private final MethodHandle cuModuleUnload;
    private final MethodHandle cuModuleGetFunction;
    private final MethodHandle cuLaunchKernel;
    private final MethodHandle cuLaunchKernelEx;
    private final MethodHandle cuFuncSetAttribute;
    private final MethodHandle cuStreamCreate;
    private final MethodHandle cuStreamSynchronize;
    private final MethodHandle cuStreamDestroy;
    private final MethodHandle cuEventCreate;
    private final MethodHandle cuEventRecord;
    private final MethodHandle cuEventSynchronize;
    private final MethodHandle cuEventElapsedTime;
    private final MethodHandle cuEventDestroy;
    private final MethodHandle cuStreamBeginCapture;
    private final MethodHandle cuStreamEndCapture;
    private final MethodHandle cuGraphInstantiateWithFlags;
    private final MethodHandle cuGraphLaunch;
    private final MethodHandle cuGraphDestroy;
    private final MethodHandle cuGraphExecDestroy;

    private CudaDriver(NativeLibrary lib) {
        cuInit = lib.function("cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        cuDriverGetVersion = lib.function("cuDriverGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuGetErrorName = lib.function("cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        cuGetErrorString = lib.function("cuGetErrorString", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        cuDeviceGetCount = lib.function("cuDeviceGetCount", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuDeviceGet = lib.function("cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDeviceGetName = lib.function("cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuDeviceGetAttribute = lib.function("cuDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuDeviceTotalMem = lib.function("cuDeviceTotalMem_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDevicePrimaryCtxRetain = lib.function("cuDevicePrimaryCtxRetain", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDevicePrimaryCtxRelease = lib.function("cuDevicePrimaryCtxRelease_v2", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        cuCtxSetCurrent = lib.function("cuCtxSetCurrent", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuMemGetInfo = lib.function("cuMemGetInfo_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuPointerGetAttribute = lib.function("cuPointerGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG));
        cuMemAlloc = lib.function("cuMemAlloc_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        cuMemFree = lib.function("cuMemFree_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuMemAllocAsync = lib.function("cuMemAllocAsync", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
        cuMemFreeAsync = lib.function("cuMemFreeAsync", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
        cuDeviceGetDefaultMemPool = lib.function("cuDeviceGetDefaultMemPool", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuMemPoolSetAttribute = lib.function("cuMemPoolSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        cuMemAllocHost = lib.function("cuMemAllocHost_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        cuMemFreeHost = lib.function("cuMemFreeHost", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuMemcpyHtoDAsync = lib.function("cuMemcpyHtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
        cuMemcpyDtoHAsync = lib.function("cuMemcpyDtoHAsync_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
        cuMemcpyDtoDAsync = lib.function("cuMemcpyDtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
        cuMemsetD8Async = lib.function("cuMemsetD8Async", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS));
        cuModuleLoadData = lib.function("cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuModuleUnload = lib.function("cuModuleUnload", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuModuleGetFunction = lib.function("cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        cuLaunchKernel = lib.function("cuLaunchKernel", FunctionDescriptor.of(JAVA_INT, ADDRESS,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        cuLaunchKernelEx = lib.function("cuLaunchKernelEx", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        cuFuncSetAttribute = lib.function("cuFuncSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuStreamCreate = lib.function("cuStreamCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuStreamSynchronize = lib.function("cuStreamSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuStreamDestroy = lib.function("cuStreamDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuEventCreate = lib.function("cuEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuEventRecord = lib.function("cuEventRecord", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuEventSynchronize = lib.function("cuEventSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuEventElapsedTime = lib.function("cuEventElapsedTime_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        cuEventDestroy = lib.function("cuEventDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuStreamBeginCapture = lib.function("cuStreamBeginCapture_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuStreamEndCapture = lib.function("cuStreamEndCapture", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuGraphInstantiateWithFlags = lib.function("cuGraphInstantiateWithFlags",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
        cuGraphLaunch = lib.function("cuGraphLaunch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuGraphDestroy = lib.function("cuGraphDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuGraphExecDestroy = lib.function("cuGraphExecDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    }

    // ---- devices and contexts ---------------------------------------------------------------

    /** The driver's CUDA version, e.g. 13000 for 13.0. */
    int driverVersion() {
        return intResult("cuDriverGetVersion", cuDriverGetVersion);
    }

    int deviceCount() {
        return intResult("cuDeviceGetCount", cuDeviceGetCount);
    }

    int device(int ordinal) {
        return intResult("cuDeviceGet", cuDeviceGet, ordinal);
    }

    String deviceName(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(256);
            check("cuDeviceGetName", call(cuDeviceGetName, name, 256, device));
            return name.getString(0);
        }
    }

    int attribute(int device, int attribute) {
        return intResult("cuDeviceGetAttribute", cuDeviceGetAttribute, attribute, device);
    }

    long totalMemory(int device) {
        return longResult("cuDeviceTotalMem_v2", cuDeviceTotalMem, device);
    }

    MemorySegment retainPrimaryContext(int device) {
        return addressResult("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain, device);
    }

    void releasePrimaryContext(int device) {
        check("cuDevicePrimaryCtxRelease_v2", call(cuDevicePrimaryCtxRelease, device));
    }

    void setCurrentContext(MemorySegment context) {
        check("cuCtxSetCurrent", call(cuCtxSetCurrent, context));
    }

    /** Free and total bytes of the current context's device. */
    long[] memoryInfo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG);
            MemorySegment total = arena.allocate(JAVA_LONG);
            check("cuMemGetInfo_v2", call(cuMemGetInfo, free, total));
            return new long[]{free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        }
    }

    /** CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: the device whose memory an address is in. */
    private static final int POINTER_DEVICE_ORDINAL = 9;

    /** The ordinal of the device whose memory holds devicePointer (cuPointerGetAttribute). */
    int pointerDeviceOrdinal(long devicePointer) {
        return intResult("cuPointerGetAttribute", cuPointerGetAttribute, POINTER_DEVICE_ORDINAL, devicePointer);
    }

    // ---- memory -----------------------------------------------------------------------------

    long allocate(long bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pointer = arena.allocate(JAVA_LONG);
            check("cuMemAlloc_v2", call(cuMemAlloc, pointer, bytes), bytes);
            return pointer.get(JAVA_LONG, 0);
        }
    }

    void free(long pointer) {
        check("cuMemFree_v2", call(cuMemFree, pointer));
    }

    /**
     * Page-locked host memory: a copy from it to the device is truly asynchronous, where one from
     * pageable memory waits for the stream to drain first.
     */
    MemorySegment allocateHost(long bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pointer = arena.allocate(ADDRESS);
            check("cuMemAllocHost_v2", call(cuMemAllocHost, pointer, bytes), bytes);
            return pointer.get(ADDRESS, 0).reinterpret(bytes);
        }
    }

    void freeHost(MemorySegment memory) {
        check("cuMemFreeHost", call(cuMemFreeHost, memory));
    }

    /** Stream-ordered allocation from the device's default pool: usable by work queued after it. */
    long allocateAsync(long bytes, MemorySegment stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pointer = arena.allocate(JAVA_LONG);
            check("cuMemAllocAsync", call(cuMemAllocAsync, pointer, bytes, stream), bytes);
            return pointer.get(JAVA_LONG, 0);
        }
    }

    void freeAsync(long pointer, MemorySegment stream) {
        check("cuMemFreeAsync", call(cuMemFreeAsync, pointer, stream));
    }

    /** Lets the default pool keep up to {@code bytes} of freed memory instead of returning it at each sync. */
    void setPoolReleaseThreshold(int device, long bytes) {
        MemorySegment pool = addressResult("cuDeviceGetDefaultMemPool", cuDeviceGetDefaultMemPool, device);
        try (Arena arena = Arena.ofConfined()) {
            check("cuMemPoolSetAttribute", call(cuMemPoolSetAttribute, pool,
                    MEMPOOL_ATTRIBUTE_RELEASE_THRESHOLD, arena.allocateFrom(JAVA_LONG, bytes)));
        }
    }

    /** Queues a copy from host memory; pageable source memory may be reused as soon as this returns. */
    void copyToDevice(long destination, MemorySegment source, long bytes, MemorySegment stream) {
        check("cuMemcpyHtoDAsync_v2", call(cuMemcpyHtoDAsync, destination, source, bytes, stream));
    }

    /** Queues a copy to host memory, complete only after the stream is synchronized. */
    void copyToHost(MemorySegment destination, long source, long bytes, MemorySegment stream) {
        check("cuMemcpyDtoHAsync_v2", call(cuMemcpyDtoHAsync, destination, source, bytes, stream));
    }

    void copyOnDevice(long destination, long source, long bytes, MemorySegment stream) {
        check("cuMemcpyDtoDAsync_v2", call(cuMemcpyDtoDAsync, destination, source, bytes, stream));
    }

    void fill(long destination, byte value, long bytes, MemorySegment stream) {
        check("cuMemsetD8Async", call(cuMemsetD8Async, destination, value, bytes, stream));
    }

    // ---- modules and launches ---------------------------------------------------------------

    MemorySegment loadModule(byte[] image) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(image.length + 1L);
            MemorySegment.copy(image, 0, data, JAVA_BYTE, 0, image.length);
            MemorySegment module = arena.allocate(ADDRESS);
            check("cuModuleLoadData", call(cuModuleLoadData, module, data));
            return module.get(ADDRESS, 0);
        }
    }

    void unloadModule(MemorySegment module) {
        check("cuModuleUnload", call(cuModuleUnload, module));
    }

    MemorySegment function(MemorySegment module, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment function = arena.allocate(ADDRESS);
            int code = call(cuModuleGetFunction, function, module, arena.allocateFrom(name));
            check("cuModuleGetFunction(" + name + ")", code);
            return function.get(ADDRESS, 0);
        }
    }

    /** {@code parameters} holds one pointer per kernel parameter, each to the parameter's value. */
    void launch(MemorySegment function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                int sharedBytes, MemorySegment stream, MemorySegment parameters) {
        int code;
        try {
            code = (int) cuLaunchKernel.invokeExact(function, gridX, gridY, gridZ, blockX, blockY, blockZ,
                    sharedBytes, stream, parameters, MemorySegment.NULL);
        } catch (Throwable t) {
            throw NativeLibrary.unexpected(t);
        }
        check("cuLaunchKernel", code);
    }

    /** Sizes and offsets of CUlaunchConfig and CUlaunchAttribute (cuda.h, CUDA 12 and 13). */
    static final long LAUNCH_CONFIG_BYTES = 56, LAUNCH_ATTRIBUTE_BYTES = 72;
    private static final long CONFIG_SHARED_BYTES = 24, CONFIG_STREAM = 32, CONFIG_ATTRIBUTES = 40, CONFIG_ATTRIBUTE_COUNT = 48;
    private static final int LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;
    private static final int LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4;

    /**
     * Fills {@code config} (LAUNCH_CONFIG_BYTES, then LAUNCH_ATTRIBUTE_BYTES for its one attribute)
     * for launches on {@code stream} that may start before the kernel ahead of them in the stream
     * has finished (programmatic dependent launch, compute capability 9.0 and later): the kernel
     * waits for it with griddepcontrol.wait before it touches its results. The grid and the block
     * width are set per launch by {@link #launchProgrammatic}.
     */
    static void prepareProgrammaticLaunch(MemorySegment config, MemorySegment stream) {
        config.fill((byte) 0);
        MemorySegment attribute = config.asSlice(LAUNCH_CONFIG_BYTES, LAUNCH_ATTRIBUTE_BYTES);
        attribute.set(JAVA_INT, 0, LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
        attribute.set(JAVA_INT, 8, 1);
        config.set(JAVA_INT, 16, 1);  // blockDimY and blockDimZ: every kernel here has one-dimensional blocks
        config.set(JAVA_INT, 20, 1);
        config.set(ADDRESS, CONFIG_STREAM, stream);
        config.set(ADDRESS, CONFIG_ATTRIBUTES, attribute);
        config.set(JAVA_INT, CONFIG_ATTRIBUTE_COUNT, 1);
    }

    /**
     * Fills {@code config} (LAUNCH_CONFIG_BYTES, then two LAUNCH_ATTRIBUTE_BYTES attributes) for
     * launches on {@code stream} whose blocks run in clusters (compute capability 9.0 and later),
     * programmatic as well where {@code programmatic}: the cluster width is set per launch by
     * {@link #launchClustered}.
     */
    static void prepareClusterLaunch(MemorySegment config, MemorySegment stream, boolean programmatic) {
        config.fill((byte) 0);
        MemorySegment cluster = config.asSlice(LAUNCH_CONFIG_BYTES, LAUNCH_ATTRIBUTE_BYTES);
        cluster.set(JAVA_INT, 0, LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
        cluster.set(JAVA_INT, 8, 1);
        cluster.set(JAVA_INT, 12, 1);
        cluster.set(JAVA_INT, 16, 1);
        MemorySegment serialization = config.asSlice(LAUNCH_CONFIG_BYTES + LAUNCH_ATTRIBUTE_BYTES, LAUNCH_ATTRIBUTE_BYTES);
        serialization.set(JAVA_INT, 0, LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
        serialization.set(JAVA_INT, 8, 1);
        config.set(JAVA_INT, 16, 1);
        config.set(JAVA_INT, 20, 1);
        config.set(ADDRESS, CONFIG_STREAM, stream);
        config.set(ADDRESS, CONFIG_ATTRIBUTES, cluster);
        config.set(JAVA_INT, CONFIG_ATTRIBUTE_COUNT, programmatic ? 2 : 1);
    }

    /**
     * cuLaunchKernelEx with a config made by {@link #prepareClusterLaunch}: a grid of blocks in
     * clusters of {@code clusterX × clusterY × clusterZ} (each a divisor of the grid's).
     */
    void launchClustered(MemorySegment function, MemorySegment config, int gridX, int gridY, int gridZ, int blockX,
                         int clusterX, int clusterY, int clusterZ, int sharedBytes, MemorySegment parameters) {
        MemorySegment cluster = config.asSlice(LAUNCH_CONFIG_BYTES, LAUNCH_ATTRIBUTE_BYTES);
        cluster.set(JAVA_INT, 8, clusterX);
        cluster.set(JAVA_INT, 12, clusterY);
        cluster.set(JAVA_INT, 16, clusterZ);
        launchProgrammatic(function, config, gridX, gridY, gridZ, blockX, sharedBytes, parameters);
    }

    /** CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: dynamic shared memory a block may take, above the default 48 KB. */
    static final int FUNCTION_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

    /** CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED: clusters above 8 blocks (16 on an H100). */
    static final int FUNCTION_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14;

    /** cuFuncSetAttribute; false where the device or driver refuses the value (nothing is thrown). */
    boolean trySetAttribute(MemorySegment function, int attribute, int value) {
        try {
            return (int) cuFuncSetAttribute.invokeExact(function, attribute, value) == 0;
        } catch (Throwable t) {
            throw NativeLibrary.unexpected(t);
        }
    }

    /** cuLaunchKernelEx with a config made by {@link #prepareProgrammaticLaunch}, its grid and block width set here. */
    void launchProgrammatic(MemorySegment function, MemorySegment config, int gridX, int gridY, int gridZ, int blockX,
                            int sharedBytes, MemorySegment parameters) {
        config.set(JAVA_INT, 0, gridX);
        config.set(JAVA_INT, 4, gridY);
        config.set(JAVA_INT, 8, gridZ);
        config.set(JAVA_INT, 12, blockX);
        config.set(JAVA_INT, CONFIG_SHARED_BYTES, sharedBytes);
        int code;
        try {
            code = (int) cuLaunchKernelEx.invokeExact(config, function, parameters, MemorySegment.NULL);
        } catch (Throwable t) {
            throw NativeLibrary.unexpected(t);
        }
        check("cuLaunchKernelEx", code);
    }

    // ---- streams and events -----------------------------------------------------------------

    MemorySegment createStream() {
        return addressResult("cuStreamCreate", cuStreamCreate, STREAM_NON_BLOCKING);
    }

    void synchronize(MemorySegment stream) {
        check("cuStreamSynchronize", call(cuStreamSynchronize, stream));
    }

    void destroyStream(MemorySegment stream) {
        check("cuStreamDestroy_v2", call(cuStreamDestroy, stream));
    }

    MemorySegment createEvent() {
        return addressResult("cuEventCreate", cuEventCreate, 0);
    }

    void record(MemorySegment event, MemorySegment stream) {
        check("cuEventRecord", call(cuEventRecord, event, stream));
    }

    /** Milliseconds between two recorded events, waiting for the second. */
    float elapsedMillis(MemorySegment start, MemorySegment end) {
        check("cuEventSynchronize", call(cuEventSynchronize, end));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment millis = arena.allocate(JAVA_FLOAT);
            check("cuEventElapsedTime_v2", call(cuEventElapsedTime, millis, start, end));
            return millis.get(JAVA_FLOAT, 0);
        }
    }

    void destroyEvent(MemorySegment event) {
        check("cuEventDestroy_v2", call(cuEventDestroy, event));
    }

    /** Waits until the work before the event's last record has finished. */
    void waitFor(MemorySegment event) {
        check("cuEventSynchronize", call(cuEventSynchronize, event));
    }

    // ---- graphs -----------------------------------------------------------------------------

    /**
     * From here on, work queued on the stream is recorded into a graph instead of run. Relaxed
     * mode: calls that are not stream work (loading a module the first time a kernel is used)
     * stay allowed while the stream records.
     */
    void beginCapture(MemorySegment stream) {
        check("cuStreamBeginCapture_v2", call(cuStreamBeginCapture, stream, STREAM_CAPTURE_MODE_RELAXED));
    }

    /** Ends the recording; the graph of the work queued since {@link #beginCapture}. */
    MemorySegment endCapture(MemorySegment stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment graph = arena.allocate(ADDRESS);  // the graph comes back through the second argument
            check("cuStreamEndCapture", call(cuStreamEndCapture, stream, graph));
            return graph.get(ADDRESS, 0);
        }
    }

    /**
     * Ends a recording that failed part way, discarding what it holds; the stream runs work again.
     * Its own failure is not reported: the recording's failure is the one that matters.
     */
    void abandonCapture(MemorySegment stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment graph = arena.allocate(ADDRESS);
            if (call(cuStreamEndCapture, stream, graph) == 0 && !graph.get(ADDRESS, 0).equals(MemorySegment.NULL)) {
                call(cuGraphDestroy, graph.get(ADDRESS, 0));
            }
        }
    }

    /** An executable graph made from {@code graph}, which may then be destroyed. */
    MemorySegment instantiate(MemorySegment graph) {
        return addressResult("cuGraphInstantiateWithFlags", cuGraphInstantiateWithFlags, graph, 0L);
    }

    void launchGraph(MemorySegment executable, MemorySegment stream) {
        check("cuGraphLaunch", call(cuGraphLaunch, executable, stream));
    }

    void destroyGraph(MemorySegment graph) {
        check("cuGraphDestroy", call(cuGraphDestroy, graph));
    }

    void destroyExecutableGraph(MemorySegment executable) {
        check("cuGraphExecDestroy", call(cuGraphExecDestroy, executable));
    }

    // ---- calls and errors -------------------------------------------------------------------

    // Most driver calls return what they make through a pointer in the first argument, as in
    // cuDeviceGet(&device, ordinal). These call function(&result, arguments...), check its
    // status under the call's name, and return the result.

    private int intResult(String name, MethodHandle function, Object... arguments) {
        try (Arena arena = Arena.ofConfined()) {
            return result(arena, JAVA_INT, name, function, arguments).get(JAVA_INT, 0);
        }
    }

    private long longResult(String name, MethodHandle function, Object... arguments) {
        try (Arena arena = Arena.ofConfined()) {
            return result(arena, JAVA_LONG, name, function, arguments).get(JAVA_LONG, 0);
        }
    }

    private MemorySegment addressResult(String name, MethodHandle function, Object... arguments) {
        try (Arena arena = Arena.ofConfined()) {
            return result(arena, ADDRESS, name, function, arguments).get(ADDRESS, 0);
        }
    }

    private MemorySegment result(Arena arena, MemoryLayout layout, String name, MethodHandle function,
                                 Object... arguments) {
        MemorySegment result = arena.allocate(layout);
        Object[] all = new Object[arguments.length + 1];
        all[0] = result;
        System.arraycopy(arguments, 0, all, 1, arguments.length);
        check(name, call(function, all));
        return result;
    }

    private void check(String call, int code) {
        if (code != 0) throw error(call, code, "");
    }

    private void check(String call, int code, long bytes) {
        if (code != 0) throw error(call, code, " of " + bytes + " bytes");
    }

    private CudaException error(String call, int code, String detail) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(ADDRESS);
            MemorySegment text = arena.allocate(ADDRESS);
            String errorName = call(cuGetErrorName, code, name) == 0
                    ? name.get(ADDRESS, 0).reinterpret(256).getString(0) : "CUDA error " + code;
            String description = call(cuGetErrorString, code, text) == 0
                    ? text.get(ADDRESS, 0).reinterpret(1024).getString(0) : "";
            return new CudaException(call + detail, errorName, description);
        }
    }
}
