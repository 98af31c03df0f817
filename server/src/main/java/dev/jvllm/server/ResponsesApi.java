package dev.jvllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;
import java.util.Set;
import java.util.UUID;

import static dev.jvllm.server.OpenAiResponses.JSON;

/**
 * OpenAI's Responses API ({@code POST /v1/responses}) as far as jvllm serves it: a text (and image)
 * conversation in, one assistant message out, whole or streamed as the API's named events. A request
 * is read into the chat completions request it amounts to ({@link #chatBody}), so that it is checked
 * and sampled as chat requests are, function tools and the calls and results of earlier turns
 * included; what it asks for beyond that (stored responses, reasoning settings, other tools) is
 * refused by name. Nothing is stored: answers say {@code "store": false}.
 */
final class ResponsesApi {

    private static final Set<String> ROLES = Set.of("user", "system", "developer", "assistant");
    /** Fields a chat request reads under the same names: OpenAI's sampling and vLLM's extras. */
    private static final java.util.List<String> PASSED_ON = java.util.List.of("temperature", "top_p", "top_k", "min_p", "seed",
            "presence_penalty", "frequency_penalty", "repetition_penalty", "stop", "stop_token_ids", "ignore_eos", "min_tokens",
            "logit_bias", "skip_special_tokens", "spaces_between_special_tokens", "allowed_token_ids", "bad_words",
            "guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs", "cache_salt",
            "chat_template_kwargs", "truncate_prompt_tokens",
            // passed so that chat's checks refuse them where they would change the answer
            "n", "best_of", "use_beam_search", "length_penalty", "priority", "return_tokens_as_token_ids");

    private ResponsesApi() {
    }

