package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.engine.PromptImage;
import dev.jvllm.models.InternLM2ForCausalLM;
import dev.jvllm.models.LlamaForCausalLM;
import dev.jvllm.models.MistralForCausalLM;
import dev.jvllm.models.Phi3ForCausalLM;
import dev.jvllm.models.Qwen2ForCausalLM;
import dev.jvllm.models.layers.KeptRows;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.PreNormDecoder;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.weights.WeightsException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Supplier;

/**
 * A vision-language model's language side, shared by the families (LLaVA, InternVL): a Llama,
 * Mistral, Qwen2, InternLM2 or Phi-3 decoder whose input rows at an image's placeholders are the image's features.
 * Features are computed by the family ({@link #encode}) in the step that first reaches an image's
 * placeholders and kept by the image's content hash ({@link KeptRows}).
 */
public abstract class VisionLanguageDecoder<I> implements CausalLM, VisionLanguageModel {

    private static final Logger log = LoggerFactory.getLogger(VisionLanguageDecoder.class);

    /** Language models whose config fields are Llama's, by {@code text_config.model_type}. */
    private static final Map<String, Supplier<PreNormArchitecture>> LANGUAGE_MODELS = Map.of(
            "llama", LlamaForCausalLM::new, "mistral", MistralForCausalLM::new, "qwen2", Qwen2ForCausalLM::new,
            "internlm2", InternLM2ForCausalLM::new, "phi3", Phi3ForCausalLM::new, "qwen2_vl_text", Qwen2ForCausalLM::new,
            "qwen2_5_vl_text", Qwen2ForCausalLM::new);

    protected final Backend backend;
    protected final WeightScope root;
    /** The language model's hidden size: each feature row's width. */
    protected final int hidden;
    private final int imageTokenId;
    private final int imageStart;
    private final int imageEnd;
    private final String placeholderText;
    private final PreNormDecoder decoder;
    private KeptRows features;
    /** Rows kept for image features before any growth: a step's prompt tokens, or a default where none were reserved. */
    private int featureBudgetRows = KeptRows.DEFAULT_BUDGET_ROWS;
    /**
     * The tower inputs of upcoming images ({@link #prepareImages}), by content hash, made in the
     * background while the device runs a step; read and written by the engine's thread only.
     */
    private final Map<String, java.util.concurrent.CompletableFuture<I>> prepared = new LinkedHashMap<>();

    /**
     * @param text         the language model's config, its family's defaults filled in ({@link #textConfig})
     * @param imageTokenId the placeholder token (config.json's {@code image_token_index}, or the tokenizer's)
     */
    protected VisionLanguageDecoder(ModelContext context, ModelConfig text, int imageTokenId) {
        this(context, text, imageTokenId, -1, -1, "<image>");
    }

    /**
     * @param imageStart      the token before each image's placeholders, or -1 for none
     * @param imageEnd        the token after them, or -1 for none
     * @param placeholderText the placeholder as prompt text ({@link #imagePlaceholderText})
     */
    protected VisionLanguageDecoder(ModelContext context, ModelConfig text, int imageTokenId, int imageStart, int imageEnd,
                                    String placeholderText) {
        this.imageStart = imageStart;
        this.imageEnd = imageEnd;
        this.placeholderText = placeholderText;
        ModelConfig config = context.config();
        this.backend = context.backend();
        this.root = WeightScope.root(context.checkpoint(), backend);
        this.hidden = text.hiddenSize();
        this.imageTokenId = imageTokenId;
        if (imageTokenId < 0 || imageTokenId >= text.vocabSize()) {
            throw new ConfigException(config.source() + ": the image token " + imageTokenId + " is outside the vocabulary of "
                    + text.vocabSize());
        }
        PreNormArchitecture languageModel = languageModel(text);
        var options = languageModel.optionsFor(text);
        // Saved by Transformers 4 (language_model.model.*, language_model.lm_head) or 5 (model.language_model.*, lm_head);
        // InternVL's own checkpoints keep the language model's family names (InternLM2's tok_embeddings and output).
        String embedTokens = options.names().embedTokens().replaceFirst("^model\\.", "");
        String decoderPrefix = java.util.stream.Stream.of("language_model.model", "model.language_model", "model")
                .filter(prefix -> root.has(prefix + "." + embedTokens + ".weight")).findFirst().orElse("model.language_model");
        String head = options.names().lmHead();
        String lmHead = root.has("language_model." + head + ".weight") ? "language_model." + head : head;
        this.decoder = new PreNormDecoder(new ModelContext(text, context.checkpoint(), backend, context.maxModelLen(),
                context.modelDirectory()), options, options.names().under(decoderPrefix, lmHead), true, this::placeImages);
    }

