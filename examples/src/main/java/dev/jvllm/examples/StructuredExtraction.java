package dev.jvllm.examples;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import dev.jvllm.StructuredOutputs;

/**
 * Typed extraction with structured outputs: the model's answer is constrained to a JSON schema, so
 * it reads straight into a Java record.
 */
public final class StructuredExtraction {

    /** What is extracted. */
    public record Vote(String country, boolean inFavour, int seats) {
    }

    private static final String VOTE_SCHEMA = """
            {"type": "object",
             "properties": {
               "country": {"enum": ["France", "Germany", "Italy", "Spain"]},
               "inFavour": {"type": "boolean"},
               "seats": {"type": "integer", "minimum": 0, "maximum": 751}},
             "required": ["country", "inFavour", "seats"]}""";

    private StructuredExtraction() {
    }

    /** The vote described in {@code text}, as the model reads it. */
    public static Vote extract(LLM llm, String text) {
        SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(64)
                .structuredOutputs(StructuredOutputs.json(VOTE_SCHEMA)).build();
        String json = llm.generate("Extract the vote as JSON: " + text + "\n", params).text();
        try {
            return new ObjectMapper().readValue(json, Vote.class);
        } catch (JsonProcessingException e) {
            // Only when maxTokens ran out before the document closed: the constraint allows nothing else.
            throw new IllegalStateException("the answer was cut short: " + json, e);
        }
    }

    public static void main(String[] args) {
        String model = args.length > 0 ? args[0] : "models/jvllm-demo";
        try (LLM llm = new LLM(model)) {
            System.out.println(extract(llm, "The Italian delegation voted for the motion with 76 seats."));
        }
    }
}
