package dev.jvllm.models.layers;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.Tensor;

/**
 * One pre-norm transformer block: {@code x += attention(norm(x))}, then {@code x += mlp(norm(x))}.
 * The output norms, when present, normalize each branch before it joins the residual stream
 * (Gemma 2's "sandwich" norms); they are null for Llama and most others.
 */
public record DecoderLayer(Norm attentionInputNorm, SelfAttention attention, Norm attentionOutputNorm,
                           Norm mlpInputNorm, FeedForward mlp, Norm mlpOutputNorm) {

    /** Updates the residual stream x ([tokens, hidden]) in place. */
    public void forward(Backend backend, Tensor x, Tensor positions, KvCache cache, ForwardBatch batch, Scratch scratch) {
        Tensor normed = scratch.get("normed", x.rows(), x.cols());
        Tensor branch = scratch.get("branch", x.rows(), x.cols());
        attentionInputNorm.apply(backend, x, normed);
        attention.forward(backend, normed, positions, cache, batch, scratch, branch);
        addToResidual(backend, x, branch, attentionOutputNorm, normed);
        mlpInputNorm.apply(backend, x, normed);
        mlp.forward(backend, normed, scratch, branch);
        addToResidual(backend, x, branch, mlpOutputNorm, normed);
    }

    private static void addToResidual(Backend backend, Tensor x, Tensor branch, Norm outputNorm, Tensor spare) {
        if (outputNorm != null) {
            outputNorm.apply(backend, branch, spare);
            branch = spare;
        }
        backend.add(x, branch, x);
    }
}
