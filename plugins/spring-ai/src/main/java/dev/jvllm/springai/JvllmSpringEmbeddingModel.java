package dev.jvllm.springai;

import dev.jvllm.EmbeddingOutput;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import org.springframework.ai.document.Document;
import org.springframework.ai.embedding.Embedding;
import org.springframework.ai.embedding.EmbeddingModel;
import org.springframework.ai.embedding.EmbeddingRequest;
import org.springframework.ai.embedding.EmbeddingResponse;
import org.springframework.ai.embedding.EmbeddingResponseMetadata;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A jvllm {@link LLM} built for {@link dev.jvllm.Task#EMBED} as Spring AI's {@link EmbeddingModel}, in
 * process: the texts embedded in one batch with the model's pooling, in their order. Callers on several
 * threads take turns (an LLM runs one call at a time). The LLM stays its owner's to close.
 */
public final class JvllmSpringEmbeddingModel implements EmbeddingModel {

    private final LLM llm;
    private final PoolingParams pooling;

    /** Over {@code llm}, with its default pooling. */
    public JvllmSpringEmbeddingModel(LLM llm) {
        this(llm, PoolingParams.defaults());
    }

    /** Over {@code llm}, with {@code pooling} (normalization, Matryoshka dimensions, truncation). */
    public JvllmSpringEmbeddingModel(LLM llm, PoolingParams pooling) {
        this.llm = Objects.requireNonNull(llm, "llm");
        this.pooling = Objects.requireNonNull(pooling, "pooling");
    }

    /**
     * The request's texts embedded; its options' {@code dimensions} (Matryoshka models) in place of
     * this model's, and the tokens read in the response's usage.
     */
    @Override
    public EmbeddingResponse call(EmbeddingRequest request) {
        PoolingParams asked = pooling;
        Integer dimensions = request.getOptions() == null ? null : request.getOptions().getDimensions();
        if (dimensions != null) {
            PoolingParams.Builder b = PoolingParams.builder().dimensions(dimensions);
            pooling.normalize().ifPresent(b::normalize);
            pooling.truncatePromptTokens().ifPresent(b::truncatePromptTokens);
            asked = b.build();
        }
        List<EmbeddingOutput> outputs;
        synchronized (llm) {
            outputs = llm.embed(request.getInstructions(), asked);
        }
        List<Embedding> embeddings = new ArrayList<>(outputs.size());
        int tokens = 0;
        for (int i = 0; i < outputs.size(); i++) {
            embeddings.add(new Embedding(outputs.get(i).embedding(), i));
            tokens += outputs.get(i).promptTokenIds().length;
        }
        return new EmbeddingResponse(embeddings, new EmbeddingResponseMetadata(dev.jvllm.hub.ModelResolver.modelName(llm.modelDirectory()),
                new org.springframework.ai.chat.metadata.DefaultUsage(tokens, 0)));
    }

    @Override
    public float[] embed(Document document) {
        return call(new EmbeddingRequest(List.of(getEmbeddingContent(document)), null)).getResult().getOutput();
    }
}
