package dev.jvllm.lora;

import dev.jvllm.LoraRequest;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.DeviceMemory;
import dev.jvllm.spi.ExpertWeights;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightsException;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;

/**
 * A backend that adds LoRA adapters' updates to the projections of the model built on it: each
 * {@link #linear} of a weight an adapter targets adds {@code scale · (x · Aᵀ) · Bᵀ} to the rows of
 * the tokens whose request runs with that adapter ({@link #useAdapters}, before each forward pass).
 * The base model's weights stay as they are, so requests with different adapters, or none, share a
 * batch, as vLLM's multi-LoRA serving does.
 *
 * <p>It learns which tensor is which projection as the model is built through it ({@link #weight}),
 * so it must be the backend the model is loaded on. The fused operations that take weights
 * ({@link #linears}, {@link #gatedLinear}, {@link #linearAddRmsNorm}, ...) run as their unfused
 * defaults through {@link #linear}, and nothing is captured as a graph; every other call goes to the
 * wrapped backend. After a pass, {@link #checkApplied} fails if a targeted projection was never run
 * through {@link #linear} (an operation of the architecture that takes weights another way), rather
 * than let a request go without its adapter.
 */
public final class LoraBackend implements Backend {

    /** One projection's update, as uploaded tensors. */
    private record Delta(Tensor a, Tensor b, int rank) {
    }

    /** An adapter in its slot: its scale and the update of each projection it targets, by base weight. */
    private record Attached(LoraAdapter adapter, float scale, Map<Tensor, Delta> deltas) {
    }

    /** The tokens of this pass that run with one adapter: their rows, and the scale as a per-row weight. */
    private record Group(Attached adapter, int[] rows, Tensor rowIndices, Tensor rowScales, boolean allRows) {
    }

    private final Backend base;
    private final int maxRank;
    private final Map<Integer, Integer> slotOfId = new HashMap<>();
    private final Map<String, Tensor> weightsByName = new HashMap<>();
    private final Map<Tensor, String> nameOfWeight = new IdentityHashMap<>();
    /** Weights a model hands to mixture-of-experts kernels rather than to {@link #linear}. */
    private final Set<Tensor> expertTensors = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    private final List<Attached> slots = new java.util.concurrent.CopyOnWriteArrayList<>();
    private int passTokens;
    private List<Group> groups = List.of();
    private final Set<Tensor> expected = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    private final Set<Tensor> applied = java.util.Collections.newSetFromMap(new IdentityHashMap<>());

    /** @param maxRank the highest adapter rank accepted (vLLM's {@code max_lora_rank}) */
    public LoraBackend(Backend base, int maxRank) {
        if (maxRank < 1) throw new IllegalArgumentException("maxLoraRank must be positive, not " + maxRank);
        this.base = base;
        this.maxRank = maxRank;
    }

    /**
     * The slot of the adapter {@code request} names, reading and attaching it when its id is first
     * seen.
     *
     * @throws WeightsException where the adapter cannot be read, does not fit the model, or its id
     *                          was first given with another directory
     */
    public synchronized int slotFor(LoraRequest request) {
        Integer slot = slotOfId.get(request.id());
        if (slot != null) {
            java.nio.file.Path known = slots.get(slot).adapter().request().path();
            if (!known.toAbsolutePath().normalize().equals(request.path().toAbsolutePath().normalize())) {
                throw new WeightsException("LoRA id " + request.id() + " names " + known + " already, not " + request.path());
            }
            return slot;
        }
        LoraAdapter adapter = LoraAdapter.load(request, maxRank);
        try {
            slot = attach(adapter);
        } catch (RuntimeException e) {
            adapter.close();
            throw e;
        }
        slotOfId.put(request.id(), slot);
        return slot;
    }

