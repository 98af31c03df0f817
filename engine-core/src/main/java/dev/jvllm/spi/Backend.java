package dev.jvllm.spi;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.weights.WeightTensor;

import java.util.List;

/**
 * The compute kernels a model is written against. A backend owns its tensors (CPU memory or
 * device memory); model classes call only these methods, so the same model runs on every backend.
 * Activations are in the backend's compute type ({@link #activationType()}); weights keep their
 * checkpoint type and are widened inside the kernels.
 *
 * <p>Found through {@link java.util.ServiceLoader} via {@link BackendProvider}.
 */
public interface Backend extends AutoCloseable {

    /** "cpu", "cuda", ... */
    String name();

    dev.jvllm.weights.DType activationType();

    // ---- memory ----------------------------------------------------------------------------

    /** Makes a checkpoint tensor usable by kernels, as {@code rows × cols} where cols is the last dimension. */
    Tensor weight(WeightTensor source);

    /**
     * The parts (each {@code rows_i × cols}, one cols for all) as one weight of their rows stacked
     * in order, or null where the backend keeps each part as {@link #weight} makes it (the CPU maps
     * them in place, and stacking would copy them). A model then uses row views of the stacked
     * weight, whose products over the same input a backend may run as one ({@link #linears},
     * {@link #gatedLinear}): one matrix product of many rows reads its weights faster than two or
     * three narrow ones.
     */
    default Tensor stackedWeight(java.util.List<WeightTensor> parts) {
        return null;
    }

    /**
     * Whether this backend multiplies by 4-bit weights as they are ({@link #int4Weight}); where not,
     * GPTQ's and AWQ's weights are decoded at load and handed to {@link #weight}.
     */
    default boolean readsInt4Weights() {
        return false;
    }

    /**
     * A 4-bit weight, for the products ({@link #linear}, {@link #linears}, {@link #gatedLinear} and
     * the ones built on them) as a {@link #weight} of its shape would be, and row views of whole
     * 16-row tiles; not for reading back, reshaping or other kernels. The backend copies what it
     * needs, and the caller closes {@code source} after.
     */
    default Tensor int4Weight(dev.jvllm.weights.Int4Weight source) {
        throw new UnsupportedKernelException(name(), "int4Weight", "4-bit weights are decoded for this backend");
    }

    /** As {@link #stackedWeight}, for 4-bit weights of one width and one grouping: null where the backend does not stack them. */
    default Tensor stackedInt4Weight(java.util.List<dev.jvllm.weights.Int4Weight> parts) {
        return null;
    }

    /**
     * A checkpoint matrix stored as [in, out] (GPT-2's Conv1D) made usable as a [out, in] weight;
     * may copy.
     */
    Tensor transposedWeight(WeightTensor source);

    /** A weight given by value (computed tables such as rotary cos/sin), {@code rows × cols} float32. */
    Tensor constant(float[] values, int rows, int cols);

    /**
     * Float32 values used by this step only (routing weights, per-token scales): as
     * {@link #constant}, but a device backend may keep them in memory that is cheap to allocate and
     * free in stream order, where a constant is long-lived.
     */
    default Tensor stepValues(float[] values, int rows, int cols) {
        return constant(values, rows, cols);
    }

    /** Scratch activations, {@code rows × cols} of the activation type; contents undefined. */
    Tensor allocate(int rows, int cols);

    /** Integer data for kernels (token ids, positions, row indices) as a 1 × n tensor. */
    Tensor indices(int[] values);

    /** Copies a tensor's elements to the heap as float32, row-major. */
    float[] toFloatArray(Tensor t);

    KvCache allocateKvCache(KvCacheSpec spec);

    /**
     * The device memory this backend allocates from, once all queued work is done; empty where
     * tensors live in the Java process's memory (the CPU backend), whose KV cache is sized by
     * {@code kvCacheMemoryBytes} instead of by a share of the device.
     */
    default java.util.Optional<DeviceMemory> deviceMemory() {
        return java.util.Optional.empty();
    }

    /**
     * For each row, the index of its largest value: the first on ties, NaN never chosen, 0 when
     * no value is above negative infinity (greedy sampling without copying logits to the heap).
     */
    default int[] argmaxRows(Tensor t) {
        float[] flat = toFloatArray(t);
        int rows = t.rows(), cols = t.cols();
        int[] best = new int[rows];
        for (int r = 0; r < rows; r++) {
            float bestValue = Float.NEGATIVE_INFINITY;
            for (int c = 0; c < cols; c++) {
                float v = flat[r * cols + c];
                if (v > bestValue) {
                    bestValue = v;
                    best[r] = c;
                }
            }
        }
        return best;
    }

