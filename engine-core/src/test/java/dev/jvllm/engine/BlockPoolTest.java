package dev.jvllm.engine;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BlockPoolTest {

    private static PrefixCacheKey key(int token) {
        return PrefixCacheKey.of(null, new int[]{token}, 0, 1, null);
    }

    @Test
    void freedCachedBlockStaysFindableUntilItIsHandedOutAgain() {
        BlockPool pool = new BlockPool(2, true);
        int block = pool.allocate();
        pool.markCached(block, key(1));
        pool.release(block);
        assertEquals(block, pool.lookup(key(1)));
        assertEquals(2, pool.freeCount());
        pool.allocate();
        pool.allocate();
        assertNull(pool.lookup(key(1)), "evicted when every block was taken");
    }

    @Test
    void leastRecentlyFreedCachedBlockIsEvictedFirst() {
        BlockPool pool = new BlockPool(3, true);
        int a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
        pool.markCached(a, key(1));
        pool.markCached(b, key(2));
        pool.release(b);
        pool.release(a);
        pool.release(c);
        assertEquals(b, pool.allocate());
        assertNull(pool.lookup(key(2)));
        assertEquals(a, pool.lookup(key(1)));
    }

    @Test
    void sharingACachedFreeBlockTakesItOutOfTheFreeQueue() {
        BlockPool pool = new BlockPool(2, true);
        int block = pool.allocate();
        pool.markCached(block, key(1));
        pool.release(block);
        pool.share(block);
        assertEquals(1, pool.freeCount());
        assertTrue(pool.allocate() != block);
        assertThrows(IllegalStateException.class, pool::allocate, "no free KV block");
    }

    @Test
    void sharingABlockFromTheMiddleOfTheFreeQueueKeepsTheOthersInOrder() {
        BlockPool pool = new BlockPool(4, true);
        int a = pool.allocate(), b = pool.allocate(), c = pool.allocate(), d = pool.allocate();
        pool.markCached(c, key(3));
        pool.release(d);
        pool.release(c);
        pool.release(a);
        pool.release(b);
        pool.share(c);
        assertEquals(3, pool.freeCount());
        assertEquals(d, pool.allocate());
        assertEquals(a, pool.allocate());
        pool.release(c);
        assertEquals(b, pool.allocate());
        assertEquals(c, pool.allocate());
        assertThrows(IllegalStateException.class, pool::allocate, "no free KV block");
    }

    @Test
    void releasingAFreeBlockIsAnError() {
        BlockPool pool = new BlockPool(1, true);
        int block = pool.allocate();
        pool.release(block);
        var e = assertThrows(IllegalStateException.class, () -> pool.release(block));
        assertTrue(e.getMessage().contains("released twice"), e.getMessage());
    }

    @Test
    void withPrefixCachingOffNothingIsFound() {
        BlockPool pool = new BlockPool(1, false);
        int block = pool.allocate();
        pool.markCached(block, key(1));
        assertNull(pool.lookup(key(1)));
    }

    @Test
    void leakCheckNamesTheBlockStillHeld() {
        BlockPool pool = new BlockPool(4, true);
        pool.allocate();
        int held = pool.allocate();
        pool.release(0);
        var e = assertThrows(IllegalStateException.class, pool::checkAllFree);
        assertTrue(e.getMessage().contains("KV block " + held + " is still held (reference count 1"), e.getMessage());
        pool.release(held);
        pool.checkAllFree();
    }
}
