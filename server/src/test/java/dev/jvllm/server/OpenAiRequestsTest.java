package dev.jvllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.StructuredOutputs;
import dev.jvllm.StructuredOutputs.JsonWhitespace;
import dev.jvllm.structured.Pushdown;
import dev.jvllm.structured.Regex;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * vLLM's {@code structured_outputs.disable_any_whitespace} read three ways: true gives compact JSON,
 * false any whitespace between tokens (vLLM's own default), left out at most one space, for JSON
 * asked for by each field.
 */
class OpenAiRequestsTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PLACE = "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, "
            + "\"open\": {\"type\": \"boolean\"}}, \"required\": [\"city\", \"open\"]}";
    private static final String LAID_OUT = " {\n  \"city\": \"Rome\",\n\t\"open\" : true\r\n}";

    @Test
    void disableAnyWhitespaceTrueFalseOrLeftOutGivesCompactAnyOrOneSpaceJson() throws Exception {
        String[] switches = {"", ", \"structured_outputs\": {\"disable_any_whitespace\": true}",
                ", \"structured_outputs\": {\"disable_any_whitespace\": false}"};
        JsonWhitespace[] expected = {JsonWhitespace.ONE_SPACE, JsonWhitespace.NONE, JsonWhitespace.ANY};
        for (int i = 0; i < switches.length; i++) {
            assertEquals(StructuredOutputs.json(JSON.readTree(PLACE), expected[i]),
                    OpenAiRequests.structuredOutputs(body("\"response_format\": {\"type\": \"json_schema\", \"json_schema\": "
                            + "{\"name\": \"place\", \"schema\": " + PLACE + "}}" + switches[i])), switches[i]);
            assertEquals(StructuredOutputs.json(JSON.readTree(PLACE), expected[i]),
                    OpenAiRequests.structuredOutputs(body("\"guided_json\": " + PLACE + switches[i])), switches[i]);
            assertEquals(StructuredOutputs.jsonObject(expected[i]),
                    OpenAiRequests.structuredOutputs(body("\"response_format\": {\"type\": \"json_object\"}" + switches[i])), switches[i]);
            assertEquals(expected[i], OpenAiRequests.tools(body("\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", "
                    + "\"parameters\": " + PLACE + "}}], \"tool_choice\": \"required\"" + switches[i]), true).whitespace(), switches[i]);
        }
        Regex any = Regex.compile(OpenAiRequests.structuredOutputs(body("\"guided_json\": " + PLACE + switches[2])).pattern());
        assertTrue(any.matches(LAID_OUT));
        assertFalse(any.matches("{\"city\": \"Rome\", \"open\": tr ue}"));
        // before the document at most one space, as xgrammar allows none (and a model cannot spend its tokens there)
        assertFalse(any.matches("\n\n" + LAID_OUT.strip()));
        assertFalse(Regex.compile(OpenAiRequests.structuredOutputs(body("\"guided_json\": " + PLACE)).pattern()).matches(LAID_OUT));
        Pushdown jsonMode = new Pushdown(OpenAiRequests.structuredOutputs(body("\"response_format\": {\"type\": \"json_object\"}"
                + switches[2])).rules().orElseThrow());
        assertTrue(jsonMode.matches(LAID_OUT));
    }

    private static JsonNode body(String fields) throws Exception {
        return JSON.readTree("{\"prompt\": \"x\", " + fields + "}");
    }
}
