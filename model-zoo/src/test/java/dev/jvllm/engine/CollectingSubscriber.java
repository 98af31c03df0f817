package dev.jvllm.engine;

import dev.jvllm.RequestOutput;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Flow;

/** Collects a request's streamed outputs; {@link #done} completes with them, or fails with the stream's error. */
final class CollectingSubscriber implements Flow.Subscriber<RequestOutput> {

    final List<RequestOutput> items = new CopyOnWriteArrayList<>();
    final CompletableFuture<List<RequestOutput>> done = new CompletableFuture<>();
    private final int cancelAfter;
    private Flow.Subscription subscription;

    /** Takes everything. */
    CollectingSubscriber() {
        this(Integer.MAX_VALUE);
    }

    /** Cancels its subscription once it has {@code cancelAfter} items. */
    CollectingSubscriber(int cancelAfter) {
        this.cancelAfter = cancelAfter;
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
        subscription = s;
        s.request(1);
    }

    @Override
    public void onNext(RequestOutput item) {
        items.add(item);
        if (items.size() >= cancelAfter) {
            subscription.cancel();
            done.complete(items);
        } else {
            subscription.request(1);
        }
    }

    @Override
    public void onError(Throwable error) {
        done.completeExceptionally(error);
    }

    @Override
    public void onComplete() {
        done.complete(items);
    }
}
