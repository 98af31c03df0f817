package dev.jvllm.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Decides each step which requests run and how many of their tokens: running requests first (one
 * decode token, or the rest of a chunked prompt), then waiting ones while the token budget and the
 * sequence limit allow. Prompts longer than the budget are split over steps (chunked prefill). When
 * KV blocks run out, the most recently admitted running request is preempted: its blocks are freed
 * and it is recomputed later from its tokens, so it finishes with the output it would have had.
 */
final class Scheduler {

    /** One request's share of a step. */
    record Scheduled(EngineRequest request, int numTokens) {
    }

    private final KvCacheManager kv;
    private final int maxNumBatchedTokens;
    private final int maxNumSeqs;
    private final Deque<EngineRequest> waiting = new ArrayDeque<>();
    private final List<EngineRequest> running = new ArrayList<>();
    private long preemptions;

    Scheduler(KvCacheManager kv, int maxNumBatchedTokens, int maxNumSeqs) {
        this.kv = kv;
        this.maxNumBatchedTokens = maxNumBatchedTokens;
        this.maxNumSeqs = maxNumSeqs;
    }

    void add(EngineRequest request) {
        waiting.addLast(request);
    }

    int numWaiting() {
        return waiting.size();
    }

    int numRunning() {
        return running.size();
    }

    long preemptions() {
        return preemptions;
    }

    boolean hasUnfinished() {
        return !waiting.isEmpty() || !running.isEmpty();
    }

    List<Scheduled> schedule() {
        List<Scheduled> out = new ArrayList<>();
        int budget = maxNumBatchedTokens;
        boolean preempted = false;
        for (int i = 0; i < running.size() && budget > 0; i++) {
            EngineRequest request = running.get(i);
            int tokens = Math.min(request.numTokens() - request.numComputedTokens(), budget);
            if (tokens <= 0) continue;
            while (!kv.allocate(request, tokens, List.of())) {
                EngineRequest victim = running.removeLast();
                preempt(victim);
                preempted = true;
                if (victim == request) {
                    request = null;
                    break;
                }
            }
            if (request == null) break;
            out.add(new Scheduled(request, tokens));
            budget -= tokens;
        }
        while (!preempted && budget > 0 && !waiting.isEmpty() && running.size() < maxNumSeqs) {
            EngineRequest request = waiting.peekFirst();
            List<Integer> cached = request.numComputedTokens() == 0 ? kv.findCachedPrefix(request) : List.of();
            int remaining = request.numTokens() - request.numComputedTokens() - cached.size() * kv.blockSize();
            int tokens = Math.min(remaining, budget);
            if (!kv.allocate(request, tokens, cached)) break;
            waiting.removeFirst();
            running.add(request);
            out.add(new Scheduled(request, tokens));
            budget -= tokens;
        }
        return out;
    }

    private void preempt(EngineRequest request) {
        kv.free(request);
        request.resetForRecompute();
        waiting.addFirst(request);
        preemptions++;
    }

    /** Removes a finished or aborted request and frees its blocks. */
    void remove(EngineRequest request) {
        if (!running.remove(request)) waiting.remove(request);
        kv.free(request);
    }

    /** All requests still queued or running, for abort-all and shutdown. */
    List<EngineRequest> all() {
        List<EngineRequest> all = new ArrayList<>(running);
        all.addAll(waiting);
        return all;
    }
}
