package dev.jvllm.langchain4j;

import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.ScoringOutput;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.output.Response;
import dev.langchain4j.model.output.TokenUsage;
import dev.langchain4j.model.scoring.ScoringModel;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A jvllm {@link LLM} as LangChain4j's {@link ScoringModel}, in process, for re-ranking retrieved
 * segments (LangChain4j's {@code ReRankingContentAggregator}): each segment's score against the
 * query from {@link LLM#score}, in one batch. With a cross-encoder built for
 * {@link dev.jvllm.Task#CLASSIFY} (bge-reranker, ms-marco MiniLM) the score is the pair's relevance
 * (its logit through the checkpoint's activation: a sigmoid by default); with an embedding model, the
 * cosine of the two embeddings. The LLM stays its owner's to close.
 *
 * <pre>{@code
 * try (LLM reranker = new LLM("BAAI/bge-reranker-base")) {
 *     ScoringModel scoring = new JvllmScoringModel(reranker);
 *     var aggregator = new ReRankingContentAggregator(scoring);
 * }
 * }</pre>
 */
public final class JvllmScoringModel implements ScoringModel {

    private final LLM llm;
    private final PoolingParams params;

    /** Over {@code llm}; a pair longer than the model takes is refused. */
    public JvllmScoringModel(LLM llm) {
        this(llm, PoolingParams.defaults());
    }

    /**
     * Over {@code llm}, scoring with {@code params}: {@code truncatePromptTokens(-1)} cuts a pair longer
     * than the model takes, as Hugging Face cuts a pair (a long segment is scored on its beginning).
     */
    public JvllmScoringModel(LLM llm, PoolingParams params) {
        this.llm = Objects.requireNonNull(llm, "llm");
        this.params = Objects.requireNonNull(params, "params");
    }

    @Override
    public Response<List<Double>> scoreAll(List<TextSegment> segments, String query) {
        if (segments.isEmpty()) return Response.from(List.of(), new TokenUsage(0));
        List<ScoringOutput> outputs;
        synchronized (llm) { // an LLM runs one call at a time; callers sharing this model take turns
            outputs = llm.score(List.of(query), segments.stream().map(TextSegment::text).toList(), params);
        }
        List<Double> scores = new ArrayList<>(outputs.size());
        int tokens = 0;
        for (ScoringOutput output : outputs) {
            scores.add(output.score());
            tokens += output.promptTokens();
        }
        return Response.from(scores, new TokenUsage(tokens));
    }
}
