package dev.jvllm;

import dev.jvllm.config.GenerationConfig;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.config.PoolingConfig;
import dev.jvllm.config.Quantization;
import dev.jvllm.engine.AsyncLLMEngine;
import dev.jvllm.engine.EmbeddingEngine;
import dev.jvllm.engine.EngineMetrics;
import dev.jvllm.engine.LLMEngine;
import dev.jvllm.hub.ModelResolver;
import dev.jvllm.lora.LoraBackend;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.tokenizer.ChatTemplateException;
import dev.jvllm.tokenizer.HfTokenizer;
import dev.jvllm.tokenizer.IncrementalDetokenizer;
import dev.jvllm.weights.BitsAndBytesCheckpoint;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.DecodingCheckpoint;
import dev.jvllm.weights.Fp8Checkpoint;
import dev.jvllm.weights.Int4Weight;
import dev.jvllm.weights.PackedIntCheckpoint;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.function.IntFunction;

/**
 * Offline inference, as vLLM's {@code LLM}: load a model once, then {@link #generate} for many
 * prompts at a time (all of a call's prompts are batched by the engine).
 *
 * <pre>{@code
 * try (LLM llm = new LLM("meta-llama/Llama-3.2-1B")) {
 *     RequestOutput out = llm.generate("The capital of France is",
 *             SamplingParams.builder().temperature(0.8).topP(0.95).maxTokens(32).build());
 *     System.out.println(out.text());
 * }
 * }</pre>
 *
 * <p>The model is a local directory, or a Hugging Face id found in the HF cache or else downloaded
 * from the Hub into it ({@link dev.jvllm.hub.HubDownloader}; with {@code VLLM_USE_MODELSCOPE=true},
 * ModelScope's cache and ModelScope; nothing is downloaded with {@code HF_HUB_OFFLINE=1}). Not
 * thread-safe: one generate call at a time;
 * for concurrent callers and streaming, {@link Builder#buildAsync()} serves the model from an
 * {@link AsyncLLMEngine}.
 *
 * <p>Built with {@link Task#EMBED} (or {@link Task#AUTO} on an encoder), it embeds instead:
 * <pre>{@code
 * try (LLM llm = LLM.builder().model("BAAI/bge-small-en-v1.5").task(Task.EMBED).build()) {
 *     float[] v = llm.embed("What is the capital of France?").embedding();
 * }
 * }</pre>
 *
 * <p>Over a {@code *ForSequenceClassification} checkpoint it classifies ({@link Task#CLASSIFY}):
 * {@link #classify} gives each text's label probabilities, and a cross-encoder reranker's
 * {@link #score} each query-document pair's relevance.
 */
public final class LLM implements AutoCloseable {

    /**
     * The {@link AsyncLLMEngine} from {@link #serveAsync} that drives this LLM's engine, closed first when
     * this LLM is closed; null when none serves it.
     */
    private volatile AsyncLLMEngine servedBy;

    private static final Logger log = LoggerFactory.getLogger(LLM.class);
    /** Paging in the weights scales to a few threads; past them it only adds threads to start. */
    private static final int MAX_LOAD_THREADS = 8;

    private final Path modelDirectory;
    private final ModelConfig config;
    private final GenerationConfig generationConfig;
    private final HfTokenizer tokenizer;
    private final Checkpoint checkpoint;
    private final Backend backend;
    private final CausalLM model;
    private final LLMEngine engine;
    private final Task task;
    private final PoolingModel poolingModel;
    private final EmbeddingEngine embedder;
    private long nextRequestId;

    /** Loads a model (local path or Hugging Face id) with default options. */
    public LLM(String model) {
        this(builder().model(model));
    }

    private LLM(Builder b) {
        long start = System.nanoTime();
        EngineConfig engineConfig = b.engineConfig();
        if (b.model == null || b.model.isBlank()) {
            throw new JvllmException("no model given: name one with LLM.builder().model(\"org/name\" or a directory)");
        }
        ModelResolver resolver = b.downloadDir == null ? ModelResolver.fromEnvironment()
                : ModelResolver.fromEnvironment().withHubCache(b.downloadDir);
        // A download stops before the weights when the config names a model jvllm cannot serve.
        this.modelDirectory = resolver.resolveOrDownload(b.model, b.revision,
                snapshot -> ModelRegistry.find(overridden(ModelConfig.load(snapshot), b.hfOverrides)));
        this.config = overridden(ModelConfig.load(modelDirectory), b.hfOverrides);
        if (config.bool("trust_remote_code", false) || config.raw().has("auto_map")) {
            log.info("{} ships custom code (auto_map); jvllm never runs it and uses its native class", b.model);
        }
        ModelArchitecture architecture = ModelRegistry.find(config);
        this.generationConfig = GenerationConfig.load(modelDirectory, config);
        this.task = b.task != Task.AUTO ? b.task
                : architecture.generates() ? Task.GENERATE : architecture.classifies() ? Task.CLASSIFY : Task.EMBED;
        int maxModelLen = engineConfig.maxModelLen() > 0 ? engineConfig.maxModelLen() : architecture.maxPositions(config);
        long tConfig = System.nanoTime();
        // The tokenizer is most of a load from the page cache (its native build parses all of
        // tokenizer.json): its vocabulary is read on its own thread while the weights are mapped
        // and wrapped, and the native build goes on past the constructor, at the lowest priority
        // beside a first forward pass, until the first encode or decode needs it.
        FutureTask<HfTokenizer> tokenizerLoad = null;
        if (Files.isRegularFile(modelDirectory.resolve("tokenizer.json"))) {
            Path directory = modelDirectory;
            tokenizerLoad = new FutureTask<>(() -> HfTokenizer.loadBuildingInBackground(directory));
            Thread.ofPlatform().daemon().name("jvllm-tokenizer-load").start(tokenizerLoad);
        } else {
            log.info("{} has no tokenizer.json: prompts must be token ids", modelDirectory);
        }
        HfTokenizer loadedTokenizer = null;
        Checkpoint opened = null;
        Backend chosen = null;
        CausalLM loaded = null;
        PoolingModel pooled = null;
        long tCheckpoint = 0, tBackend = 0, tModel = 0, tTokenizer = 0;
        try {
            opened = Checkpoint.open(modelDirectory);
            Optional<Quantization> quantization = Quantization.of(config).filter(Quantization::served);
            if (quantization.isPresent()) opened = decodingQuantized(opened, quantization.get(), config, b.model);
            // Map every weight page now, beside the tokenizer, rather than page by page in the first
            // forward; on as many threads as the kernels will use (the tokenizer's build yields to them).
            opened.loadIntoMemory(Math.min(MAX_LOAD_THREADS, engineConfig.threads() > 0 ? engineConfig.threads()
                    : Runtime.getRuntime().availableProcessors()));
            tCheckpoint = System.nanoTime();
            chosen = Backends.create(engineConfig.device(),
                    new BackendOptions(engineConfig.threads(), computeType(b.dtype, config.dtype())));
            if (b.enableLora) {
                if (!chosen.runsLoraAdapters() || task != Task.GENERATE) {
                    throw new JvllmException(task != Task.GENERATE ? "LoRA adapters serve generation only, not " + task
                            .name().toLowerCase(Locale.ROOT) + " models"
                            : "the '" + chosen.name() + "' backend does not run LoRA adapters (the cpu and cuda backends do)");
                }
                chosen = new LoraBackend(chosen, b.maxLoraRank);
            }
            tBackend = System.nanoTime();
            if (opened instanceof PackedIntCheckpoint packed) logPackedWeights(packed, chosen, b.model);
            ModelContext context = new ModelContext(config, opened, chosen, maxModelLen, modelDirectory);
            if (task != Task.GENERATE) {
                pooled = architecture.loadPooling(context);
                if (task == Task.CLASSIFY && pooled.classifier().isEmpty()) {
                    throw new JvllmException(b.model + " (" + String.join(", ", config.architectures()) + ") has no classifier head: "
                            + "task CLASSIFY needs a *ForSequenceClassification checkpoint");
                }
            } else {
                loaded = architecture.load(context);
            }
            tModel = System.nanoTime();
            if (opened instanceof DecodingCheckpoint decodedWeights && !chosen.readsHostWeights()) {
                long freed = decodedWeights.releaseDecoded();
                log.info("{}: {} MiB of weights decoded at load freed from host memory, the backend holding its own copy",
                        b.model, String.format(Locale.ROOT, "%.1f", freed / 1048576.0));
            }
            loadedTokenizer = tokenizerLoad == null ? null : join(tokenizerLoad);
            if (b.chatTemplate != null) {
                if (loadedTokenizer == null) {
                    throw new JvllmException(b.model + " has no tokenizer.json, so a chat template cannot be used with it");
                }
                try {
                    loadedTokenizer = loadedTokenizer.withChatTemplate(b.chatTemplate);
                } catch (ChatTemplateException e) {
                    throw new JvllmException("the chat template given does not parse: " + e.getMessage(), e);
                }
            }
            tTokenizer = System.nanoTime();
            this.tokenizer = loadedTokenizer;
            if (task != Task.GENERATE) {
                int maxInput = engineConfig.maxModelLen() > 0 ? engineConfig.maxModelLen() : pooled.maxInputLength();
                this.embedder = new EmbeddingEngine(pooled, chosen,
                        PoolingConfig.load(modelDirectory, config, pooled.defaultPooling()), maxInput, engineConfig);
                this.engine = null;
            } else {
                this.engine = new LLMEngine(loaded, chosen, tokenizer == null ? null : new TokenizerCodec(tokenizer),
                        eosIds(), maxModelLen, engineConfig);
                this.embedder = null;
            }
        } catch (RuntimeException | Error e) {
            if (pooled != null) pooled.close();
            if (loaded != null) loaded.close();
            if (chosen != null) chosen.close();
            if (opened != null) opened.close();
            if (loadedTokenizer != null) {
                loadedTokenizer.close();
            } else if (tokenizerLoad != null) {
                closeWhenLoaded(tokenizerLoad);
            }
            throw e;
        }
        this.checkpoint = opened;
        this.backend = chosen;
        this.model = loaded;
        this.poolingModel = pooled;
        long end = System.nanoTime();
        log.info("loaded {} ({}) on {} in {} ms", b.model, config.architectures(), backend.name(), (end - start) / 1_000_000);
        log.debug("load phases (ms): configs {}, checkpoint mapped and paged in {}, backend {}, model {}, "
                        + "then waiting for the tokenizer {}, engine {}", ms(tConfig - start), ms(tCheckpoint - tConfig),
                ms(tBackend - tCheckpoint), ms(tModel - tBackend), ms(tTokenizer - tModel), ms(end - tTokenizer));
    }