    /**
     * The chat completions request a Responses request amounts to: {@code instructions} as a system
     * message, then {@code input} (a string, or message items of text and image parts);
     * {@code max_output_tokens}, {@code temperature}, {@code top_p} and {@code text.format} as their
     * chat counterparts, with vLLM's sampling extras passed on.
     */
    static ObjectNode chatBody(JsonNode body) {
        refuseUnless(body, "previous_response_id", "stored responses are not served: send the whole conversation as input");
        refuseUnless(body, "conversation", "stored conversations are not served: send the whole conversation as input");
        refuseUnless(body, "prompt", "prompt templates are not served");
        refuseUnless(body, "include", "'include' is not served");
        refuseUnless(body, "prompt_logprobs", "prompt log probabilities are served on /v1/completions and /v1/chat/completions");
        if (body.path("background").asBoolean(false)) throw ApiError.invalid("background", "background responses are not served");
        if (body.hasNonNull("truncation") && !body.path("truncation").asText().equals("disabled")) {
            throw ApiError.invalid("truncation", "only truncation 'disabled' is served");
        }
        if (body.path("reasoning").hasNonNull("effort")) throw ApiError.invalid("reasoning", "reasoning effort is not served");
        if (body.path("reasoning").hasNonNull("summary")) throw ApiError.invalid("reasoning", "reasoning summaries are not made");
        if (body.path("top_logprobs").asInt(0) > 0) throw ApiError.invalid("top_logprobs", "log probabilities are served on /v1/chat/completions");
        ObjectNode chat = JSON.createObjectNode();
        chatTools(body, chat);
        ArrayNode messages = chat.putArray("messages");
        JsonNode instructions = body.get("instructions");
        if (instructions != null && !instructions.isNull()) {
            if (!instructions.isTextual()) throw ApiError.invalid("instructions", "'instructions' must be a string");
            messages.addObject().put("role", "system").put("content", instructions.asText());
        }
        JsonNode input = body.get("input");
        if (input == null || input.isNull()) throw ApiError.invalid("input", "'input' is required");
        if (input.isTextual()) {
            messages.addObject().put("role", "user").put("content", input.asText());
        } else if (input.isArray()) {
            for (int i = 0; i < input.size(); i++) {
                JsonNode item = input.get(i);
                String path = "input[" + i + "]";
                switch (item.path("type").asText("message")) {
                    case "function_call" -> {
                        // Calls the model made, as the assistant message holding them (consecutive calls in one).
                        ObjectNode call = JSON.createObjectNode().put("id", text(item, "call_id", path)).put("type", "function");
                        call.putObject("function").put("name", text(item, "name", path)).put("arguments", text(item, "arguments", path));
                        JsonNode previous = messages.isEmpty() ? null : messages.get(messages.size() - 1);
                        if (previous != null && previous.path("role").asText().equals("assistant") && previous.has("tool_calls")) {
                            ((ArrayNode) previous.get("tool_calls")).add(call);
                        } else {
                            ObjectNode assistant = messages.addObject().put("role", "assistant").put("content", "");
                            assistant.putArray("tool_calls").add(call);
                        }
                    }
                    case "function_call_output" -> messages.addObject().put("role", "tool")
                            .put("tool_call_id", text(item, "call_id", path)).put("content", text(item, "output", path));
                    // A reasoning item given back with the rest of an earlier output: the chat templates
                    // leave earlier turns' thinking out, so it is dropped.
                    case "reasoning" -> { }
                    default -> messages.add(message(item, path));
                }
            }
        } else {
            throw ApiError.invalid("input", "'input' must be a string or a list of messages");
        }
        // The sampling fields chat reads under the same names (vLLM's extras among them) pass as they are.
        for (String field : PASSED_ON) {
            if (body.has(field)) chat.set(field, body.get(field));
        }
        if (body.has("max_output_tokens")) chat.set("max_tokens", body.get("max_output_tokens"));
        JsonNode format = body.path("text").path("format");
        if (!format.isMissingNode() && !format.isNull()) {
            String type = format.path("type").asText();
            switch (type) {
                case "text" -> { }
                case "json_object" -> chat.putObject("response_format").put("type", "json_object");
                case "json_schema" -> {
                    if (!format.path("schema").isObject()) throw ApiError.invalid("text.format.schema", "a json_schema format needs its 'schema', an object");
                    ObjectNode schema = chat.putObject("response_format").put("type", "json_schema").putObject("json_schema");
                    schema.put("name", format.path("name").asText("schema")).set("schema", format.get("schema"));
                }
                default -> throw ApiError.invalid("text.format", "text.format type '" + type + "' is not text, json_object or json_schema");
            }
        }
        return chat;
    }

    /** A message item as a chat message: its role, and its content as text or as text and image parts. */
    private static ObjectNode message(JsonNode item, String path) {
        if (!item.isObject()) throw ApiError.invalid(path, "an input item must be a message object");
        String type = item.path("type").asText("message");
        if (!type.equals("message")) throw ApiError.invalid(path + ".type", "input items of type '" + type + "' are not served");
        String role = item.path("role").asText();
        if (!ROLES.contains(role)) throw ApiError.invalid(path + ".role", "role '" + role + "' is not user, system, developer or assistant");
        ObjectNode message = JSON.createObjectNode().put("role", role.equals("developer") ? "system" : role);
        JsonNode content = item.get("content");
        if (content != null && content.isTextual()) return message.put("content", content.asText());
        if (content == null || !content.isArray()) throw ApiError.invalid(path + ".content", "content must be a string or a list of parts");
        ArrayNode parts = message.putArray("content");
        for (int p = 0; p < content.size(); p++) {
            JsonNode part = content.get(p);
            String partPath = path + ".content[" + p + "]";
            switch (part.path("type").asText()) {
                case "input_text", "output_text" -> parts.addObject().put("type", "text").put("text", part.path("text").asText());
                case "input_image" -> {
                    if (!part.path("image_url").isTextual()) throw ApiError.invalid(partPath + ".image_url", "an input_image needs its 'image_url'");
                    parts.addObject().put("type", "image_url").putObject("image_url").put("url", part.path("image_url").asText());
                }
                default -> throw ApiError.invalid(partPath + ".type", "content parts of type '" + part.path("type").asText()
                        + "' are not served (input_text, output_text and input_image are)");
            }
        }
        return message;
    }

