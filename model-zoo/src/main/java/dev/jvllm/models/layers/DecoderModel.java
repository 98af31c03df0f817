package dev.jvllm.models.layers;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;

import java.util.List;

/**
 * A decoder-only language model assembled from its parts: embeddings, decoder layers, a final norm,
 * an optional projection (OPT's project_out) and the LM head. The family classes only load these
 * from their checkpoint names and say how each layer joins its residual.
 *
 * @param finalNorm  null when the model has none (OPT-350m)
 * @param projectOut null when the hidden size is the head's input size
 */
public record DecoderModel(Backend backend, int hidden, Embeddings embeddings, List<DecoderLayer> layers,
                           Norm finalNorm, Linear projectOut, Linear lmHead, Scratch scratch) implements CausalLM {

    public DecoderModel(Backend backend, int hidden, Embeddings embeddings, List<DecoderLayer> layers,
                        Norm finalNorm, Linear projectOut, Linear lmHead) {
        this(backend, hidden, embeddings, List.copyOf(layers), finalNorm, projectOut, lmHead, new Scratch(backend));
    }

    /**
     * The LM head: the token embeddings again when {@code tied} or when the checkpoint has no
     * {@code <name>.weight}, else that [vocab, in] matrix (with {@code <name>.bias} when present).
     */
    public static Linear lmHead(WeightScope root, String name, Tensor embeddings, boolean tied) {
        int vocab = embeddings.rows(), in = embeddings.cols();
        if (tied || !root.has(name + ".weight")) {
            return new Linear(embeddings, null, in, vocab);
        }
        return Linear.load(root, name, in, vocab, root.has(name + ".bias"));
    }

    @Override
    public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
        return layers.getFirst().attention().cacheSpec(layers.size(), numBlocks, blockSize);
    }

    @Override
    public int vocabSize() {
        return lmHead.outFeatures();
    }

    @Override
    public Tensor forward(ForwardBatch batch, KvCache cache) {
        Tensor positions = backend.indices(batch.positions());
        Tensor logitRows = backend.indices(batch.logitRows());  // uploaded first: see PreNormDecoder.forward
        Tensor x = scratch.get("residual", batch.numTokens(), hidden);
        embeddings.forward(backend, batch, scratch, x);
        DecoderLayer.forwardAll(layers, backend, x, positions, cache, batch, scratch);
        int wanted = batch.logitRows().length;
        Tensor last = scratch.get("last", wanted, hidden);
        backend.gatherRows(x, logitRows, last);
        if (finalNorm != null) {
            Tensor normed = scratch.get("last.normed", wanted, hidden);
            finalNorm.apply(backend, last, normed);
            last = normed;
        }
        if (projectOut != null) {
            Tensor projected = scratch.get("last.projected", wanted, projectOut.outFeatures());
            projectOut.apply(backend, last, projected);
            last = projected;
        }
        Tensor logits = scratch.get("logits", wanted, vocabSize());
        lmHead.apply(backend, last, logits);
        return logits;
    }
}
