package dev.jvllm.engine;

import dev.jvllm.LLM;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Guesses for speculative decoding from answers known beforehand (each prompt's greedy answer), all
 * right or all wrong: the two ends between which prompt lookup's speed falls on a machine, whatever
 * a model's answers repeat. In the engine's package (a benchmark's, not the library's) for
 * {@link LLMEngine#draftWith}.
 */
public final class GuessOracle {

    private GuessOracle() {
    }

    /**
     * Makes {@code llm}'s engine (built with a speculative config) guess up to {@code guesses} tokens
     * a step: the answer's next tokens, or where {@code right} is false each of them plus one.
     */
    public static void install(LLM llm, List<int[]> prompts, List<List<Integer>> answers, int guesses, boolean right) {
        Map<String, List<Integer>> answerOf = new HashMap<>();
        for (int i = 0; i < prompts.size(); i++) answerOf.put(Arrays.toString(prompts.get(i)), answers.get(i));
        int vocab = llm.modelConfig().vocabSize();
        llm.engine().draftWith((request, limit) -> {
            List<Integer> answer = answerOf.get(Arrays.toString(request.group().promptTokenIds()));
            int from = request.numOutputTokens();
            int count = answer == null ? 0 : Math.min(Math.min(limit, guesses), answer.size() - from - 1);
            if (count <= 0) return Scheduler.NO_DRAFTS;
            int[] guess = new int[count];
            for (int i = 0; i < count; i++) guess[i] = right ? answer.get(from + i) : (answer.get(from + i) + 1) % vocab;
            return guess;
        }, guesses);
    }
}