    /**
     * Uploads an adapter's updates for the projections of the model built on this backend and
     * returns its slot (0, 1, ...), which {@link #useAdapters} takes.
     *
     * @throws WeightsException naming a module the model has no projection for, or one whose shape differs
     */
    synchronized int attach(LoraAdapter adapter) {
        Map<Tensor, Delta> deltas = new IdentityHashMap<>();
        for (LoraAdapter.Module module : adapter.modules()) {
            Tensor weight = weightsByName.get(module.weightName());
            String who = "LoRA adapter '" + adapter.request().name() + "'";
            if (weight == null) {
                throw new WeightsException(who + " updates '" + module.weightName() + "', which this model does not load as a "
                        + "projection of its own (a fused or missing module)");
            }
            if (expertTensors.contains(weight) || module.weightName().equals("lm_head.weight")) {
                throw new WeightsException(who + " updates '" + module.weightName() + "', " + (expertTensors.contains(weight)
                        ? "an expert of a mixture of experts" : "the LM head") + ", where adapters are not supported");
            }
            if (module.a().dim(1) != weight.cols() || module.b().dim(0) != weight.rows()) {
                throw new WeightsException(who + ": '" + module.a().name() + "' and '" + module.b().name() + "' update a ["
                        + module.b().dim(0) + ", " + module.a().dim(1) + "] weight, but '" + module.weightName() + "' is ["
                        + weight.rows() + ", " + weight.cols() + "]");
            }
            deltas.put(weight, new Delta(base.weight(module.a()), base.weight(module.b()), adapter.rank()));
        }
        slots.add(new Attached(adapter, adapter.scale(), deltas));
        return slots.size() - 1;
    }

    /**
     * The adapters of the next pass: {@code sequenceSlots[s]} is the slot of sequence s of
     * {@code batch} ({@link #attach}), or -1 for none; null for a pass without adapters.
     */
    public void useAdapters(ForwardBatch batch, int[] sequenceSlots) {
        passTokens = batch.numTokens();
        expected.clear();
        applied.clear();
        if (sequenceSlots == null) {
            groups = List.of();
            return;
        }
        Map<Integer, List<Integer>> rowsBySlot = new LinkedHashMap<>();
        for (int s = 0; s < batch.numSequences(); s++) {
            if (sequenceSlots[s] < 0) continue;
            List<Integer> rows = rowsBySlot.computeIfAbsent(sequenceSlots[s], k -> new ArrayList<>());
            for (int t = batch.queryStarts()[s]; t < batch.queryStarts()[s + 1]; t++) rows.add(t);
        }
        List<Group> next = new ArrayList<>();
        for (Map.Entry<Integer, List<Integer>> e : rowsBySlot.entrySet()) {
            Attached attached = slots.get(e.getKey());
            int[] rows = e.getValue().stream().mapToInt(Integer::intValue).toArray();
            boolean all = rows.length == passTokens;
            float[] scales = new float[rows.length];
            java.util.Arrays.fill(scales, attached.scale());
            next.add(new Group(attached, rows, all ? null : base.indices(rows), all ? null : base.stepValues(scales, 1, rows.length), all));
            expected.addAll(attached.deltas().keySet());
        }
        groups = next;
    }

    /**
     * Fails if a projection an adapter of the last pass targets was not run through {@link #linear}
     * during it: its requests would have gone without part of their adapter.
     */
    public void checkApplied() {
        groups = List.of();
        if (applied.containsAll(expected)) return;
        for (Tensor t : expected) {
            if (!applied.contains(t)) {
                throw new IllegalStateException("a LoRA adapter updates '" + nameOfWeight.get(t) + "', which this architecture does not run as a "
                        + "plain projection; its adapters are not supported");
            }
        }
    }

    // ---- projections --------------------------------------------------------------------------

    @Override
    public Tensor weight(WeightTensor source) {
        Tensor t = base.weight(source);
        weightsByName.put(source.name(), t);
        nameOfWeight.put(t, source.name());
        return t;
    }

    @Override
    public boolean readsInt4Weights() {
        return base.readsInt4Weights();
    }

    @Override
    public Tensor int4Weight(dev.jvllm.weights.Int4Weight source) {
        Tensor t = base.int4Weight(source);
        weightsByName.put(source.name(), t);
        nameOfWeight.put(t, source.name());
        return t;
    }

