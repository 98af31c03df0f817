package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.LLM;
import dev.jvllm.Logprob;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link LLMEngine#stepDeltas}, what a streaming caller steps with: at every step an unfinished
 * request's deltas, put together, are its whole output as {@link LLMEngine#step} gives it at the
 * same step (text, token ids, logprobs), only requests with something new appear, the prompt
 * logprobs come once, and a finished request's last output is the whole one.
 */
class StepDeltasTest {


    private record Sofar(StringBuilder text, List<Integer> tokens, List<Map<Integer, Logprob>> logprobs) {
        Sofar() {
            this(new StringBuilder(), new ArrayList<>(), new ArrayList<>());
        }
    }

    /**
     * The same tokens, ranks and logprobs within float rounding: the two engines' first steps may run
     * before and after the JIT compiles the CPU kernels, which round differently.
     */
    private static void assertSameLogprobs(List<Map<Integer, Logprob>> expected, List<Map<Integer, Logprob>> actual, String where) {
        assertEquals(expected.size(), actual.size(), where);
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(expected.get(i).keySet(), actual.get(i).keySet(), where);
            for (var e : expected.get(i).entrySet()) {
                Logprob a = actual.get(i).get(e.getKey());
                assertEquals(e.getValue().rank(), a.rank(), where);
                assertEquals(e.getValue().logprob(), a.logprob(), 1e-4, where);
            }
        }
    }

    @Test
    void deltasPutTogetherAreTheWholeOutputAtEveryStep() {
        SamplingParams sampled = SamplingParams.builder().temperature(0.8).seed(5L).n(2).maxTokens(40).logprobs(2).promptLogprobs(1)
                .stop(List.of(" the", ".")).build();
        SamplingParams greedy = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(30).build();
        try (LLM whole = LLM.builder().model(DemoModel.path().toString()).device("cpu").build();
             LLM deltas = LLM.builder().model(DemoModel.path().toString()).device("cpu").build()) {
            for (LLM llm : List.of(whole, deltas)) {
                llm.engine().addRequest("sampled", "The European Parliament", sampled);
                llm.engine().addRequest("greedy", "The Commission", greedy);
            }
            Map<String, Sofar> sofar = new HashMap<>();
            Map<String, Integer> promptLogprobsSeen = new HashMap<>();
            int steps = 0, deltasSeen = 0;
            while (whole.engine().hasUnfinishedRequests()) {
                assertTrue(deltas.engine().hasUnfinishedRequests());
                Map<String, RequestOutput> expected = new HashMap<>();
                for (RequestOutput o : whole.engine().step()) expected.put(o.requestId(), o);
                for (RequestOutput delta : deltas.engine().stepDeltas()) {
                    RequestOutput full = expected.remove(delta.requestId());
                    assertNotNull(full, "a delta for a request that made no progress: " + delta.requestId());
                    if (delta.promptLogprobs() != null && !delta.finished()) promptLogprobsSeen.merge(delta.requestId(), 1, Integer::sum);
                    if (delta.finished()) {
                        assertEquals(full.outputs().size(), delta.outputs().size());
                        for (int i = 0; i < full.outputs().size(); i++) {
                            CompletionOutput a = full.outputs().get(i), b = delta.outputs().get(i);
                            assertEquals(a.text(), b.text(), "a finished request's last output is its whole output");
                            assertEquals(a.tokenIds(), b.tokenIds());
                            assertEquals(a.finishReason(), b.finishReason());
                            assertSameLogprobs(a.logprobs() == null ? List.of() : a.logprobs(), b.logprobs() == null ? List.of() : b.logprobs(), "end");
                        }
                        continue;
                    }
                    deltasSeen++;
                    for (CompletionOutput piece : delta.outputs()) {
                        Sofar s = sofar.computeIfAbsent(delta.requestId() + "/" + piece.index(), k -> new Sofar());
                        s.text().append(piece.text());
                        s.tokens().addAll(piece.tokenIds());
                        if (piece.logprobs() != null) s.logprobs().addAll(piece.logprobs());
                        CompletionOutput target = full.outputs().stream().filter(c -> c.index() == piece.index()).findFirst().orElseThrow();
                        assertEquals(target.text(), s.text().toString(), "step " + steps);
                        assertEquals(target.tokenIds(), s.tokens(), "step " + steps);
                        assertSameLogprobs(target.logprobs() == null ? List.of() : target.logprobs(), s.logprobs(), "step " + steps);
                        assertEquals(target.finishReason(), piece.finishReason());
                    }
                }
                // What the whole outputs hold and no delta did is a request with nothing new at this step.
                for (RequestOutput left : expected.values()) {
                    for (CompletionOutput c : left.outputs()) {
                        Sofar s = sofar.get(left.requestId() + "/" + c.index());
                        assertEquals(c.tokenIds().size(), s == null ? 0 : s.tokens().size(), "progress without a delta: " + left.requestId());
                    }
                }
                steps++;
            }
            assertFalse(deltas.engine().hasUnfinishedRequests());
            assertTrue(deltasSeen > 20, deltasSeen + " deltas over " + steps + " steps");
            assertEquals(1, promptLogprobsSeen.get("sampled"), "the prompt logprobs come in the first delta only (and in the whole output at the end)");
            assertNull(promptLogprobsSeen.get("greedy"));
            whole.engine().checkNoLeaks();
            deltas.engine().checkNoLeaks();
        }
    }

    /**
     * A stop string that the text completes before min_tokens neither ends nor cuts it (as vLLM): the
     * streamed pieces add up to the final text. It used to be cut, and the next delta read past the end.
     */
    @Test
    void aStopStringBeforeMinTokensLeavesTheStreamWhole() {
        int[] prompt = {1, 67, 282, 274, 261, 282, 274, 261, 282, 274, 261, 282, 375, 417, 1598, 1623, 263, 975, 16, 375,
                417, 1598, 1623, 263, 975, 16, 375, 417, 1598};
        SamplingParams params = SamplingParams.builder().temperature(0).repetitionPenalty(1.3).stop(List.of("s "))
                .stopTokenIds(List.of(263)).minTokens(8).maxTokens(30).ignoreEos(true).build();
        try (LLM llm = LLM.builder().model(DemoModel.path().toString()).device("cpu").build()) {
            String whole = llm.generate(prompt, params).outputs().getFirst().text();
            llm.engine().addRequest("r", prompt, params);
            StringBuilder streamed = new StringBuilder();
            RequestOutput last = null;
            while (llm.engine().hasUnfinishedRequests()) {
                for (RequestOutput delta : llm.engine().stepDeltas()) {
                    if (delta.finished()) {
                        last = delta;
                    } else {
                        streamed.append(delta.outputs().getFirst().text());
                    }
                }
            }
            assertNotNull(last);
            assertEquals(whole, last.outputs().getFirst().text());
            assertTrue(whole.startsWith(streamed.toString()), "streamed '" + streamed + "' then ended with '" + whole + "'");
        }
    }
}
