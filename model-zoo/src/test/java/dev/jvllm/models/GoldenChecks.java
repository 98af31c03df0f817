package dev.jvllm.models;

import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;

import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The two comparisons every golden case gets: logits at every prompt position, and greedy tokens through the engine. */
final class GoldenChecks {

    private GoldenChecks() {
    }

    /** One prefill per prompt on the CPU: relative logit error below 1e-4 at every position. */
    static void logitsMatchAtEveryPosition(Golden golden) {
        double[][] errors = relativeLogitErrors(golden);
        for (int i = 0; i < errors.length; i++) {
            for (int p = 0; p < errors[i].length; p++) {
                assertTrue(errors[i][p] < 1e-4, golden + " prompt of " + errors[i].length + " tokens, position " + p
                        + ": relative logit error " + errors[i][p]);
            }
        }
    }

    /**
     * Prefills each prompt of the case's checkpoint on the CPU; per prompt and position, the
     * relative (L2) error of the logits against the golden ones.
     */
    static double[][] relativeLogitErrors(Golden golden) {
        ModelConfig config = ModelConfig.load(golden.directory());
        try (Checkpoint checkpoint = Checkpoint.open(golden.directory());
             Backend backend = Backends.create("cpu", BackendOptions.defaults());
             CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 256));
             KvCache cache = backend.allocateKvCache(model.kvCacheSpec(8, 16))) {
            double[][] errors = new double[golden.prompts().size()][];
            for (int i = 0; i < errors.length; i++) {
                Golden.Prompt prompt = golden.prompts().get(i);
                int n = prompt.tokenIds().length;
                int[] all = IntStream.range(0, n).toArray();
                ForwardBatch batch = new ForwardBatch(prompt.tokenIds(), all, all, new int[]{0, n}, new int[]{n},
                        new int[][]{{0, 1, 2, 3}}, 16, all);
                float[] logits = backend.toFloatArray(model.forward(batch, cache));
                int vocab = model.vocabSize();
                errors[i] = new double[n];
                for (int p = 0; p < n; p++) {
                    double err = 0, norm = 0;
                    for (int v = 0; v < vocab; v++) {
                        double expected = prompt.logits()[p][v];
                        err += Math.pow(logits[p * vocab + v] - expected, 2);
                        norm += expected * expected;
                    }
                    errors[i][p] = Math.sqrt(err / norm);
                }
            }
            return errors;
        }
    }

    /** 16 greedy tokens per prompt through {@link LLM}: the same as Transformers'. */
    static void greedyTokensMatch(Golden golden) {
        SamplingParams greedy = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
        try (LLM llm = LLM.builder().model(golden.directory().toString()).maxModelLen(128).build()) {
            List<Prompt> prompts = golden.prompts().stream().map(p -> Prompt.tokens(p.tokenIds())).toList();
            List<RequestOutput> outputs = llm.generatePrompts(prompts, greedy);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(golden.prompts().get(i).greedyTokenIds(), outputs.get(i).outputs().getFirst().tokenIdArray(),
                        golden + " prompt " + i);
                assertEquals("length", outputs.get(i).outputs().getFirst().finishReason().toString());
            }
        }
    }
}
