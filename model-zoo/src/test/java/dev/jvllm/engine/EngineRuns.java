package dev.jvllm.engine;

import dev.jvllm.RequestOutput;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Running an engine's requests to the end in the tests that drive {@link LLMEngine} directly. */
final class EngineRuns {

    private EngineRuns() {
    }

    /**
     * Steps {@code engine} until no request is left and returns each finished request's first
     * sequence's token ids by request id (in id order).
     */
    static Map<String, List<Integer>> finishedTokens(LLMEngine engine) {
        Map<String, List<Integer>> tokens = new TreeMap<>();
        while (engine.hasUnfinishedRequests()) {
            for (RequestOutput output : engine.step()) {
                if (output.finished()) tokens.put(output.requestId(), output.outputs().getFirst().tokenIds());
            }
        }
        return tokens;
    }
}
