package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.Logprob;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/** A user request: its prompt and the n sequences generated from it. */
final class RequestGroup {

    private final String requestId;
    private final String prompt;
    private final int[] promptTokenIds;
    private final SamplingParams params;
    private final TokenIdList promptTokenList;
    /** The prompt's images with their placeholder spans, in prompt order; empty for text alone. */
    private final List<PromptImage> images;
    /** An encoder-decoder model's encoder input (the prompt's tokens; promptTokenIds then is the decoder's); else null. */
    private EncoderInput encoder;
    final List<EngineRequest> sequences = new ArrayList<>();
    List<Map<Integer, Logprob>> promptLogprobs;
    /** The last outputs' copy of {@link #promptLogprobs}, reused while nothing was added to it. */
    private List<Map<Integer, Logprob>> promptLogprobsCopy;
    /** The engine step that last added this request to its outputs (written by the engine only). */
    long lastOutputStep = -1;

    RequestGroup(String requestId, String prompt, int[] promptTokenIds, SamplingParams params) {
        this(requestId, prompt, promptTokenIds, params, List.of());
    }

    RequestGroup(String requestId, String prompt, int[] promptTokenIds, SamplingParams params, List<PromptImage> images) {
        this.requestId = requestId;
        this.images = List.copyOf(images);
        this.prompt = prompt;
        this.promptTokenIds = promptTokenIds;
        this.params = params;
        this.promptTokenList = new TokenIdList(promptTokenIds, 0, promptTokenIds.length);
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

    List<PromptImage> images() {
        return images;
    }

    EncoderInput encoder() {
        return encoder;
    }

    void encoder(EncoderInput encoder) {
        this.encoder = encoder;
    }

    SamplingParams params() {
        return params;
    }

    /** The first sequence, whose prompt blocks the others share. */
    EngineRequest leader() {
        return sequences.getFirst();
    }

    boolean finished() {
        for (EngineRequest s : sequences) {
            if (!s.finished()) return false;
        }
        return true;
    }

    /** The request's output so far; the token ids are views, not copies (see {@link TokenIdList}). */
    RequestOutput toOutput() {
        CompletionOutput[] outs = new CompletionOutput[sequences.size()];
        for (int i = 0; i < outs.length; i++) {
            EngineRequest s = sequences.get(i);
            double cumulative = s.sampling.cumulativeLogprob().orElse(Double.NaN);
            outs[i] = new CompletionOutput(s.index(), s.text.text(s.finished()), s.outputTokenIds(), cumulative,
                    s.logprobs, s.finishReason, s.stopReason);
        }
        // List.of, which RequestOutput keeps as it is rather than copying.
        return new RequestOutput(requestId, prompt, promptTokenList, promptLogprobsSoFar(), List.of(outs), finished());
    }

    /**
     * What the request's output added since its last delta (vLLM's {@code DELTA} output kind): each
     * sequence's new text, token ids and logprobs, the prompt logprobs in the first; null where
     * nothing is new. Costs what is new, not what came before (the text is not copied whole).
     */
    RequestOutput toDeltaOutput() {
        List<CompletionOutput> changed = new ArrayList<>(sequences.size());
        for (EngineRequest s : sequences) {
            int tokens = s.outputTokenIds().size();
            int chars = s.text.visibleLength(s.finished());
            boolean newlyFinished = s.finished() && !s.deltaFinished;
            if (tokens == s.deltaTokens && chars == s.deltaChars && !newlyFinished) continue;
            double cumulative = s.sampling.cumulativeLogprob().orElse(Double.NaN);
            changed.add(new CompletionOutput(s.index(), s.text.slice(s.deltaChars, chars), s.outputTokenIds().subList(s.deltaTokens, tokens),
                    cumulative, s.logprobs == null ? null : s.logprobs.subList(s.deltaTokens, tokens), s.finishReason, s.stopReason));
            s.deltaTokens = tokens;
            s.deltaChars = chars;
            s.deltaFinished = s.finished();
        }
        if (changed.isEmpty()) return null;
        var prompt = deltaPromptLogprobsSent ? null : promptLogprobsSoFar();
        deltaPromptLogprobsSent = true;
        return new RequestOutput(requestId, this.prompt, promptTokenList, prompt, changed, false);
    }

    private boolean deltaPromptLogprobsSent;

    private List<Map<Integer, Logprob>> promptLogprobsSoFar() {
        if (promptLogprobs == null) return null;
        if (promptLogprobsCopy == null || promptLogprobsCopy.size() != promptLogprobs.size()) {
            promptLogprobsCopy = Collections.unmodifiableList(new ArrayList<>(promptLogprobs));
        }
        return promptLogprobsCopy;
    }
}
