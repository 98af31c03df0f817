package dev.jvllm.spi;

/**
 * Free and total bytes of the memory a backend's device allocates from, as its driver reports them.
 *
 * @param free  bytes free now
 * @param total bytes the device has
 */
public record DeviceMemory(long free, long total) {
}