    /** A token per row of a tensor, as {@link #argmaxRowsAsync} or {@link #sampleRowsAsync} queued them. */
    interface SampledRows {
        /** The rows' tokens, once the device has computed them (waiting for it if need be). */
        int[] await();

        /**
         * Whether {@link #tokenIds} can take a following step's token ids from these rows on the
         * device, until the next {@link #argmaxRowsAsync} or {@link #sampleRowsAsync}.
         */
        boolean feedable();

        /** Rows already on the host, not feedable. */
        static SampledRows of(int[] rows) {
            return of(rows, () -> false);
        }

        /** Rows already on the host, feedable while {@code feedable} says so. */
        static SampledRows of(int[] rows, java.util.function.BooleanSupplier feedable) {
            return new SampledRows() {
                @Override
                public int[] await() {
                    return rows;
                }

                @Override
                public boolean feedable() {
                    return feedable.getAsBoolean();
                }
            };
        }
    }

    /**
     * {@link #argmaxRows}, queued behind the work already queued: the host reads the result with
     * {@link SampledRows#await} and may queue more work first, such as the next decode step, whose
     * token ids {@link #tokenIds} then takes from these rows where the device holds them. The
     * default computes the rows at once, not feedable.
     */
    default SampledRows argmaxRowsAsync(Tensor t) {
        return SampledRows.of(argmaxRows(t));
    }

    /**
     * Per row of logits, how {@link #sampleRowsAsync} draws its token, as {@link
     * dev.jvllm.sampling.Sampler#drawPlainly} does: temperature (0: the argmax), top-k (0: off),
     * top-p (1: off), min-p (0: off), and the uniform number in [0, 1) the draw takes.
     */
    record PlainSampling(float[] temperatures, int[] topKs, double[] topPs, float[] minPs, double[] uniforms) {
        public PlainSampling {
            int n = temperatures.length;
            if (topKs.length != n || topPs.length != n || minPs.length != n || uniforms.length != n) {
                throw new IllegalArgumentException("plain sampling parameters of different lengths");
            }
        }

        /** Fails unless these are the parameters of {@code rows} rows. */
        public void requireRows(int rows) {
            if (temperatures.length != rows) {
                throw new IllegalArgumentException(rows + " rows but sampling parameters for " + temperatures.length);
            }
        }
    }

    /**
     * One token drawn per row of {@code t} as {@code sampling} says, queued as {@link
     * #argmaxRowsAsync} is (and feedable as its rows are). The default copies the rows back and
     * draws them on the host.
     */
    default SampledRows sampleRowsAsync(Tensor t, PlainSampling sampling) {
        int rows = t.rows(), cols = t.cols();
        sampling.requireRows(rows);
        float[] flat = toFloatArray(t);
        int[] tokens = new int[rows];
        java.util.stream.IntStream.range(0, rows).parallel().forEach(r -> tokens[r] = dev.jvllm.sampling.Sampler.drawPlainly(
                java.util.Arrays.copyOfRange(flat, r * cols, (r + 1) * cols), sampling.temperatures()[r],
                sampling.topKs()[r], sampling.topPs()[r], sampling.minPs()[r], sampling.uniforms()[r]));
        return SampledRows.of(tokens);
    }

    /** Whether {@link #sampleRowsAsync} draws where the logits are, so that only a token per row comes back. */
    default boolean samplesOnDevice() {
        return false;
    }

    /**
     * Whether {@link #argmaxRowsAsync} and {@link #sampleRowsAsync} can leave their rows on the device for {@link #tokenIds}, so
     * that the engine may queue a decode step before reading the step ahead of it (async scheduling).
     */
    default boolean feedsSampledTokens() {
        return false;
    }

    /**
     * Whether a forward pass returns once its work is queued rather than done (a GPU's stream), so
     * that the host's work between steps can overlap the device's. Async scheduling is used only
     * then: where the pass runs as it is called (the CPU), queuing the next step first would only
     * hold each step's tokens back until the next step had run.
     */
    default boolean queuesWork() {
        return false;
    }

