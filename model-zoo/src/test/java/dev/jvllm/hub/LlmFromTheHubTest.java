package dev.jvllm.hub;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
        Path demo = Files.isDirectory(Path.of("../models/jvllm-demo")) ? Path.of("../models/jvllm-demo") : Path.of("models/jvllm-demo");
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

    private String run(Map<String, String> env) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), GenerateFromAHubId.class.getName(), MODEL, PROMPT));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().keySet().removeIf(name -> name.startsWith("HF_") || name.startsWith("HUGGING") || name.contains("MODELSCOPE"));
        builder.environment().putAll(env);
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, process.exitValue(), output);
        return output.lines().filter(line -> line.startsWith("TEXT:")).findFirst().orElse("(no text) " + output);
    }
}
