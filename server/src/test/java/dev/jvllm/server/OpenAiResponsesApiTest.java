package dev.jvllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.ChatMessage;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static dev.jvllm.server.OpenAiServerTest.DEMO;
import static dev.jvllm.server.OpenAiServerTest.assertError;
import static dev.jvllm.server.OpenAiServerTest.greedy;
import static dev.jvllm.server.OpenAiServerTest.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** OpenAI's Responses API over the demo model: the library's chat answer, whole and as the API's events. */
class OpenAiResponsesApiTest {

    private static final HttpClient CLIENT = HttpClient.newHttpClient();
    private static OpenAiServer server;
    private static LLM reference;
    /** The comment lines of the last stream {@link #events} read. */
    private static int lastComments;

    @BeforeAll
    static void start() throws Exception {
        server = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).servedModelName("demo").start();
        reference = LLM.builder().model(DEMO.toString()).build();
    }

    @AfterAll
    static void stop() {
        server.close();
        reference.close();
    }

    @Test
    void aResponseIsTheLibrarysChatAnswerWithItsUsage() throws Exception {
        RequestOutput expected = reference.chat(List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hello")), greedy(8));
        var answer = post(server, "/v1/responses", "{\"model\": \"demo\", \"instructions\": \"Be brief.\", \"input\": \"Hello\", "
                + "\"temperature\": 0, \"max_output_tokens\": 8, \"metadata\": {\"ticket\": \"7\"}}");
        assertEquals(200, answer.status(), String.valueOf(answer.body()));
        JsonNode response = answer.body();
        assertEquals("response", response.path("object").asText());
        assertTrue(response.path("id").asText().startsWith("resp_"), response.toString());
        assertEquals("incomplete", response.path("status").asText(), "eight tokens, stopped by max_output_tokens: " + response);
        assertEquals("max_output_tokens", response.path("incomplete_details").path("reason").asText());
        JsonNode message = response.path("output").get(0);
        assertEquals("message", message.path("type").asText());
        assertEquals("assistant", message.path("role").asText());
        assertEquals(expected.text(), message.path("content").get(0).path("text").asText());
        assertEquals("output_text", message.path("content").get(0).path("type").asText());
        assertEquals(expected.promptTokenIds().size(), response.path("usage").path("input_tokens").asInt());
        assertEquals(8, response.path("usage").path("output_tokens").asInt());
        assertEquals("Be brief.", response.path("instructions").asText());
        assertEquals("7", response.path("metadata").path("ticket").asText());
        assertEquals(false, response.path("store").asBoolean(true), "nothing is stored, and the answer says so");

        // Message items with parts, a developer message standing for the system's: the same conversation.
        var items = post(server, "/v1/responses", "{\"input\": [{\"role\": \"developer\", \"content\": \"Be brief.\"}, "
                + "{\"type\": \"message\", \"role\": \"user\", \"content\": [{\"type\": \"input_text\", \"text\": \"Hello\"}]}], "
                + "\"temperature\": 0, \"max_output_tokens\": 8}");
        assertEquals(expected.text(), items.body().path("output").get(0).path("content").get(0).path("text").asText(), items.body().toString());
    }

    @Test
    void aStreamedResponseIsTheApisEventsInOrder() throws Exception {
        RequestOutput expected = reference.chat(List.of(ChatMessage.user("Hello")), greedy(6));
        List<JsonNode> events = events("{\"input\": \"Hello\", \"temperature\": 0, \"max_output_tokens\": 6, \"stream\": true}");
        List<String> types = events.stream().map(e -> e.path("type").asText()).toList();
        assertEquals(List.of("response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"),
                types.subList(0, 4), types.toString());
        assertEquals(List.of("response.output_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"),
                types.subList(types.size() - 4, types.size()), types.toString());
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < events.size(); i++) {
            assertEquals(i, events.get(i).path("sequence_number").asInt(), "numbered in order");
            if (types.get(i).equals("response.output_text.delta")) text.append(events.get(i).path("delta").asText());
            else if (i >= 4 && i < events.size() - 4) throw new AssertionError("only deltas between the opening and closing events: " + types);
        }
        assertEquals(expected.text(), text.toString());
        assertEquals(expected.text(), events.get(events.size() - 4).path("text").asText());
        JsonNode done = events.getLast().path("response");
        assertEquals(expected.text(), done.path("output").get(0).path("content").get(0).path("text").asText());
        assertEquals(events.getFirst().path("response").path("id").asText(), done.path("id").asText(), "one response throughout");
        assertEquals(6, done.path("usage").path("output_tokens").asInt());
    }

    @Test
    void aFormatHoldsTheAnswerAndWhatIsNotServedIsRefusedByName() throws Exception {
        var json = post(server, "/v1/responses", "{\"input\": \"Where?\", \"max_output_tokens\": 60, \"temperature\": 0.7, \"seed\": 3, "
                + "\"text\": {\"format\": {\"type\": \"json_schema\", \"name\": \"place\", \"schema\": {\"type\": \"object\", "
                + "\"properties\": {\"city\": {\"enum\": [\"Paris\", \"Rome\"]}}, \"required\": [\"city\"]}}}}");
        assertEquals(200, json.status(), String.valueOf(json.body()));
        JsonNode place = OpenAiResponses.JSON.readTree(json.body().path("output").get(0).path("content").get(0).path("text").asText());
        assertTrue(List.of("Paris", "Rome").contains(place.path("city").asText()), place.toString());
        assertEquals("json_schema", json.body().path("text").path("format").path("type").asText());

        assertError(post(server, "/v1/responses", "{\"max_output_tokens\": 4}"), 400, "input");
        assertError(post(server, "/v1/responses", "{\"input\": \"x\", \"previous_response_id\": \"resp_1\"}"), 400, "previous_response_id");
        assertError(post(server, "/v1/responses", "{\"input\": \"x\", \"tools\": [{\"type\": \"function\", \"name\": \"f\"}]}"), 400,
                "tool_choice"); // auto, the default, needs a tool-call parser
        assertError(post(server, "/v1/responses", "{\"input\": \"x\", \"tools\": [{\"type\": \"web_search\"}]}"), 400, "tools[0].type");
        assertError(post(server, "/v1/responses", "{\"input\": \"x\", \"reasoning\": {\"effort\": \"high\"}}"), 400, "reasoning");
        assertError(post(server, "/v1/responses", "{\"input\": \"x\", \"reasoning\": {\"summary\": \"auto\"}}"), 400, "reasoning");
        assertError(post(server, "/v1/responses", "{\"input\": \"x\", \"use_beam_search\": true}"), 400, "use_beam_search");
        assertError(post(server, "/v1/responses", "{\"input\": \"x\", \"n\": 2}"), 400, "n");
        assertError(post(server, "/v1/responses", "{\"input\": \"x\", \"prompt_logprobs\": 1}"), 400, "prompt_logprobs");
        assertError(post(server, "/v1/responses", "{\"input\": [{\"type\": \"web_search_call\", \"id\": \"w\"}]}"), 400, "input[0].type");
        var withReasoning = post(server, "/v1/responses", "{\"input\": [{\"role\": \"user\", \"content\": \"Why?\"}, {\"type\": \"reasoning\", "
                + "\"id\": \"rs_1\", \"summary\": []}, {\"role\": \"assistant\", \"content\": \"Because.\"}, {\"role\": \"user\", "
                + "\"content\": \"And?\"}], \"max_output_tokens\": 2}");
        assertEquals(200, withReasoning.status(), "a reasoning item given back with an earlier output is taken: " + withReasoning.body());
        assertError(post(server, "/v1/responses", "{\"input\": [{\"type\": \"function_call_output\", \"output\": \"1\"}]}"), 400,
                "input[0].call_id");
        assertError(post(server, "/v1/responses", "{\"input\": [{\"role\": \"user\", \"content\": [{\"type\": \"input_file\"}]}]}"),
                400, "input[0].content[0].type");
    }

    /**
     * Function tools: a named function's call comes back as a function_call item whose arguments fit the
     * function's schema, whole and streamed (the same seed, the same call); a conversation holding a
     * call and its output renders into a longer prompt.
     */
    @Test
    void aFunctionCallIsAnOutputItemWholeAndStreamed() throws Exception {
        String tools = "[{\"type\": \"function\", \"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", "
                + "\"properties\": {\"city\": {\"enum\": [\"Paris\", \"Rome\"]}}, \"required\": [\"city\"]}}]";
        String ask = "{\"input\": \"Weather in Paris?\", \"tools\": " + tools + ", \"tool_choice\": {\"type\": \"function\", "
                + "\"name\": \"get_weather\"}, \"max_output_tokens\": 60, \"temperature\": 0.8, \"seed\": 2";
        var called = post(server, "/v1/responses", ask + "}");
        assertEquals(200, called.status(), String.valueOf(called.body()));
        JsonNode output = called.body().path("output");
        assertEquals(1, output.size(), "the call alone, no empty message: " + output);
        JsonNode call = output.get(0);
        assertEquals("function_call", call.path("type").asText());
        assertEquals("get_weather", call.path("name").asText());
        assertTrue(call.path("call_id").asText().startsWith("call_") && call.path("id").asText().startsWith("fc_"), call.toString());
        JsonNode arguments = OpenAiResponses.JSON.readTree(call.path("arguments").asText());
        assertTrue(List.of("Paris", "Rome").contains(arguments.path("city").asText()), arguments.toString());

        List<JsonNode> events = events(ask + ", \"stream\": true}");
        List<String> types = events.stream().map(e -> e.path("type").asText()).toList();
        assertEquals(List.of("response.created", "response.in_progress", "response.output_item.added", "response.function_call_arguments.delta",
                "response.function_call_arguments.done", "response.output_item.done", "response.completed"), types);
        assertEquals(arguments, OpenAiResponses.JSON.readTree(events.get(4).path("arguments").asText()), "the same seed, the same call");
        assertTrue(lastComments > 0, "a held answer's stream carries comment lines while it is generated");
        assertEquals("function_call", events.getLast().path("response").path("output").get(0).path("type").asText());

        String history = "{\"input\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"}, {\"type\": \"function_call\", "
                + "\"call_id\": \"call_1\", \"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}, "
                + "{\"type\": \"function_call_output\", \"call_id\": \"call_1\", \"output\": \"18 C\"}], \"tools\": " + tools
                + ", \"tool_choice\": \"none\", \"max_output_tokens\": 4, \"temperature\": 0}";
        var answered = post(server, "/v1/responses", history);
        assertEquals(200, answered.status(), String.valueOf(answered.body()));
        var plain = post(server, "/v1/responses", "{\"input\": \"Weather in Paris?\", \"max_output_tokens\": 4, \"temperature\": 0}");
        assertTrue(answered.body().path("usage").path("input_tokens").asInt() > plain.body().path("usage").path("input_tokens").asInt() + 5,
                "the call and its output are in the prompt");
    }

    /**
     * Under a reasoning parser the thinking is a reasoning item before the message, whole and streamed
     * (the demo model's answer never closes a thinking, so deepseek_r1 takes it all as reasoning); a
     * constrained answer is refused there.
     */
    @Test
    void aThinkingModelsReasoningIsAnItemOfItsOwn() throws Exception {
        String plain = post(server, "/v1/responses", "{\"input\": \"Why?\", \"max_output_tokens\": 6, \"temperature\": 0}")
                .body().path("output").get(0).path("content").get(0).path("text").asText();
        try (OpenAiServer thinking = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).reasoningParser("deepseek_r1").start()) {
            var answer = post(thinking, "/v1/responses", "{\"input\": \"Why?\", \"max_output_tokens\": 6, \"temperature\": 0}");
            JsonNode output = answer.body().path("output");
            assertEquals("reasoning", output.get(0).path("type").asText(), output.toString());
            assertEquals(plain, output.get(0).path("content").get(0).path("text").asText());
            assertEquals("", output.get(1).path("content").get(0).path("text").asText(), "no answer after the thinking");
            var refused = post(thinking, "/v1/responses", "{\"input\": \"x\", \"text\": {\"format\": {\"type\": \"json_object\"}}}");
            assertError(refused, 400, "text.format");
        }
    }

    /** The events of a streamed response: each {@code event:} line's name is its data's type. */
    private static List<JsonNode> events(String body) throws Exception {
        HttpResponse<InputStream> response = CLIENT.send(HttpRequest.newBuilder(URI.create(server.address() + "/v1/responses"))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, response.statusCode());
        List<JsonNode> events = new ArrayList<>();
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
            String name = null;
            int comments = 0;
            for (String line; (line = lines.readLine()) != null; ) {
                if (line.isEmpty()) continue;
                if (line.startsWith(":")) {
                    comments++;
                    continue;
                }
                if (line.startsWith("event: ")) {
                    name = line.substring(7);
                    continue;
                }
                assertTrue(line.startsWith("data: "), line);
                JsonNode data = OpenAiResponses.JSON.readTree(line.substring(6));
                assertEquals(name, data.path("type").asText(), "the event's name is its type");
                events.add(data);
                name = null;
            }
            lastComments = comments;
        }
        return events;
    }
}