    /**
     * A batch's token ids as a 1 × T index tensor for the embedding lookup: {@link
     * ForwardBatch#tokenIds}, except that a token with a {@link ForwardBatch#sampledTokenRows} row
     * of 0 or more takes its id from that row of the last {@link #argmaxRowsAsync} or {@link
     * #sampleRowsAsync} result, which
     * must be {@linkplain SampledRows#feedable feedable}. A batch with sampled rows, even none at 0
     * or more, launches the same work whichever rows it takes, so that one recording serves them all.
     */
    default Tensor tokenIds(ForwardBatch batch) {
        int[] rows = batch.sampledTokenRows();
        if (rows != null) {
            for (int row : rows) {
                if (row >= 0) {
                    throw new UnsupportedOperationException(getClass().getSimpleName() + " does not feed sampled tokens");
                }
            }
        }
        return indices(batch.tokenIds());
    }

    // ---- kernels ----------------------------------------------------------------------------

    /**
     * Runs a forward pass, given as {@code pass}, in a way the backend may speed up by recording
     * it: the CUDA backend captures the pass's device work as a CUDA graph the first time
     * {@code shape} is seen and launches that graph for later passes of the shape. Passes of one
     * shape should launch the same work on the same buffers and differ only in the values they
     * upload (token ids, positions, block tables: a decode batch padded to a fixed size); the
     * backend checks that as the pass runs and runs it eagerly where it does not hold. The
     * default runs the pass.
     *
     * @param shape equal for passes expected to launch the same work (used as a map key)
     */
    default Tensor runCaptured(Object shape, java.util.function.Supplier<Tensor> pass) {
        return pass.get();
    }

    /** Whether {@link #runCaptured} records passes, so that batches are worth padding to a few shapes. */
    default boolean capturesGraphs() {
        return false;
    }

    /** {@code out[i] = table[ids[i]]}; out is [ids, table.cols]. */
    void embedding(Tensor table, Tensor ids, Tensor out);

    /** {@code out = x · weightᵀ (+ bias)}: x [T, in], weight [outFeatures, in], bias [1, outFeatures] or null. */
    void linear(Tensor x, Tensor weight, Tensor bias, Tensor out);

    /**
     * Several products of one input, {@code outs[i] = x · weights[i]ᵀ (+ biases[i])} (a layer's Q, K
     * and V), in one call so that a backend may run them as one kernel or one hand-off; a bias may
     * be null, and the outs must not overlap x or each other. The default runs {@link #linear} for each.
     */
    default void linears(Tensor x, Tensor[] weights, Tensor[] biases, Tensor[] outs) {
        KernelShapes.checkLinears(weights, biases, outs);
        for (int i = 0; i < weights.length; i++) linear(x, weights[i], biases[i], outs[i]);
    }

    /**
     * A gated MLP's first half, {@code out = fn(x · gateᵀ) * (x · upᵀ)} (no biases), in one call so
     * that a backend may run it as one kernel. {@code upScratch} ([x.rows, up.rows]) may be used
     * for the up product; its contents are undefined after. The default runs two {@link #linear}
     * calls and {@link #siluMul} or {@link #gatedActivation}.
     */
    default void gatedLinear(Activation fn, Tensor x, Tensor gate, Tensor up, Tensor upScratch, Tensor out) {
        linear(x, gate, null, out);
        linear(x, up, null, upScratch);
        if (fn == Activation.SILU) {
            siluMul(out, upScratch, out);
        } else {
            gatedActivation(fn, out, upScratch, out);
        }
    }

    /**
     * {@code out = fn(x · weightᵀ (+ bias))}: a linear layer and its activation in one kernel, so a
     * backend can apply the function while the products are still in cache.
     */
    default void linearActivation(Activation fn, Tensor x, Tensor weight, Tensor bias, Tensor out) {
        linear(x, weight, bias, out);
        activation(fn, out, out);
    }

    /**
     * {@code out = x · weightᵀ (+ bias) + residual}: a linear layer whose output joins a residual
     * stream, in one kernel. residual is like out and must not overlap it or x.
     */
    default void linearResidual(Tensor x, Tensor weight, Tensor bias, Tensor residual, Tensor out) {
        linear(x, weight, bias, out);
        add(out, residual, out);
    }

    /** Row-wise RMS normalization: {@code out = x / rms(x) * (weight + weightOffset)}. */
    void rmsNorm(Tensor x, Tensor weight, float eps, float weightOffset, Tensor out);

