package dev.jvllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.Prompt;
import dev.jvllm.SamplingParams;
import dev.jvllm.StructuredOutputs;
import dev.jvllm.config.GenerationConfig;
import dev.jvllm.engine.LLMEngine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.DoubleConsumer;

/**
 * Reads the fields of OpenAI's request bodies (and vLLM's extra sampling fields) into jvllm's types.
 * Each field is checked for its JSON type; a wrong one is a 400 naming the field. Fields that would
 * change the answer but are not served (tools, suffix, best_of) are refused
 * rather than ignored; SamplingParams then checks every value's range.
 */
final class OpenAiRequests {

    /** Prompts (or inputs) one request may carry: each runs as a request of its own. */
    static final int MAX_PROMPTS = 256;
    /** Messages one chat request may carry. */
    static final int MAX_MESSAGES = 4096;

    private OpenAiRequests() {
    }

    /**
     * The prompts of {@code field}: a string, a list of strings, a list of token ids, or a list of
     * such lists (OpenAI's completions {@code prompt} and embeddings {@code input}).
     */
    static List<Prompt> prompts(JsonNode body, String field) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) throw ApiError.invalid(field, "'" + field + "' is required");
        if (node.isTextual()) return List.of(Prompt.text(node.asText()));
        if (!node.isArray() || node.isEmpty()) {
            throw ApiError.invalid(field, "'" + field + "' must be a string, a list of strings, a list of token ids or a list of lists of token ids");
        }
        if (node.get(0).isIntegralNumber()) return List.of(Prompt.tokens(tokenIds(node, field)));
        if (node.size() > MAX_PROMPTS) {
            throw ApiError.invalid(field, "'" + field + "' holds " + node.size() + " prompts; at most " + MAX_PROMPTS + " a request");
        }
        List<Prompt> prompts = new ArrayList<>();
        for (JsonNode item : node) {
            if (item.isTextual()) {
                prompts.add(Prompt.text(item.asText()));
            } else if (item.isArray() && !item.isEmpty()) {
                prompts.add(Prompt.tokens(tokenIds(item, field)));
            } else {
                throw ApiError.invalid(field, "each item of '" + field + "' must be a string or a non-empty list of token ids");
            }
        }
        return prompts;
    }

    /**
     * vLLM's {@code cache_salt} of completions and chat, null where not given: prompts salted with it
     * ({@link Prompt#withCacheSalt}) share prefix-cache blocks only with requests of the same salt.
     * A non-string, an empty one or one over {@link Prompt#MAX_CACHE_SALT_LENGTH} characters is a
     * 400 naming {@code cache_salt}.
     */
    static String cacheSalt(JsonNode body) {
        JsonNode node = body.get("cache_salt");
        if (node == null || node.isNull()) return null;
        if (!node.isTextual()) throw ApiError.invalid("cache_salt", "'cache_salt' must be a string");
        String salt = node.asText();
        if (salt.isEmpty() || salt.length() > Prompt.MAX_CACHE_SALT_LENGTH) {
            throw ApiError.invalid("cache_salt", "'cache_salt' must be a non-empty string of at most "
                    + Prompt.MAX_CACHE_SALT_LENGTH + " characters, not one of " + salt.length());
        }
        return salt;
    }

    /** The prompts, each with the cache salt {@code salt} where it is not null. */
    static List<Prompt> salted(List<Prompt> prompts, String salt) {
        return salt == null ? prompts : prompts.stream().map(prompt -> prompt.withCacheSalt(salt)).toList();
    }

    private static int[] tokenIds(JsonNode list, String field) {
        int[] ids = new int[list.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode id = list.get(i);
            if (!id.isIntegralNumber() || !id.canConvertToInt()) {
                throw ApiError.invalid(field, "'" + field + "' mixes token ids with other values (item " + i + ")");
            }
            ids[i] = id.asInt();
        }
        return ids;
    }

    /** The most bytes an image of a chat may decode to from its data URL (the body limit bounds them all together). */
    static final long MAX_IMAGE_BYTES = 20L << 20;

    /**
     * A chat request's messages as the chat template sees them, and their images in order (message
     * order, then part order). A message's content is a string, or (given as OpenAI's content
     * array) a list of {@code {"type": "text", "text": ...}} and {@code {"type": "image"}} parts,
     * which the LLM puts in the template's content format.
     */
    record ChatMessages(List<Map<String, Object>> messages, List<ImageInput> images) {
    }

    /** The most entries {@code chat_template_kwargs} may hold. */
    static final int MAX_TEMPLATE_KWARGS = 64;

    /**
     * How a chat request asks its messages rendered, as vLLM's chat extras: {@code chat_template_kwargs}
     * (extra template variables, such as Qwen3's {@code enable_thinking}), {@code add_generation_prompt}
     * (default true) and {@code continue_final_message} (the last message, an assistant's, left open for
     * the model to continue; needs {@code add_generation_prompt} false).
     */
    static dev.jvllm.ChatOptions.Builder rendering(JsonNode body) {
        dev.jvllm.ChatOptions.Builder options = dev.jvllm.ChatOptions.builder();
        JsonNode kwargs = body.get("chat_template_kwargs");
        if (kwargs != null && !kwargs.isNull()) {
            if (!kwargs.isObject()) throw ApiError.invalid("chat_template_kwargs", "'chat_template_kwargs' must be an object of template variables");
            if (kwargs.size() > MAX_TEMPLATE_KWARGS) {
                throw ApiError.invalid("chat_template_kwargs", "at most " + MAX_TEMPLATE_KWARGS + " template variables a request");
            }
            kwargs.properties().forEach(e -> options.templateVariable(e.getKey(), OpenAiResponses.JSON.convertValue(e.getValue(), Object.class)));
        }
        Boolean generationPrompt = bool(body, "add_generation_prompt");
        boolean continueFinal = Boolean.TRUE.equals(bool(body, "continue_final_message"));
        if (continueFinal && Boolean.TRUE.equals(generationPrompt)) {
            throw ApiError.invalid("continue_final_message", "'continue_final_message' and 'add_generation_prompt' cannot both be true");
        }
        return options.addGenerationPrompt(!Boolean.FALSE.equals(generationPrompt)).continueFinalMessage(continueFinal);
    }

    /**
     * A chat request's messages: role and content (a string or a list of parts: text, and images as
     * {@code image_url} data URLs), and an assistant's {@code tool_calls}, a tool message's
     * {@code tool_call_id} and a message's {@code name} where given. Images are read only from
     * base64 {@code data:} URLs, at most {@link #MAX_IMAGE_BYTES} each and
     * {@code imageLimit} a request (the engine's {@link LLMEngine#limitImagesPerPrompt()}), counted before any is
     * decoded; a problem with one is a 400 naming its
     * part, e.g. {@code messages[1].content[0].image_url}.
     */
    static ChatMessages messages(JsonNode body, int imageLimit) {
        JsonNode node = body.get("messages");
        if (node == null || !node.isArray() || node.isEmpty()) throw ApiError.invalid("messages", "'messages' must be a non-empty list");
        if (node.size() > MAX_MESSAGES) throw ApiError.invalid("messages", "at most " + MAX_MESSAGES + " messages a request");
        int imageParts = 0;
        for (JsonNode message : node) {
            JsonNode content = message.path("content");
            if (content.isArray()) for (JsonNode part : content) if (isImagePart(part)) imageParts++;
        }
        if (imageParts > imageLimit) {
            throw ApiError.invalid("messages", "the messages hold " + imageParts + " images; at most "
                    + imageLimit + " a request");
        }
        List<Map<String, Object>> messages = new ArrayList<>();
        List<ImageInput> images = new ArrayList<>();
        for (int m = 0; m < node.size(); m++) {
            JsonNode message = node.get(m);
            String role = message.isObject() ? text(message, "role", null) : null;
            if (role == null) throw ApiError.invalid("messages", "every message needs a 'role'");
            JsonNode content = message.get("content");
            Object value;
            if (content == null || content.isNull()) {
                value = null; // the template's format decides: "" for a string, no parts for a list
            } else if (content.isTextual()) {
                value = content.asText();
            } else if (content.isArray()) {
                List<Map<String, Object>> parts = new ArrayList<>();
                for (int p = 0; p < content.size(); p++) {
                    parts.add(part(content.get(p), "messages[" + m + "].content[" + p + "]", images));
                }
                value = parts;
            } else {
                throw ApiError.invalid("messages", "a message's 'content' must be a string or a list of content parts");
            }
            Map<String, Object> entry = new java.util.LinkedHashMap<>();
            entry.put("role", role);
            entry.put("content", value);
            for (String key : new String[]{"tool_calls", "tool_call_id", "name"}) {
                JsonNode extra = message.get(key);
                if (extra != null && !extra.isNull()) entry.put(key, OpenAiResponses.JSON.convertValue(extra, Object.class));
            }
            messages.add(entry);
        }
        return new ChatMessages(messages, List.copyOf(images));
    }

    /** An image part: {@code {"type": "image_url", ...}}, or with no type but an {@code image_url} (vLLM takes both). */
    private static boolean isImagePart(JsonNode part) {
        return part.isObject() && (part.path("type").asText().equals("image_url") || (!part.has("type") && part.has("image_url")));
    }

    /** One part of a content array as the template sees it; an image part's image is decoded and added to {@code images}. */
    private static Map<String, Object> part(JsonNode part, String path, List<ImageInput> images) {
        if (part.isTextual()) return Map.of("type", "text", "text", part.asText());
        if (isImagePart(part)) {
            images.add(image(part.get("image_url"), path + ".image_url"));
            return Map.of("type", "image");
        }
        String type = part.path("type").asText();
        if (!type.equals("text")) {
            throw ApiError.invalid(path, path + ": content parts of type '" + type + "' are not served; text and image_url parts are");
        }
        if (!part.path("text").isTextual()) throw ApiError.invalid(path, path + ": a text part needs 'text', a string");
        return Map.of("type", "text", "text", part.get("text").asText());
    }

    /**
     * The image of a part's {@code image_url}: {@code {"url": "data:image/png;base64,..."}} or the
     * URL as a string. Only base64 data URLs are read: the server fetches nothing over the network
     * or from its files.
     */
    private static ImageInput image(JsonNode imageUrl, String field) {
        String url;
        if (imageUrl != null && imageUrl.isTextual()) {
            url = imageUrl.asText();
        } else if (imageUrl != null && imageUrl.isObject() && imageUrl.path("url").isTextual()) {
            url = imageUrl.get("url").asText();
        } else {
            throw ApiError.invalid(field, field + " must be {\"url\": \"data:image/...;base64,...\"} or that URL as a string");
        }
        if (!url.regionMatches(true, 0, "data:", 0, 5)) {
            int colon = url.indexOf(':');
            String scheme = colon > 0 && colon < 16 ? " (not " + url.substring(0, colon + 1) + " URLs)" : "";
            throw ApiError.invalid(field, field + ": only data URLs are accepted (data:image/png;base64,...)" + scheme
                    + "; this server fetches no image");
        }
        int comma = url.indexOf(',');
        if (comma < 0 || !url.substring(5, comma).toLowerCase(java.util.Locale.ROOT).endsWith(";base64")) {
            throw ApiError.invalid(field, field + ": only base64 data URLs are accepted (data:image/png;base64,...)");
        }
        StringBuilder data = new StringBuilder(url.length() - comma - 1);
        for (int i = comma + 1; i < url.length(); i++) {
            char c = url.charAt(i);
            if (c != ' ' && c != '\n' && c != '\r' && c != '\t') data.append(c);
        }
        if (data.length() / 4 * 3L > MAX_IMAGE_BYTES) {
            throw ApiError.invalid(field, field + ": the image is over " + (MAX_IMAGE_BYTES >> 20) + " MiB");
        }
        byte[] bytes;
        try {
            bytes = java.util.Base64.getDecoder().decode(data.toString());
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid(field, field + ": the data URL is not valid base64 (" + e.getMessage() + ")");
        }
        try {
            return ImageInput.decode(bytes);
        } catch (InvalidRequestException e) {
            throw ApiError.invalid(field, field + ": " + e.getMessage());
        }
    }

    /**
     * The functions a chat request offers and how it must use them. {@code choice} is "none",
     * "required" or the name of the function it must call; {@code templateTools} is {@code tools} as
     * the chat template sees it (null when none are offered or the choice is "none").
     */
    record Tools(String choice, Map<String, JsonNode> parametersByName, Object templateTools, StructuredOutputs.JsonWhitespace whitespace) {

        static final Tools NONE = new Tools("none", Map.of(), null, StructuredOutputs.JsonWhitespace.ONE_SPACE);

        /** Whether the answer is constrained to tool calls (a named function or "required"). */
        boolean calls() {
            return !choice.equals("none") && !choice.equals("auto");
        }

        /** Whether the model chooses between text and calls, which a tool-call parser then finds. */
        boolean auto() {
            return choice.equals("auto");
        }

        /** The constraint on the output: the named function's arguments, or a list of calls (vLLM's "required"). */
        StructuredOutputs constraint() {
            if (!choice.equals("required")) return StructuredOutputs.json(parametersByName.get(choice), whitespace);
            return StructuredOutputs.toolCalls(parametersByName, whitespace);
        }
    }

    /**
     * A chat request's {@code tools} and {@code tool_choice}. "auto" (the default where tools are
     * given) needs a tool-call parser for the model's way of writing calls
     * ({@code autoToolChoice}, as vLLM's {@code --enable-auto-tool-choice --tool-call-parser}); without one it is refused.
     */
    static Tools tools(JsonNode body, boolean autoToolChoice) {
        JsonNode tools = body.get("tools");
        JsonNode choiceNode = body.get("tool_choice");
        if (tools == null || tools.isNull() || tools.isEmpty()) {
            if (choiceNode != null && !choiceNode.isNull() && !"none".equals(choiceNode.asText())) {
                throw ApiError.invalid("tool_choice", "'tool_choice' needs 'tools'");
            }
            return Tools.NONE;
        }
        if (!tools.isArray()) throw ApiError.invalid("tools", "'tools' must be a list of functions");
        Map<String, JsonNode> parameters = new java.util.LinkedHashMap<>();
        for (JsonNode tool : tools) {
            JsonNode function = tool.path("function");
            if (!"function".equals(tool.path("type").asText()) || !function.path("name").isTextual()) {
                throw ApiError.invalid("tools", "each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
            }
            if (Set.of("auto", "none", "required").contains(function.get("name").asText())) {
                throw ApiError.invalid("tools", "a function may not be named '" + function.get("name").asText() + "': that is a tool_choice mode");
            }
            JsonNode schema = function.get("parameters");
            if (schema == null || schema.isNull()) schema = OpenAiResponses.JSON.createObjectNode().put("type", "object");
            if (!schema.isObject()) throw ApiError.invalid("tools", "the parameters of '" + function.get("name").asText() + "' must be a JSON schema");
            parameters.put(function.get("name").asText(), schema.has("properties") || schema.has("type") ? schema
                    : OpenAiResponses.JSON.createObjectNode().put("type", "object"));
        }
        String choice;
        if (choiceNode == null || choiceNode.isNull() || "auto".equals(choiceNode.asText())) {
            if (!autoToolChoice) {
                throw ApiError.invalid("tool_choice", "tool_choice 'auto' (the default with tools) needs a tool-call parser for the model "
                        + "(serve with --enable-auto-tool-choice --tool-call-parser hermes|llama3_json); give tool_choice 'required', "
                        + "'none' or {\"type\": \"function\", \"function\": {\"name\": ...}}");
            }
            choice = "auto";
        } else if (choiceNode.isTextual()) {
            choice = choiceNode.asText();
            if (!choice.equals("none") && !choice.equals("required")) throw ApiError.invalid("tool_choice", "tool_choice '" + choice + "' is not none, auto or required");
        } else {
            choice = choiceNode.path("function").path("name").asText(null);
            if (choice == null || !parameters.containsKey(choice)) {
                throw ApiError.invalid("tool_choice", "tool_choice names no function of 'tools'" + (choice == null ? "" : ": '" + choice + "'"));
            }
        }
        if (choice.equals("none")) return Tools.NONE;
        return new Tools(choice, parameters, OpenAiResponses.JSON.convertValue(tools, Object.class), jsonWhitespace(body));
    }

    /**
     * The sampling parameters of a completions or chat request. {@code defaultMaxTokens} applies when
     * the request gives none (OpenAI's completions: 16; chat: the generation config's max_new_tokens,
     * else null, until the context is full); temperature, top_p, top_k and repetition_penalty default
     * to the generation config's. {@code echo} is {@link #echo}'s reading of a completions request.
     */
    static SamplingParams sampling(JsonNode body, Integer defaultMaxTokens, boolean chat, Echo echo, GenerationConfig defaults) {
        if (!chat) refuse(body, "tools", "tools are for chat completions");
        refuse(body, "functions", "function calls are not served");
        refuse(body, "suffix", "'suffix' is not served");
        // vLLM's fields that would change the answer and are not served here: refused, never ignored.
        refuseUnless(body, "use_beam_search", JsonNode::isBoolean, false, "beam search is served by LLM.beamSearch, not here");
        refuseUnless(body, "length_penalty", JsonNode::isNumber, 1.0, "'length_penalty' is for beam search, which is not served here");
        refuseUnless(body, "priority", JsonNode::isIntegralNumber, 0, "priority scheduling is not served");
        refuseUnless(body, "return_tokens_as_token_ids", JsonNode::isBoolean, false, "'return_tokens_as_token_ids' is not served");
        SamplingParams.Builder params = SamplingParams.builder();
        params.structuredOutputs(structuredOutputs(body));
        Integer n = integer(body, "n");
        if (n != null) params.n(n);
        Integer bestOf = integer(body, "best_of");
        if (bestOf != null && bestOf != (n == null ? 1 : n)) throw ApiError.invalid("best_of", "'best_of' other than n is not served");
        // What the request leaves out comes from the model's generation_config.json, as in vLLM.
        if (!ifNumber(body, "temperature", params::temperature)) defaults.temperature().ifPresent(params::temperature);
        if (!ifNumber(body, "top_p", params::topP)) defaults.topP().ifPresent(params::topP);
        Integer topK = integer(body, "top_k");
        if (topK != null && topK > 0) params.topK(topK); // vLLM: -1 or 0 turn it off
        if (topK == null) defaults.topK().ifPresent(k -> { if (k > 0) params.topK(k); });
        ifNumber(body, "min_p", params::minP);
        ifNumber(body, "presence_penalty", params::presencePenalty);
        ifNumber(body, "frequency_penalty", params::frequencyPenalty);
        if (!ifNumber(body, "repetition_penalty", params::repetitionPenalty)) defaults.repetitionPenalty().ifPresent(params::repetitionPenalty);
        JsonNode seed = body.get("seed");
        if (seed != null && !seed.isNull()) {
            if (!seed.isIntegralNumber() || !seed.canConvertToLong()) throw ApiError.invalid("seed", "'seed' must be an integer");
            params.seed(seed.asLong());
        }
        params.stop(strings(body, "stop"));
        params.badWords(strings(body, "bad_words"));
        JsonNode stopIds = body.get("stop_token_ids");
        if (stopIds != null && !stopIds.isNull()) {
            if (!stopIds.isArray()) throw ApiError.invalid("stop_token_ids", "'stop_token_ids' must be a list of token ids");
            params.stopTokenIds(tokenIds(stopIds, "stop_token_ids"));
        }
        ifBool(body, "ignore_eos", params::ignoreEos);
        ifBool(body, "skip_special_tokens", params::skipSpecialTokens);
        ifBool(body, "spaces_between_special_tokens", params::spacesBetweenSpecialTokens);
        JsonNode allowed = body.get("allowed_token_ids");
        if (allowed != null && !allowed.isNull()) {
            if (!allowed.isArray()) throw ApiError.invalid("allowed_token_ids", "'allowed_token_ids' must be a list of token ids");
            params.allowedTokenIds(java.util.Arrays.stream(tokenIds(allowed, "allowed_token_ids")).boxed().toList());
        }
        ifBool(body, "include_stop_str_in_output", params::includeStopStrInOutput);
        Integer maxTokens = chat && body.has("max_completion_tokens") ? integer(body, "max_completion_tokens") : integer(body, "max_tokens");
        if (maxTokens == null && chat && defaults.maxNewTokens().isPresent()) maxTokens = defaults.maxNewTokens().getAsInt();
        if (echo.scoreOnly()) maxTokens = 1; // one token is drawn and dropped: the engine generates at least one
        params.maxTokens(maxTokens != null ? maxTokens : defaultMaxTokens);
        Integer truncate = integer(body, "truncate_prompt_tokens");
        if (truncate != null) params.truncatePromptTokens(truncate);
        Integer minTokens = integer(body, "min_tokens");
        if (minTokens != null) params.minTokens(minTokens);
        Integer logprobs = logprobs(body, chat);
        if (logprobs != null) params.logprobs(logprobs);
        Integer promptLogprobs = integer(body, "prompt_logprobs");
        if (promptLogprobs != null && streaming(body).stream()) {
            throw ApiError.invalid("prompt_logprobs", "'prompt_logprobs' is answered whole; ask without 'stream'");
        }
        if (logprobs != null && echo.echo()) {
            if (promptLogprobs != null && !promptLogprobs.equals(logprobs)) {
                throw ApiError.invalid("prompt_logprobs", "with 'echo', the prompt's logprobs come from 'logprobs' (" + logprobs
                        + "); 'prompt_logprobs' " + promptLogprobs + " differs");
            }
            promptLogprobs = logprobs;
        }
        if (promptLogprobs != null) params.promptLogprobs(promptLogprobs);
        JsonNode bias = body.get("logit_bias");
        if (bias != null && !bias.isNull()) {
            if (!bias.isObject()) throw ApiError.invalid("logit_bias", "'logit_bias' must map token ids to biases");
            Map<Integer, Float> biases = new HashMap<>();
            for (var entry : bias.properties()) {
                int token;
                try {
                    token = Integer.parseInt(entry.getKey());
                } catch (NumberFormatException e) {
                    throw ApiError.invalid("logit_bias", "'logit_bias' keys must be token ids, not '" + entry.getKey() + "'");
                }
                if (!entry.getValue().isNumber()) throw ApiError.invalid("logit_bias", "'logit_bias' values must be numbers");
                biases.put(token, entry.getValue().floatValue());
            }
            params.logitBias(biases);
        }
        return params.build();
    }

    /** The switches of vLLM's {@code structured_outputs} taken and changing nothing here: no fallback backend exists, and no additional properties are written anyway. */
    private static final java.util.Set<String> STRUCTURED_NO_OPS = java.util.Set.of("disable_fallback", "disable_additional_properties");

    /**
     * What the output must be: OpenAI's {@code response_format} ({@code json_object}, or
     * {@code json_schema} with its {@code schema}), vLLM's {@code structured_outputs}
     * ({@code json}, {@code json_object}, {@code regex}, {@code choice}, {@code grammar},
     * {@code structural_tag}) or its older {@code guided_json}, {@code guided_regex},
     * {@code guided_choice}; null for free text. At most one may be given. What
     * {@code structured_outputs} holds besides is refused by name, but for switches that change
     * nothing here; {@code disable_any_whitespace} true makes its JSON compact, false lets it lay the
     * JSON out with any whitespace (vLLM's default); left out, at most one space between tokens;
     * {@code whitespace_pattern} is refused.
     */
    static StructuredOutputs structuredOutputs(JsonNode body) {
        List<String> given = new ArrayList<>();
        StructuredOutputs result = null;
        StructuredOutputs.JsonWhitespace whitespace = jsonWhitespace(body);
        JsonNode guidedWhitespace = body.get("guided_whitespace_pattern");
        if (guidedWhitespace != null && !guidedWhitespace.isNull()) {
            throw ApiError.invalid("guided_whitespace_pattern", "'guided_whitespace_pattern' is not followed: JSON outputs have at most one "
                    + "space between tokens (none with structured_outputs.disable_any_whitespace true, any whitespace with it false)");
        }
        JsonNode format = body.get("response_format");
        if (format != null && !format.isNull()) {
            String type = format.path("type").asText();
            switch (type) {
                case "text" -> { }
                case "json_object" -> result = StructuredOutputs.jsonObject(whitespace);
                case "json_schema" -> {
                    JsonNode schema = format.path("json_schema").path("schema");
                    if (!schema.isObject()) throw ApiError.invalid("response_format", "response_format json_schema needs json_schema.schema, an object");
                    result = structured("response_format", () -> StructuredOutputs.json(schema, whitespace));
                }
                case "structural_tag" -> result = structured("response_format", () -> StructuredOutputs.structuralTag(format));
                default -> throw ApiError.invalid("response_format", "response_format type '" + type
                        + "' is not text, json_object, json_schema or structural_tag");
            }
            if (result != null) given.add("response_format");
        }
        JsonNode vllm = body.path("structured_outputs");
        for (java.util.Iterator<String> keys = vllm.fieldNames(); keys.hasNext(); ) {
            String key = keys.next();
            String field = "structured_outputs." + key;
            switch (key) {
                case "json", "regex", "choice", "grammar", "structural_tag" -> { }
                case "json_object" -> {
                    if (Boolean.TRUE.equals(bool(vllm, key, field))) {
                        given.add(field);
                        result = StructuredOutputs.jsonObject(whitespace);
                    }
                }
                case "disable_any_whitespace" -> { }  // jsonWhitespace
                case "whitespace_pattern" -> {
                    if (!vllm.get(key).isNull()) {
                        throw ApiError.invalid(field, "'" + field + "' is not followed: JSON outputs have at most one space between tokens "
                                + "(none with disable_any_whitespace true, any whitespace with it false)");
                    }
                }
                default -> {
                    if (!STRUCTURED_NO_OPS.contains(key)) {
                        throw ApiError.invalid(field, "'" + field + "' is not one of json, json_object, regex, choice, grammar, "
                                + "structural_tag, disable_fallback, disable_additional_properties, disable_any_whitespace");
                    }
                    bool(vllm, key, field);
                }
            }
        }
        for (String key : new String[]{"guided_json", "guided_regex", "guided_choice", "guided_grammar", "json", "regex", "choice", "grammar",
                "structural_tag"}) {
            boolean nested = !key.startsWith("guided_");
            JsonNode value = nested ? vllm.get(key) : body.get(key);
            if (value == null || value.isNull()) continue;
            String field = nested ? "structured_outputs." + key : key;
            given.add(field);
            result = switch (key.replace("guided_", "")) {
                case "json" -> structured(field, () -> value.isTextual() ? StructuredOutputs.json(value.asText(), whitespace)
                        : StructuredOutputs.json(value, whitespace));
                case "regex" -> {
                    if (!value.isTextual()) throw ApiError.invalid(field, "'" + field + "' must be a string");
                    yield structured(field, () -> StructuredOutputs.regex(value.asText()));
                }
                case "grammar" -> {
                    if (!value.isTextual()) throw ApiError.invalid(field, "'" + field + "' must be a string (a GBNF grammar)");
                    yield structured(field, () -> StructuredOutputs.grammar(value.asText()));
                }
                case "structural_tag" -> {
                    JsonNode tag;
                    try {
                        tag = value.isTextual() ? OpenAiResponses.JSON.readTree(value.asText()) : value;
                    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                        throw ApiError.invalid(field, "'" + field + "' is not JSON: " + e.getOriginalMessage());
                    }
                    yield structured(field, () -> StructuredOutputs.structuralTag(tag));
                }
                default -> {
                    if (!value.isArray()) throw ApiError.invalid(field, "'" + field + "' must be a list of strings");
                    List<String> choices = new ArrayList<>();
                    for (JsonNode c : value) {
                        if (!c.isTextual()) throw ApiError.invalid(field, "'" + field + "' must be a list of strings");
                        choices.add(c.asText());
                    }
                    yield structured(field, () -> StructuredOutputs.choice(choices));
                }
            };
        }
        if (given.size() > 1) throw ApiError.invalid(given.get(1), "only one structured output may be asked for, not " + given);
        return result;
    }

    /**
     * Where the request's JSON outputs may put whitespace, whichever field asks for them (a schema, JSON
     * mode, tool calls): none where vLLM's {@code structured_outputs.disable_any_whitespace} is true,
     * any run of whitespace where it is false (vLLM's default: a model may lay the JSON out over lines,
     * and one that keeps writing whitespace runs to max_tokens), at most one space between tokens
     * where it is left out, which keeps small models from that.
     */
    static StructuredOutputs.JsonWhitespace jsonWhitespace(JsonNode body) {
        JsonNode vllm = body.path("structured_outputs");
        if (!vllm.isMissingNode() && !vllm.isNull() && !vllm.isObject()) {
            throw ApiError.invalid("structured_outputs", "'structured_outputs' must be an object");
        }
        Boolean disableAny = vllm.isObject() ? bool(vllm, "disable_any_whitespace", "structured_outputs.disable_any_whitespace") : null;
        if (disableAny == null) return StructuredOutputs.JsonWhitespace.ONE_SPACE;
        return disableAny ? StructuredOutputs.JsonWhitespace.NONE : StructuredOutputs.JsonWhitespace.ANY;
    }

    private static StructuredOutputs structured(String field, java.util.function.Supplier<StructuredOutputs> make) {
        try {
            return make.get();
        } catch (dev.jvllm.InvalidRequestException e) {
            throw ApiError.invalid(field, e.getMessage());
        }
    }

    /** Top log probabilities asked for: completions' {@code logprobs} (a count), chat's {@code logprobs} (true) with {@code top_logprobs}. */
    private static Integer logprobs(JsonNode body, boolean chat) {
        if (!chat) return integer(body, "logprobs");
        Boolean wanted = bool(body, "logprobs");
        Integer top = integer(body, "top_logprobs");
        if (top != null && !Boolean.TRUE.equals(wanted)) throw ApiError.invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true");
        return Boolean.TRUE.equals(wanted) ? (top == null ? 0 : top) : null;
    }

    /**
     * A completions request's {@code echo}: the prompt comes back before the text (and with logprobs,
     * its tokens' log probabilities), as evaluation harnesses score a text; with {@code max_tokens} 0
     * nothing is generated ({@code scoreOnly}). Echo is served whole, not streamed.
     */
    record Echo(boolean echo, boolean scoreOnly) {
        /** No echo: chat's, and a completion's that does not ask. */
        static final Echo NONE = new Echo(false, false);
    }

    static Echo echo(JsonNode body) {
        boolean echo = Boolean.TRUE.equals(bool(body, "echo"));
        if (echo && Boolean.TRUE.equals(bool(body, "stream"))) throw ApiError.invalid("echo", "'echo' is served without 'stream'");
        Integer maxTokens = integer(body, "max_tokens");
        if (!echo && maxTokens != null && maxTokens == 0) throw ApiError.invalid("max_tokens", "'max_tokens' 0 needs 'echo': true");
        return new Echo(echo, echo && maxTokens != null && maxTokens == 0);
    }

    /** Whether the answer streams, and whether its last chunk before [DONE] carries the usage. */
    /**
     * Whether to stream, and {@code stream_options}: the usage after the last chunk
     * ({@code include_usage}), and vLLM's usage so far in every chunk too ({@code continuous_usage_stats}).
     */
    record Streaming(boolean stream, boolean includeUsage, boolean continuousUsage) {
    }

    static Streaming streaming(JsonNode body) {
        boolean stream = Boolean.TRUE.equals(bool(body, "stream"));
        JsonNode options = body.get("stream_options");
        boolean usage = options != null && options.isObject() && options.path("include_usage").asBoolean(false);
        return new Streaming(stream, usage, usage && options.path("continuous_usage_stats").asBoolean(false));
    }

    private static void refuse(JsonNode body, String field, String why) {
        JsonNode node = body.get(field);
        if (node != null && !node.isNull() && !(node.isArray() && node.isEmpty())) throw ApiError.invalid(field, why);
    }

    /** Refuses {@code field} where it is given with a value other than {@code served} (or of the wrong type). */
    private static void refuseUnless(JsonNode body, String field, java.util.function.Predicate<JsonNode> type, Object served,
                                     String why) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) return;
        boolean same = type.test(node) && (served instanceof Boolean b ? node.asBoolean() == b
                : served instanceof Double d ? node.asDouble() == d : node.asLong() == ((Number) served).longValue());
        if (!same) throw ApiError.invalid(field, why);
    }

    static String text(JsonNode body, String field, String otherwise) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) return otherwise;
        if (!node.isTextual()) throw ApiError.invalid(field, "'" + field + "' must be a string");
        return node.asText();
    }

    /** A field holding one string or a list of them; empty where it is absent. */
    static List<String> strings(JsonNode body, String field) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) return List.of();
        if (node.isTextual()) return List.of(node.asText());
        if (!node.isArray()) throw ApiError.invalid(field, "'" + field + "' must be a string or a list of strings");
        List<String> values = new ArrayList<>();
        for (JsonNode item : node) {
            if (!item.isTextual()) throw ApiError.invalid(field, "'" + field + "' must be a string or a list of strings");
            values.add(item.asText());
        }
        return values;
    }

    static Integer integer(JsonNode body, String field) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) return null;
        if (!node.isIntegralNumber() || !node.canConvertToInt()) throw ApiError.invalid(field, "'" + field + "' must be an integer");
        return node.asInt();
    }

    /** Applies the field when the request has it; whether it had. */
    private static boolean ifNumber(JsonNode body, String field, DoubleConsumer apply) {
        Double value = number(body, field);
        if (value != null) apply.accept(value);
        return value != null;
    }

    private static void ifBool(JsonNode body, String field, Consumer<Boolean> apply) {
        Boolean value = bool(body, field);
        if (value != null) apply.accept(value);
    }

    private static Double number(JsonNode body, String field) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) return null;
        if (!node.isNumber()) throw ApiError.invalid(field, "'" + field + "' must be a number");
        return node.asDouble();
    }

    static Boolean bool(JsonNode body, String field) {
        return bool(body, field, field);
    }

    /** {@code parent}'s {@code key} as {@link #bool(JsonNode, String)} reads it, refused naming {@code field}. */
    static Boolean bool(JsonNode parent, String key, String field) {
        JsonNode node = parent.get(key);
        if (node == null || node.isNull()) return null;
        if (!node.isBoolean()) throw ApiError.invalid(field, "'" + field + "' must be true or false");
        return node.asBoolean();
    }
}
