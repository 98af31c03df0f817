package dev.jvllm.models;

import dev.jvllm.FinishReason;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestFailedException;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.StructuredOutputs;
import dev.jvllm.engine.LLMEngine;
import dev.jvllm.structured.Regex;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A structured output whose automaton passes its limit of states fails its own request with a
 * {@link RequestFailedException}, rather than end with "stop" as if it matched; the batch's other
 * requests run on untouched, and the pattern's spent automaton is not handed to later requests.
 * On the demo model (byte-level BPE, 4 096 tokens) the pattern below reaches the limit within about
 * ten tokens: a deterministic state is where each of four vowels stands among the last 25
 * characters, and each state's mask walks every token from there, making a state for most.
 */
class StructuredOutputsLimitTest {

    private static final Path DEMO = Files.isDirectory(Path.of("../models/jvllm-demo")) ? Path.of("../models/jvllm-demo")
            : Path.of("models/jvllm-demo");
    private static final String EXPLODING = ".*(a.{24}|e.{24}|i.{24}|o.{24})";
    /** The same language as a grammar's rule: its automaton passes the same limit. */
    private static final String EXPLODING_GRAMMAR = "root ::= [^\\n]* (\"a\" [^\\n]{24} | \"e\" [^\\n]{24} | \"i\" [^\\n]{24} | \"o\" [^\\n]{24})";
    private static final String PROMPT = "The European Parliament";
    private static final SamplingParams PLAIN = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(48).build();
    private static final SamplingParams CONSTRAINED = SamplingParams.builder().temperature(0).maxTokens(400)
            .structuredOutputs(StructuredOutputs.regex(EXPLODING)).build();

    private LLM llm;

    @BeforeEach
    void load() {
        llm = LLM.builder().model(DEMO.toString()).device("cpu").build();
    }

    @AfterEach
    void close() {
        llm.close();
    }

    @Test
    void anAutomatonPastItsLimitFailsItsRequestAndTheBatchRunsOn() {
        int[] alone = llm.generate(PROMPT, PLAIN).outputs().getFirst().tokenIdArray();

        LLMEngine engine = llm.engine();
        engine.addRequest("plain", Prompt.text(PROMPT), PLAIN, null);
        engine.addRequest("regex", Prompt.text("The Commission"), CONSTRAINED, null);
        EngineDrain drained = EngineDrain.of(engine);
        Map<String, RequestOutput> finished = drained.finished();
        Map<String, RequestFailedException> failures = drained.failures();

        assertArrayEquals(alone, finished.get("plain").outputs().getFirst().tokenIdArray());
        assertEquals(FinishReason.LENGTH, finished.get("plain").outputs().getFirst().finishReason());
        assertEquals(Set.of("regex"), failures.keySet());
        RequestFailedException failure = failures.get("regex");
        assertEquals("regex", failure.requestId());
        assertInstanceOf(Regex.TooComplexException.class, failure.getCause());
        int produced = finished.get("regex").outputs().getFirst().tokenIdArray().length;
        assertTrue(failure.getMessage().startsWith("request regex: structured output too complex after " + produced + " output tokens: the pattern '")
                && failure.getMessage().endsWith("' needs more than 20000 states"), failure.getMessage());
        assertEquals(FinishReason.ABORT, finished.get("regex").outputs().getFirst().finishReason());
        assertTrue(produced > 0 && produced < 400, "failed after " + produced + " tokens");
    }

    @ParameterizedTest(name = "grammar {0}")
    @ValueSource(booleans = {false, true})
    void aLaterRequestWithTheSamePatternStartsFromAFreshAutomaton(boolean grammar) {
        StructuredOutputs exploding = grammar ? StructuredOutputs.grammar(EXPLODING_GRAMMAR) : StructuredOutputs.regex(EXPLODING);
        SamplingParams constrained = SamplingParams.builder().temperature(0).maxTokens(400).structuredOutputs(exploding).build();
        // What a fresh automaton gives: the request on an engine that has not used the pattern.
        RequestFailedException fresh;
        try (LLM other = LLM.builder().model(DEMO.toString()).device("cpu").build()) {
            fresh = assertThrows(RequestFailedException.class, () -> other.generate("The Commission", constrained));
        }
        assertThrows(RequestFailedException.class, () -> llm.generate(PROMPT, constrained));

        // A spent automaton would fail it at the first state it had not made, a token or two in.
        RequestFailedException later = assertThrows(RequestFailedException.class, () -> llm.generate("The Commission", constrained));
        int[] tokens = tokens(fresh);
        assertArrayEquals(tokens, tokens(later));
        assertEquals(what(fresh), what(later));

        // Stopped by length before the limit, it ends as any request does.
        SamplingParams shorter = SamplingParams.builder().temperature(0).maxTokens(tokens.length - 1)
                .structuredOutputs(exploding).build();
        RequestOutput out = llm.generate("The Commission", shorter);
        assertEquals(FinishReason.LENGTH, out.outputs().getFirst().finishReason());
        assertArrayEquals(Arrays.copyOf(tokens, tokens.length - 1), out.outputs().getFirst().tokenIdArray());
        assertNull(llm.engine().failure(out.requestId()));
    }

    /** The output tokens of the request a failed {@code generate} ran. */
    private static int[] tokens(RequestFailedException e) {
        return e.outputs().getFirst().outputs().getFirst().tokenIdArray();
    }

    /** What failed, without which request. */
    private static String what(RequestFailedException e) {
        String message = e.getMessage();
        assertTrue(message.contains("structured output too complex after ") && message.endsWith("needs more than 20000 states"), message);
        return message.substring(message.indexOf("structured output"));
    }
}
