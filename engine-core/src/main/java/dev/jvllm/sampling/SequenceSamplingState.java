package dev.jvllm.sampling;

import dev.jvllm.InvalidRequestException;
import dev.jvllm.SamplingParams;

import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;
import java.util.random.RandomGenerator;

/**
 * What the {@link Sampler} remembers about one output sequence between steps: its request's
 * parameters, already checked against the vocabulary and turned into arrays, its random generator,
 * and the token counts the penalties need, updated as each sampled token is appended.
 *
 * <p>Create one per sequence when its request is admitted; a bad token id then fails that request
 * alone, before its logits share a batch with others. Not thread-safe: one sampling step at a time.
 */
public final class SequenceSamplingState {

    private static final int[] NO_TOKENS = new int[0];

    private final SamplingParams params;
    private final int vocabSize;
    private final RandomGenerator generator;
    /** Null when every token is allowed. */
    private final int[] allowedTokenIds;
    private final int[] biasedTokenIds;
    private final float[] biases;
    /** Stop token ids and end-of-sequence ids, masked while the output is shorter than min_tokens. */
    private final int[] stopTokenIdsWithEos;
    /** Output tokens' counts, for the frequency and presence penalties; null when both are off. */
    private final TokenCounts outputCounts;
    /** Distinct tokens of prompt and output, for the repetition penalty; null when it is off. */
    private final TokenCounts promptAndOutputTokens;
    private int outputLength;
    private double cumulativeLogprob;
    /** Null for an unconstrained output. */
    private TokenConstraint constraint;
    /** The output so far, kept only for the request's logits processors (null without them). */
    private int[] outputTokens;
    private final List<Integer> outputView = new java.util.AbstractList<>() {
        @Override
        public Integer get(int index) {
            java.util.Objects.checkIndex(index, outputLength);
            return outputTokens[index];
        }

        @Override
        public int size() {
            return outputLength;
        }
    };
    /** Token sequences the output may not complete (bad words); null when there are none. */
    private int[][] bannedSequences;
    /** The last output tokens, as many as the longest banned sequence less one, in a ring ending at {@link #outputLength}. */
    private int[] recentTokens;

    /**
     * @param params         the request's sampling parameters
     * @param promptTokenIds the prompt, for the repetition penalty
     * @param eosTokenIds    the model's end-of-sequence ids (generation_config), masked together
     *                       with the stop token ids until {@link SamplingParams#minTokens()}
     * @param vocabSize      the width of a logits row
     * @param generator      this sequence's generator, usually from {@link RandomSource#generatorFor}
     * @throws InvalidRequestException if the prompt or the parameters name a token id outside the vocabulary
     */
    public SequenceSamplingState(SamplingParams params, int[] promptTokenIds, List<Integer> eosTokenIds,
                                 int vocabSize, RandomGenerator generator) {
        params.validateTokenIds(vocabSize);
        for (int id : promptTokenIds) {
            if (id < 0 || id >= vocabSize) {
                throw new InvalidRequestException("promptTokenIds", "promptTokenIds holds token id " + id
                        + ", outside the vocabulary [0, " + vocabSize + ")");
            }
        }
        for (int id : eosTokenIds) {
            if (id < 0 || id >= vocabSize) {
                throw new IllegalArgumentException("end-of-sequence id " + id + " outside the vocabulary [0, " + vocabSize + ")");
            }
        }
        this.params = params;
        this.vocabSize = vocabSize;
        this.outputTokens = params.logitsProcessors().isEmpty() ? null : new int[16];
        this.generator = generator;
        this.allowedTokenIds = params.allowedTokenIds().map(SequenceSamplingState::toArray).orElse(null);
        Map<Integer, Float> bias = params.logitBias();
        this.biasedTokenIds = toArray(bias.keySet());
        this.biases = new float[biasedTokenIds.length];
        for (int i = 0; i < biases.length; i++) {
            biases[i] = bias.get(biasedTokenIds[i]);
        }
        // vLLM masks EOS during min_tokens even with ignore_eos; EOS cannot stop such a sequence anyway.
        Set<Integer> stopIds = new LinkedHashSet<>(params.stopTokenIds());
        stopIds.addAll(eosTokenIds);
        this.stopTokenIdsWithEos = toArray(stopIds);
        this.outputCounts = params.frequencyPenalty() != 0 || params.presencePenalty() != 0 ? new TokenCounts() : null;
        if (params.repetitionPenalty() != 1.0) {
            promptAndOutputTokens = new TokenCounts();
            for (int id : promptTokenIds) {
                promptAndOutputTokens.increment(id);
            }
        } else {
            promptAndOutputTokens = null;
        }
    }

