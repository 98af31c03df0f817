package dev.jvllm.encdec;

import dev.jvllm.engine.EncoderInput;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.KeptRows;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Norm;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.SelfAttention;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.EncoderDecoderModel;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the encoder-decoder families share: each step, the encoder runs over the encoder inputs whose
 * cross-attention keys and values are not kept, and each decoder layer's keys and values of its
 * output are kept by the input's hash ({@link KeptRows}: plane 2l holds layer l's keys, 2l + 1 its
 * values); {@link #crossRanges} then says where each sequence's rows lie, for {@link Backend#crossAttention}.
 */
abstract class EncoderDecoderBase implements CausalLM, EncoderDecoderModel {

    protected final Backend backend;
    private final int decoderStart;
    private final int maxEncoderTokens;
    private final int crossWidth;
    private final int decoderLayers;
    private KeptRows crossKeysAndValues;

    /**
     * @param crossWidth    the width of a layer's cross-attention keys (heads × head size)
     * @param decoderLayers the decoder's layers, each with its own cross-attention keys and values
     */
    protected EncoderDecoderBase(Backend backend, int decoderStart, int maxEncoderTokens, int crossWidth, int decoderLayers) {
        this.backend = backend;
        this.decoderStart = decoderStart;
        this.maxEncoderTokens = maxEncoderTokens;
        this.crossWidth = crossWidth;
        this.decoderLayers = decoderLayers;
    }

    /** The encoder's output for {@code encoderBatch} (each input's tokens at positions from 0), [tokens, hidden]. */
    protected abstract Tensor encoderStates(ForwardBatch encoderBatch);

    /** Decoder layer {@code layer}'s projection of the encoder's output to its cross-attention keys. */
    protected abstract Linear crossKey(int layer);

    /** Decoder layer {@code layer}'s projection of the encoder's output to its cross-attention values. */
    protected abstract Linear crossValue(int layer);

    /** Decoder layer {@code layer}'s self-attention over the paged cache. */
    protected abstract SelfAttention selfAttention(int layer);

    /** The LM head over the decoder's output (its bias, if any, included). */
    protected abstract Linear lmHead();

    @Override
    public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
        return selfAttention(0).cacheSpec(decoderLayers, numBlocks, blockSize);
    }

    @Override
    public int vocabSize() {
        return lmHead().outFeatures();
    }

    /**
     * The logits of the batch's logit rows of the decoder's output x: those rows, then {@code finalNorm}
     * (null: none), then the factor {@code scale}, then the LM head.
     */
    protected Tensor logits(ForwardBatch batch, Tensor x, Tensor logitRows, Norm finalNorm, float scale, Scratch scratch) {
        int wanted = batch.logitRows().length;
        Tensor last = scratch.get("last", wanted, x.cols());
        backend.gatherRows(x, logitRows, last);
        if (finalNorm != null) {
            Tensor normed = scratch.get("last.normed", wanted, x.cols());
            finalNorm.apply(backend, last, normed);
            last = normed;
        }
        if (scale != 1f) backend.scale(last, scale, last);
        Tensor logits = scratch.get("logits", wanted, vocabSize());
        lmHead().apply(backend, last, logits);
        return logits;
    }

    @Override
    public int decoderStartTokenId() {
        return decoderStart;
    }

    @Override
    public int maxEncoderTokens() {
        return maxEncoderTokens;
    }

    @Override
    public long encoderBytesPerToken() {
        return 2L * decoderLayers * crossWidth * backend.activationType().byteSize();
    }

    @Override
    public void reserveEncoderMemory(int tokensKept) {
        crossKeysAndValues = newKeptRows(Math.max(tokensKept, maxEncoderTokens));
        crossKeysAndValues.reserve();
    }

    @Override
    public int encoderTokensKept() {
        return crossKeysAndValues == null ? Math.max(KeptRows.DEFAULT_BUDGET_ROWS, maxEncoderTokens) : crossKeysAndValues.capacity();
    }

    @Override
    public boolean keepsEncoderOutputs(ForwardBatch batch) {
        if (batch.encoderInputs() == null || crossKeysAndValues == null) return false;
        for (EncoderInput input : batch.encoderInputs()) {
            if (!crossKeysAndValues.holds(input.hash())) return false;
        }
        return true;
    }

    private KeptRows newKeptRows(int rows) {
        int[] planes = new int[2 * decoderLayers];
        java.util.Arrays.fill(planes, crossWidth);
        // Each input's rows from a block's start, so that the CUDA backend reads them as its decode kernels read the KV cache.
        return new KeptRows(backend, "encoder outputs' cross-attention keys and values", rows, Backend.CROSS_ATTENTION_ROW_ALIGNMENT,
                planes);
    }

    /** Layer {@code layer}'s kept cross-attention keys, all rows (valid until the next {@link #crossRanges}). */
    protected Tensor crossKeys(int layer) {
        return crossKeysAndValues.plane(2 * layer);
    }

    /** Layer {@code layer}'s kept cross-attention values, all rows (valid until the next {@link #crossRanges}). */
    protected Tensor crossValues(int layer) {
        return crossKeysAndValues.plane(2 * layer + 1);
    }

    /**
     * Encodes the batch's encoder inputs that are not kept and keeps their cross-attention keys and
     * values; returns each sequence's rows of them (first row, count). A failure keeps none of the new ones.
     */
    protected int[] crossRanges(ForwardBatch batch) {
        if (batch.encoderInputs() == null) {
            throw new IllegalStateException(getClass().getSimpleName() + "'s decoder needs each sequence's encoder input; the batch has none");
        }
        if (crossKeysAndValues == null) crossKeysAndValues = newKeptRows(Math.max(KeptRows.DEFAULT_BUDGET_ROWS, maxEncoderTokens));
        Map<String, EncoderInput> wanted = new LinkedHashMap<>();
        for (EncoderInput input : batch.encoderInputs()) wanted.putIfAbsent(input.hash(), input);
        Map<String, Integer> rows = new LinkedHashMap<>();
        wanted.forEach((hash, input) -> rows.put(hash, input.length()));
        crossKeysAndValues.keepAll(rows, missing -> encode(missing.stream().map(wanted::get).toList()));
        int[] ranges = new int[2 * batch.numSequences()];
        for (int s = 0; s < batch.numSequences(); s++) {
            EncoderInput input = batch.encoderInputOf(s);
            ranges[2 * s] = crossKeysAndValues.firstRow(input.hash());
            ranges[2 * s + 1] = input.length();
        }
        return ranges;
    }

    /** The encoder over these inputs together, then each decoder layer's keys and values of its output into their kept rows. */
    private void encode(List<EncoderInput> inputs) {
        int total = 0;
        int[] starts = new int[inputs.size() + 1];
        for (int i = 0; i < inputs.size(); i++) {
            starts[i] = total;
            total += inputs.get(i).length();
        }
        starts[inputs.size()] = total;
        int[] ids = new int[total], positions = new int[total], lengths = new int[inputs.size()];
        for (int i = 0; i < inputs.size(); i++) {
            System.arraycopy(inputs.get(i).tokenIds(), 0, ids, starts[i], inputs.get(i).length());
            for (int p = 0; p < inputs.get(i).length(); p++) positions[starts[i] + p] = p;
            lengths[i] = inputs.get(i).length();
        }
        Tensor states = encoderStates(new ForwardBatch(ids, positions, new int[total], starts, lengths, new int[inputs.size()][0],
                1, new int[0]));
        for (int l = 0; l < decoderLayers; l++) {
            for (int i = 0; i < inputs.size(); i++) {
                Tensor input = states.rows(starts[i], lengths[i]);
                crossKey(l).apply(backend, input, crossKeysAndValues.get(inputs.get(i).hash(), 2 * l));
                crossValue(l).apply(backend, input, crossKeysAndValues.get(inputs.get(i).hash(), 2 * l + 1));
            }
        }
    }
}
