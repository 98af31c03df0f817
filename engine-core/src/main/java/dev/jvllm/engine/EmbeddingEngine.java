package dev.jvllm.engine;

import dev.jvllm.ClassificationOutput;
import dev.jvllm.EmbeddingOutput;
import dev.jvllm.EngineConfig;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.JvllmException;
import dev.jvllm.PoolingParams;
import dev.jvllm.ScoringOutput;
import dev.jvllm.TokenEmbeddingsOutput;
import dev.jvllm.config.PoolingConfig;
import dev.jvllm.pooling.ClassifierHead;
import dev.jvllm.pooling.Pooler;
import dev.jvllm.pooling.PoolingType;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Runs embedding requests: prefill-only requests that finish after one forward pass with their
 * pooled hidden state. They never decode, never preempt and (for encoders) have no KV cache, so
 * instead of going through the {@link Scheduler} they are packed into batches of whole inputs
 * under the engine's token and sequence limits; each batch is one forward pass. Decoder
 * embedders get a cache sized for one batch, laid out afresh for every batch.
 */
public final class EmbeddingEngine implements AutoCloseable {

    private final PoolingModel model;
    private final Backend backend;
    private final PoolingConfig pooling;
    private final int maxModelLen;
    private final int maxBatchTokens;
    private final int maxBatchSequences;
    private final int blockSize;
    private final KvCache cache;
    private final int cacheBlocks;
    private long forwardPasses;

    /**
     * @param maxModelLen longest input; above the model's {@link PoolingModel#maxInputLength()} is refused
     */
    public EmbeddingEngine(PoolingModel model, Backend backend, PoolingConfig pooling, int maxModelLen,
                           EngineConfig config) {
        if (maxModelLen > model.maxInputLength()) {
            throw new JvllmException("max model length " + maxModelLen + " exceeds the " + model.maxInputLength()
                    + " positions the model's embeddings cover");
        }
        this.model = model;
        this.backend = backend;
        this.pooling = pooling;
        this.maxModelLen = maxModelLen;
        this.maxBatchTokens = Math.max(config.maxNumBatchedTokens(), maxModelLen);
        this.maxBatchSequences = config.maxNumSeqs();
        this.blockSize = config.blockSize();
        // A batch's inputs fill the blocks of its tokens and at most one partial block each (a decoder's cache
        // is laid out afresh for every batch), so a batch the packing below forms always fits.
        int blocks = (maxBatchTokens + blockSize - 1) / blockSize + maxBatchSequences;
        KvCacheSpec spec = model.kvCacheSpec(blocks, blockSize);
        this.cache = spec == null ? null : backend.allocateKvCache(spec);
        this.cacheBlocks = spec == null ? Integer.MAX_VALUE : blocks;
    }

    /** The longest input accepted. */
    public int maxModelLen() {
        return maxModelLen;
    }

    public PoolingConfig pooling() {
        return pooling;
    }


    /** Forward passes run so far (one per batch). */
    public long forwardPasses() {
        return forwardPasses;
    }

    /**
     * Embeds token-id inputs, batched; outputs in the inputs' order. Every input is checked
     * (length, token ids, dimensions) before any runs, so a bad input fails the call and nothing else.
     */
    public List<EmbeddingOutput> embed(List<String> requestIds, List<int[]> inputs, PoolingParams params) {
        Checked checked = check(requestIds, inputs, params);
        List<float[]> pooled = runBatched(checked.inputs(), null, pooling.type(), -1);
        List<EmbeddingOutput> outputs = new ArrayList<>(inputs.size());
        for (int i = 0; i < pooled.size(); i++) {
            outputs.add(new EmbeddingOutput(requestIds.get(i), checked.finish(pooled.get(i)), checked.inputs().get(i)));
        }
        return outputs;
    }

    /**
     * Each input's token embeddings (vLLM's {@code token_embed}): every token's final hidden state,
     * each row truncated and normalized as {@code params} asks; batched, outputs in the inputs' order.
     */
    public List<TokenEmbeddingsOutput> embedTokens(List<String> requestIds, List<int[]> inputs, PoolingParams params) {
        Checked checked = check(requestIds, inputs, params);
        List<float[]> states = runBatched(checked.inputs(), null, PoolingType.ALL, -1);
        int hidden = model.hiddenSize();
        List<TokenEmbeddingsOutput> outputs = new ArrayList<>(inputs.size());
        for (int i = 0; i < states.size(); i++) {
            float[][] rows = new float[checked.inputs().get(i).length][];
            for (int t = 0; t < rows.length; t++) rows[t] = checked.finish(java.util.Arrays.copyOfRange(states.get(i), t * hidden, (t + 1) * hidden));
            outputs.add(new TokenEmbeddingsOutput(requestIds.get(i), rows, checked.inputs().get(i)));
        }
        return outputs;
    }

    /** Embedding inputs as they run (cut as asked), and how each vector is finished. */
    private record Checked(List<int[]> inputs, int dimensions, boolean normalize) {
        float[] finish(float[] vector) {
            return Pooler.finish(vector, dimensions, normalize);
        }
    }

