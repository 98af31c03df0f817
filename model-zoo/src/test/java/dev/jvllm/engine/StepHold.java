package dev.jvllm.engine;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * An {@link AsyncLLMEngine#afterEachStep} hook that holds the engine thread after its n-th step until
 * the test releases it, so that what the test does meanwhile (an abort, a duplicate submission, a
 * close) lands while the request is certainly still running.
 */
final class StepHold implements Runnable {

    private final int afterSteps;
    private final CountDownLatch held = new CountDownLatch(1);
    private final CountDownLatch released = new CountDownLatch(1);
    private int steps;

    StepHold(int afterSteps) {
        this.afterSteps = afterSteps;
    }

    @Override
    public void run() {
        if (++steps != afterSteps) return;
        held.countDown();
        try {
            if (!released.await(60, TimeUnit.SECONDS)) throw new IllegalStateException("the test never released the engine");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Waits until the engine thread is held after its n-th step. */
    void awaitHeld() throws InterruptedException {
        if (!held.await(60, TimeUnit.SECONDS)) throw new IllegalStateException("the engine never reached step " + afterSteps);
    }

    void release() {
        released.countDown();
    }
}
