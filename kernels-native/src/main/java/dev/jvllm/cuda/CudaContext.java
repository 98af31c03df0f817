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
        this.stream = driver.createStream();
        // Activations come and go with every batch shape; keep freed pool memory for reuse.
        driver.setPoolReleaseThreshold(device, Long.MAX_VALUE);
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
                + multiprocessors + " multiprocessors, " + (totalMemory >> 20) + " MiB)";
    }
}
