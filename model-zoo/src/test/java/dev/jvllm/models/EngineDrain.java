package dev.jvllm.models;

import dev.jvllm.RequestFailedException;
import dev.jvllm.RequestOutput;
import dev.jvllm.engine.LLMEngine;

import java.util.HashMap;
import java.util.Map;

/**
 * An engine stepped until no request is left: each request's final output, and the failure of each
 * that failed (tests of requests that fail alone while the others run on).
 */
record EngineDrain(Map<String, RequestOutput> finished, Map<String, RequestFailedException> failures) {

    static EngineDrain of(LLMEngine engine) {
        Map<String, RequestOutput> finished = new HashMap<>();
        Map<String, RequestFailedException> failures = new HashMap<>();
        while (engine.hasUnfinishedRequests()) {
            for (RequestOutput out : engine.step()) {
                if (!out.finished()) continue;
                finished.put(out.requestId(), out);
                RequestFailedException failure = engine.failure(out.requestId());
                if (failure != null) failures.put(out.requestId(), failure);
            }
        }
        return new EngineDrain(finished, failures);
    }
}
