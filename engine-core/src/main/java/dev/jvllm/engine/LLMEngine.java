package dev.jvllm.engine;

import dev.jvllm.EngineConfig;
import dev.jvllm.FinishReason;
import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.JvllmException;
import dev.jvllm.Logprob;
import dev.jvllm.LoraRequest;
import dev.jvllm.Prompt;
import dev.jvllm.RequestFailedException;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.SpeculativeConfig;
import dev.jvllm.StructuredOutputs;
import dev.jvllm.lora.LoraBackend;
import dev.jvllm.sampling.LogitsProcessorFailedException;
import dev.jvllm.sampling.NothingToDrawException;
import dev.jvllm.sampling.RandomSource;
import dev.jvllm.sampling.SampledToken;
import dev.jvllm.sampling.Sampler;
import dev.jvllm.sampling.SequenceSamplingState;
import dev.jvllm.sampling.TokenLogprobs;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.DeviceMemory;
import dev.jvllm.spi.EncoderDecoderModel;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.Tensor;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.structured.Grammar;
import dev.jvllm.structured.Pushdown;
import dev.jvllm.structured.Regex;
import dev.jvllm.structured.TokenVocabulary;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntFunction;
import java.util.stream.IntStream;

/**
 * vLLM's engine loop, one {@link #step()} at a time: the scheduler picks the tokens of this step,
 * one forward pass runs them all as a flattened batch over the paged KV cache, the sampler picks
 * next tokens, and finished sequences release their blocks. Not thread-safe; {@link AsyncLLMEngine}
 * drives one from its own thread.
 */
