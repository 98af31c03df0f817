package dev.jvllm.engine;

import java.util.Arrays;
import java.util.List;

/**
 * Gives requests KV blocks: starts a new request on blocks that already hold a prefix of its
 * tokens, grows block tables as tokens are scheduled, records full blocks in the prefix cache, and
 * frees everything a finished, aborted or preempted request held.
 */
final class KvCacheManager {

    /**
     * Blocks that already hold the first {@code blocks.size() × blockSize} tokens of a request, and
     * what the prefix-cache lookup behind them found (for the hit counters).
     */
    record PrefixMatch(int[] blocks, int queriedTokens, int cacheHitTokens) {
        static final PrefixMatch NONE = new PrefixMatch(new int[0], 0, 0);
    }

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
     * For a request with nothing computed: the longest run of blocks already holding a prefix of its
     * tokens, leaving at least one token to compute (its logits are needed). Two sources: the prefix
     * cache, and for sequence i > 0 of an n > 1 request the full prompt blocks its first sequence has
     * computed, so the n sequences share the prompt even with prefix caching off.
     */
    PrefixMatch findSharedPrefix(EngineRequest request) {
        int usable = (request.numTokens() - 1) / blockSize;
        int[] fromLeader = leaderPromptBlocks(request, usable);
        if (!pool.prefixCaching()) return new PrefixMatch(fromLeader, 0, 0);
        int[] fromCache = new int[usable];
        int cached = 0;
        PrefixCacheKey parent = null;
        for (int b = 0; b < usable; b++) {
            PrefixCacheKey key = request.blockKey(b, parent, blockSize);
            Integer block = pool.lookup(key);
            if (block == null) break;
            fromCache[cached++] = block;
            parent = key;
        }
        int[] longer = fromLeader.length > cached ? fromLeader : Arrays.copyOf(fromCache, cached);
        return new PrefixMatch(longer, request.numTokens(), cached * blockSize);
    }

    /** The prompt blocks of the request's first sequence that it could take over, at most {@code usable}. */
    private int[] leaderPromptBlocks(EngineRequest request, int usable) {
        EngineRequest leader = request.group().leader();
        if (leader == request || leader.finished()) return PrefixMatch.NONE.blocks();
        int computedPromptBlocks = Math.min(request.promptLength(), leader.numComputedTokens()) / blockSize;
        int count = Math.min(usable, Math.min(computedPromptBlocks, leader.blockTable().size()));
        return leader.blockTable().prefix(count);
    }

    /**
     * Starts a waiting request: takes the blocks of {@code prefix} (those tokens count as computed)
     * and makes room for {@code newTokens} more. False, with nothing changed, when too few blocks are free.
     */
    boolean admit(EngineRequest request, int newTokens, PrefixMatch prefix) {
        int[] shared = prefix.blocks();
        int computed = request.numComputedTokens() + shared.length * blockSize;
        int needed = ceilDiv(computed + newTokens, blockSize) - request.blockTable().size() - shared.length;
        int sharedFromFree = 0;
        for (int block : shared) if (pool.refCount(block) == 0) sharedFromFree++;
        if (Math.max(0, needed) + sharedFromFree > pool.freeCount()) return false;
        for (int block : shared) {
            pool.share(block);
            request.blockTable().add(block);
        }
        request.advanceComputed(shared.length * blockSize);
        for (int i = 0; i < needed; i++) request.blockTable().add(pool.allocate());
        prefixQueries += prefix.queriedTokens();
        prefixHits += prefix.cacheHitTokens();
        return true;
    }

    /** Makes room for {@code newTokens} more tokens of a running request; false, with nothing changed, when blocks run out. */
    boolean grow(EngineRequest request, int newTokens) {
        return admit(request, newTokens, PrefixMatch.NONE);
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

    /**
     * Releases the request's blocks past those its tokens need (grown for guesses that were not kept):
     * they hold no computed token, so no cached prefix, and are the request's alone.
     */
    void trimToTokens(EngineRequest request) {
        shrinkTo(request, ceilDiv(request.numTokens(), blockSize));
    }

    /** Releases the request's blocks from {@code blocks} on: ones grown for tokens not computed (never cached). */
    void shrinkTo(EngineRequest request, int blocks) {
        int[] dropped = request.blockTable().truncate(blocks);
        for (int i = dropped.length - 1; i >= 0; i--) pool.release(dropped[i]);
    }

    /** Releases every block of the request, tail first so a shared prefix outlives its continuations. */
    void free(EngineRequest request) {
        BlockTable table = request.blockTable();
        for (int i = table.size() - 1; i >= 0; i--) pool.release(table.get(i));
        table.clear();
        request.blockKeys().clear();
    }

    /** @see BlockPool#checkAllFree() */
    void checkAllFree() {
        pool.checkAllFree();
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
