package dev.jvllm.models;

import dev.jvllm.JvllmException;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.pooling.ClassifierHead;
import dev.jvllm.pooling.PoolingType;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.spi.Tensor;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Decoders' sequence classifiers ({@code LlamaForSequenceClassification}, Mistral's, Qwen2's and
 * Qwen3's: classifiers and reward models; a causal LM with {@code classifier_from_token}, such as a
 * Qwen3-Reranker under vLLM's overrides): the causal family's decoder without its language-model
 * head, and a {@code score} layer (no bias) over the final-normed state of the input's last token that
 * is not the pad token (as Transformers pools: a template ending in a token that is also the pad
 * id is pooled before it).
 */
public final class DecoderSequenceClassification implements ModelArchitecture {

    /** Each classifier's name and the causal family whose decoder it is. */
    private static final Map<String, PreNormArchitecture> FAMILIES = Map.of(
            "LlamaForSequenceClassification", new LlamaForCausalLM(),
            "MistralForSequenceClassification", new MistralForCausalLM(),
            "Qwen2ForSequenceClassification", new Qwen2ForCausalLM(),
            "Qwen3ForSequenceClassification", new Qwen3ForCausalLM());

    @Override
    public List<String> architectureNames() {
        return FAMILIES.keySet().stream().sorted().toList();
    }

    @Override
    public boolean generates() {
        return false;
    }

    @Override
    public boolean classifies() {
        return true;
    }

    @Override
    public CausalLM load(ModelContext context) {
        throw new JvllmException(context.config().architectures() + " checkpoints have a classifier's head, not a language model's: "
                + "build the LLM with task(Task.CLASSIFY)");
    }

    @Override
    public PoolingModel loadPooling(ModelContext context) {
        PreNormArchitecture family = context.config().architectures().stream().map(FAMILIES::get)
                .filter(java.util.Objects::nonNull).findFirst().orElseThrow();
        PoolingModel decoder = family.loadPooling(context);
        try {
            int hidden = decoder.hiddenSize();
            int pad = context.config().intOr(-1, "pad_token_id");
            var fromTokens = context.config().raw().get("classifier_from_token");
            if (fromTokens != null && !fromTokens.isNull()) {
                if (!fromTokens.isArray() || fromTokens.isEmpty()) {
                    throw new dev.jvllm.config.ConfigException(context.config().source() + ": classifier_from_token must be a list of tokens, not "
                            + fromTokens);
                }
                return new Classified(decoder, headFromTokens(context, hidden, fromTokens));
            }
            List<String> labels = BertModel.labels(context.config());
            float[] score = WeightScope.root(context.checkpoint(), context.backend()).floats("score.weight", labels.size(), hidden);
            return new Classified(decoder, new ClassifierHead(hidden, null, null, score, null, labels,
                    ClassifierHead.Reading.of(context.config().raw(), pad)));
        } catch (RuntimeException e) {
            decoder.close();
            throw e;
        }
    }

