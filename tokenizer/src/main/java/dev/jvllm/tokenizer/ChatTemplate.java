package dev.jvllm.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.tokenizer.ChatTemplateException.Reason;
import dev.jvllm.tokenizer.JinjaAst.Node;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A Hugging Face chat template (Jinja, from {@code chat_template.jinja}, {@code chat_template.json} or
 * {@code chat_template} in {@code tokenizer_config.json}) that turns a conversation into the prompt text the model was trained on, rendering as
 * {@code transformers}' {@code apply_chat_template(..., tokenize=False)} does.
 *
 * <p>Templates come with downloaded models, so they are treated as untrusted programs. They run in
 * jvllm's own Jinja interpreter, which implements the Jinja2 subset and the Python string, list
 * and dict methods chat templates use, over plain values only: variables must be
 * {@code Map}/{@code List}/{@code String}/{@code Number}/{@code Boolean}/{@code null}, and no Java
 * object, method or class is reachable from a template. Rendering happens on a worker thread and
 * stops at {@link Limits#timeout()}; output, strings, lists and ranges are capped (see {@link
 * Limits}). Any failure is a {@link ChatTemplateException} and leaves the template usable.
 *
 * <p>Instances are immutable and thread-safe.
 */
public final class ChatTemplate {

    /** The most characters of template source accepted. */
    public static final int MAX_SOURCE_CHARS = 1_000_000;