    @Override
    public void linear(Tensor x, Tensor weight, Tensor bias, Tensor out) {
        base.linear(x, weight, bias, out);
        for (Group group : groups) {
            Delta delta = group.adapter().deltas().get(weight);
            if (delta == null) continue;
            if (x.rows() != passTokens) {
                throw new IllegalStateException("'" + nameOfWeight.get(weight) + "' ran on " + x.rows() + " rows of a " + passTokens
                        + "-token pass, so its LoRA update cannot find its requests' rows");
            }
            applied.add(weight);
            int n = group.rows().length;
            Tensor input = x;
            if (!group.allRows()) {
                input = base.allocate(n, x.cols());
                base.gatherRows(x, group.rowIndices(), input);
            }
            Tensor low = base.allocate(n, delta.rank());
            base.linear(input, delta.a(), null, low);
            Tensor update = base.allocate(n, out.cols());
            base.linear(low, delta.b(), null, update);
            if (group.allRows()) {
                base.scale(update, group.adapter().scale(), update);
                base.add(out, update, out);
            } else {
                base.scatterAddRows(update, group.rowIndices(), group.rowScales(), out);
            }
        }
    }

    // ---- the rest goes to the wrapped backend -------------------------------------------------

    @Override
    public void headwiseLinear(Tensor x, Tensor weight, int heads, Tensor out) {
        base.headwiseLinear(x, weight, heads, out);
    }

    @Override
    public String name() {
        return base.name();
    }

    @Override
    public DType activationType() {
        return base.activationType();
    }

    @Override
    public Tensor transposedWeight(WeightTensor source) {
        return base.transposedWeight(source);
    }

    @Override
    public Tensor constant(float[] values, int rows, int cols) {
        return base.constant(values, rows, cols);
    }

    @Override
    public Tensor stepValues(float[] values, int rows, int cols) {
        return base.stepValues(values, rows, cols);
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        return base.allocate(rows, cols);
    }

    @Override
    public Tensor indices(int[] values) {
        return base.indices(values);
    }

    @Override
    public float[] toFloatArray(Tensor t) {
        return base.toFloatArray(t);
    }

    @Override
    public KvCache allocateKvCache(KvCacheSpec spec) {
        return base.allocateKvCache(spec);
    }

    @Override
    public Optional<DeviceMemory> deviceMemory() {
        return base.deviceMemory();
    }

    @Override
    public int[] argmaxRows(Tensor t) {
        return base.argmaxRows(t);
    }

    @Override
    public SampledRows argmaxRowsAsync(Tensor t) {
        return base.argmaxRowsAsync(t);
    }

    @Override
    public SampledRows sampleRowsAsync(Tensor t, PlainSampling sampling) {
        return base.sampleRowsAsync(t, sampling);
    }

    @Override
    public boolean samplesOnDevice() {
        return base.samplesOnDevice();
    }

    @Override
    public boolean feedsSampledTokens() {
        return base.feedsSampledTokens();
    }

    @Override
    public boolean queuesWork() {
        return base.queuesWork();
    }

    @Override
    public Tensor tokenIds(ForwardBatch batch) {
        return base.tokenIds(batch);
    }

    /** Nothing is captured: a graph would replay the adapters' rows of the pass it was recorded in. */
    @Override
    public Tensor runCaptured(Object shape, Supplier<Tensor> pass) {
        return pass.get();
    }

