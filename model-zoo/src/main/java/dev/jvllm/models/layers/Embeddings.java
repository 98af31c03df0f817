package dev.jvllm.models.layers;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/**
 * The input of a decoder (or an encoder): token embeddings, optionally projected to the hidden size (OPT's
 * project_in) or scaled, plus learned absolute positions (GPT-2, OPT, whose table starts {@code positionOffset}
 * rows in), optionally normalized (BLOOM's word_embeddings_layernorm).
 *
 * @param projectIn null when the embeddings already have the hidden size
 * @param positions [maxPositions + offset, hidden], or null for models with relative positions
 * @param norm      null when none
 * @param tokenScale what the token embeddings are multiplied by before the positions are added
 *                   (BART's {@code scale_embedding}: the square root of the hidden size), else 1
 */
public record Embeddings(Tensor tokens, Linear projectIn, Tensor positions, int positionOffset, Norm norm, float tokenScale) {

    /** Token embeddings taken as they are. */
    public Embeddings(Tensor tokens, Linear projectIn, Tensor positions, int positionOffset, Norm norm) {
        this(tokens, projectIn, positions, positionOffset, norm, 1f);
    }

    /** Plain token embeddings. */
    public static Embeddings tokens(Tensor tokens) {
        return new Embeddings(tokens, null, null, 0, null);
    }

    /** Writes the batch's input vectors into out ([T, hidden]). */
    public void forward(Backend backend, ForwardBatch batch, Scratch scratch, Tensor out) {
        int count = batch.numTokens();
        Tensor x = norm == null ? out : scratch.get("embed.unnormed", count, out.cols());
        Tensor ids = backend.tokenIds(batch);
        if (projectIn == null) {
            backend.embedding(tokens, ids, x);
        } else {
            Tensor raw = scratch.get("embed.tokens", count, tokens.cols());
            backend.embedding(tokens, ids, raw);
            projectIn.apply(backend, raw, x);
        }
        if (tokenScale != 1f) backend.scale(x, tokenScale, x);
        if (positions != null) {
            int[] rows = batch.positions().clone();
            for (int i = 0; i < rows.length; i++) rows[i] += positionOffset;
            Tensor learned = scratch.get("embed.positions", count, x.cols());
            backend.embedding(positions, backend.indices(rows), learned);
            backend.add(x, learned, x);
        }
        if (norm != null) {
            norm.apply(backend, x, out);
        }
    }
}
