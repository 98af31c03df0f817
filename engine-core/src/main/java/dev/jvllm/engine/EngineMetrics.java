package dev.jvllm.engine;

/**
 * Counters of an engine at one moment.
 *
 * @param running              sequences being generated
 * @param waiting              sequences queued (new or preempted)
 * @param kvBlocksTotal        KV-cache blocks in the pool
 * @param kvBlocksFree         blocks not held by any sequence (cached prefixes included)
 * @param prefixCacheQueries   prompt tokens looked up in the prefix cache
 * @param prefixCacheHits      of those, tokens found cached
 * @param preemptions          sequences preempted so far
 * @param promptTokensComputed prompt tokens run through the model
 * @param generatedTokens      tokens sampled
 * @param steps                forward passes run
 * @param stepNanos            wall time spent in steps
 * @param forwardNanos         of that, time the engine's thread spent issuing forward passes (on a
 *                             GPU the kernels run asynchronously: this is the host's share)
 * @param resultNanos          of that, time spent getting the logits or their argmax back (on a GPU:
 *                             waiting for the device to finish the step)
 * @param imageNanos           of the step time too, apart from the two above: time spent encoding the
 *                             images a step reaches before its forward pass (their preprocessing where
 *                             it was not made ahead, and issuing the vision tower; vision-language
 *                             models, 0 for others)
 * @param draftTokens          speculative decoding: guessed tokens run through the model to be verified
 *                             (vLLM's {@code spec_decode_num_draft_tokens}); 0 without it
 * @param acceptedDraftTokens  of those, tokens the model's own draw agreed with, each a token gained
 *                             without a step of its own ({@code spec_decode_num_accepted_tokens})
 */
public record EngineMetrics(int running, int waiting, int kvBlocksTotal, int kvBlocksFree, long prefixCacheQueries,
                            long prefixCacheHits, long preemptions, long promptTokensComputed, long generatedTokens,
                            long steps, long stepNanos, long forwardNanos, long resultNanos, long imageNanos,
                            long draftTokens, long acceptedDraftTokens) {

    public int kvBlocksUsed() {
        return kvBlocksTotal - kvBlocksFree;
    }
}
