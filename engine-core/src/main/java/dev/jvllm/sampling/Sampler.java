package dev.jvllm.sampling;

import dev.jvllm.InvalidRequestException;
import dev.jvllm.SamplingParams;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.random.RandomGenerator;
import java.util.stream.IntStream;

/**
 * Chooses the next token of each sequence from its row of logits, in vLLM v1's order:
 * <ol>
 *   <li>allowed token ids, min-tokens masking of stop and end-of-sequence ids, logit bias;</li>
 *   <li>repetition penalty over prompt and output, frequency and presence penalties over the output;</li>
 *   <li>the argmax when the temperature is 0 (ties to the lowest id); otherwise temperature, then
 *       min-p, top-k and top-p, then one draw from the softmax with the sequence's own generator.</li>
 * </ol>
 * Logprobs, when asked for, come from the log-softmax of the logits as the model produced them,
 * before any of these steps (vLLM's default {@code logprobs_mode}, {@code raw_logprobs}).
 *
 * <p>Each logits row is used as scratch space and holds no meaningful values afterwards. The
 * sampler keeps no state of its own: distinct sequences may be sampled from several threads.
 */
public final class Sampler {

    /**
     * Samples one token for each sequence and appends it to that sequence's state.
     *
     * @param logits {@code logits[i]} is the row of {@code sequences.get(i)}, one float per vocabulary entry
     * @return the chosen tokens, in the order of {@code sequences}
     */
    public List<SampledToken> sample(List<SequenceSamplingState> sequences, float[][] logits) {
        if (logits.length != sequences.size()) {
            throw new IllegalArgumentException(sequences.size() + " sequences but " + logits.length + " logits rows");
        }
        List<SampledToken> sampled = new ArrayList<>(sequences.size());
        for (int i = 0; i < logits.length; i++) {
            sampled.add(sample(sequences.get(i), logits[i]));
        }
        return sampled;
    }

    /**
     * Whether the token {@link #sample} would choose for {@code sequence} is the plain argmax of its
     * logits row: greedy, with no constraint, bias or penalty that changes the row and no logprobs
     * to report. The engine then lets the backend find the argmax where the logits are
     * ({@link dev.jvllm.spi.Backend#argmaxRows}) instead of copying the row back.
     */
    public boolean choosesArgmax(SequenceSamplingState sequence) {
        return sequence.params().isGreedy() && samplesPlainly(sequence);
    }

    /**
     * Whether {@link #sample} would draw {@code sequence}'s token from its logits row with nothing
     * but the temperature, min-p, top-k and top-p ({@link #drawPlainly}): no constraint, bias or
     * penalty, no logprobs. A backend can then draw it where the logits are, given the uniform
     * number ({@link #nextUniform}) the draw takes; greedy rows ({@link #choosesArgmax}) too.
     */
    public boolean samplesPlainly(SequenceSamplingState sequence) {
        SamplingParams params = sequence.params();
        return params.logprobs().isEmpty() && sequence.allowedTokenIds() == null && sequence.constraint() == null
                && !sequence.bansSequences() && params.logitsProcessors().isEmpty()
                && sequence.tokensMaskedByMinTokens().length == 0 && sequence.biasedTokenIds().length == 0
                && sequence.promptAndOutputTokens() == null
                && params.frequencyPenalty() == 0 && params.presencePenalty() == 0;
    }

    /** The uniform number in [0, 1) the sequence's next draw takes, from its own generator. */
    public double nextUniform(SequenceSamplingState sequence) {
        return sequence.generator().nextDouble();
    }

    /**
     * The token {@link #sample} draws for a row that {@link #samplesPlainly}, with the uniform
     * number given: the weights {@code exp((x - max) / temperature)}, min-p, top-k, top-p, then the
     * first token by id whose cumulative weight passes {@code uniform} of the total. The row is
     * scratch. The argmax where the temperature is 0 or nothing is finite to weigh.
     */
    public static int drawPlainly(float[] logits, float temperature, int topK, double topP, float minP, double uniform) {
        float max = Float.NEGATIVE_INFINITY;
        for (float x : logits) {
            if (x > max) {
                max = x;
            }
        }
        if (temperature == 0 || max == Float.NEGATIVE_INFINITY || max == Float.POSITIVE_INFINITY) {
            return LogitsProcessors.argmax(logits); // nothing finite to weigh: every token masked, or an overflow
        }
        return drawWeighted(logits, max, temperature, topK, topP, minP, uniform);
    }

