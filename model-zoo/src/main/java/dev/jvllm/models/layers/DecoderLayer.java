package dev.jvllm.models.layers;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.Tensor;

import java.util.List;

/**
 * A decoder layer: self-attention and a feed-forward block joined to the residual stream in one of
 * the ways the families differ by.
 *
 * @param mlpNorm             null when the feed-forward block reads the attention's normalized input (GPT-J, Phi)
 * @param attentionOutputNorm normalizes the attention branch before it joins the residual (Gemma 2's
 *                            "sandwich" norms); null for most families, and only with {@link Residual#SEQUENTIAL}
 * @param mlpOutputNorm       the same for the feed-forward branch
 */
public record DecoderLayer(Norm attentionNorm, Attention attention, Norm attentionOutputNorm, Norm mlpNorm,
                           FeedForward mlp, Norm mlpOutputNorm, Residual residual) {

    public enum Residual {
        /** Pre-norm (Llama, GPT-2): {@code x += attn(n1(x)); x += mlp(n2(x))}. */
        SEQUENTIAL,
        /** GPT-J, GPT-NeoX, Phi, Falcon: {@code x += attn(n1(x)) + mlp(n2(x))}. */
        PARALLEL,
        /** Post-norm, as in the original transformer (OPT-350m): {@code x = n1(x + attn(x)); x = n2(x + mlp(x))}. */
        POST_NORM
    }

    public DecoderLayer {
        if ((attentionOutputNorm != null || mlpOutputNorm != null) && residual != Residual.SEQUENTIAL) {
            throw new IllegalArgumentException("branch output norms need the sequential residual form");
        }
    }

    /** A layer without branch output norms. */
    public DecoderLayer(Norm attentionNorm, Attention attention, Norm mlpNorm, FeedForward mlp, Residual residual) {
        this(attentionNorm, attention, null, mlpNorm, mlp, null, residual);
    }

    /** Runs the layers in turn on the residual stream x ([T, hidden]), in place. */
    public static void forwardAll(List<DecoderLayer> layers, Backend backend, Tensor x, Tensor positions,
                                  KvCache cache, ForwardBatch batch, Scratch scratch) {
        boolean inputNormed = false;
        for (int i = 0; i < layers.size(); i++) {
            DecoderLayer next = i + 1 < layers.size() ? layers.get(i + 1) : null;
            inputNormed = layers.get(i).forward(backend, x, positions, cache, batch, scratch, inputNormed, next);
        }
    }

    /**
     * Runs the layer on the residual stream x in place, as the layers of a stack are run in turn.
     * Where this layer and {@code next} are both pre-norm, this layer's last residual add and the
     * next layer's input norm are one {@link Norm#addThenApply} (one pass over the stream instead
     * of two), and the method returns true: the next layer's normalized input is then already in
     * scratch, which the caller passes on as {@code inputNormed}.
     *
     * @param next the layer run after this one, or null for the last
     */
    public boolean forward(Backend backend, Tensor x, Tensor positions, KvCache cache, ForwardBatch batch,
                           Scratch scratch, boolean inputNormed, DecoderLayer next) {
        int tokens = x.rows();
        Tensor normed = scratch.get("layer.normed", tokens, x.cols());
        Tensor branch = scratch.get("layer.branch", tokens, x.cols());
        switch (residual) {
            case SEQUENTIAL -> {
                if (!inputNormed) {
                    attentionNorm.apply(backend, x, normed);
                }
                attention.forward(backend, normed, positions, cache, batch, scratch, branch);
                if (attentionOutputNorm == null) {
                    mlpNorm.addThenApply(backend, x, branch, normed);
                } else {
                    addToResidual(backend, x, branch, attentionOutputNorm, normed);
                    mlpNorm.apply(backend, x, normed);
                }
                if (mlpOutputNorm == null && next != null && next.residual == Residual.SEQUENTIAL) {
                    mlp.forwardThenAddNorm(backend, normed, scratch, branch, x, next.attentionNorm, normed);
                    return true;
                }
                mlp.forward(backend, normed, scratch, branch);
                addToResidual(backend, x, branch, mlpOutputNorm, normed);
            }
            case PARALLEL -> {
                attentionNorm.apply(backend, x, normed);
                attention.forward(backend, normed, positions, cache, batch, scratch, branch);
                if (mlpNorm != null) {
                    mlpNorm.apply(backend, x, normed);
                }
                backend.add(x, branch, x);
                mlp.forward(backend, normed, scratch, branch);
                backend.add(x, branch, x);
            }
            case POST_NORM -> {
                attention.forward(backend, x, positions, cache, batch, scratch, branch);
                backend.add(x, branch, normed);
                attentionNorm.apply(backend, normed, x);
                mlp.forward(backend, x, scratch, branch);
                backend.add(x, branch, normed);
                mlpNorm.apply(backend, normed, x);
            }
        }
        return false;
    }

    private static void addToResidual(Backend backend, Tensor x, Tensor branch, Norm outputNorm, Tensor spare) {
        if (outputNorm != null) {
            outputNorm.apply(backend, branch, spare);
            branch = spare;
        }
        backend.add(x, branch, x);
    }
}