    /**
     * {@code x += delta}, then {@code out = rmsNorm(x)}: a pre-norm layer's residual add and the
     * norm after it, in one call so that a backend may make one pass. The default runs
     * {@link #add} and {@link #rmsNorm}.
     */
    default void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, float weightOffset, Tensor out) {
        add(x, delta, x);
        rmsNorm(x, weight, eps, weightOffset, out);
    }

    /** Row-wise layer normalization with optional bias. */
    void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out);

    /**
     * {@code x += delta}, then {@code out = layerNorm(x)}: a post-norm layer's residual add and its
     * norm, in one call so that a backend may make one pass. out may be delta itself (the residual
     * stream replaced by the normed sum) but must not overlap x. The default runs {@link #add} and
     * {@link #layerNorm}.
     */
    default void addLayerNorm(Tensor x, Tensor delta, Tensor weight, Tensor bias, float eps, Tensor out) {
        add(x, delta, x);
        layerNorm(x, weight, bias, eps, out);
    }

    /** {@code out = a + b} elementwise (out may be a or b). */
    void add(Tensor a, Tensor b, Tensor out);

    /** {@code out = silu(gate) * up} elementwise. */
    void siluMul(Tensor gate, Tensor up, Tensor out);

    /** {@code out = fn(x)} elementwise (out may be x). */
    void activation(Activation fn, Tensor x, Tensor out);

    /** {@code out = fn(gate) * up} elementwise (GeGLU, SwiGLU with other functions; out may be gate). */
    void gatedActivation(Activation fn, Tensor gate, Tensor up, Tensor out);

    /** {@code out = x * factor} elementwise (out may be x). */
    void scale(Tensor x, float factor, Tensor out);

    /** {@code out = min(max(x, -limit), limit)} elementwise: MPT's clip_qkv (out may be x). */
    void clamp(Tensor x, float limit, Tensor out);

    /** {@code out = cap * tanh(x / cap)} elementwise: Gemma 2's logit soft-capping (out may be x). */
    void softcap(Tensor x, float cap, Tensor out);

    /**
     * Rotates, in place, the first {@code rotaryDim} features of every head of x ([T, heads × headDim])
     * by the angle of its token's position. cosSin is [maxPositions, rotaryDim] (rotaryDim/2 cosines
     * then rotaryDim/2 sines per row). {@code neoxStyle}: pairs are (i, i + rotaryDim/2); otherwise
     * adjacent pairs (2i, 2i+1) as in GPT-J.
     */
    void rotary(Tensor x, int heads, int headDim, int rotaryDim, boolean neoxStyle, Tensor cosSin, Tensor positions);

    /**
     * {@link #rotary} of a layer's queries ({@code qHeads} heads) and keys ({@code kHeads} heads),
     * which share the head size, table and positions: one launch where a backend can (a decode
     * step spends as long launching a small kernel as running it).
     */
    default void rotaryPair(Tensor q, int qHeads, Tensor k, int kHeads, int headDim, int rotaryDim, boolean neoxStyle,
                            Tensor cosSin, Tensor positions) {
        rotary(q, qHeads, headDim, rotaryDim, neoxStyle, cosSin, positions);
        rotary(k, kHeads, headDim, rotaryDim, neoxStyle, cosSin, positions);
    }

    /**
     * {@link #rotaryPair} of q ({@code params.numHeads()} heads) and k, then {@link #attention}: one
     * call, so that a backend can rotate the keys as it writes them into the cache and the queries
     * as its attention kernel reads them (on a decode step the two small launches cost about as
     * much as the attention itself). Afterwards q and k hold either the rotated or the original values.
     */
    default void rotaryAttention(Tensor q, Tensor k, Tensor v, int rotaryDim, boolean neoxStyle, Tensor cosSin,
                                 Tensor positions, KvCache cache, int layer, ForwardBatch batch, AttentionParams params,
                                 Tensor out) {
        rotaryPair(q, params.numHeads(), k, params.numKvHeads(), params.headDim(), rotaryDim, neoxStyle, cosSin, positions);
        attention(q, k, v, cache, layer, batch, params, out);
    }

    /**
     * {@code residual += input · weightᵀ}, then {@code out = rmsNorm(residual)} scaled by
     * {@code normWeight + weightOffset}: a linear layer's output joined to the residual stream and
     * the next norm in one call, so that a backend may split the product over slices of its inner
     * dimension and sum the slices inside the norm. {@code product} ([T, weight rows]) is scratch for
     * the default composition, {@link #linear} then {@link #addRmsNorm}; afterwards its contents are
     * unspecified.
     */
    default void linearAddRmsNorm(Tensor input, Tensor weight, Tensor product, Tensor residual, Tensor normWeight,
                                  float eps, float weightOffset, Tensor out) {
        linear(input, weight, null, product);
        addRmsNorm(residual, product, normWeight, eps, weightOffset, out);
    }

    /**
     * The projections of x into queries, keys and values ({@code weights}: q, k, v, no biases) into
     * {@code qkv}, then {@link #rotaryAttention} over them: one call, so that a backend can run the
     * three products as one and let its attention read the queries, keys and values straight from
     * that product's columns. {@code qkv} is then scratch: afterwards its contents are unspecified.
     */
    default void projectedRotaryAttention(Tensor x, Tensor[] weights, Tensor[] qkv, int rotaryDim, boolean neoxStyle,
                                          Tensor cosSin, Tensor positions, KvCache cache, int layer, ForwardBatch batch,
                                          AttentionParams params, Tensor out) {
        if (weights.length != 3 || qkv.length != 3) {
            throw new IllegalArgumentException("projectedRotaryAttention takes the q, k and v weights and outputs, not "
                    + weights.length + " and " + qkv.length);
        }
        linears(x, weights, new Tensor[3], qkv);
        rotaryAttention(qkv[0], qkv[1], qkv[2], rotaryDim, neoxStyle, cosSin, positions, cache, layer, batch, params, out);
    }

    /**
     * Writes this step's keys and values ([T, kvHeads × headDim]) into the cache slots of
     * {@code batch.slotMapping()}, then computes causal attention of q ([T, heads × headDim]) for each
     * sequence over its whole context read through its block table; result into out (like q).
     */
    void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, ForwardBatch batch,
                   AttentionParams params, Tensor out);

    /**
     * Bidirectional (encoder) attention without a cache: each query token of q ([T, heads × headDim])
     * attends over the keys and values ([T, kvHeads × headDim]) of every token of its own sequence,
     * the sequences given by {@code batch.queryStarts()}; result into out (like q).
     */
    default void encoderAttention(Tensor q, Tensor k, Tensor v, ForwardBatch batch, AttentionParams params, Tensor out) {
        throw new UnsupportedOperationException("the " + name() + " backend has no encoder attention");
    }

    /** The rows {@link #crossAttention}'s ranges may start at a multiple of, to be read fastest. */
    int CROSS_ATTENTION_ROW_ALIGNMENT = 16;

    /**
     * Cross-attention (encoder-decoder models), without a mask: each query token of q ([T, heads ×
     * headDim]) of sequence s, the sequences given by {@code batch.queryStarts()}, attends over rows
     * {@code [ranges[2s], ranges[2s] + ranges[2s + 1])} of keys and values ([rows, kvHeads × headDim]),
     * its encoder's, each range at least a row and at most {@code longestRange} (the model's longest
     * encoder input: a backend that records passes sizes what it uploads per sequence by it, so that
     * the steps of one batch shape launch the same work). Result into out (like q). A backend may keep
     * its copy of {@code ranges} for the layers after the first: the caller must not change the array it passed.
     * Where every range starts at a multiple of {@link #CROSS_ATTENTION_ROW_ALIGNMENT}, the CUDA backend
     * reads the rows as its decode kernels read the paged KV cache.
     */
    default void crossAttention(Tensor q, Tensor keys, Tensor values, int[] ranges, int longestRange, ForwardBatch batch,
                                AttentionParams params, Tensor out) {
        throw new UnsupportedOperationException("the " + name() + " backend has no cross-attention");
    }

    /**
     * Multi-head latent attention (DeepSeek-V2, arXiv:2405.04434) over a {@link KvCacheSpec.Layout#LATENT}
     * cache, with the key and value up-projections absorbed into the query and the output. Writes each
     * token's slot {@code [latent ; keyRope]} (latent [T, r], keyRope [T, d_R], the rotated decoupled key)
     * into {@code batch.slotMapping()}; then for head h of a token at position p the score of key
     * position j is {@code scale · (qLatent_h · latent_j + qRope_h · keyRope_j)} over j ≤ p, and out_h
     * is the softmax-weighted sum of {@code latent_j}. qLatent is [T, heads × r], qRope [T, heads × d_R],
     * out [T, heads × r]; {@code params.headDim()} is r and {@code params.numKvHeads()} is 1.
     */
    void latentAttention(Tensor qLatent, Tensor qRope, Tensor latent, Tensor keyRope, KvCache cache, int layer,
                         ForwardBatch batch, AttentionParams params, Tensor out);

    /** {@code out[i] = x[rows[i]]}. */
    void gatherRows(Tensor x, Tensor rows, Tensor out);

    /**
     * {@code out[rows[i]] += weights[i] · source[i]} for each row i of source: the combine step of a
     * mixture of experts. source is [n, cols], rows 1 × n indices, weights 1 × n, out [m, cols].
     */
    void scatterAddRows(Tensor source, Tensor rows, Tensor weights, Tensor out);

    /**
     * A different matrix per head: {@code out[t, h] = weight_h · x[t, h]} where x is [T, heads × in],
     * weight is [heads × outPerHead, in] (head h's rows h·outPerHead ..) and out is [T, heads × outPerHead].
     * Multi-head latent attention maps each query head into the latent space and each latent output
     * back to a value head with it.
     */
    void headwiseLinear(Tensor x, Tensor weight, int heads, Tensor out);

    /** Integer data a kernel writes (the experts {@link #routeSoftmaxTopK} chooses), {@code rows × cols}; contents undefined. */
    default Tensor allocateIndices(int rows, int cols) {
        return indices(new int[Math.multiplyExact(rows, cols)]).reshape(rows, cols);
    }

    /**
     * Softmax top-k routing where the logits are (Mixtral, Qwen-MoE), so that nothing is read back:
     * for each row t of {@code logits} [T, E], the k experts of largest logit (the first on ties,
     * as {@code ExpertRouter} chooses: the softmax keeps the order) go to {@code experts[t, 0..k)}
     * (I32, best first) and their softmax probabilities over all E experts to
     * {@code weights[t, 0..k)} (the activation type), divided by their sum when {@code normalize}.
     * DeepSeek's grouped and sigmoid routers are not here: they route on the host.
     */
    void routeSoftmaxTopK(Tensor logits, int topK, boolean normalize, Tensor experts, Tensor weights);

    /**
     * Prepares the routed experts of one mixture layer for {@link #expertFeedForward}: expert e's
     * gate and up projections {@code gates.get(e)}, {@code ups.get(e)} [I, H] and down projection
     * {@code downs.get(e)} [H, I], weights of this backend (row views of a stacked tensor
     * included). Called once at load.
     */
    ExpertWeights expertWeights(List<Tensor> gates, List<Tensor> ups, List<Tensor> downs);

    /**
     * The routed experts of a mixture, grouped by expert rather than run one after another:
     * {@code out[t] = Σ_j weights[t, j] · down_e(silu(gate_e · x[t]) ⊙ (up_e · x[t]))} over the k
     * choices {@code e = experts[t, j]} of token t, summed in the order of j. x and out are [T, H]
     * of the activation type, experts [T, k] I32 (each in [0, E)), weights [T, k] of any floating
     * type (from {@link #routeSoftmaxTopK}, or {@link #stepValues} of a host router's weights).
     */
    void expertFeedForward(Tensor x, ExpertWeights experts, Tensor expertIds, Tensor weights, Tensor out);

    /**
     * {@code out[t] += sigmoid(gate[t]) · source[t]} for each row t: Qwen-MoE's gated shared
     * expert, without reading the gate back. source and out are [T, H], gate [T, 1], all of the
     * activation type.
     */
    void addSigmoidGatedRows(Tensor source, Tensor gate, Tensor out);

    /**
     * Whether the tensors this backend makes from checkpoint tensors ({@link #weight} and its kin)
     * go on reading the checkpoint's memory: true for a backend that runs on the mapped weights (the
     * CPU's). A backend that copies them to its device at load says false, so that weights decoded
     * at load ({@link dev.jvllm.weights.DecodingCheckpoint}) are freed from host memory once the
     * model is built.
     */
    default boolean readsHostWeights() {
        return true;
    }

    /**
     * Whether requests may run with LoRA adapters on this backend: {@link dev.jvllm.lora.LoraBackend}
     * composes only the backend's own operations (products, row gathers and scatters), but a backend
     * says true only once its adapters have been checked against merged weights.
     */
    default boolean runsLoraAdapters() {
        return false;
    }

    @Override
    default void close() {
    }
}