public final class LLMEngine implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(LLMEngine.class);

    /** Turns the model's text side on: encoding prompts and decoding outputs. Null when token ids only. */
    public interface TextCodec {
        int[] encode(String prompt);

        /** The text's tokens without those the tokenizer adds around a whole input (an encoder-decoder model's decoder prompt). */
        default int[] encodeWithoutSpecialTokens(String text) {
            throw new InvalidRequestException("prompt", "this engine tokenizes no decoder prompt text: give it as token ids");
        }

        /** A fresh incremental decoder for one output sequence following {@code promptTokenIds}. */
        IntFunction<String> newDetokenizer(int[] promptTokenIds, SamplingParams params);

        String tokenText(int tokenId);

        /** The bytes a token stands for in decoded text, or null for a special token (for structured outputs). */
        default byte[] tokenBytes(int tokenId) {
            return null;
        }
    }

    private final CausalLM model;
    private final Backend backend;
    private final TextCodec codec;
    private final List<Integer> eosTokenIdList;
    private final int[] eosTokenIds;
    private final int maxModelLen;
    private final int limitImagesPerPrompt;
    private final KvCache kvCache;
    private final KvCacheManager kv;
    private final Scheduler scheduler;
    private final Sampler sampler = new Sampler();
    private final CapturedDecode capturedDecode;
    private final RandomSource random;
    private final Map<String, RequestGroup> groups = new LinkedHashMap<>();
    private long promptTokensComputed;
    private long generatedTokens;
    private long draftTokens;
    private long acceptedDraftTokens;
    private long steps;
    private long stepNanos;
    /** What the step in progress builds of requests that have not finished: their whole outputs, what is new, or nothing. */
    private OutputKind outputKind = OutputKind.CUMULATIVE;

    private enum OutputKind { CUMULATIVE, DELTA, FINAL_ONLY }
    private long forwardNanos;
    private long resultNanos;
    private long imageNanos;
    private boolean closed;
    /** Async scheduling on, on a backend that queues work and takes sampled tokens on the device. */
    private final boolean scheduleAhead;
    /** The step queued ahead of the last one read (async scheduling), or null. */
    private Launched inFlight;
    /**
     * Requests that failed in this step ({@link #withImagesEncoded}, {@link #failTooComplex}): their
     * final outputs, and why, until the next step.
     */
    private final List<RequestOutput> failedOutputs = new ArrayList<>();
    private final Map<String, RequestFailedException> failures = new HashMap<>();
    /** Structured outputs: the vocabulary's texts (made on first use) and each pattern's grammar. */
    private TokenVocabulary vocabulary;
    private final Map<StructuredOutputs, Grammar> grammars = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<StructuredOutputs, Grammar> eldest) {
            return size() > MAX_GRAMMARS;
        }
    };
    /** Patterns whose grammars are kept (each holds its states' token masks), least recently used out first. */
    private static final int MAX_GRAMMARS = 64;
    private long stepsLaunchedAhead;

    public LLMEngine(CausalLM model, Backend backend, TextCodec codec, List<Integer> eosTokenIds,
                     int maxModelLen, EngineConfig config) {
        this.model = model;
        this.backend = backend;
        this.capturedDecode = new CapturedDecode(backend, model, config);
        this.scheduleAhead = schedulesAhead(config, backend);
        this.limitImagesPerPrompt = config.limitImagesPerPrompt();
        this.codec = codec;
        this.eosTokenIdList = List.copyOf(eosTokenIds);
        this.eosTokenIds = this.eosTokenIdList.stream().mapToInt(Integer::intValue).toArray();
        this.maxModelLen = maxModelLen;
        int blockSize = config.blockSize();
        long bytesPerToken = model.kvCacheSpec(1, blockSize).bytesPerToken(backend.activationType().byteSize());
        long capacityBlocks = (long) config.maxNumSeqs() * ((maxModelLen + blockSize - 1) / blockSize);
        long kvBytes = kvCacheBudget(model, backend, config, maxModelLen, bytesPerToken);
        long budgetBlocks = kvBytes / (bytesPerToken * blockSize);
        int numBlocks = (int) Math.min(Integer.MAX_VALUE, Math.min(capacityBlocks, budgetBlocks));
        if ((long) numBlocks * blockSize < maxModelLen) {
            throw new JvllmException("max model length " + maxModelLen + " needs " + maxModelLen * bytesPerToken
                    + " bytes of KV cache but only " + kvBytes + " are available for it"
                    + (config.kvCacheMemoryBytes() > 0 ? " (kvCacheMemoryBytes)" : backend.deviceMemory().isPresent()
                    ? " (gpuMemoryUtilization " + config.gpuMemoryUtilization() + " of the device, after the weights"
                    + " and a forward pass of " + config.maxNumBatchedTokens() + " tokens)" : "")
                    + "; the largest length that fits is " + (long) numBlocks * blockSize
                    + " (lower maxModelLen, maxNumBatchedTokens or maxNumSeqs, or give the KV cache more memory)");
        }
        this.kvCache = backend.allocateKvCache(model.kvCacheSpec(numBlocks, blockSize));
        this.kv = new KvCacheManager(numBlocks, blockSize, config.enablePrefixCaching());
        int imageRowsAStep = model instanceof VisionLanguageModel vision && config.limitImagesPerPrompt() > 0
                ? vision.imageFeatureRowsAStep() : Integer.MAX_VALUE;
        this.scheduler = model instanceof EncoderDecoderModel encoderDecoder
                ? new Scheduler(kv, Math.max(config.maxNumBatchedTokens(), 1), config.maxNumSeqs(), encoderDecoder.encoderTokensKept(),
                encoderTokensAStep(encoderDecoder, config))
                : new Scheduler(kv, Math.max(config.maxNumBatchedTokens(), 1), config.maxNumSeqs(), Integer.MAX_VALUE,
                Integer.MAX_VALUE, imageRowsAStep);
        this.random = config.seed() == null ? RandomSource.unseeded() : RandomSource.seeded(config.seed());
        SpeculativeConfig speculative = config.speculativeConfig();
        if (speculative != null) {
            NgramProposer proposer = new NgramProposer(speculative);
            int most = speculative.numSpeculativeTokens();
            draftWith((r, limit) -> proposer.propose(r::token, r.numTokens(), Math.min(limit, draftRoom(r, most))), most);
        }
        log.info("KV cache: {} blocks of {} tokens ({} MiB), max model length {}", numBlocks, blockSize,
                numBlocks * blockSize * bytesPerToken >> 20, maxModelLen);
    }

    /**
     * Where guesses come from, at most {@code most} a step: the prompt lookup of the engine's speculative
     * config, or (in an engine made with one) a benchmark's guesses known to be right or wrong.
     */
    void draftWith(Scheduler.Drafter drafter, int most) {
        scheduler.draftWith(drafter, r -> draftRoom(r, most), capturedDecode.largestGuessingStep());
    }

    /**
     * The guesses request {@code r} may verify in its next step, at most {@code most}: all of them
     * and the token after them must fit under its max_tokens and the model's length.
     */
    private int draftRoom(EngineRequest r, int most) {
        long maxTokens = r.sampling.params().maxTokens().orElse(Integer.MAX_VALUE);
        long room = Math.min(maxTokens - r.numOutputTokens(), (long) maxModelLen - r.numTokens()) - 1;
        return (int) Math.max(0, Math.min(most, room));
    }

    /**
     * How many of a prompt's last tokens a request with {@code params} keeps: its
     * {@code truncatePromptTokens} (-1: as many as leave room for one output token, as vLLM), else all.
     *
     * @throws InvalidRequestException where the truncation leaves no room for an output token
     */
    public int promptTokensKept(SamplingParams params) {
        if (params.truncatePromptTokens().isEmpty()) return Integer.MAX_VALUE;
        if (model instanceof EncoderDecoderModel encoderDecoder) {
            // The prompt is the encoder's, which outputs do not extend: -1 keeps what the encoder takes.
            int keep = params.truncatePromptTokens().getAsInt();
            return keep == -1 ? encoderDecoder.maxEncoderTokens() : keep;
        }
        int keep = params.truncatePromptTokens().getAsInt() == -1 ? maxModelLen - 1 : params.truncatePromptTokens().getAsInt();
        if (keep >= maxModelLen) {
            throw new InvalidRequestException("truncatePromptTokens", "truncatePromptTokens " + keep + " leaves no room for an output "
                    + "token in the maximum model length " + maxModelLen);
        }
        return keep;
    }

    /** The ids that end a sequence (the generation config's end-of-sequence ids, else the tokenizer's). */
    public List<Integer> eosTokenIds() {
        return eosTokenIdList;
    }

    public int maxModelLen() {
        return maxModelLen;
    }

    /**
     * Bytes for the KV cache: kvCacheMemoryBytes when given; on the CPU 1 GiB; on a device, as vLLM
     * does, its memory times gpuMemoryUtilization less what is in use after the weights are loaded,
     * a vision model has reserved its image buffers, and a forward pass of the largest step has
     * sized the activation buffers (the models keep them between passes), less a margin for the
     * step's transient buffers.
     */
    private static long kvCacheBudget(CausalLM model, Backend backend, EngineConfig config, int maxModelLen,
                                      long bytesPerToken) {
        if (config.kvCacheMemoryBytes() > 0) return config.kvCacheMemoryBytes();
        if (backend.deviceMemory().isEmpty()) return EngineConfig.DEFAULT_CPU_KV_CACHE_BYTES;
        if (model instanceof VisionLanguageModel vision && config.limitImagesPerPrompt() > 0) {
            long start = System.nanoTime();
            vision.reserveImageMemory(config.maxNumBatchedTokens());
            log.info("reserved memory for images (kept features, the vision tower's largest pass) in {} ms",
                    (System.nanoTime() - start) / 1_000_000);
        }
        if (model instanceof EncoderDecoderModel encoderDecoder) {
            DeviceMemory before = backend.deviceMemory().orElseThrow();
            long room = (long) (before.total() * config.gpuMemoryUtilization()) - (before.total() - before.free());
            int tokens = encoderTokensKept(encoderDecoder, config, room);
            encoderDecoder.reserveEncoderMemory(tokens);
            log.info("reserved {} MiB for the decoder's reads of encoder outputs of {} tokens together",
                    tokens * encoderDecoder.encoderBytesPerToken() >> 20, tokens);
        }
        profileLargestStep(model, backend, config, maxModelLen);
        DeviceMemory memory = backend.deviceMemory().orElseThrow();
        long used = memory.total() - memory.free();
        long allowed = (long) (memory.total() * config.gpuMemoryUtilization());
        long budget = allowed - used - PROFILE_MARGIN_BYTES;
        log.info("device memory: {} MiB in use after weights and profiling, {} MiB allowed ({} of {} MiB): "
                        + "{} MiB for the KV cache", used >> 20, allowed >> 20, config.gpuMemoryUtilization(),
                memory.total() >> 20, Math.max(0, budget) >> 20);
        if (budget <= 0) {
            throw new JvllmException("the model does not fit: " + (used >> 20) + " MiB of the device's "
                    + (memory.total() >> 20) + " MiB are in use after loading the weights"
                    + (model instanceof VisionLanguageModel && config.limitImagesPerPrompt() > 0
                    ? ", reserving the image buffers (limitImagesPerPrompt 0 takes no images and needs none)" : "")
                    + " and a forward pass of "
                    + config.maxNumBatchedTokens() + " tokens, above gpuMemoryUtilization " + config.gpuMemoryUtilization()
                    + " (" + (allowed >> 20) + " MiB); raise gpuMemoryUtilization, lower maxNumBatchedTokens, or use a"
                    + " quantized or smaller model");
        }
        return budget;
    }

    /**
     * The encoder tokens whose outputs an encoder-decoder model keeps at once: a tenth of the device
     * memory the share leaves after the weights ({@code room}), at least a step's encoder pass (and a
     * row), at most a longest input for each of maxNumSeqs requests. The scheduler
     * admits requests within it, so the kept outputs do not grow past what the KV cache left.
     */
    static int encoderTokensKept(EncoderDecoderModel model, EngineConfig config, long room) {
        long least = encoderTokensAStep(model, config) + 1L;  // a step's encoder pass, and the profiling pass's one-token inputs
        long most = Math.max(least, (long) config.maxNumSeqs() * model.maxEncoderTokens());
        long share = Math.max(0, room) / 10 / Math.max(1, model.encoderBytesPerToken());
        return (int) Math.min(Integer.MAX_VALUE, Math.max(least, Math.min(most, share)));
    }

    /** The encoder tokens one step encodes at the most: the step's tokens, or a longest encoder input where that is more. */
    static int encoderTokensAStep(EncoderDecoderModel model, EngineConfig config) {
        return Math.max(Math.max(config.maxNumBatchedTokens(), 1), model.maxEncoderTokens());
    }

    /** Room left for buffers a step allocates and frees (batch metadata, attention partials). */
    private static final long PROFILE_MARGIN_BYTES = 256L << 20;

    /**
     * One forward pass of the largest step the scheduler can make (maxNumBatchedTokens tokens over
     * up to maxNumSeqs sequences) on dummy tokens, through a temporary cache just large enough.
     */
    private static void profileLargestStep(CausalLM model, Backend backend, EngineConfig config, int maxModelLen) {
        int blockSize = config.blockSize();
        int tokens = (int) Math.min(config.maxNumBatchedTokens(), (long) config.maxNumSeqs() * maxModelLen);
        int sequences = Math.min(config.maxNumSeqs(), tokens);
        int[] ids = new int[tokens], positions = new int[tokens], slots = new int[tokens];
        int[] starts = new int[sequences + 1], contexts = new int[sequences], logitRows = new int[sequences];
        int[][] tables = new int[sequences][];
        int nextBlock = 0, t = 0;
        for (int s = 0; s < sequences; s++) {
            int length = tokens / sequences + (s < tokens % sequences ? 1 : 0);
            starts[s] = t;
            tables[s] = new int[(length + blockSize - 1) / blockSize];
            for (int b = 0; b < tables[s].length; b++) tables[s][b] = nextBlock++;
            for (int i = 0; i < length; i++, t++) {
                positions[t] = i;
                slots[t] = tables[s][i / blockSize] * blockSize + i % blockSize;
            }
            contexts[s] = length;
            logitRows[s] = t - 1;
        }
        starts[sequences] = t;
        List<EncoderInput> encoders = null;
        if (model instanceof EncoderDecoderModel encoderDecoder) {
            // The largest encoder pass a step runs (encoderTokensAStep): distinct inputs as long as the encoder
            // takes, then one shared one-token input for the sequences left.
            encoders = new ArrayList<>(sequences);
            int left = encoderTokensAStep(encoderDecoder, config);
            EncoderInput shortest = EncoderInput.of(new int[]{encoderDecoder.decoderStartTokenId()});
            for (int s = 0; s < sequences; s++) {
                if (left <= 0) {
                    encoders.add(shortest);
                    continue;
                }
                int[] input = new int[Math.min(left, encoderDecoder.maxEncoderTokens())];
                Arrays.fill(input, encoderDecoder.decoderStartTokenId());
                input[0] = s % model.vocabSize();
                if (input.length > 1) input[input.length - 1] = s / model.vocabSize() % model.vocabSize();
                left -= input.length;
                encoders.add(EncoderInput.of(input));
            }
        }
        ForwardBatch batch = new ForwardBatch(ids, positions, slots, starts, contexts, tables, blockSize, logitRows, null, null,
                null, encoders);
        long start = System.nanoTime();
        try (KvCache cache = backend.allocateKvCache(model.kvCacheSpec(Math.max(1, nextBlock), blockSize))) {
            backend.argmaxRows(model.forward(batch, cache));
        }
        log.info("profiled a forward pass of {} tokens in {} sequences in {} ms", tokens, sequences,
                (System.nanoTime() - start) / 1_000_000);
    }

    /** Queues a text prompt (needs a tokenizer). */
    public void addRequest(String requestId, String prompt, SamplingParams params) {
        addRequest(requestId, prompt, null, params, null);
    }

    /** Queues a prompt already tokenized, keeping its text for the output. */
    public void addRequest(String requestId, String prompt, int[] promptTokenIds, SamplingParams params) {
        add(requestId, prompt, promptTokenIds.clone(), params, null);
    }

    /** Queues a prompt given as token ids. */
    public void addRequest(String requestId, int[] promptTokenIds, SamplingParams params) {
        add(requestId, null, promptTokenIds.clone(), params, null);
    }

    /**
     * Queues a prompt (text, token ids, or both: the ids are used) that runs with a LoRA adapter, or
     * with none where {@code lora} is null. The adapter is read when its id is first seen.
     *
     * @throws InvalidRequestException where the engine's backend takes no adapters (a model built
     *                                 without {@code enableLora}) or the adapter cannot be read
     */
    public void addRequest(String requestId, String prompt, int[] promptTokenIds, SamplingParams params, LoraRequest lora) {
        addRequest(requestId, prompt, promptTokenIds, params, lora, List.of());
    }

    /**
     * As {@link #addRequest(String, String, int[], SamplingParams, LoraRequest)}, with images for a
     * vision-language model ({@link VisionLanguageModel}): the prompt holds the model's image
     * placeholder once per image, in order (or already expanded to each image's length).
     *
     * @throws InvalidRequestException where the model takes no images, there are more than
     *                                 {@link #limitImagesPerPrompt()}, or the placeholders do not match them
     */
    public void addRequest(String requestId, String prompt, int[] promptTokenIds, SamplingParams params, LoraRequest lora,
                           List<ImageInput> images) {
        addRequest(requestId, prompt, promptTokenIds, params, lora, images, null);
    }

    /** As the overload without it, the blocks kept apart by {@code cacheSalt} ({@link Prompt#withCacheSalt}; null for none). */
    public void addRequest(String requestId, String prompt, int[] promptTokenIds, SamplingParams params, LoraRequest lora,
                           List<ImageInput> images, String cacheSalt) {
        if (promptTokenIds != null) {
            add(requestId, prompt, promptTokenIds.clone(), null, params, lora, images, cacheSalt);
            return;
        }
        Prompt.Tokens tokens = textPrompt(prompt, true, images);
        add(requestId, prompt, tokens.tokenIds(), null, params, lora, tokens.images(), cacheSalt);
    }

    /**
     * A text prompt as token ids, with its images in the order their placeholders take: the
     * tokenizer's ids (with its special tokens or without) and the images as given; or, for a model
     * whose images are numbered tags in the text ({@link VisionLanguageModel#numberedImageTags},
     * Phi-3-Vision's {@code <|image_1|>}) and a prompt with images, its processor's: the pieces
     * between tags tokenized apart, each with the tokenizer's special tokens whatever
     * {@code specialTokens} says, each tag the image token, and the images bound to the tags by number.
     *
     * @throws InvalidRequestException (field {@code "prompt"}) where the engine has no tokenizer, or the
     *                                 tags do not name each image once, or the text writes the image token itself
     */
    public Prompt.Tokens textPrompt(String text, boolean specialTokens, List<ImageInput> images) {
        return textPrompt(text, specialTokens, images, "prompt");
    }

    /**
     * As {@link #textPrompt(String, boolean, List)}, its refusals naming {@code field} (a chat's
     * {@code "messages"}, rendered by its template).
     */
    public Prompt.Tokens textPrompt(String text, boolean specialTokens, List<ImageInput> images, String field) {
        if (text == null || images == null || images.isEmpty() || !(model instanceof VisionLanguageModel vision)
                || vision.numberedImageTags() == null) {
            return new Prompt.Tokens(textTokens(text, specialTokens), images == null ? List.of() : images);
        }
        java.util.regex.Matcher tag = vision.numberedImageTags().matcher(text);
        List<Integer> ids = new ArrayList<>();
        List<ImageInput> ordered = new ArrayList<>();
        boolean[] named = new boolean[images.size()];
        int from = 0;
        while (tag.find()) {
            piece(text.substring(from, tag.start()), vision, ids, field);
            String digits = tag.group(1);
            int number = digits.length() > 9 ? -1 : Integer.parseInt(digits);
            if (number < 1 || number > images.size()) {
                throw new InvalidRequestException(field, "the image tag " + tag.group() + " names no image: the prompt has "
                        + images.size() + " (" + vision.numberedImageTag(1) + " to " + vision.numberedImageTag(images.size()) + ")");
            }
            if (named[number - 1]) {
                throw new InvalidRequestException(field, "the image tag " + tag.group() + " is written twice; each image's tag goes once");
            }
            named[number - 1] = true;
            ids.add(vision.imageTokenId());
            ordered.add(images.get(number - 1));
            from = tag.end();
        }
        piece(text.substring(from), vision, ids, field);
        if (ordered.size() < images.size()) {
            throw new InvalidRequestException(field, "the prompt has " + images.size() + " image" + (images.size() == 1 ? "" : "s")
                    + " and " + ordered.size() + " tag" + (ordered.size() == 1 ? "" : "s") + " for them; write "
                    + vision.numberedImageTag(1) + " ... where each goes");
        }
        return new Prompt.Tokens(ids.stream().mapToInt(Integer::intValue).toArray(), ordered);
    }

    /** Text between image tags, tokenized with the tokenizer's special tokens, as Phi-3-Vision's processor does. */
    private void piece(String text, VisionLanguageModel vision, List<Integer> ids, String field) {
        for (int id : textTokens(text, true)) {
            if (id == vision.imageTokenId()) {
                throw new InvalidRequestException(field, "the text holds the image token itself; mark images with "
                        + vision.numberedImageTag(1) + ", " + vision.numberedImageTag(2) + ", ...");
            }
            ids.add(id);
        }
    }

    /**
     * Queues a prompt of any kind: text (tokenized here), token ids, either with images, or an
     * encoder-decoder model's encoder and decoder prompts; its {@linkplain Prompt#cacheSalt cache salt}
     * keeps its prefix-cache blocks apart from those of requests salted otherwise.
     */
    public void addRequest(String requestId, Prompt prompt, SamplingParams params, LoraRequest lora) {
        switch (prompt) {
            case Prompt.Text t -> addRequest(requestId, t.text(), null, params, lora, t.images(), t.cacheSalt());
            case Prompt.Tokens t -> addRequest(requestId, null, t.tokenIds(), params, lora, t.images(), t.cacheSalt());
            case Prompt.EncoderDecoder e -> {
                if (!(model instanceof EncoderDecoderModel)) {
                    throw new InvalidRequestException("prompt", "encoder and decoder prompts were given, but this model ("
                            + model.getClass().getSimpleName() + ") has no encoder");
                }
                String text = e.encoder() instanceof Prompt.Text t ? t.text() : null;
                int[] ids = tokensOf(e.encoder(), true);
                add(requestId, text, ids, tokensOf(e.decoder(), false), params, lora, e.images(), e.cacheSalt());
            }
        }
    }

    /** A text or token-id prompt's tokens; text with the tokenizer's special tokens or without. */
    private int[] tokensOf(Prompt prompt, boolean specialTokens) {
        return switch (prompt) {
            case Prompt.Text t -> textTokens(t.text(), specialTokens);
            case Prompt.Tokens t -> t.tokenIds().clone();
            case Prompt.EncoderDecoder nested -> throw new InvalidRequestException("prompt", "an encoder or decoder prompt cannot hold another");
        };
    }

    /** The text's tokens through the tokenizer, with its special tokens or without. */
    private int[] textTokens(String text, boolean specialTokens) {
        if (codec == null) throw new InvalidRequestException("prompt", "this engine has no tokenizer: give prompts as token ids");
        if (text == null) throw new InvalidRequestException("prompt", "prompt is null");
        return specialTokens ? codec.encode(text) : codec.encodeWithoutSpecialTokens(text);
    }

    private void add(String requestId, String prompt, int[] ids, SamplingParams params, LoraRequest lora) {
        add(requestId, prompt, ids, null, params, lora, List.of(), null);
    }

    /**
     * {@code decoderIds}: an encoder-decoder model's decoder prompt, null for its start token alone;
     * {@code cacheSalt}: the user's salt of its prefix-cache blocks, null for none.
     */
    private void add(String requestId, String prompt, int[] ids, int[] decoderIds, SamplingParams params, LoraRequest lora,
                     List<ImageInput> images, String cacheSalt) {
        if (groups.containsKey(requestId)) {
            throw new InvalidRequestException("requestId", "request id '" + requestId + "' is already in use");
        }
        if (ids.length == 0) throw new InvalidRequestException("prompt", "the prompt is empty");
        EncoderInput encoder = null;
        if (model instanceof EncoderDecoderModel encoderDecoder) {
            encoder = encoderInput(ids, params, encoderDecoder, images);
            ids = decoderPrompt(decoderIds, encoderDecoder.decoderStartTokenId());
        }
        List<PromptImage> spans = List.of();
        if (!images.isEmpty()) {
            ImagePlaceholders.Expanded expanded = expandImages(ids, images);
            ids = expanded.tokenIds();
            spans = expanded.images();
        }
        // An encoder-decoder model's truncation applied to its encoder prompt; the decoder's is kept whole.
        int keep = encoder != null ? Integer.MAX_VALUE : promptTokensKept(params);
        if (ids.length > keep && !spans.isEmpty()) {
            throw new InvalidRequestException("truncatePromptTokens", "truncatePromptTokens " + keep + " would cut a prompt "
                    + "of " + ids.length + " tokens holding images; images are not truncated");
        }
        if (ids.length > keep) ids = Arrays.copyOfRange(ids, ids.length - keep, ids.length);
        if (ids.length >= maxModelLen) {
            throw new InvalidRequestException("prompt", "the prompt has " + ids.length
                    + " tokens, the maximum model length is " + maxModelLen + " (prompt plus at least one output token); shorten it or set "
                    + "truncatePromptTokens");
        }
        if (params.promptLogprobs().isPresent() && ids.length < 2) {
            throw new InvalidRequestException("promptLogprobs", "prompt logprobs need a prompt of at least 2 tokens");
        }
        int adapterSlot = -1;
        if (lora != null) {
            if (!(backend instanceof LoraBackend adapters)) {
                throw new InvalidRequestException("loraRequest", "LoRA adapter '" + lora.name() + "' given, but the model was built "
                        + "without enableLora");
            }
            try {
                adapterSlot = adapters.slotFor(lora);
            } catch (JvllmException e) {
                throw new InvalidRequestException("loraRequest", e.getMessage());
            }
        }
        RequestGroup group = new RequestGroup(requestId, prompt, ids, params, spans);
        group.encoder(encoder);
        List<EngineRequest> created = new ArrayList<>();
        Grammar grammar;
        try {
            grammar = params.structuredOutputs().map(this::grammarFor).orElse(null);
        } catch (IllegalArgumentException | Regex.TooComplexException e) {
            // StructuredOutputs checked it when made; a request must not fail the engine thread all the same.
            throw new InvalidRequestException("structuredOutputs", "the structured output cannot be used: " + e.getMessage());
        }
        List<int[]> badWords = badWordTokens(params.badWords());
        for (int i = 0; i < params.n(); i++) {
            SequenceSamplingState state = new SequenceSamplingState(params, ids, eosTokenIdList, model.vocabSize(),
                    random.generatorFor(params, i));
            if (grammar != null) state.constrain(grammar.newConstraint());
            state.banSequences(badWords);
            TextAccumulator text = new TextAccumulator(codec == null || !params.detokenize() ? null
                    : codec.newDetokenizer(ids, params),
                    params.stop(), params.includeStopStrInOutput());
            // Prompt logprobs must see every prompt position, so such requests bypass the prefix cache;
            // a LoRA adapter's blocks are shared only among its own requests; a user's salt keeps its own apart.
            String salt = EngineRequest.cacheSalt(cacheSalt, lora == null ? null : lora.id(),
                    params.promptLogprobs().isPresent() ? requestId : null);
            created.add(new EngineRequest(group, i, state, text, salt, adapterSlot));
        }
        group.sequences.addAll(created);
        groups.put(requestId, group);
        created.forEach(scheduler::add);
    }

    /** The decoder's prompt: {@code given} with the start token in front where it does not begin with it; the start token alone for none. */
    private static int[] decoderPrompt(int[] given, int start) {
        if (given == null || given.length == 0) return new int[]{start};
        if (given[0] == start) return given;
        int[] ids = new int[given.length + 1];
        ids[0] = start;
        System.arraycopy(given, 0, ids, 1, given.length);
        return ids;
    }

    /**
     * An encoder-decoder model's encoder input from the prompt's tokens: kept from the end where
     * {@code truncatePromptTokens} says so, checked against the vocabulary and the encoder's length.
     */
    private EncoderInput encoderInput(int[] ids, SamplingParams params, EncoderDecoderModel model, List<ImageInput> images) {
        if (!images.isEmpty()) {
            throw new InvalidRequestException("images", "this model (" + this.model.getClass().getSimpleName() + ") takes no images");
        }
        if (params.promptLogprobs().isPresent()) {
            throw new InvalidRequestException("promptLogprobs", "prompt logprobs are not given for an encoder-decoder model's "
                    + "prompt, which its encoder reads");
        }
        int keep = promptTokensKept(params);
        if (ids.length > keep) ids = Arrays.copyOfRange(ids, ids.length - keep, ids.length);
        if (ids.length > model.maxEncoderTokens()) {
            throw new InvalidRequestException("prompt", "the prompt has " + ids.length + " tokens, the encoder takes at most "
                    + model.maxEncoderTokens() + "; shorten it or set truncatePromptTokens");
        }
        for (int id : ids) {
            if (id < 0 || id >= this.model.vocabSize()) {
                throw new InvalidRequestException("prompt", "the prompt holds token id " + id + ", outside the vocabulary [0, "
                        + this.model.vocabSize() + ")");
            }
        }
        return EncoderInput.of(ids);
    }

    /** Whether the model is an encoder-decoder model, whose prompts are its encoder's ({@link EncoderDecoderModel}). */
    public boolean encoderDecoder() {
        return model instanceof EncoderDecoderModel;
    }

    /** The most images a prompt may hold ({@link EngineConfig#limitImagesPerPrompt}, vLLM's limit_mm_per_prompt). */
    public int limitImagesPerPrompt() {
        return limitImagesPerPrompt;
    }

    /**
     * How many positions a prompt of these token ids takes once each image's placeholder is
     * expanded to the image's length, as {@link #addRequest(String, String, int[], SamplingParams, LoraRequest, List)}
     * expands it (before any truncation): what a server checks against the model's length.
     *
     * @throws InvalidRequestException where that addRequest would refuse the images: the model takes
     *                                 none, there are too many, or the placeholders do not match them
     */
    public int promptLength(int[] promptTokenIds, List<ImageInput> images) {
        if (model instanceof EncoderDecoderModel) return 1;  // the decoder's prompt: its start token
        return images.isEmpty() ? promptTokenIds.length : expandImages(promptTokenIds, images).tokenIds().length;
    }

    private ImagePlaceholders.Expanded expandImages(int[] ids, List<ImageInput> images) {
        if (!(model instanceof VisionLanguageModel vision)) {
            throw new InvalidRequestException("images", "this model (" + model.getClass().getSimpleName() + ") takes no images");
        }
        if (images.size() > limitImagesPerPrompt) {
            throw new InvalidRequestException("images", images.size() + " image" + (images.size() == 1 ? "" : "s")
                    + " in one prompt; at most " + limitImagesPerPrompt + " (limitImagesPerPrompt)");
        }
        for (ImageInput image : images) {
            if (image == null) throw new InvalidRequestException("images", "an image of the prompt is null");
            vision.checkImage(image);
        }
        return ImagePlaceholders.expand(ids, images, vision.imageTokenId(), vision.imageStartTokenId(), vision.imageEndTokenId(),
                vision::imageTokenCount);
    }

    /**
     * Each bad word's tokens: the word at the start of a text, and after a space (how byte-level and
     * SentencePiece vocabularies write a word inside a sentence) where those tokens differ. vLLM takes
     * the second only where it has as many tokens as the first; this takes it always, so that a word
     * whose spaced form is tokenized differently is banned inside a sentence too.
     */
    private List<int[]> badWordTokens(List<String> words) {
        if (words.isEmpty()) return List.of();
        if (codec == null) throw new InvalidRequestException("badWords", "bad words need the model's tokenizer, and this engine has none");
        List<int[]> sequences = new ArrayList<>();
        for (String word : words) {
            String bare = word.stripLeading();
            int[] alone = codec.encodeWithoutSpecialTokens(bare);
            if (alone.length > 0) sequences.add(alone);
            int[] spaced = codec.encodeWithoutSpecialTokens(" " + bare);
            if (spaced.length > 0 && !java.util.Arrays.equals(spaced, alone)) sequences.add(spaced);
        }
        return sequences;
    }

    /** The grammar of a structured output, compiled once per pattern (the vocabulary once per engine). */
    private Grammar grammarFor(StructuredOutputs outputs) {
        if (codec == null) {
            throw new InvalidRequestException("structuredOutputs", "structured outputs need the model's tokenizer, and this engine has none");
        }
        if (eosTokenIds.length == 0) {
            throw new InvalidRequestException("structuredOutputs", "structured outputs need an end-of-sequence token, and this model names none");
        }
        if (vocabulary == null) {
            long start = System.nanoTime();
            vocabulary = new TokenVocabulary(model.vocabSize(), id -> {
                try {
                    return codec.tokenBytes(id);
                } catch (RuntimeException e) {
                    return null; // ids of the model's padded vocabulary past the tokenizer's
                }
            });
            log.info("structured outputs: token vocabulary read in {} ms", (System.nanoTime() - start) / 1_000_000);
        }
        return grammars.computeIfAbsent(outputs, o -> o.rules()
                .map(rules -> new Grammar(new Pushdown(rules), vocabulary, eosTokenIds))
                .orElseGet(() -> new Grammar(Regex.compile(o.pattern()), vocabulary, eosTokenIds)));
    }

    /**
     * Aborts a request: its unfinished sequences finish with reason "abort" and their blocks are freed
     * at once. False when no request of that id is unfinished.
     */
    public boolean abort(String requestId) {
        return abortWithOutput(requestId) != null;
    }

    /** {@link #abort}, returning the request's final output (null when the id is unknown). */
    RequestOutput abortWithOutput(String requestId) {
        RequestGroup group = groups.remove(requestId);
        if (group == null) return null;
        for (EngineRequest s : group.sequences) {
            if (!s.finished()) finish(s, FinishReason.ABORT, null);
        }
        return group.toOutput();
    }

    public boolean hasUnfinishedRequests() {
        return scheduler.hasUnfinished();
    }

    /**
     * A step whose forward pass is queued and whose tokens are not yet accepted: per scheduled
     * request, where its tokens started, whether it samples one, its prompt logprob rows and its
     * first row of logits (its prompt logprob rows, then its sampled row), all as when launched;
     * its tokens found where the logits are (argmax or drawn), or the logits' copy on the heap.
     */
    private static final class Launched {
        final List<Scheduler.Scheduled> scheduled;
        final int[] starts;
        final boolean[] samples;
        final int[] promptRows;
        final int[] firstRows;
        final int vocab;
        Backend.SampledRows tokens;
        float[] flat;
        /** Whether its tokens were already marked computed, when the next step was launched ahead of it. */
        boolean computedMarked;

        Launched(List<Scheduler.Scheduled> scheduled, int[] starts, boolean[] samples, int[] promptRows,
                 int[] firstRows, int vocab) {
            this.scheduled = scheduled;
            this.starts = starts;
            this.samples = samples;
            this.promptRows = promptRows;
            this.firstRows = firstRows;
            this.vocab = vocab;
        }

        /** Request i's row of logits for its sampled token. */
        int sampledRow(int i) {
            return firstRows[i] + promptRows[i];
        }

        boolean allFinished() {
            for (Scheduler.Scheduled s : scheduled) {
                if (!s.request().finished()) return false;
            }
            return true;
        }
    }

    /**
     * {@link #step()} for a caller that waits for whole answers (vLLM's {@code FINAL_ONLY} output kind, as
     * {@code LLM.generate} runs): the outputs of the requests that finished in it, and none of the others,
     * whose outputs (each a copy of its text so far) would be thrown away.
     */
    public List<RequestOutput> stepFinished() {
        return step(OutputKind.FINAL_ONLY);
    }

    /**
     * {@link #step()} for a caller that streams (vLLM's {@code DELTA} output kind, as {@link AsyncLLMEngine}
     * runs): a request that has not finished gives only what it added since its last output of this kind
     * (its new text, token ids and logprobs; none where nothing is new), so a step costs what it made,
     * not the length of the answers so far. A finished request gives its whole output, as {@code step} does.
     * Not to be mixed with {@code step} on one engine: each kind keeps its own account of what was given.
     */
    public List<RequestOutput> stepDeltas() {
        return step(OutputKind.DELTA);
    }

    private List<RequestOutput> step(OutputKind kind) {
        outputKind = kind;
        try {
            return step();
        } finally {
            outputKind = OutputKind.CUMULATIVE;
        }
    }

    /**
     * Runs one step; returns the requests that made progress (finished ones for the last time).
     * With async scheduling a step's forward pass may already be queued from the call before, and
     * the next one is queued before this one's tokens are read back where that is possible
     * ({@link #mayLaunchAhead}).
     */
    public List<RequestOutput> step() {
        long stepStart = System.nanoTime();
        failures.clear();
        failedOutputs.clear();  // left by a step whose pass then failed (every request was aborted with it)
        try {
            if (inFlight != null && inFlight.allFinished()) {
                // Every request it ran finished or was aborted while it ran: nothing to report.
                Launched discarded = inFlight;
                inFlight = null;
                complete(discarded);
            }
            Launched current = inFlight;
            inFlight = null;
            if (current == null) {
                List<Scheduler.Scheduled> scheduled = scheduler.schedule();
                if (scheduled.isEmpty()) {
                    if (scheduler.hasUnfinished()) {
                        throw new IllegalStateException("scheduler made no progress with requests pending: " + metrics());
                    }
                    prepareImages(List.of());  // idle: nothing is upcoming, so nothing made ahead is kept
                    return List.of();
                }
                current = launch(scheduled, null);
                if (current == null) return takeFailedOutputs(List.of());
            }
            if (mayLaunchAhead(current)) inFlight = launchAhead(current);
            // While the device runs what is queued: the next steps' images' host preprocessing, in the background.
            if (limitImagesPerPrompt > 0) prepareImages(scheduler.upcomingImages(VisionLanguageModel.IMAGES_PREPARED_AHEAD));
            return takeFailedOutputs(complete(current));
        } finally {
            stepNanos += System.nanoTime() - stepStart;
        }
    }

    /**
     * Hands the upcoming images to a vision-language model to preprocess ahead; a failure there only
     * costs the head start (each step's encode makes what it lacks, and reports its own failures).
     */
    private void prepareImages(List<ImageInput> upcoming) {
        if (!(model instanceof VisionLanguageModel vision)) return;
        try {
            vision.prepareImages(upcoming);
        } catch (RuntimeException e) {
            log.warn("preparing {} upcoming images ahead failed; their steps will make them", upcoming.size(), e);
        }
    }

    /** The outputs of requests that failed in this step, then {@code outputs}. */
    private List<RequestOutput> takeFailedOutputs(List<RequestOutput> outputs) {
        if (failedOutputs.isEmpty()) return outputs;
        List<RequestOutput> all = new ArrayList<>(failedOutputs);
        all.addAll(outputs);
        failedOutputs.clear();
        return all;
    }

    /**
     * Why the request of this id failed rather than finished (its images could not be encoded, or its
     * structured output passed the automaton's limit), for the step that returned its final output;
     * null where it did not fail. The next step forgets it.
     */
    public RequestFailedException failure(String requestId) {
        return failures.get(requestId);
    }

    /**
     * Encodes the images the step reaches first, through {@link VisionLanguageModel#encodeImages},
     * and leaves out of the step the requests whose images fail: each ends with a {@link
     * RequestFailedException} while the others run on. Where the step's images fail together, each
     * request's are encoded alone to find which fail.
     */
    private List<Scheduler.Scheduled> withImagesEncoded(List<Scheduler.Scheduled> scheduled) {
        if (!(model instanceof VisionLanguageModel vision)) return scheduled;
        Map<RequestGroup, List<ImageInput>> imagesOf = new LinkedHashMap<>();
        for (Scheduler.Scheduled s : scheduled) {
            EngineRequest r = s.request();
            int start = r.numComputedTokens();
            for (PromptImage image : r.imagesAmong(start, start + s.numTokens())) {
                imagesOf.computeIfAbsent(r.group(), g -> new ArrayList<>()).add(image.image());
            }
        }
        if (imagesOf.isEmpty()) return scheduled;
        long start = System.nanoTime();
        try {
            return encodeStepImages(vision, scheduled, imagesOf);
        } finally {
            imageNanos += System.nanoTime() - start;
        }
    }

    private List<Scheduler.Scheduled> encodeStepImages(VisionLanguageModel vision, List<Scheduler.Scheduled> scheduled,
                                                       Map<RequestGroup, List<ImageInput>> imagesOf) {
        try {
            vision.encodeImages(imagesOf.values().stream().flatMap(List::stream).toList());
            return scheduled;
        } catch (RuntimeException together) {
            log.warn("encoding the images of {} requests together failed; encoding each request's alone", imagesOf.size(),
                    together);
        }
        Set<RequestGroup> failed = new HashSet<>();
        for (Map.Entry<RequestGroup, List<ImageInput>> entry : imagesOf.entrySet()) {
            try {
                vision.encodeImages(entry.getValue());
            } catch (RuntimeException alone) {
                String id = entry.getKey().requestId();
                log.warn("request {}: its images could not be encoded; it fails, the engine goes on", id, alone);
                failed.add(entry.getKey());
                fail(id, "request " + id + ": its images could not be encoded (" + alone.getMessage() + ")", alone);
            }
        }
        return scheduled.stream().filter(s -> !failed.contains(s.request().group())).toList();
    }

    /**
     * Queues the forward pass of {@code scheduled} and its sampling; {@code ahead}: the step it
     * follows before that one is read. Null where no request is left once their images are encoded.
     */
    private Launched launch(List<Scheduler.Scheduled> scheduled, Launched ahead) {
        scheduled = withImagesEncoded(scheduled);
        if (scheduled.isEmpty()) return null;
        int n = scheduled.size();
        int[] starts = new int[n], promptRows = new int[n], firstRows = new int[n];
        boolean[] samples = new boolean[n];
        // Plain greedy rows need only the argmax, found where the logits are; rows drawn with no more
        // than temperature, min-p, top-k and top-p are drawn there too where the backend can; anything
        // else copies the logits back.
        boolean argmaxOnly = true, plainOnly = true;
        int row = 0;
        for (int i = 0; i < n; i++) {
            Scheduler.Scheduled s = scheduled.get(i);
            EngineRequest r = s.request();
            starts[i] = r.numComputedTokens();
            samples[i] = starts[i] + s.numKnownTokens() == r.numTokens();
            promptRows[i] = promptLogprobRows(r, starts[i], s.numKnownTokens());
            firstRows[i] = row;
            row += promptRows[i] + (samples[i] ? 1 + s.drafts().length : 0);
            if (promptRows[i] > 0 || samples[i] && !sampler.choosesArgmax(r.sampling)) argmaxOnly = false;
            // The device draws one token a request; guesses are verified one row after another on the host.
            if (promptRows[i] > 0 || s.drafts().length > 0 || samples[i] && !sampler.samplesPlainly(r.sampling)) plainOnly = false;
        }
        ForwardBatch batch = buildBatch(scheduled, ahead);
        Tensor logits;
        long forwardStart = System.nanoTime();
        try {
            if (backend instanceof LoraBackend adapters) {
                adapters.useAdapters(batch, adapterSlots(scheduled));
                logits = model.forward(batch, kvCache);
                adapters.checkApplied();
            } else {
                logits = capturedDecode.forward(batch, verifiesGuesses(scheduled), b -> model.forward(b, kvCache));
            }
        } catch (RuntimeException e) {
            abortAll();
            throw new JvllmException("forward pass failed; all requests were aborted: " + e.getMessage(), e);
        }
        long resultStart = System.nanoTime();
        forwardNanos += resultStart - forwardStart;
        Launched launched = new Launched(scheduled, starts, samples, promptRows, firstRows, logits.cols());
        if (!argmaxOnly && plainOnly && backend.samplesOnDevice()) {
            launched.tokens = backend.sampleRowsAsync(logits, plainSampling(scheduled, samples));
            if (!scheduleAhead) launched.tokens = Backend.SampledRows.of(launched.tokens.await());
        } else if (!argmaxOnly) {
            launched.flat = backend.toFloatArray(logits);
        } else if (scheduleAhead) {
            launched.tokens = backend.argmaxRowsAsync(logits);
        } else {
            launched.tokens = Backend.SampledRows.of(backend.argmaxRows(logits));
        }
        resultNanos += System.nanoTime() - resultStart;
        return launched;
    }

    /** Whether every request of the step verifies guesses after its one known token (a step graphs may record). */
    private static boolean verifiesGuesses(List<Scheduler.Scheduled> scheduled) {
        for (Scheduler.Scheduled s : scheduled) {
            if (s.drafts().length == 0 || s.numKnownTokens() != 1) return false;
        }
        return true;
    }

    /** Each scheduled sequence's adapter slot, or null where none runs with one. */
    private static int[] adapterSlots(List<Scheduler.Scheduled> scheduled) {
        int[] slots = new int[scheduled.size()];
        boolean any = false;
        for (int i = 0; i < slots.length; i++) {
            slots[i] = scheduled.get(i).request().adapterSlot;
            any |= slots[i] >= 0;
        }
        return any ? slots : null;
    }

    /**
     * How each sampling row of a step is drawn on the device: greedy rows at temperature 0, the
     * others with their parameters and the next uniform number of their own generator (taken now,
     * in step order, as the host's draw would take it).
     */
    private Backend.PlainSampling plainSampling(List<Scheduler.Scheduled> scheduled, boolean[] samples) {
        int rows = 0;
        for (boolean s : samples) if (s) rows++;
        float[] temperatures = new float[rows], minPs = new float[rows];
        int[] topKs = new int[rows];
        double[] topPs = new double[rows], uniforms = new double[rows];
        int row = 0;
        for (int i = 0; i < scheduled.size(); i++) {
            if (!samples[i]) continue;
            EngineRequest r = scheduled.get(i).request();
            SamplingParams p = r.sampling.params();
            topPs[row] = 1;
            if (!p.isGreedy()) {
                temperatures[row] = (float) p.temperature();
                topKs[row] = p.topK();
                topPs[row] = p.topP();
                minPs[row] = (float) p.minP();
                uniforms[row] = sampler.nextUniform(r.sampling);
            }
            row++;
        }
        return new Backend.PlainSampling(temperatures, topKs, topPs, minPs, uniforms);
    }

    /**
     * Whether the step after {@code current} can be scheduled and queued before current's tokens
     * are known: async scheduling on, current's tokens all found where the logits are and left there, every
     * running request in current and sampling a token that cannot end it by length, and free
     * blocks for those tokens (so that scheduling it preempts nothing). Waiting requests may join
     * that step: their prompts are known, and admitting them never preempts.
     */
    private boolean mayLaunchAhead(Launched current) {
        if (!scheduleAhead || current.tokens == null || !current.tokens.feedable()) return false;
        if (scheduler.numRunning() != current.scheduled.size()) return false;
        int newBlocks = 0;
        for (int i = 0; i < current.scheduled.size(); i++) {
            EngineRequest r = current.scheduled.get(i).request();
            if (!current.samples[i] || r.finished() || !r.running) return false;
            SamplingParams p = r.sampling.params();
            if (r.numOutputTokens() + 1 >= p.maxTokens().orElse(Integer.MAX_VALUE) || r.numTokens() + 1 >= maxModelLen) {
                return false;
            }
            // The next step computes position numTokens(), the token being sampled now.
            if (r.numTokens() / kv.blockSize() >= r.blockTable().size()) newBlocks++;
        }
        return newBlocks <= kv.freeBlocks();
    }

    /**
     * Marks current's tokens computed, holds the place of each request's token being sampled, and
     * queues the next step, whose token ids for those places come from current's tokens on the device.
     */
    private Launched launchAhead(Launched current) {
        for (int i = 0; i < current.scheduled.size(); i++) {
            Scheduler.Scheduled s = current.scheduled.get(i);
            markComputed(s.request(), current.starts[i], s.numTokens());
            s.request().appendPending();
        }
        current.computedMarked = true;
        List<Scheduler.Scheduled> next = scheduler.schedule();
        if (next.isEmpty()) return null;
        stepsLaunchedAhead++;
        return launch(next, current);
    }

    /** Reads a launched step's tokens and accepts them; returns the requests that made progress. */
    private List<RequestOutput> complete(Launched launched) {
        long resultStart = System.nanoTime();
        int[] found = launched.tokens == null ? null : launched.tokens.await();
        resultNanos += System.nanoTime() - resultStart;
        steps++;

        RuntimeException[] rowFailures = new RuntimeException[launched.scheduled.size()];
        SampledToken[] drawn = found == null ? sampleRows(launched, rowFailures) : null;
        List<RequestGroup> touched = new ArrayList<>();
        for (int i = 0; i < launched.scheduled.size(); i++) {
            Scheduler.Scheduled s = launched.scheduled.get(i);
            EngineRequest r = s.request();
            int start = launched.starts[i];
            // Stopped or aborted while this step ran (async scheduling): its rows are dropped.
            if (r.finished()) continue;
            if (launched.promptRows[i] > 0) {
                recordPromptLogprobs(r, start, launched.flat, launched.firstRows[i], launched.promptRows[i], launched.vocab);
            }
            if (!launched.computedMarked) markComputed(r, start, s.numKnownTokens());
            RuntimeException failure = rowFailures[i];
            if (failure == null && launched.samples[i]) {
                failure = acceptDrawn(r, s, launched, launched.sampledRow(i), found, drawn == null ? null : drawn[i]);
                if (failure == null && r.group().lastOutputStep != steps) {
                    r.group().lastOutputStep = steps;
                    touched.add(r.group());
                }
            }
            if (failure != null) failRow(r, failure);
        }
        List<RequestOutput> outputs = new ArrayList<>(touched.size());
        for (RequestGroup g : touched) {
            if (failures.containsKey(g.requestId())) continue;  // its final output is among the failed ones
            if (outputKind == OutputKind.DELTA && !g.finished()) {
                RequestOutput delta = g.toDeltaOutput();
                if (delta != null) outputs.add(delta);
                continue;
            }
            if (outputKind == OutputKind.FINAL_ONLY && !g.finished()) continue;
            outputs.add(g.toOutput());
            if (g.finished()) groups.remove(g.requestId());
        }
        return outputs;
    }

    /** Ends request {@code r} because drawing its token failed (its structured output, logits processor or masks). */
    private void failRow(EngineRequest r, RuntimeException failure) {
        if (failure instanceof Regex.TooComplexException tooComplex) {
            failTooComplex(r, tooComplex);
            return;
        }
        String message = "request " + r.group().requestId() + ": " + failure.getMessage();
        log.warn("{}; it fails, the engine goes on", message);
        fail(r.group().requestId(), message, failure);
    }

    /**
     * Accepts the tokens request {@code r} drew in its step: its one token, or with guesses
     * ({@link Scheduler.Scheduled#drafts}) the draw of each row in turn while the last draw equals the
     * guess there and did not end the request, then the first draw that differs (or the one after the
     * last guess). Each later row is drawn only once the draw before it is accepted, so the request's
     * sampling state (logprobs, penalties, its constraint, its logits processors) sees exactly the
     * tokens it keeps. A kept guess had its key and value computed in the step, so it counts as computed;
     * blocks grown for guesses not kept are given back. {@code row}: the request's first row of logits;
     * {@code found}: the step's tokens found where the logits are (the argmax), else {@code first} is the
     * host's draw of that row.
     *
     * @return the failure of a later row's draw, which ends the request; null
     */
    private RuntimeException acceptDrawn(EngineRequest r, Scheduler.Scheduled s, Launched launched, int row, int[] found,
                                         SampledToken first) {
        int[] drafts = s.drafts();
        SampledToken token = found != null ? sampler.acceptArgmax(r.sampling, found[row]) : first;
        draftTokens += s.proposed();  // padding guesses (one shape a step) are not counted, as vLLM counts proposals
        for (int j = 0; ; j++) {
            accept(r, token);
            boolean kept = j < drafts.length && token.tokenId() == drafts[j];
            if (kept && j < s.proposed()) acceptedDraftTokens++;
            if (!kept || r.finished()) break;
            markComputed(r, r.numTokens() - 1, 1);
            if (found != null) {
                token = sampler.acceptArgmax(r.sampling, found[row + j + 1]);
                continue;
            }
            try {
                token = sampler.sample(r.sampling, rowOf(launched, row + j + 1));
            } catch (Regex.TooComplexException | LogitsProcessorFailedException | NothingToDrawException e) {
                return e;
            }
        }
        if (drafts.length > 0 && !r.finished()) kv.trimToTokens(r);
        return null;
    }

    /** A copy of row {@code row} of a launched step's logits copied back. */
    private static float[] rowOf(Launched launched, int row) {
        float[] logits = new float[launched.vocab];
        System.arraycopy(launched.flat, row * launched.vocab, logits, 0, launched.vocab);
        return logits;
    }

    /**
     * The tokens the host's sampler draws from a launched step's logits copied back, by scheduled
     * request (null where it samples nothing or has finished): each request's first row (a request
     * verifying guesses draws its later rows as it accepts, {@link #acceptDrawn}). Rows are independent
     * (each sequence has its own generator), so several are drawn at once: at a 128k vocabulary one row
     * with top-p took 2 ms of one core, and 64 of them one after another took longer than the step.
     * A row whose structured output or logits processor fails draws nothing; why goes to {@code rowFailures}.
     */
    private SampledToken[] sampleRows(Launched launched, RuntimeException[] rowFailures) {
        int n = launched.scheduled.size();
        SampledToken[] drawn = new SampledToken[n];
        IntStream.range(0, n).parallel().forEach(i -> {
            EngineRequest r = launched.scheduled.get(i).request();
            if (!launched.samples[i] || r.finished()) return;
            try {
                drawn[i] = sampler.sample(r.sampling, rowOf(launched, launched.sampledRow(i)));
            } catch (Regex.TooComplexException | LogitsProcessorFailedException | NothingToDrawException e) {
                rowFailures[i] = e;
            }
        });
        return drawn;
    }

    /**
     * Fails the request of {@code r}, whose structured output reached a state its pattern's automaton
     * could not make: nothing it could draw from there is known to match, and ending it with "stop"
     * would pass off an incomplete output as complete. The pattern's grammar is spent (it can make
     * no state) and shared by pattern, so it leaves the cache: a later request starts afresh.
     */
    private void failTooComplex(EngineRequest r, Regex.TooComplexException e) {
        String id = r.group().requestId();
        StructuredOutputs outputs = r.group().params().structuredOutputs().orElseThrow();
        Grammar spent = grammars.get(outputs);
        if (spent != null && spent.full()) grammars.remove(outputs);
        String message = "request " + id + ": structured output too complex after " + r.numOutputTokens() + " output tokens: "
                + e.getMessage();
        log.warn("{}; it fails, the engine goes on", message);
        fail(id, message, e);
    }

    /** Ends request {@code id} alone, its final output and why kept for this step ({@link #failure}). */
    private void fail(String id, String message, Throwable cause) {
        RequestOutput output = abortWithOutput(id);
        if (output != null) {
            failedOutputs.add(output);
            failures.put(id, new RequestFailedException(id, message, cause));
        }
    }

    /** After a step computed {@code count} tokens of {@code r} from {@code start}: counts them and caches newly full blocks. */
    private void markComputed(EngineRequest r, int start, int count) {
        r.advanceComputed(count);
        promptTokensComputed += Math.max(0, Math.min(r.promptLength(), start + count) - Math.min(r.promptLength(), start));
        kv.cacheFullBlocks(r);
    }

    private int promptLogprobRows(EngineRequest r, int start, int count) {
        if (r.group().promptLogprobs == null || r.index() != 0) return 0;
        int end = Math.min(start + count, r.promptLength() - 1);
        return Math.max(0, end - start);
    }

    /**
     * Records the prompt logprobs of rows {@code [row, row + rows)}, those of positions from {@code start}.
     * Target entry p + 1 holds what position p predicts; after a preemption a recomputed chunk may cover
     * entries already recorded, and only the rows past them are added (the chunks need not line up).
     */
    private void recordPromptLogprobs(EngineRequest r, int start, float[] flat, int row, int rows, int vocab) {
        List<Map<Integer, Logprob>> target = r.group().promptLogprobs;
        int recorded = Math.max(0, target.size() - (start + 1));
        if (recorded >= rows) return;
        float[][] rowsLogits = new float[rows - recorded][vocab];
        for (int i = 0; i < rowsLogits.length; i++) System.arraycopy(flat, (row + recorded + i) * vocab, rowsLogits[i], 0, vocab);
        int topN = r.group().params().promptLogprobs().getAsInt();
        for (TokenLogprobs lp : sampler.promptLogprobs(r.group().promptTokenIds(), start + recorded, rowsLogits, topN)) {
            target.add(asMap(lp, r.group().promptTokenIds()[target.size()], r.group().params().detokenize()));
        }
    }

    private void accept(EngineRequest r, SampledToken token) {
        int id = token.tokenId();
        r.appendToken(id);
        generatedTokens++;
        token.logprobs().ifPresent(lp -> r.logprobs.add(asMap(lp, id, r.group().params().detokenize())));
        SamplingParams p = r.sampling.params();
        int produced = r.numOutputTokens();
        // As vLLM: a stop string ends (and cuts) the text only in what comes after the first min_tokens tokens.
        String stop = r.text.append(id, produced > p.minTokens());
        if (produced >= p.minTokens()) {
            if (!p.ignoreEos() && isEos(id)) {
                finish(r, FinishReason.STOP, null);
            } else if (p.stopTokenIds().contains(id)) {
                finish(r, FinishReason.STOP, id);
            } else if (stop != null) {
                finish(r, FinishReason.STOP, stop);
            }
        }
        if (!r.finished() && (produced >= p.maxTokens().orElse(Integer.MAX_VALUE) || r.numTokens() >= maxModelLen)) {
            finish(r, FinishReason.LENGTH, null);
        }
    }

    private boolean isEos(int tokenId) {
        for (int eos : eosTokenIds) {
            if (eos == tokenId) return true;
        }
        return false;
    }

    private Map<Integer, Logprob> asMap(TokenLogprobs lp, int tokenId, boolean detokenize) {
        Map<Integer, Logprob> map = new LinkedHashMap<>();
        map.put(tokenId, decorate(tokenId, lp.token(), detokenize));
        lp.top().forEach((id, l) -> map.putIfAbsent(id, decorate(id, l, detokenize)));
        return map;
    }

    private Logprob decorate(int tokenId, Logprob l, boolean detokenize) {
        return codec == null || !detokenize ? l : l.withDecodedToken(codec.tokenText(tokenId));
    }

    private void finish(EngineRequest r, FinishReason reason, Object stopReason) {
        r.dropPendingToken();
        r.finishReason = reason;
        r.stopReason = stopReason;
        scheduler.remove(r);
    }

    /**
     * The step's tokens end to end; block tables are the sequences' own arrays (see {@link
     * BlockTable#toArray}). With async scheduling every batch carries sampled-token rows (so that
     * a decode shape records the same work whether or not it follows a step not yet read): a
     * token whose place is held ({@link EngineRequest#appendPending}) takes its id from its
     * request's row of {@code ahead}'s tokens.
     */
    private ForwardBatch buildBatch(List<Scheduler.Scheduled> scheduled, Launched ahead) {
        int n = scheduled.size();
        int total = 0, logitCount = 0;
        for (Scheduler.Scheduled s : scheduled) {
            EngineRequest r = s.request();
            int start = r.numComputedTokens();
            total += s.numTokens();
            logitCount += promptLogprobRows(r, start, s.numKnownTokens())
                    + (start + s.numKnownTokens() == r.numTokens() ? 1 + s.drafts().length : 0);
        }
        int[] ids = new int[total], positions = new int[total], slots = new int[total];
        int[] starts = new int[n + 1], contexts = new int[n], logitRows = new int[logitCount];
        int[] sampledRows = scheduleAhead ? new int[total] : null;
        if (sampledRows != null) Arrays.fill(sampledRows, -1);
        Map<EngineRequest, Integer> aheadRows = ahead == null ? Map.of() : new IdentityHashMap<>();
        if (ahead != null) {
            // Every request of a step launched ahead of samples one token, in order, with no prompt logprob rows.
            for (int i = 0; i < ahead.scheduled.size(); i++) aheadRows.put(ahead.scheduled.get(i).request(), i);
        }
        int[][] tables = new int[n][];
        List<List<PromptImage>> images = null, promptImages = null;
        List<EncoderInput> encoderInputs = model instanceof EncoderDecoderModel ? new ArrayList<>(n) : null;
        int blockSize = kv.blockSize();
        int t = 0, logit = 0;
        for (int i = 0; i < n; i++) {
            EngineRequest r = scheduled.get(i).request();
            int start = r.numComputedTokens();
            int count = scheduled.get(i).numTokens();
            int[] drafts = scheduled.get(i).drafts();
            starts[i] = t;
            int promptRows = promptLogprobRows(r, start, count - drafts.length);
            for (int k = 0; k < promptRows; k++) logitRows[logit++] = t + k;
            for (int k = 0; k < count; k++, t++) {
                int pos = start + k;
                ids[t] = pos < r.numTokens() ? r.token(pos) : drafts[pos - r.numTokens()];
                positions[t] = pos;
                slots[t] = r.slot(pos, blockSize);
                if (pos == r.numTokens() - 1 && r.hasPendingToken()) {
                    Integer row = aheadRows.get(r);
                    if (row == null || sampledRows == null) {
                        throw new IllegalStateException(r + " has a token still being sampled outside the step ahead");
                    }
                    sampledRows[t] = row;
                }
            }
            contexts[i] = start + count;
            tables[i] = r.blockTable().toArray();
            if (start + count - drafts.length == r.numTokens()) {
                // The known last token's logits, then each guess's: row j checks guess j and proposes what follows it.
                for (int k = drafts.length; k >= 0; k--) logitRows[logit++] = t - 1 - k;
            }
            List<PromptImage> among = r.imagesAmong(start, start + count);
            if (!among.isEmpty()) {
                if (images == null) images = new ArrayList<>(java.util.Collections.nCopies(n, List.of()));
                images.set(i, among);
            }
            if (encoderInputs != null) encoderInputs.add(r.group().encoder());
            List<PromptImage> all = r.promptImages();
            if (!all.isEmpty()) {
                if (promptImages == null) promptImages = new ArrayList<>(java.util.Collections.nCopies(n, List.of()));
                promptImages.set(i, all);
            }
        }
        starts[n] = t;
        return new ForwardBatch(ids, positions, slots, starts, contexts, tables, blockSize, logitRows, sampledRows, images,
                promptImages, encoderInputs);
    }

    /** Whether an engine of {@code config} on {@code backend} queues decode steps ahead (async scheduling). */
    static boolean schedulesAhead(EngineConfig config, Backend backend) {
        return config.asyncScheduling() && config.speculativeConfig() == null && backend.feedsSampledTokens()
                && backend.queuesWork();
    }

    /** Steps queued before the step ahead of them was read back (async scheduling). */
    long stepsLaunchedAhead() {
        return stepsLaunchedAhead;
    }

    /** Aborts every request. */
    void abortAll() {
        for (String id : new ArrayList<>(groups.keySet())) abort(id);
    }

    /**
     * Verifies that no request state is left and every KV block is back in the free pool with
     * reference count 0; call once all requests have finished or been aborted.
     *
     * @throws IllegalStateException describing what is still held
     */
    void checkNoLeaks() {
        if (!groups.isEmpty() || scheduler.hasUnfinished()) {
            throw new IllegalStateException("requests left: " + groups.keySet() + ", scheduler holds " + scheduler.all());
        }
        kv.checkAllFree();
    }

    /** A snapshot of the engine's counters. */
    public EngineMetrics metrics() {
        return new EngineMetrics(scheduler.numRunning(), scheduler.numWaiting(), kv.numBlocks(), kv.freeBlocks(),
                kv.prefixQueryTokens(), kv.prefixHitTokens(), scheduler.preemptions(), promptTokensComputed,
                generatedTokens, steps, stepNanos, forwardNanos, resultNanos, imageNanos, draftTokens, acceptedDraftTokens);
    }

    /** Aborts every request and releases the KV cache. Idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        abortAll();
        if (inFlight != null && inFlight.tokens != null) inFlight.tokens.await();
        inFlight = null;
        kvCache.close();
    }
}