    private static final int MAX_INPUT_DEPTH = 64;
    private static final AtomicInteger WORKER_NUMBER = new AtomicInteger();
    private static final ExecutorService WORKERS = Executors.newCachedThreadPool(task -> {
        Thread t = new Thread(task, "jvllm-chat-template-" + WORKER_NUMBER.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    /**
     * Bounds on one rendering.
     *
     * @param timeout wall-clock time a rendering may take before it is stopped
     * @param maxOutputChars the most characters of output, and of any string built on the way
     * @param maxCollectionSize the most items in any list the template builds
     * @param maxRange the most items {@code range()} may produce (Jinja's sandbox uses 100,000)
     * @param maxCallDepth the deepest nesting of macro calls
     */
    public record Limits(Duration timeout, int maxOutputChars, int maxCollectionSize, int maxRange, int maxCallDepth) {

        /** 2 s, 1 M characters, 100,000 items, range of 100,000, macro depth 64. */
        public static final Limits DEFAULT = new Limits(Duration.ofSeconds(2), 1_000_000, 100_000, 100_000, 64);

        public Limits {
            Objects.requireNonNull(timeout, "timeout");
            if (timeout.isNegative() || timeout.isZero() || maxOutputChars <= 0 || maxCollectionSize <= 0
                    || maxRange <= 0 || maxCallDepth <= 0) {
                throw new IllegalArgumentException("chat template limits must be positive: " + this);
            }
        }
    }

    /**
     * How a template reads a message's {@code content}, as vLLM's {@code --chat-template-content-format}
     * names it: as a string, or as OpenAI's list of parts ({@code {"type": "text", "text": ...}},
     * {@code {"type": "image"}}).
     */
    public enum ContentFormat {
        /** Content is a string; images are placeholder text within it. */
        STRING,
        /** Content is a list of parts the template iterates over, e.g. LLaVA's {@code selectattr('type', 'equalto', 'image')}. */
        OPENAI
    }

    private final String source;
    private final List<Node> template;
    private final Map<String, Object> boundVariables;
    private final Limits limits;
    private final ContentFormat contentFormat;

    private ChatTemplate(String source, List<Node> template, Map<String, Object> boundVariables, Limits limits,
                         ContentFormat contentFormat) {
        this.source = source;
        this.template = template;
        this.boundVariables = boundVariables;
        this.limits = limits;
        this.contentFormat = contentFormat;
    }

    /**
     * Parses a template.
     *
     * @throws ChatTemplateException ({@link Reason#SYNTAX}) when it is not valid Jinja, uses an
     *     unsupported tag, or is longer than {@link #MAX_SOURCE_CHARS}
     */
    public static ChatTemplate compile(String source) {
        return compile(source, Map.of());
    }

    /**
     * Parses a template and binds variables every rendering sees, typically the special tokens
     * ({@code bos_token}, {@code eos_token}) that transformers passes to templates.
     */
    public static ChatTemplate compile(String source, Map<String, ?> boundVariables) {
        Objects.requireNonNull(source, "source");
        if (source.length() > MAX_SOURCE_CHARS) {
            throw new ChatTemplateException(
                    Reason.SYNTAX, "chat template has " + source.length() + " characters; at most " + MAX_SOURCE_CHARS + " are accepted");
        }
        List<Node> parsed;
        try {
            parsed = JinjaParser.parse(source);
        } catch (StackOverflowError e) {
            throw new ChatTemplateException(Reason.SYNTAX, "chat template is nested too deeply to parse");
        }
        return new ChatTemplate(source, parsed, toTemplateVariables(boundVariables), Limits.DEFAULT,
                ContentFormatDetector.detect(parsed));
    }

    /** The same template with other limits. */
    public ChatTemplate withLimits(Limits newLimits) {
        return new ChatTemplate(source, template, boundVariables, Objects.requireNonNull(newLimits, "limits"), contentFormat);
    }

    /**
     * How this template reads a message's content, detected as vLLM detects it: {@link
     * ContentFormat#OPENAI} where a {@code for} loop runs over a message's {@code content} (a
     * message being a loop variable over {@code messages}, or over a variable set from it),
     * filtered or not; {@link ContentFormat#STRING} otherwise. Callers with images or other
     * content parts give such a template the parts, and any other template the text with
     * placeholders in it.
     */
    public ContentFormat contentFormat() {
        return contentFormat;
    }

    /** The template's Jinja source. */
    public String source() {
        return source;
    }

    public Limits limits() {
        return limits;
    }

    /**
     * Renders a conversation with {@code tools} and {@code documents} set to none.
     *
     * @param messages maps with at least "role" and "content" (content may also be a list of parts)
     * @param addGenerationPrompt whether to end with the header that starts the assistant's turn
     */
    public String render(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /**
     * Renders a conversation with extra template variables, e.g. {@code tools} (a list of JSON
     * schemas), {@code enable_thinking}, {@code date_string}. Variables override the bound ones.
     *
     * @throws ChatTemplateException for a template error, a {@code raise_exception} call, a limit
     *     exceeded (the message says which), or a variable that is not a plain value
     */
    public String render(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt, Map<String, ?> variables) {
        Map<String, Object> context = new LinkedHashMap<>();
        context.put("tools", null);
        context.put("documents", null);
        context.putAll(boundVariables);
        context.putAll(toTemplateVariables(variables));
        context.put("messages", toTemplateValue(messages, "messages", 0));
        context.put("add_generation_prompt", addGenerationPrompt);

        long deadline = System.nanoTime() + limits.timeout().toNanos();
        Future<String> rendering = WORKERS.submit(() -> new JinjaInterpreter(limits, deadline).render(template, context));
        try {
            return rendering.get(limits.timeout().toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            rendering.cancel(true);
            throw new ChatTemplateException(
                    Reason.TIMEOUT, "chat template rendering exceeded " + limits.timeout().toMillis() + " ms and was stopped");
        } catch (InterruptedException e) {
            rendering.cancel(true);
            Thread.currentThread().interrupt();
            throw new ChatTemplateException(Reason.TIMEOUT, "interrupted while rendering the chat template", e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ChatTemplateException cte) {
                throw new ChatTemplateException(cte.reason(), cte.getMessage(), cte);
            }
            if (cause instanceof StackOverflowError) {
                throw new ChatTemplateException(Reason.LIMIT_EXCEEDED, "chat template recursed too deeply");
            }
            if (cause instanceof OutOfMemoryError) {
                throw new ChatTemplateException(Reason.LIMIT_EXCEEDED, "chat template ran out of memory");
            }
            // An interpreter fault, not the template's own error: its message may hold internals, so only its kind is said.
            throw new ChatTemplateException(Reason.RENDER, "chat template failed: " + cause.getClass().getSimpleName(), cause);
        }
    }

    /**
     * The template source in a tokenizer_config.json (or a processor's chat_template.json):
     * {@code chat_template} as a string, or, when it is a list of {@code {"name", "template"}},
     * the one named "default".
     */
    static Optional<String> sourceFromTokenizerConfig(JsonNode config, Path file) {
        JsonNode node = config.get("chat_template");
        if (node == null || node.isNull()) {
            return Optional.empty();
        }
        if (node.isTextual()) {
            return Optional.of(node.asText());
        }
        if (node.isArray()) {
            for (JsonNode entry : node) {
                if ("default".equals(entry.path("name").asText()) && entry.path("template").isTextual()) {
                    return Optional.of(entry.get("template").asText());
                }
            }
            return Optional.empty();
        }
        throw new TokenizerException("chat_template in " + file + " must be a string or a list of {name, template}");
    }

    private static Map<String, Object> toTemplateVariables(Map<String, ?> variables) {
        Map<String, Object> result = new LinkedHashMap<>();
        variables.forEach((k, v) -> result.put(k, toTemplateValue(v, k, 0)));
        return result;
    }

    /**
     * Copies a caller's value into the template's value space: Integer/Long/Short/Byte become
     * Long, Float/Double become Double, maps and lists are copied. Anything else is refused, so
     * no Java object ever reaches the template.
     */
    private static Object toTemplateValue(Object value, String path, int depth) {
        if (depth > MAX_INPUT_DEPTH) {
            throw new ChatTemplateException(Reason.BAD_INPUT, path + " is nested deeper than " + MAX_INPUT_DEPTH + " levels");
        }
        if (value == null || value instanceof String || value instanceof Boolean) {
            return value;
        }
        if (value instanceof Integer || value instanceof Long || value instanceof Short || value instanceof Byte) {
            return ((Number) value).longValue();
        }
        if (value instanceof Double || value instanceof Float) {
            return ((Number) value).doubleValue();
        }
        if (value instanceof BigInteger big && big.bitLength() < 64) {
            return big.longValue();
        }
        if (value instanceof BigDecimal decimal) {
            return decimal.doubleValue();
        }
        if (value instanceof Map<?, ?> map) {
            Map<Object, Object> copy = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!(e.getKey() instanceof String key)) {
                    throw new ChatTemplateException(Reason.BAD_INPUT, path + " has a key that is not a String");
                }
                copy.put(key, toTemplateValue(e.getValue(), path + "." + key, depth + 1));
            }
            return copy;
        }
        if (value instanceof List<?> list) {
            List<Object> copy = new ArrayList<>(list.size());
            for (int i = 0; i < list.size(); i++) {
                copy.add(toTemplateValue(list.get(i), path + "[" + i + "]", depth + 1));
            }
            return copy;
        }
        throw new ChatTemplateException(
                Reason.BAD_INPUT,
                path + " is a " + value.getClass().getSimpleName()
                        + "; template variables must be Map, List, String, Number, Boolean or null");
    }
}
