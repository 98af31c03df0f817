package dev.jvllm.models;

import dev.jvllm.CompletionOutput;
import dev.jvllm.FinishReason;
import dev.jvllm.LLM;
import dev.jvllm.Logprob;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.SpeculativeConfig;
import dev.jvllm.StructuredOutputs;
import dev.jvllm.engine.DemoModel;
import dev.jvllm.engine.EngineMetrics;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative decoding by prompt lookup on the demo model: the same greedy answers in fewer steps
 * where the answer repeats its context, every limit kept exactly, each token's logprob the one the
 * model gives it at its place, and structured outputs still valid.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SpeculativeDecodingTest {

    /** Prompts whose greedy continuations repeat what they read (lists, quoted sentences) and ones that need not. */
    private static final List<String> PROMPTS = List.of(
            "The European Parliament",
            "The Commission shall adopt the measures. The Commission shall adopt the measures. The Commission shall",
            "Article 1, Article 2, Article 3, Article 4, Article 5, Article",
            "Member States shall ensure that the rules are applied. Member States shall ensure that",
            "In accordance with the procedure referred to in Article 5, the Council");

    private LLM plain;
    private LLM speculative;

    @BeforeAll
    void load() {
        plain = LLM.builder().model(DemoModel.path().toString()).device("cpu").build();
        speculative = LLM.builder().model(DemoModel.path().toString()).device("cpu")
                .speculativeConfig(SpeculativeConfig.ngram(4, 1, 3)).build();
    }

    @AfterAll
    void close() {
        plain.close();
        speculative.close();
    }

    private static SamplingParams.Builder greedy(int maxTokens) {
        return SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(maxTokens);
    }

    @Test
    void greedyAnswersAreTheSameInFewerSteps() {
        SamplingParams params = greedy(48).build();
        EngineMetrics before = speculative.metrics();
        List<RequestOutput> expected = new ArrayList<>();
        for (String prompt : PROMPTS) expected.add(plain.generate(prompt, params));
        long plainSteps = 0;
        List<RequestOutput> actual = new ArrayList<>();
        for (String prompt : PROMPTS) actual.add(speculative.generate(prompt, params));
        for (int i = 0; i < PROMPTS.size(); i++) {
            assertEquals(expected.get(i).outputs().getFirst().tokenIds(), actual.get(i).outputs().getFirst().tokenIds(), PROMPTS.get(i));
            assertEquals(expected.get(i).outputs().getFirst().text(), actual.get(i).outputs().getFirst().text());
            plainSteps += 48;
        }
        EngineMetrics after = speculative.metrics();
        long steps = after.steps() - before.steps();
        long accepted = after.acceptedDraftTokens() - before.acceptedDraftTokens();
        assertTrue(accepted > 0, "no guess was kept");
        assertTrue(after.draftTokens() - before.draftTokens() >= accepted);
        // One step a token without speculation (the prompt's step makes the first); each kept guess saves one.
        assertEquals(plainSteps - accepted, steps, "steps against tokens and kept guesses");
    }

    @Test
    void maxTokensStopStringsAndStopTokensEndTheAnswerWhereTheyWouldWithoutGuesses() {
        String prompt = PROMPTS.get(2);
        for (int maxTokens = 1; maxTokens <= 12; maxTokens++) {
            SamplingParams params = greedy(maxTokens).build();
            CompletionOutput expected = plain.generate(prompt, params).outputs().getFirst();
            CompletionOutput actual = speculative.generate(prompt, params).outputs().getFirst();
            assertEquals(maxTokens, actual.tokenIds().size());
            assertEquals(expected.tokenIds(), actual.tokenIds());
            assertEquals(FinishReason.LENGTH, actual.finishReason());
        }
        String full = plain.generate(prompt, greedy(30).build()).outputs().getFirst().text();
        // A stop string several tokens in: the answer ends before it, as without guesses.
        String stop = full.substring(full.length() / 2, full.length() / 2 + 3);
        SamplingParams stopping = greedy(30).stop(List.of(stop)).build();
        CompletionOutput expected = plain.generate(prompt, stopping).outputs().getFirst();
        CompletionOutput actual = speculative.generate(prompt, stopping).outputs().getFirst();
        assertEquals(expected.text(), actual.text());
        assertEquals(expected.tokenIds(), actual.tokenIds());
        assertEquals(stop, actual.stopReason());
        // A stop token that the answer repeats: it ends at its first occurrence.
        List<Integer> tokens = plain.generate(prompt, greedy(30).build()).outputs().getFirst().tokenIds();
        int stopToken = tokens.get(tokens.size() - 1);
        SamplingParams byToken = greedy(30).stopTokenIds(List.of(stopToken)).build();
        CompletionOutput endedPlain = plain.generate(prompt, byToken).outputs().getFirst();
        CompletionOutput ended = speculative.generate(prompt, byToken).outputs().getFirst();
        assertEquals(endedPlain.tokenIds(), ended.tokenIds());
        assertEquals(tokens.indexOf(stopToken) + 1, ended.tokenIds().size());
    }

    /**
     * Each token's logprob, with guesses, is the one the model gives it after the tokens before it:
     * the answer fed back as a prompt with prompt logprobs, without guesses, gives the same numbers.
     * A guess verified on the wrong row of logits would not.
     */
    @Test
    void sampledTokensCarryTheLogprobsOfTheirOwnPlace() {
        String prompt = PROMPTS.get(1);
        SamplingParams params = SamplingParams.builder().temperature(0.7).seed(11L).ignoreEos(true).maxTokens(40).logprobs(0).build();
        EngineMetrics before = speculative.metrics();
        CompletionOutput sampled = speculative.generate(prompt, params).outputs().getFirst();
        assertTrue(speculative.metrics().acceptedDraftTokens() > before.acceptedDraftTokens(), "no guess was kept");
        int[] promptIds = plain.tokenizer().encode(prompt, true);
        int[] whole = new int[promptIds.length + sampled.tokenIds().size()];
        System.arraycopy(promptIds, 0, whole, 0, promptIds.length);
        for (int i = 0; i < sampled.tokenIds().size(); i++) whole[promptIds.length + i] = sampled.tokenIds().get(i);
        RequestOutput teacher = plain.generate(whole, SamplingParams.builder().maxTokens(1).promptLogprobs(0).build());
        List<Map<Integer, Logprob>> promptLogprobs = teacher.promptLogprobs();
        for (int i = 0; i < sampled.tokenIds().size(); i++) {
            int token = sampled.tokenIds().get(i);
            double expected = promptLogprobs.get(promptIds.length + i).get(token).logprob();
            double actual = sampled.logprobs().get(i).get(token).logprob();
            assertEquals(expected, actual, 1e-3, "token " + i);
        }
    }

    @Test
    void structuredOutputsStayValidAndGreedyOnesTheSame() throws Exception {
        String schema = """
                {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                 "articles": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 99}, "maxItems": 6}},
                 "required": ["name", "articles"], "additionalProperties": false}""";
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        for (String prompt : PROMPTS) {
            SamplingParams sampled = SamplingParams.builder().temperature(0.8).seed(3L).maxTokens(200)
                    .structuredOutputs(StructuredOutputs.json(schema)).build();
            CompletionOutput answer = speculative.generate(prompt, sampled).outputs().getFirst();
            assertEquals(FinishReason.STOP, answer.finishReason(), answer.text());
            var document = mapper.readTree(answer.text());
            assertTrue(document.get("name").isTextual() && document.get("articles").isArray(), answer.text());

            SamplingParams greedy = greedy(200).ignoreEos(false).structuredOutputs(StructuredOutputs.json(schema)).build();
            assertEquals(plain.generate(prompt, greedy).outputs().getFirst().tokenIds(),
                    speculative.generate(prompt, greedy).outputs().getFirst().tokenIds(), prompt);
        }
    }

    /**
     * A kept guess that ends the answer (here a stop token the prompt repeats) is the last token the
     * request's sampling state sees: the cumulative logprob is the sum of the answer's tokens', and a
     * logits processor is never asked for a token after the stop token.
     */
    @Test
    void aKeptGuessThatEndsTheAnswerIsTheLastTokenTheRequestSees() {
        int[] prompt = {1, 2384, 417, 1598, 1623, 263, 975, 16, 375, 417, 1598, 1623, 263, 975, 16, 375, 417, 1598};
        List<List<Integer>> seen = new ArrayList<>();
        dev.jvllm.LogitsProcessor recording = (output, logits) -> {
            if (output.contains(417)) throw new IllegalStateException("asked for a token after the stop token: " + output);
            seen.add(List.copyOf(output));
        };
        SamplingParams params = greedy(24).stopTokenIds(List.of(417)).logprobs(1).logitsProcessors(List.of(recording)).build();
        CompletionOutput expected = plain.generate(prompt, params).outputs().getFirst();
        int plainCalls = seen.size();
        seen.clear();
        EngineMetrics before = speculative.metrics();
        CompletionOutput actual = speculative.generate(prompt, params).outputs().getFirst();
        assertEquals(expected.tokenIds(), actual.tokenIds());
        assertEquals(417, actual.tokenIds().getLast());
        assertTrue(speculative.metrics().acceptedDraftTokens() > before.acceptedDraftTokens(), "no guess was kept");
        assertEquals(expected.cumulativeLogprob(), actual.cumulativeLogprob(), 1e-3);
        double sum = 0;
        for (int i = 0; i < actual.tokenIds().size(); i++) sum += actual.logprobs().get(i).get(actual.tokenIds().get(i)).logprob();
        assertEquals(sum, actual.cumulativeLogprob(), 1e-4);
        assertEquals(plainCalls, seen.size(), "the processor is asked once a token, as without guesses");
    }
}
