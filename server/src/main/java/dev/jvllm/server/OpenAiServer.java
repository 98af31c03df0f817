package dev.jvllm.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.jvllm.ClassificationOutput;
import dev.jvllm.CompletionOutput;
import dev.jvllm.EmbeddingOutput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.LoraRequest;
import dev.jvllm.PoolingParams;
import dev.jvllm.RequestFailedException;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.ScoringOutput;
import dev.jvllm.Task;
import dev.jvllm.TokenEmbeddingsOutput;
import dev.jvllm.ToolCallParser;
import dev.jvllm.engine.AsyncLLMEngine;
import dev.jvllm.engine.EngineClosedException;
import dev.jvllm.engine.EngineDeadException;
import dev.jvllm.engine.EngineMetrics;
import dev.jvllm.engine.RequestLatencies;
import dev.jvllm.engine.RequestStream;
import dev.jvllm.hub.ModelResolver;
import dev.jvllm.sampling.NothingToDrawException;
import dev.jvllm.structured.Regex;
import dev.jvllm.tokenizer.ChatTemplateException;
import dev.jvllm.tokenizer.TokenizerException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * An OpenAI-compatible HTTP server over one model, as {@code vllm serve}: {@code /v1/models},
 * {@code /v1/completions} and {@code /v1/chat/completions} (whole or streamed as server-sent events
 * ending in {@code data: [DONE]}), {@code /v1/embeddings} for a model loaded for {@link Task#EMBED},
 * and {@code /health}. Requests from all connections share the engine's continuous batching; a client
 * that goes away mid-stream has its request aborted.
 *
 * <p>Chat messages may hold images for a vision-language model (LLaVA), as OpenAI's content parts
 * {@code {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}}; only base64
 * {@code data:} URLs are read, the server fetching nothing. The chat template gets them as
 * {@link LLM#renderChat(List, Map)} describes (vLLM's content format).
 *
 * <p>Sampling fields are OpenAI's and vLLM's ({@code top_k}, {@code min_p}, {@code repetition_penalty},
 * {@code stop_token_ids}, {@code ignore_eos}, ...); every one given is applied or refused with a 400
 * naming it, never ignored. Bodies above the size limit get 413; an API key, when set, is compared in
 * constant time. Errors have OpenAI's shape and no stack traces.
 *
 * <pre>{@code
 * try (OpenAiServer server = OpenAiServer.builder(LLM.builder().model("Qwen/Qwen2.5-0.5B-Instruct").build())
 *         .port(8000).start()) {
 *     server.awaitClose();
 * }
 * }</pre>
 */
public final class OpenAiServer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(OpenAiServer.class);
    /** Sequences (prompts × n) one request may ask for. */
    static final int MAX_SEQUENCES = 1024;

    private final LLM llm;
    private final AsyncLLMEngine engine;
    private final HttpServer http;
    private final ExecutorService handlers = Executors.newVirtualThreadPerTaskExecutor();
    private final String modelName;
    /** How the model writes tool calls, for tool_choice "auto"; null where auto is not served. */
    private final ToolCallParser toolCallParser;
    private final ReasoningParser reasoningParser;
    /** The LoRA adapters served under their own names, each a request's {@code model}, by name. */
    private final Map<String, LoraRequest> loras;
    private final byte[] apiKey;
    private final long maxBodyBytes;
    private final long created = System.currentTimeMillis() / 1000;
    private final Object embeddingTurn = new Object();
    private final CountDownLatch closed = new CountDownLatch(1);
    private final Map<String, Route> routes = routes();

    private OpenAiServer(Builder b) throws IOException {
        this.llm = b.llm;
        this.modelName = b.servedModelName != null ? b.servedModelName : ModelResolver.modelName(b.llm.modelDirectory());
        Map<String, LoraRequest> adapters = new LinkedHashMap<>();
        int loraId = 1;
        for (Map.Entry<String, Path> module : b.loraModules.entrySet()) {
            if (module.getKey().equals(modelName)) {
                throw new IllegalArgumentException("LoRA module '" + module.getKey() + "' has the served model's own name");
            }
            adapters.put(module.getKey(), new LoraRequest(module.getKey(), loraId++, module.getValue()));
        }
        this.loras = Map.copyOf(adapters);
        this.toolCallParser = b.toolCallParser;
        this.reasoningParser = b.reasoningParser;
        this.apiKey = b.apiKey == null ? null : b.apiKey.getBytes(StandardCharsets.UTF_8);
        this.maxBodyBytes = b.maxBodyBytes;
        // Bound before the engine is taken over, so that a port in use leaves the caller's model as it was.
        try {
            this.http = HttpServer.create(new InetSocketAddress(b.host, b.port), 128);
        } catch (IOException e) {
            handlers.shutdownNow();
            throw new IOException("cannot listen on " + b.host + ":" + b.port + ": " + e.getMessage(), e);
        }
        this.engine = llm.task() == Task.GENERATE ? new AsyncLLMEngine(llm.engine(), llm) : null;
        http.createContext("/", this::handle);
        http.setExecutor(handlers);
        http.start();
        log.info("serving {} ({}) at {}", modelName, llm.task(), address());
        var defaults = llm.generationConfig();
        if (defaults.temperature().isPresent() || defaults.topP().isPresent() || defaults.topK().isPresent()
                || defaults.repetitionPenalty().isPresent() || defaults.maxNewTokens().isPresent()) {
            log.info("requests that leave them out take generation_config.json's temperature {}, top_p {}, top_k {}, "
                    + "repetition_penalty {}, max_new_tokens {} (chat)", defaults.temperature(), defaults.topP(), defaults.topK(),
                    defaults.repetitionPenalty(), defaults.maxNewTokens());
        }
    }

    /** A server for {@code llm}, which it owns from {@link Builder#start()} on and closes with itself. */
    public static Builder builder(LLM llm) {
        return new Builder(llm);
    }

    /** The port listened on (the one chosen, where 0 was asked for). */
    public int port() {
        return http.getAddress().getPort();
    }

    /** The server's base address, e.g. {@code http://127.0.0.1:8000}. */
    public URI address() {
        InetSocketAddress bound = http.getAddress();
        String host = bound.getAddress().isAnyLocalAddress() ? "127.0.0.1" : bound.getAddress().getHostAddress();
        return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + bound.getPort());
    }

    /** The model name clients give in {@code model} and {@code /v1/models} lists. */
    public String modelName() {
        return modelName;
    }

    /** The engine's counters as of its last step (requests running and waiting, KV blocks); empty for an embedding model. */
    public Optional<EngineMetrics> metrics() {
        return engine == null ? Optional.empty() : Optional.ofNullable(engine.metrics());
    }

    /** Blocks until {@link #close()} is called (from another thread or a shutdown hook). */
    public void awaitClose() throws InterruptedException {
        closed.await();
    }

    /** Stops listening, fails requests in flight (their streams end with an error) and closes the model. */
    @Override
    public synchronized void close() {
        if (closed.getCount() == 0) return;
        http.stop(0);
        if (engine != null) engine.close();
        else llm.close();
        handlers.shutdownNow();
        closed.countDown();
    }

    // ---- routing ----------------------------------------------------------------------------------

    /** What a route does with an exchange. */
    private interface Handler {
        void handle(HttpExchange exchange) throws IOException;
    }

    /** A route: the one method it takes, whether it is open without the API key, and its handler. */
    private record Route(String method, boolean open, Handler handler) {
    }

    private Map<String, Route> routes() {
        Route score = new Route("POST", false, exchange -> score(exchange, body(exchange)));
        Route rerank = new Route("POST", false, exchange -> rerank(exchange, body(exchange)));
        Route classify = new Route("POST", false, exchange -> classify(exchange, body(exchange)));
        return Map.ofEntries(
                Map.entry("/health", new Route("GET", true, exchange -> exchange.sendResponseHeaders(200, -1))),
                Map.entry("/metrics", new Route("GET", true, this::metrics)),
                Map.entry("/v1/models", new Route("GET", false, this::models)),
                Map.entry("/tokenize", new Route("POST", false, exchange -> tokenize(exchange, body(exchange)))),
                Map.entry("/detokenize", new Route("POST", false, exchange -> detokenize(exchange, body(exchange)))),
                Map.entry("/v1/completions", new Route("POST", false, exchange -> completions(exchange, body(exchange)))),
                Map.entry("/v1/chat/completions", new Route("POST", false, exchange -> chat(exchange, body(exchange)))),
                Map.entry("/v1/embeddings", new Route("POST", false, exchange -> embeddings(exchange, body(exchange)))),
                Map.entry("/pooling", new Route("POST", false, exchange -> pooling(exchange, body(exchange)))),
                Map.entry("/v1/responses", new Route("POST", false, exchange -> responses(exchange, body(exchange)))),
                // vLLM's paths for these: its own and the ones Jina's and Cohere's clients call
                Map.entry("/score", score), Map.entry("/v1/score", score),
                Map.entry("/rerank", rerank), Map.entry("/v1/rerank", rerank), Map.entry("/v2/rerank", rerank),
                Map.entry("/classify", classify), Map.entry("/v1/classify", classify));
    }

    private void handle(HttpExchange exchange) {
        try (exchange) {
            String path = exchange.getRequestURI().getPath();
            String method = exchange.getRequestMethod();
            try {
                Route route = routes.get(path);
                if (route == null || !route.open()) authorize(exchange);
                if (route == null) throw ApiError.notFound("no route " + path);
                if (!method.equals(route.method())) {
                    exchange.getResponseHeaders().set("Allow", route.method());
                    throw new ApiError(405, "invalid_request_error", method + " is not allowed here; use " + route.method(), null);
                }
                route.handler().handle(exchange);
            } catch (ApiError e) {
                sendError(exchange, e.status, e.type, e.getMessage(), e.param);
            } catch (InvalidRequestException e) {
                sendError(exchange, 400, "invalid_request_error", e.getMessage(), snakeCase(e.field()));
            } catch (ChatTemplateException e) {
                sendError(exchange, 400, "invalid_request_error", "the chat template refused the messages: " + e.getMessage(), "messages");
            } catch (EngineDeadException | EngineClosedException e) {
                sendError(exchange, 503, "service_unavailable", e.getMessage(), null);
            } catch (RequestFailedException e) {
                if (requestsOwnDoing(e)) {
                    sendError(exchange, 400, "invalid_request_error", e.getMessage(), null);
                } else {
                    internalError(exchange, method, path, e);
                }
            } catch (ClientGone e) {
                log.debug("a client left before its answer was written: {}", e.getMessage());
            } catch (RuntimeException e) {
                internalError(exchange, method, path, e);
            }
        } catch (IOException e) {
            log.debug("writing an answer failed: {}", e.toString());
        }
    }

    private void authorize(HttpExchange exchange) {
        if (apiKey == null) return;
        String header = Objects.requireNonNullElse(exchange.getRequestHeaders().getFirst("Authorization"), "");
        byte[] given = header.startsWith("Bearer ") ? header.substring(7).getBytes(StandardCharsets.UTF_8) : new byte[0];
        if (!MessageDigest.isEqual(given, apiKey)) {
            throw new ApiError(401, "authentication_error", "a valid API key is needed (Authorization: Bearer <key>)", null);
        }
    }

    /** The request's JSON object, read up to the size limit. */
    private JsonNode body(HttpExchange exchange) throws IOException {
        String length = exchange.getRequestHeaders().getFirst("Content-Length");
        if (length != null && parseLong(length) > maxBodyBytes) throw tooLarge();
        byte[] bytes;
        try (InputStream in = exchange.getRequestBody()) {
            bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBodyBytes + 1));
        }
        if (bytes.length > maxBodyBytes) throw tooLarge();
        JsonNode body;
        try {
            body = OpenAiResponses.JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw ApiError.invalid(null, "the body is not valid JSON: " + e.getOriginalMessage());
        }
        if (body == null || !body.isObject()) throw ApiError.invalid(null, "the body must be a JSON object");
        String model = OpenAiRequests.text(body, "model", modelName);
        if (!model.equals(modelName) && !loras.containsKey(model)) {
            throw new ApiError(404, "not_found_error", "the model '" + model + "' does not exist; this server serves '" + modelName + "'"
                    + (loras.isEmpty() ? "" : " and the LoRA adapters " + loras.keySet()), "model");
        }
        return body;
    }

    private ApiError tooLarge() {
        return new ApiError(413, "invalid_request_error", "the body is over this server's limit of " + maxBodyBytes + " bytes", null);
    }

    private static long parseLong(String value) {
        try {
            return Long.parseLong(value.strip());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    // ---- endpoints --------------------------------------------------------------------------------

    private void models(HttpExchange exchange) throws IOException {
        ObjectNode list = OpenAiResponses.JSON.createObjectNode().put("object", "list");
        ObjectNode model = list.putArray("data").addObject();
        model.put("id", modelName).put("object", "model").put("created", created).put("owned_by", "jvllm")
                .put("root", llm.modelDirectory().toString());
        if (engine != null) model.put("max_model_len", llm.engine().maxModelLen());
        for (LoraRequest lora : loras.values()) {
            list.withArray("data").addObject().put("id", lora.name()).put("object", "model").put("created", created)
                    .put("owned_by", "jvllm").put("root", lora.path().toString()).put("parent", modelName);
        }
        sendJson(exchange, 200, list);
    }

    /** The engine's counters in Prometheus' text format, under vLLM's metric names where it has them. */
    private void metrics(HttpExchange exchange) throws IOException {
        StringBuilder text = new StringBuilder();
        String labelValue = modelName.replace("\\", "\\\\").replace("\"", "\\\"");
        metrics().ifPresent(m -> {
            String label = "{model_name=\"" + labelValue + "\"}";
            gauge(text, "vllm:num_requests_running", "Sequences being generated.", label, m.running());
            gauge(text, "vllm:num_requests_waiting", "Sequences waiting (new or preempted).", label, m.waiting());
            gauge(text, "vllm:kv_cache_usage_perc", "Share of KV-cache blocks in use (1 = all).", label,
                    m.kvBlocksTotal() == 0 ? 0 : (double) m.kvBlocksUsed() / m.kvBlocksTotal());
            counter(text, "vllm:prompt_tokens_total", "Prompt tokens run through the model.", label, m.promptTokensComputed());
            counter(text, "vllm:generation_tokens_total", "Tokens generated.", label, m.generatedTokens());
            counter(text, "vllm:num_preemptions_total", "Sequences preempted.", label, m.preemptions());
            counter(text, "vllm:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.", label, m.prefixCacheQueries());
            counter(text, "vllm:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.", label, m.prefixCacheHits());
            counter(text, "jvllm:engine_steps_total", "Forward passes run.", label, m.steps());
            counter(text, "vllm:spec_decode_num_draft_tokens_total", "Guessed tokens verified (speculative decoding).", label,
                    m.draftTokens());
            counter(text, "vllm:spec_decode_num_accepted_tokens_total", "Guessed tokens kept (speculative decoding).", label,
                    m.acceptedDraftTokens());
        });
        if (engine != null) {
            RequestLatencies latencies = engine.latencies();
            histogram(text, "vllm:time_to_first_token_seconds", "Time from a request's arrival to its first token.", labelValue,
                    latencies.timeToFirstToken());
            histogram(text, "vllm:inter_token_latency_seconds", "Time between a request's steps that gave it tokens.", labelValue,
                    latencies.interTokenLatency());
            histogram(text, "vllm:e2e_request_latency_seconds", "Time from a request's arrival to its end.", labelValue,
                    latencies.endToEnd());
            text.append("# HELP vllm:request_success_total Answers ended, by finish reason (each of n parallel answers counts).\n")
                    .append("# TYPE vllm:request_success_total counter\n");
            latencies.endedByReason().forEach((reason, n) -> text.append("vllm:request_success_total{model_name=\"").append(labelValue)
                    .append("\",finished_reason=\"").append(reason).append("\"} ").append(n).append('\n'));
        }
        byte[] bytes = text.toString().getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        exchange.sendResponseHeaders(200, bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) exchange.getResponseBody().write(bytes);
    }

    /** A histogram in Prometheus' text format: cumulative buckets by upper bound ({@code le}), then the sum and count. */
    private static void histogram(StringBuilder text, String name, String help, String modelLabel, RequestLatencies.Snapshot h) {
        text.append("# HELP ").append(name).append(' ').append(help).append('\n')
                .append("# TYPE ").append(name).append(" histogram\n");
        String labels = "{model_name=\"" + modelLabel + "\",le=\"";
        long cumulative = 0;
        for (int i = 0; i < h.counts().length; i++) {
            cumulative += h.counts()[i];
            String bound = i < h.upperBounds().length ? Double.toString(h.upperBounds()[i]) : "+Inf";
            text.append(name).append("_bucket").append(labels).append(bound).append("\"} ").append(cumulative).append('\n');
        }
        text.append(name).append("_sum{model_name=\"").append(modelLabel).append("\"} ").append(h.sum()).append('\n')
                .append(name).append("_count{model_name=\"").append(modelLabel).append("\"} ").append(h.count()).append('\n');
    }

    private static void gauge(StringBuilder text, String name, String help, String label, double value) {
        metric(text, name, "gauge", help, label, value);
    }

    private static void counter(StringBuilder text, String name, String help, String label, double value) {
        metric(text, name, "counter", help, label, value);
    }

    private static void metric(StringBuilder text, String name, String type, String help, String label, double value) {
        text.append("# HELP ").append(name).append(' ').append(help).append('\n')
                .append("# TYPE ").append(name).append(' ').append(type).append('\n')
                .append(name).append(label).append(' ').append(value).append('\n');
    }

    /** vLLM's /tokenize: a prompt (or chat messages, rendered by the template) to token ids. */
    private void tokenize(HttpExchange exchange, JsonNode body) throws IOException {
        if (llm.tokenizer() == null) throw ApiError.invalid("prompt", "the model has no tokenizer");
        int[] ids;
        if (body.has("messages")) {
            var chat = OpenAiRequests.messages(body, llm.engine().limitImagesPerPrompt());
            ids = llm.engine().textPrompt(renderChat(body, chat, null), false, chat.images(), "messages").tokenIds();
        } else {
            String prompt = OpenAiRequests.text(body, "prompt", null);
            if (prompt == null) throw ApiError.invalid("prompt", "'prompt' (or 'messages') is required");
            Boolean special = OpenAiRequests.bool(body, "add_special_tokens");
            ids = llm.tokenizer().encode(prompt, special == null || special);
        }
        ObjectNode answer = OpenAiResponses.JSON.createObjectNode();
        ArrayNode tokens = answer.putArray("tokens");
        for (int id : ids) tokens.add(id);
        answer.put("count", ids.length);
        if (engine != null) answer.put("max_model_len", llm.engine().maxModelLen());
        sendJson(exchange, 200, answer);
    }

    /** vLLM's /detokenize: token ids to text. */
    private void detokenize(HttpExchange exchange, JsonNode body) throws IOException {
        if (llm.tokenizer() == null) throw ApiError.invalid("tokens", "the model has no tokenizer");
        JsonNode tokens = body.get("tokens");
        if (tokens == null || !tokens.isArray()) throw ApiError.invalid("tokens", "'tokens' must be a list of token ids");
        List<Prompt> asPrompt = tokens.isEmpty() ? List.of(Prompt.tokens()) : OpenAiRequests.prompts(body, "tokens");
        if (!(asPrompt.getFirst() instanceof Prompt.Tokens(int[] ids, var images, var salt)) || asPrompt.size() != 1) {
            throw ApiError.invalid("tokens", "'tokens' must be a list of token ids");
        }
        String text;
        try {
            text = llm.tokenizer().decode(ids, false);
        } catch (TokenizerException e) {
            throw ApiError.invalid("tokens", e.getMessage());
        }
        sendJson(exchange, 200, OpenAiResponses.JSON.createObjectNode().put("prompt", text));
    }

    private void completions(HttpExchange exchange, JsonNode body) throws IOException {
        requireGenerating();
        List<Prompt> prompts = OpenAiRequests.salted(OpenAiRequests.prompts(body, "prompt"), OpenAiRequests.cacheSalt(body));
        OpenAiRequests.Echo echo = OpenAiRequests.echo(body);
        SamplingParams params = OpenAiRequests.sampling(body, 16, false, echo, llm.generationConfig());
        OpenAiRequests.Streaming streaming = OpenAiRequests.streaming(body);
        String model = OpenAiRequests.text(body, "model", modelName);
        var envelope = new OpenAiResponses.Envelope("cmpl-" + UUID.randomUUID(), "text_completion", System.currentTimeMillis() / 1000, model);
        boolean withLogprobs = params.logprobs().isPresent();
        boolean withPromptLogprobs = body.hasNonNull("prompt_logprobs");
        generate(exchange, envelope, prompts, params, streaming, new ChoiceWriter() {
            final int[] offsets = new int[prompts.size() * params.n()];

            @Override
            public void whole(ObjectNode choice, RequestOutput request, CompletionOutput output, int index) {
                if (withPromptLogprobs && request.promptLogprobs() != null) {
                    choice.set("prompt_logprobs", OpenAiResponses.promptLogprobs(request, OpenAiServer.this::decodeOne));
                }
                if (!echo.echo()) {
                    delta(choice, request, output, index);
                    return;
                }
                String generated = echo.scoreOnly() ? "" : output.text();
                choice.put("text", promptText(request) + generated);
                if (!withLogprobs) choice.putNull("logprobs");
                else choice.set("logprobs", OpenAiResponses.echoedLogprobs(request, echo.scoreOnly() ? null : output,
                        OpenAiServer.this::decodeOne));
            }

            @Override
            public void delta(ObjectNode choice, RequestOutput request, CompletionOutput output, int index) {
                choice.put("text", output.text());
                if (!withLogprobs || output.logprobs() == null) {
                    choice.putNull("logprobs");
                    return;
                }
                choice.set("logprobs", OpenAiResponses.completionLogprobs(output, OpenAiServer.this::decodeOne, offsets[index]));
                offsets[index] += output.text().length();
            }

            @Override
            public int completionTokens(CompletionOutput output) {
                return echo.scoreOnly() ? 0 : output.tokenIds().size();
            }

            @Override
            public String finishReason(CompletionOutput output) {
                return echo.scoreOnly() ? "length" : OpenAiResponses.finishReason(output);
            }
        });
    }

    /**
     * The messages as the chat template renders them with the request's rendering extras
     * ({@link OpenAiRequests#rendering}) and its tools (non-null: over a {@code tools} template variable).
     */
    private String renderChat(JsonNode body, OpenAiRequests.ChatMessages messages, Object templateTools) {
        dev.jvllm.ChatOptions.Builder options = OpenAiRequests.rendering(body);
        if (templateTools != null) options.templateVariable("tools", templateTools);
        return llm.renderChat(messages.messages(), options.build());  // its refusals name their fields in snake case
    }

    /** The prompt as text: as given, or decoded from its token ids. */
    private String promptText(RequestOutput request) {
        if (request.prompt() != null && !request.prompt().isEmpty()) return request.prompt();
        return llm.tokenizer().decode(request.promptTokenIds().stream().mapToInt(Integer::intValue).toArray(), true);
    }

    private void chat(HttpExchange exchange, JsonNode body) throws IOException {
        requireGenerating();
        OpenAiRequests.ChatMessages messages = OpenAiRequests.messages(body, llm.engine().limitImagesPerPrompt());
        String cacheSalt = OpenAiRequests.cacheSalt(body);
        OpenAiRequests.Tools tools = OpenAiRequests.tools(body, toolCallParser != null);
        SamplingParams asked = OpenAiRequests.sampling(body, null, true, OpenAiRequests.Echo.NONE, llm.generationConfig());
        OpenAiRequests.Streaming streaming = OpenAiRequests.streaming(body);
        SamplingParams params = constrainedForTools(asked, tools, "response_format", "a structured output");
        OptionalInt topLogprobs = params.logprobs(); // chat's logprobs: true with top_logprobs (0 when not given)
        if (llm.tokenizer() == null) throw ApiError.invalid("messages", "the model has no tokenizer, so it has no chat template");
        String rendered = renderChat(body, messages, tools.templateTools());
        Prompt prompt = llm.engine().textPrompt(rendered, false, messages.images(), "messages");
        String model = OpenAiRequests.text(body, "model", modelName);
        var envelope = new OpenAiResponses.Envelope("chatcmpl-" + UUID.randomUUID(), streaming.stream() ? "chat.completion.chunk" : "chat.completion",
                System.currentTimeMillis() / 1000, model);
        boolean required = tools.choice().equals("required");
        boolean withPromptLogprobs = body.hasNonNull("prompt_logprobs");
        generate(exchange, envelope, OpenAiRequests.salted(List.of(prompt), cacheSalt), params, streaming, new ChoiceWriter() {
            @Override
            public void finishAnswer(ObjectNode answer, List<RequestOutput> results) {
                RequestOutput only = results.getFirst();
                if (withPromptLogprobs && only.promptLogprobs() != null) {
                    answer.set("prompt_logprobs", OpenAiResponses.promptLogprobs(only, OpenAiServer.this::decodeOne)); // vLLM's place for chat
                }
            }

            final boolean[] started = new boolean[params.n()];
            /** Each parsed streamed answer's text so far, and what of it was sent. */
            final ParsedStream[] parsed = new ParsedStream[params.n()];

            @Override
            public void whole(ObjectNode choice, RequestOutput request, CompletionOutput output, int index) {
                ObjectNode message = choice.putObject("message").put("role", "assistant");
                ReasoningParser.Split split = reasoningSplit(output.text());
                if (split.reasoning() != null) message.put("reasoning_content", split.reasoning());
                AnswerCalls answer = callsIn(tools, split.content());
                if (answer.calls().isEmpty()) {
                    message.put("content", answer.content());
                } else {
                    // A named or required choice's calls stand beside "" as vLLM answers them; auto's beside their text, or null.
                    if (tools.auto() && answer.content().isEmpty()) message.putNull("content");
                    else message.put("content", answer.content());
                    message.set("tool_calls", toolCallsArray(answer.calls()));
                }
                putLogprobs(choice, output);
            }

            @Override
            public String finishReason(CompletionOutput output) {
                if (!tools.auto() || output.finishReason() == null) return OpenAiResponses.finishReason(output);
                String text = reasoningSplit(streaming.stream() ? parsed[output.index()].text() : output.text()).content();
                return toolCallParser.parse(text).calls().isEmpty() ? OpenAiResponses.finishReason(output) : "tool_calls";
            }

            @Override
            public void delta(ObjectNode choice, RequestOutput request, CompletionOutput output, int index) {
                ObjectNode delta = choice.putObject("delta");
                boolean first = !started[index];
                if (first) {
                    delta.put("role", "assistant");
                    started[index] = true;
                }
                if (tools.auto() || required || reasoningParser != null) {
                    streamParsed(delta, output, index);
                } else if (tools.calls()) {
                    // A named function's call, streamed as vLLM does: its id and name first, then the arguments' text.
                    ObjectNode call = delta.putArray("tool_calls").addObject().put("index", 0);
                    if (first) {
                        call.put("id", "chatcmpl-tool-" + UUID.randomUUID().toString().replace("-", "")).put("type", "function");
                        call.putObject("function").put("name", tools.choice()).put("arguments", output.text());
                    } else {
                        call.putObject("function").put("arguments", output.text());
                    }
                } else if (!output.text().isEmpty() || output.finishReason() == null) {
                    delta.put("content", output.text());
                }
                putLogprobs(choice, output);
            }

            /**
             * An answer that is parsed, streamed: its reasoning (with a reasoning parser) as
             * {@code reasoning_content} as far as it is certain; its content as content, with "auto" up to
             * where the tool-call parser holds it back (a call's start, or what may still become one). At
             * the end the rest is parsed, and its calls (or, where none parse, the text) are sent in the
             * last delta, as the whole answer would hold them. A "required" answer, a JSON list of calls,
             * is held whole.
             */
            private void streamParsed(ObjectNode delta, CompletionOutput output, int index) {
                ParsedStream stream = parsed[index] == null
                        ? parsed[index] = new ParsedStream(reasoningParser, tools.auto() ? toolCallParser.holding() : null, required)
                        : parsed[index];
                if (output.finishReason() == null) {
                    putPiece(delta, stream.append(output.text()));
                    return;
                }
                ReasoningParser.Split split = reasoningSplit(stream.end(output.text()));
                AnswerCalls answer = callsIn(tools, split.content());
                putPiece(delta, stream.rest(split.reasoning(), answer.content()));
                if (answer.calls().isEmpty()) return;
                ArrayNode calls = toolCallsArray(answer.calls());
                for (int i = 0; i < calls.size(); i++) ((ObjectNode) calls.get(i)).put("index", i);
                delta.set("tool_calls", calls);
            }

            private static void putPiece(ObjectNode delta, ParsedStream.Piece piece) {
                if (!piece.reasoning().isEmpty()) delta.put("reasoning_content", piece.reasoning());
                if (!piece.content().isEmpty()) delta.put("content", piece.content());
            }

            private void putLogprobs(ObjectNode choice, CompletionOutput output) {
                if (topLogprobs.isEmpty() || output.logprobs() == null) choice.putNull("logprobs");
                else choice.set("logprobs", OpenAiResponses.chatLogprobs(output, OpenAiServer.this::decodeOne, topLogprobs.getAsInt()));
            }
        });
    }

    /**
     * OpenAI's Responses API ({@link ResponsesApi}): the request read as the chat request it amounts to,
     * one answer, whole or streamed as the API's named events.
     */
    private void responses(HttpExchange exchange, JsonNode body) throws IOException {
        requireGenerating();
        ObjectNode chat = ResponsesApi.chatBody(body);
        OpenAiRequests.ChatMessages messages = OpenAiRequests.messages(chat, llm.engine().limitImagesPerPrompt());
        OpenAiRequests.Tools tools = OpenAiRequests.tools(chat, toolCallParser != null);
        SamplingParams asked = OpenAiRequests.sampling(chat, null, true, OpenAiRequests.Echo.NONE, llm.generationConfig());
        if (asked.n() != 1) throw ApiError.invalid("n", "a response holds one answer");
        SamplingParams params = constrainedForTools(asked, tools, "text.format", "a text format");
        if (llm.tokenizer() == null) throw ApiError.invalid("input", "the model has no tokenizer, so it has no chat template");
        Prompt prompt = llm.engine().textPrompt(renderChat(chat, messages, tools.templateTools()), false, messages.images(), "input");
        Prompt salted = OpenAiRequests.salted(List.of(prompt), OpenAiRequests.cacheSalt(chat)).getFirst();
        requireRoomFor(List.of(salted), params);
        String model = OpenAiRequests.text(body, "model", modelName);
        ResponsesApi.Ids ids = ResponsesApi.Ids.fresh();
        long createdAt = System.currentTimeMillis() / 1000;
        RequestStream stream = engine.submit(ids.response(), salted, params, loras.get(model));
        try {
            if (!Boolean.TRUE.equals(OpenAiRequests.bool(body, "stream"))) {
                RequestOutput result = await(stream);
                CompletionOutput output = result.outputs().getFirst();
                AnswerWithCalls answer = answerWithCalls(tools, output.text());
                sendJson(exchange, 200, ResponsesApi.response(ids, createdAt, model, body, answer.reasoning(), answer.content(), answer.calls(),
                        "length".equals(OpenAiResponses.finishReason(output)), result.promptTokenIds().size(), output.tokenIds().size()));
                return;
            }
            streamResponse(exchange, stream, tools, ids, createdAt, model, body);
        } finally {
            if (!stream.result().isDone()) stream.abort();
        }
    }

    /** An answer's reasoning item (null: none), its content and the function calls it made, as the Responses API's items. */
    private record AnswerWithCalls(ObjectNode reasoning, String content, List<ObjectNode> calls) {
    }

    /**
     * {@code asked}, constrained to the tool calls a named or required tool choice asks for. Refused where
     * the request also asks for its own format ({@code formatField}, which it calls {@code format}), and
     * where a reasoning parser would have the constraint hold the thinking too.
     */
    private SamplingParams constrainedForTools(SamplingParams asked, OpenAiRequests.Tools tools, String formatField, String format) {
        if (reasoningParser != null && (tools.calls() || asked.structuredOutputs().isPresent())) {
            throw ApiError.invalid(tools.calls() ? "tool_choice" : formatField, "with a reasoning parser, answers are not constrained:"
                    + " the constraint would hold the thinking too (ask with tool_choice auto, or without " + format + ")");
        }
        if (!tools.calls()) return asked;
        if (asked.structuredOutputs().isPresent()) throw ApiError.invalid("tool_choice", "tool calls and " + format + " cannot be asked for together");
        try {
            return asked.toBuilder().structuredOutputs(tools.constraint()).build();
        } catch (InvalidRequestException e) {
            throw ApiError.invalid("tools", e.getMessage());
        }
    }

    /** A thinking model's reasoning apart (with a reasoning parser), then the calls the rest holds and the content beside them. */
    private AnswerWithCalls answerWithCalls(OpenAiRequests.Tools tools, String whole) {
        ReasoningParser.Split split = reasoningSplit(whole);
        ObjectNode reasoning = split.reasoning() == null || split.reasoning().isEmpty() ? null : ResponsesApi.reasoning(split.reasoning());
        AnswerCalls answer = callsIn(tools, split.content());
        List<ObjectNode> calls = answer.calls().stream().map(call -> ResponsesApi.functionCall(call.name(), call.arguments())).toList();
        return new AnswerWithCalls(reasoning, answer.content(), calls);
    }

    /** An answer's reasoning (with a reasoning parser; null without one) and its content. */
    private ReasoningParser.Split reasoningSplit(String text) {
        return reasoningParser == null ? new ReasoningParser.Split(null, text) : reasoningParser.split(text);
    }

    /** The calls an answer holds and the content beside them; an answer with no calls is its text whole. */
    private record AnswerCalls(String content, List<ToolCallParser.Call> calls) {
    }

    /**
     * The calls a whole answer holds under the request's tool choice: a named function's arguments or a
     * required list (the content beside them empty; none where the JSON did not close), or what the
     * tool-call parser finds with "auto" (beside the text before them).
     */
    private AnswerCalls callsIn(OpenAiRequests.Tools tools, String text) {
        if (tools.auto()) {
            ToolCallParser.Parsed parsed = toolCallParser.parse(text);
            return parsed.calls().isEmpty() ? new AnswerCalls(text, List.of()) : new AnswerCalls(parsed.content(), parsed.calls());
        }
        List<ToolCallParser.Call> listed = tools.calls() ? toolCalls(tools, text) : null;
        return listed == null ? new AnswerCalls(text, List.of()) : new AnswerCalls("", listed);
    }

    /** Pieces of a held answer between the comment lines that keep its stream checked (see streamResponse). */
    private static final int HELD_STREAM_COMMENT_EVERY = 16;

    /**
     * A response streamed as the Responses API's events, each {@code event: TYPE} with its JSON (a
     * {@code sequence_number} counting from 0): created and in progress; the message item and its text
     * part added, the text's deltas, and each done; then the function calls' items with their arguments;
     * then the response completed (or incomplete). With tools the answer is held until it ends, when its
     * calls are known: its message and calls then come at once.
     */
    private void streamResponse(HttpExchange exchange, RequestStream stream, OpenAiRequests.Tools tools, ResponsesApi.Ids ids,
                                long createdAt, String model, JsonNode body) throws IOException {
        LinkedBlockingQueue<Event> events = queued(List.of(stream));
        Event first = take(events);
        OutputStream out = startEventStream(exchange, first);
        int[] sequence = {0};
        java.util.function.BiConsumer<String, ObjectNode> emit = (type, event) -> {
            ObjectNode data = OpenAiResponses.JSON.createObjectNode().put("type", type).put("sequence_number", sequence[0]++);
            data.setAll(event);
            write(out, "event: " + type + "\ndata: " + data + "\n\n");
        };
        ObjectNode inProgress = ResponsesApi.response(ids, createdAt, model, body, null, false, 0, 0);
        emit.accept("response.created", OpenAiResponses.JSON.createObjectNode().set("response", inProgress));
        emit.accept("response.in_progress", OpenAiResponses.JSON.createObjectNode().set("response", inProgress));
        boolean holding = tools.auto() || tools.calls() || reasoningParser != null;
        ObjectNode where = OpenAiResponses.JSON.createObjectNode().put("item_id", ids.message()).put("output_index", 0).put("content_index", 0);
        Runnable openMessage = () -> {
            emit.accept("response.output_item.added", OpenAiResponses.JSON.createObjectNode().put("output_index", where.path("output_index").asInt())
                    .set("item", ResponsesApi.message(ids, null, "in_progress")));
            emit.accept("response.content_part.added", where.deepCopy().set("part", ResponsesApi.outputText("")));
        };
        java.util.function.Consumer<String> delta = piece -> {
            ObjectNode text = where.deepCopy().put("delta", piece);
            text.putArray("logprobs");
            emit.accept("response.output_text.delta", text);
        };
        if (!holding) openMessage.run();
        StringBuilder text = new StringBuilder();
        int promptTokens = 0, outputTokens = 0, heldPieces = 0;
        boolean stoppedByLength = false;
        for (Event event = first; !(event instanceof Ended); event = take(events)) {
            switch (event) {
                case null -> {
                    return;
                }
                case Delta(int prompt, RequestOutput output) -> {
                    CompletionOutput piece = output.outputs().getFirst();
                    text.append(piece.text());
                    outputTokens += piece.tokenIds().size();
                    promptTokens = output.promptTokenIds().size();
                    if (piece.finishReason() != null) stoppedByLength = "length".equals(OpenAiResponses.finishReason(piece));
                    if (!holding && !piece.text().isEmpty()) delta.accept(piece.text());
                    // A held answer sends nothing until it ends: a comment line now and then (which clients skip)
                    // finds a client that left, whose request is then aborted.
                    if (holding && ++heldPieces % HELD_STREAM_COMMENT_EVERY == 0) write(out, ": generating\n\n");
                }
                case Failed(int prompt, Throwable error) -> {
                    ObjectNode failed = ResponsesApi.response(ids, createdAt, model, body, null, false, 0, 0).put("status", "failed");
                    failed.putObject("error").put("code", "server_error").put("message", String.valueOf(error.getMessage()));
                    emit.accept("response.failed", OpenAiResponses.JSON.createObjectNode().set("response", failed));
                    return;
                }
                case Ended ended -> throw new AssertionError("the loop ends before it");
            }
        }
        AnswerWithCalls answer = holding ? answerWithCalls(tools, text.toString()) : new AnswerWithCalls(null, text.toString(), List.of());
        String content = answer.content();
        int index = 0;
        if (answer.reasoning() != null) {
            ObjectNode added = answer.reasoning().deepCopy().put("status", "in_progress");
            emit.accept("response.output_item.added", OpenAiResponses.JSON.createObjectNode().put("output_index", index).set("item", added));
            emit.accept("response.output_item.done", OpenAiResponses.JSON.createObjectNode().put("output_index", index).set("item", answer.reasoning()));
            index++;
            where.put("output_index", index);
        }
        boolean withMessage = !content.isEmpty() || answer.calls().isEmpty();
        if (withMessage) {
            if (holding) {
                openMessage.run();
                if (!content.isEmpty()) delta.accept(content);
            }
            ObjectNode textDone = where.deepCopy().put("text", content);
            textDone.putArray("logprobs");
            emit.accept("response.output_text.done", textDone);
            emit.accept("response.content_part.done", where.deepCopy().set("part", ResponsesApi.outputText(content)));
            emit.accept("response.output_item.done", OpenAiResponses.JSON.createObjectNode().put("output_index", index)
                    .set("item", ResponsesApi.message(ids, content, "completed")));
            index++;
        }
        for (ObjectNode call : answer.calls()) {
            ObjectNode added = call.deepCopy().put("status", "in_progress").put("arguments", "");
            emit.accept("response.output_item.added", OpenAiResponses.JSON.createObjectNode().put("output_index", index).set("item", added));
            ObjectNode at = OpenAiResponses.JSON.createObjectNode().put("item_id", call.path("id").asText()).put("output_index", index);
            emit.accept("response.function_call_arguments.delta", at.deepCopy().put("delta", call.path("arguments").asText()));
            emit.accept("response.function_call_arguments.done", at.deepCopy().put("arguments", call.path("arguments").asText())
                    .put("name", call.path("name").asText()));
            emit.accept("response.output_item.done", OpenAiResponses.JSON.createObjectNode().put("output_index", index).set("item", call));
            index++;
        }
        ObjectNode done = ResponsesApi.response(ids, createdAt, model, body, answer.reasoning(), content, answer.calls(), stoppedByLength,
                promptTokens, outputTokens);
        emit.accept(stoppedByLength ? "response.incomplete" : "response.completed",
                OpenAiResponses.JSON.createObjectNode().set("response", done));
    }

    /**
     * The tool calls an output holds: the named function's arguments, or the list of
     * {@code {name, parameters}} of a required choice; null where the output is not complete JSON
     * (it ran out of tokens, also before the document began: whitespace alone), which then answers
     * as text.
     */
    private static List<ToolCallParser.Call> toolCalls(OpenAiRequests.Tools tools, String text) {
        if (tools.choice().equals("required")) return ToolCallParser.listed(text);
        try {
            JsonNode arguments = OpenAiResponses.JSON.readTree(text);
            return arguments == null || arguments.isMissingNode() ? null : List.of(new ToolCallParser.Call(tools.choice(), text));
        } catch (JsonProcessingException e) {
            return null;
        }
    }

    /** Calls as chat's {@code tool_calls}, each with an id of its own. */
    private static ArrayNode toolCallsArray(List<ToolCallParser.Call> calls) {
        ArrayNode array = OpenAiResponses.JSON.createArrayNode();
        for (ToolCallParser.Call call : calls) {
            ObjectNode entry = array.addObject().put("id", "chatcmpl-tool-" + UUID.randomUUID().toString().replace("-", "")).put("type", "function");
            entry.putObject("function").put("name", call.name()).put("arguments", call.arguments());
        }
        return array;
    }

    /** The error of a request the served model's task cannot answer; {@code needed} says what it needs. */
    private ApiError notServedFor(String needed) {
        return ApiError.invalid("model", "'" + modelName + "' is served for task " + llm.task().name().toLowerCase(Locale.ROOT) + "; " + needed);
    }

    /** Scores and rankings: an embedding model's cosines, or a cross-encoder's (task classify) relevance. */
    private void requireScoring(String what) {
        if (llm.task() != Task.EMBED && llm.task() != Task.CLASSIFY) {
            throw ApiError.invalid("model", "'" + modelName + "' is served for generation; " + what
                    + " need a model loaded with task embed, or a cross-encoder with task classify");
        }
    }

    /**
     * vLLM's classification API: each of {@code input} (a text, token ids, or a list of either) through a
     * sequence-classification model's head, its label and each label's probability.
     */
    private void classify(HttpExchange exchange, JsonNode body) throws IOException {
        if (llm.task() != Task.CLASSIFY) throw notServedFor("classifications need a *ForSequenceClassification model loaded with task classify");
        List<ClassificationOutput> outputs = classifications(OpenAiRequests.prompts(body, "input"));
        ObjectNode answer = OpenAiResponses.JSON.createObjectNode().put("id", "classify-" + UUID.randomUUID()).put("object", "list")
                .put("created", System.currentTimeMillis() / 1000).put("model", OpenAiRequests.text(body, "model", modelName));
        ArrayNode data = answer.putArray("data");
        int tokens = 0;
        for (int i = 0; i < outputs.size(); i++) {
            ClassificationOutput out = outputs.get(i);
            ObjectNode item = data.addObject().put("index", i).put("label", out.label());
            ArrayNode probs = item.putArray("probs");
            for (float p : out.probs()) probs.add(p);
            item.put("num_classes", out.probs().length);
            tokens += out.promptTokenIds().length;
        }
        answer.set("usage", OpenAiResponses.usage(tokens, 0));
        sendJson(exchange, 200, answer);
    }

    /** The classification model's answers for {@code input}'s prompts, a prompt refused naming 'input'. */
    private List<ClassificationOutput> classifications(List<Prompt> inputs) {
        try {
            synchronized (embeddingTurn) { // LLM's pooling calls run one at a time
                return llm.classifyPrompts(inputs);
            }
        } catch (dev.jvllm.InvalidRequestException e) {
            throw e.field().equals("prompt") ? ApiError.invalid("input", e.getMessage()) : e;  // this API's field is 'input'
        }
    }

    /**
     * vLLM's score API: {@code text_1} (one text, or one for each of {@code text_2}) against each of
     * {@code text_2}: the cosine similarity of their embeddings, or a cross-encoder's relevance of the pair.
     */
    private void score(HttpExchange exchange, JsonNode body) throws IOException {
        requireScoring("scores");
        List<String> first = OpenAiRequests.strings(body, "text_1"), second = OpenAiRequests.strings(body, "text_2");
        if (first.isEmpty()) throw ApiError.invalid("text_1", "'text_1' must be a string or a non-empty list of strings");
        if (second.isEmpty()) throw ApiError.invalid("text_2", "'text_2' must be a string or a non-empty list of strings");
        if (first.size() != 1 && first.size() != second.size()) {
            throw ApiError.invalid("text_1", "'text_1' holds " + first.size() + " texts: give one, or one for each of the "
                    + second.size() + " of 'text_2'");
        }
        List<ScoringOutput> scores = scores(first, second, body);
        ObjectNode answer = OpenAiResponses.JSON.createObjectNode().put("id", "score-" + UUID.randomUUID()).put("object", "list")
                .put("created", System.currentTimeMillis() / 1000).put("model", OpenAiRequests.text(body, "model", modelName));
        ArrayNode data = answer.putArray("data");
        int tokens = 0;
        for (int i = 0; i < scores.size(); i++) {
            data.addObject().put("index", i).put("object", "score").put("score", scores.get(i).score());
            tokens += scores.get(i).promptTokens();
        }
        answer.set("usage", OpenAiResponses.usage(tokens, 0));
        sendJson(exchange, 200, answer);
    }

    /**
     * vLLM's rerank API (Jina's and Cohere's shape): the {@code documents} most relevant to the
     * {@code query} first, by the scores above (an embedding model's cosines, or a cross-encoder's
     * relevance), the first {@code top_n} of them (all where it is absent or 0).
     */
    private void rerank(HttpExchange exchange, JsonNode body) throws IOException {
        requireScoring("rerankings");
        String query = OpenAiRequests.text(body, "query", null);
        if (query == null) throw ApiError.invalid("query", "'query' is required");
        List<String> documents = OpenAiRequests.strings(body, "documents");
        if (documents.isEmpty() || !body.path("documents").isArray()) {
            throw ApiError.invalid("documents", "'documents' must be a non-empty list of strings");
        }
        Integer topN = OpenAiRequests.integer(body, "top_n");
        if (topN != null && topN < 0) throw ApiError.invalid("top_n", "'top_n' must be at least 0");
        List<ScoringOutput> scores = scores(List.of(query), documents, body);
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < documents.size(); i++) order.add(i);
        order.sort((a, b) -> Double.compare(scores.get(b).score(), scores.get(a).score()));
        ObjectNode answer = OpenAiResponses.JSON.createObjectNode().put("id", "rerank-" + UUID.randomUUID())
                .put("model", OpenAiRequests.text(body, "model", modelName));
        int tokens = 0;
        for (ScoringOutput s : scores) tokens += s.promptTokens();
        answer.putObject("usage").put("total_tokens", tokens);
        ArrayNode results = answer.putArray("results");
        int shown = topN == null || topN == 0 ? documents.size() : Math.min(topN, documents.size());
        for (int rank = 0; rank < shown; rank++) {
            int index = order.get(rank);
            ObjectNode result = results.addObject().put("index", index);
            result.putObject("document").put("text", documents.get(index));
            result.put("relevance_score", scores.get(index).score());
        }
        sendJson(exchange, 200, answer);
    }

    /** The scores, with vLLM's {@code truncate_prompt_tokens} (-1: the maximum model length) where the request gives it. */
    private List<ScoringOutput> scores(List<String> first, List<String> second, JsonNode body) {
        Integer cut = OpenAiRequests.integer(body, "truncate_prompt_tokens");
        PoolingParams params = cut == null ? PoolingParams.defaults() : PoolingParams.builder().truncatePromptTokens(cut).build();
        synchronized (embeddingTurn) { // LLM's embedding calls run one at a time
            return llm.score(first, second, params);
        }
    }

    private void embeddings(HttpExchange exchange, JsonNode body) throws IOException {
        if (llm.task() != Task.EMBED) throw notServedFor("embeddings need a model loaded with task embed");
        List<Prompt> inputs = OpenAiRequests.prompts(body, "input");
        String format = encodingFormat(body);
        Integer dimensions = OpenAiRequests.integer(body, "dimensions");
        PoolingParams pooling = dimensions == null ? PoolingParams.defaults() : PoolingParams.builder().dimensions(dimensions).build();
        List<EmbeddingOutput> outputs;
        synchronized (embeddingTurn) { // LLM's embedding calls run one at a time
            outputs = llm.encode(inputs, pooling);
        }
        ObjectNode answer = OpenAiResponses.JSON.createObjectNode().put("object", "list");
        ArrayNode data = answer.putArray("data");
        int tokens = 0;
        for (int i = 0; i < outputs.size(); i++) {
            putVector(data.addObject().put("object", "embedding").put("index", i), "embedding", outputs.get(i).embedding(), format);
            tokens += outputs.get(i).promptTokenIds().length;
        }
        answer.put("model", modelName);
        answer.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
        sendJson(exchange, 200, answer);
    }

    /**
     * vLLM's {@code /pooling}: each input's pooled output as it comes, for {@code task} "embed" (the
     * embedding) or "token_embed" (every token's state, one row a token), with {@code dimensions},
     * {@code normalize} and {@code truncate_prompt_tokens} as for embeddings; or, for a model loaded
     * with task classify, "classify" (each label's probability, as /classify gives them).
     */
    private void pooling(HttpExchange exchange, JsonNode body) throws IOException {
        if (llm.task() == Task.CLASSIFY) {
            classifyPooling(exchange, body);
            return;
        }
        if (llm.task() != Task.EMBED) throw notServedFor("pooling needs a model loaded with task embed or classify");
        List<Prompt> inputs = OpenAiRequests.prompts(body, "input");
        String task = OpenAiRequests.text(body, "task", "embed");
        if (!task.equals("embed") && !task.equals("token_embed")) throw ApiError.invalid("task", "'task' is embed or token_embed");
        String format = encodingFormat(body);
        if (format.equals("base64") && task.equals("token_embed")) {
            throw ApiError.invalid("encoding_format", "token embeddings are served as floats only");
        }
        PoolingParams.Builder params = PoolingParams.builder();
        Integer dimensions = OpenAiRequests.integer(body, "dimensions");
        if (dimensions != null) params.dimensions(dimensions);
        Boolean normalize = OpenAiRequests.bool(body, "normalize");
        if (normalize != null) params.normalize(normalize);
        Integer truncate = OpenAiRequests.integer(body, "truncate_prompt_tokens");
        if (truncate != null) params.truncatePromptTokens(truncate);
        ObjectNode answer = OpenAiResponses.JSON.createObjectNode().put("id", "pool-" + java.util.UUID.randomUUID())
                .put("object", "list").put("created", System.currentTimeMillis() / 1000).put("model", modelName);
        ArrayNode data = answer.putArray("data");
        int tokens = 0;
        synchronized (embeddingTurn) { // LLM's embedding calls run one at a time
            if (task.equals("embed")) {
                List<EmbeddingOutput> outputs = llm.encode(inputs, params.build());
                for (int i = 0; i < outputs.size(); i++) {
                    putVector(data.addObject().put("index", i).put("object", "pooling"), "data", outputs.get(i).embedding(), format);
                    tokens += outputs.get(i).promptTokenIds().length;
                }
            } else {
                List<TokenEmbeddingsOutput> outputs = llm.embedTokens(inputs, params.build());
                for (int i = 0; i < outputs.size(); i++) {
                    ArrayNode rows = data.addObject().put("index", i).put("object", "pooling").putArray("data");
                    for (float[] row : outputs.get(i).embeddings()) {
                        ArrayNode values = rows.addArray();
                        for (float v : row) values.add(v);
                    }
                    tokens += outputs.get(i).promptTokenIds().length;
                }
            }
        }
        answer.set("usage", OpenAiResponses.usage(tokens, 0));
        sendJson(exchange, 200, answer);
    }

    /**
     * {@code /pooling} for a classification model: {@code task} "classify", each input's probabilities
     * (floats or base64); the embedding fields are refused by name.
     */
    private void classifyPooling(HttpExchange exchange, JsonNode body) throws IOException {
        if (!OpenAiRequests.text(body, "task", "classify").equals("classify")) {
            throw ApiError.invalid("task", "'" + modelName + "' is served with task classify: 'task' is classify");
        }
        for (String field : List.of("dimensions", "normalize", "truncate_prompt_tokens")) {
            if (body.hasNonNull(field)) throw ApiError.invalid(field, "'" + field + "' is not taken for classifications");
        }
        String format = encodingFormat(body);
        List<ClassificationOutput> outputs = classifications(OpenAiRequests.prompts(body, "input"));
        ObjectNode answer = OpenAiResponses.JSON.createObjectNode().put("id", "pool-" + UUID.randomUUID())
                .put("object", "list").put("created", System.currentTimeMillis() / 1000).put("model", modelName);
        ArrayNode data = answer.putArray("data");
        int tokens = 0;
        for (int i = 0; i < outputs.size(); i++) {
            putVector(data.addObject().put("index", i).put("object", "pooling"), "data", outputs.get(i).probs(), format);
            tokens += outputs.get(i).promptTokenIds().length;
        }
        answer.set("usage", OpenAiResponses.usage(tokens, 0));
        sendJson(exchange, 200, answer);
    }

    /** OpenAI's {@code encoding_format}: float (the default) or base64. */
    private static String encodingFormat(JsonNode body) {
        String format = OpenAiRequests.text(body, "encoding_format", "float");
        if (!format.equals("float") && !format.equals("base64")) throw ApiError.invalid("encoding_format", "'encoding_format' is float or base64");
        return format;
    }

    /** A vector as floats, or as OpenAI's base64 of little-endian float32s. */
    private static void putVector(ObjectNode item, String field, float[] vector, String format) {
        if (format.equals("base64")) {
            ByteBuffer bytes = ByteBuffer.allocate(vector.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : vector) bytes.putFloat(v);
            item.put(field, Base64.getEncoder().encodeToString(bytes.array()));
        } else {
            ArrayNode values = item.putArray(field);
            for (float v : vector) values.add(v);
        }
    }

    private String decodeOne(int tokenId) {
        return llm.tokenizer().decode(new int[]{tokenId}, false);
    }

    private void requireGenerating() {
        if (engine == null) throw notServedFor("it does not generate");
    }

    // ---- generation, whole or streamed ------------------------------------------------------------

    /** How completions and chat put one output (of {@code request}) into a choice. */
    private interface ChoiceWriter {
        void whole(ObjectNode choice, RequestOutput request, CompletionOutput output, int index);

        void delta(ObjectNode choice, RequestOutput request, CompletionOutput output, int index);

        /** The output's tokens that count as completion tokens in the usage. */
        default int completionTokens(CompletionOutput output) {
            return output.tokenIds().size();
        }

        default String finishReason(CompletionOutput output) {
            return OpenAiResponses.finishReason(output);
        }

        /** Adds what a whole answer holds beside its choices (the results in the prompts' order). */
        default void finishAnswer(ObjectNode answer, List<RequestOutput> results) {
        }
    }

    /**
     * Refuses, as vLLM's server does, a request whose prompt and {@code max_tokens} together exceed
     * the model's length (the library would stop such a request at the length instead).
     */
    private void requireRoomFor(List<Prompt> prompts, SamplingParams params) {
        if (params.maxTokens().isEmpty()) return;
        int maxTokens = params.maxTokens().getAsInt(), maxModelLen = llm.engine().maxModelLen();
        int kept = llm.engine().promptTokensKept(params);
        for (Prompt prompt : prompts) {
            int promptTokens = Math.min(kept, switch (prompt) {
                case Prompt.Tokens t -> llm.engine().promptLength(t.tokenIds(), t.images()); // images as their placeholders expand
                case Prompt.Text t -> llm.tokenizer() == null ? 0 : llm.engine().promptLength(llm.tokenizer().encode(t.text(), true), List.of());
                case Prompt.EncoderDecoder e -> 1 + (e.decoder() instanceof Prompt.Tokens t ? t.tokenIds().length : 0);
            });
            if ((long) promptTokens + maxTokens > maxModelLen) {
                throw ApiError.invalid("max_tokens", "This model's maximum context length is " + maxModelLen + " tokens. However, you "
                        + "requested " + ((long) promptTokens + maxTokens) + " tokens (" + promptTokens + " in the prompt, " + maxTokens
                        + " in the completion). Please reduce the length of the prompt or completion.");
            }
        }
    }

    private void generate(HttpExchange exchange, OpenAiResponses.Envelope envelope, List<Prompt> prompts, SamplingParams params,
                          OpenAiRequests.Streaming streaming, ChoiceWriter writer) throws IOException {
        if ((long) prompts.size() * params.n() > MAX_SEQUENCES) {
            throw ApiError.invalid("n", prompts.size() + " prompts × n " + params.n() + " is over the " + MAX_SEQUENCES
                    + " sequences one request may ask for");
        }
        requireRoomFor(prompts, params);
        List<RequestStream> streams = new ArrayList<>();
        try {
            LoraRequest lora = loras.get(envelope.model());
            for (int i = 0; i < prompts.size(); i++) streams.add(engine.submit(envelope.id() + "-" + i, prompts.get(i), params, lora));
            if (streaming.stream()) {
                stream(exchange, envelope, streams, params.n(), streaming, writer);
            } else {
                whole(exchange, envelope, streams, params.n(), writer);
            }
        } finally {
            for (RequestStream stream : streams) {
                if (!stream.result().isDone()) stream.abort();
            }
        }
    }

    private void whole(HttpExchange exchange, OpenAiResponses.Envelope envelope, List<RequestStream> streams, int n,
                       ChoiceWriter writer) throws IOException {
        ObjectNode answer = envelope.start();
        ArrayNode choices = answer.putArray("choices");
        int promptTokens = 0, completionTokens = 0;
        List<RequestOutput> results = new ArrayList<>(streams.size());
        for (int i = 0; i < streams.size(); i++) {
            RequestOutput result = await(streams.get(i));
            results.add(result);
            addChoices(choices, i, n, result, writer, false);
            promptTokens += result.promptTokenIds().size();
            for (CompletionOutput output : result.outputs()) completionTokens += writer.completionTokens(output);
        }
        writer.finishAnswer(answer, results);
        answer.set("usage", OpenAiResponses.usage(promptTokens, completionTokens));
        sendJson(exchange, 200, answer);
    }

    /** The choices of one prompt's output (whole, or a stream's delta): index prompt × n + sample. */
    private static void addChoices(ArrayNode choices, int prompt, int n, RequestOutput output, ChoiceWriter writer, boolean delta) {
        for (CompletionOutput sample : output.outputs()) {
            int index = prompt * n + sample.index();
            ObjectNode choice = choices.addObject().put("index", index);
            if (delta) writer.delta(choice, output, sample, index);
            else writer.whole(choice, output, sample, index);
            choice.put("finish_reason", writer.finishReason(sample));
        }
    }

    private static RequestOutput await(RequestStream stream) {
        try {
            return stream.result().get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException cause) throw cause;
            throw new CompletionException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new EngineClosedException("the server stopped before the answer was ready");
        } catch (CancellationException e) {
            throw new EngineClosedException("the request was cancelled");
        }
    }

    private sealed interface Event permits Delta, Ended, Failed {
    }

    private record Delta(int prompt, RequestOutput output) implements Event {
    }

    private record Ended(int prompt) implements Event {
    }

    private record Failed(int prompt, Throwable error) implements Event {
    }

    private void stream(HttpExchange exchange, OpenAiResponses.Envelope envelope, List<RequestStream> streams, int n,
                        OpenAiRequests.Streaming streaming, ChoiceWriter writer) throws IOException {
        LinkedBlockingQueue<Event> events = queued(streams);
        Event first = take(events);
        OutputStream out = startEventStream(exchange, first);
        int promptTokens = 0, completionTokens = 0, promptTokensSeen = 0;
        boolean[] promptSeen = new boolean[streams.size()];
        for (int open = streams.size(); open > 0; ) {
            Event event = first != null ? first : take(events);
            first = null;
            if (event == null) return;
            switch (event) {
                case Delta(int prompt, RequestOutput output) -> {
                    ObjectNode chunk = envelope.start();
                    addChoices(chunk.putArray("choices"), prompt, n, output, writer, true);
                    for (CompletionOutput sample : output.outputs()) completionTokens += writer.completionTokens(sample);
                    if (output.finished()) promptTokens += output.promptTokenIds().size();
                    if (!promptSeen[prompt]) {
                        promptSeen[prompt] = true;
                        promptTokensSeen += output.promptTokenIds().size();
                    }
                    if (streaming.continuousUsage()) chunk.set("usage", OpenAiResponses.usage(promptTokensSeen, completionTokens));
                    send(out, chunk);
                }
                case Ended ended -> open--;
                case Failed(int prompt, Throwable error) -> {
                    open--;
                    ObjectNode failure = OpenAiResponses.JSON.createObjectNode();
                    boolean invalid = error instanceof InvalidRequestException || error instanceof RequestFailedException failed && requestsOwnDoing(failed);
                    failure.putObject("error").put("message", String.valueOf(error.getMessage()))
                            .put("type", invalid ? "invalid_request_error" : "service_unavailable")
                            .put("code", invalid ? 400 : 503);
                    send(out, failure);
                }
            }
        }
        if (streaming.includeUsage()) {
            ObjectNode last = envelope.start();
            last.putArray("choices");
            last.set("usage", OpenAiResponses.usage(promptTokens, completionTokens));
            send(out, last);
        }
        write(out, "data: [DONE]\n\n");
    }

    /** The streams' items, ends and failures in one queue, each tagged with its stream's index. */
    private static LinkedBlockingQueue<Event> queued(List<RequestStream> streams) {
        LinkedBlockingQueue<Event> events = new LinkedBlockingQueue<>();
        for (int i = 0; i < streams.size(); i++) {
            int prompt = i;
            streams.get(i).subscribe(new Flow.Subscriber<>() {
                @Override
                public void onSubscribe(Flow.Subscription subscription) {
                    subscription.request(Long.MAX_VALUE);
                }

                @Override
                public void onNext(RequestOutput item) {
                    events.add(new Delta(prompt, item));
                }

                @Override
                public void onError(Throwable error) {
                    events.add(new Failed(prompt, error));
                }

                @Override
                public void onComplete() {
                    events.add(new Ended(prompt));
                }
            });
        }
        return events;
    }

    /**
     * Opens a server-sent event stream and returns its body. The engine checks a request before its
     * first step: a refusal is the first event, and is answered with a 400 before the stream's
     * headers, as a whole answer's would be.
     */
    private static OutputStream startEventStream(HttpExchange exchange, Event first) throws IOException {
        if (first instanceof Failed(int prompt, Throwable error) && error instanceof InvalidRequestException refused) throw refused;
        exchange.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        exchange.getResponseHeaders().set("Cache-Control", "no-cache");
        exchange.sendResponseHeaders(200, 0);
        return exchange.getResponseBody();
    }

    /** The next event, or null when the server is stopping. */
    private static Event take(LinkedBlockingQueue<Event> events) {
        try {
            return events.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /**
     * Whether a request failed of its own doing (a structured output that outgrew what one may make, or
     * masks that left nothing to draw): answered as an invalid request, not as the server's failure.
     */
    private static boolean requestsOwnDoing(RequestFailedException e) {
        return e.getCause() instanceof Regex.TooComplexException || e.getCause() instanceof NothingToDrawException;
    }

    /** A client that closed its connection: its requests are aborted and nothing more is written. */
    private static final class ClientGone extends RuntimeException {
        ClientGone(IOException cause) {
            super(cause.toString(), cause, false, false);
        }
    }

    private static void send(OutputStream out, JsonNode chunk) {
        write(out, "data: " + chunk + "\n\n");
    }

    private static void write(OutputStream out, String text) {
        try {
            out.write(text.getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException e) {
            throw new ClientGone(e);
        }
    }

    // ---- answers ----------------------------------------------------------------------------------

    private static void sendJson(HttpExchange exchange, int status, JsonNode body) throws IOException {
        byte[] bytes = OpenAiResponses.JSON.writeValueAsBytes(body);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        exchange.getResponseBody().write(bytes);
    }

    /** A failure of ours: logged whole, answered with its kind only (its text may hold internals). */
    private static void internalError(HttpExchange exchange, String method, String path, RuntimeException e) throws IOException {
        log.error("{} {} failed", method, path, e);
        sendError(exchange, 500, "internal_error", "the server failed on this request: " + e.getClass().getSimpleName(), null);
    }

    private static void sendError(HttpExchange exchange, int status, String type, String message, String param) throws IOException {
        if (exchange.getResponseCode() != -1) return; // headers already sent (a stream): nothing more can be said
        ObjectNode body = OpenAiResponses.JSON.createObjectNode();
        ObjectNode error = body.putObject("error").put("message", message).put("type", type).put("code", status);
        if (param == null) error.putNull("param");
        else error.put("param", param);
        sendJson(exchange, status, body);
    }

    /** A builder method's name as the request field it comes from: topP → top_p. */
    static String snakeCase(String field) {
        if (field == null) return null;
        return field.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toLowerCase(Locale.ROOT);
    }

    /** Options of an {@link OpenAiServer}. */
    public static final class Builder {
        private final LLM llm;
        private String host = "127.0.0.1";
        private int port = 8000;
        private String apiKey;
        private String servedModelName;
        private long maxBodyBytes = 16L << 20;
        private final Map<String, Path> loraModules = new LinkedHashMap<>();
        private ToolCallParser toolCallParser;
        private ReasoningParser reasoningParser;

        private Builder(LLM llm) {
            this.llm = Objects.requireNonNull(llm, "llm");
        }

        /** The address to listen on (default 127.0.0.1; "0.0.0.0" for every interface). */
        public Builder host(String host) {
            this.host = Objects.requireNonNull(host, "host");
            return this;
        }

        /** The port (default 8000; 0 picks a free one, see {@link #port()}). */
        public Builder port(int port) {
            if (port < 0 || port > 65535) throw new IllegalArgumentException("port must be 0-65535: " + port);
            this.port = port;
            return this;
        }

        /** A key every request but /health and /metrics must carry as {@code Authorization: Bearer <key>} (default none). */
        public Builder apiKey(String apiKey) {
            this.apiKey = apiKey;
            return this;
        }

        /** The model's name in requests and /v1/models (default: the model directory's name). */
        public Builder servedModelName(String name) {
            this.servedModelName = name;
            return this;
        }

        /**
         * A LoRA adapter served under its own name, as vLLM's {@code --lora-modules name=path}: a
         * request whose {@code model} is {@code name} runs with it, and /v1/models lists it with the
         * served model as its parent. The model must be built with {@code enableLora}.
         */
        public Builder loraModule(String name, Path path) {
            loraModules.put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(path, "path"));
            return this;
        }

        /**
         * Serves tool_choice "auto" (the default where a request gives tools), reading the calls out
         * of the model's answer as the family writes them: "hermes" (Hermes, Qwen 2.5 and 3) or
         * "llama3_json" (Llama 3.1 and 3.2), as vLLM's {@code --enable-auto-tool-choice --tool-call-parser}.
         *
         * @throws IllegalArgumentException for another name
         */
        public Builder toolCallParser(String name) {
            this.toolCallParser = ToolCallParser.named(Objects.requireNonNull(name, "name"));
            return this;
        }

        /**
         * Separates a thinking model's reasoning from its answer, as vLLM's {@code --reasoning-parser}
         * ({@code deepseek_r1} or {@code qwen3}): chat answers then hold it as {@code reasoning_content}
         * (streamed too). Structured outputs and tool choices that constrain the answer are then refused:
         * they would constrain the thinking as well.
         *
         * @throws IllegalArgumentException for another name
         */
        public Builder reasoningParser(String name) {
            this.reasoningParser = ReasoningParser.named(Objects.requireNonNull(name, "name"));
            return this;
        }

        /** The largest request body taken (default 16 MiB); larger ones get 413. */
        public Builder maxBodyBytes(long bytes) {
            if (bytes < 1) throw new IllegalArgumentException("maxBodyBytes must be positive: " + bytes);
            this.maxBodyBytes = bytes;
            return this;
        }

        /** Starts listening; the server owns the model from now on. */
        public OpenAiServer start() throws IOException {
            return new OpenAiServer(this);
        }
    }
}