    @Override
    public boolean capturesGraphs() {
        return false;
    }

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        base.embedding(table, ids, out);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, float weightOffset, Tensor out) {
        base.rmsNorm(x, weight, eps, weightOffset, out);
    }

    @Override
    public void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, float weightOffset, Tensor out) {
        base.addRmsNorm(x, delta, weight, eps, weightOffset, out);
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        base.layerNorm(x, weight, bias, eps, out);
    }

    @Override
    public void addLayerNorm(Tensor x, Tensor delta, Tensor weight, Tensor bias, float eps, Tensor out) {
        base.addLayerNorm(x, delta, weight, bias, eps, out);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        base.add(a, b, out);
    }

    @Override
    public void siluMul(Tensor gate, Tensor up, Tensor out) {
        base.siluMul(gate, up, out);
    }

    @Override
    public void activation(Activation fn, Tensor x, Tensor out) {
        base.activation(fn, x, out);
    }

    @Override
    public void gatedActivation(Activation fn, Tensor gate, Tensor up, Tensor out) {
        base.gatedActivation(fn, gate, up, out);
    }

    @Override
    public void scale(Tensor x, float factor, Tensor out) {
        base.scale(x, factor, out);
    }

    @Override
    public void clamp(Tensor x, float limit, Tensor out) {
        base.clamp(x, limit, out);
    }

    @Override
    public void softcap(Tensor x, float cap, Tensor out) {
        base.softcap(x, cap, out);
    }

    @Override
    public void rotary(Tensor x, int heads, int headDim, int rotaryDim, boolean neoxStyle, Tensor cosSin, Tensor positions) {
        base.rotary(x, heads, headDim, rotaryDim, neoxStyle, cosSin, positions);
    }

    @Override
    public void rotaryPair(Tensor q, int qHeads, Tensor k, int kHeads, int headDim, int rotaryDim, boolean neoxStyle,
                           Tensor cosSin, Tensor positions) {
        base.rotaryPair(q, qHeads, k, kHeads, headDim, rotaryDim, neoxStyle, cosSin, positions);
    }

    @Override
    public void rotaryAttention(Tensor q, Tensor k, Tensor v, int rotaryDim, boolean neoxStyle, Tensor cosSin, Tensor positions,
                                KvCache cache, int layer, ForwardBatch batch, AttentionParams params, Tensor out) {
        base.rotaryAttention(q, k, v, rotaryDim, neoxStyle, cosSin, positions, cache, layer, batch, params, out);
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, ForwardBatch batch, AttentionParams params,
                          Tensor out) {
        base.attention(q, k, v, cache, layer, batch, params, out);
    }

    @Override
    public void encoderAttention(Tensor q, Tensor k, Tensor v, ForwardBatch batch, AttentionParams params, Tensor out) {
        base.encoderAttention(q, k, v, batch, params, out);
    }

    @Override
    public void latentAttention(Tensor qLatent, Tensor qRope, Tensor latent, Tensor keyRope, KvCache cache, int layer,
                                ForwardBatch batch, AttentionParams params, Tensor out) {
        base.latentAttention(qLatent, qRope, latent, keyRope, cache, layer, batch, params, out);
    }

    @Override
    public void gatherRows(Tensor x, Tensor rows, Tensor out) {
        base.gatherRows(x, rows, out);
    }

    @Override
    public void scatterAddRows(Tensor source, Tensor rows, Tensor weights, Tensor out) {
        base.scatterAddRows(source, rows, weights, out);
    }

    @Override
    public Tensor allocateIndices(int rows, int cols) {
        return base.allocateIndices(rows, cols);
    }

    @Override
    public void routeSoftmaxTopK(Tensor logits, int topK, boolean normalize, Tensor experts, Tensor weights) {
        base.routeSoftmaxTopK(logits, topK, normalize, experts, weights);
    }

    @Override
    public ExpertWeights expertWeights(List<Tensor> gates, List<Tensor> ups, List<Tensor> downs) {
        expertTensors.addAll(gates);
        expertTensors.addAll(ups);
        expertTensors.addAll(downs);
        return base.expertWeights(gates, ups, downs);
    }

    @Override
    public void expertFeedForward(Tensor x, ExpertWeights experts, Tensor expertIds, Tensor weights, Tensor out) {
        base.expertFeedForward(x, experts, expertIds, weights, out);
    }

    @Override
    public void addSigmoidGatedRows(Tensor source, Tensor gate, Tensor out) {
        base.addSigmoidGatedRows(source, gate, out);
    }

    @Override
    public boolean readsHostWeights() {
        return base.readsHostWeights();
    }

    @Override
    public boolean runsLoraAdapters() {
        return base.runsLoraAdapters();
    }

    /** Closes the adapters' weights and then the wrapped backend. */
    @Override
    public void close() {
        for (Attached attached : slots) attached.adapter().close();
        base.close();
    }
}
