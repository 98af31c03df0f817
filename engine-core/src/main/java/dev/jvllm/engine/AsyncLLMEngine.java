package dev.jvllm.engine;

import dev.jvllm.InvalidRequestException;
import dev.jvllm.LoraRequest;
import dev.jvllm.Prompt;
import dev.jvllm.RequestFailedException;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * An {@link LLMEngine} on a thread of its own, for servers and other multi-threaded callers (vLLM's
 * {@code AsyncLLMEngine}). Any number of threads may {@link #submit} and {@link #abort} at any time;
 * the engine thread takes their requests in between steps, so they join the running batch at the
 * next step (continuous batching). Each request is a {@link RequestStream}: a
 * {@link java.util.concurrent.Flow.Publisher} of its outputs as they are generated and a
 * {@link CompletableFuture} of its final output.
 *
 * <pre>{@code
 * try (AsyncLLMEngine engine = LLM.builder().model("models/jvllm-demo").buildAsync()) {
 *     RequestStream stream = engine.submit("req-1", Prompt.text("Once upon a time"), params);
 *     stream.subscribe(subscriber);                   // deltas as they come
 *     RequestOutput done = stream.result().join();    // or just the final output
 * }
 * }</pre>
 *
 * <p>If a step throws, the engine is dead: every request in flight fails with
 * {@link EngineDeadException}, later submissions throw it at once, and the KV cache and the
 * resources given to the constructor are released. {@link #close()} likewise fails what is in
 * flight, with {@link EngineClosedException}.
 */
public final class AsyncLLMEngine implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(AsyncLLMEngine.class);

    private final RequestLatencies latencies = new RequestLatencies();
    /** False for an engine lent to this one ({@link #borrowing}): it is then left open when this one stops. */
    private final boolean ownsEngine;

    private final LLMEngine engine;
    private final AutoCloseable resources;
    private final LinkedBlockingQueue<Runnable> commands = new LinkedBlockingQueue<>();
    private final Map<String, RequestStream> inFlight = new ConcurrentHashMap<>();
    private final Executor deliveries = task -> Thread.ofVirtual().name("jvllm-stream").start(task);
    private final Thread thread;
    private volatile EngineMetrics metrics;
    /** Null while serving; then why it stopped (an {@link EngineDeadException} or {@link EngineClosedException}). */
    private volatile RuntimeException stopped;
    private boolean closeRequested;
    /** Runs on the engine thread after every step's outputs are published; tests use it to hold the engine still. */
    private volatile Runnable afterStep = () -> { };

    /** Starts the engine thread; the engine is this object's from now on (do not call it directly). */
    public AsyncLLMEngine(LLMEngine engine) {
        this(engine, null);
    }

    /**
     * Starts the engine thread; the engine is this object's from now on (do not call it directly).
     *
     * @param resources closed after the engine when this one stops (for example the {@code LLM} that
     *                  loaded the model), or null
     */
    public AsyncLLMEngine(LLMEngine engine, AutoCloseable resources) {
        this(engine, resources, true);
    }

    /**
     * Starts the engine thread over an engine it does not own (as {@code LLM.serveAsync} lends it): on
     * {@link #close()} the requests in flight fail and are aborted in the engine, which stays open, and
     * then {@code onStop} runs.
     */
    public static AsyncLLMEngine borrowing(LLMEngine engine, Runnable onStop) {
        Objects.requireNonNull(onStop, "onStop");
        return new AsyncLLMEngine(engine, onStop::run, false);
    }

    private AsyncLLMEngine(LLMEngine engine, AutoCloseable resources, boolean ownsEngine) {
        this.engine = Objects.requireNonNull(engine, "engine");
        this.resources = resources;
        this.ownsEngine = ownsEngine;
        this.metrics = engine.metrics();
        this.thread = Thread.ofPlatform().name("jvllm-engine").daemon(true).start(this::run);
    }

    /** Submits a text prompt (the model needs a tokenizer). */
    public RequestStream submit(String requestId, String prompt, SamplingParams params) {
        return submit(requestId, Prompt.text(prompt), params);
    }

    /** Submits a prompt given as token ids. */
    public RequestStream submit(String requestId, int[] promptTokenIds, SamplingParams params) {
        return submit(requestId, Prompt.tokens(promptTokenIds), params);
    }

    /**
     * Submits a request. Problems with the prompt itself (too long, token ids outside the
     * vocabulary) are found on the engine thread and fail the stream's result with an
     * {@link InvalidRequestException}.
     *
     * @throws InvalidRequestException if a request of this id is still in flight
     * @throws EngineDeadException     if the engine has died
     * @throws EngineClosedException   if the engine has been closed
     */
    public RequestStream submit(String requestId, Prompt prompt, SamplingParams params) {
        return submit(requestId, prompt, params, null);
    }

    /**
     * Submits a request that runs with a LoRA adapter ({@code lora}; null: none), read on the engine
     * thread when its id is first seen; an adapter that cannot be read fails the stream's result
     * with an {@link InvalidRequestException}, as a bad prompt does.
     */
    public RequestStream submit(String requestId, Prompt prompt, SamplingParams params, LoraRequest lora) {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(params, "params");
        throwIfStopped();
        RequestStream stream = new RequestStream(requestId, deliveries, () -> abort(requestId));
        if (inFlight.putIfAbsent(requestId, stream) != null) {
            throw new InvalidRequestException("requestId", "request id '" + requestId + "' is already in use");
        }
        // A stop racing with this submission either sees the stream in the map or is seen here.
        if (stopped != null) {
            inFlight.remove(requestId, stream);
            stream.fail(stopped);
            throwIfStopped();
        }
        commands.add(() -> {
            try {
                engine.addRequest(requestId, prompt, params, lora);
            } catch (InvalidRequestException rejected) {
                inFlight.remove(requestId, stream);
                stream.fail(rejected);
            }
        });
        return stream;
    }

    /**
     * Aborts a request: its blocks are freed at the engine's next pause between steps and its result
     * completes with finish reason "abort". False when no request of that id is in flight.
     */
    public boolean abort(String requestId) {
        RequestStream stream = inFlight.get(requestId);
        if (stream == null || stopped != null) return false;
        commands.add(() -> {
            RequestOutput last = engine.abortWithOutput(requestId);
            if (last != null) publish(last);
        });
        return true;
    }

    /** The engine's counters as of its last step. */
    public EngineMetrics metrics() {
        return metrics;
    }

    /** The latencies of the requests submitted here (time to first token, between tokens, end to end). */
    public RequestLatencies latencies() {
        return latencies;
    }

    /** Whether the engine still takes requests (not dead, not closed). */
    public boolean isRunning() {
        return stopped == null;
    }

    /**
     * Stops the engine thread: requests in flight fail with {@link EngineClosedException}, their
     * blocks are freed, and the engine (unless {@linkplain #borrowing borrowed}) and the constructor's
     * resources are closed. Waits for the
     * thread to end (unless called from it). Idempotent.
     */
    @Override
    public void close() {
        commands.add(() -> closeRequested = true);
        if (Thread.currentThread() == thread) return;
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Verifies, on the engine thread (or after it ended), that no request state is left and every
     * KV block is free with reference count 0.
     */
    void checkNoLeaks() throws InterruptedException {
        CompletableFuture<Void> checked = new CompletableFuture<>();
        commands.add(() -> {
            try {
                engine.checkNoLeaks();
                checked.complete(null);
            } catch (RuntimeException leak) {
                checked.completeExceptionally(leak);
            }
        });
        while (!checked.isDone() && thread.isAlive()) Thread.sleep(1);
        if (checked.isDone()) checked.join();
        else engine.checkNoLeaks(); // the thread ended: its last writes are visible after isAlive() returned false
    }

    /**
     * Runs {@code hook} on the engine thread after each step, once that step's outputs are published.
     * Commands queued while it runs (submissions, aborts, close) take effect right after it returns,
     * before the next step: tests make races between a request's end and those commands deterministic.
     */
    void afterEachStep(Runnable hook) {
        afterStep = Objects.requireNonNull(hook, "hook");
    }

    private void run() {
        RuntimeException reason;
        try {
            while (true) {
                Runnable command = engine.hasUnfinishedRequests() ? commands.poll() : commands.take();
                for (; command != null; command = commands.poll()) command.run();
                if (closeRequested) {
                    reason = new EngineClosedException("the engine was closed before the request finished");
                    break;
                }
                if (engine.hasUnfinishedRequests()) {
                    for (RequestOutput output : engine.stepDeltas()) publish(output);
                    afterStep.run();
                }
                metrics = engine.metrics();
            }
        } catch (InterruptedException e) {
            reason = new EngineClosedException("the engine thread was interrupted");
        } catch (RuntimeException | Error e) {
            log.error("engine step failed; the engine is dead", e);
            // Clients see the message (the server answers with it): the failure's own text, which may name
            // native addresses, stays in the log and the cause.
            Throwable root = e;
            while (root.getCause() != null && root.getCause() != root) root = root.getCause();
            reason = new EngineDeadException("engine dead: a step failed (" + root.getClass().getSimpleName()
                    + "; the log has its cause); no request can be served", e);
        }
        stop(reason);
    }

    /** An unfinished request's delta, or a finished one's whole output. */
    private void publish(RequestOutput output) {
        RequestStream stream = output.finished() ? inFlight.remove(output.requestId()) : inFlight.get(output.requestId());
        if (stream == null) return;
        latencies.observe(stream, output, !output.finished(), System.nanoTime());
        if (!output.finished()) {
            stream.publishDelta(output);
            return;
        }
        RequestFailedException failure = output.finished() ? engine.failure(output.requestId()) : null;
        if (failure != null) stream.fail(failure);
        else stream.publish(output);
    }

    /** Engine thread, last: fails everything in flight and releases the engine and its resources. */
    private void stop(RuntimeException reason) {
        stopped = reason;
        for (RequestStream stream : List.copyOf(inFlight.values())) {
            inFlight.remove(stream.requestId(), stream);
            stream.fail(reason);
        }
        try {
            if (ownsEngine) engine.close();
            else engine.abortAll();
            metrics = engine.metrics();
        } catch (Exception e) {
            log.warn("releasing the engine failed", e);
        } finally {
            try {
                if (resources != null) resources.close();
            } catch (Exception e) {
                log.warn("releasing the engine's resources failed", e);
            }
        }
    }

    private void throwIfStopped() {
        RuntimeException reason = stopped;
        if (reason instanceof EngineDeadException dead) {
            throw new EngineDeadException(dead.getMessage(), dead.getCause());
        }
        if (reason != null) throw new EngineClosedException("the engine is closed");
    }
}