    /** Checks every input (length, token ids) and the dimensions before any runs, so a bad input fails the call and nothing else. */
    private Checked check(List<String> requestIds, List<int[]> inputs, PoolingParams params) {
        if (requestIds.size() != inputs.size()) {
            throw new IllegalArgumentException(requestIds.size() + " request ids for " + inputs.size() + " inputs");
        }
        int dimensions = params.dimensions().orElse(0);
        if (dimensions > 0) {
            pooling.dimensionsError(dimensions, model.hiddenSize()).ifPresent(message -> {
                throw new InvalidRequestException("dimensions", message);
            });
        }
        List<int[]> prepared = new ArrayList<>(inputs.size());
        for (int[] input : inputs) prepared.add(prepare(input, params, true));
        return new Checked(prepared, dimensions, params.normalize().orElse(pooling.normalize()));
    }

    /**
     * Classifies token-id inputs with the model's classifier head, batched; outputs in the inputs'
     * order. Each input's state is pooled as the architecture pools for its head (BERT's first token,
     * a decoder's last that is not its pad token), whatever sentence-transformers files say.
     *
     * @param tokenTypes per input its tokens' types (segment ids of a pair), or null: all 0
     * @throws InvalidRequestException when the model has no classifier head, or an input is too long,
     *                                 holds unknown ids or has types that do not fit it
     */
    public List<ClassificationOutput> classify(List<String> requestIds, List<int[]> inputs, List<int[]> tokenTypes) {
        ClassifierHead head = requireHead();
        List<int[]> prepared = prepareTyped(requestIds, inputs, tokenTypes);
        List<float[]> pooled = runBatched(prepared, tokenTypes, model.defaultPooling(), head.padTokenId());
        List<ClassificationOutput> outputs = new ArrayList<>(inputs.size());
        for (int i = 0; i < prepared.size(); i++) {
            outputs.add(new ClassificationOutput(requestIds.get(i), head.classProbabilities(head.logits(pooled.get(i))), head.labels(),
                    prepared.get(i)));
        }
        return outputs;
    }

    /**
     * A cross-encoder's scores of token-id inputs (each a pair read as one input, with its types):
     * the one logit through the checkpoint's activation ({@link ClassifierHead#score}).
     *
     * @throws InvalidRequestException when the model has no classifier head of one label, or as {@link #classify}
     */
    public List<ScoringOutput> score(List<String> requestIds, List<int[]> inputs, List<int[]> tokenTypes) {
        ClassifierHead head = requireHead();
        if (head.numLabels() != 1) {
            throw new InvalidRequestException("model", "scores need a classifier of one label (a cross-encoder); this one has "
                    + head.numLabels() + " (" + head.labels() + "): classify instead");
        }
        head.scoreActivation();  // an activation that cannot be applied fails before the forward passes
        List<int[]> prepared = prepareTyped(requestIds, inputs, tokenTypes);
        List<float[]> pooled = runBatched(prepared, tokenTypes, model.defaultPooling(), head.padTokenId());
        List<ScoringOutput> scores = new ArrayList<>(inputs.size());
        for (int i = 0; i < prepared.size(); i++) scores.add(new ScoringOutput(head.score(head.logits(pooled.get(i))), prepared.get(i).length));
        return scores;
    }

    private ClassifierHead requireHead() {
        return model.classifier().orElseThrow(() -> new InvalidRequestException("model",
                "this model has no classifier head: classifications and cross-encoder scores need a *ForSequenceClassification checkpoint"));
    }

    /** Inputs checked as {@link #prepare} checks them, and their types (where given) checked to be one a token. */
    private List<int[]> prepareTyped(List<String> requestIds, List<int[]> inputs, List<int[]> tokenTypes) {
        if (requestIds.size() != inputs.size()) throw new IllegalArgumentException(requestIds.size() + " request ids for " + inputs.size() + " inputs");
        if (tokenTypes != null && tokenTypes.size() != inputs.size()) {
            throw new InvalidRequestException("tokenTypes", tokenTypes.size() + " lists of token types for " + inputs.size() + " inputs");
        }
        List<int[]> prepared = new ArrayList<>(inputs.size());
        for (int i = 0; i < inputs.size(); i++) {
            int[] ids = prepare(inputs.get(i), PoolingParams.defaults(), false);
            if (tokenTypes != null && (tokenTypes.get(i) == null || tokenTypes.get(i).length != ids.length)) {
                throw new InvalidRequestException("tokenTypes", (tokenTypes.get(i) == null ? "no" : tokenTypes.get(i).length)
                        + " token types for input " + i + " of " + ids.length + " tokens");
            }
            prepared.add(ids);
        }
        return prepared;
    }

