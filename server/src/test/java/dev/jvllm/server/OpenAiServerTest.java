package dev.jvllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ChatMessage;
import dev.jvllm.LLM;
import dev.jvllm.Logprob;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The OpenAI-compatible server over the demo model, driven by the JDK's HTTP client on loopback. */
class OpenAiServerTest {

    static final Path DEMO = Files.isDirectory(Path.of("../models/jvllm-demo")) ? Path.of("../models/jvllm-demo") : Path.of("models/jvllm-demo");
    static final ObjectMapper JSON = new ObjectMapper();
    private static final String PROMPT = "The European Parliament";

    static OpenAiServer server;
    static LLM reference;
    static final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

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

    record Answer(int status, JsonNode body) {
    }

    static Answer post(OpenAiServer to, String path, String body) throws Exception {
        HttpResponse<String> response = client.send(HttpRequest.newBuilder(URI.create(to.address() + path))
                .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json").build(),
                HttpResponse.BodyHandlers.ofString());
        return new Answer(response.statusCode(), response.body().isEmpty() ? null : JSON.readTree(response.body()));
    }

    /** The JSON of each {@code data:} line of a streamed answer, and whether it ended with [DONE]. */
    static List<JsonNode> stream(String path, String body) throws Exception {
        return stream(server, path, body);
    }

