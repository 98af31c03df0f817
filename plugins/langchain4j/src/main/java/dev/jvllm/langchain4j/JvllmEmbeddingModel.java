package dev.jvllm.langchain4j;

import dev.jvllm.EmbeddingOutput;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.output.Response;
import dev.langchain4j.model.output.TokenUsage;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A jvllm {@link LLM} built for {@link dev.jvllm.Task#EMBED} as LangChain4j's {@link EmbeddingModel},
 * in process: the segments' texts embedded in one batch with the model's pooling (as
 * {@link LLM#embed(List, PoolingParams)}), in their order. The LLM stays its owner's to close.
 */
public final class JvllmEmbeddingModel implements EmbeddingModel {

    private final LLM llm;
    private final PoolingParams pooling;

    /** Over {@code llm}, with its default pooling. */
    public JvllmEmbeddingModel(LLM llm) {
        this(llm, PoolingParams.defaults());
    }

    /** Over {@code llm}, with {@code pooling} (normalization, Matryoshka dimensions, truncation). */
    public JvllmEmbeddingModel(LLM llm, PoolingParams pooling) {
        this.llm = Objects.requireNonNull(llm, "llm");
        this.pooling = Objects.requireNonNull(pooling, "pooling");
    }

    @Override
    public Response<List<Embedding>> embedAll(List<TextSegment> segments) {
        List<EmbeddingOutput> outputs;
        synchronized (llm) { // an LLM runs one call at a time; callers sharing this model take turns
            outputs = llm.embed(segments.stream().map(TextSegment::text).toList(), pooling);
        }
        List<Embedding> embeddings = new ArrayList<>(outputs.size());
        int tokens = 0;
        for (EmbeddingOutput output : outputs) {
            embeddings.add(Embedding.from(output.embedding()));
            tokens += output.promptTokenIds().length;
        }
        return Response.from(embeddings, new TokenUsage(tokens));
    }

    @Override
    public String modelName() {
        return Conversions.modelName(llm);
    }
}