    /**
     * The inputs' pooled states, run in batches under the token, sequence and cache limits.
     *
     * @param padTokenId skipped at an input's end when the last token is pooled (-1: none)
     */
    private List<float[]> runBatched(List<int[]> prepared, List<int[]> tokenTypes, PoolingType type, int padTokenId) {
        List<float[]> pooled = new ArrayList<>(prepared.size());
        int next = 0;
        while (next < prepared.size()) {
            int end = next, tokens = 0, blocks = 0;
            while (end < prepared.size() && end - next < maxBatchSequences) {
                int length = prepared.get(end).length;
                int needed = (length + blockSize - 1) / blockSize;
                if (end > next && (tokens + length > maxBatchTokens || blocks + needed > cacheBlocks)) break;
                tokens += length;
                blocks += needed;
                end++;
            }
            pooled.addAll(run(prepared.subList(next, end), tokenTypes == null ? null : tokenTypes.subList(next, end), type, padTokenId));
            next = end;
        }
        return pooled;
    }

    /** @param truncatable whether the caller can set truncatePromptTokens (embeddings), which a too-long input's error then names */
    private int[] prepare(int[] input, PoolingParams params, boolean truncatable) {
        if (input == null || input.length == 0) throw new InvalidRequestException("prompt", "an input is empty");
        int[] ids = input;
        if (params.truncatePromptTokens().isPresent()) {
            int keep = params.truncatePromptTokens().getAsInt();
            if (keep == -1) keep = maxModelLen;
            if (keep > maxModelLen) {
                throw new InvalidRequestException("truncatePromptTokens", "truncatePromptTokens " + keep
                        + " exceeds the maximum model length " + maxModelLen);
            }
            // As vLLM: the tokenizer truncates on the left, keeping the last k tokens.
            if (ids.length > keep) ids = Arrays.copyOfRange(ids, ids.length - keep, ids.length);
        }
        if (ids.length > maxModelLen) {
            throw new InvalidRequestException("prompt", "an input has " + ids.length
                    + " tokens, more than the maximum model length of " + maxModelLen
                    + (truncatable ? "; shorten it or set truncatePromptTokens" : "; shorten it"));
        }
        int vocab = model.vocabSize();
        for (int id : ids) {
            if (id < 0 || id >= vocab) {
                throw new InvalidRequestException("prompt", "token id " + id + " is outside the vocabulary of " + vocab);
            }
        }
        return ids.clone();
    }

    private List<float[]> run(List<int[]> inputs, List<int[]> tokenTypes, PoolingType type, int padTokenId) {
        int n = inputs.size();
        int total = inputs.stream().mapToInt(a -> a.length).sum();
        int[] ids = new int[total], positions = new int[total], slots = new int[total];
        int[] types = tokenTypes == null ? null : new int[total];
        int[] starts = new int[n + 1], lengths = new int[n], poolRows = new int[n];
        int[][] tables = new int[n][];
        int t = 0, block = 0;
        for (int s = 0; s < n; s++) {
            int[] input = inputs.get(s);
            if (types != null) System.arraycopy(tokenTypes.get(s), 0, types, t, input.length);
            starts[s] = t;
            lengths[s] = input.length;
            int blocks = (input.length + blockSize - 1) / blockSize;
            tables[s] = new int[blocks];
            for (int b = 0; b < blocks; b++) tables[s][b] = block + b;
            for (int p = 0; p < input.length; p++, t++) {
                ids[t] = input[p];
                positions[t] = p;
                slots[t] = (block + p / blockSize) * blockSize + p % blockSize;
            }
            block += blocks;
            poolRows[s] = type == PoolingType.LAST ? lastNotPad(input, padTokenId, starts[s]) : starts[s];
        }
        starts[n] = t;
        ForwardBatch batch = new ForwardBatch(ids, positions, slots, starts, lengths, tables, blockSize, poolRows);
        int hidden = model.hiddenSize();
        List<float[]> pooled = new ArrayList<>(n);
        if (type == PoolingType.MEAN || type == PoolingType.ALL) {
            float[] all = backend.toFloatArray(model.hiddenStates(batch, cache, types));
            for (int s = 0; s < n; s++) pooled.add(Pooler.pool(type, all, starts[s], lengths[s], hidden));
        } else {
            Tensor rows = model.pooledRowStates(batch, cache, types).orElseGet(() -> {
                Tensor picked = backend.allocate(n, hidden);
                backend.gatherRows(model.hiddenStates(batch, cache, types), backend.indices(poolRows), picked);
                return picked;
            });
            float[] picked = backend.toFloatArray(rows);
            for (int s = 0; s < n; s++) pooled.add(Pooler.pool(PoolingType.CLS, picked, s, 1, hidden));
        }
        forwardPasses++;
        return pooled;
    }

    /** The row of an input's last token that is not {@code padTokenId} (its last token where all are, or none is given). */
    private static int lastNotPad(int[] input, int padTokenId, int start) {
        int at = input.length - 1;
        while (padTokenId >= 0 && at > 0 && input[at] == padTokenId) at--;
        return start + at;
    }

    @Override
    public void close() {
        if (cache != null) cache.close();
    }
}
