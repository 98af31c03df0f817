package dev.jvllm.examples;

import dev.jvllm.LLM;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The structured-extraction example reads the demo model's constrained answer into its record. */
class StructuredExtractionTest {

    @Test
    void theAnswerReadsIntoTheRecord() {
        Path demo = Files.isDirectory(Path.of("../models/jvllm-demo")) ? Path.of("../models/jvllm-demo") : Path.of("models/jvllm-demo");
        try (LLM llm = new LLM(demo.toString())) {
            StructuredExtraction.Vote vote = StructuredExtraction.extract(llm, "The Italian delegation voted for the motion with 76 seats.");
            assertTrue(Set.of("France", "Germany", "Italy", "Spain").contains(vote.country()), vote.toString());
        }
    }
}
