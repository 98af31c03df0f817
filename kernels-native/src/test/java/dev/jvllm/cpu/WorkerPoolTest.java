package dev.jvllm.cpu;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The worker pool splits ranges exactly, reports failures, and runs nested work inline. */
class WorkerPoolTest {

    @Test
    void everyIndexIsVisitedExactlyOnceAcrossManyJobs() {
        try (WorkerPool pool = new WorkerPool(3)) {
            for (int job = 0; job < 200; job++) {
                int count = 1 + job * 7;
                AtomicIntegerArray visits = new AtomicIntegerArray(count);
                pool.forEach(count, 1 + job % 5, (start, end, worker) -> {
                    assertTrue(worker >= 0 && worker < 3);
                    for (int i = start; i < end; i++) {
                        visits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < count; i++) {
                    assertEquals(1, visits.get(i), "index " + i + " of job " + job);
                }
            }
        }
    }

    @Test
    void blocksAreHandedOutOneAtATimeAndEachRunsOnce() {
        try (WorkerPool pool = new WorkerPool(3)) {
            for (int count = 1; count < 100; count += 7) {
                AtomicIntegerArray visits = new AtomicIntegerArray(count);
                pool.forEachBlock(count, (start, end, worker) -> {
                    assertEquals(start + 1, end, "one block per claim");
                    visits.incrementAndGet(start);
                });
                for (int i = 0; i < count; i++) {
                    assertEquals(1, visits.get(i), "block " + i + " of " + count);
                }
            }
        }
    }

    @Test
    void chunksAreHandedOutAtTheGivenSizeAndEachIndexRunsOnce() {
        try (WorkerPool pool = new WorkerPool(3)) {
            for (int count = 1; count < 300; count += 13) {
                for (int chunk : new int[]{1, 4, 64, 1000}) {
                    AtomicIntegerArray visits = new AtomicIntegerArray(count);
                    int n = count;
                    pool.forEachChunk(count, chunk, (start, end, worker) -> {
                        assertTrue(end - start == chunk || end == n || n <= chunk,
                                "claim [" + start + ", " + end + ") of chunk " + chunk);
                        for (int i = start; i < end; i++) {
                            visits.incrementAndGet(i);
                        }
                    });
                    for (int i = 0; i < count; i++) {
                        assertEquals(1, visits.get(i), "index " + i + " of " + count + " in chunks of " + chunk);
                    }
                }
            }
        }
    }

    @Test
    void aFailingChunkFailsTheCall() {
        try (WorkerPool pool = new WorkerPool(2)) {
            IllegalStateException boom = new IllegalStateException("boom");
            IllegalStateException thrown = assertThrows(IllegalStateException.class, () ->
                    pool.forEach(1000, 1, (start, end, worker) -> {
                        if (start <= 500 && 500 < end) {
                            throw boom;
                        }
                    }));
            assertSame(boom, thrown);
            // and the pool still works afterwards
            AtomicIntegerArray visits = new AtomicIntegerArray(10);
            pool.forEach(10, 1, (start, end, worker) -> visits.incrementAndGet(start));
            int total = 0;
            for (int i = 0; i < 10; i++) {
                total += visits.get(i);
            }
            assertTrue(total > 0);
        }
    }

    @Test
    void callsFromSeveralThreadsAreSerialized() throws InterruptedException {
        try (WorkerPool pool = new WorkerPool(2)) {
            java.util.concurrent.atomic.AtomicInteger inside = new java.util.concurrent.atomic.AtomicInteger();
            java.util.concurrent.atomic.AtomicInteger overlaps = new java.util.concurrent.atomic.AtomicInteger();
            Runnable caller = () -> {
                for (int job = 0; job < 300; job++) {
                    // a single chunk, run inline on worker 0's scratch
                    pool.forEach(4, 8, (start, end, worker) -> {
                        if (inside.incrementAndGet() > 1) {
                            overlaps.incrementAndGet();
                        }
                        Thread.onSpinWait();
                        inside.decrementAndGet();
                    });
                }
            };
            Thread a = new Thread(caller);
            Thread b = new Thread(caller);
            a.start();
            b.start();
            a.join();
            b.join();
            assertEquals(0, overlaps.get());
        }
    }

    @Test
    void nestedCallsRunOnTheCallingWorker() {
        try (WorkerPool pool = new WorkerPool(2)) {
            AtomicIntegerArray visits = new AtomicIntegerArray(64);
            pool.forEach(8, 1, (start, end, worker) -> {
                for (int outer = start; outer < end; outer++) {
                    int base = outer * 8;
                    pool.forEach(8, 1, (s, e, w) -> {
                        assertEquals(0, s);
                        assertEquals(8, e);
                        assertEquals(worker, w, "nested work keeps the worker's scratch");
                        for (int i = s; i < e; i++) {
                            visits.incrementAndGet(base + i);
                        }
                    });
                }
            });
            for (int i = 0; i < 64; i++) {
                assertEquals(1, visits.get(i));
            }
        }
    }
}
