package dev.jvllm.langchain4j;

import dev.jvllm.LLM;
import dev.jvllm.ScoringOutput;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.output.Response;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** A cross-encoder (model-zoo's tiny BertForSequenceClassification of one label) as LangChain4j's ScoringModel: the library's scores. */
class JvllmScoringModelTest {

    private static final Path GOLDENS = Path.of("../../model-zoo/src/test/resources/classification-goldens");

    @Test
    void segmentsAreScoredAsTheLibraryScoresThem(@TempDir Path dir) throws Exception {
        for (String file : List.of("config.json", "model.safetensors")) {
            Files.copy(GOLDENS.resolve("bert-cross-encoder-tiny").resolve(file), dir.resolve(file));
        }
        Files.copy(GOLDENS.resolve("wordpiece-tokenizer.json"), dir.resolve("tokenizer.json"));
        String query = "What is the capital of France?";
        List<String> texts = List.of("Paris is the capital of France.", "Berlin is the capital of Germany.");
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu").build()) {
            List<ScoringOutput> expected = llm.score(query, texts);
            Response<List<Double>> scored = new JvllmScoringModel(llm).scoreAll(texts.stream().map(TextSegment::from).toList(), query);
            assertEquals(2, scored.content().size());
            for (int i = 0; i < 2; i++) assertEquals(expected.get(i).score(), scored.content().get(i), 1e-7);
            assertEquals(expected.get(0).promptTokens() + expected.get(1).promptTokens(), scored.tokenUsage().inputTokenCount());
            assertEquals(expected.get(1).score(), new JvllmScoringModel(llm).score(texts.get(1), query).content(), 1e-7);
            // A segment longer than the model's 128 positions, cut when asked.
            TextSegment longSegment = TextSegment.from("paris ".repeat(200).strip());
            assertThrows(dev.jvllm.InvalidRequestException.class, () -> new JvllmScoringModel(llm).score(longSegment, query));
            assertEquals(128, new JvllmScoringModel(llm, dev.jvllm.PoolingParams.builder().truncatePromptTokens(-1).build())
                    .scoreAll(List.of(longSegment), query).tokenUsage().inputTokenCount());
        }
    }
}
