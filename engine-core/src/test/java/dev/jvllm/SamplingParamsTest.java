package dev.jvllm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplingParamsTest {

    @Test
    void defaultsAreVllms() {
        SamplingParams p = SamplingParams.builder().build();
        assertEquals(1, p.n());
        assertEquals(1.0, p.temperature());
        assertEquals(1.0, p.topP());
        assertEquals(0, p.topK());
        assertEquals(0.0, p.minP());
        assertEquals(1.0, p.repetitionPenalty());
        assertEquals(0.0, p.presencePenalty());
        assertEquals(0.0, p.frequencyPenalty());
        assertTrue(p.seed().isEmpty());
        assertEquals(List.of(), p.stop());
        assertEquals(List.of(), p.stopTokenIds());
        assertFalse(p.includeStopStrInOutput());
        assertFalse(p.ignoreEos());
        assertEquals(OptionalInt.of(16), p.maxTokens());
        assertEquals(0, p.minTokens());
        assertTrue(p.logprobs().isEmpty());
        assertTrue(p.promptLogprobs().isEmpty());
        assertTrue(p.skipSpecialTokens());
        assertTrue(p.spacesBetweenSpecialTokens());
        assertEquals(Map.of(), p.logitBias());
        assertTrue(p.allowedTokenIds().isEmpty());
        assertFalse(p.isGreedy());
    }

    @Test
    void greedyHasTemperatureZero() {
        SamplingParams greedy = SamplingParams.greedy();
        assertEquals(0.0, greedy.temperature());
        assertTrue(greedy.isGreedy());
    }

    static Stream<Arguments> invalidValues() {
        List<String> tooManyStops = Collections.nCopies(SamplingParams.MAX_STOP_STRINGS + 1, "x");
        String tooLongStop = "x".repeat(SamplingParams.MAX_STOP_STRING_LENGTH + 1);
        return Stream.of(
                invalid("n", "0", b -> b.n(0)),
                invalid("n", "1025", b -> b.n(1025)),
                invalid("n", "2", b -> b.temperature(0).n(2)),
                invalid("temperature", "NaN", b -> b.temperature(Double.NaN)),
                invalid("temperature", "-0.1", b -> b.temperature(-0.1)),
                invalid("temperature", "2.5", b -> b.temperature(2.5)),
                invalid("topP", "0.0", b -> b.topP(0)),
                invalid("topP", "1.5", b -> b.topP(1.5)),
                invalid("topP", "NaN", b -> b.topP(Double.NaN)),
                invalid("topK", "-2", b -> b.topK(-2)),
                invalid("minP", "-0.1", b -> b.minP(-0.1)),
                invalid("minP", "1.1", b -> b.minP(1.1)),
                invalid("repetitionPenalty", "0.0", b -> b.repetitionPenalty(0)),
                invalid("repetitionPenalty", "Infinity", b -> b.repetitionPenalty(Double.POSITIVE_INFINITY)),
                invalid("repetitionPenalty", "NaN", b -> b.repetitionPenalty(Double.NaN)),
                invalid("presencePenalty", "2.1", b -> b.presencePenalty(2.1)),
                invalid("presencePenalty", "-2.1", b -> b.presencePenalty(-2.1)),
                invalid("frequencyPenalty", "3.0", b -> b.frequencyPenalty(3)),
                invalid("frequencyPenalty", "NaN", b -> b.frequencyPenalty(Double.NaN)),
                invalid("maxTokens", "0", b -> b.maxTokens(0)),
                invalid("minTokens", "-1", b -> b.minTokens(-1)),
                invalid("minTokens", "17", b -> b.minTokens(17)),
                invalid("logprobs", "21", b -> b.logprobs(21)),
                invalid("logprobs", "-1", b -> b.logprobs(-1)),
                invalid("promptLogprobs", "21", b -> b.promptLogprobs(21)),
                invalid("stop", "empty", b -> b.stop("")),
                invalid("stop", "65", b -> b.stop(tooManyStops)),
                invalid("stop", "1025", b -> b.stop(tooLongStop)),
                invalid("stopTokenIds", "-1", b -> b.stopTokenIds(5, -1)),
                invalid("logitBias", "NaN", b -> b.logitBias(Map.of(3, Float.NaN))),
                invalid("logitBias", "-4", b -> b.logitBias(Map.of(-4, 1f))),
                invalid("allowedTokenIds", "empty", b -> b.allowedTokenIds(List.of())),
                invalid("allowedTokenIds", "-3", b -> b.allowedTokenIds(List.of(1, -3))));
    }

    private static Arguments invalid(String field, String valueInMessage, UnaryOperator<SamplingParams.Builder> change) {
        return Arguments.of(field, valueInMessage, change);
    }

    @Test
    void stopStringsWithoutDetokenizingAreRefusedNamingStop() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> SamplingParams.builder().stop("\n").detokenize(false).build());
        assertEquals("stop", e.field());
        assertTrue(SamplingParams.builder().build().detokenize(), "detokenize is on by default");
        assertFalse(SamplingParams.builder().detokenize(false).build().toBuilder().build().detokenize());
    }

    @ParameterizedTest(name = "{0} = {1}")
    @MethodSource("invalidValues")
    void outOfRangeValueIsRejectedNamingFieldAndValue(String field, String valueInMessage,
                                                       UnaryOperator<SamplingParams.Builder> change) {
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> change.apply(SamplingParams.builder()).build());
        assertEquals(field, e.field());
        assertTrue(e.getMessage().startsWith(field), e.getMessage());
        assertTrue(e.getMessage().contains(valueInMessage), e.getMessage());
    }

    @Test
    void invalidRequestIsAJvllmException() {
        assertTrue(JvllmException.class.isAssignableFrom(InvalidRequestException.class));
    }

    @Test
    void topKOfMinusOneMeansDisabledLikeZero() {
        assertEquals(0, SamplingParams.builder().topK(-1).build().topK());
        assertEquals(SamplingParams.builder().topK(0).build(), SamplingParams.builder().topK(-1).build());
    }

    @Test
    void nullMaxTokensMeansUntilTheContextIsFull() {
        SamplingParams p = SamplingParams.builder().maxTokens(null).minTokens(1000).build();
        assertTrue(p.maxTokens().isEmpty());
        assertEquals(1000, p.minTokens());
    }

    @Test
    void duplicateStopTokenIdsAreDroppedKeepingFirstOrder() {
        assertEquals(List.of(7, 3, 9), SamplingParams.builder().stopTokenIds(7, 3, 7, 9, 3).build().stopTokenIds());
    }

    @Test
    void logitBiasIsClampedToOneHundred() {
        SamplingParams p = SamplingParams.builder()
                .logitBias(Map.of(1, 250f, 2, Float.NEGATIVE_INFINITY, 3, 5f)).build();
        assertEquals(Map.of(1, 100f, 2, -100f, 3, 5f), p.logitBias());
    }

    @Test
    void toBuilderReproducesEveryField() {
        SamplingParams p = SamplingParams.builder().n(3).temperature(0.7).topP(0.9).topK(40).minP(0.05)
                .repetitionPenalty(1.1).presencePenalty(0.5).frequencyPenalty(-0.5).seed(42).stop("a", "b")
                .stopTokenIds(5).includeStopStrInOutput(true).ignoreEos(true).maxTokens(100).minTokens(10)
                .logprobs(5).promptLogprobs(2).skipSpecialTokens(false).spacesBetweenSpecialTokens(false)
                .logitBias(Map.of(1, 2f)).allowedTokenIds(List.of(1, 2, 3)).build();
        assertEquals(p, p.toBuilder().build());
        assertEquals(p.hashCode(), p.toBuilder().build().hashCode());
        assertNotEquals(p, p.toBuilder().seed(43).build());
        assertEquals(p.toString(), p.toBuilder().build().toString());
    }

    @Test
    void builtParamsDoNotChangeWithTheBuilderOrItsInputs() {
        List<String> stops = new ArrayList<>(List.of("x"));
        SamplingParams.Builder builder = SamplingParams.builder().stop(stops);
        SamplingParams p = builder.build();
        stops.add("y");
        builder.stop("z").temperature(0.5);
        assertEquals(List.of("x"), p.stop());
        assertEquals(1.0, p.temperature());
        assertThrows(UnsupportedOperationException.class, () -> p.stop().add("w"));
        assertThrows(UnsupportedOperationException.class, () -> p.logitBias().put(1, 1f));
    }

    static Stream<Arguments> outOfVocabularyIds() {
        return Stream.of(
                Arguments.of("stopTokenIds", SamplingParams.builder().stopTokenIds(3, 100)),
                Arguments.of("logitBias", SamplingParams.builder().logitBias(Map.of(100, 1f))),
                Arguments.of("allowedTokenIds", SamplingParams.builder().allowedTokenIds(List.of(0, 150))));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("outOfVocabularyIds")
    void tokenIdOutsideTheVocabularyIsRejected(String field, SamplingParams.Builder builder) {
        SamplingParams p = builder.build();
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> p.validateTokenIds(100));
        assertEquals(field, e.field());
        assertTrue(e.getMessage().contains("[0, 100)"), e.getMessage());
    }

    @Test
    void tokenIdsInsideTheVocabularyPass() {
        SamplingParams.builder().stopTokenIds(99).logitBias(Map.of(0, 1f)).allowedTokenIds(List.of(99)).build()
                .validateTokenIds(100);
    }
}
