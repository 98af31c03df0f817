package dev.jvllm.engine;

import java.util.HashMap;
import java.util.Map;

/**
 * The KV-cache blocks of one engine: reference counts, a free queue in least-recently-freed order,
 * and the map from {@link PrefixCacheKey} to the block holding that prefix. A freed block that holds
 * a cached prefix stays findable until it is handed out again (evicted), least recently used first.
 */
final class BlockPool {

    private static final int NONE = -1;

    private final int numBlocks;
    private final int[] refCount;
    private final PrefixCacheKey[] keyOf;
    /**
     * The free queue, a doubly linked list through two arrays (block to neighbour, {@link #NONE} at
     * the ends), so that taking the head, appending and unlinking any block cost O(1) without
     * boxing. A block is in it exactly when its reference count is 0.
     */
    private final int[] previousFree;
    private final int[] nextFree;
    private int firstFree = NONE;
    private int lastFree = NONE;
    private int freeCount;
    private final Map<PrefixCacheKey, Integer> cached = new HashMap<>();
    private final boolean prefixCaching;

    BlockPool(int numBlocks, boolean prefixCaching) {
        this.numBlocks = numBlocks;
        this.refCount = new int[numBlocks];
        this.keyOf = new PrefixCacheKey[numBlocks];
        this.prefixCaching = prefixCaching;
        this.previousFree = new int[numBlocks];
        this.nextFree = new int[numBlocks];
        for (int i = 0; i < numBlocks; i++) appendFree(i);
    }

    private void appendFree(int block) {
        previousFree[block] = lastFree;
        nextFree[block] = NONE;
        if (lastFree == NONE) firstFree = block;
        else nextFree[lastFree] = block;
        lastFree = block;
        freeCount++;
    }

    private void unlinkFree(int block) {
        int previous = previousFree[block], next = nextFree[block];
        if (previous == NONE) firstFree = next;
        else nextFree[previous] = next;
        if (next == NONE) lastFree = previous;
        else previousFree[next] = previous;
        freeCount--;
    }

    int numBlocks() {
        return numBlocks;
    }

    /** Blocks that can be handed out now (unreferenced, cached or not). */
    int freeCount() {
        return freeCount;
    }

    boolean prefixCaching() {
        return prefixCaching;
    }

    /** Takes the least recently freed block, evicting its cached prefix if it held one. */
    int allocate() {
        if (firstFree == NONE) throw new IllegalStateException("no free KV block");
        int block = firstFree;
        unlinkFree(block);
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
        if (refCount[block]++ == 0) unlinkFree(block);
    }

    void release(int block) {
        if (refCount[block] <= 0) throw new IllegalStateException("block " + block + " released twice");
        if (--refCount[block] == 0) appendFree(block);
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
        boolean[] queued = new boolean[numBlocks];
        int walked = 0;
        for (int block = firstFree; block != NONE && walked <= numBlocks; block = nextFree[block], walked++) {
            queued[block] = true;
        }
        for (int block = 0; block < numBlocks; block++) {
            if (refCount[block] != 0 || !queued[block]) {
                throw new IllegalStateException("KV block " + block + " is still held (reference count "
                        + refCount[block] + ", " + (queued[block] ? "" : "not ") + "in the free queue)");
            }
        }
        if (walked != numBlocks || freeCount != numBlocks) {
            throw new IllegalStateException("the free queue holds " + walked + " links and counts " + freeCount
                    + " blocks, not " + numBlocks);
        }
        for (Map.Entry<PrefixCacheKey, Integer> e : cached.entrySet()) {
            if (!e.getKey().equals(keyOf[e.getValue()])) {
                throw new IllegalStateException("prefix cache entry " + e.getKey() + " names block " + e.getValue()
                        + ", which holds " + keyOf[e.getValue()]);
            }
        }
    }
}
