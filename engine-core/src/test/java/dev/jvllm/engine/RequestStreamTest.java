package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.FinishReason;
import dev.jvllm.RequestOutput;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RequestStreamTest {

    private final AtomicInteger aborts = new AtomicInteger();
    /** Delivers on the publishing thread, so every signal has arrived when a call returns. */
    private final RequestStream stream = new RequestStream("r", Runnable::run, aborts::incrementAndGet);

    /** The cumulative output of one sequence after {@code tokens} tokens, each of text "t". */
    private static RequestOutput output(int tokens, FinishReason reason) {
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < tokens; i++) ids.add(i);
        CompletionOutput c = new CompletionOutput(0, "t".repeat(tokens), ids, Double.NaN, null, reason, null);
        return new RequestOutput("r", "prompt", List.of(1, 2), null, List.of(c), reason != null);
    }

    /** Records signals; asks for {@code demand} items up front. */
    private static final class Recorder implements Flow.Subscriber<RequestOutput> {
        final List<String> signals = new ArrayList<>();
        final long demand;
        Flow.Subscription subscription;
        Throwable error;

        Recorder(long demand) {
            this.demand = demand;
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            signals.add("subscribe");
            if (demand > 0) s.request(demand);
        }

        @Override
        public void onNext(RequestOutput item) {
            signals.add(item.text() + (item.finished() ? "!" : ""));
        }

        @Override
        public void onError(Throwable t) {
            error = t;
            signals.add("error");
        }

        @Override
        public void onComplete() {
            signals.add("complete");
        }
    }

    @Test
    void subscriberGetsDeltasThatConcatenateToTheFinalText() {
        Recorder r = new Recorder(Long.MAX_VALUE);
        stream.subscribe(r);
        stream.publish(output(1, null));
        stream.publish(output(3, null));
        stream.publish(output(4, FinishReason.LENGTH));
        assertEquals(List.of("subscribe", "t", "tt", "t!", "complete"), r.signals);
        assertEquals("tttt", stream.result().join().text());
    }

    @Test
    void itemsPublishedBeforeSubscribingAreKeptForTheSubscriber() {
        stream.publish(output(2, null));
        stream.publish(output(3, FinishReason.STOP));
        Recorder r = new Recorder(Long.MAX_VALUE);
        stream.subscribe(r);
        assertEquals(List.of("subscribe", "tt", "t!", "complete"), r.signals);
    }

    @Test
    void itemsWaitForDemand() {
        Recorder r = new Recorder(0);
        stream.subscribe(r);
        stream.publish(output(1, null));
        stream.publish(output(2, FinishReason.LENGTH));
        assertEquals(List.of("subscribe"), r.signals);
        r.subscription.request(1);
        assertEquals(List.of("subscribe", "t"), r.signals);
        r.subscription.request(1);
        assertEquals(List.of("subscribe", "t", "t!", "complete"), r.signals);
    }

    @Test
    void secondSubscriberIsRefused() {
        stream.subscribe(new Recorder(1));
        Recorder second = new Recorder(1);
        stream.subscribe(second);
        assertInstanceOf(IllegalStateException.class, second.error);
    }

    @Test
    void cancellingAbortsTheRequestButNotOnceItHasEnded() {
        Recorder r = new Recorder(1);
        stream.subscribe(r);
        r.subscription.cancel();
        assertEquals(1, aborts.get());
        RequestStream ended = new RequestStream("e", Runnable::run, aborts::incrementAndGet);
        Recorder late = new Recorder(Long.MAX_VALUE);
        ended.publish(output(1, FinishReason.STOP));
        ended.subscribe(late);
        late.subscription.cancel();
        assertEquals(1, aborts.get());
    }

    @Test
    void nonPositiveDemandIsAnErrorThatAbortsTheRequest() {
        Recorder r = new Recorder(0);
        stream.subscribe(r);
        r.subscription.request(0);
        assertInstanceOf(IllegalArgumentException.class, r.error);
        assertEquals(1, aborts.get());
    }

    @Test
    void failureReachesSubscriberAndResultWithoutWaitingForDemand() {
        Recorder r = new Recorder(0);
        stream.subscribe(r);
        stream.publish(output(1, null));
        stream.fail(new EngineClosedException("closed"));
        assertInstanceOf(EngineClosedException.class, r.error);
        assertTrue(stream.result().isCompletedExceptionally());
    }
}