    /** {@link #drawPlainly} once the row's finite maximum is known. */
    private static int drawWeighted(float[] logits, float max, float temperature, int topK, double topP, float minP,
                                    double uniform) {
        toWeights(logits, max, temperature);
        if (minP > 0) {
            DistributionTruncation.applyMinP(logits, minP);
        }
        if (topK > 0) {
            DistributionTruncation.applyTopK(logits, topK);
        }
        if (topP < 1) {
            DistributionTruncation.applyTopP(logits, topP);
        }
        return DistributionTruncation.draw(logits, uniform);
    }

    /**
     * Appends {@code tokenId}, found by a backend where the logits are: the argmax for a sequence
     * that {@link #choosesArgmax}, or the token drawn for one that {@link #samplesPlainly}.
     */
    public SampledToken acceptArgmax(SequenceSamplingState sequence, int tokenId) {
        if (tokenId < 0 || tokenId >= sequence.vocabSize()) {
            throw new IllegalArgumentException("argmax token " + tokenId + " is outside the vocabulary of "
                    + sequence.vocabSize());
        }
        sequence.append(tokenId, Optional.empty());
        return new SampledToken(tokenId, Optional.empty());
    }

    /** Samples one token for {@code sequence} from its row of {@code logits} and appends it to the state. */
    public SampledToken sample(SequenceSamplingState sequence, float[] logits) {
        requireVocabularyWidth(sequence, logits);
        SamplingParams params = sequence.params();
        float[] rawLogits = params.logprobs().isPresent() ? logits.clone() : null;
        processLogits(sequence, logits);
        int tokenId = params.isGreedy()
                ? LogitsProcessors.argmax(logits)
                : sampleFromSoftmax(logits, params, sequence.generator());
        // Both draws fall back to the first id when nothing is left: a masked token is never drawn.
        if (logits[tokenId] == Float.NEGATIVE_INFINITY) throw new NothingToDrawException(sequence.outputLength());
        Optional<TokenLogprobs> logprobs = rawLogits == null
                ? Optional.empty()
                : Optional.of(LogSoftmax.tokenLogprobs(rawLogits, tokenId, params.logprobs().getAsInt()));
        sequence.append(tokenId, logprobs);
        return new SampledToken(tokenId, logprobs);
    }

    /**
     * Logprobs of prompt tokens, for {@link SamplingParams#promptLogprobs()}. The logits at prompt
     * position {@code p} predict the token at {@code p + 1}, so the first prompt token has none.
     * Works chunk by chunk: {@code logitsRows[i]} holds the logits at position {@code firstPosition + i}.
     *
     * @return for each row, the logprobs of prompt token {@code firstPosition + i + 1}
     */
    public List<TokenLogprobs> promptLogprobs(int[] promptTokenIds, int firstPosition, float[][] logitsRows, int topN) {
        if (firstPosition < 0 || firstPosition + logitsRows.length > promptTokenIds.length - 1) {
            throw new IllegalArgumentException("rows for positions [" + firstPosition + ", "
                    + (firstPosition + logitsRows.length) + ") do not each precede a token of a "
                    + promptTokenIds.length + "-token prompt");
        }
        if (topN < 0) {
            throw new IllegalArgumentException("topN must not be negative, got " + topN);
        }
        List<TokenLogprobs> logprobs = new ArrayList<>(logitsRows.length);
        for (int i = 0; i < logitsRows.length; i++) {
            int tokenId = promptTokenIds[firstPosition + i + 1];
            if (tokenId < 0 || tokenId >= logitsRows[i].length) {
                throw new InvalidRequestException("promptTokenIds", "promptTokenIds holds token id " + tokenId
                        + ", outside the vocabulary [0, " + logitsRows[i].length + ")");
            }
            logprobs.add(LogSoftmax.tokenLogprobs(logitsRows[i], tokenId, topN));
        }
        return logprobs;
    }