    /**
     * A causal LM read as a classifier from its language-model head's rows (vLLM's {@code
     * classifier_from_token}, as a Qwen3-Reranker is served), pooled at the last token as vLLM pools it.
     * vLLM's {@code method} "from_2_way_softmax" (also what {@code is_original_qwen3_reranker}, or two
     * tokens without a method, mean) makes one label of two tokens, the second's logit less the first's,
     * whose sigmoid is the second token's probability of the two (a reranker's "no", "yes");
     * "no_post_processing" (or another count of tokens without a method) makes a label of each token's
     * logit. Tokens are written as in tokenizer.json, or given as ids.
     */
    private static ClassifierHead headFromTokens(ModelContext context, int hidden, com.fasterxml.jackson.databind.JsonNode tokens) {
        var config = context.config();
        String method = config.raw().path("method").asText(config.bool("is_original_qwen3_reranker", false) ? "from_2_way_softmax"
                : tokens.size() == 2 ? "from_2_way_softmax" : "no_post_processing");
        if (!method.equals("from_2_way_softmax") && !method.equals("no_post_processing")) {
            throw new dev.jvllm.config.ConfigException(config.source() + ": method '" + method
                    + "' is not one jvllm reads a classifier from tokens with (from_2_way_softmax, no_post_processing)");
        }
        if (method.equals("from_2_way_softmax") && tokens.size() != 2) {
            throw new dev.jvllm.config.ConfigException(config.source() + ": from_2_way_softmax needs two classifier_from_token tokens, not "
                    + tokens.size());
        }
        int[] ids = new int[tokens.size()];
        List<String> names = new java.util.ArrayList<>();
        Map<String, Integer> vocabulary = null;
        for (int i = 0; i < ids.length; i++) {
            var token = tokens.get(i);
            if (token.isIntegralNumber()) {
                if (!token.canConvertToInt()) throw new dev.jvllm.config.ConfigException(config.source() + ": token id " + token + " is out of range");
                ids[i] = token.asInt();
            } else {
                if (vocabulary == null) {
                    if (context.modelDirectory() == null || !java.nio.file.Files.isRegularFile(context.modelDirectory().resolve("tokenizer.json"))) {
                        throw new dev.jvllm.config.ConfigException(config.source() + ": classifier_from_token names tokens, "
                                + "but the model has no tokenizer.json to find them in");
                    }
                    vocabulary = dev.jvllm.tokenizer.HfTokenizer.vocabulary(context.modelDirectory());
                }
                Integer id = vocabulary.get(token.asText());
                if (id == null) {
                    throw new dev.jvllm.config.ConfigException(config.source() + ": classifier_from_token '" + token.asText()
                            + "' is not a token of the tokenizer");
                }
                ids[i] = id;
            }
            names.add(token.asText());
        }
        WeightScope root = WeightScope.root(context.checkpoint(), context.backend());
        // As the decoder's own LM head: the embedding table where the config ties them, or where no head was saved.
        String head = !config.bool("tie_word_embeddings", false) && root.has("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
        float[] rows = dev.jvllm.weights.WeightValues.rows(context.checkpoint().get(head), ids);
        if (rows.length != ids.length * hidden) {
            throw new dev.jvllm.weights.WeightsException(head + " has rows of " + rows.length / ids.length + " features, not " + hidden);
        }
        var reading = ClassifierHead.Reading.of(config.raw(), -1);
        if (method.equals("no_post_processing")) return new ClassifierHead(hidden, null, null, rows, null, names, reading);
        float[] difference = new float[hidden];
        for (int i = 0; i < hidden; i++) difference[i] = rows[hidden + i] - rows[i];
        return new ClassifierHead(hidden, null, null, difference, null, List.of(names.get(1)), reading);
    }

    /** A decoder's pooling model with the classifier over its last token. */
    private record Classified(PoolingModel decoder, ClassifierHead head) implements PoolingModel {
        @Override
        public int hiddenSize() {
            return decoder.hiddenSize();
        }

        @Override
        public int vocabSize() {
            return decoder.vocabSize();
        }

        @Override
        public int maxInputLength() {
            return decoder.maxInputLength();
        }

        @Override
        public PoolingType defaultPooling() {
            return PoolingType.LAST;
        }

        @Override
        public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
            return decoder.kvCacheSpec(numBlocks, blockSize);
        }

        @Override
        public Tensor hiddenStates(ForwardBatch batch, KvCache cacheOrNull) {
            return decoder.hiddenStates(batch, cacheOrNull);
        }

        @Override
        public Optional<Tensor> pooledRowStates(ForwardBatch batch, KvCache cacheOrNull) {
            return decoder.pooledRowStates(batch, cacheOrNull);
        }

        @Override
        public Optional<ClassifierHead> classifier() {
            return Optional.of(head);
        }

        @Override
        public void close() {
            decoder.close();
        }
    }
}
