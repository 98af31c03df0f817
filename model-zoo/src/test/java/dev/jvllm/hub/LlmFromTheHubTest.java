package dev.jvllm.hub;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code new LLM("org/name")} for a model only the Hub has: downloaded into the cache, then served from it. */
class LlmFromTheHubTest {

    private static final String MODEL = "jvllm/demo";
    private static final String COMMIT = "89abcdef0123456789abcdef0123456789abcdef";
    private static final String PROMPT = "The European Parliament";

    @TempDir
    Path home;

    @Test
    void aModelIdOnlyTheHubHasIsDownloadedThenLoadedAndGeneratesAsTheLocalCopyDoes() throws Exception {
        Path demo = demo();
        String expected;
        try (LLM local = new LLM(demo.toString())) {
            expected = local.generate(PROMPT, SamplingParams.builder().temperature(0).maxTokens(12).build()).text();
        }
        Path cache = home.resolve("hub");
        try (FakeHub hub = new FakeHub(MODEL, COMMIT)) {
            for (String file : List.of("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "README.md")) {
                hub.file(file, Files.readAllBytes(demo.resolve(file)), false);
            }
            hub.file("model.safetensors", Files.readAllBytes(demo.resolve("model.safetensors")), true);

            assertEquals("TEXT:" + expected, run(Map.of("HF_ENDPOINT", hub.endpoint().toString(), "HF_HUB_CACHE", cache.toString())));
            assertTrue(Files.isSymbolicLink(cache.resolve("models--jvllm--demo/snapshots/" + COMMIT + "/model.safetensors")));
            hub.close();
            // The Hub is gone: the cache serves the id, with no download asked for.
            assertEquals("TEXT:" + expected, run(Map.of("HF_ENDPOINT", hub.endpoint().toString(), "HF_HUB_CACHE", cache.toString(),
                    "HF_HUB_OFFLINE", "1")));
        }
    }

    @Test
    void aQuantizedModelIsRefusedOnItsConfigBeforeItsWeightsAreFetched() throws Exception {
        Path demo = demo();
        String config = Files.readString(demo.resolve("config.json")).strip();
        String quantized = config.substring(0, config.lastIndexOf('}')) + ", \"quantization_config\": {\"quant_method\": \"hqq\"}}";
        try (FakeHub hub = new FakeHub(MODEL, COMMIT)) {
            hub.file("config.json", quantized.getBytes(StandardCharsets.UTF_8), false);
            hub.file("tokenizer.json", Files.readAllBytes(demo.resolve("tokenizer.json")), false);
            hub.file("model.safetensors", Files.readAllBytes(demo.resolve("model.safetensors")), true);

            Result result = launch(Map.of("HF_ENDPOINT", hub.endpoint().toString(), "HF_HUB_CACHE", home.resolve("hub").toString()));

            assertTrue(result.exitCode() != 0, result.output());
            assertTrue(result.output().contains("reads float8, GPTQ, AWQ and bitsandbytes weights only") && result.output().contains("'hqq'"),
                    result.output());
            assertEquals(0, hub.bodyRequests("model.safetensors"));
        }
    }

    private static Path demo() {
        return Files.isDirectory(Path.of("../models/jvllm-demo")) ? Path.of("../models/jvllm-demo") : Path.of("models/jvllm-demo");
    }

    private record Result(int exitCode, String output) {
    }

    private String run(Map<String, String> env) throws Exception {
        Result result = launch(env);
        assertEquals(0, result.exitCode(), result.output());
        return result.output().lines().filter(line -> line.startsWith("TEXT:")).findFirst().orElse("(no text) " + result.output());
    }

    private Result launch(Map<String, String> env) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), GenerateFromAHubId.class.getName(), MODEL, PROMPT));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().keySet().removeIf(name -> name.startsWith("HF_") || name.startsWith("HUGGING") || name.contains("MODELSCOPE"));
        builder.environment().putAll(env);
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(120, TimeUnit.SECONDS));
        return new Result(process.exitValue(), output);
    }
}
