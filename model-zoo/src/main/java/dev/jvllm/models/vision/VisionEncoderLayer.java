package dev.jvllm.models.vision;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.FeedForward;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Norm;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/**
 * The pre-norm layer of the vision towers (CLIP, InternViT, Qwen2-VL's, Qwen2.5-VL's):
 * {@code x += O(attention(norm₁ x))}, {@code x += mlp(norm₂ x)}, attention bidirectional
 * within each image. What a tower does to the queries and keys before attention (InternViT's
 * norms, Qwen2-VL's rotary) is its {@link QueryKeyStep}.
 */
record VisionEncoderLayer(Norm attentionNorm, Linear[] qkv, Linear output, Norm mlpNorm, FeedForward mlp) {

    /** The queries and keys attention reads, from the projected ones (which it may rewrite in place). */
    @FunctionalInterface
    interface QueryKeyStep {
        QueryKeyStep NONE = (q, k, scratch) -> new Tensor[]{q, k};

        Tensor[] apply(Tensor q, Tensor k, Scratch scratch);
    }

    /** Runs of tokens of these lengths, end to end, as sequences: attention stays within each (an image, a window). */
    static ForwardBatch sequences(java.util.List<Integer> lengths) {
        int n = lengths.size(), tokens = lengths.stream().mapToInt(Integer::intValue).sum();
        int[] positions = new int[tokens];
        int[] starts = new int[n + 1];
        int[] contexts = new int[n];
        for (int i = 0, at = 0; i < n; i++) {
            contexts[i] = lengths.get(i);
            for (int j = 0; j < contexts[i]; j++) positions[at++] = j;
            starts[i + 1] = starts[i] + contexts[i];
        }
        return new ForwardBatch(new int[tokens], positions, new int[tokens], starts, contexts, new int[n][0], 1, new int[0]);
    }

    /** x ([tokens, width]) through the layer, in place. */
    void forward(Backend backend, Scratch scratch, Tensor x, ForwardBatch sequences, AttentionParams attention,
                 QueryKeyStep queryKeyStep) {
        int tokens = x.rows(), width = x.cols();
        Tensor normed = scratch.get("encoder.normed", tokens, width);
        Tensor q = scratch.get("encoder.q", tokens, width);
        Tensor k = scratch.get("encoder.k", tokens, width);
        Tensor v = scratch.get("encoder.v", tokens, width);
        Tensor context = scratch.get("encoder.context", tokens, width);
        Tensor branch = scratch.get("encoder.branch", tokens, width);
        attentionNorm.apply(backend, x, normed);
        Linear.applyAll(backend, normed, qkv, new Tensor[]{q, k, v});
        Tensor[] queriesAndKeys = queryKeyStep.apply(q, k, scratch);
        backend.encoderAttention(queriesAndKeys[0], queriesAndKeys[1], v, sequences, attention, context);
        output.applyPlusResidual(backend, context, x, branch);
        mlpNorm.apply(backend, branch, normed);
        mlp.forwardPlusResidual(backend, normed, scratch, branch, x);
    }
}
