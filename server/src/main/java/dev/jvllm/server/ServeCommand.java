package dev.jvllm.server;

import dev.jvllm.JvllmException;
import dev.jvllm.LLM;
import dev.jvllm.Task;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** The command line behind {@code ./jvllm serve}: an {@link OpenAiServer} until interrupted. */
public final class ServeCommand {

    private static final String USAGE = """
            usage: ./jvllm serve [options]
              --model M                  local directory or Hugging Face id (default: models/jvllm-demo)
              --host H                   address to listen on (default 127.0.0.1; 0.0.0.0 for all)
              --port P                   (default 8000)
              --api-key K                required as "Authorization: Bearer K" (default: $VLLM_API_KEY, else none)
              --served-model-name N      the name clients use (default: the --model value)
              --task generate|embed|classify (default: what the model does)
              --revision R               branch, tag or commit of a Hugging Face id
              --download-dir D           Hugging Face cache to use
              --max-model-len N          --max-num-seqs N   --device cuda[:N]|cpu|auto --dtype T
              --gpu-memory-utilization F --enforce-eager    --threads N
              --lora-modules name=path   a LoRA adapter served as model "name" (repeat, or separate by commas;
                                         implies --enable-lora)
              --limit-mm-per-prompt '{"image": N}'   the most images a request may hold (default 16; image=N too)
              --enable-lora              --max-lora-rank N (default 16)
              --enable-auto-tool-choice --tool-call-parser hermes|llama3_json
                                         tool_choice "auto": calls read from the model's answer
              --reasoning-parser deepseek_r1|qwen3
                                         a thinking model's reasoning answered as reasoning_content
              --chat-template T          a Jinja chat template (a file, or the template itself) instead of the model's
              --hf-overrides JSON        config.json fields replaced, e.g. '{"architectures": ["Qwen3ForSequenceClassification"],
                                         "classifier_from_token": ["no", "yes"]}' to serve a Qwen3-Reranker as a reranker
              --max-num-batched-tokens N --block-size N --seed N
              --speculative-config JSON  speculative decoding by prompt lookup, e.g. '{"method": "ngram",
                                         "num_speculative_tokens": 4, "prompt_lookup_max": 4, "prompt_lookup_min": 2}'
              --enable-prefix-caching    --no-enable-prefix-caching (on by default)
              --trust-remote-code        accepted for vLLM's command lines; jvllm runs no model code
            """;

    private ServeCommand() {
    }

    /**
     * vLLM's {@code --chat-template}: the text of the file it names, or else the template itself.
     *
     * @throws IllegalArgumentException where the file cannot be read, or the value names no file and
     *                                  cannot be a template either (a mistyped path)
     */
    static String chatTemplateSource(String value) {
        Path file;
        try {
            file = Path.of(value);
        } catch (java.nio.file.InvalidPathException notAPath) {
            return value;
        }
        if (!java.nio.file.Files.isRegularFile(file)) {
            // As vLLM: what names no file is the template itself, unless it cannot be one (a mistyped path).
            if (value.contains("{") || value.contains("\n")) return value;
            throw new IllegalArgumentException("--chat-template: " + value + " is no file, and no template (it has no {{ }} or {% %})");
        }
        try {
            return java.nio.file.Files.readString(file);
        } catch (java.io.IOException | java.io.UncheckedIOException e) {
            throw new IllegalArgumentException("--chat-template: cannot read " + file + " (" + e.getMessage() + ")");
        }
    }

    /** vLLM's {@code --hf-overrides}: a JSON object of config.json fields. */
    static java.util.Map<String, Object> hfOverrides(String value) {
        try {
            java.util.Map<String, Object> fields = new com.fasterxml.jackson.databind.ObjectMapper()
                    .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                    .readValue(value.strip(), new com.fasterxml.jackson.core.type.TypeReference<>() {
                    });
            if (fields == null) throw new IllegalArgumentException("--hf-overrides takes a JSON object, not null");
            return fields;
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("--hf-overrides takes a JSON object of config.json fields, not '" + value + "'");
        }
    }

    private static final java.util.Set<String> SPECULATIVE_KEYS =
            java.util.Set.of("method", "num_speculative_tokens", "prompt_lookup_max", "prompt_lookup_min");

