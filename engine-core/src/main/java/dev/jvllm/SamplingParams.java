package dev.jvllm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * How to choose the tokens of one request: vLLM's {@code SamplingParams}, with its defaults and
 * its checks. Immutable; build one with {@link #builder()}, start from {@link #greedy()}, or
 * change a copy with {@link #toBuilder()}.
 *
 * <pre>{@code
 * SamplingParams params = SamplingParams.builder()
 *         .temperature(0.7).topP(0.9).maxTokens(256).stop("\n\n").seed(42)
 *         .build();
 * }</pre>
 *
 * <p>{@link Builder#build()} rejects values out of range with an {@link InvalidRequestException}
 * naming the field. Token ids can only be checked against a model's vocabulary, which
 * {@link #validateTokenIds(int)} does once the model is known.
 *
 * <p>Logits are processed in vLLM's order: allowed token ids, then min-tokens masking and logit
 * bias, then repetition, frequency and presence penalties; then either greedy choice or
 * temperature, min-p, top-k and top-p before drawing from the softmax.
 */
public final class SamplingParams {

    /** Most sequences one request may ask for ({@code n}). */
    public static final int MAX_N = 1024;
    /** Most top logprobs per position, vLLM's default {@code max_logprobs}. */
    public static final int MAX_LOGPROBS = 20;
    /** Most stop strings per request. */
    public static final int MAX_STOP_STRINGS = 64;
    /** Longest stop string, in chars. */
    public static final int MAX_STOP_STRING_LENGTH = 1024;
    /** Most bad words per request, and their longest, in chars. */
    public static final int MAX_BAD_WORDS = 256;
    public static final int MAX_BAD_WORD_LENGTH = 256;
    /** Highest temperature, as in vLLM and the OpenAI API. */
    public static final double MAX_TEMPERATURE = 2.0;
    /** Temperatures below this sample greedily (vLLM's {@code _SAMPLING_EPS}). */
    public static final double GREEDY_TEMPERATURE = 1e-5;
    /** Logit biases are clamped to plus or minus this, as vLLM and the OpenAI API do. */
    public static final float MAX_ABS_LOGIT_BIAS = 100f;

    private final int n;
    private final double temperature;
    private final double topP;
    private final int topK;
    private final double minP;
    private final double repetitionPenalty;
    private final double presencePenalty;
    private final double frequencyPenalty;
    private final Long seed;
    private final List<String> stop;
    private final List<Integer> stopTokenIds;
    private final boolean includeStopStrInOutput;
    private final boolean ignoreEos;
    private final Integer maxTokens;
    private final int minTokens;
    private final Integer logprobs;
    private final Integer promptLogprobs;
    private final boolean skipSpecialTokens;
    private final boolean spacesBetweenSpecialTokens;
    private final boolean detokenize;
    private final Map<Integer, Float> logitBias;
    private final List<Integer> allowedTokenIds;
    private final List<String> badWords;
    private final List<LogitsProcessor> logitsProcessors;
    private final StructuredOutputs structuredOutputs;
    private final Integer truncatePromptTokens;

    /** From a checked builder, with the values {@link Builder#build()} normalized. */
    private SamplingParams(Builder b, int topK, List<Integer> stopTokenIds, Map<Integer, Float> logitBias) {
        n = b.n;
        temperature = b.temperature;
        topP = b.topP;
        this.topK = topK;
        minP = b.minP;
        repetitionPenalty = b.repetitionPenalty;
        presencePenalty = b.presencePenalty;
        frequencyPenalty = b.frequencyPenalty;
        seed = b.seed;
        stop = List.copyOf(b.stop);
        this.stopTokenIds = List.copyOf(stopTokenIds);
        includeStopStrInOutput = b.includeStopStrInOutput;
        ignoreEos = b.ignoreEos;
        maxTokens = b.maxTokens;
        minTokens = b.minTokens;
        logprobs = b.logprobs;
        promptLogprobs = b.promptLogprobs;
        skipSpecialTokens = b.skipSpecialTokens;
        spacesBetweenSpecialTokens = b.spacesBetweenSpecialTokens;
        detokenize = b.detokenize;
        this.logitBias = Collections.unmodifiableMap(new LinkedHashMap<>(logitBias));
        allowedTokenIds = b.allowedTokenIds == null ? null : List.copyOf(b.allowedTokenIds);
        badWords = List.copyOf(b.badWords);
        logitsProcessors = List.copyOf(b.logitsProcessors);
        structuredOutputs = b.structuredOutputs;
        truncatePromptTokens = b.truncatePromptTokens;
    }

    /** A builder holding vLLM's defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** Greedy decoding (temperature 0) with every other parameter at its default. */
    public static SamplingParams greedy() {
        return builder().temperature(0).build();
    }

    /** A builder holding this object's values, to derive a changed copy. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.n = n;
        b.temperature = temperature;
        b.topP = topP;
        b.topK = topK;
        b.minP = minP;
        b.repetitionPenalty = repetitionPenalty;
        b.presencePenalty = presencePenalty;
        b.frequencyPenalty = frequencyPenalty;
        b.seed = seed;
        b.stop = new ArrayList<>(stop);
        b.stopTokenIds = new ArrayList<>(stopTokenIds);
        b.includeStopStrInOutput = includeStopStrInOutput;
        b.ignoreEos = ignoreEos;
        b.maxTokens = maxTokens;
        b.minTokens = minTokens;
        b.logprobs = logprobs;
        b.promptLogprobs = promptLogprobs;
        b.skipSpecialTokens = skipSpecialTokens;
        b.spacesBetweenSpecialTokens = spacesBetweenSpecialTokens;
        b.detokenize = detokenize;
        b.logitBias = new LinkedHashMap<>(logitBias);
        b.allowedTokenIds = allowedTokenIds == null ? null : new ArrayList<>(allowedTokenIds);
        b.badWords = new ArrayList<>(badWords);
        b.logitsProcessors = new ArrayList<>(logitsProcessors);
        b.structuredOutputs = structuredOutputs;
        b.truncatePromptTokens = truncatePromptTokens;
        return b;
    }

    /** Output sequences to generate for the prompt (default 1). */
    public int n() {
        return n;
    }

    /** Softmax temperature (default 1); below {@link #GREEDY_TEMPERATURE} the argmax is taken. */
    public double temperature() {
        return temperature;
    }

    /** Whether the temperature is low enough to take the argmax instead of sampling. */
    public boolean isGreedy() {
        return temperature < GREEDY_TEMPERATURE;
    }

    /** Nucleus sampling: keep the most likely tokens whose mass first reaches this (default 1 = all). */
    public double topP() {
        return topP;
    }

    /** Keep only the k most likely tokens; 0 means all (the builder also accepts vLLM's -1). */
    public int topK() {
        return topK;
    }

    /** Drop tokens less likely than this fraction of the most likely token's probability (default 0 = off). */
    public double minP() {
        return minP;
    }

    /**
     * Penalty on tokens already in the prompt or the output (default 1 = off): positive logits are
     * divided by it, negative ones multiplied (Keskar et al. 2019, as in Hugging Face and vLLM).
     */
    public double repetitionPenalty() {
        return repetitionPenalty;
    }

    /** Subtracted once from the logit of every token already in the output (default 0). */
    public double presencePenalty() {
        return presencePenalty;
    }

    /** Subtracted from a token's logit once per time it appears in the output (default 0). */
    public double frequencyPenalty() {
        return frequencyPenalty;
    }

    /** The seed that makes this request's samples reproducible, whatever else is in the batch. */
    public OptionalLong seed() {
        return seed == null ? OptionalLong.empty() : OptionalLong.of(seed);
    }

    /** Strings that end generation when produced; not part of the output unless {@link #includeStopStrInOutput()}. */
    public List<String> stop() {
        return stop;
    }

    /** Token ids that end generation when sampled, without duplicates. */
    public List<Integer> stopTokenIds() {
        return stopTokenIds;
    }

    /** Whether a matched stop string stays in the output text (default false). */
    public boolean includeStopStrInOutput() {
        return includeStopStrInOutput;
    }

    /** Whether to keep generating after the end-of-sequence token (default false). */
    public boolean ignoreEos() {
        return ignoreEos;
    }

    /** Most tokens to generate per sequence (default 16); empty means until the context is full. */
    public OptionalInt maxTokens() {
        return maxTokens == null ? OptionalInt.empty() : OptionalInt.of(maxTokens);
    }

    /** Tokens to generate before end-of-sequence and stop token ids may be sampled (default 0). */
    public int minTokens() {
        return minTokens;
    }

    /**
     * When present, each generated token comes with its logprob and rank and with this many most
     * likely alternatives (0 to {@link #MAX_LOGPROBS}).
     */
    public OptionalInt logprobs() {
        return logprobs == null ? OptionalInt.empty() : OptionalInt.of(logprobs);
    }

    /** Like {@link #logprobs()}, for every prompt token after the first. */
    public OptionalInt promptLogprobs() {
        return promptLogprobs == null ? OptionalInt.empty() : OptionalInt.of(promptLogprobs);
    }

    /** Whether special tokens are left out of the decoded text (default true). */
    public boolean skipSpecialTokens() {
        return skipSpecialTokens;
    }

    /** Whether decoded special tokens are separated by spaces (default true). */
    public boolean spacesBetweenSpecialTokens() {
        return spacesBetweenSpecialTokens;
    }

    /**
     * Whether the output is decoded to text (default true), as vLLM's {@code detokenize}: without
     * it the outputs carry token ids and empty text, and no request waits for the tokenizer (stop
     * strings then cannot be given).
     */
    public boolean detokenize() {
        return detokenize;
    }

    /** Added to the logits of the given token ids before sampling, each within plus or minus 100. */
    public Map<Integer, Float> logitBias() {
        return logitBias;
    }

    /** When present, only these token ids may be sampled. */
    /**
     * Keep only the last k tokens of the prompt (-1: as many as the model's length leaves room for
     * with one output token), as vLLM's {@code truncate_prompt_tokens}; empty: refuse a prompt too long.
     */
    public OptionalInt truncatePromptTokens() {
        return truncatePromptTokens == null ? OptionalInt.empty() : OptionalInt.of(truncatePromptTokens);
    }

    /** What the output must be (a JSON schema, JSON, a regex, a choice), if constrained. */
    public Optional<StructuredOutputs> structuredOutputs() {
        return Optional.ofNullable(structuredOutputs);
    }

    public Optional<List<Integer>> allowedTokenIds() {
        return Optional.ofNullable(allowedTokenIds);
    }

    /**
     * Words the output may not contain, as vLLM's {@code bad_words}: each word's tokens (as it is
     * written at the start of a text, and after a space) may not all be drawn in a row; the last of
     * them is masked wherever the output already ends with the others. Matched on token ids, so a
     * word the model spells with other tokens is not caught.
     */
    public List<String> badWords() {
        return badWords;
    }

    /** The request's own logits processors, applied in order at each step ({@link LogitsProcessor}); empty for none. */
    public List<LogitsProcessor> logitsProcessors() {
        return logitsProcessors;
    }

    /**
     * Checks every token id this request names (stop token ids, logit bias keys, allowed token
     * ids) against a vocabulary of {@code vocabSize} ids.
     *
     * @throws InvalidRequestException naming the first field that holds an id outside {@code [0, vocabSize)}
     */
    public void validateTokenIds(int vocabSize) {
        if (vocabSize <= 0) {
            throw new IllegalArgumentException("vocabulary size must be positive, got " + vocabSize);
        }
        requireInVocabulary("stopTokenIds", stopTokenIds, vocabSize);
        requireInVocabulary("logitBias", logitBias.keySet(), vocabSize);
        if (allowedTokenIds != null) {
            requireInVocabulary("allowedTokenIds", allowedTokenIds, vocabSize);
        }
    }

    private static void requireInVocabulary(String field, Collection<Integer> ids, int vocabSize) {
        for (int id : ids) {
            if (id >= vocabSize) {
                throw new InvalidRequestException(field, field + " holds token id " + id
                        + ", outside the vocabulary [0, " + vocabSize + ")");
            }
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SamplingParams p
                && n == p.n && Double.compare(temperature, p.temperature) == 0 && Double.compare(topP, p.topP) == 0
                && topK == p.topK && Double.compare(minP, p.minP) == 0
                && Double.compare(repetitionPenalty, p.repetitionPenalty) == 0
                && Double.compare(presencePenalty, p.presencePenalty) == 0
                && Double.compare(frequencyPenalty, p.frequencyPenalty) == 0
                && Objects.equals(seed, p.seed) && stop.equals(p.stop) && stopTokenIds.equals(p.stopTokenIds)
                && includeStopStrInOutput == p.includeStopStrInOutput && ignoreEos == p.ignoreEos
                && Objects.equals(maxTokens, p.maxTokens) && minTokens == p.minTokens
                && Objects.equals(logprobs, p.logprobs) && Objects.equals(promptLogprobs, p.promptLogprobs)
                && skipSpecialTokens == p.skipSpecialTokens && spacesBetweenSpecialTokens == p.spacesBetweenSpecialTokens
                && detokenize == p.detokenize
                && logitBias.equals(p.logitBias) && Objects.equals(allowedTokenIds, p.allowedTokenIds) && badWords.equals(p.badWords)
                && logitsProcessors.equals(p.logitsProcessors)
                && Objects.equals(structuredOutputs, p.structuredOutputs) && Objects.equals(truncatePromptTokens, p.truncatePromptTokens);
    }

    @Override
    public int hashCode() {
        return Objects.hash(n, temperature, topP, topK, minP, repetitionPenalty, presencePenalty, frequencyPenalty,
                seed, stop, stopTokenIds, includeStopStrInOutput, ignoreEos, maxTokens, minTokens, logprobs,
                promptLogprobs, skipSpecialTokens, spacesBetweenSpecialTokens, detokenize, logitBias, allowedTokenIds, badWords, logitsProcessors, structuredOutputs, truncatePromptTokens);
    }

    @Override
    public String toString() {
        return "SamplingParams[n=" + n + ", temperature=" + temperature + ", topP=" + topP + ", topK=" + topK
                + ", minP=" + minP + ", repetitionPenalty=" + repetitionPenalty + ", presencePenalty=" + presencePenalty
                + ", frequencyPenalty=" + frequencyPenalty + ", seed=" + seed + ", stop=" + stop
                + ", stopTokenIds=" + stopTokenIds + ", includeStopStrInOutput=" + includeStopStrInOutput
                + ", ignoreEos=" + ignoreEos + ", maxTokens=" + maxTokens + ", minTokens=" + minTokens
                + ", logprobs=" + logprobs + ", promptLogprobs=" + promptLogprobs
                + ", skipSpecialTokens=" + skipSpecialTokens + ", spacesBetweenSpecialTokens=" + spacesBetweenSpecialTokens
                + ", detokenize=" + detokenize
                + ", logitBias=" + logitBias + ", allowedTokenIds=" + allowedTokenIds
                + (badWords.isEmpty() ? "" : ", badWords=" + badWords)
                + (logitsProcessors.isEmpty() ? "" : ", logitsProcessors=" + logitsProcessors.size())
                + (structuredOutputs == null ? "" : ", structuredOutputs=" + structuredOutputs)
                + (truncatePromptTokens == null ? "" : ", truncatePromptTokens=" + truncatePromptTokens) + "]";
    }

    /**
     * Collects sampling parameters; starts at vLLM's defaults. Setters that take a boxed value
     * accept {@code null} for "not set", as a JSON {@code null} would mean. Not thread-safe.
     */
    public static final class Builder {
        private int n = 1;
        private double temperature = 1.0;
        private double topP = 1.0;
        private int topK = 0;
        private double minP = 0.0;
        private double repetitionPenalty = 1.0;
        private double presencePenalty = 0.0;
        private double frequencyPenalty = 0.0;
        private Long seed;
        private List<String> stop = new ArrayList<>();
        private List<Integer> stopTokenIds = new ArrayList<>();
        private boolean includeStopStrInOutput;
        private boolean ignoreEos;
        private Integer maxTokens = 16;
        private int minTokens;
        private Integer logprobs;
        private Integer promptLogprobs;
        private boolean skipSpecialTokens = true;
        private boolean spacesBetweenSpecialTokens = true;
        private boolean detokenize = true;
        private Map<Integer, Float> logitBias = new LinkedHashMap<>();
        private List<Integer> allowedTokenIds;
        private List<String> badWords = new ArrayList<>();
        private List<LogitsProcessor> logitsProcessors = new ArrayList<>();
        private StructuredOutputs structuredOutputs;
        private Integer truncatePromptTokens;

        private Builder() {
        }

        /** See {@link SamplingParams#n()}; 1 to {@link #MAX_N}, and 1 when greedy. */
        public Builder n(int n) {
            this.n = n;
            return this;
        }

        /** See {@link SamplingParams#temperature()}; 0 to {@link #MAX_TEMPERATURE}. */
        public Builder temperature(double temperature) {
            this.temperature = temperature;
            return this;
        }

        /** See {@link SamplingParams#topP()}; in (0, 1]. */
        public Builder topP(double topP) {
            this.topP = topP;
            return this;
        }

        /** See {@link SamplingParams#topK()}; 0 or -1 disables it. */
        public Builder topK(int topK) {
            this.topK = topK;
            return this;
        }

        /** See {@link SamplingParams#minP()}; in [0, 1]. */
        public Builder minP(double minP) {
            this.minP = minP;
            return this;
        }

        /** See {@link SamplingParams#repetitionPenalty()}; finite and above 0. */
        public Builder repetitionPenalty(double repetitionPenalty) {
            this.repetitionPenalty = repetitionPenalty;
            return this;
        }

        /** See {@link SamplingParams#presencePenalty()}; in [-2, 2]. */
        public Builder presencePenalty(double presencePenalty) {
            this.presencePenalty = presencePenalty;
            return this;
        }

        /** See {@link SamplingParams#frequencyPenalty()}; in [-2, 2]. */
        public Builder frequencyPenalty(double frequencyPenalty) {
            this.frequencyPenalty = frequencyPenalty;
            return this;
        }

        /** See {@link SamplingParams#seed()}. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** See {@link SamplingParams#seed()}; {@code null} for none. */
        public Builder seed(Long seed) {
            this.seed = seed;
            return this;
        }

        /** See {@link SamplingParams#stop()}; at most {@link #MAX_STOP_STRINGS}, none empty. */
        public Builder stop(String... stop) {
            return stop(Arrays.asList(stop));
        }

        /** See {@link SamplingParams#stop()}; {@code null} for none. */
        public Builder stop(List<String> stop) {
            this.stop = stop == null ? new ArrayList<>() : new ArrayList<>(stop);
            return this;
        }

        /** See {@link SamplingParams#stopTokenIds()}. */
        public Builder stopTokenIds(int... stopTokenIds) {
            return stopTokenIds(Arrays.stream(stopTokenIds).boxed().toList());
        }

        /** See {@link SamplingParams#stopTokenIds()}; {@code null} for none. */
        public Builder stopTokenIds(List<Integer> stopTokenIds) {
            this.stopTokenIds = stopTokenIds == null ? new ArrayList<>() : new ArrayList<>(stopTokenIds);
            return this;
        }

        /** See {@link SamplingParams#includeStopStrInOutput()}. */
        public Builder includeStopStrInOutput(boolean include) {
            this.includeStopStrInOutput = include;
            return this;
        }

        /** See {@link SamplingParams#ignoreEos()}. */
        public Builder ignoreEos(boolean ignoreEos) {
            this.ignoreEos = ignoreEos;
            return this;
        }

        /** See {@link SamplingParams#maxTokens()}; at least 1, or {@code null} for "until the context is full". */
        public Builder maxTokens(Integer maxTokens) {
            this.maxTokens = maxTokens;
            return this;
        }

        /** See {@link SamplingParams#minTokens()}; 0 to {@code maxTokens}. */
        public Builder minTokens(int minTokens) {
            this.minTokens = minTokens;
            return this;
        }

        /** See {@link SamplingParams#logprobs()}; 0 to {@link #MAX_LOGPROBS}, or {@code null} for none. */
        public Builder logprobs(Integer logprobs) {
            this.logprobs = logprobs;
            return this;
        }

        /** See {@link SamplingParams#promptLogprobs()}; 0 to {@link #MAX_LOGPROBS}, or {@code null} for none. */
        public Builder promptLogprobs(Integer promptLogprobs) {
            this.promptLogprobs = promptLogprobs;
            return this;
        }

        /** See {@link SamplingParams#skipSpecialTokens()}. */
        public Builder skipSpecialTokens(boolean skip) {
            this.skipSpecialTokens = skip;
            return this;
        }

        /** See {@link SamplingParams#spacesBetweenSpecialTokens()}. */
        public Builder spacesBetweenSpecialTokens(boolean spaces) {
            this.spacesBetweenSpecialTokens = spaces;
            return this;
        }

        /** See {@link SamplingParams#detokenize()}. */
        public Builder detokenize(boolean detokenize) {
            this.detokenize = detokenize;
            return this;
        }

        /** See {@link SamplingParams#logitBias()}; biases beyond plus or minus 100 are clamped; {@code null} for none. */
        public Builder logitBias(Map<Integer, Float> logitBias) {
            this.logitBias = logitBias == null ? new LinkedHashMap<>() : new LinkedHashMap<>(logitBias);
            return this;
        }

        /**
         * What the output must be, as vLLM's {@code structured_outputs} (null: free). Such requests
         * are sampled on the host, their logits masked at each step.
         */
        public Builder structuredOutputs(StructuredOutputs structuredOutputs) {
            this.structuredOutputs = structuredOutputs;
            return this;
        }

        /** See {@link SamplingParams#truncatePromptTokens()}: a positive k, or -1. */
        public Builder truncatePromptTokens(int k) {
            this.truncatePromptTokens = k;
            return this;
        }

        /** See {@link SamplingParams#allowedTokenIds()}; not empty, or {@code null} for no restriction. */
        public Builder allowedTokenIds(List<Integer> allowedTokenIds) {
            this.allowedTokenIds = allowedTokenIds == null ? null : new ArrayList<>(allowedTokenIds);
            return this;
        }

        /** See {@link SamplingParams#badWords()}; at most {@link #MAX_BAD_WORDS}, none blank; {@code null} for none. */
        public Builder badWords(List<String> badWords) {
            this.badWords = badWords == null ? new ArrayList<>() : new ArrayList<>(badWords);
            return this;
        }

        /** See {@link SamplingParams#logitsProcessors()}; {@code null} for none. */
        public Builder logitsProcessors(List<LogitsProcessor> logitsProcessors) {
            this.logitsProcessors = logitsProcessors == null ? new ArrayList<>() : new ArrayList<>(logitsProcessors);
            if (this.logitsProcessors.contains(null)) throw new InvalidRequestException("logitsProcessors", "a logits processor is null");
            return this;
        }

        /**
         * Checks every value and returns the parameters. Normalizes as vLLM does: top-k -1 becomes 0,
         * duplicate stop token ids are dropped, logit biases are clamped to plus or minus 100.
         *
         * @throws InvalidRequestException naming the first field whose value is out of range
         */
        public SamplingParams build() {
            requireInRange("n", n, 1, MAX_N);
            if (truncatePromptTokens != null && truncatePromptTokens < 1 && truncatePromptTokens != -1) {
                throw invalid("truncatePromptTokens", "must be a positive number of tokens, or -1", truncatePromptTokens);
            }
            if (!(temperature >= 0 && temperature <= MAX_TEMPERATURE)) {
                throw invalid("temperature", "must be a number in [0, " + MAX_TEMPERATURE + "]", temperature);
            }
            if (temperature < GREEDY_TEMPERATURE && n > 1) {
                throw invalid("n", "must be 1 when sampling greedily (temperature 0)", n);
            }
            if (!(topP > 0 && topP <= 1)) {
                throw invalid("topP", "must be in (0, 1]", topP);
            }
            if (topK < -1) {
                throw invalid("topK", "must be 0 or -1 (disabled) or at least 1", topK);
            }
            if (!(minP >= 0 && minP <= 1)) {
                throw invalid("minP", "must be in [0, 1]", minP);
            }
            if (!(repetitionPenalty > 0 && Double.isFinite(repetitionPenalty))) {
                throw invalid("repetitionPenalty", "must be a finite number greater than 0", repetitionPenalty);
            }
            requirePenalty("presencePenalty", presencePenalty);
            requirePenalty("frequencyPenalty", frequencyPenalty);
            if (maxTokens != null && maxTokens < 1) {
                throw invalid("maxTokens", "must be at least 1", maxTokens);
            }
            if (minTokens < 0) {
                throw invalid("minTokens", "must be at least 0", minTokens);
            }
            if (maxTokens != null && minTokens > maxTokens) {
                throw invalid("minTokens", "must not exceed maxTokens=" + maxTokens, minTokens);
            }
            if (logprobs != null) {
                requireInRange("logprobs", logprobs, 0, MAX_LOGPROBS);
            }
            if (promptLogprobs != null) {
                requireInRange("promptLogprobs", promptLogprobs, 0, MAX_LOGPROBS);
            }
            checkStopStrings();
            if (!detokenize && !stop.isEmpty()) {
                throw new InvalidRequestException("stop", "stop strings are matched in the decoded text; they need detokenize");
            }
            List<Integer> distinctStopIds = List.copyOf(new LinkedHashSet<>(requireTokenIds("stopTokenIds", stopTokenIds)));
            requireTokenIds("logitBias", logitBias.keySet());
            if (allowedTokenIds != null) {
                if (allowedTokenIds.isEmpty()) {
                    throw new InvalidRequestException("allowedTokenIds",
                            "allowedTokenIds must not be empty; leave it unset to allow every token");
                }
                requireTokenIds("allowedTokenIds", allowedTokenIds);
            }
            checkBadWords();
            return new SamplingParams(this, topK == -1 ? 0 : topK, distinctStopIds, clampedLogitBias());
        }

        private void checkBadWords() {
            if (badWords.size() > MAX_BAD_WORDS) {
                throw invalid("badWords", "may hold at most " + MAX_BAD_WORDS + " words", badWords.size() + " words");
            }
            for (String word : badWords) {
                if (word == null || word.isBlank()) throw new InvalidRequestException("badWords", "badWords cannot contain a blank or null word");
                if (word.length() > MAX_BAD_WORD_LENGTH) {
                    throw invalid("badWords", "words may be at most " + MAX_BAD_WORD_LENGTH + " characters long", "one of " + word.length());
                }
            }
        }

        private void checkStopStrings() {
            if (stop.size() > MAX_STOP_STRINGS) {
                throw invalid("stop", "may hold at most " + MAX_STOP_STRINGS + " strings", stop.size() + " strings");
            }
            for (String s : stop) {
                if (s == null || s.isEmpty()) {
                    throw new InvalidRequestException("stop", "stop cannot contain an empty or null string");
                }
                if (s.length() > MAX_STOP_STRING_LENGTH) {
                    throw invalid("stop", "strings may be at most " + MAX_STOP_STRING_LENGTH + " characters long",
                            "one of " + s.length());
                }
            }
        }

        private Map<Integer, Float> clampedLogitBias() {
            Map<Integer, Float> clamped = new LinkedHashMap<>();
            logitBias.forEach((id, bias) -> {
                if (bias == null || bias.isNaN()) {
                    throw invalid("logitBias", "must map each token id to a number", "token " + id + " -> " + bias);
                }
                clamped.put(id, Math.clamp(bias, -MAX_ABS_LOGIT_BIAS, MAX_ABS_LOGIT_BIAS));
            });
            return clamped;
        }

        private static <C extends Collection<Integer>> C requireTokenIds(String field, C ids) {
            for (Integer id : ids) {
                if (id == null || id < 0) {
                    throw invalid(field, "must hold non-negative token ids", id);
                }
            }
            return ids;
        }

        private static void requireInRange(String field, int value, int min, int max) {
            if (value < min || value > max) {
                throw invalid(field, "must be in [" + min + ", " + max + "]", value);
            }
        }

        private static void requirePenalty(String field, double value) {
            if (!(value >= -2 && value <= 2)) {
                throw invalid(field, "must be in [-2, 2]", value);
            }
        }

        private static InvalidRequestException invalid(String field, String requirement, Object value) {
            return new InvalidRequestException(field, field + " " + requirement + ", got " + value);
        }
    }
}
