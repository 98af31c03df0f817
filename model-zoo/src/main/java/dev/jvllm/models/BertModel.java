package dev.jvllm.models;

import dev.jvllm.JvllmException;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.BertLayer;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightScope;
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
 * BERT (arXiv:1810.04805) as an embedder: BAAI bge-*-en-v1.5, Snowflake arctic-embed. Word,
 * absolute position and token-type (type 0) embeddings summed and layer-normed, then post-norm
 * encoder layers with bidirectional attention and an exact (erf) GELU; the output is every
 * token's last hidden state, pooled by the engine (CLS unless sentence-transformers says otherwise).
 */
public final class BertModel implements PoolingModel {

    /** The registry entry: BertModel checkpoints, and the encoder of BertForMaskedLM ones. */
    public static final class Architecture implements ModelArchitecture {
        @Override
        public List<String> architectureNames() {
            return List.of("BertModel", "BertForMaskedLM");
        }

        @Override
        public List<String> modelTypes() {
            return List.of("bert");
        }

        @Override
        public boolean generates() {
            return false;
        }

        @Override
        public CausalLM load(ModelContext context) {
            throw encoderOnly(architectureNames().getFirst());
        }

        @Override
        public PoolingModel loadPooling(ModelContext context) {
            return new BertModel(context, new Variant(List.of("", "bert."), 0));
        }
    }

    /**
     * What a BERT-family checkpoint changes.
     *
     * @param prefixes       where the encoder's weights may live ("", "bert.", "roberta.")
     * @param positionOffset the position id of a sequence's first token (RoBERTa: padding_idx + 1)
     */
    record Variant(List<String> prefixes, int positionOffset) {
    }

    static JvllmException encoderOnly(String name) {
        return new JvllmException(name + " is an encoder and cannot generate text; build the LLM with task(Task.EMBED)");
    }

    private final Backend backend;
    private final int hidden;
    private final int vocab;
    private final Tensor wordEmbeddings;
    /** Row p: the position embedding of position p + offset plus the token-type-0 embedding. */
    private final Tensor positionAndType;
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
        this.embeddingNorm = LayerNorm.load(embeddings, "LayerNorm", hidden, eps);
        AttentionParams attention = AttentionParams.causal(config.numHeads(), config.numHeads(), config.headDim());
        Activation activation = Activation.fromConfig(config.hiddenAct());
        for (int i = 0; i < config.numLayers(); i++) {
            layers.add(BertLayer.load(model.child("encoder").child("layer").child(Integer.toString(i)), hidden,
                    config.intermediateSize(), attention, activation, eps));
        }
        this.scratch = new Scratch(backend);
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

    @Override
    public Tensor hiddenStates(ForwardBatch batch, KvCache cacheOrNull) {
        Tensor x = embed(batch);
        for (BertLayer layer : layers) {
            layer.forward(backend, x, batch, scratch);
        }
        return x;
    }

    /** All layers but the last for every token; the last only for the pooled ones. */
    @Override
    public Optional<Tensor> pooledRowStates(ForwardBatch batch, KvCache cacheOrNull) {
        if (layers.isEmpty()) {
            return Optional.empty();
        }
        Tensor x = embed(batch);
        for (BertLayer layer : layers.subList(0, layers.size() - 1)) {
            layer.forward(backend, x, batch, scratch);
        }
        int[] rows = batch.logitRows();
        return Optional.of(layers.getLast().forwardRows(backend, x, batch, backend.indices(rows), rows.length, scratch));
    }

    /** The layer-normed sum of word, position and token-type embeddings, [tokens, hidden]. */
    private Tensor embed(ForwardBatch batch) {
        int tokens = batch.numTokens();
        Tensor x = scratch.get("hidden", tokens, hidden);
        Tensor sum = scratch.get("embedded", tokens, hidden);
        backend.embedding(wordEmbeddings, backend.tokenIds(batch), x);
        backend.embedding(positionAndType, backend.indices(batch.positions()), sum);
        backend.add(x, sum, sum);
        embeddingNorm.apply(backend, sum, x);
        return x;
    }
}
