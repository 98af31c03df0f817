package dev.jvllm.engine;

import org.junit.jupiter.api.Test;

import static dev.jvllm.engine.TestSequences.group;
import static dev.jvllm.engine.TestSequences.sequence;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvCacheManagerTest {

    /** Admits the request with whatever prefix it finds, computes all its tokens and caches its full blocks. */
    private static void prefill(KvCacheManager kv, EngineRequest r) {
        KvCacheManager.PrefixMatch prefix = kv.findSharedPrefix(r);
        int rest = r.numTokens() - prefix.blocks().length * kv.blockSize();
        assertTrue(kv.admit(r, rest, prefix));
        r.advanceComputed(rest);
        kv.cacheFullBlocks(r);
    }

    @Test
    void newRequestStartsOnTheLongestCachedPrefixAndComputesTheBlockOfItsLastToken() {
        KvCacheManager kv = new KvCacheManager(16, 4, true);
        EngineRequest first = sequence("a", 0, 12);
        prefill(kv, first);
        kv.free(first);
        EngineRequest same = sequence("b", 0, 12);
        KvCacheManager.PrefixMatch match = kv.findSharedPrefix(same);
        assertEquals(2, match.blocks().length, "3 full blocks, but the last token's block is computed");
        assertTrue(kv.admit(same, 4, match));
        assertEquals(8, same.numComputedTokens());
        assertEquals(12 + 12, kv.prefixQueryTokens(), "both requests' tokens were looked up");
        assertEquals(8, kv.prefixHitTokens());
    }

    @Test
    void divergingPromptSharesOnlyTheBlocksBeforeTheDifference() {
        KvCacheManager kv = new KvCacheManager(16, 4, true);
        prefill(kv, group("a", new int[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1, null).leader());
        EngineRequest other = group("b", new int[]{1, 2, 3, 4, 5, 6, 0, 8, 9, 10}, 1, null).leader();
        assertEquals(1, kv.findSharedPrefix(other).blocks().length);
    }

    @Test
    void differentSaltsNeverShareBlocks() {
        KvCacheManager kv = new KvCacheManager(16, 4, true);
        int[] prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        prefill(kv, group("a", prompt, 1, "tenant-a").leader());
        assertEquals(0, kv.findSharedPrefix(group("b", prompt, 1, "tenant-b").leader()).blocks().length);
        assertEquals(2, kv.findSharedPrefix(group("c", prompt, 1, "tenant-a").leader()).blocks().length);
    }

    @Test
    void admitChangesNothingWhenTooFewBlocksAreFree() {
        KvCacheManager kv = new KvCacheManager(3, 4, true);
        EngineRequest big = sequence("a", 0, 13);
        assertFalse(kv.admit(big, 13, KvCacheManager.PrefixMatch.NONE));
        assertEquals(3, kv.freeBlocks());
        assertEquals(0, big.blockTable().size());
        assertEquals(0, big.numComputedTokens());
    }

    @Test
    void siblingStartsOnTheFirstSequencesComputedPromptBlocksEvenWithoutPrefixCaching() {
        KvCacheManager kv = new KvCacheManager(16, 4, false);
        RequestGroup group = group("n2", 0, 10, 2);
        EngineRequest leader = group.leader();
        prefill(kv, leader);
        EngineRequest sibling = group.sequences.get(1);
        KvCacheManager.PrefixMatch match = kv.findSharedPrefix(sibling);
        assertArrayEquals(leader.blockTable().prefix(2), match.blocks());
        assertTrue(kv.admit(sibling, 2, match));
        assertEquals(3 + 1, 16 - kv.freeBlocks(), "the leader's 3 blocks and the sibling's own last block");
        kv.free(leader);
        kv.free(sibling);
        kv.checkAllFree();
    }

    @Test
    void freeingReturnsEveryBlock() {
        KvCacheManager kv = new KvCacheManager(8, 4, true);
        EngineRequest a = sequence("a", 0, 9);
        EngineRequest b = sequence("b", 0, 9);
        prefill(kv, a);
        prefill(kv, b);
        assertTrue(kv.grow(a, 5));
        kv.free(a);
        kv.free(b);
        assertEquals(8, kv.freeBlocks());
        kv.checkAllFree();
    }

    /** Blocks grown for guesses that were not kept go back: a request keeps the blocks its tokens need. */
    @Test
    void blocksPastARequestsTokensAreGivenBack() {
        KvCacheManager kv = new KvCacheManager(16, 4, true);
        EngineRequest r = sequence("a", 0, 5);
        assertTrue(kv.admit(r, 5 + 8, KvCacheManager.PrefixMatch.NONE), "its prompt and eight guesses");
        assertEquals(4, r.blockTable().size());
        int free = kv.freeBlocks();
        kv.trimToTokens(r);
        assertEquals(2, r.blockTable().size(), "5 tokens of 4");
        assertEquals(free + 2, kv.freeBlocks());
        kv.trimToTokens(r);
        assertEquals(2, r.blockTable().size(), "nothing more to give back");
        kv.free(r);
        kv.checkAllFree();
    }
}
