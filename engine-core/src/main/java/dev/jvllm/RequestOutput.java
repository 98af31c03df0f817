package dev.jvllm;

import dev.jvllm.engine.TokenIdList;

import java.util.List;
import java.util.Map;

/**
 * The result of one request, complete or (when streaming) so far.
 *
 * @param requestId      the request's id
 * @param prompt         the prompt text, null when given as token ids
 * @param promptTokenIds the prompt's token ids
 * @param promptLogprobs per prompt token, its log probability and the top-N alternatives (the first is null); null unless requested
 * @param outputs        the n generated sequences
 * @param finished       whether every sequence has ended
 */
public record RequestOutput(String requestId, String prompt, List<Integer> promptTokenIds,
                            List<Map<Integer, Logprob>> promptLogprobs, List<CompletionOutput> outputs,
                            boolean finished) {

    public RequestOutput {
        promptTokenIds = promptTokenIds instanceof TokenIdList ? promptTokenIds : List.copyOf(promptTokenIds);
        outputs = List.copyOf(outputs);
    }

    /** The first sequence's text, the common case of n = 1. */
    public String text() {
        return outputs.getFirst().text();
    }
}
