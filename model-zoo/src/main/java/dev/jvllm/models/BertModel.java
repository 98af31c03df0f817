package dev.jvllm.models;

import dev.jvllm.JvllmException;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.BertLayer;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.pooling.ClassifierHead;
import dev.jvllm.pooling.PoolingType;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.WeightsException;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * BERT (arXiv:1810.04805) as an embedder (BAAI bge-*-en-v1.5, Snowflake arctic-embed) or a sequence
 * classifier (cross-encoders, with their classifier head): word, absolute position and token-type
 * embeddings (each token's type: 0, or a pair's second text's 1) summed and layer-normed, then
 * post-norm encoder layers with bidirectional attention and an exact (erf) GELU; the output is every
 * token's last hidden state, pooled by the engine (CLS unless sentence-transformers says otherwise).
 */
public final class BertModel implements PoolingModel {

    /** A registry entry of a BERT-family encoder: it embeds or classifies, never generates. */
    abstract static class EncoderArchitecture implements ModelArchitecture {
        @Override
        public boolean generates() {
            return false;
        }

        @Override
        public CausalLM load(ModelContext context) {
            throw encoderOnly(architectureNames().getFirst(), classifies() ? "CLASSIFY" : "EMBED");
        }
    }

    /** The registry entry: BertModel checkpoints, and the encoder of BertForMaskedLM ones. */
    public static final class Architecture extends EncoderArchitecture {
        @Override
        public List<String> architectureNames() {
            return List.of("BertModel", "BertForMaskedLM");
        }

        @Override
        public List<String> modelTypes() {
            return List.of("bert");
        }

        @Override
        public PoolingModel loadPooling(ModelContext context) {
            return new BertModel(context, new Variant(List.of("", "bert."), 0, false));
        }
    }

    /**
     * BertForSequenceClassification: classifiers, and cross-encoder rerankers (ms-marco MiniLM,
     * bge-reranker-base/large) whose one label scores a query and document read as a pair.
     */
    public static final class SequenceClassification extends EncoderArchitecture {
        @Override
        public List<String> architectureNames() {
            return List.of("BertForSequenceClassification");
        }

        @Override
        public boolean classifies() {
            return true;
        }

        @Override
        public PoolingModel loadPooling(ModelContext context) {
            return new BertModel(context, new Variant(List.of("bert.", ""), 0, true));
        }
    }

    /**
     * What a BERT-family checkpoint changes.
     *
     * @param prefixes       where the encoder's weights may live ("", "bert.", "roberta.")
     * @param positionOffset the position id of a sequence's first token (RoBERTa: padding_idx + 1)
     * @param classifier     whether the checkpoint has a sequence classifier's head (BERT's pooler and
     *                       {@code classifier}, or RoBERTa's {@code classifier.dense} and {@code classifier.out_proj})
     */
    record Variant(List<String> prefixes, int positionOffset, boolean classifier) {
    }

    static JvllmException encoderOnly(String name, String task) {
        return new JvllmException(name + " is an encoder and cannot generate text; build the LLM with task(Task." + task + ")");
    }

    private final Backend backend;
    private final int hidden;
    private final int vocab;
    private final Tensor wordEmbeddings;
    /** Row p: the position embedding of position p + offset plus the token-type-0 embedding. */
    private final Tensor positionAndType;
    /** Row t: token type t's embedding less type 0's (already in positionAndType); null with one type. */
    private final Tensor typeOffsets;
    private final int types;
    private final ClassifierHead classifier;
    private final LayerNorm embeddingNorm;
    private final List<BertLayer> layers = new ArrayList<>();
    private final Scratch scratch;

    BertModel(ModelContext context, Variant variant) {
        this.backend = context.backend();
        ModelConfig config = context.config();
        String embeddingType = config.raw().path("position_embedding_type").asText("absolute");
        if (!embeddingType.equals("absolute")) {
            throw new ConfigException(config.source() + ": position_embedding_type '" + embeddingType
                    + "' is not supported (only absolute)");
        }
        this.hidden = config.hiddenSize();
        this.vocab = config.vocabSize();
        double eps = config.doubleOr(1e-12, "layer_norm_eps");
        int maxPositions = config.maxPositionEmbeddings();
        int types = config.intOr(2, "type_vocab_size");
        if (variant.positionOffset() >= maxPositions) {
            throw new ConfigException(config.source() + ": max_position_embeddings " + maxPositions
                    + " leaves no position after the offset " + variant.positionOffset());
        }
        WeightScope root = WeightScope.root(context.checkpoint(), backend);
        WeightScope model = variant.prefixes().stream()
                .map(p -> p.isEmpty() ? root : root.child(p.substring(0, p.length() - 1)))
                .filter(s -> s.has("embeddings.word_embeddings.weight"))
                .findFirst()
                .orElseThrow(() -> new WeightsException("no tensor embeddings.word_embeddings.weight under any of the prefixes "
                        + variant.prefixes() + " in the checkpoint"));
        WeightScope embeddings = model.child("embeddings");
        this.wordEmbeddings = embeddings.child("word_embeddings").tensor("weight", vocab, hidden);
        float[] positions = backend.toFloatArray(embeddings.child("position_embeddings").tensor("weight", maxPositions, hidden));
        float[] type0 = backend.toFloatArray(embeddings.child("token_type_embeddings").tensor("weight", types, hidden));
        int rows = maxPositions - variant.positionOffset();
        float[] table = new float[rows * hidden];
        for (int p = 0; p < rows; p++) {
            for (int i = 0; i < hidden; i++) {
                table[p * hidden + i] = positions[(p + variant.positionOffset()) * hidden + i] + type0[i];
            }
        }
        this.positionAndType = backend.constant(table, rows, hidden);
        this.types = types;
        if (types > 1) {
            float[] offsets = new float[types * hidden];
            for (int t = 1; t < types; t++) {
                for (int i = 0; i < hidden; i++) offsets[t * hidden + i] = type0[t * hidden + i] - type0[i];
            }
            this.typeOffsets = backend.constant(offsets, types, hidden);
        } else {
            this.typeOffsets = null;
        }
        this.classifier = variant.classifier() ? classifierHead(root, model, config, hidden) : null;
        this.embeddingNorm = LayerNorm.load(embeddings, "LayerNorm", hidden, eps);
        AttentionParams attention = AttentionParams.causal(config.numHeads(), config.numHeads(), config.headDim());
        Activation activation = Activation.fromConfig(config.hiddenAct());
        for (int i = 0; i < config.numLayers(); i++) {
            layers.add(BertLayer.load(model.child("encoder").child("layer").child(Integer.toString(i)), hidden,
                    config.intermediateSize(), attention, activation, eps));
        }
        this.scratch = new Scratch(backend);
    }

    /**
     * Whether any token has a type other than 0; types outside the model's are refused. A model of one
     * type (RoBERTa) reads every token as type 0, as Transformers' RoBERTa tokenizers write a pair's types.
     */
    private boolean hasOtherTypes(int[] tokenTypes, int tokens) {
        if (tokenTypes == null || types == 1) return false;
        if (tokenTypes.length != tokens) throw new IllegalArgumentException(tokenTypes.length + " token types for " + tokens + " tokens");
        boolean other = false;
        for (int type : tokenTypes) {
            if (type < 0 || type >= types) {
                throw new dev.jvllm.InvalidRequestException("tokenTypes", "token type " + type + " is outside the model's " + types);
            }
            other |= type != 0;
        }
        return other;
    }

    @Override
    public int hiddenSize() {
        return hidden;
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    @Override
    public int maxInputLength() {
        return positionAndType.rows();
    }

    @Override
    public PoolingType defaultPooling() {
        return PoolingType.CLS;
    }

    /**
     * The checkpoint's classifier head: RoBERTa's {@code classifier.dense} (tanh) and {@code
     * classifier.out_proj}, or BERT's pooler ({@code pooler.dense}, tanh) and {@code classifier}.
     */
    private static ClassifierHead classifierHead(WeightScope root, WeightScope model, ModelConfig config, int hidden) {
        List<String> labels = labels(config);
        int n = labels.size();
        WeightScope dense, out;
        if (root.has("classifier.out_proj.weight")) {
            dense = root.child("classifier").child("dense");
            out = root.child("classifier").child("out_proj");
        } else if (root.has("classifier.weight")) {
            dense = model.child("pooler").child("dense");
            out = root.child("classifier");
        } else {
            throw new WeightsException("no classifier head in the checkpoint (classifier.weight, or classifier.out_proj.weight)");
        }
        return new ClassifierHead(hidden, dense.floats("weight", hidden, hidden), dense.floats("bias", hidden),
                out.floats("weight", n, hidden), out.has("bias") ? out.floats("bias", n) : null, labels,
                ClassifierHead.Reading.of(config.raw(), -1));
    }

    /** The labels' names from config.json's {@code id2label} (ordered by id), else LABEL_0 ... for {@code num_labels} (2 by default). */
    static List<String> labels(ModelConfig config) {
        var id2label = config.raw().path("id2label");
        int n = id2label.isObject() && !id2label.isEmpty() ? id2label.size() : config.intOr(2, "num_labels");
        List<String> labels = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            var name = id2label.path(Integer.toString(i));
            if (id2label.isObject() && !id2label.isEmpty() && !name.isTextual()) {
                throw new ConfigException(config.source() + ": id2label has no label " + i + " of its " + n);
            }
            labels.add(name.isTextual() ? name.asText() : "LABEL_" + i);
        }
        return labels;
    }

    @Override
    public Optional<ClassifierHead> classifier() {
        return Optional.ofNullable(classifier);
    }

    @Override
    public Tensor hiddenStates(ForwardBatch batch, KvCache cacheOrNull) {
        return hiddenStates(batch, cacheOrNull, null);
    }

    @Override
    public Optional<Tensor> pooledRowStates(ForwardBatch batch, KvCache cacheOrNull) {
        return pooledRowStates(batch, cacheOrNull, null);
    }

    @Override
    public Tensor hiddenStates(ForwardBatch batch, KvCache cacheOrNull, int[] tokenTypes) {
        Tensor x = embed(batch, tokenTypes);
        for (BertLayer layer : layers) {
            layer.forward(backend, x, batch, scratch);
        }
        return x;
    }

    /** All layers but the last for every token; the last only for the pooled ones. */
    @Override
    public Optional<Tensor> pooledRowStates(ForwardBatch batch, KvCache cacheOrNull, int[] tokenTypes) {
        if (layers.isEmpty()) {
            return Optional.empty();
        }
        Tensor x = embed(batch, tokenTypes);
        for (BertLayer layer : layers.subList(0, layers.size() - 1)) {
            layer.forward(backend, x, batch, scratch);
        }
        int[] rows = batch.logitRows();
        return Optional.of(layers.getLast().forwardRows(backend, x, batch, backend.indices(rows), rows.length, scratch));
    }

    /** The layer-normed sum of word, position and token-type embeddings (types null: all 0), [tokens, hidden]. */
    private Tensor embed(ForwardBatch batch, int[] tokenTypes) {
        int tokens = batch.numTokens();
        Tensor x = scratch.get("hidden", tokens, hidden);
        Tensor sum = scratch.get("embedded", tokens, hidden);
        backend.embedding(wordEmbeddings, backend.tokenIds(batch), x);
        backend.embedding(positionAndType, backend.indices(batch.positions()), sum);
        backend.add(x, sum, sum);
        if (hasOtherTypes(tokenTypes, tokens)) {
            Tensor offsets = scratch.get("typeOffsets", tokens, hidden);
            backend.embedding(typeOffsets, backend.indices(tokenTypes), offsets);
            backend.add(sum, offsets, sum);
        }
        embeddingNorm.apply(backend, sum, x);
        return x;
    }
}