    /** The language model's rotary embedding, for families whose positions depend on the images (M-RoPE). */
    protected dev.jvllm.models.layers.RotaryEmbedding languageRotary() {
        return decoder.rotary();
    }

    /** The most placeholder positions any image takes. */
    protected abstract int maxImageTokens();

    /** What the image costs the vision tower, in the family's units (tiles, patches), as {@link #passBudget} counts them. */
    protected abstract int towerCost(ImageInput image);

    /** The tower cost a pass of images takes at the most; at least the largest image's ({@link #TOWER_TOKENS_A_PASS}). */
    protected abstract int passBudget();

    /** An image of the largest tower cost the family takes (its pixels do not matter): what the memory reservation encodes. */
    protected abstract ImageInput largestImage();

    /**
     * Writes each image's feature rows into the matching {@code outs} tensor ([{@link
     * #imageTokenCount}, hidden]) in one pass of the vision tower.
     */
    protected abstract void encodeTogether(List<ImageInput> images, List<Tensor> outs);

    /**
     * The family's host preprocessing of one image: what its tower pass reads (crops, tiles or
     * patches as pixel values). A pure function of the image, so that it may run on another thread.
     */
    protected abstract I towerInput(ImageInput image);

    /**
     * Each image's {@link #towerInput}, in order: made ahead by {@link #prepareImages} where it was
     * (a failure there is thrown here, as if made now), the others side by side now (a few
     * milliseconds an image: Pillow's resampling).
     */
    protected final List<I> towerInputs(List<ImageInput> images) {
        long start = System.nanoTime();
        List<I> inputs = new ArrayList<>(java.util.Collections.nCopies(images.size(), null));
        List<Integer> missing = new ArrayList<>();
        for (int i = 0; i < images.size(); i++) {
            java.util.concurrent.CompletableFuture<I> ahead = prepared.remove(images.get(i).contentHash());
            if (ahead == null) {
                missing.add(i);
                continue;
            }
            try {
                inputs.set(i, ahead.join());
            } catch (java.util.concurrent.CompletionException e) {
                if (e.getCause() instanceof RuntimeException cause) throw cause;
                if (e.getCause() instanceof Error cause) throw cause;
                throw e;
            }
        }
        if (missing.size() == 1) {
            inputs.set(missing.getFirst(), towerInput(images.get(missing.getFirst())));
        } else if (!missing.isEmpty()) {
            List<I> made = missing.parallelStream().map(i -> towerInput(images.get(i))).toList();
            for (int k = 0; k < missing.size(); k++) inputs.set(missing.get(k), made.get(k));
        }
        log.debug("tower inputs of {} images in {} ms ({} made ahead)", images.size(),
                (System.nanoTime() - start) / 1_000_000, images.size() - missing.size());
        return inputs;
    }

    /**
     * Starts making the tower inputs of the first {@link #IMAGES_PREPARED_AHEAD} of these upcoming
     * images not kept already, in the background (the common fork-join pool), and forgets those made
     * ahead for images no longer upcoming (an aborted request's).
     */
    @Override
    public void prepareImages(List<ImageInput> upcoming) {
        Map<String, ImageInput> wanted = new LinkedHashMap<>();
        for (ImageInput image : upcoming) {
            if (wanted.size() == IMAGES_PREPARED_AHEAD) break;
            String key = image.contentHash();
            if (features == null || !features.holds(key)) wanted.putIfAbsent(key, image);
        }
        prepared.entrySet().removeIf(entry -> {
            if (wanted.containsKey(entry.getKey())) return false;
            entry.getValue().cancel(false);
            return true;
        });
        wanted.forEach((key, image) -> prepared.computeIfAbsent(key,
                k -> java.util.concurrent.CompletableFuture.supplyAsync(() -> towerInput(image))));
    }

    /** Upcoming images whose tower inputs are being made or are ready ({@link #prepareImages}), for tests and metrics. */
    public int imagesPreparedAhead() {
        return prepared.size();
    }