    /**
     * The Responses API's function tools as chat's: {@code {"type": "function", "name", "description",
     * "parameters"}} becomes {@code {"type": "function", "function": {...}}}, and a named tool choice
     * {@code {"type": "function", "name"}} chat's {@code {"type": "function", "function": {"name"}}}.
     */
    private static void chatTools(JsonNode body, ObjectNode chat) {
        JsonNode tools = body.get("tools");
        if (tools != null && !tools.isNull()) {
            if (!tools.isArray()) throw ApiError.invalid("tools", "'tools' must be a list of functions");
            ArrayNode chatTools = chat.putArray("tools");
            for (int i = 0; i < tools.size(); i++) {
                JsonNode tool = tools.get(i);
                if (!tool.path("type").asText().equals("function")) {
                    throw ApiError.invalid("tools[" + i + "].type", "tools of type '" + tool.path("type").asText() + "' are not served (function is)");
                }
                ObjectNode function = chatTools.addObject().put("type", "function").putObject("function");
                function.put("name", text(tool, "name", "tools[" + i + "]"));
                if (tool.hasNonNull("description")) function.set("description", tool.get("description"));
                if (tool.hasNonNull("parameters")) function.set("parameters", tool.get("parameters"));
            }
        }
        JsonNode choice = body.get("tool_choice");
        if (choice == null || choice.isNull()) return;
        if (choice.isTextual()) {
            chat.set("tool_choice", choice);
        } else if (choice.path("type").asText().equals("function") && choice.path("name").isTextual()) {
            chat.putObject("tool_choice").put("type", "function").putObject("function").put("name", choice.path("name").asText());
        } else {
            throw ApiError.invalid("tool_choice", "tool_choice must be none, auto, required or {\"type\": \"function\", \"name\": ...}");
        }
    }

    private static String text(JsonNode item, String field, String path) {
        JsonNode value = item.get(field);
        if (value == null || !value.isTextual()) throw ApiError.invalid(path + "." + field, "'" + field + "' must be a string");
        return value.asText();
    }

    private static void refuseUnless(JsonNode body, String field, String why) {
        if (body.hasNonNull(field)) throw ApiError.invalid(field, why);
    }

    /** A new response's ids: the response's ({@code resp_...}) and its message's ({@code msg_...}). */
    record Ids(String response, String message) {
        static Ids fresh() {
            return new Ids("resp_" + hex(), "msg_" + hex());
        }

        static String hex() {
            return UUID.randomUUID().toString().replace("-", "");
        }
    }

    /**
     * The response object: {@code status} "in_progress" (no output yet, {@code text} null), "completed",
     * or "incomplete" where the answer stopped at {@code max_output_tokens}; the request's settings echoed.
     */
    static ObjectNode response(Ids ids, long createdAt, String model, JsonNode request, String text, boolean stoppedByLength,
                               int inputTokens, int outputTokens) {
        return response(ids, createdAt, model, request, text, List.of(), stoppedByLength, inputTokens, outputTokens);
    }

    /**
     * {@link #response}, its output the message of {@code text} (left out where it is empty and calls
     * were made) and then the function calls the answer made.
     */
    static ObjectNode response(Ids ids, long createdAt, String model, JsonNode request, String text, List<ObjectNode> calls,
                               boolean stoppedByLength, int inputTokens, int outputTokens) {
        return response(ids, createdAt, model, request, null, text, calls, stoppedByLength, inputTokens, outputTokens);
    }

