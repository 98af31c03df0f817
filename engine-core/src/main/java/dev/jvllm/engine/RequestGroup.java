package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.Logprob;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/** A user request: its prompt and the n sequences generated from it. */
final class RequestGroup {

    private final String requestId;
    private final String prompt;
    private final int[] promptTokenIds;
    private final SamplingParams params;
    final List<EngineRequest> sequences = new ArrayList<>();
    List<Map<Integer, Logprob>> promptLogprobs;

    RequestGroup(String requestId, String prompt, int[] promptTokenIds, SamplingParams params) {
        this.requestId = requestId;
        this.prompt = prompt;
        this.promptTokenIds = promptTokenIds;
        this.params = params;
        if (params.promptLogprobs().isPresent()) {
            promptLogprobs = new ArrayList<>();
            promptLogprobs.add(null);
        }
    }

    String requestId() {
        return requestId;
    }

    int[] promptTokenIds() {
        return promptTokenIds;
    }

    SamplingParams params() {
        return params;
    }

    /** The first sequence, whose prompt blocks the others share. */
    EngineRequest leader() {
        return sequences.getFirst();
    }

    boolean finished() {
        return sequences.stream().allMatch(EngineRequest::finished);
    }

    RequestOutput toOutput() {
        List<CompletionOutput> outs = new ArrayList<>(sequences.size());
        for (EngineRequest s : sequences) {
            List<Integer> ids = Arrays.stream(s.outputTokens()).boxed().toList();
            double cumulative = s.sampling.cumulativeLogprob().orElse(Double.NaN);
            outs.add(new CompletionOutput(s.index(), s.text.text(s.finished()), ids, cumulative, s.logprobs,
                    s.finishReason, s.stopReason));
        }
        return new RequestOutput(requestId, prompt, Arrays.stream(promptTokenIds).boxed().toList(),
                promptLogprobs == null ? null : Collections.unmodifiableList(new ArrayList<>(promptLogprobs)),
                outs, finished());
    }
}
