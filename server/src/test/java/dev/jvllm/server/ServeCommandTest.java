package dev.jvllm.server;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** vLLM's --limit-mm-per-prompt, --chat-template and --hf-overrides as `./jvllm serve` reads them. */
class ServeCommandTest {

    @Test
    void theImageLimitIsReadFromVllmsJsonOrAsNameEqualsNumber() {
        assertEquals(4, ServeCommand.imageLimit("{\"image\": 4}"));
        assertEquals(0, ServeCommand.imageLimit(" image=0 "));
    }

    @Test
    void otherModalitiesAndMalformedLimitsAreRefusedNamingTheOption() {
        var video = assertThrows(IllegalArgumentException.class, () -> ServeCommand.imageLimit("{\"image\": 2, \"video\": 1}"));
        assertTrue(video.getMessage().contains("modality 'video' is not served"), video.getMessage());
        var negative = assertThrows(IllegalArgumentException.class, () -> ServeCommand.imageLimit("{\"image\": -1}"));
        assertTrue(negative.getMessage().contains("at least 0"), negative.getMessage());
        var garbage = assertThrows(IllegalArgumentException.class, () -> ServeCommand.imageLimit("image=lots"));
        assertTrue(garbage.getMessage().startsWith("--limit-mm-per-prompt"), garbage.getMessage());
    }

    @Test
    void aChatTemplateIsReadFromTheFileItNamesOrTakenAsItIs(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path file = dir.resolve("template.jinja");
        java.nio.file.Files.writeString(file, "{{ messages[0].content }}");
        assertEquals("{{ messages[0].content }}", ServeCommand.chatTemplateSource(file.toString()));
        assertEquals("{% for m in messages %}{{ m.content }}{% endfor %}",
                ServeCommand.chatTemplateSource("{% for m in messages %}{{ m.content }}{% endfor %}"));
        var typo = assertThrows(IllegalArgumentException.class, () -> ServeCommand.chatTemplateSource(dir.resolve("templat.jinja").toString()));
        assertTrue(typo.getMessage().contains("is no file"), typo.getMessage());
    }

    @Test
    void hfOverridesAreAJsonObjectOfConfigFields() {
        var fields = ServeCommand.hfOverrides("{\"architectures\": [\"Qwen3ForSequenceClassification\"], \"classifier_from_token\": [\"no\", \"yes\"]}");
        assertEquals(java.util.List.of("Qwen3ForSequenceClassification"), fields.get("architectures"));
        assertEquals(java.util.List.of("no", "yes"), fields.get("classifier_from_token"));
        var bad = assertThrows(IllegalArgumentException.class, () -> ServeCommand.hfOverrides("[1]"));
        assertTrue(bad.getMessage().startsWith("--hf-overrides"), bad.getMessage());
    }

    @Test
    void aSpeculativeConfigIsReadFromVllmsJson() {
        assertEquals(dev.jvllm.SpeculativeConfig.ngram(4, 2, 4), ServeCommand.speculativeConfig(
                "{\"method\": \"ngram\", \"num_speculative_tokens\": 4, \"prompt_lookup_max\": 4, \"prompt_lookup_min\": 2}"));
        assertEquals(dev.jvllm.SpeculativeConfig.ngram(3, 5, 5),
                ServeCommand.speculativeConfig("{\"method\": \"ngram\", \"num_speculative_tokens\": 3}"));
    }

    @Test
    void aSpeculativeConfigThatIsNotServedIsRefusedNamingWhy() {
        java.util.Map<String, String> refusals = java.util.Map.of(
                "{\"model\": \"yuhuili/EAGLE-LLaMA3.1-Instruct-8B\", \"num_speculative_tokens\": 3}", "draft models are not served",
                "{\"method\": \"eagle\", \"num_speculative_tokens\": 3}", "only \"ngram\"",
                "{\"method\": \"ngram\", \"num_speculative_tokens\": 3, \"draft_tensor_parallel_size\": 1}", "key 'draft_tensor_parallel_size'",
                "{\"method\": \"ngram\"}", "num_speculative_tokens must be a whole number",
                "{\"method\": \"ngram\", \"num_speculative_tokens\": 2.5}", "num_speculative_tokens must be a whole number",
                "{\"method\": \"ngram\", \"num_speculative_tokens\": 3, \"prompt_lookup_min\": 4, \"prompt_lookup_max\": 2}", "promptLookupMax",
                "ngram", "takes a JSON object");
        refusals.forEach((json, why) -> {
            var refused = assertThrows(IllegalArgumentException.class, () -> ServeCommand.speculativeConfig(json));
            assertTrue(refused.getMessage().contains(why), json + ": " + refused.getMessage());
        });
    }
}
