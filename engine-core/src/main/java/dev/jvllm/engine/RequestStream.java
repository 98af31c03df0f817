package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.RequestOutput;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;

/**
 * One request submitted to an {@link AsyncLLMEngine}: its outputs as they are generated, and its
 * final output.
 *
 * <p>As a {@link Flow.Publisher} it streams deltas (vLLM's {@code RequestOutputKind.DELTA}): each
 * item holds, per sequence, only the tokens, log probabilities and text new since the previous item,
 * so the items' texts concatenate to the final text; the last item has {@code finished() == true},
 * then {@code onComplete} follows. One subscriber per request; items produced before it subscribes
 * are kept for it. Signals arrive on a virtual thread, never on the engine's. Cancelling the
 * subscription aborts the request.
 *
 * <p>{@link #result()} completes with the whole output once the request ends (an aborted request
 * ends normally, with finish reason "abort"); it fails with {@link dev.jvllm.InvalidRequestException}
 * if the engine rejected the request, or {@link EngineDeadException} / {@link EngineClosedException}
 * if the engine stopped first. Cancelling it aborts the request. Dependent actions attached with
 * the non-async methods ({@code thenApply}, ...) run on the engine thread: keep them short.
 */
public final class RequestStream implements Flow.Publisher<RequestOutput> {

    private final String requestId;
    private final Executor deliveries;
    private final Runnable abortRequest;
    private final CompletableFuture<RequestOutput> result = new CompletableFuture<>();

    private final long submittedNanos = System.nanoTime();
    // Engine thread only: the latencies' state (RequestLatencies.observe).
    int tokensSeen;
    long lastTokenNanos;
    /** The answers (by index) whose end the latencies have counted. */
    final java.util.BitSet answersEnded = new java.util.BitSet();

    // Written by the engine thread only: what earlier deltas already carried, per sequence.
    private int[] sentTokens = new int[0];
    private int[] sentChars = new int[0];
    private boolean[] sentFinished = new boolean[0];
    private boolean sentPromptLogprobs;

    // Delivery state, guarded by this.
    private final Queue<RequestOutput> pending = new ArrayDeque<>();
    private Flow.Subscriber<? super RequestOutput> subscriber;
    private boolean subscribed;
    private long demand;
    private boolean ended;
    private Throwable failure;
    private Throwable protocolViolation;
    private boolean cancelled;
    private boolean terminated;
    private boolean draining;

    RequestStream(String requestId, Executor deliveries, Runnable abortRequest) {
        this.requestId = requestId;
        this.deliveries = deliveries;
        this.abortRequest = abortRequest;
        result.whenComplete((output, error) -> {
            if (error instanceof CancellationException) abortRequest.run();
        });
    }

    public String requestId() {
        return requestId;
    }

    /** When the request was submitted (System.nanoTime). */
    long submittedNanos() {
        return submittedNanos;
    }

    /** The final output, complete once every sequence has ended. */
    public CompletableFuture<RequestOutput> result() {
        return result;
    }

    /** Aborts the request (as {@link AsyncLLMEngine#abort}); its result then completes with finish reason "abort". */
    public void abort() {
        abortRequest.run();
    }

    @Override
    public void subscribe(Flow.Subscriber<? super RequestOutput> s) {
        synchronized (this) {
            if (subscriber == null) {
                subscriber = s;
                s = null;
            }
        }
        if (s != null) {
            s.onSubscribe(new Flow.Subscription() {
                @Override
                public void request(long n) {
                }

                @Override
                public void cancel() {
                }
            });
            s.onError(new IllegalStateException("request " + requestId + " already has a subscriber"));
            return;
        }
        signal();
    }

    /** Engine thread: the request's output so far; queues what is new and completes the result when finished. */
    void publish(RequestOutput cumulative) {
        RequestOutput delta = delta(cumulative);
        synchronized (this) {
            if (delta != null) pending.add(delta);
            if (cumulative.finished()) ended = true;
        }
        if (cumulative.finished()) result.complete(cumulative);
        signal();
    }

    /** Engine thread: what an unfinished request added in a step ({@link LLMEngine#stepDeltas}), queued as it is. */
    void publishDelta(RequestOutput delta) {
        for (CompletionOutput c : delta.outputs()) {
            int i = c.index();
            grow(i + 1);
            sentTokens[i] += c.tokenIds().size();
            sentChars[i] += c.text().length();
            sentFinished[i] = c.finished();
        }
        if (delta.promptLogprobs() != null) sentPromptLogprobs = true;
        synchronized (this) {
            pending.add(delta);
        }
        signal();
    }

