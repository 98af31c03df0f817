package dev.jvllm.cuda;

/**
 * One device allocation made by {@link DeviceMemory}. Tensors viewing it hold it, so it stays
 * allocated while any view is reachable.
 *
 * @param id      unique per allocation, so that a stale release never frees a reused address
 * @param address the device pointer
 * @param bytes   the size asked for
 */
record DeviceBuffer(long id, long address, long bytes) {
}
