package dev.jvllm.cuda;

import java.lang.foreign.MemorySegment;

/**
 * One GPU as a backend uses it: its primary context, the stream all the backend's work is queued
 * on, and the properties read off the device.
 */
final class CudaContext implements AutoCloseable {

    final CudaDriver driver;
    final int device;
    final String deviceName;
    final int computeMajor;
    final int computeMinor;
    final int multiprocessors;
    final long totalMemory;
    /** Peak clock of the memory in kHz and the width of its bus in bits (0 where the driver does not say). */
    private final int memoryClockKhz, memoryBusBits;
    final MemorySegment stream;
    private final MemorySegment context;
    private volatile Thread boundThread;
    private boolean closed;

    private CudaContext(CudaDriver driver, int device, MemorySegment context) {
        this.driver = driver;
        this.device = device;
        this.context = context;
        driver.setCurrentContext(context);
        this.boundThread = Thread.currentThread();
        this.deviceName = driver.deviceName(device);
        this.computeMajor = driver.attribute(device, CudaDriver.ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        this.computeMinor = driver.attribute(device, CudaDriver.ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        this.multiprocessors = driver.attribute(device, CudaDriver.ATTRIBUTE_MULTIPROCESSOR_COUNT);
        this.totalMemory = driver.totalMemory(device);
        this.memoryClockKhz = optionalAttribute(driver, device, CudaDriver.ATTRIBUTE_MEMORY_CLOCK_RATE);
        this.memoryBusBits = optionalAttribute(driver, device, CudaDriver.ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
        this.stream = driver.createStream();
        // Activations come and go with every batch shape; keep freed pool memory for reuse.
        driver.setPoolReleaseThreshold(device, Long.MAX_VALUE);
    }

    /** An attribute only tuning reads: 0 where the driver does not report it, rather than no backend. */
    private static int optionalAttribute(CudaDriver driver, int device, int attribute) {
        try {
            return driver.attribute(device, attribute);
        } catch (CudaException e) {
            return 0;
        }
    }

    static CudaContext open(int ordinal) {
        CudaDriver driver = CudaDriver.get();
        int count = driver.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new CudaException("CUDA device " + ordinal + " does not exist (" + count + " found)");
        }
        int device = driver.device(ordinal);
        return new CudaContext(driver, device, driver.retainPrimaryContext(device));
    }

    /** Makes the context current on the calling thread (CUDA keeps the current context per thread). */
    void makeCurrent() {
        Thread current = Thread.currentThread();
        if (boundThread != current) {
            driver.setCurrentContext(context);
            boundThread = current;
        }
    }

    /** The real architecture kernels are compiled for, e.g. "sm_90". */
    String architecture() {
        return "sm_" + computeMajor + computeMinor;
    }

    /** The memory's peak bandwidth in bytes a second (double data rate), from its clock and bus width. */
    double peakMemoryBandwidth() {
        return peakMemoryBandwidth(memoryClockKhz, memoryBusBits);
    }

    static double peakMemoryBandwidth(int memoryClockKhz, int memoryBusBits) {
        return 2.0 * memoryClockKhz * 1000.0 * memoryBusBits / 8.0;
    }

    void synchronize() {
        makeCurrent();
        driver.synchronize(stream);
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        makeCurrent();
        driver.destroyStream(stream);
        driver.releasePrimaryContext(device);
    }

    @Override
    public String toString() {
        return deviceName + " (compute capability " + computeMajor + "." + computeMinor + ", "
                + multiprocessors + " multiprocessors, " + (totalMemory >> 20) + " MiB, "
                + String.format(java.util.Locale.ROOT, "%.2f", peakMemoryBandwidth() / 1e12) + " TB/s peak)";
    }
}