    /** The request will produce nothing more: the subscriber gets {@code onError} (after queued items it has asked for). */
    void fail(Throwable error) {
        synchronized (this) {
            if (ended || failure != null) return;
            failure = error;
        }
        result.completeExceptionally(error);
        signal();
    }

    private RequestOutput delta(RequestOutput out) {
        grow(out.outputs().stream().mapToInt(CompletionOutput::index).max().orElse(-1) + 1);
        List<CompletionOutput> changed = new ArrayList<>();
        for (CompletionOutput c : out.outputs()) {
            int i = c.index();
            int tokens = c.tokenIds().size();
            int chars = c.text().length();
            boolean newlyFinished = c.finished() && !sentFinished[i];
            if (tokens == sentTokens[i] && chars == sentChars[i] && !newlyFinished) continue;
            changed.add(new CompletionOutput(i, c.text().substring(sentChars[i]), c.tokenIds().subList(sentTokens[i], tokens),
                    c.cumulativeLogprob(), c.logprobs() == null ? null : c.logprobs().subList(sentTokens[i], tokens),
                    c.finishReason(), c.stopReason()));
            sentTokens[i] = tokens;
            sentChars[i] = chars;
            sentFinished[i] = c.finished();
        }
        if (changed.isEmpty() && !out.finished()) return null;
        var promptLogprobs = sentPromptLogprobs ? null : out.promptLogprobs();
        sentPromptLogprobs = true;
        return new RequestOutput(out.requestId(), out.prompt(), out.promptTokenIds(), promptLogprobs, changed,
                out.finished());
    }

    private void grow(int sequences) {
        if (sentTokens.length < sequences) {
            sentTokens = Arrays.copyOf(sentTokens, sequences);
            sentChars = Arrays.copyOf(sentChars, sequences);
            sentFinished = Arrays.copyOf(sentFinished, sequences);
        }
    }

    /** Starts a drain on the delivery executor unless one is running or there is no subscriber yet. */
    private void signal() {
        synchronized (this) {
            if (draining || subscriber == null || terminated) return;
            draining = true;
        }
        deliveries.execute(this::drain);
    }

    /** Delivers signals one at a time, in order, while the subscriber has demand (Reactive Streams rule 1.3). */
    private void drain() {
        while (true) {
            Flow.Subscriber<? super RequestOutput> s;
            RequestOutput next = null;
            Throwable error = null;
            boolean subscribe = false;
            boolean complete = false;
            synchronized (this) {
                s = subscriber;
                if (cancelled || terminated) {
                    draining = false;
                    return;
                }
                if (!subscribed) {
                    subscribed = subscribe = true;
                } else if (protocolViolation != null) {
                    terminated = true;
                    error = protocolViolation;
                } else if (demand > 0 && !pending.isEmpty()) {
                    next = pending.poll();
                    demand--;
                } else if (failure != null || (ended && pending.isEmpty())) {
                    terminated = true;
                    error = failure;
                    complete = failure == null;
                } else {
                    draining = false;
                    return;
                }
            }
            try {
                if (subscribe) s.onSubscribe(new Subscription());
                else if (next != null) s.onNext(next);
                else if (complete) s.onComplete();
                else s.onError(error);
            } catch (RuntimeException | Error misbehaving) {
                // A subscriber must not throw (rule 2.13): treat it as gone.
                cancelSubscription();
            }
        }
    }

    private void cancelSubscription() {
        synchronized (this) {
            cancelled = true;
            pending.clear();
        }
        abortUnlessEnded();
    }

    private void abortUnlessEnded() {
        boolean running;
        synchronized (this) {
            running = !ended && failure == null;
        }
        if (running) abortRequest.run();
    }

    private final class Subscription implements Flow.Subscription {
        @Override
        public void request(long n) {
            if (n <= 0) {
                synchronized (RequestStream.this) {
                    protocolViolation = new IllegalArgumentException(
                            "request(" + n + ") on the stream of " + requestId + ": demand must be positive (rule 3.9)");
                    pending.clear();
                }
                abortUnlessEnded();
            } else {
                synchronized (RequestStream.this) {
                    demand = demand + n < 0 ? Long.MAX_VALUE : demand + n;
                }
            }
            signal();
        }

        @Override
        public void cancel() {
            cancelSubscription();
        }
    }
}