    public SamplingParams params() {
        return params;
    }

    /** The width of a logits row this sequence accepts. */
    public int vocabSize() {
        return vocabSize;
    }

    /** Tokens sampled so far. */
    public int outputLength() {
        return outputLength;
    }

    /** Sum of the sampled tokens' logprobs; present when the request asked for {@link SamplingParams#logprobs()}. */
    public OptionalDouble cumulativeLogprob() {
        return params.logprobs().isPresent() ? OptionalDouble.of(cumulativeLogprob) : OptionalDouble.empty();
    }

    /** Records a sampled token: counts for the penalties, length for min_tokens, cumulative logprob. */
    void append(int tokenId, Optional<TokenLogprobs> logprobs) {
        outputLength++;
        if (constraint != null) {
            constraint.advance(tokenId);
        }
        if (outputCounts != null) {
            outputCounts.increment(tokenId);
        }
        if (promptAndOutputTokens != null) {
            promptAndOutputTokens.increment(tokenId);
        }
        logprobs.ifPresent(l -> cumulativeLogprob += l.token().logprob());
        if (recentTokens != null && recentTokens.length > 0) recentTokens[(outputLength - 1) % recentTokens.length] = tokenId;
        if (outputTokens != null) {
            if (outputLength > outputTokens.length) outputTokens = Arrays.copyOf(outputTokens, outputTokens.length * 2);
            outputTokens[outputLength - 1] = tokenId;
        }
    }

    /** The tokens drawn so far, read-only, for the request's logits processors. */
    List<Integer> outputTokenIds() {
        return outputView;
    }

    /**
     * Bans token sequences (a request's bad words, tokenized): the last token of each is masked
     * wherever the output ends with the ones before it (at once for a sequence of one). Set before the
     * first draw.
     *
     * @throws InvalidRequestException if a sequence is empty or names a token outside the vocabulary
     */
    public void banSequences(List<int[]> sequences) {
        if (sequences.isEmpty()) return;
        int longest = 0;
        for (int[] sequence : sequences) {
            if (sequence.length == 0) throw new InvalidRequestException("badWords", "a bad word has no tokens");
            for (int id : sequence) {
                if (id < 0 || id >= vocabSize) throw new InvalidRequestException("badWords", "a bad word's token " + id + " is outside the vocabulary");
            }
            longest = Math.max(longest, sequence.length);
        }
        bannedSequences = sequences.toArray(int[][]::new);
        recentTokens = new int[longest - 1];
    }

    /** The tokens the bad words mask at this point of the output (possibly repeated); empty when none. */
    int[] tokensMaskedByBadWords() {
        if (bannedSequences == null) return NO_TOKENS;
        int[] masked = new int[bannedSequences.length];
        int count = 0;
        outer:
        for (int[] sequence : bannedSequences) {
            int before = sequence.length - 1;
            if (before > outputLength) continue;
            for (int k = 0; k < before; k++) {
                // The k-th of the last `before` output tokens.
                int position = outputLength - before + k;
                if (recentTokens[position % recentTokens.length] != sequence[k]) continue outer;
            }
            masked[count++] = sequence[before];
        }
        return Arrays.copyOf(masked, count);
    }

    boolean bansSequences() {
        return bannedSequences != null;
    }

    /** Constrains the tokens drawn from now on (structured outputs); set before the first draw. */
    public void constrain(TokenConstraint constraint) {
        this.constraint = constraint;
    }

    TokenConstraint constraint() {
        return constraint;
    }

    RandomGenerator generator() {
        return generator;
    }

    int[] allowedTokenIds() {
        return allowedTokenIds;
    }

    int[] biasedTokenIds() {
        return biasedTokenIds;
    }

    float[] biases() {
        return biases;
    }

    /** The ids to mask now: stop and end-of-sequence ids while min_tokens is not reached, else none. */
    int[] tokensMaskedByMinTokens() {
        return outputLength < params.minTokens() ? stopTokenIdsWithEos : NO_TOKENS;
    }

    /** Null when the frequency and presence penalties are off. */
    TokenCounts outputCounts() {
        return outputCounts;
    }

    /** Null when the repetition penalty is off. */
    TokenCounts promptAndOutputTokens() {
        return promptAndOutputTokens;
    }

    private static int[] toArray(Collection<Integer> ids) {
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }
}
