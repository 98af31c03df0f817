package dev.jvllm.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * Gives requests KV blocks: reuses the longest cached prefix of a new request, grows block tables
 * as tokens are scheduled, records full blocks in the prefix cache, and frees everything a
 * finished, aborted or preempted request held.
 */
final class KvCacheManager {

    private final BlockPool pool;
    private final int blockSize;
    private long prefixQueries;
    private long prefixHits;

    KvCacheManager(int numBlocks, int blockSize, boolean prefixCaching) {
        this.pool = new BlockPool(numBlocks, prefixCaching);
        this.blockSize = blockSize;
    }

    int blockSize() {
        return blockSize;
    }

    int numBlocks() {
        return pool.numBlocks();
    }

    int freeBlocks() {
        return pool.freeCount();
    }

    long prefixQueryTokens() {
        return prefixQueries;
    }

    long prefixHitTokens() {
        return prefixHits;
    }

    /**
     * For a request with nothing computed yet: the cached blocks covering the longest prefix of its
     * tokens, leaving at least one token to compute (its logits are needed).
     */
    List<Integer> findCachedPrefix(EngineRequest request) {
        List<Integer> hits = new ArrayList<>();
        if (!pool.prefixCaching()) return hits;
        int usable = (request.numTokens() - 1) / blockSize;
        PrefixCacheKey parent = null;
        for (int b = 0; b < usable; b++) {
            PrefixCacheKey key = request.blockKey(b, parent, blockSize);
            Integer block = pool.lookup(key);
            if (block == null) break;
            hits.add(block);
            parent = key;
        }
        prefixQueries += request.numTokens();
        prefixHits += (long) hits.size() * blockSize;
        return hits;
    }

    /**
     * Makes room for {@code newTokens} more tokens of the request (after taking {@code cachedPrefix}
     * blocks); false, with nothing changed, when too few blocks are free.
     */
    boolean allocate(EngineRequest request, int newTokens, List<Integer> cachedPrefix) {
        int have = request.blockTable().size() + cachedPrefix.size();
        int computed = request.numComputedTokens() + cachedPrefix.size() * blockSize;
        int needed = Math.max(0, ceilDiv(computed + newTokens, blockSize) - have);
        int cachedFromFree = 0;
        for (int block : cachedPrefix) if (pool.refCount(block) == 0) cachedFromFree++;
        if (needed + cachedFromFree > pool.freeCount()) return false;
        for (int block : cachedPrefix) {
            pool.share(block);
            request.blockTable().add(block);
        }
        if (!cachedPrefix.isEmpty()) request.advanceComputed(cachedPrefix.size() * blockSize);
        for (int i = 0; i < needed; i++) request.blockTable().add(pool.allocate());
        return true;
    }

    /** After a step computed tokens up to {@code request.numComputedTokens()}: caches newly full blocks. */
    void cacheFullBlocks(EngineRequest request) {
        if (!pool.prefixCaching()) return;
        int full = Math.min(request.numComputedTokens(), request.numTokens()) / blockSize;
        List<PrefixCacheKey> keys = request.blockKeys();
        for (int b = keys.size(); b < full; b++) {
            PrefixCacheKey key = request.blockKey(b, b == 0 ? null : keys.get(b - 1), blockSize);
            keys.add(key);
            pool.markCached(request.blockTable().get(b), key);
        }
    }

    /** Releases every block of the request, tail first so a shared prefix outlives its continuations. */
    void free(EngineRequest request) {
        List<Integer> table = request.blockTable();
        for (int i = table.size() - 1; i >= 0; i--) pool.release(table.get(i));
        table.clear();
        request.blockKeys().clear();
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