    /**
     * Writes each image's feature rows into the matching {@code outs} tensor: the images of one
     * step go through the tower together, in passes of at most {@link #reservedPass} (an image
     * alone may exceed it only where {@link #largestImage} is not the costliest), so that the
     * tower's buffers stay within what {@link #reserveImageMemory} allocated.
     */
    protected final void encode(List<ImageInput> images, List<Tensor> outs) {
        inPasses(images, outs, this::towerCost, reservedPass(), this::encodeTogether);
    }

    private int reservedPass;

    /**
     * The tower cost a pass takes: {@link #passBudget} rounded down to whole largest images, which is
     * what {@link #reserveImageMemory} runs, so that no pass of smaller images needs more of the tower's
     * buffers than the reservation made (Phi-3-Vision: 17 crops a largest image against a budget of 28).
     */
    private int reservedPass() {
        if (reservedPass == 0) {
            int largest = towerCost(largestImage());
            reservedPass = Math.max(1, passBudget() / largest) * largest;
        }
        return reservedPass;
    }

    /**
     * Allocates the feature rows kept for images, as many as {@code promptTokensAStep} or one
     * largest image's, and runs the tower over the largest pass of largest images on blank pixels,
     * so that the buffers a step with images needs are in place when the engine sizes the KV cache.
     * Passes then take at most as many largest images' cost as this one ({@link #reservedPass}).
     */
    @Override
    public void reserveImageMemory(int promptTokensAStep) {
        featureBudgetRows = promptTokensAStep;
        features = newFeatures();
        features.reserve();
        ImageInput largest = largestImage();
        int copies = reservedPass() / towerCost(largest);
        features.put("reserved for the largest image", imageTokenCount(largest), java.util.Set.of());
        Tensor out = features.get("reserved for the largest image");
        encode(java.util.Collections.nCopies(copies, largest), java.util.Collections.nCopies(copies, out));
    }

    @Override
    public int imageFeatureRowsAStep() {
        return Math.max(featureBudgetRows, maxImageTokens());
    }

    /** Kept features of the budget's rows, or of one largest image where that is more: what a step may use. */
    private KeptRows newFeatures() {
        return new KeptRows(backend, "image features", imageFeatureRowsAStep(), hidden);
    }

    @Override
    public int imageTokenId() {
        return imageTokenId;
    }

    @Override
    public int imageStartTokenId() {
        return imageStart;
    }

    @Override
    public int imageEndTokenId() {
        return imageEnd;
    }

    @Override
    public String imagePlaceholderText() {
        return placeholderText;
    }