    /** {@link #response}, with a thinking model's {@code reasoning} item (null: none) first in its output. */
    static ObjectNode response(Ids ids, long createdAt, String model, JsonNode request, ObjectNode reasoning, String text,
                               List<ObjectNode> calls, boolean stoppedByLength, int inputTokens, int outputTokens) {
        ObjectNode response = JSON.createObjectNode().put("id", ids.response()).put("object", "response").put("created_at", createdAt);
        String status = text == null ? "in_progress" : stoppedByLength ? "incomplete" : "completed";
        response.put("status", status).putNull("error");
        if (status.equals("incomplete")) response.putObject("incomplete_details").put("reason", "max_output_tokens");
        else response.putNull("incomplete_details");
        response.set("instructions", request.path("instructions").isTextual() ? request.get("instructions") : JSON.nullNode());
        response.set("max_output_tokens", request.path("max_output_tokens").isNumber() ? request.get("max_output_tokens") : JSON.nullNode());
        response.put("model", model);
        ArrayNode output = response.putArray("output");
        if (reasoning != null) output.add(reasoning);
        if (text != null && (!text.isEmpty() || calls.isEmpty())) output.add(message(ids, text, "completed"));
        calls.forEach(output::add);
        response.put("parallel_tool_calls", true).putNull("previous_response_id");
        response.putObject("reasoning").putNull("effort").putNull("summary");
        response.put("store", false);
        response.set("temperature", request.path("temperature").isNumber() ? request.get("temperature") : JSON.nullNode());
        response.putObject("text").set("format", request.path("text").path("format").isObject() ? request.path("text").get("format")
                : JSON.createObjectNode().put("type", "text"));
        response.set("tool_choice", request.hasNonNull("tool_choice") ? request.get("tool_choice") : JSON.getNodeFactory().textNode("auto"));
        response.set("tools", request.path("tools").isArray() ? request.get("tools") : JSON.createArrayNode());
        response.set("top_p", request.path("top_p").isNumber() ? request.get("top_p") : JSON.nullNode());
        response.put("truncation", "disabled");
        if (text != null) {
            ObjectNode usage = response.putObject("usage").put("input_tokens", inputTokens);
            usage.putObject("input_tokens_details").put("cached_tokens", 0).put("cache_write_tokens", 0);
            usage.put("output_tokens", outputTokens);
            usage.putObject("output_tokens_details").put("reasoning_tokens", 0);
            usage.put("total_tokens", inputTokens + outputTokens);
        } else {
            response.putNull("usage");
        }
        response.set("user", request.path("user").isTextual() ? request.get("user") : JSON.nullNode());
        response.set("metadata", request.path("metadata").isObject() ? request.get("metadata") : JSON.createObjectNode());
        return response;
    }

    /** The answer's message item, its text whole ("completed") or none yet ("in_progress"). */
    static ObjectNode message(Ids ids, String text, String status) {
        ObjectNode item = JSON.createObjectNode().put("type", "message").put("id", ids.message()).put("status", status).put("role", "assistant");
        ArrayNode content = item.putArray("content");
        if (text != null) content.add(outputText(text));
        return item;
    }

    /** A reasoning item: a thinking model's reasoning as its content's text (no summary is made). */
    static ObjectNode reasoning(String text) {
        ObjectNode item = JSON.createObjectNode().put("type", "reasoning").put("id", "rs_" + Ids.hex());
        item.putArray("summary");
        item.putArray("content").addObject().put("type", "reasoning_text").put("text", text);
        return item.put("status", "completed");
    }

    /** A function call item: its own id ({@code fc_...}), the call's id ({@code call_...}), the function and its arguments. */
    static ObjectNode functionCall(String name, String arguments) {
        return JSON.createObjectNode().put("type", "function_call").put("id", "fc_" + Ids.hex()).put("call_id", "call_" + Ids.hex())
                .put("name", name).put("arguments", arguments).put("status", "completed");
    }

    static ObjectNode outputText(String text) {
        ObjectNode part = JSON.createObjectNode().put("type", "output_text").put("text", text);
        part.putArray("annotations");
        return part;
    }
}
