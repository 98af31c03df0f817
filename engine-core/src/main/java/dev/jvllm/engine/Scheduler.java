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
 *
 * <p>The sequences of an n > 1 request wait behind their first one until it has computed the
 * prompt, then start on its full prompt blocks; only the partial last block is computed again.
 */
final class Scheduler {

    /** One request's share of a step. */
    record Scheduled(EngineRequest request, int numTokens) {
    }

    private final KvCacheManager kv;
    private final int maxNumBatchedTokens;
    private final int maxNumSeqs;
    private final Deque<EngineRequest> waiting = new ArrayDeque<>();
    /**
     * In admission order. A request finished while running leaves it lazily: {@link #remove} clears
     * its {@link EngineRequest#running} flag and the list drops such requests in one pass before it
     * is next read, instead of a search per finished request (256 finishing at once were 256 scans).
     */
    private final List<EngineRequest> running = new ArrayList<>();
    private int removedFromRunning;
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
        return running.size() - removedFromRunning;
    }

    long preemptions() {
        return preemptions;
    }

    boolean hasUnfinished() {
        return !waiting.isEmpty() || numRunning() > 0;
    }

    List<Scheduled> schedule() {
        dropRemoved();
        List<Scheduled> out = new ArrayList<>(running.size());
        int budget = maxNumBatchedTokens;
        boolean preempted = false;
        for (int i = 0; i < running.size() && budget > 0; i++) {
            EngineRequest request = running.get(i);
            int tokens = Math.min(request.numTokens() - request.numComputedTokens(), budget);
            if (tokens <= 0) continue;
            while (!kv.grow(request, tokens)) {
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
            if (waitsForLeader(request)) break;
            KvCacheManager.PrefixMatch prefix = kv.findSharedPrefix(request);
            int remaining = request.numTokens() - request.numComputedTokens() - prefix.blocks().length * kv.blockSize();
            int tokens = Math.min(remaining, budget);
            if (!kv.admit(request, tokens, prefix)) break;
            waiting.removeFirst();
            running.add(request);
            request.running = true;
            out.add(new Scheduled(request, tokens));
            budget -= tokens;
        }
        return out;
    }

    /** A fresh sibling of an n > 1 request whose first sequence is running but has not yet computed the shareable prompt. */
    private boolean waitsForLeader(EngineRequest request) {
        EngineRequest leader = request.group().leader();
        if (leader == request || request.numOutputTokens() > 0) return false;
        int shareable = (request.promptLength() - 1) / kv.blockSize() * kv.blockSize();
        return shareable > 0 && leader.numComputedTokens() < shareable && leader.running;
    }

    private void preempt(EngineRequest request) {
        request.running = false;
        kv.free(request);
        request.resetForRecompute();
        waiting.addFirst(request);
        preemptions++;
    }

    /** Removes a finished or aborted request and frees its blocks. */
    void remove(EngineRequest request) {
        if (request.running) {
            request.running = false;
            removedFromRunning++;
        } else {
            waiting.remove(request);
        }
        kv.free(request);
    }

    private void dropRemoved() {
        if (removedFromRunning == 0) return;
        running.removeIf(r -> !r.running);
        removedFromRunning = 0;
    }

    /** All requests still queued or running, for abort-all and shutdown. */
    List<EngineRequest> all() {
        dropRemoved();
        List<EngineRequest> all = new ArrayList<>(running);
        all.addAll(waiting);
        return all;
    }
}