    /** Steps 1 and 2: the constraints and penalties that can change even the argmax. */
    void processLogits(SequenceSamplingState sequence, float[] logits) {
        SamplingParams params = sequence.params();
        if (!params.logitsProcessors().isEmpty()) {
            for (dev.jvllm.LogitsProcessor processor : params.logitsProcessors()) {
                try {
                    processor.process(sequence.outputTokenIds(), logits);
                } catch (StackOverflowError e) {
                    throw new LogitsProcessorFailedException(e);
                } catch (VirtualMachineError e) {
                    throw e;  // out of memory: the engine's, not the request's
                } catch (Throwable e) {
                    // Errors and undeclared checked exceptions too: a processor must not stop the engine.
                    throw new LogitsProcessorFailedException(e);
                }
            }
            for (int id = 0; id < logits.length; id++) {
                if (Float.isNaN(logits[id])) throw new LogitsProcessorFailedException("wrote NaN as the logit of token " + id);
            }
        }
        if (sequence.allowedTokenIds() != null) {
            LogitsProcessors.keepOnly(logits, sequence.allowedTokenIds());
        }
        if (sequence.constraint() != null) {
            sequence.constraint().mask(logits);
        }
        LogitsProcessors.mask(logits, sequence.tokensMaskedByMinTokens());
        LogitsProcessors.mask(logits, sequence.tokensMaskedByBadWords());
        LogitsProcessors.addBias(logits, sequence.biasedTokenIds(), sequence.biases());
        if (sequence.promptAndOutputTokens() != null) {
            LogitsProcessors.applyRepetitionPenalty(logits, sequence.promptAndOutputTokens(),
                    (float) params.repetitionPenalty());
        }
        if (params.frequencyPenalty() != 0 || params.presencePenalty() != 0) {
            LogitsProcessors.applyFrequencyAndPresencePenalties(logits, sequence.outputCounts(),
                    (float) params.frequencyPenalty(), (float) params.presencePenalty());
        }
    }

    /** Step 3 for a temperature above 0: the row becomes weights, is truncated, and one token is drawn. */
    private static int sampleFromSoftmax(float[] logits, SamplingParams params, RandomGenerator generator) {
        float max = Float.NEGATIVE_INFINITY;
        for (float x : logits) {
            if (x > max) {
                max = x;
            }
        }
        if (max == Float.NEGATIVE_INFINITY || max == Float.POSITIVE_INFINITY) {
            return LogitsProcessors.argmax(logits); // nothing finite to weigh: every token masked, or an overflow
        }
        return drawWeighted(logits, max, (float) params.temperature(), params.topK(), params.topP(),
                (float) params.minP(), generator.nextDouble());
    }

    /**
     * Replaces each logit x by {@code exp((x - max) / temperature)}: the softmax of
     * {@code logits / temperature} up to its normalizer, with the largest weight exactly 1.
     * NaN and -inf logits get weight 0.
     */
    private static void toWeights(float[] logits, float max, float temperature) {
        if (logits.length < PARALLEL_WEIGHTS) {
            toWeights(logits, max, temperature, 0, logits.length);
            return;
        }
        // Each weight depends on its logit alone, so chunks on several threads give the same row:
        // a 128k vocabulary's exp calls took about 1 ms of one core, sampled decoding's largest
        // host cost at batch 1.
        int chunks = (logits.length + PARALLEL_WEIGHTS / 2 - 1) / (PARALLEL_WEIGHTS / 2);
        IntStream.range(0, chunks).parallel().forEach(c -> toWeights(logits, max, temperature,
                (int) ((long) c * logits.length / chunks), (int) ((long) (c + 1) * logits.length / chunks)));
    }

    /** Vocabularies from this size on have their weights computed in chunks on several threads. */
    private static final int PARALLEL_WEIGHTS = 32_768;

    private static void toWeights(float[] logits, float max, float temperature, int from, int to) {
        for (int i = from; i < to; i++) {
            float w = (float) Math.exp((logits[i] - max) / temperature);
            logits[i] = w > 0 ? w : 0f;
        }
    }

    private static void requireVocabularyWidth(SequenceSamplingState sequence, float[] logits) {
        if (logits.length != sequence.vocabSize()) {
            throw new IllegalArgumentException("logits row has " + logits.length + " entries, expected the vocabulary's "
                    + sequence.vocabSize());
        }
    }
}
