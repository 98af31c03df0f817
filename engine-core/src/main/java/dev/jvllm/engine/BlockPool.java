package dev.jvllm.engine;

import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;

/**
 * The KV-cache blocks of one engine: reference counts, a free queue in least-recently-freed order,
 * and the map from {@link PrefixCacheKey} to the block holding that prefix. A freed block that holds
 * a cached prefix stays findable until it is handed out again (evicted), least recently used first.
 */
final class BlockPool {

    private final int numBlocks;
    private final int[] refCount;
    private final PrefixCacheKey[] keyOf;
    private final LinkedHashSet<Integer> free = new LinkedHashSet<>();
    private final Map<PrefixCacheKey, Integer> cached = new HashMap<>();
    private final boolean prefixCaching;

    BlockPool(int numBlocks, boolean prefixCaching) {
        this.numBlocks = numBlocks;
        this.refCount = new int[numBlocks];
        this.keyOf = new PrefixCacheKey[numBlocks];
        this.prefixCaching = prefixCaching;
        for (int i = 0; i < numBlocks; i++) free.add(i);
    }

    int numBlocks() {
        return numBlocks;
    }

    /** Blocks that can be handed out now (unreferenced, cached or not). */
    int freeCount() {
        return free.size();
    }

    boolean prefixCaching() {
        return prefixCaching;
    }

    /** Takes the least recently freed block, evicting its cached prefix if it held one. */
    int allocate() {
        var it = free.iterator();
        if (!it.hasNext()) throw new IllegalStateException("no free KV block");
        int block = it.next();
        it.remove();
        PrefixCacheKey key = keyOf[block];
        if (key != null) {
            cached.remove(key, block);
            keyOf[block] = null;
        }
        refCount[block] = 1;
        return block;
    }

    /** The block holding this prefix, if cached. */
    Integer lookup(PrefixCacheKey key) {
        return prefixCaching ? cached.get(key) : null;
    }

    /** Takes one more reference to a cached block (a prefix-cache hit). */
    void share(int block) {
        if (refCount[block]++ == 0) free.remove(block);
    }

    void release(int block) {
        if (refCount[block] <= 0) throw new IllegalStateException("block " + block + " released twice");
        if (--refCount[block] == 0) free.add(block);
    }

    /** Records that a full block now holds the prefix {@code key}; the first holder of a key keeps it. */
    void markCached(int block, PrefixCacheKey key) {
        if (!prefixCaching || keyOf[block] != null) return;
        if (cached.putIfAbsent(key, block) == null) keyOf[block] = key;
    }

    int refCount(int block) {
        return refCount[block];
    }

    /**
     * Verifies that nothing holds a block: every block is in the free queue with reference count 0,
     * and the prefix cache names only free blocks that carry its key.
     *
     * @throws IllegalStateException naming the first block that is still held or inconsistent
     */
    void checkAllFree() {
        for (int block = 0; block < numBlocks; block++) {
            if (refCount[block] != 0 || !free.contains(block)) {
                throw new IllegalStateException("KV block " + block + " is still held (reference count "
                        + refCount[block] + ", " + (free.contains(block) ? "" : "not ") + "in the free queue)");
            }
        }
        for (Map.Entry<PrefixCacheKey, Integer> e : cached.entrySet()) {
            if (!e.getKey().equals(keyOf[e.getValue()])) {
                throw new IllegalStateException("prefix cache entry " + e.getKey() + " names block " + e.getValue()
                        + ", which holds " + keyOf[e.getValue()]);
            }
        }
    }
}