    /** The tokenizer loaded on its own thread; its failure is rethrown as it was thrown. */
    private static HfTokenizer join(FutureTask<HfTokenizer> load) {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return load.get();
                } catch (InterruptedException e) {
                    interrupted = true; // a half-loaded tokenizer's native memory must still be freed
                }
            }
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw new JvllmException("cannot load the tokenizer: " + e.getCause(), e.getCause());
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /** After a failure elsewhere: closes the tokenizer once its load ends. */
    private static void closeWhenLoaded(FutureTask<HfTokenizer> load) {
        try {
            join(load).close();
        } catch (RuntimeException | Error ignored) {
            // the tokenizer failed as well; the first failure is the one reported
        }
    }

    private static long ms(long nanos) {
        return nanos / 1_000_000;
    }

    /** Says whether GPTQ's or AWQ's weights stay packed on the backend or are decoded at load. */
    private static void logPackedWeights(PackedIntCheckpoint packed, Backend backend, String model) {
        boolean tiles = packed.groupSize() < 0 || packed.groupSize() % Int4Weight.TILE_INPUTS == 0;
        if (packed.bits() == 4 && tiles && backend.readsInt4Weights()) {
            log.info("{}: 4-bit weights stay 4-bit on the {} backend (a mixture's experts, and weights not whole tiles of "
                    + "16 outputs × 64 inputs, are decoded at load)", model, backend.name());
        } else {
            log.warn("{}: weights of {} bits in groups of {} are decoded to {} at load, so they take the memory of an "
                    + "unquantized model; the {} backend reads {}", model, packed.bits(), packed.groupSize(), packed.target(),
                    backend.name(), backend.readsInt4Weights()
                            ? "only 4-bit weights in groups of a multiple of 64 inputs as they are" : "no quantized weights");
        }
    }

    /**
     * The checkpoint whose quantized weights read as unquantized ones, decoded at load to the
     * checkpoint's unquantized type: float32 for float32 models; float16 for GPTQ, AWQ and
     * bitsandbytes models of float16; else bfloat16.
     */
    private static Checkpoint decodingQuantized(Checkpoint opened, Quantization q, ModelConfig config, String model) {
        DType declared = config.dtype().orElse(DType.BF16);
        DType decodedTo = declared == DType.F32 || (declared == DType.F16 && q.scheme() != Quantization.Scheme.FLOAT8)
                ? declared : DType.BF16;
        if (q.scheme() == Quantization.Scheme.FLOAT8) {
            log.info("{}: float8 weights ({}) are decoded to {} at load; no float8 kernel runs yet", model, q.method(), decodedTo);
            return new Fp8Checkpoint(opened, decodedTo, q.blockSize());
        }
        if (q.scheme() == Quantization.Scheme.BITSANDBYTES) {
            log.warn("{}: {} weights of {} bits are decoded to {} at load, so they take the memory of an unquantized model; "
                    + "no kernel reads them quantized yet", model, q.method(), q.bits(), decodedTo);
        }
        return switch (q.scheme()) {
            case GPTQ -> new PackedIntCheckpoint(opened, decodedTo, PackedIntCheckpoint.Format.GPTQ, q.bits(), q.groupSize());
            case GPTQ_V2 -> new PackedIntCheckpoint(opened, decodedTo, PackedIntCheckpoint.Format.GPTQ_V2, q.bits(), q.groupSize());
            case AWQ -> new PackedIntCheckpoint(opened, decodedTo, PackedIntCheckpoint.Format.AWQ, q.bits(), q.groupSize());
            case BITSANDBYTES -> new BitsAndBytesCheckpoint(opened, decodedTo);
            case FLOAT8 -> throw new AssertionError("float8 is decoded above");
        };
    }

    /**
     * The type to compute in for {@link Builder#dtype}: "auto" takes the checkpoint's own type
     * (config.json's {@code dtype}/{@code torch_dtype}; float32 when absent).
     */
    static DType computeType(String dtype, Optional<DType> checkpointType) {
        return switch (dtype) {
            case "auto" -> checkpointType.filter(t -> t == DType.BF16 || t == DType.F16).orElse(DType.F32);
            case "float32", "float" -> DType.F32;
            case "bfloat16" -> DType.BF16;
            case "float16", "half" -> DType.F16;
            default -> throw new IllegalArgumentException("dtype must be auto, float32, bfloat16 or float16, not '"
                    + dtype + "'");
        };
    }

    private List<Integer> eosIds() {
        List<Integer> ids = new ArrayList<>(generationConfig.eosTokenIds());
        if (ids.isEmpty() && tokenizer != null) tokenizer.eosTokenId().ifPresent(ids::add);
        return ids;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The {@code architectures} names of config.json that jvllm can load. */
    public static List<String> supportedArchitectures() {
        return ModelRegistry.supportedArchitectures();
    }

    /** Generates from one text prompt. */
    public RequestOutput generate(String prompt, SamplingParams params) {
        return generate(List.of(prompt), params).getFirst();
    }

    /** Generates from text prompts, batched together; outputs in the prompts' order. */
    public List<RequestOutput> generate(List<String> prompts, SamplingParams params) {
        return generatePrompts(prompts.stream().map(Prompt::text).toList(), params);
    }

    /**
     * Generates from one text prompt with a LoRA adapter (null: none), as vLLM's
     * {@code generate(prompt, params, lora_request=...)}; needs {@link Builder#enableLora}.
     */
    public RequestOutput generate(String prompt, SamplingParams params, LoraRequest lora) {
        return generatePrompts(List.of(Prompt.text(prompt)), params, Collections.singletonList(lora)).getFirst();
    }

    /** Generates from text prompts, batched together, each with the same LoRA adapter (null: none). */
    public List<RequestOutput> generate(List<String> prompts, SamplingParams params, LoraRequest lora) {
        return generatePrompts(prompts.stream().map(Prompt::text).toList(), params, Collections.nCopies(prompts.size(), lora));
    }

    /** Generates from a prompt given as token ids. */
    public RequestOutput generate(int[] promptTokenIds, SamplingParams params) {
        return generatePrompts(List.of(Prompt.tokens(promptTokenIds)), params).getFirst();
    }

    /** Generates from text or token-id prompts, batched together; outputs in the prompts' order. */
    public List<RequestOutput> generatePrompts(List<Prompt> prompts, SamplingParams params) {
        return generatePrompts(prompts, params, Collections.nCopies(prompts.size(), null));
    }

    /**
     * Generates from text or token-id prompts, batched together, prompt i with LoRA adapter
     * {@code loras.get(i)} (null: none); outputs in the prompts' order. Requests with different
     * adapters, or none, run in the same steps.
     *
     * @throws RequestFailedException once every prompt has ended, where a prompt's images could not
     *                                be encoded or its structured output grew too complex to follow
     *                                (the others ran to their end, and the exception's {@code outputs()}
     *                                holds every prompt's output; the engine serves on)
     */
    public List<RequestOutput> generatePrompts(List<Prompt> prompts, SamplingParams params, List<LoraRequest> loras) {
        Objects.requireNonNull(params, "params");
        requireTask(Task.GENERATE);
        if (loras.size() != prompts.size()) {
            throw new InvalidRequestException("loraRequest", loras.size() + " LoRA requests for " + prompts.size() + " prompts");
        }
        List<String> ids = new ArrayList<>();
        try {
            for (int i = 0; i < prompts.size(); i++) {
                String id = Long.toString(nextRequestId++);
                engine.addRequest(id, prompts.get(i), params, loras.get(i));
                ids.add(id);
            }
        } catch (RuntimeException e) {
            ids.forEach(engine::abort);
            throw e;
        }
        return runToCompletion(ids);
    }

    /** Steps until the requests finish; throws the first request's failure, if one failed, once all have ended. */
    private List<RequestOutput> runToCompletion(List<String> ids) {
        Map<String, RequestOutput> results = new LinkedHashMap<>();
        RequestFailedException failed = null;
        try {
            while (engine.hasUnfinishedRequests()) {
                for (RequestOutput out : engine.stepFinished()) {
                    if (!out.finished()) continue;
                    results.put(out.requestId(), out);
                    RequestFailedException failure = engine.failure(out.requestId());
                    if (failed == null && failure != null) {
                        failed = new RequestFailedException(failure.requestId(), "prompt " + ids.indexOf(failure.requestId())
                                + " of " + ids.size() + " failed: " + failure.getMessage(), failure.getCause());
                    }
                }
            }
        } catch (RuntimeException e) {
            ids.forEach(engine::abort);
            throw e;
        }
        List<RequestOutput> outputs = ids.stream().map(results::get).toList();
        if (failed != null) throw new RequestFailedException(failed.requestId(), failed.getMessage(), failed.getCause(), outputs);
        return outputs;
    }

    /**
     * Beam search, as vLLM's {@code LLM.beam_search}: each prompt's {@code beamWidth} best sequences
     * by cumulative log probability (over length to the length penalty), grown a token a step. Each
     * step runs every live beam for one token with its {@code 2 × beamWidth} most likely next tokens,
     * the prefix cache sparing the tokens a beam shares with its parent (within the prompt's
     * {@linkplain Prompt#withCacheSalt cache salt}); sequences ending in the end-of-sequence token leave the beam as complete.
     */
    public List<BeamSearchOutput> beamSearch(List<Prompt> prompts, BeamSearchParams params) {
        requireTask(Task.GENERATE);
        record Beam(int[] tokens, int generated, double cumulativeLogprob) {
        }
        Set<Integer> eos = new HashSet<>(engine.eosTokenIds());
        SamplingParams step = SamplingParams.builder().maxTokens(1).logprobs(2 * params.beamWidth())
                .temperature(params.temperature()).detokenize(false).build();
        List<List<Beam>> live = new ArrayList<>(), done = new ArrayList<>();
        if (engine.encoderDecoder()) {
            throw new InvalidRequestException("prompt", "beam search is not supported for encoder-decoder models (" + modelDirectory + ")");
        }
        for (Prompt prompt : prompts) {
            if (!prompt.images().isEmpty()) throw new InvalidRequestException("images", "beam search takes no images");
            int[] ids = switch (prompt) {
                case Prompt.Text t -> {
                    if (tokenizer == null) throw new InvalidRequestException("prompt", modelDirectory + " has no tokenizer: give prompts as token ids");
                    yield tokenizer.encode(t.text(), true);
                }
                case Prompt.Tokens t -> t.tokenIds().clone();
                case Prompt.EncoderDecoder e -> throw new InvalidRequestException("prompt", "beam search takes no encoder-decoder prompts");
            };
            live.add(new ArrayList<>(List.of(new Beam(ids, 0, 0))));
            done.add(new ArrayList<>());
        }
        java.util.function.ToDoubleFunction<Beam> score = beam -> {
            int length = beam.tokens().length - (eos.contains(beam.tokens()[beam.tokens().length - 1]) && beam.generated() > 0 ? 1 : 0);
            return beam.cumulativeLogprob() / Math.pow(length, params.lengthPenalty());
        };
        for (int t = 0; t < params.maxTokens() && live.stream().anyMatch(b -> !b.isEmpty()); t++) {
            List<Prompt> batch = new ArrayList<>();
            for (int p = 0; p < live.size(); p++) {
                String salt = prompts.get(p).cacheSalt(); // a prompt's beams share its cached blocks, and only its salt's
                for (Beam beam : live.get(p)) batch.add(Prompt.tokens(beam.tokens()).withCacheSalt(salt));
            }
            List<RequestOutput> outputs = generatePrompts(batch, step);
            int next = 0;
            for (int p = 0; p < live.size(); p++) {
                List<Beam> candidates = new ArrayList<>();
                for (Beam beam : live.get(p)) {
                    Map<Integer, Logprob> top = outputs.get(next++).outputs().getFirst().logprobs().getFirst();
                    for (Map.Entry<Integer, Logprob> candidate : top.entrySet()) {
                        int[] tokens = Arrays.copyOf(beam.tokens(), beam.tokens().length + 1);
                        tokens[tokens.length - 1] = candidate.getKey();
                        Beam grown = new Beam(tokens, beam.generated() + 1, beam.cumulativeLogprob() + candidate.getValue().logprob());
                        if (!params.ignoreEos() && eos.contains(candidate.getKey())) done.get(p).add(grown);
                        else candidates.add(grown);
                    }
                }
                candidates.sort(java.util.Comparator.comparingDouble(score).reversed());
                live.set(p, new ArrayList<>(candidates.subList(0, Math.min(params.beamWidth(), candidates.size()))));
            }
        }
        List<BeamSearchOutput> results = new ArrayList<>();
        for (int p = 0; p < live.size(); p++) {
            List<Beam> all = new ArrayList<>(done.get(p));
            all.addAll(live.get(p));
            all.sort(java.util.Comparator.comparingDouble(score).reversed());
            List<BeamSearchOutput.Sequence> sequences = new ArrayList<>();
            for (Beam beam : all.subList(0, Math.min(params.beamWidth(), all.size()))) {
                int[] generated = Arrays.copyOfRange(beam.tokens(), beam.tokens().length - beam.generated(), beam.tokens().length);
                String text = tokenizer == null ? null : tokenizer.decode(generated, true);
                sequences.add(new BeamSearchOutput.Sequence(Arrays.stream(generated).boxed().toList(), text, beam.cumulativeLogprob(),
                        score.applyAsDouble(beam)));
            }
            results.add(new BeamSearchOutput(sequences));
        }
        return results;
    }

    /**
     * Generates the reply to a conversation: the model's chat template (from its tokenizer files)
     * renders the messages with the generation prompt appended, as vLLM's {@code LLM.chat} does.
     * The images of the messages ({@link ChatMessage#images()}) go with the prompt, in message
     * order, to a vision-language model; see {@link #renderChat(List)} for where their placeholders go.
     *
     * @throws InvalidRequestException when the model has no tokenizer or no chat template, or takes
     *                                 no images and a message holds one (field {@code images})
     */
    public RequestOutput chat(List<ChatMessage> messages, SamplingParams params) {
        return chat(messages, params, ChatOptions.defaults());
    }

    /** {@link #chat(List, SamplingParams)} with a LoRA adapter (null: none). */
    public RequestOutput chat(List<ChatMessage> messages, SamplingParams params, LoraRequest lora) {
        return chat(messages, params, ChatOptions.builder().lora(lora).build());
    }

    /**
     * {@link #chat(List, SamplingParams)} rendered and run as {@code options} say, as vLLM's {@code LLM.chat}
     * keyword arguments: template variables ({@code chat_template_kwargs}, e.g. Qwen3's
     * {@code enable_thinking}), the generation prompt or the final message continued, a LoRA adapter,
     * a prefix-cache salt.
     *
     * @throws InvalidRequestException as {@link #chat(List, SamplingParams)}, and (field
     *                                 {@code continueFinalMessage}) where the final message to continue
     *                                 is not an assistant's of text
     */
    public RequestOutput chat(List<ChatMessage> messages, SamplingParams params, ChatOptions options) {
        List<ImageInput> images = messages.stream().flatMap(m -> m.images().stream()).toList();
        String rendered = renderChat(messages.stream().map(ChatMessage::asTemplateValue).toList(), options);
        return generate(rendered, params, false, options.lora(), images, "messages", options.cacheSalt());
    }

    /**
     * The prompt text for messages as the chat template sees them ({@link #renderChat(List, Map)}),
     * rendered as {@code options} say: its template variables, with or without the generation prompt,
     * and with {@link ChatOptions#continueFinalMessage()} cut after the last message's own text (as
     * vLLM does), so that the model goes on with it.
     *
     * @throws InvalidRequestException (field {@code continueFinalMessage}) where the last message is not
     *                                 an assistant's of text, or the template does not render that text as given
     */
    public String renderChat(List<? extends Map<String, ?>> messages, ChatOptions options) {
        Map<String, ?> last = messages.isEmpty() ? Map.of() : messages.getLast();
        if (options.continueFinalMessage() && (!"assistant".equals(last.get("role")) || !(last.get("content") instanceof String))) {
            throw new InvalidRequestException("continueFinalMessage", "continueFinalMessage continues a last message of role "
                    + "'assistant' whose content is text");
        }
        String rendered = renderChat(messages, options.templateVariables(), options.addGenerationPrompt());
        if (!options.continueFinalMessage()) return rendered;
        String text = (String) last.get("content");
        int at = rendered.lastIndexOf(text);
        if (at < 0) {
            throw new InvalidRequestException("continueFinalMessage", "the chat template does not render the last message's text as given");
        }
        return rendered.substring(0, at + text.length());
    }

    /**
     * The prompt text {@link #chat} sends for these messages. How a message's parts reach the
     * template follows the template, as vLLM's content format "auto": a template that iterates
     * over a message's content (LLaVA's {@code message['content'] | selectattr('type', 'equalto', 'image')})
     * gets every content as a list of {@code {"type": "text", "text": ...}} and {@code {"type": "image"}}
     * maps; any other template gets a string, the text parts joined by newlines with the model's
     * image placeholder ({@code <image>} for LLaVA) once per image, each on its own line before the
     * text (a placeholder the text already holds counts as one of the message's images).
     */
    public String renderChat(List<ChatMessage> messages) {
        return renderChat(messages.stream().map(ChatMessage::asTemplateValue).toList(), Map.of());
    }

    /**
     * The prompt text for messages given as the chat template sees them (maps of {@code role},
     * {@code content} and whatever else the template reads, such as an assistant's
     * {@code tool_calls} or a tool message's {@code tool_call_id}), with extra template variables
     * such as {@code tools}: what an OpenAI-style server renders. A {@code content} may be a
     * string, null, or a list of parts ({@code {"type": "text", "text": ...}}, {@code {"type": "image"}});
     * it is given to the template in the template's format, as {@link #renderChat(List)} describes.
     *
     * @throws InvalidRequestException when the model has no tokenizer or no chat template, a part
     *                                 is an image and the model takes none, or a message writes its
     *                                 image placeholder more often than it has images
     */
    public String renderChat(List<? extends Map<String, ?>> messages, Map<String, ?> variables) {
        return renderChat(messages, variables, true);
    }

    /**
     * {@link #renderChat(List, Map)}, with or without the header that opens the assistant's turn
     * ({@code addGenerationPrompt}, vLLM's {@code add_generation_prompt}).
     */
    public String renderChat(List<? extends Map<String, ?>> messages, Map<String, ?> variables, boolean addGenerationPrompt) {
        if (tokenizer == null) {
            throw new InvalidRequestException("messages", modelDirectory + " has no tokenizer, so it has no chat template");
        }
        var template = tokenizer.chatTemplate().orElseThrow(() -> new InvalidRequestException("messages", modelDirectory
                + " has no chat template (chat_template.jinja, chat_template.json or tokenizer_config.json 'chat_template')"));
        if (ChatContent.countImages(messages) > 0 && !(model instanceof VisionLanguageModel)) {
            throw new InvalidRequestException("images", "this model (" + String.join(", ", config.architectures()) + ") takes no images");
        }
        return template.render(ChatContent.format(messages, template.contentFormat(), imagePlaceholders()), addGenerationPrompt, variables);
    }

    /**
     * A vision-language model's image placeholder as prompt text for image n (from 1), as vLLM finds
     * it: the model's numbered tag where it has them (Phi-3-Vision), else the tokenizer's text of the
     * image token where the tokenizer has it as a special token (LLaVA's added {@code <image>}), else
     * the model's own; null for a model that takes no images.
     */
    private ChatContent.Placeholders imagePlaceholders() {
        if (!(model instanceof VisionLanguageModel vision)) return null;
        if (vision.numberedImageTags() != null) return new ChatContent.Placeholders(vision::numberedImageTag, true);
        int id = vision.imageTokenId();
        String text = tokenizer != null && tokenizer.specialTokenIds().contains(id) ? tokenizer.tokenText(id) : vision.imagePlaceholderText();
        return new ChatContent.Placeholders(number -> text, false);
    }

    private RequestOutput generate(String prompt, SamplingParams params, boolean addSpecialTokens, LoraRequest lora,
                                   List<ImageInput> images, String field, String cacheSalt) {
        requireTask(Task.GENERATE);
        Prompt.Tokens tokens = engine.textPrompt(prompt, addSpecialTokens, images, field);
        String id = Long.toString(nextRequestId++);
        engine.addRequest(id, prompt, tokens.tokenIds(), params, lora, tokens.images(), cacheSalt);
        return runToCompletion(List.of(id)).getFirst();
    }

    /** Embeds one text with the model's default pooling. */
    public EmbeddingOutput embed(String text) {
        return embed(List.of(text), PoolingParams.defaults()).getFirst();
    }

    /** Embeds one text. */
    public EmbeddingOutput embed(String text, PoolingParams params) {
        return embed(List.of(text), params).getFirst();
    }

    /** Embeds texts, batched together; outputs in the texts' order. */
    public List<EmbeddingOutput> embed(List<String> texts, PoolingParams params) {
        return encode(texts.stream().map(Prompt::text).toList(), params);
    }

    /** Embeds an input given as token ids (special tokens included as given). */
    public EmbeddingOutput embed(int[] tokenIds, PoolingParams params) {
        return encode(List.of(Prompt.tokens(tokenIds)), params).getFirst();
    }

    /**
     * Scores one text against each of several, as vLLM's {@code LLM.score}: with an embedding model
     * the cosine similarity of their embeddings (the model's default pooling), with a cross-encoder
     * ({@link Task#CLASSIFY}, one label) the relevance of each pair read as one input; in
     * {@code texts2}'s order, in one batch.
     *
     * @throws InvalidRequestException when this LLM was built for neither {@link Task#EMBED} nor
     *                                 {@link Task#CLASSIFY}, or {@code texts2} is empty
     */
    public List<ScoringOutput> score(String text1, List<String> texts2) {
        return score(List.of(Objects.requireNonNull(text1, "text1")), texts2);
    }

    /**
     * Scores pairs of texts, as vLLM's {@code LLM.score}: {@code texts1}'s one text against each of
     * {@code texts2}, or {@code texts1.get(i)} against {@code texts2.get(i)} where the two lists are
     * as long; the cosine similarity of the embeddings, or a cross-encoder's relevance of each pair,
     * in {@code texts2}'s order.
     *
     * @throws InvalidRequestException when this LLM was built for neither {@link Task#EMBED} nor {@link Task#CLASSIFY}, {@code texts2}
     *                                 is empty, or {@code texts1} holds neither one text nor one for each of {@code texts2}
     */
    public List<ScoringOutput> score(List<String> texts1, List<String> texts2) {
        return score(texts1, texts2, PoolingParams.defaults());
    }

    /**
     * {@link #score(List, List)} with {@code params}: its {@code truncatePromptTokens} (-1: the maximum
     * model length) cuts an embedding model's texts as {@link #embed} does, and a cross-encoder's pairs
     * as Hugging Face cuts a pair (longest first: a long document is scored on its beginning); an
     * embedding model's texts are also pooled with its other fields.
     */
    public List<ScoringOutput> score(List<String> texts1, List<String> texts2, PoolingParams params) {
        Objects.requireNonNull(params, "params");
        if (task != Task.CLASSIFY && task != Task.EMBED) {
            throw new InvalidRequestException("task", "this LLM was built for task " + task + " and cannot score; build it with "
                    + "task(Task.EMBED) over an embedding model, or task(Task.CLASSIFY) over a cross-encoder");
        }
        if (texts2.isEmpty()) throw new InvalidRequestException("texts2", "there is nothing to score against");
        if (texts1.size() != 1 && texts1.size() != texts2.size()) {
            throw new InvalidRequestException("texts1", "texts1 holds " + texts1.size() + " texts: give one, or one for each of the "
                    + texts2.size() + " of texts2");
        }
        if (task == Task.CLASSIFY) return crossEncoderScores(texts1, texts2, params);
        List<String> all = new ArrayList<>(texts1);
        all.addAll(texts2);
        List<EmbeddingOutput> embedded = embed(all, params);
        List<ScoringOutput> scores = new ArrayList<>(texts2.size());
        for (int i = 0; i < texts2.size(); i++) {
            EmbeddingOutput first = embedded.get(texts1.size() == 1 ? 0 : i), second = embedded.get(texts1.size() + i);
            scores.add(new ScoringOutput(first.cosine(second), first.promptTokenIds().length + second.promptTokenIds().length));
        }
        return scores;
    }

    /**
     * A cross-encoder's scores: each pair as one input of the tokenizer's pair template, the
     * classifier's one logit through the checkpoint's activation (a sigmoid unless it names another).
     */
    private List<ScoringOutput> crossEncoderScores(List<String> texts1, List<String> texts2, PoolingParams params) {
        int cut = promptTokensCut(params);
        if (cut < 0 || cut > embedder.maxModelLen()) {
            throw new InvalidRequestException("truncatePromptTokens", "truncatePromptTokens " + cut + " is outside [1, the maximum model length "
                    + embedder.maxModelLen() + "] (-1: the maximum)");
        }
        List<int[]> ids = new ArrayList<>(texts2.size()), types = new ArrayList<>(texts2.size());
        HfTokenizer pairs = requireTokenizer("scores");
        for (int i = 0; i < texts2.size(); i++) {
            String first = Objects.requireNonNull(texts1.get(texts1.size() == 1 ? 0 : i), "text1"), second = Objects.requireNonNull(texts2.get(i), "text2");
            HfTokenizer.PairEncoding pair;
            try {
                pair = cut > 0 ? pairs.encodePair(first, second, cut) : pairs.encodePair(first, second);
            } catch (IllegalArgumentException e) {
                throw new InvalidRequestException("truncatePromptTokens", e.getMessage());
            }
            ids.add(pair.ids());
            types.add(pair.typeIds());
        }
        return embedder.score(requestIds("score-", texts2.size()), ids, types);
    }

    /** The length {@code params} cuts prompts to: -1 read as the maximum model length; 0 where it cuts nothing. */
    private int promptTokensCut(PoolingParams params) {
        int cut = params.truncatePromptTokens().orElse(0);
        return cut == -1 ? embedder.maxModelLen() : cut;
    }

    /** Classifies one text with a sequence-classification model. */
    public ClassificationOutput classify(String text) {
        return classify(List.of(text)).getFirst();
    }

    /**
     * Classifies texts, batched together, as vLLM's {@code LLM.classify}: each text tokenized with the
     * model's special tokens, its pooled state through the checkpoint's classifier head, the logits
     * as probabilities (a softmax over several labels, a sigmoid for one).
     *
     * @throws InvalidRequestException when this LLM was not built for {@link Task#CLASSIFY}, or a text
     *                                 is longer than the maximum model length
     */
    public List<ClassificationOutput> classify(List<String> texts) {
        return classifyPrompts(texts.stream().map(text -> Prompt.text(Objects.requireNonNull(text, "text"))).toList());
    }

    /**
     * Classifies text or token-id inputs (as vLLM's classify takes either): texts tokenized with the
     * model's special tokens, token ids as given.
     *
     * @throws InvalidRequestException as {@link #classify(List)}
     */
    public List<ClassificationOutput> classifyPrompts(List<Prompt> inputs) {
        requireTask(Task.CLASSIFY);
        return classify(poolingInputIds(inputs, PoolingParams.defaults(), "classifications"), null);
    }

    /**
     * Classifies inputs given as token ids, each with its tokens' types (segment ids of a pair:
     * 0 for the first text's tokens, 1 for the second's; null: all 0).
     */
    public List<ClassificationOutput> classify(List<int[]> tokenIds, List<int[]> tokenTypes) {
        requireTask(Task.CLASSIFY);
        return embedder.classify(requestIds("classify-", tokenIds.size()), tokenIds, tokenTypes);
    }

    /**
     * A text's tokens with the model's special tokens; with {@code truncatePromptTokens} k, cut to its last
     * tokens as vLLM's tokenizer cuts it (truncation on the left): the special tokens around the text stay
     * ([CLS] and [SEP] for BERT, whose [CLS] a CLS pooling reads), the text's first tokens go.
     */
    private int[] keepingSpecialTokens(HfTokenizer tokenizer, String text, PoolingParams params) {
        int[] whole = tokenizer.encode(text, true);
        int k = promptTokensCut(params);
        if (k <= 0 || whole.length <= k) return whole;
        int[] bare = tokenizer.encode(text, false);
        int specials = whole.length - bare.length;
        if (specials < 0 || k <= specials) return whole;  // the engine cuts it as given, or refuses it
        for (int before = 0; before <= specials; before++) {  // where the text's tokens sit among the special ones
            if (java.util.Arrays.equals(whole, before, before + bare.length, bare, 0, bare.length)) {
                int keep = k - specials;
                int[] cut = new int[k];
                System.arraycopy(whole, 0, cut, 0, before);
                System.arraycopy(bare, bare.length - keep, cut, before, keep);
                System.arraycopy(whole, before + bare.length, cut, before + keep, specials - before);
                return cut;
            }
        }
        return whole;
    }

    private HfTokenizer requireTokenizer(String what) {
        if (tokenizer == null) throw new InvalidRequestException("prompt", modelDirectory + " has no tokenizer, which " + what + " need");
        return tokenizer;
    }

    /**
     * Embeds text or token-id inputs, batched together, as vLLM's {@code LLM.encode}/{@code embed}:
     * texts are tokenized with the model's special tokens ([CLS] … [SEP] for BERT).
     *
     * @throws InvalidRequestException when this LLM was not built for {@link Task#EMBED}, an input is
     *                                 longer than the maximum model length (without truncatePromptTokens),
     *                                 or {@code dimensions} is set for a model without Matryoshka support
     */
    public List<EmbeddingOutput> encode(List<Prompt> inputs, PoolingParams params) {
        Objects.requireNonNull(params, "params");
        requireTask(Task.EMBED);
        return embedder.embed(requestIds("embd-", inputs.size()), poolingInputIds(inputs, params, "embeddings"), params);
    }

    /**
     * Each input's token embeddings, as vLLM's {@code LLM.encode} with {@code pooling_task="token_embed"}:
     * every token's final hidden state (one row a token, special tokens included), each row truncated
     * ({@code dimensions}) and normalized as for {@link #embed}. For multi-vector retrieval:
     * {@link TokenEmbeddingsOutput#maxSim} scores a query against a document as ColBERT does.
     *
     * @throws InvalidRequestException when this LLM was not built for {@link Task#EMBED}, or an input is
     *                                 longer than the maximum model length (without truncatePromptTokens)
     */
    public List<TokenEmbeddingsOutput> embedTokens(List<Prompt> inputs, PoolingParams params) {
        Objects.requireNonNull(params, "params");
        requireTask(Task.EMBED);
        return embedder.embedTokens(requestIds("tokembd-", inputs.size()), poolingInputIds(inputs, params, "token embeddings"), params);
    }

    private List<String> requestIds(String prefix, int count) {
        List<String> ids = new ArrayList<>(count);
        for (int i = 0; i < count; i++) ids.add(prefix + nextRequestId++);
        return ids;
    }

    /** A pooling model's inputs as token ids: texts with the model's special tokens (cut as {@code params} asks), token ids as given. */
    private List<int[]> poolingInputIds(List<Prompt> inputs, PoolingParams params, String what) {
        List<int[]> ids = new ArrayList<>(inputs.size());
        for (Prompt input : inputs) {
            if (!input.images().isEmpty()) throw new InvalidRequestException("images", what + " take no images");
            ids.add(switch (input) {
                case Prompt.Text t -> {
                    if (tokenizer == null) {
                        throw new InvalidRequestException("prompt", modelDirectory + " has no tokenizer: give inputs as token ids");
                    }
                    yield keepingSpecialTokens(tokenizer, Objects.requireNonNull(t.text(), "text"), params);
                }
                case Prompt.Tokens t -> t.tokenIds();
                case Prompt.EncoderDecoder e -> throw new InvalidRequestException("prompt", what + " take no encoder-decoder prompts");
            });
        }
        return ids;
    }

    /**
     * Serves this LLM's engine from an {@link AsyncLLMEngine} (concurrent callers share its continuous
     * batch; outputs stream) until that is closed, which leaves this LLM open. Meanwhile this LLM's own
     * generating calls are refused with an {@link IllegalStateException}: one engine, one driver. It
     * waits for a call that holds this LLM's lock (as jvllm's LangChain4j and Spring AI models' calls do)
     * to end first; an LLM is not thread-safe otherwise. Closing this LLM closes that engine first.
     *
     * @throws IllegalStateException where another AsyncLLMEngine serves it already
     * @throws InvalidRequestException where this LLM was not built for generation
     */
    public synchronized AsyncLLMEngine serveAsync() {
        requireTask(Task.GENERATE); // refuses a second one while one serves it
        AsyncLLMEngine serving = AsyncLLMEngine.borrowing(engine, () -> servedBy = null);
        servedBy = serving;
        return serving;
    }

    /**
     * config.json with the builder's {@code hfOverrides} in place of its fields, as vLLM applies them: a
     * nested config object ({@code text_config}, {@code vision_config}, any {@code *_config}) is merged
     * field by field, any other field replaced whole.
     */
    private static ModelConfig overridden(ModelConfig config, com.fasterxml.jackson.databind.node.ObjectNode overrides) {
        if (overrides.isEmpty()) return config;
        var raw = ((com.fasterxml.jackson.databind.node.ObjectNode) config.raw()).deepCopy();
        overrides.properties().forEach(field -> merge(raw, field.getKey(), field.getValue()));
        java.util.List<String> fields = new ArrayList<>();
        overrides.fieldNames().forEachRemaining(fields::add);
        log.info("{}: config.json fields {} replaced (hfOverrides)", config.source(), fields);
        return ModelConfig.of(raw, config.source() + " (with hfOverrides " + fields + ")");
    }

    private static void merge(com.fasterxml.jackson.databind.node.ObjectNode into, String field, com.fasterxml.jackson.databind.JsonNode value) {
        var existing = into.get(field);
        if (field.endsWith("_config") && existing instanceof com.fasterxml.jackson.databind.node.ObjectNode nested && value.isObject()) {
            value.properties().forEach(inner -> merge(nested, inner.getKey(), inner.getValue()));
        } else {
            into.set(field, value.deepCopy());
        }
    }

    /** What this LLM was built for: {@link Task#GENERATE}, {@link Task#EMBED} or {@link Task#CLASSIFY}. */
    public Task task() {
        return task;
    }

    private void requireTask(Task wanted) {
        if (wanted == Task.GENERATE && servedBy != null) {
            throw new IllegalStateException("this LLM's engine is served by an AsyncLLMEngine (serveAsync): submit to that, or close it first");
        }
        if (task != wanted) {
            throw new InvalidRequestException("task", "this LLM was built for task " + task + " and cannot " + switch (wanted) {
                case EMBED -> "embed; build it with task(Task.EMBED)";
                case CLASSIFY -> "classify; build it with task(Task.CLASSIFY) over a *ForSequenceClassification checkpoint";
                default -> "generate; build it with task(Task.GENERATE)";
            });
        }
    }

    /** The tokenizer, or null when the model directory has none. */
    public HfTokenizer tokenizer() {
        return tokenizer;
    }

    /** The model's generation_config.json defaults (end-of-sequence ids and the sampling defaults its authors chose). */
    public GenerationConfig generationConfig() {
        return generationConfig;
    }

    /** The engine below this LLM, for step-by-step use; null when built for {@link Task#EMBED} or {@link Task#CLASSIFY}. */
    public LLMEngine engine() {
        return engine;
    }

    public EngineMetrics metrics() {
        if (task != Task.GENERATE) requireTask(Task.GENERATE);
        return engine.metrics();
    }

    public ModelConfig modelConfig() {
        return config;
    }

    public Path modelDirectory() {
        return modelDirectory;
    }

    @Override
    public void close() {
        AsyncLLMEngine servingNow = servedBy;
        if (servingNow != null) servingNow.close(); // its engine thread stops before the engine closes under it
        if (engine != null) engine.close();
        if (model != null) model.close();
        if (embedder != null) embedder.close();
        if (poolingModel != null) poolingModel.close();
        backend.close();
        checkpoint.close();
        if (tokenizer != null) tokenizer.close();
    }

    /** Options for {@link LLM}, vLLM's keyword arguments; unset options take {@link EngineConfig#defaults()}. */
    public static final class Builder {
        private static final EngineConfig DEFAULTS = EngineConfig.defaults();
        private String model;
        private String revision = ModelResolver.DEFAULT_REVISION;
        private Path downloadDir;
        private int maxModelLen = DEFAULTS.maxModelLen();
        private int blockSize = DEFAULTS.blockSize();
        private long kvCacheMemoryBytes = DEFAULTS.kvCacheMemoryBytes();
        private int maxNumSeqs = DEFAULTS.maxNumSeqs();
        private int maxNumBatchedTokens = DEFAULTS.maxNumBatchedTokens();
        private boolean enablePrefixCaching = DEFAULTS.enablePrefixCaching();
        private Long seed = DEFAULTS.seed();
        private String device = DEFAULTS.device();
        private int threads = DEFAULTS.threads();
        private double gpuMemoryUtilization = DEFAULTS.gpuMemoryUtilization();
        private boolean enforceEager = DEFAULTS.enforceEager();
        private boolean asyncScheduling = DEFAULTS.asyncScheduling();
        private SpeculativeConfig speculativeConfig;
        private Task task = Task.AUTO;
        private String dtype = "auto";
        private boolean enableLora;
        private int maxLoraRank = 16;
        private int limitImagesPerPrompt = EngineConfig.DEFAULT_IMAGES_PER_PROMPT;
        private String chatTemplate;
        private com.fasterxml.jackson.databind.node.ObjectNode hfOverrides = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();

        private Builder() {
        }

        /**
         * Fields that replace config.json's, as vLLM's {@code hf_overrides} (e.g. {@code architectures}
         * and {@code classifier_from_token} to read a Qwen3-Reranker as the classifier it is used as): a
         * nested config object ({@code text_config}, ...) is merged field by field, any other field
         * replaced whole. Values are JSON's: strings, numbers, booleans, null, lists and maps of them.
         *
         * @throws IllegalArgumentException naming a key whose value is not one of those
         */
        public Builder hfOverrides(Map<String, ?> overrides) {
            var json = new com.fasterxml.jackson.databind.ObjectMapper();
            var fields = json.createObjectNode();
            Objects.requireNonNull(overrides, "overrides").forEach((field, value) -> {
                if (!jsonValue(value)) {
                    throw new IllegalArgumentException("hfOverrides '" + field + "' is a " + value.getClass().getName()
                            + ", not a JSON value (a string, number, boolean, null, list or map)");
                }
                fields.set(field, json.valueToTree(value));
            });
            this.hfOverrides = fields;
            return this;
        }

        private static boolean jsonValue(Object value) {
            return switch (value) {
                case null -> true;
                case String s -> true;
                case Number n -> true;
                case Boolean b -> true;
                case java.util.Collection<?> c -> c.stream().allMatch(Builder::jsonValue);
                case Map<?, ?> m -> m.keySet().stream().allMatch(k -> k instanceof String) && m.values().stream().allMatch(Builder::jsonValue);
                default -> false;
            };
        }

        /**
         * A Jinja chat template used instead of the checkpoint's (vLLM's {@code chat_template}), for
         * models that have none or whose template does not fit; it sees the tokenizer's special tokens
         * ({@code bos_token}, {@code eos_token}, ...) as the checkpoint's does. A template that does not
         * parse fails {@link #build()} with a {@link JvllmException} saying where.
         */
        public Builder chatTemplate(String template) {
            this.chatTemplate = Objects.requireNonNull(template, "template");
            return this;
        }

        /**
         * Lets requests run with LoRA adapters ({@link LLM#generate(String, SamplingParams, LoraRequest)}),
         * as vLLM's {@code enable_lora}. Adapters run on the CPU and CUDA backends; the model's fused
         * projections then run unfused.
         */
        public Builder enableLora(boolean enableLora) {
            this.enableLora = enableLora;
            return this;
        }

        /** The highest LoRA rank accepted (default 16, as vLLM's {@code max_lora_rank}). */
        /**
         * The most images a prompt may hold, as vLLM's {@code limit_mm_per_prompt={"image": n}}
         * (default {@value EngineConfig#DEFAULT_IMAGES_PER_PROMPT}; 0 takes none): a request with more
         * is refused naming {@code images}.
         */
        public Builder limitImagesPerPrompt(int limit) {
            if (limit < 0) throw new IllegalArgumentException("limitImagesPerPrompt must be at least 0, got " + limit);
            this.limitImagesPerPrompt = limit;
            return this;
        }

        public Builder maxLoraRank(int maxLoraRank) {
            if (maxLoraRank < 1) throw new IllegalArgumentException("maxLoraRank must be positive, not " + maxLoraRank);
            this.maxLoraRank = maxLoraRank;
            return this;
        }

        /** A local directory or a Hugging Face id. */
        public Builder model(String model) {
            this.model = model;
            return this;
        }

        /** A branch, tag or commit of a Hugging Face model, looked up in the cache or downloaded (default "main"). */
        public Builder revision(String revision) {
            this.revision = revision;
            return this;
        }

        /**
         * The Hugging Face cache to find a model id in and download it into, as vLLM's
         * {@code download_dir} (default: {@code HF_HUB_CACHE}, {@code HF_HOME/hub} or
         * {@code ~/.cache/huggingface/hub}).
         */
        public Builder downloadDir(Path downloadDir) {
            this.downloadDir = downloadDir;
            return this;
        }

        /** Longest sequence, prompt plus output (default: the model's max_position_embeddings). */
        public Builder maxModelLen(int maxModelLen) {
            this.maxModelLen = maxModelLen;
            return this;
        }

        /** Tokens per KV-cache block (default 16). */
        public Builder blockSize(int blockSize) {
            this.blockSize = blockSize;
            return this;
        }

        /**
         * Memory for the KV cache (default 0, automatic: 1 GiB on the CPU backend; on a GPU what
         * {@link #gpuMemoryUtilization} leaves after the weights and a profiling forward pass).
         */
        public Builder kvCacheMemoryBytes(long bytes) {
            this.kvCacheMemoryBytes = bytes;
            return this;
        }

        /** Most sequences in one step (default 256). */
        public Builder maxNumSeqs(int maxNumSeqs) {
            this.maxNumSeqs = maxNumSeqs;
            return this;
        }

        /** Most tokens in one step; longer prompts are prefilled in chunks (default 2048). */
        public Builder maxNumBatchedTokens(int tokens) {
            this.maxNumBatchedTokens = tokens;
            return this;
        }

        /** Reuse the KV cache of identical prompt prefixes (default on). */
        public Builder enablePrefixCaching(boolean enable) {
            this.enablePrefixCaching = enable;
            return this;
        }

        /** Seed of the engine's random source, for requests without a seed of their own. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * "auto" (default: the GPU where one is found, else the CPU), "cpu", "cuda" (the first GPU) or
         * "cuda:N" (the GPU of index N, as the CUDA driver numbers them after CUDA_VISIBLE_DEVICES).
         */
        public Builder device(String device) {
            this.device = device;
            return this;
        }

        /**
         * The share of the GPU's memory the engine may use for weights, activations and the KV
         * cache, as vLLM's {@code gpu_memory_utilization} (default 0.9); ignored on the CPU.
         */
        public Builder gpuMemoryUtilization(double share) {
            this.gpuMemoryUtilization = share;
            return this;
        }

        /**
         * Launch every kernel of every step one by one, as vLLM's {@code enforce_eager} (default
         * off): otherwise, on a GPU, decode steps are padded to a few batch sizes and each size's
         * forward pass is recorded once as a CUDA graph and replayed, which saves the host most of
         * the cost of launching hundreds of kernels per step.
         */
        public Builder enforceEager(boolean enforceEager) {
            this.enforceEager = enforceEager;
            return this;
        }

        /**
         * Schedule and launch each decode step before the step ahead of it has been read back, as
         * vLLM's {@code async_scheduling} (default on): the new tokens of greedy requests go from
         * one step's argmax to the next step's input on the device, so that the device need not
         * wait for the host's scheduling and output handling between steps. Outputs are the same
         * as without it. A request that stops on a token (end of sequence, a stop string) has had
         * one more step computed for it, which is discarded. On an H100 it made batch-1 decode of
         * a Llama-3-8B shape 3% faster and batch 64 2.6% faster. It applies only on a backend whose
         * passes are queued (a GPU): on the CPU it would only hold each token back by a step.
         */
        public Builder asyncScheduling(boolean asyncScheduling) {
            this.asyncScheduling = asyncScheduling;
            return this;
        }

        /**
         * Speculative decoding, as vLLM's {@code speculative_config} (default none): for example
         * {@code SpeculativeConfig.ngram(4)} verifies up to four tokens guessed from the request's
         * own prompt and output at each decode step. See {@link SpeculativeConfig} for what it keeps
         * of the outputs and where it pays; {@link dev.jvllm.engine.EngineMetrics} counts its guesses.
         */
        public Builder speculativeConfig(SpeculativeConfig speculativeConfig) {
            this.speculativeConfig = speculativeConfig;
            return this;
        }

        /** CPU threads for kernels (default 0: all processors). */
        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        /**
         * The type activations and the KV cache are computed in, as vLLM's {@code dtype}: "auto"
         * (default: the checkpoint's type from config.json), "float32", "bfloat16" or "float16".
         * The CUDA backend honours it (16-bit types use tensor cores and half the memory); the CPU
         * backend always computes in float32, whatever the weights' type.
         */
        public Builder dtype(String dtype) {
            computeType(Objects.requireNonNull(dtype, "dtype"), Optional.empty());
            this.dtype = dtype;
            return this;
        }

        /** What to load the model for (default {@link Task#AUTO}: embedding for encoders, else generation). */
        public Builder task(Task task) {
            this.task = Objects.requireNonNull(task, "task");
            return this;
        }

        /** Loads the model. */
        public LLM build() {
            return new LLM(this);
        }

        /**
         * Loads the model and serves it from an {@link AsyncLLMEngine} on its own thread, for
         * concurrent callers and streaming; closing the async engine closes the model.
         *
         * @throws InvalidRequestException when the model is loaded for {@link Task#EMBED} (the async
         *                                 engine generates; embed with {@link #build()})
         */
        public AsyncLLMEngine buildAsync() {
            LLM llm = build();
            if (llm.task != Task.GENERATE) {
                llm.close();
                throw new InvalidRequestException("task", "buildAsync serves generation, but this model was loaded for task "
                        + llm.task + "; use build() and embed()");
            }
            return new AsyncLLMEngine(llm.engine, llm);
        }

        EngineConfig engineConfig() {
            return new EngineConfig(maxModelLen, blockSize, kvCacheMemoryBytes, maxNumSeqs, maxNumBatchedTokens,
                    enablePrefixCaching, seed, device, threads, gpuMemoryUtilization, enforceEager,
                    asyncScheduling, limitImagesPerPrompt, speculativeConfig);
        }
    }

    private record TokenizerCodec(HfTokenizer tokenizer) implements LLMEngine.TextCodec {
        @Override
        public int[] encode(String prompt) {
            return tokenizer.encode(prompt, true);
        }

        @Override
        public int[] encodeWithoutSpecialTokens(String text) {
            return tokenizer.encode(text, false);
        }

        @Override
        public IntFunction<String> newDetokenizer(int[] promptTokenIds, SamplingParams params) {
            IncrementalDetokenizer d = new IncrementalDetokenizer(tokenizer, promptTokenIds, params.skipSpecialTokens());
            return d::accept;
        }

        @Override
        public String tokenText(int tokenId) {
            return tokenizer.tokenText(tokenId);
        }

        @Override
        public byte[] tokenBytes(int tokenId) {
            return tokenizer.tokenBytes(tokenId);
        }
    }
}
