package dev.jvllm.engine;

import dev.jvllm.EmbeddingOutput;
import dev.jvllm.EngineConfig;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.JvllmException;
import dev.jvllm.PoolingParams;
import dev.jvllm.config.PoolingConfig;
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
        int blocks = 2 * ((maxBatchTokens + blockSize - 1) / blockSize);
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
        if (requestIds.size() != inputs.size()) {
            throw new IllegalArgumentException(requestIds.size() + " request ids for " + inputs.size() + " inputs");
        }
        boolean normalize = params.normalize().orElse(pooling.normalize());
        int dimensions = params.dimensions().orElse(0);
        if (dimensions > 0) {
            pooling.dimensionsError(dimensions, model.hiddenSize()).ifPresent(message -> {
                throw new InvalidRequestException("dimensions", message);
            });
        }
        List<int[]> prepared = new ArrayList<>(inputs.size());
        for (int[] input : inputs) prepared.add(prepare(input, params));
        List<EmbeddingOutput> outputs = new ArrayList<>(inputs.size());
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
            List<float[]> pooled = run(prepared.subList(next, end));
            for (int i = next; i < end; i++) {
                outputs.add(new EmbeddingOutput(requestIds.get(i), Pooler.finish(pooled.get(i - next), dimensions, normalize),
                        prepared.get(i)));
            }
            next = end;
        }
        return outputs;
    }

    private int[] prepare(int[] input, PoolingParams params) {
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
                    + "; shorten it or set truncatePromptTokens");
        }
        int vocab = model.vocabSize();
        for (int id : ids) {
            if (id < 0 || id >= vocab) {
                throw new InvalidRequestException("prompt", "token id " + id + " is outside the vocabulary of " + vocab);
            }
        }
        return ids.clone();
    }

    private List<float[]> run(List<int[]> inputs) {
        int n = inputs.size();
        int total = inputs.stream().mapToInt(a -> a.length).sum();
        int[] ids = new int[total], positions = new int[total], slots = new int[total];
        int[] starts = new int[n + 1], lengths = new int[n], poolRows = new int[n];
        int[][] tables = new int[n][];
        int t = 0, block = 0;
        PoolingType type = pooling.type();
        for (int s = 0; s < n; s++) {
            int[] input = inputs.get(s);
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
            poolRows[s] = type == PoolingType.LAST ? t - 1 : starts[s];
        }
        starts[n] = t;
        ForwardBatch batch = new ForwardBatch(ids, positions, slots, starts, lengths, tables, blockSize, poolRows);
        int hidden = model.hiddenSize();
        List<float[]> pooled = new ArrayList<>(n);
        if (type == PoolingType.MEAN) {
            float[] all = backend.toFloatArray(model.hiddenStates(batch, cache));
            for (int s = 0; s < n; s++) pooled.add(Pooler.pool(type, all, starts[s], lengths[s], hidden));
        } else {
            Tensor rows = model.pooledRowStates(batch, cache).orElseGet(() -> {
                Tensor picked = backend.allocate(n, hidden);
                backend.gatherRows(model.hiddenStates(batch, cache), backend.indices(poolRows), picked);
                return picked;
            });
            float[] picked = backend.toFloatArray(rows);
            for (int s = 0; s < n; s++) pooled.add(Pooler.pool(PoolingType.CLS, picked, s, 1, hidden));
        }
        forwardPasses++;
        return pooled;
    }

    @Override
    public void close() {
        if (cache != null) cache.close();
    }
}
