package dev.jvllm.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The one place the CPU backend runs work on several threads: a fixed set of workers that split
 * an index range between them. The calling thread is worker 0 and {@code size - 1} daemon threads
 * are the others, so a pool of size 1 runs everything on the caller.
 *
 * <p>Kernels are short (tens of microseconds to milliseconds) and come back to back, so idle
 * workers spin briefly before parking: a hand-off through a blocking queue would cost more than a
 * small kernel. Chunks are claimed dynamically, which absorbs uneven progress between cores.
 *
 * <p>Each worker owns a {@link WorkerScratch}; a task uses the scratch of the worker index it is
 * given, so kernels allocate nothing per call once the buffers have grown. Jobs from several
 * calling threads run one after another; a job started from inside a task runs inline.
 */
final class WorkerPool implements AutoCloseable {

    /** Work on the index range {@code [start, end)}, done by worker {@code worker}. */
    @FunctionalInterface
    interface RangeTask {
        void run(int start, int end, int worker);
    }

    /** How long an idle worker spins before parking, and a waiting caller before it parks. */
    private static final long SPIN_NANOS = 50_000;

    private final int size;
    private final Thread[] threads;
    private final WorkerScratch[] scratch;
    private final ReentrantLock callerLock = new ReentrantLock();

    // The current job, published to workers by the volatile write of `generation`.
    private RangeTask task;
    private int jobEnd;
    private int chunkSize;
    private volatile Thread caller;
    private volatile int generation;
    private volatile boolean closed;
    private final AtomicInteger nextStart = new AtomicInteger();
    private final AtomicInteger busyWorkers = new AtomicInteger();
    private volatile Throwable failure;

    WorkerPool(int size) {
        if (size < 1) {
            throw new IllegalArgumentException("a worker pool needs at least one thread, not " + size);
        }
        this.size = size;
        this.scratch = new WorkerScratch[size];
        for (int i = 0; i < size; i++) {
            scratch[i] = new WorkerScratch();
        }
        this.threads = new Thread[size - 1];
        for (int i = 1; i < size; i++) {
            int worker = i;
            threads[i - 1] = Thread.ofPlatform().daemon().name("jvllm-cpu-" + i).unstarted(() -> workLoop(worker));
            threads[i - 1].start();
        }
    }

    int size() {
        return size;
    }

    WorkerScratch scratch(int worker) {
        return scratch[worker];
    }

    /**
     * Runs {@code task} over {@code [0, count)} in chunks of at least {@code grain} indices and
     * returns when all are done; the first failure of any chunk is rethrown. Small ranges, and
     * calls made from inside a task, run on the calling thread alone (with its worker index).
     */
    void forEach(int count, int grain, RangeTask task) {
        int minChunk = Math.max(1, grain);
        // About four chunks per worker: few enough to keep claiming cheap, enough to balance.
        run(count, minChunk, Math.max(minChunk, (count + 4 * size - 1) / (4 * size)), task);
    }

    /**
     * As {@link #forEach} with claims of exactly {@code chunk} indices (the last one shorter): for
     * work whose chunks should stay small however large the range, so that the first worker to run
     * out of work waits for little of another's. A range of at most one chunk runs on the caller.
     */
    void forEachChunk(int count, int chunk, RangeTask task) {
        int size = Math.max(1, chunk);
        run(count, size, size, task);
    }

    /**
     * As {@link #forEach} for indices that are each a block of work worth a claim of its own
     * (microseconds or more, e.g. a tile of a matrix product): workers take them one at a time, so
     * the first to run out of work waits for at most one block of the other's.
     */
    void forEachBlock(int count, RangeTask task) {
        run(count, 1, 1, task);
    }

    private void run(int count, int minChunk, int chunk, RangeTask task) {
        if (count <= 0) {
            return;
        }
        int worker = workerIndexOf(Thread.currentThread());
        if (worker > 0) {
            task.run(0, count, worker); // nested in a task on a pool thread: stay there
            return;
        }
        if (callerLock.isHeldByCurrentThread()) {
            task.run(0, count, 0); // nested in a task on the calling thread, which is worker 0
            return;
        }
        // Held even for work run inline: it uses worker 0's scratch, which a concurrent caller would share.
        callerLock.lock();
        try {
            if (size == 1 || count <= minChunk) {
                task.run(0, count, 0);
            } else {
                runJob(count, chunk, task);
            }
        } finally {
            callerLock.unlock();
        }
    }

    private void runJob(int count, int chunk, RangeTask job) {
        this.task = job;
        this.jobEnd = count;
        this.chunkSize = chunk;
        this.failure = null;
        this.caller = Thread.currentThread();
        nextStart.set(0);
        busyWorkers.set(size - 1);
        generation++; // publishes the fields above
        for (Thread t : threads) {
            LockSupport.unpark(t);
        }
        runChunks(0);
        long spinUntil = System.nanoTime() + SPIN_NANOS;
        while (busyWorkers.get() > 0) {
            if (System.nanoTime() < spinUntil) {
                Thread.onSpinWait();
            } else {
                LockSupport.park(this);
            }
        }
        this.task = null;
        Throwable failed = failure;
        if (failed != null) {
            failure = null;
            if (failed instanceof RuntimeException e) {
                throw e;
            }
            if (failed instanceof Error e) {
                throw e;
            }
            throw new IllegalStateException("CPU kernel failed", failed);
        }
    }

    private void runChunks(int worker) {
        RangeTask job = task;
        int end = jobEnd;
        int chunk = chunkSize;
        try {
            for (int start = nextStart.getAndAdd(chunk); start < end; start = nextStart.getAndAdd(chunk)) {
                job.run(start, Math.min(end, start + chunk), worker);
            }
        } catch (Throwable t) {
            if (failure == null) {
                failure = t;
            }
            nextStart.set(end); // others stop claiming
        }
    }

    private void workLoop(int worker) {
        int seen = 0;
        while (true) {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (generation == seen && !closed) {
                if (System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            if (closed) {
                return;
            }
            seen = generation;
            runChunks(worker);
            if (busyWorkers.decrementAndGet() == 0) {
                LockSupport.unpark(caller);
            }
        }
    }

    /** The worker index of a pool thread, or 0 for any other thread. */
    private int workerIndexOf(Thread thread) {
        for (int i = 0; i < threads.length; i++) {
            if (threads[i] == thread) {
                return i + 1;
            }
        }
        return 0;
    }

    @Override
    public void close() {
        closed = true;
        for (Thread t : threads) {
            LockSupport.unpark(t);
        }
    }
}
