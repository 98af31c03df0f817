package dev.jvllm.spi;

/** The paged key/value storage of one model, allocated by a {@link Backend}. */
public interface KvCache extends AutoCloseable {

    KvCacheSpec spec();

    /** Releases the storage. */
    @Override
    void close();
}
