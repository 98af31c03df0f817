package dev.jvllm.examples;

import dev.jvllm.LLM;
import dev.jvllm.ScoringOutput;

import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Re-ranking retrieved passages with a cross-encoder (bge-reranker, ms-marco MiniLM): each passage is
 * read together with the query and scored, and the best come first, as a retrieval pipeline's second
 * stage does after a fast embedding search.
 */
public final class Rerank {

    /** A passage and its relevance to the query. */
    public record Ranked(String passage, double score) {
    }

    private Rerank() {
    }

    /** The {@code topK} passages most relevant to {@code query}, best first. */
    public static List<Ranked> rerank(LLM reranker, String query, List<String> passages, int topK) {
        List<ScoringOutput> scores = reranker.score(query, passages);
        return IntStream.range(0, passages.size())
                .mapToObj(i -> new Ranked(passages.get(i), scores.get(i).score()))
                .sorted(Comparator.comparingDouble(Ranked::score).reversed())
                .limit(topK)
                .toList();
    }

    public static void main(String[] args) {
        String model = args.length > 0 ? args[0] : "BAAI/bge-reranker-base";
        try (LLM reranker = new LLM(model)) {
            rerank(reranker, "What is the capital of France?", List.of("Berlin is the capital of Germany.",
                    "Paris is the capital of France.", "France is in Europe."), 2).forEach(System.out::println);
        }
    }
}