    @Override
    public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
        return decoder.kvCacheSpec(numBlocks, blockSize);
    }

    @Override
    public int vocabSize() {
        return decoder.vocabSize();
    }

    @Override
    public Tensor forward(ForwardBatch batch, KvCache cache) {
        return decoder.forward(batch, cache);
    }

    @Override
    public void encodeImages(List<ImageInput> images) {
        Map<String, ImageInput> wanted = new LinkedHashMap<>();
        for (ImageInput image : images) wanted.putIfAbsent(image.contentHash(), image);
        encodeMissing(wanted);
    }

    /** Encodes the images of {@code wanted} (by content hash) not kept, keeping all of {@code wanted}; a failure keeps none of the new ones. */
    private void encodeMissing(Map<String, ImageInput> wanted) {
        if (features == null) features = newFeatures();
        Map<String, Integer> rows = new LinkedHashMap<>();
        wanted.forEach((hash, image) -> rows.put(hash, imageTokenCount(image)));
        features.keepAll(rows, missing -> encode(missing.stream().map(wanted::get).toList(),
                missing.stream().map(features::get).toList()));
    }

    /** Writes each image's features over its placeholders among the batch's tokens, encoding the images not kept. */
    private void placeImages(Backend backend, ForwardBatch batch, Tensor x) {
        if (batch.images() == null) return;
        Map<String, ImageInput> wanted = new LinkedHashMap<>();
        for (List<PromptImage> images : batch.images()) {
            for (PromptImage image : images) wanted.putIfAbsent(image.image().contentHash(), image.image());
        }
        encodeMissing(wanted);
        for (int s = 0; s < batch.numSequences(); s++) {
            int first = batch.queryStarts()[s];
            int count = batch.queryLength(s);
            if (count == 0) continue;
            int firstPosition = batch.positions()[first];
            for (PromptImage image : batch.imagesOf(s)) {
                int from = Math.max(image.start(), firstPosition);
                int to = Math.min(image.end(), firstPosition + count);
                if (from >= to) continue;
                Tensor rows = features.get(image.image().contentHash()).rows(from - image.start(), to - from);
                backend.scale(rows, 1f, x.rows(first + from - firstPosition, to - from));
            }
        }
    }

    /**
     * A JSON file of the model directory (preprocessor_config.json, tokenizer_config.json, or
     * tokenizer.json, whose size the 64 MiB allows), or null where it is absent; refused by name
     * when larger, not JSON, or not an object.
     */
    protected static JsonNode jsonFile(Path file) {
        return ModelConfig.readOptionalJson(file, 64L << 20);
    }

    /**
     * The vision tower's tokens (patches) a pass takes at the most, beyond one image's: enough that
     * a batch of small images shares passes (16 LLaVA-1.5 images, 28 InternVL tiles), few enough that
     * the tower's scratch stays a few hundred megabytes.
     */
    protected static final int TOWER_TOKENS_A_PASS = 16_384;

    /**
     * {@code pass} over consecutive groups of the images, each group's {@code cost} (tiles, patches)
     * within {@code budget} but for an image that alone exceeds it: a family's encode bounds the
     * vision tower's scratch memory by the budget, whatever number of images a step reaches.
     */
    protected static void inPasses(List<ImageInput> images, List<Tensor> outs, java.util.function.ToIntFunction<ImageInput> cost,
                                   int budget, java.util.function.BiConsumer<List<ImageInput>, List<Tensor>> pass) {
        for (int from = 0; from < images.size(); ) {
            int to = from + 1, used = cost.applyAsInt(images.get(from));
            while (to < images.size() && used + cost.applyAsInt(images.get(to)) <= budget) {
                used += cost.applyAsInt(images.get(to));
                to++;
            }
            pass.accept(images.subList(from, to), outs.subList(from, to));
            from = to;
        }
    }

    /** An image of this size, all black: what {@link #largestImage} gives where only the size matters. */
    protected static ImageInput blankImage(int width, int height) {
        return ImageInput.rgb(width, height, new byte[3 * width * height]);
    }

    /** The scope of the first prefix under which {@code probe} exists. */
    protected static WeightScope scopeHolding(WeightScope root, String probe, String... prefixes) {
        for (String prefix : prefixes) {
            WeightScope scope = root.child(prefix);
            if (scope.has(probe)) return scope;
        }
        throw new WeightsException("no tensor " + probe + " under any of " + List.of(prefixes) + " in the checkpoint");
    }

    /**
     * The {@code text_config} with the defaults of its family's Transformers config class filled in:
     * LLaVA-1.5's config.json states only what differs from them.
     */
    protected static ModelConfig textConfig(ModelConfig config) {
        return textConfig(config, "text_config");
    }

    /** As {@link #textConfig(ModelConfig)}, from the section {@code section} (InternVL's own checkpoints: llm_config). */
    protected static ModelConfig textConfig(ModelConfig config, String section) {
        ModelConfig text = config.section(section);
        String type = text.raw().path("model_type").asText("llama");
        Map<String, Object> defaults = new java.util.HashMap<>(switch (type) {
            case "mistral" -> Map.of("vocab_size", 32000, "hidden_size", 4096, "intermediate_size", 14336,
                    "num_hidden_layers", 32, "num_attention_heads", 32, "num_key_value_heads", 8,
                    "max_position_embeddings", 131072, "rms_norm_eps", 1e-6, "sliding_window", 4096);
            case "qwen2" -> Map.of("vocab_size", 151936, "hidden_size", 4096, "intermediate_size", 22016,
                    "num_hidden_layers", 32, "num_attention_heads", 32, "num_key_value_heads", 32,
                    "max_position_embeddings", 32768, "rms_norm_eps", 1e-6);
            default -> Map.of("vocab_size", 32000, "hidden_size", 4096, "intermediate_size", 11008,
                    "num_hidden_layers", 32, "num_attention_heads", 32, "max_position_embeddings", 2048,
                    "rms_norm_eps", 1e-6);
        });
        defaults.put("model_type", type);
        return text.withDefaults(defaults);
    }

    private static PreNormArchitecture languageModel(ModelConfig text) {
        String type = text.modelType();
        Supplier<PreNormArchitecture> family = LANGUAGE_MODELS.get(type);
        if (family == null) {
            throw new ConfigException(text.source() + ": model_type '" + type + "' is not supported as the language model of a "
                    + "vision-language model (supported: " + String.join(", ", new TreeSet<>(LANGUAGE_MODELS.keySet())) + ")");
        }
        return family.get();
    }
}