    /** {@link #stream(String, String)} from another server. */
    static List<JsonNode> stream(OpenAiServer from, String path, String body) throws Exception {
        HttpResponse<InputStream> response = client.send(HttpRequest.newBuilder(URI.create(from.address() + path))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, response.statusCode());
        assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<JsonNode> chunks = new ArrayList<>();
        boolean done = false;
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = lines.readLine()) != null; ) {
                if (line.isEmpty()) continue;
                assertTrue(line.startsWith("data: "), line);
                assertFalse(done, "nothing after [DONE]");
                if (line.equals("data: [DONE]")) done = true;
                else chunks.add(JSON.readTree(line.substring(6)));
            }
        }
        assertTrue(done, "the stream ends with data: [DONE]");
        return chunks;
    }

    static SamplingParams greedy(int maxTokens) {
        return SamplingParams.builder().temperature(0).maxTokens(maxTokens).build();
    }

    @Test
    void modelsListsTheServedModelAndHealthAnswers() throws Exception {
        HttpResponse<String> models = client.send(HttpRequest.newBuilder(URI.create(server.address() + "/v1/models")).build(),
                HttpResponse.BodyHandlers.ofString());
        JsonNode list = JSON.readTree(models.body());
        assertEquals("list", list.path("object").asText());
        assertEquals("demo", list.path("data").get(0).path("id").asText());
        assertEquals(512, list.path("data").get(0).path("max_model_len").asInt());
        assertEquals(200, client.send(HttpRequest.newBuilder(URI.create(server.address() + "/health")).build(),
                HttpResponse.BodyHandlers.discarding()).statusCode());
    }

    @Test
    void aCompletionIsTheLibrarysGreedyTextWithItsUsage() throws Exception {
        Answer answer = post(server, "/v1/completions",
                "{\"model\": \"demo\", \"prompt\": \"" + PROMPT + "\", \"max_tokens\": 12, \"temperature\": 0}");

        assertEquals(200, answer.status());
        var expected = reference.generate(PROMPT, greedy(12));
        JsonNode choice = answer.body().path("choices").get(0);
        assertEquals("text_completion", answer.body().path("object").asText());
        assertTrue(answer.body().path("id").asText().startsWith("cmpl-"));
        assertEquals(expected.text(), choice.path("text").asText());
        assertEquals(0, choice.path("index").asInt());
        assertEquals(expected.outputs().getFirst().finishReason().toString(), choice.path("finish_reason").asText());
        assertEquals(expected.promptTokenIds().size(), answer.body().path("usage").path("prompt_tokens").asInt());
        assertEquals(expected.outputs().getFirst().tokenIds().size(), answer.body().path("usage").path("completion_tokens").asInt());
    }

    @Test
    void aStreamedCompletionConcatenatesToTheWholeOneThenGivesItsUsageAndDone() throws Exception {
        List<JsonNode> chunks = stream("/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 12, \"temperature\": 0,"
                + " \"stream\": true, \"stream_options\": {\"include_usage\": true}}");

        var expected = reference.generate(PROMPT, greedy(12));
        StringBuilder text = new StringBuilder();
        for (JsonNode chunk : chunks.subList(0, chunks.size() - 1)) text.append(chunk.path("choices").get(0).path("text").asText());
        assertEquals(expected.text(), text.toString());
        assertTrue(chunks.size() > 2, "the text came in pieces");
        JsonNode finishing = chunks.get(chunks.size() - 2).path("choices").get(0);
        assertEquals(expected.outputs().getFirst().finishReason().toString(), finishing.path("finish_reason").asText());
        JsonNode usage = chunks.getLast();
        assertEquals(0, usage.path("choices").size());
        assertEquals(expected.outputs().getFirst().tokenIds().size(), usage.path("usage").path("completion_tokens").asInt());
        assertTrue(chunks.subList(0, chunks.size() - 1).stream().noneMatch(c -> c.has("usage")), "usage only at the end");

        // vLLM's continuous_usage_stats: every chunk holds the usage so far.
        List<JsonNode> counted = stream("/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 12, \"temperature\": 0,"
                + " \"stream\": true, \"stream_options\": {\"include_usage\": true, \"continuous_usage_stats\": true}}");
        int tokensSoFar = 0;
        for (JsonNode chunk : counted.subList(0, counted.size() - 1)) {
            JsonNode soFar = chunk.path("usage");
            assertEquals(expected.promptTokenIds().size(), soFar.path("prompt_tokens").asInt(), chunk.toString());
            assertTrue(soFar.path("completion_tokens").asInt() > tokensSoFar, "one more token or more a chunk: " + chunk);
            tokensSoFar = soFar.path("completion_tokens").asInt();
        }
        assertEquals(expected.outputs().getFirst().tokenIds().size(), tokensSoFar);
    }

    @Test
    void aChatIsTheLibrarysChatWhetherWholeOrStreamed() throws Exception {
        String messages = "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hello\"}]}]";
        var expected = reference.chat(List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hello")), greedy(10));

        Answer whole = post(server, "/v1/chat/completions", "{\"messages\": " + messages + ", \"max_tokens\": 10, \"temperature\": 0}");
        assertEquals(200, whole.status());
        assertEquals("chat.completion", whole.body().path("object").asText());
        JsonNode message = whole.body().path("choices").get(0).path("message");
        assertEquals("assistant", message.path("role").asText());
        assertEquals(expected.text(), message.path("content").asText());

        List<JsonNode> chunks = stream("/v1/chat/completions", "{\"messages\": " + messages
                + ", \"max_completion_tokens\": 10, \"temperature\": 0, \"stream\": true}");
        assertEquals("chat.completion.chunk", chunks.getFirst().path("object").asText());
        assertEquals("assistant", chunks.getFirst().path("choices").get(0).path("delta").path("role").asText());
        StringBuilder text = new StringBuilder();
        for (JsonNode chunk : chunks) text.append(chunk.path("choices").get(0).path("delta").path("content").asText(""));
        assertEquals(expected.text(), text.toString());
        assertEquals("length", chunks.getLast().path("choices").get(0).path("finish_reason").asText());
    }

    @Test
    void anImageToATextModelIsA400() throws Exception {
        String png = java.util.Base64.getEncoder().encodeToString(dev.jvllm.models.LlavaChatModel.png(0));
        Answer answer = post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": ["
                + "{\"type\": \"text\", \"text\": \"What is shown?\"}, {\"type\": \"image_url\", \"image_url\": {\"url\": "
                + "\"data:image/png;base64," + png + "\"}}]}], \"max_tokens\": 4}");
        assertError(answer, 400, "images");
        assertTrue(answer.body().path("error").path("message").asText().contains("takes no images"), answer.body().toString());
        assertEquals(400, answer.body().path("error").path("code").asInt());
        assertEquals("invalid_request_error", answer.body().path("error").path("type").asText());
    }

    @Test
    void eachPromptAndEachOfNSamplesIsAChoiceOfItsOwn() throws Exception {
        Answer answer = post(server, "/v1/completions",
                "{\"prompt\": [\"" + PROMPT + "\", [1, 450, 1000]], \"n\": 2, \"max_tokens\": 6, \"temperature\": 0.9, \"seed\": 3}");

        assertEquals(200, answer.status(), String.valueOf(answer.body()));
        JsonNode choices = answer.body().path("choices");
        assertEquals(4, choices.size());
        for (int i = 0; i < 4; i++) assertEquals(i, choices.get(i).path("index").asInt());
        assertEquals(4 * 6, answer.body().path("usage").path("completion_tokens").asInt());
    }

    @Test
    void logprobsComeInEachEndpointsShape() throws Exception {
        Answer completion = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 5, \"temperature\": 0, \"logprobs\": 2}");
        JsonNode logprobs = completion.body().path("choices").get(0).path("logprobs");
        assertEquals(5, logprobs.path("tokens").size());
        assertEquals(5, logprobs.path("token_logprobs").size());
        assertEquals(5, logprobs.path("text_offset").size());
        assertTrue(logprobs.path("top_logprobs").get(0).size() >= 2);
        StringBuilder tokens = new StringBuilder();
        logprobs.path("tokens").forEach(t -> tokens.append(t.asText()));
        assertEquals(completion.body().path("choices").get(0).path("text").asText(), tokens.toString());

        Answer chat = post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 4,"
                + " \"temperature\": 0, \"logprobs\": true, \"top_logprobs\": 2}");
        JsonNode content = chat.body().path("choices").get(0).path("logprobs").path("content");
        assertEquals(4, content.size());
        assertEquals(2, content.get(0).path("top_logprobs").size());
        assertTrue(content.get(0).path("logprob").asDouble() <= 0);
    }

    @Test
    void echoScoresAPromptAsEvaluationHarnessesAskForIt() throws Exception {
        Answer scored = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"echo\": true, \"max_tokens\": 0, \"logprobs\": 1}");

        assertEquals(200, scored.status(), String.valueOf(scored.body()));
        JsonNode choice = scored.body().path("choices").get(0);
        assertEquals(PROMPT, choice.path("text").asText());
        assertEquals("length", choice.path("finish_reason").asText());
        assertEquals(0, scored.body().path("usage").path("completion_tokens").asInt());
        var expected = reference.generate(reference.tokenizer().encode(PROMPT, true),
                SamplingParams.builder().temperature(0).maxTokens(1).promptLogprobs(1).build());
        JsonNode tokenLogprobs = choice.path("logprobs").path("token_logprobs");
        assertEquals(expected.promptTokenIds().size(), tokenLogprobs.size());
        assertTrue(tokenLogprobs.get(0).isNull(), "nothing comes before the first token");
        for (int i = 1; i < tokenLogprobs.size(); i++) {
            int id = expected.promptTokenIds().get(i);
            assertEquals(expected.promptLogprobs().get(i).get(id).logprob(), tokenLogprobs.get(i).asDouble(), 1e-4, "token " + i);
        }

        Answer echoed = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"echo\": true, \"max_tokens\": 5, \"temperature\": 0}");
        assertEquals(PROMPT + reference.generate(PROMPT, greedy(5)).text(), echoed.body().path("choices").get(0).path("text").asText());

        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"echo\": true, \"stream\": true}"), 400, "echo");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 0}"), 400, "max_tokens");
    }

    @Test
    void concurrentCompletionsAndChatsAreBatchedAndEachGetsItsOwnGreedyText() throws Exception {
        List<String> prompts = List.of("The European Parliament", "Mr President,", "I would like to", "The Commission",
                "On behalf of", "Ladies and gentlemen", "We must", "This report");
        ExecutorService pool = Executors.newFixedThreadPool(prompts.size());
        try {
            List<Future<Answer>> answers = new ArrayList<>();
            for (String prompt : prompts) {
                answers.add(pool.submit(() -> post(server, "/v1/completions",
                        "{\"prompt\": \"" + prompt + "\", \"max_tokens\": 10, \"temperature\": 0}")));
            }
            List<Future<Answer>> chats = new ArrayList<>();
            for (String prompt : prompts) {
                chats.add(pool.submit(() -> post(server, "/v1/chat/completions",
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"" + prompt + "\"}], \"max_tokens\": 10, \"temperature\": 0}")));
            }
            for (int i = 0; i < prompts.size(); i++) {
                Answer answer = answers.get(i).get(60, TimeUnit.SECONDS);
                assertEquals(reference.generate(prompts.get(i), greedy(10)).text(), answer.body().path("choices").get(0).path("text").asText());
                Answer chat = chats.get(i).get(60, TimeUnit.SECONDS);
                assertEquals(reference.chat(List.of(ChatMessage.user(prompts.get(i))), greedy(10)).text(),
                        chat.body().path("choices").get(0).path("message").path("content").asText());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aClientThatLeavesMidStreamHasItsRequestAborted() throws Exception {
        long generatedBefore = server.metrics().orElseThrow().generatedTokens();
        URI address = server.address();
        String request = "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 400, \"ignore_eos\": true, \"temperature\": 0, \"stream\": true}";
        byte[] requestBytes = request.getBytes(StandardCharsets.UTF_8);
        // A plain socket, reset on close: java.net.http may keep a connection open after its body is closed, and a socket
        // closed gracefully is seen by the server only after some of its writes have gone into the buffers between them.
        try (Socket socket = new Socket(address.getHost(), address.getPort())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: " + address.getAuthority() + "\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + requestBytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(requestBytes);
            out.flush();
            BufferedReader reader = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("HTTP/1.1 200 OK", reader.readLine());
            String line;
            while ((line = reader.readLine()) != null && !line.startsWith("data: ")) {
                // headers, then the first event
            }
            assertTrue(line != null, "the stream began");
            socket.setSoLinger(true, 0);
        }

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (server.metrics().orElseThrow().running() + server.metrics().orElseThrow().waiting() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(0, server.metrics().orElseThrow().running() + server.metrics().orElseThrow().waiting(), "the request was aborted");
        assertEquals(0, server.metrics().orElseThrow().kvBlocksUsed());
        long generated = server.metrics().orElseThrow().generatedTokens() - generatedBefore;
        assertTrue(generated < 400, "the request ran to its end (" + generated + " tokens) rather than being aborted");
    }

    @Test
    void structuredOutputsConstrainTheAnswer() throws Exception {
        String schema = "{\"type\": \"object\", \"properties\": {\"city\": {\"enum\": [\"Paris\", \"Rome\"]}, "
                + "\"open\": {\"type\": \"boolean\"}}, \"required\": [\"city\", \"open\"]}";
        Answer chat = post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Where?\"}], "
                + "\"max_tokens\": 60, \"temperature\": 0.9, \"seed\": 4, \"response_format\": {\"type\": \"json_schema\", "
                + "\"json_schema\": {\"name\": \"place\", \"schema\": " + schema + "}}}");
        assertEquals(200, chat.status(), String.valueOf(chat.body()));
        JsonNode place = JSON.readTree(chat.body().path("choices").get(0).path("message").path("content").asText());
        assertTrue(List.of("Paris", "Rome").contains(place.path("city").asText()) && place.path("open").isBoolean(), place.toString());

        Answer choice = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 10, \"guided_choice\": [\"yes\", \"no\"]}");
        assertTrue(List.of("yes", "no").contains(choice.body().path("choices").get(0).path("text").asText()), choice.body().toString());
        Answer regex = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 10, "
                + "\"structured_outputs\": {\"regex\": \"[0-9]{4}\"}}");
        assertTrue(regex.body().path("choices").get(0).path("text").asText().matches("[0-9]{4}"), regex.body().toString());

        // A grammar (GBNF), recursive: sums of numbers with brackets of any depth.
        String grammar = "root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\nterm ::= [1-9] [0-9]? | \"(\" expr \")\"";
        for (String field : new String[]{"\"guided_grammar\": ", "\"structured_outputs\": {\"grammar\": "}) {
            Answer sum = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 40, \"temperature\": 1, \"seed\": 5, "
                    + field + JSON.writeValueAsString(grammar) + (field.contains("{") ? "}" : "") + "}");
            JsonNode sumChoice = sum.body().path("choices").get(0);
            assertEquals("stop", sumChoice.path("finish_reason").asText(), sum.body().toString());
            assertTrue(balancedSum(sumChoice.path("text").asText()), sum.body().toString());
        }
        // A structural tag, as structured_outputs' JSON string and as a response format: "<" (favoured) opens only <city> tags.
        String tag = "{\"type\": \"structural_tag\", \"triggers\": [\"<\"], \"structures\": [{\"begin\": \"<city>\", "
                + "\"schema\": {\"enum\": [\"Paris\", \"Rome\"]}, \"end\": \"</city>\"}]}";
        int open = reference.tokenizer().idOf("<").orElseThrow();
        String favoured = "\"max_tokens\": 24, \"temperature\": 0, \"logit_bias\": {\"" + open + "\": 100}, ";
        Answer tagged = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", " + favoured
                + "\"structured_outputs\": {\"structural_tag\": " + JSON.writeValueAsString(tag) + "}}");
        Answer taggedChat = post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Where?\"}], " + favoured
                + "\"response_format\": " + tag + "}");
        for (String text : List.of(tagged.body().path("choices").get(0).path("text").asText(),
                taggedChat.body().path("choices").get(0).path("message").path("content").asText())) {
            String rest = text.replaceAll("<city>\"(Paris|Rome)\"</city>", "");
            assertTrue(text.startsWith("<city>\"") && (rest.isEmpty() || "<city>\"Paris\"</city>".startsWith(rest)
                    || "<city>\"Rome\"</city>".startsWith(rest)), text);
        }
        Answer undefined = post(server, "/v1/completions", "{\"prompt\": \"x\", \"guided_grammar\": \"root ::= x\"}");
        assertError(undefined, 400, "guided_grammar");
        assertTrue(undefined.body().path("error").path("message").asText().contains("the rule 'x' is not defined"), undefined.body().toString());
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"guided_regex\": \"(a\"}"), 400, "guided_regex");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"guided_regex\": \"a\", \"guided_choice\": [\"b\"]}"), 400, "guided_choice");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"response_format\": {\"type\": \"yaml\"}}"), 400, "response_format");
    }

    /** Whether {@code text} is numbers of one or two digits joined by + and -, with balanced brackets. */
    private static boolean balancedSum(String text) {
        int depth = 0;
        String rest = text;
        while (!rest.isEmpty()) {
            var term = java.util.regex.Pattern.compile("^(\\(*)([1-9][0-9]?)(\\)*)([+-]|$)").matcher(rest);
            if (!term.find()) return false;
            depth += term.group(1).length() - term.group(3).length();
            if (depth < 0) return false;
            rest = rest.substring(term.end());
            if (term.group(4).isEmpty() != rest.isEmpty()) return false;
        }
        return depth == 0 && !text.isEmpty();
    }

    @Test
    void toolCallsFollowTheNamedOrRequiredChoice() throws Exception {
        String tools = "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", "
                + "\"properties\": {\"city\": {\"enum\": [\"Paris\", \"Rome\"]}, \"unit\": {\"enum\": [\"C\", \"F\"]}}, "
                + "\"required\": [\"city\", \"unit\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"get_time\", "
                + "\"parameters\": {\"type\": \"object\", \"properties\": {\"zone\": {\"enum\": [\"UTC\", \"CET\"]}}, \"required\": [\"zone\"]}}}]";
        String ask = "\"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"}], \"tools\": " + tools;

        Answer named = post(server, "/v1/chat/completions", "{" + ask + ", \"max_tokens\": 60, \"temperature\": 0.8, \"seed\": 2, "
                + "\"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}}");
        assertEquals(200, named.status(), String.valueOf(named.body()));
        JsonNode call = named.body().path("choices").get(0).path("message").path("tool_calls").get(0);
        assertEquals("get_weather", call.path("function").path("name").asText(), named.body().toString());
        JsonNode arguments = JSON.readTree(call.path("function").path("arguments").asText());
        assertTrue(List.of("Paris", "Rome").contains(arguments.path("city").asText()) && List.of("C", "F").contains(arguments.path("unit").asText()),
                arguments.toString());

        // The demo model would list calls until out of tokens: a bias on "]" closes the list after the first call
        // (the constraint allows "]" only there), so the answer is complete.
        int close = reference.tokenizer().idOf("]").orElseThrow();
        Answer required = post(server, "/v1/chat/completions", "{" + ask + ", \"max_tokens\": 200, \"temperature\": 0.8, \"seed\": 5, "
                + "\"tool_choice\": \"required\", \"logit_bias\": {\"" + close + "\": 100}}");
        assertEquals("stop", required.body().path("choices").get(0).path("finish_reason").asText(), required.body().toString());
        JsonNode calls = required.body().path("choices").get(0).path("message").path("tool_calls");
        assertTrue(calls.isArray() && !calls.isEmpty(), required.body().toString());
        for (JsonNode c : calls) {
            JsonNode args = JSON.readTree(c.path("function").path("arguments").asText());
            switch (c.path("function").path("name").asText()) {
                case "get_weather" -> assertTrue(List.of("Paris", "Rome").contains(args.path("city").asText()), args.toString());
                case "get_time" -> assertTrue(List.of("UTC", "CET").contains(args.path("zone").asText()), args.toString());
                default -> throw new AssertionError("a call of no offered function: " + c);
            }
        }

        // Streamed, the same required answer comes as one delta of the same calls, each with its index.
        List<JsonNode> requiredChunks = stream("/v1/chat/completions", "{" + ask + ", \"max_tokens\": 200, \"temperature\": 0.8, "
                + "\"seed\": 5, \"tool_choice\": \"required\", \"logit_bias\": {\"" + close + "\": 100}, \"stream\": true}");
        List<JsonNode> streamedCalls = new ArrayList<>();
        for (JsonNode chunk : requiredChunks) {
            JsonNode delta = chunk.path("choices").path(0).path("delta");
            assertTrue(delta.path("content").asText("").isEmpty(), "no text besides the calls: " + chunk);
            delta.path("tool_calls").forEach(streamedCalls::add);
        }
        assertEquals(calls.size(), streamedCalls.size(), requiredChunks.toString());
        for (int i = 0; i < calls.size(); i++) {
            assertEquals(i, streamedCalls.get(i).path("index").asInt());
            assertEquals(calls.get(i).path("function"), streamedCalls.get(i).path("function"), "the same seed streams the same calls");
        }

        // Out of tokens before its JSON began (the one space a document may open with), a call is no
        // call: the answer stays text, for a named choice and a required one.
        int space = reference.tokenizer().idOf("\u0120").orElseThrow();
        for (String choice : List.of("{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}", "\"required\"")) {
            Answer unbegun = post(server, "/v1/chat/completions", "{" + ask + ", \"max_tokens\": 1, \"temperature\": 0, \"tool_choice\": "
                    + choice + ", \"logit_bias\": {\"" + space + "\": 100}, \"structured_outputs\": {\"disable_any_whitespace\": false}}");
            JsonNode message = unbegun.body().path("choices").get(0).path("message");
            assertTrue(message.path("tool_calls").isMissingNode() || message.path("tool_calls").isEmpty(), unbegun.body().toString());
            assertEquals(" ", message.path("content").asText(), unbegun.body().toString());
        }

        // A conversation holding a call and its result renders; "auto" without a parser is refused by name.
        Answer history = post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Weather?\"}, "
                + "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [" + call + "]}, {\"role\": \"tool\", \"tool_call_id\": \""
                + call.path("id").asText() + "\", \"content\": \"18 C\"}], \"max_tokens\": 5, \"temperature\": 0}");
        assertEquals(200, history.status(), String.valueOf(history.body()));
        assertError(post(server, "/v1/chat/completions", "{" + ask + "}"), 400, "tool_choice");
        // A named function streams: id and name in the first chunk, then the arguments' text, which together parse.
        List<JsonNode> chunks = stream("/v1/chat/completions", "{" + ask + ", \"max_tokens\": 60, \"temperature\": 0.8, \"seed\": 2, "
                + "\"stream\": true, \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}}");
        StringBuilder streamed = new StringBuilder();
        for (JsonNode chunk : chunks) {
            JsonNode toolCalls = chunk.path("choices").path(0).path("delta").path("tool_calls");
            if (toolCalls.isArray()) streamed.append(toolCalls.get(0).path("function").path("arguments").asText());
        }
        JsonNode firstCall = chunks.getFirst().path("choices").get(0).path("delta").path("tool_calls").get(0);
        assertEquals("get_weather", firstCall.path("function").path("name").asText(), chunks.getFirst().toString());
        assertTrue(firstCall.path("id").asText().startsWith("chatcmpl-tool-"));
        assertEquals(arguments, JSON.readTree(streamed.toString()), "the same seed streams the same call");
        assertError(post(server, "/v1/chat/completions", "{" + ask + ", \"tool_choice\": {\"type\": \"function\", \"function\": "
                + "{\"name\": \"nope\"}}}"), 400, "tool_choice");
        assertError(post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": "
                + "[{\"type\": \"function\", \"function\": {\"name\": \"auto\"}}], \"tool_choice\": {\"type\": \"function\", "
                + "\"function\": {\"name\": \"auto\"}}}"), 400, "tools");
    }

    @Test
    void autoToolChoiceIsServedWithAToolCallParser() throws Exception {
        String tools = "[{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": {\"type\": \"object\"}}}]";
        try (OpenAiServer parsing = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).toolCallParser("hermes").start()) {
            Answer answer = post(parsing, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Time?\"}], "
                    + "\"tools\": " + tools + ", \"max_tokens\": 8, \"temperature\": 0}");
            assertEquals(200, answer.status(), String.valueOf(answer.body()));
            // The demo model writes no <tool_call> block, so its answer is text, as a model that chose not to call answers.
            JsonNode message = answer.body().path("choices").get(0).path("message");
            assertTrue(message.path("content").isTextual() && message.path("tool_calls").isMissingNode(), message.toString());
            // Streamed, the same answer's text arrives whole, as content.
            List<JsonNode> chunks = stream(parsing, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Time?\"}], "
                    + "\"tools\": " + tools + ", \"max_tokens\": 8, \"temperature\": 0, \"stream\": true}");
            assertEquals(message.path("content").asText(), streamedContent(chunks));
            assertTrue(chunks.stream().noneMatch(c -> c.path("choices").path(0).path("delta").has("tool_calls")), chunks.toString());

            // A model that writes a call (the demo model, held to one by a pattern): content before it, then the call.
            ObjectNode calling = JSON.createObjectNode();
            calling.putArray("messages").addObject().put("role", "user").put("content", "Time?");
            calling.set("tools", JSON.readTree(tools));
            calling.put("max_tokens", 150).put("temperature", 0)
                    .put("guided_regex", "Sure\\. <tool_call>\\{\"name\": \"get_time\", \"arguments\": \\{\"zone\": \"UTC\"\\}\\}</tool_call>");
            Answer called = post(parsing, "/v1/chat/completions", calling.toString());
            assertEquals(200, called.status(), String.valueOf(called.body()));
            JsonNode whole = called.body().path("choices").get(0);
            assertEquals("tool_calls", whole.path("finish_reason").asText(), whole.toString());
            assertEquals("Sure.", whole.path("message").path("content").asText(), whole.toString());
            JsonNode call = whole.path("message").path("tool_calls").get(0).path("function");
            assertEquals("get_time", call.path("name").asText(), whole.toString());
            assertEquals(JSON.readTree("{\"zone\": \"UTC\"}"), JSON.readTree(call.path("arguments").asText()));

            List<JsonNode> streamed = stream(parsing, "/v1/chat/completions", calling.put("stream", true).toString());
            assertEquals("Sure.", streamedContent(streamed), "the text before the call, none of the call's");
            List<JsonNode> streamedCalls = new ArrayList<>();
            String finish = null;
            for (JsonNode chunk : streamed) {
                chunk.path("choices").path(0).path("delta").path("tool_calls").forEach(streamedCalls::add);
                if (chunk.path("choices").path(0).path("finish_reason").isTextual()) finish = chunk.path("choices").path(0).path("finish_reason").asText();
            }
            assertEquals(1, streamedCalls.size(), streamed.toString());
            assertEquals(0, streamedCalls.getFirst().path("index").asInt());
            assertEquals(call, streamedCalls.getFirst().path("function"));
            assertEquals("tool_calls", finish);
        }
    }

    /**
     * A reasoning parser over the demo model's answer, which writes no thinking tags: deepseek_r1's
     * (whose template would open the thinking) takes the unclosed answer as reasoning, whole and
     * streamed alike; qwen3's takes it as content. Constrained answers are refused under a parser.
     */
    @Test
    void aReasoningParserSplitsTheAnswerIntoReasoningAndContent() throws Exception {
        String ask = "{\"messages\": [{\"role\": \"user\", \"content\": \"Why?\"}], \"max_tokens\": 8, \"temperature\": 0";
        String plain = post(server, "/v1/chat/completions", ask + "}").body().path("choices").get(0).path("message").path("content").asText();
        assertFalse(plain.isBlank(), "an answer to split");
        try (OpenAiServer r1 = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).reasoningParser("deepseek_r1").start()) {
            JsonNode message = post(r1, "/v1/chat/completions", ask + "}").body().path("choices").get(0).path("message");
            assertEquals(plain, message.path("reasoning_content").asText(), message.toString());
            assertEquals("", message.path("content").asText(), message.toString());
            List<JsonNode> chunks = stream(r1, "/v1/chat/completions", ask + ", \"stream\": true}");
            StringBuilder reasoning = new StringBuilder();
            for (JsonNode chunk : chunks) reasoning.append(chunk.path("choices").path(0).path("delta").path("reasoning_content").asText(""));
            assertEquals(plain, reasoning.toString(), chunks.toString());
            assertEquals("", streamedContent(chunks));
            assertError(post(r1, "/v1/chat/completions", ask + ", \"response_format\": {\"type\": \"json_object\"}}"), 400, "response_format");
        }
        try (OpenAiServer qwen3 = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).reasoningParser("qwen3").start()) {
            JsonNode message = post(qwen3, "/v1/chat/completions", ask + "}").body().path("choices").get(0).path("message");
            assertEquals(plain, message.path("content").asText(), message.toString());
            assertTrue(message.path("reasoning_content").isMissingNode(), message.toString());
            assertEquals(plain, streamedContent(stream(qwen3, "/v1/chat/completions", ask + ", \"stream\": true}")));
        }
    }

    /**
     * A chat template given in place of the model's (vLLM's --chat-template): the LLM renders with it,
     * the tokenizer's special tokens bound, and the server's prompts are its rendering; one that does
     * not parse fails the build saying so.
     */
    @Test
    void aGivenChatTemplateReplacesTheModels() throws Exception {
        String template = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
                + "{% if add_generation_prompt %}<assistant>{% endif %}";
        LLM custom = LLM.builder().model(DEMO.toString()).chatTemplate(template).build();
        String bos = reference.tokenizer().tokenText(reference.tokenizer().bosTokenId().orElseThrow());
        assertEquals(bos + "<user>Hi<assistant>", custom.renderChat(List.of(ChatMessage.user("Hi"))));
        try (OpenAiServer own = OpenAiServer.builder(custom).port(0).start()) {
            Answer tokens = post(own, "/tokenize", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}");
            int[] want = reference.tokenizer().encode(bos + "<user>Hi<assistant>", false);
            assertEquals(want.length, tokens.body().path("count").asInt(), tokens.body().toString());
            for (int i = 0; i < want.length; i++) assertEquals(want[i], tokens.body().path("tokens").get(i).asInt());
        }
        // Tool calls' arguments reach the template as objects, as vLLM passes them (tool-use templates expect objects).
        try (LLM calls = LLM.builder().model(DEMO.toString()).chatTemplate("{% for m in messages %}{% if m.tool_calls %}"
                + "{{ m.tool_calls[0].function.arguments.city }}{% endif %}{% endfor %}").build()) {
            List<Map<String, Object>> conversation = List.of(Map.of("role", "user", "content", "Weather?"), Map.of("role", "assistant",
                    "content", "", "tool_calls", List.of(Map.of("id", "call_1", "type", "function", "function",
                            Map.of("name", "get_weather", "arguments", "{\"city\": \"Paris\"}")))));
            assertEquals("Paris", calls.renderChat(conversation, Map.of()));
        }
        try (LLM asText = LLM.builder().model(DEMO.toString()).chatTemplate("{% for m in messages %}{% if m.tool_calls %}"
                + "{{ m.tool_calls[0].function.arguments }}{% endif %}{% endfor %}").build()) {
            for (String arguments : List.of("{\"id\": 123456789012345678901234}", "{\"a\": 1} trailing", "[1, 2]")) {
                List<Map<String, Object>> conversation = List.of(Map.of("role", "assistant", "content", "", "tool_calls",
                        List.of(Map.of("id", "c", "type", "function", "function", Map.of("name", "f", "arguments", arguments)))));
                assertEquals(arguments, asText.renderChat(conversation, Map.of()), "arguments no template can take as an object stay text");
            }
        }
        var broken = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.JvllmException.class,
                () -> LLM.builder().model(DEMO.toString()).chatTemplate("{% for m in messages %}").build());
        assertTrue(broken.getMessage().startsWith("the chat template given does not parse"), broken.getMessage());
    }

    /** The content deltas of a streamed chat answer, joined. */
    private static String streamedContent(List<JsonNode> chunks) {
        StringBuilder content = new StringBuilder();
        for (JsonNode chunk : chunks) content.append(chunk.path("choices").path(0).path("delta").path("content").asText(""));
        return content.toString();
    }

    @Test
    void badRequestsGetOpenAiErrorsNamingWhatWasWrong() throws Exception {
        assertError(post(server, "/v1/completions", "{not json"), 400, null);
        assertError(post(server, "/v1/completions", "[1, 2]"), 400, null);
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"temperature\": -1}"), 400, "temperature");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"top_p\": \"high\"}"), 400, "top_p");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"n\": 100000}"), 400, "n");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"truncate_prompt_tokens\": 0}"), 400, "truncate_prompt_tokens");
        Answer tooLong = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 510}");
        assertError(tooLong, 400, "max_tokens");
        assertTrue(tooLong.body().path("error").path("message").asText().contains("maximum context length is 512 tokens"), tooLong.body().toString());
        assertError(post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                + "\"max_tokens\": 512}"), 400, "max_tokens");
        assertError(post(server, "/v1/completions", "{\"prompt\": [1, 999999]}"), 400, null);
        assertError(post(server, "/v1/completions", "{}"), 400, "prompt");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"999999\": 5}}"), 400, null);
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"stop_token_ids\": [999999]}"), 400, null);
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"five\": 5}}"), 400, "logit_bias");
        assertError(post(server, "/v1/completions", "{\"prompt\": [\"a\", \"b\", \"c\"], \"n\": 400, \"temperature\": 1}"), 400, "n");
        assertError(post(server, "/v1/completions", "{\"prompt\": [1, 999999], \"stream\": true}"), 400, "prompt_token_ids");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"model\": \"gpt-4\"}"), 404, "model");
        assertError(post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"function\"}]}"), 400, "tools");
        assertError(post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}"), 400,
                "messages[0].content[0].image_url");
        assertError(post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"video_url\"}]}]}"), 400,
                "messages[0].content[0]");
        assertError(post(server, "/v1/embeddings", "{\"input\": \"x\"}"), 400, "model");
        String manyPrompts = "[" + String.join(", ", java.util.Collections.nCopies(OpenAiRequests.MAX_PROMPTS + 1, "\"x\"")) + "]";
        assertError(post(server, "/v1/completions", "{\"prompt\": " + manyPrompts + ", \"max_tokens\": 1}"), 400, "prompt");
        String manyMessages = "[" + String.join(", ", java.util.Collections.nCopies(OpenAiRequests.MAX_MESSAGES + 1,
                "{\"role\": \"user\", \"content\": \"x\"}")) + "]";
        assertError(post(server, "/v1/chat/completions", "{\"messages\": " + manyMessages + ", \"max_tokens\": 1}"), 400, "messages");
        assertError(post(server, "/v1/nothing", "{}"), 404, null);
        HttpResponse<String> get = client.send(HttpRequest.newBuilder(URI.create(server.address() + "/v1/completions")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(405, get.statusCode());
        assertEquals("POST", get.headers().firstValue("Allow").orElse(""));
    }

    @Test
    void samplingFieldsARequestLeavesOutComeFromTheGenerationConfig(@org.junit.jupiter.api.io.TempDir Path copy) throws Exception {
        for (String file : List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")) {
            Files.copy(DEMO.resolve(file), copy.resolve(file));
        }
        // top_k 1 makes every draw the greedy token, whatever the temperature.
        Files.writeString(copy.resolve("generation_config.json"), "{\"bos_token_id\": 1, \"eos_token_id\": 2, \"top_k\": 1, \"temperature\": 0.7}");
        String greedyText = reference.generate(PROMPT, greedy(8)).text();
        try (OpenAiServer configured = OpenAiServer.builder(LLM.builder().model(copy.toString()).build()).port(0).start()) {
            for (int seed = 0; seed < 3; seed++) {
                Answer answer = post(configured, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 8, \"seed\": " + seed + "}");
                assertEquals(greedyText, answer.body().path("choices").get(0).path("text").asText());
            }
            List<String> overridden = new ArrayList<>();
            for (int seed = 0; seed < 3; seed++) {
                overridden.add(post(configured, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 8, \"top_k\": -1,"
                        + " \"temperature\": 1.5, \"seed\": " + seed + "}").body().path("choices").get(0).path("text").asText());
            }
            assertTrue(overridden.stream().anyMatch(text -> !text.equals(greedyText)), "the request's own top_k and temperature win");
        }
    }

    @Test
    void tokenizeAndDetokenizeRoundTripAndMetricsCountTheWork() throws Exception {
        int[] expected = reference.tokenizer().encode(PROMPT, true);
        Answer tokens = post(server, "/tokenize", "{\"prompt\": \"" + PROMPT + "\"}");
        assertEquals(expected.length, tokens.body().path("count").asInt());
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], tokens.body().path("tokens").get(i).asInt());
        Answer text = post(server, "/detokenize", "{\"tokens\": " + tokens.body().path("tokens") + "}");
        assertEquals(reference.tokenizer().decode(expected, false), text.body().path("prompt").asText());
        Answer chat = post(server, "/tokenize", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}");
        assertEquals(reference.tokenizer().encode(reference.renderChat(List.of(ChatMessage.user("Hello"))), false).length,
                chat.body().path("count").asInt());
        assertError(post(server, "/detokenize", "{\"tokens\": [1, 999999]}"), 400, "tokens");

        post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 3, \"temperature\": 0}");
        String metrics = client.send(HttpRequest.newBuilder(URI.create(server.address() + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
        assertTrue(metrics.contains("# TYPE vllm:generation_tokens_total counter"), metrics);
        double generated = metrics.lines().filter(l -> l.startsWith("vllm:generation_tokens_total{model_name=\"demo\"}"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).findFirst().orElse(-1);
        assertTrue(generated >= 3, metrics);
        assertTrue(metrics.contains("vllm:num_requests_running{model_name=\"demo\"} 0.0"), metrics);
    }

    /**
     * vLLM's extra sampling fields: {@code prompt_logprobs} as the library computes them (per choice for
     * completions, beside the choices for chat), {@code allowed_token_ids} holding the answer to its tokens;
     * the ones not served are refused by name rather than ignored.
     */
    @Test
    void vllmsExtraSamplingFieldsAreServedOrRefusedByName() throws Exception {
        RequestOutput expected = reference.generate(PROMPT, SamplingParams.builder().promptLogprobs(2).maxTokens(1).temperature(0).build());
        Answer scored = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 1, \"temperature\": 0, "
                + "\"prompt_logprobs\": 2}");
        assertEquals(200, scored.status(), String.valueOf(scored.body()));
        JsonNode promptLogprobs = scored.body().path("choices").get(0).path("prompt_logprobs");
        assertEquals(expected.promptLogprobs().size(), promptLogprobs.size(), scored.body().toString());
        assertTrue(promptLogprobs.get(0).isNull(), "nothing precedes the first token");
        for (int i = 1; i < promptLogprobs.size(); i++) {
            Map<Integer, Logprob> want = expected.promptLogprobs().get(i);
            JsonNode got = promptLogprobs.get(i);
            assertEquals(want.size(), got.size(), "position " + i);
            assertTrue(got.has(Integer.toString(expected.promptTokenIds().get(i))), "the prompt's own token at " + i + ": " + got);
            want.forEach((id, logprob) -> {
                assertEquals(logprob.logprob(), got.path(Integer.toString(id)).path("logprob").floatValue(), 1e-4, "position and token " + id);
                assertEquals(logprob.rank(), got.path(Integer.toString(id)).path("rank").asInt());
            });
        }
        Answer chat = post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], "
                + "\"max_tokens\": 1, \"prompt_logprobs\": 1}");
        assertEquals(chat.body().path("usage").path("prompt_tokens").asInt(), chat.body().path("prompt_logprobs").size(), chat.body().toString());

        int the = reference.tokenizer().encode(" the", false)[0];
        Answer held = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 4, \"temperature\": 1, "
                + "\"ignore_eos\": true, \"allowed_token_ids\": [" + the + "]}");
        assertEquals(reference.tokenizer().decode(new int[]{the, the, the, the}, true), held.body().path("choices").get(0).path("text").asText(),
                held.body().toString());

        // bad_words: the greedy answer's first word, banned, is not its first word any more.
        String greedyAsk = "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 4, \"temperature\": 0";
        String free = post(server, "/v1/completions", greedyAsk + "}").body().path("choices").get(0).path("text").asText();
        String firstWord = free.strip().split("\\s+")[0];
        String banned = post(server, "/v1/completions", greedyAsk + ", \"bad_words\": [" + JSON.writeValueAsString(firstWord) + "]}")
                .body().path("choices").get(0).path("text").asText();
        assertFalse(banned.strip().startsWith(firstWord), free + " / " + banned);
        assertError(post(server, "/v1/completions", greedyAsk + ", \"bad_words\": [\" \"]}"), 400, "bad_words");

        String ask = "{\"prompt\": \"x\", \"max_tokens\": 1, ";
        for (String[] refused : new String[][]{{"use_beam_search", "true"}, {"length_penalty", "2.0"}, {"priority", "1"}, {"return_tokens_as_token_ids", "true"},
                {"spaces_between_special_tokens", "\"yes\""}, {"allowed_token_ids", "[999999]"}}) {
            assertError(post(server, "/v1/completions", ask + "\"" + refused[0] + "\": " + refused[1] + "}"), 400,
                    refused[0].equals("allowed_token_ids") ? null : refused[0]);
        }
        assertError(post(server, "/v1/completions", ask + "\"structured_outputs\": {\"structural_tag\": \"{}\"}}"), 400,
                "structured_outputs.structural_tag");
        // vLLM's other structured_outputs keys: JSON mode is followed, what is not followed is refused by name.
        Answer jsonMode = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 40, \"temperature\": 1, "
                + "\"seed\": 3, \"structured_outputs\": {\"json_object\": true, \"disable_fallback\": true}}");
        JsonNode jsonChoice = jsonMode.body().path("choices").get(0);
        if (jsonChoice.path("finish_reason").asText().equals("stop")) {
            assertTrue(JSON.readTree(jsonChoice.path("text").asText()).isObject(), jsonMode.body().toString());
        } else {
            assertTrue(jsonChoice.path("text").asText().strip().startsWith("{"), jsonMode.body().toString());
        }
        // disable_any_whitespace false: any whitespace between tokens, as vLLM's default. A bias on the
        // line feed makes this model write runs of them inside the object, which at most one space
        // (the same request without the switch) does not allow.
        int lineFeed = reference.tokenizer().idOf("\u010a").orElseThrow();
        String biased = "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 12, \"temperature\": 0, \"logit_bias\": {\"" + lineFeed
                + "\": 50}, \"structured_outputs\": {\"json_object\": true";
        Answer anyWhitespace = post(server, "/v1/completions", biased + ", \"disable_any_whitespace\": false}}");
        String anyText = anyWhitespace.body().path("choices").get(0).path("text").asText();
        assertTrue(anyText.matches("(?s) ?\\{\n\n.*"), anyWhitespace.body().toString());
        String oneSpaceText = post(server, "/v1/completions", biased + "}}").body().path("choices").get(0).path("text").asText();
        assertTrue(oneSpaceText.matches("(?s) ?\\{.*") && !oneSpaceText.contains("\n"), oneSpaceText);
        Answer compact = post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 40, \"temperature\": 1, "
                + "\"seed\": 3, \"structured_outputs\": {\"json_object\": true, \"disable_any_whitespace\": true}}");
        String compactText = compact.body().path("choices").get(0).path("text").asText();
        // Outside its strings (a last one may be cut off by max_tokens) a compact document has no space.
        String outsideStrings = compactText.replaceAll("\"(?:[^\"\\\\]|\\\\.)*\"", "").replaceAll("\"(?:[^\"\\\\]|\\\\.)*$", "");
        assertTrue(compactText.startsWith("{") && !outsideStrings.contains(" "), compact.body().toString());
        // disable_any_whitespace holds for JSON asked for by response_format too
        String place = "{\"type\": \"object\", \"properties\": {\"city\": {\"enum\": [\"Paris\", \"Rome\"]}, "
                + "\"open\": {\"type\": \"boolean\"}}, \"required\": [\"city\", \"open\"]}";
        Answer compactSchema = post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Where?\"}], "
                + "\"max_tokens\": 60, \"temperature\": 0.9, \"seed\": 4, \"structured_outputs\": {\"disable_any_whitespace\": true}, "
                + "\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"place\", \"schema\": " + place + "}}}");
        String compactPlace = compactSchema.body().path("choices").get(0).path("message").path("content").asText();
        assertTrue(compactPlace.matches("\\{\"city\":\"(Paris|Rome)\",\"open\":(true|false)\\}"), compactSchema.body().toString());
        assertError(post(server, "/v1/completions", ask + "\"guided_whitespace_pattern\": \" *\"}"), 400, "guided_whitespace_pattern");
        for (String[] refused : new String[][]{{"disable_any_whitespace", "\"yes\""}, {"whitespace_pattern", "\"[\\\\n ]*\""},
                {"json_obj", "true"}, {"json_object", "\"yes\""}, {"disable_fallback", "7"}}) {
            assertError(post(server, "/v1/completions", ask + "\"structured_outputs\": {\"" + refused[0] + "\": " + refused[1] + "}}"), 400,
                    "structured_outputs." + refused[0]);
        }
        assertError(post(server, "/v1/completions", ask + "\"structured_outputs\": {\"json_object\": true, \"regex\": \"a\"}}"), 400,
                "structured_outputs.regex");
        assertError(post(server, "/v1/completions", ask + "\"prompt_logprobs\": 1, \"stream\": true}"), 400, "prompt_logprobs");
        assertError(post(server, "/v1/completions", ask + "\"echo\": true, \"logprobs\": 1, \"prompt_logprobs\": 2}"), 400, "prompt_logprobs");
        Answer defaults = post(server, "/v1/completions", ask + "\"use_beam_search\": false, \"length_penalty\": 1.0, \"priority\": 0, "
                + "\"bad_words\": [], \"spaces_between_special_tokens\": false}");
        assertEquals(200, defaults.status(), "the values that change nothing are taken: " + defaults.body());
    }

    /**
     * /metrics' latency histograms, vLLM's: three requests of four tokens each give three times to the
     * first token, nine between tokens (one a later step) and three ends, counted by finish reason.
     */
    @Test
    void metricsHoldEachRequestsLatencies() throws Exception {
        try (OpenAiServer own = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).servedModelName("m").start()) {
            for (int i = 0; i < 3; i++) {
                Answer answer = post(own, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 4, \"ignore_eos\": true}");
                assertEquals(200, answer.status(), String.valueOf(answer.body()));
            }
            String metrics = client.send(HttpRequest.newBuilder(URI.create(own.address() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            Map<String, Integer> counts = Map.of("vllm:time_to_first_token_seconds", 3, "vllm:inter_token_latency_seconds", 9,
                    "vllm:e2e_request_latency_seconds", 3);
            counts.forEach((name, count) -> {
                assertTrue(metrics.contains("# TYPE " + name + " histogram"), metrics);
                assertEquals(count.doubleValue(), value(metrics, name + "_count{model_name=\"m\"}"), name);
                assertEquals(count.doubleValue(), value(metrics, name + "_bucket{model_name=\"m\",le=\"+Inf\"}"), name);
                assertTrue(value(metrics, name + "_sum{model_name=\"m\"}") > 0, name);
                double previous = 0;
                for (String line : metrics.lines().filter(l -> l.startsWith(name + "_bucket")).toList()) {
                    double cumulative = Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
                    assertTrue(cumulative >= previous, "buckets are cumulative: " + line);
                    previous = cumulative;
                }
            });
            assertEquals(3, value(metrics, "vllm:request_success_total{model_name=\"m\",finished_reason=\"length\"}"), metrics);
            // Two answers of one request, both ended by a stop string the greedy answer holds, count as two, as vLLM counts parallel samples.
            String greedyText = reference.generate(PROMPT, greedy(4)).text();
            String stop = greedyText.substring(greedyText.length() - 2);
            Answer two = post(own, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 4, \"top_k\": 1, \"n\": 2, "
                    + "\"stop\": " + JSON.writeValueAsString(stop) + "}");
            assertEquals(200, two.status(), String.valueOf(two.body()));
            String after = client.send(HttpRequest.newBuilder(URI.create(own.address() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
            assertEquals(2, value(after, "vllm:request_success_total{model_name=\"m\",finished_reason=\"stop\"}"), after);
            assertEquals(3, value(after, "vllm:request_success_total{model_name=\"m\",finished_reason=\"length\"}"), after);
            assertEquals(5, value(after, "vllm:e2e_request_latency_seconds_count{model_name=\"m\"}"), "each answer's end, as the counter counts");
        }
    }

    /**
     * A server with speculative decoding (vLLM's {@code --speculative-config}): a greedy completion, whole and
     * streamed, is the one without it, and /metrics counts the guesses verified and kept.
     */
    @Test
    void aSpeculativeServerAnswersAsAPlainOneAndCountsItsGuesses() throws Exception {
        String prompt = "The Commission shall adopt the measures. The Commission shall adopt the measures. The Commission shall";
        String body = "{\"model\": \"spec\", \"prompt\": \"" + prompt + "\", \"max_tokens\": 40, \"temperature\": 0, \"ignore_eos\": true";
        String expected = reference.generate(prompt, SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(40).build()).text();
        try (OpenAiServer speculative = OpenAiServer.builder(LLM.builder().model(DEMO.toString())
                .speculativeConfig(ServeCommand.speculativeConfig("{\"method\": \"ngram\", \"num_speculative_tokens\": 4, "
                        + "\"prompt_lookup_min\": 1, \"prompt_lookup_max\": 3}")).build()).port(0).servedModelName("spec").start()) {
            Answer whole = post(speculative, "/v1/completions", body + "}");
            assertEquals(200, whole.status());
            assertEquals(expected, whole.body().path("choices").get(0).path("text").asText());
            StringBuilder streamed = new StringBuilder();
            for (JsonNode chunk : stream(speculative, "/v1/completions", body + ", \"stream\": true}")) {
                if (chunk.path("choices").size() > 0) streamed.append(chunk.path("choices").get(0).path("text").asText());
            }
            assertEquals(expected, streamed.toString());
            String metrics = client.send(HttpRequest.newBuilder(URI.create(speculative.address() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            double drafted = value(metrics, "vllm:spec_decode_num_draft_tokens_total{model_name=\"spec\"}");
            double kept = value(metrics, "vllm:spec_decode_num_accepted_tokens_total{model_name=\"spec\"}");
            assertTrue(kept > 0 && kept <= drafted, metrics);
        }
    }

    /** The value of the metric line that starts with {@code series}. */
    private static double value(String metrics, String series) {
        return metrics.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
                .findFirst().orElseThrow(() -> new AssertionError("no " + series + " in\n" + metrics));
    }

    @Test
    void aPortInUseIsAnErrorNamingItAndLeavesTheModelToItsOwner() throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
             LLM llm = LLM.builder().model(DEMO.toString()).build()) {
            var e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                    () -> OpenAiServer.builder(llm).port(taken.getLocalPort()).start());
            assertTrue(e.getMessage().contains(":" + taken.getLocalPort()), e.getMessage());
            assertEquals(reference.generate(PROMPT, greedy(4)).text(), llm.generate(PROMPT, greedy(4)).text());
        }
    }

    @Test
    void closingTheServerMidStreamEndsTheStreamAndReturns() throws Exception {
        OpenAiServer closing = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).start();
        HttpResponse<InputStream> response = client.send(HttpRequest.newBuilder(URI.create(closing.address() + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 400, \"ignore_eos\": true,"
                        + " \"stream\": true}")).build(), HttpResponse.BodyHandlers.ofInputStream());
        InputStream body = response.body();
        assertTrue(body.read() >= 0, "the stream began");

        Thread closer = Thread.ofPlatform().start(closing::close);
        closer.join(30_000);
        assertFalse(closer.isAlive(), "close() returned with a stream in flight");
        // The client's read ends, with the rest of the stream or with the connection closed under it.
        Thread reader = Thread.ofPlatform().start(() -> {
            try (body) {
                body.readAllBytes();
            } catch (java.io.IOException ended) {
                // closed under the client: also an end
            }
        });
        reader.join(30_000);
        assertFalse(reader.isAlive(), "the client's stream ended");
        org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                () -> client.send(HttpRequest.newBuilder(URI.create(closing.address() + "/health")).build(), HttpResponse.BodyHandlers.discarding()),
                "nothing listens any more");
    }

    @Test
    void aBodyOverTheLimitGets413() throws Exception {
        try (OpenAiServer small = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).maxBodyBytes(1000).start()) {
            assertError(post(small, "/v1/completions", "{\"prompt\": \"" + "a".repeat(2000) + "\"}"), 413, null);
            assertEquals(200, post(small, "/v1/completions", "{\"prompt\": \"a\", \"max_tokens\": 1}").status());
        }
    }

    @Test
    void anApiKeyIsNeededForAllButHealthAndMetrics() throws Exception {
        try (OpenAiServer keyed = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).apiKey("s3cret").start()) {
            URI models = URI.create(keyed.address() + "/v1/models");
            assertEquals(401, client.send(HttpRequest.newBuilder(models).build(), HttpResponse.BodyHandlers.ofString()).statusCode());
            assertEquals(401, client.send(HttpRequest.newBuilder(models).header("Authorization", "Bearer wrong").build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode());
            assertEquals(200, client.send(HttpRequest.newBuilder(models).header("Authorization", "Bearer s3cret").build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode());
            assertEquals(200, client.send(HttpRequest.newBuilder(URI.create(keyed.address() + "/health")).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode());
            assertEquals(200, client.send(HttpRequest.newBuilder(URI.create(keyed.address() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode());
            assertEquals(401, post(keyed, "/tokenize", "{\"prompt\": \"x\"}").status());
        }
    }

    /**
     * vLLM's cache_salt on both endpoints: a long prompt salted "a", then "b" (no blocks of "a"'s
     * found), then "a" again (its blocks found); the greedy text is the same all three times.
     */
    @Test
    void cacheSaltKeepsTenantsPrefixCacheBlocksApart() throws Exception {
        String text = "Tenants of one server keep their cached prefixes apart by salt. ".repeat(10);
        String completion = "{\"prompt\": \"" + text + "\", \"max_tokens\": 6, \"temperature\": 0, \"cache_salt\": \"%s\"}";
        String chat = "{\"messages\": [{\"role\": \"user\", \"content\": \"Chat: " + text + "\"}], \"max_tokens\": 6,"
                + " \"temperature\": 0, \"cache_salt\": \"%s\"}";
        assertTrue(reference.tokenizer().encode(text, true).length >= 3 * 16, "the prompt spans at least 3 blocks");
        for (String[] endpoint : new String[][]{{"/v1/completions", completion}, {"/v1/chat/completions", chat}}) {
            Answer first = post(server, endpoint[0], endpoint[1].formatted("a"));
            assertEquals(200, first.status(), String.valueOf(first.body()));
            long hits = server.metrics().orElseThrow().prefixCacheHits();
            Answer other = post(server, endpoint[0], endpoint[1].formatted("b"));
            assertEquals(200, other.status(), String.valueOf(other.body()));
            assertEquals(hits, server.metrics().orElseThrow().prefixCacheHits(), endpoint[0] + ": salt b finds none of salt a's blocks");
            Answer again = post(server, endpoint[0], endpoint[1].formatted("a"));
            assertTrue(server.metrics().orElseThrow().prefixCacheHits() >= hits + 3 * 16, endpoint[0] + ": salt a again finds its blocks");
            assertEquals(first.body().path("choices"), other.body().path("choices"), endpoint[0]);
            assertEquals(first.body().path("choices"), again.body().path("choices"), endpoint[0]);
        }
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"cache_salt\": 5}"), 400, "cache_salt");
        assertError(post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"cache_salt\": 5}"),
                400, "cache_salt");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"cache_salt\": \"\"}"), 400, "cache_salt");
        assertError(post(server, "/v1/completions", "{\"prompt\": \"x\", \"cache_salt\": \"" + "s".repeat(257) + "\"}"), 400, "cache_salt");
        assertEquals(200, post(server, "/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 1, \"cache_salt\": null}").status());
    }

    /**
     * A pattern whose automaton outgrows the limit mid-answer fails that request alone, as the request's
     * own doing (400, saying so); the server answers the next request as before.
     */
    @Test
    void aPatternTooComplexToFollowIsAnInvalidRequest() throws Exception {
        Answer refused = post(server, "/v1/completions", "{\"prompt\": \"The Commission\", \"temperature\": 0, \"max_tokens\": 400,"
                + " \"guided_regex\": \".*(a.{24}|e.{24}|i.{24}|o.{24})\"}");
        assertError(refused, 400, null);
        assertTrue(refused.body().path("error").path("message").asText().contains("structured output too complex"), refused.body().toString());
        assertEquals(200, post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 4}").status());

        // Bad words that mask all a choice allows: a 400 whole, and an invalid-request event streamed.
        String nothingLeft = "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 4, \"guided_choice\": [\"a\"], \"bad_words\": [\"a\"]";
        Answer whole = post(server, "/v1/completions", nothingLeft + "}");
        assertError(whole, 400, null);
        assertTrue(whole.body().path("error").path("message").asText().contains("every token was masked"), whole.body().toString());
        HttpResponse<String> streamed = client.send(HttpRequest.newBuilder(URI.create(server.address() + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(nothingLeft + ", \"stream\": true}")).build(), HttpResponse.BodyHandlers.ofString());
        assertTrue(streamed.body().contains("\"type\":\"invalid_request_error\"") && streamed.body().contains("every token was masked"),
                streamed.body());
    }

    /** A request whose headers are larger than any client needs (600 KB) is not served, and the server serves on. */
    @Test
    void oversizedHeadersAreRefusedAndTheServerServesOn() throws Exception {
        HttpRequest huge = HttpRequest.newBuilder(URI.create(server.address() + "/v1/completions"))
                .header("Content-Type", "application/json").header("X-Padding", "x".repeat(600_000))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 4}")).build();
        int status;
        try {
            status = client.send(huge, HttpResponse.BodyHandlers.ofString()).statusCode();
        } catch (java.io.IOException closed) {
            status = -1;  // the server closed the connection unanswered
        }
        assertNotEquals(200, status, "a 600 KB header was served");
        assertEquals(200, post(server, "/v1/completions", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 4}").status());
    }

    /**
     * vLLM's chat rendering extras: without the generation prompt, the rendering stops after the
     * messages; continuing the final message cuts it after that message's own text; template variables
     * reach the template (a copy of the demo model whose template greets by one); bad ones are 400s.
     */
    @Test
    void chatRenderingExtrasShapeThePromptAsVllmsDo(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        String user = "{\"role\": \"user\", \"content\": \"Hello\"}";
        Answer withPrompt = post(server, "/tokenize", "{\"messages\": [" + user + "]}");
        Answer without = post(server, "/tokenize", "{\"messages\": [" + user + "], \"add_generation_prompt\": false}");
        assertEquals(ids("<|user|>\nHello</s>\n<|assistant|>\n"), ids(withPrompt));
        assertEquals(ids("<|user|>\nHello</s>\n"), ids(without));
        Answer continued = post(server, "/tokenize", "{\"messages\": [" + user + ", {\"role\": \"assistant\", \"content\": \"The European\"}],"
                + " \"add_generation_prompt\": false, \"continue_final_message\": true}");
        assertEquals(ids("<|user|>\nHello</s>\n<|assistant|>\nThe European"), ids(continued));
        assertEquals(200, post(server, "/v1/chat/completions", "{\"messages\": [" + user + ", {\"role\": \"assistant\", \"content\": "
                + "\"The European\"}], \"add_generation_prompt\": false, \"continue_final_message\": true, \"max_tokens\": 3}").status());

        assertError(post(server, "/tokenize", "{\"messages\": [" + user + "], \"chat_template_kwargs\": 5}"), 400, "chat_template_kwargs");
        assertError(post(server, "/tokenize", "{\"messages\": [" + user + "], \"continue_final_message\": true}"), 400,
                "continue_final_message");
        assertError(post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}],"
                + " \"continue_final_message\": true, \"add_generation_prompt\": true}"), 400, "continue_final_message");

        for (String file : List.of("config.json", "generation_config.json", "tokenizer.json")) Files.copy(DEMO.resolve(file), dir.resolve(file));
        Files.createSymbolicLink(dir.resolve("model.safetensors"), DEMO.resolve("model.safetensors").toAbsolutePath());
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(DEMO.resolve("tokenizer_config.json").toFile());
        config.put("chat_template", "{{ greeting | default('Hi') }}{% for message in messages %}{{ ' ' + message['content'] }}{% endfor %}");
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        try (OpenAiServer greeting = OpenAiServer.builder(LLM.builder().model(dir.toString()).build()).port(0).start()) {
            assertEquals(ids("Hi Hello"), ids(post(greeting, "/tokenize", "{\"messages\": [" + user + "]}")));
            assertEquals(ids("Welcome Hello"), ids(post(greeting, "/tokenize", "{\"messages\": [" + user + "],"
                    + " \"chat_template_kwargs\": {\"greeting\": \"Welcome\"}}")));
        }
    }

    /** The demo tokenizer's ids of {@code text} as a chat prompt (no special tokens added). */
    private static List<Integer> ids(String text) {
        return java.util.Arrays.stream(reference.tokenizer().encode(text, false)).boxed().toList();
    }

    private static List<Integer> ids(Answer tokenized) {
        assertEquals(200, tokenized.status(), String.valueOf(tokenized.body()));
        List<Integer> ids = new java.util.ArrayList<>();
        tokenized.body().path("tokens").forEach(t -> ids.add(t.asInt()));
        return ids;
    }

    static void assertError(Answer answer, int status, String param) {
        assertEquals(status, answer.status(), String.valueOf(answer.body()));
        JsonNode error = answer.body().path("error");
        assertFalse(error.path("message").asText().isBlank());
        assertNotEquals("", error.path("type").asText());
        assertFalse(error.path("message").asText().contains("\tat "), "no stack trace");
        if (param != null) assertEquals(param, error.path("param").asText(), error.toString());
    }
}