    /**
     * vLLM's {@code --speculative-config}: a JSON object of method "ngram" (the one served), its
     * {@code num_speculative_tokens} and the lookup's {@code prompt_lookup_max} / {@code prompt_lookup_min}.
     *
     * @throws IllegalArgumentException naming the key that is unknown, missing or of the wrong kind,
     *                                  or the method that is not served (a draft model's {@code model})
     */
    static dev.jvllm.SpeculativeConfig speculativeConfig(String value) {
        com.fasterxml.jackson.databind.JsonNode json;
        try {
            json = new com.fasterxml.jackson.databind.ObjectMapper()
                    .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS).readTree(value.strip());
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("--speculative-config takes a JSON object, not '" + value + "'");
        }
        if (json == null || !json.isObject()) throw new IllegalArgumentException("--speculative-config takes a JSON object, not '" + value + "'");
        if (json.has("model") && !json.has("method")) {
            throw new IllegalArgumentException("--speculative-config: draft models are not served; use {\"method\": \"ngram\", ...}");
        }
        for (var names = json.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!SPECULATIVE_KEYS.contains(name)) {
                throw new IllegalArgumentException("--speculative-config: key '" + name + "' is not taken (" + SPECULATIVE_KEYS + ")");
            }
        }
        if (!json.path("method").isTextual()) throw new IllegalArgumentException("--speculative-config needs \"method\": \"ngram\"");
        return dev.jvllm.SpeculativeConfig.of(json.get("method").asText(), wholeNumber(json, "num_speculative_tokens"),
                json.has("prompt_lookup_min") ? wholeNumber(json, "prompt_lookup_min") : null,
                json.has("prompt_lookup_max") ? wholeNumber(json, "prompt_lookup_max") : null);
    }

    private static int wholeNumber(com.fasterxml.jackson.databind.JsonNode json, String key) {
        com.fasterxml.jackson.databind.JsonNode node = json.get(key);
        if (node == null || !node.canConvertToInt() || !node.isIntegralNumber()) {
            throw new IllegalArgumentException("--speculative-config: " + key + " must be a whole number, not " + node);
        }
        return node.intValue();
    }

    /** vLLM's {@code --limit-mm-per-prompt}: {@code {"image": N}} (JSON) or {@code image=N}; images are the only modality served. */
    static int imageLimit(String value) {
        String text = value.strip();
        java.util.Map<String, Object> limits;
        try {
            limits = text.startsWith("{")
                    ? new com.fasterxml.jackson.databind.ObjectMapper().readValue(text, new com.fasterxml.jackson.core.type.TypeReference<>() {
                    })
                    : java.util.Map.of(text.substring(0, Math.max(text.indexOf('='), 0)).strip(),
                    Integer.parseInt(text.substring(text.indexOf('=') + 1).strip()));
        } catch (java.io.IOException | NumberFormatException e) {
            throw new IllegalArgumentException("--limit-mm-per-prompt takes '{\"image\": N}' or image=N, not '" + value + "'");
        }
        for (var entry : limits.entrySet()) {
            if (!entry.getKey().equals("image")) {
                throw new IllegalArgumentException("--limit-mm-per-prompt: modality '" + entry.getKey()
                        + "' is not served (images are)");
            }
            if (!(entry.getValue() instanceof Integer n) || n < 0) {
                throw new IllegalArgumentException("--limit-mm-per-prompt: the image limit must be a whole number of at least 0, not "
                        + entry.getValue());
            }
        }
        Object n = limits.get("image");
        if (n == null) throw new IllegalArgumentException("--limit-mm-per-prompt names no image limit: '" + value + "'");
        return (Integer) n;
    }

    public static void main(String[] args) throws Exception {
        // A client gets 60 s to send its request line, headers and body (the JDK server waits
        // forever by default, so slow clients could hold connections); answers, streams among them,
        // have no limit. Set here, before the server's classes read it, unless given on the command line.
        if (System.getProperty("sun.net.httpserver.maxReqTime") == null) System.setProperty("sun.net.httpserver.maxReqTime", "60");
        String model = "models/jvllm-demo";
        LLM.Builder llm = LLM.builder();
        String host = "127.0.0.1", apiKey = System.getenv("VLLM_API_KEY"), servedName = null;
        int port = 8000;
        Map<String, Path> loraModules = new LinkedHashMap<>();
        boolean autoToolChoice = false;
        String toolCallParser = null;
        String reasoningParser = null;
        try {
            for (int i = 0; i < args.length; i++) {
                // vLLM's command lines spell options with dashes or underscores (--hf_overrides).
                String option = args[i].startsWith("--") ? "--" + args[i].substring(2).replace('_', '-') : args[i];
                if (option.equals("-h") || option.equals("--help")) {
                    System.out.print(USAGE);
                    return;
                }
                if (option.equals("--enforce-eager")) {
                    llm.enforceEager(true);
                    continue;
                }
                if (option.equals("--enable-auto-tool-choice")) {
                    autoToolChoice = true;
                    continue;
                }
                if (option.equals("--enable-lora")) {
                    llm.enableLora(true);
                    continue;
                }
                if (option.equals("--enable-prefix-caching") || option.equals("--no-enable-prefix-caching")) {
                    llm.enablePrefixCaching(option.equals("--enable-prefix-caching"));
                    continue;
                }
                if (option.equals("--trust-remote-code")) {
                    System.err.println("jvllm serve: --trust-remote-code changes nothing: jvllm runs no code from a model's files");
                    continue;
                }
                if (i + 1 >= args.length) throw new IllegalArgumentException(option + " needs a value");
                String value = args[++i];
                switch (option) {
                    case "--model" -> model = value;
                    case "--host" -> host = value;
                    case "--port" -> port = Integer.parseInt(value);
                    case "--api-key" -> apiKey = value;
                    case "--served-model-name" -> servedName = value;
                    case "--task" -> llm.task(Task.valueOf(value.toUpperCase(Locale.ROOT)));
                    case "--revision" -> llm.revision(value);
                    case "--download-dir" -> llm.downloadDir(Path.of(value));
                    case "--max-model-len" -> llm.maxModelLen(Integer.parseInt(value));
                    case "--max-num-seqs" -> llm.maxNumSeqs(Integer.parseInt(value));
                    case "--device" -> llm.device(value);
                    case "--dtype" -> llm.dtype(value);
                    case "--gpu-memory-utilization" -> llm.gpuMemoryUtilization(Double.parseDouble(value));
                    case "--threads" -> llm.threads(Integer.parseInt(value));
                    case "--max-lora-rank" -> llm.maxLoraRank(Integer.parseInt(value));
                    case "--tool-call-parser" -> toolCallParser = value;
                    case "--chat-template" -> llm.chatTemplate(chatTemplateSource(value));
                    case "--hf-overrides" -> llm.hfOverrides(hfOverrides(value));
                    case "--max-num-batched-tokens" -> llm.maxNumBatchedTokens(Integer.parseInt(value));
                    case "--block-size" -> llm.blockSize(Integer.parseInt(value));
                    case "--seed" -> llm.seed(Long.parseLong(value));
                    case "--speculative-config" -> llm.speculativeConfig(speculativeConfig(value));
                    case "--reasoning-parser" -> {
                        ReasoningParser.named(value); // refused here, with the usage, when unknown
                        reasoningParser = value;
                    }
                    case "--limit-mm-per-prompt" -> llm.limitImagesPerPrompt(imageLimit(value));
                    case "--lora-modules" -> {
                        // name=path, several separated by commas or given by repeating the option
                        for (String module : value.split(",")) {
                            int eq = module.indexOf('=');
                            if (eq < 1 || eq == module.length() - 1) {
                                throw new IllegalArgumentException("--lora-modules takes name=path, not '" + module + "'");
                            }
                            loraModules.put(module.substring(0, eq).strip(), Path.of(module.substring(eq + 1).strip()));
                        }
                        llm.enableLora(true);
                    }
                    default -> throw new IllegalArgumentException("unknown option " + option);
                }
            }
        } catch (IllegalArgumentException e) {
            System.err.println("jvllm serve: " + e.getMessage() + "\n" + USAGE);
            System.exit(2);
        }
        OpenAiServer server;
        try {
            OpenAiServer.Builder builder = OpenAiServer.builder(llm.model(model).build()).host(host).port(port).apiKey(apiKey)
                    .servedModelName(servedName != null ? servedName : model);
            loraModules.forEach(builder::loraModule);
            if (autoToolChoice != (toolCallParser != null)) {
                throw new IllegalArgumentException("--enable-auto-tool-choice and --tool-call-parser go together");
            }
            if (toolCallParser != null) builder.toolCallParser(toolCallParser);
            if (reasoningParser != null) builder.reasoningParser(reasoningParser);
            server = builder.start();
        } catch (JvllmException | IllegalArgumentException e) {
            System.err.println("jvllm serve: " + e.getMessage());
            System.exit(1);
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(server::close, "jvllm-serve-shutdown"));
        System.err.println("jvllm serve: " + server.modelName() + " at " + server.address() + "/v1"
                + (apiKey != null ? " (API key required)" : ""));
        server.awaitClose();
    }
}
