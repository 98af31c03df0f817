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

import java.nio.file.Path;
import java.util.Arrays;
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
        logitsMatchAtEveryPosition(golden, "cpu");
    }

    /** One prefill per prompt on {@code backend} ("cpu", "cuda"): relative logit error below 1e-4 at every position. */
    static void logitsMatchAtEveryPosition(Golden golden, String backend) {
        double[][] errors = relativeLogitErrors(golden, backend);
        for (int i = 0; i < errors.length; i++) {
            for (int p = 0; p < errors[i].length; p++) {
                assertTrue(errors[i][p] < 1e-4, golden + " prompt of " + errors[i].length + " tokens, position " + p
                        + ": relative logit error " + errors[i][p]);
            }
        }
    }

    /**
     * Prefills each prompt of the case's checkpoint on the CPU (or {@code backend}); per prompt and
     * position, the relative (L2) error of the logits against the golden ones.
     */
    static double[][] relativeLogitErrors(Golden golden) {
        return relativeLogitErrors(golden, "cpu");
    }

    static double[][] relativeLogitErrors(Golden golden, String backend) {
        float[][][] actual = prefillLogits(golden.directory(), golden.prompts(), backend);
        double[][] errors = new double[actual.length][];
        for (int i = 0; i < errors.length; i++) {
            float[][] expected = golden.prompts().get(i).logits();
            errors[i] = new double[actual[i].length];
            for (int p = 0; p < actual[i].length; p++) {
                double err = 0, norm = 0;
                for (int v = 0; v < actual[i][p].length; v++) {
                    err += Math.pow(actual[i][p][v] - expected[p][v], 2);
                    norm += (double) expected[p][v] * expected[p][v];
                }
                errors[i][p] = Math.sqrt(err / norm);
            }
        }
        return errors;
    }

    /** The logits [prompt][position][vocab] of one prefill per prompt of the checkpoint in {@code directory}. */
    static float[][][] prefillLogits(Path directory, List<Golden.Prompt> prompts) {
        return prefillLogits(directory, prompts, "cpu");
    }

    static float[][][] prefillLogits(Path directory, List<Golden.Prompt> prompts, String backendName) {
        ModelConfig config = ModelConfig.load(directory);
        try (Checkpoint checkpoint = Checkpoint.open(directory);
             Backend backend = Backends.create(backendName, BackendOptions.defaults());
             CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 256));
             KvCache cache = backend.allocateKvCache(model.kvCacheSpec(8, 16))) {
            float[][][] out = new float[prompts.size()][][];
            for (int i = 0; i < out.length; i++) {
                int[] tokens = prompts.get(i).tokenIds();
                int n = tokens.length;
                int[] all = IntStream.range(0, n).toArray();
                ForwardBatch batch = new ForwardBatch(tokens, all, all, new int[]{0, n}, new int[]{n},
                        new int[][]{{0, 1, 2, 3}}, 16, all);
                float[] logits = backend.toFloatArray(model.forward(batch, cache));
                int vocab = model.vocabSize();
                out[i] = new float[n][];
                for (int p = 0; p < n; p++) {
                    out[i][p] = Arrays.copyOfRange(logits, p * vocab, (p + 1) * vocab);
                }
            }
            return out;
        }
    }

    /** 16 greedy tokens per prompt through {@link LLM}: the same as Transformers'. */
    static void greedyTokensMatch(Golden golden) {
        greedyTokensMatch(golden, LLM.builder());
    }

    /** As {@link #greedyTokensMatch(Golden)} on {@code device} ("cpu", "cuda"). */
    static void greedyTokensMatch(Golden golden, String device) {
        greedyTokensMatch(golden, LLM.builder().device(device));
    }

    private static void greedyTokensMatch(Golden golden, LLM.Builder builder) {
        SamplingParams greedy = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
        try (LLM llm = builder.model(golden.directory().toString()).maxModelLen(128).build()) {
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
