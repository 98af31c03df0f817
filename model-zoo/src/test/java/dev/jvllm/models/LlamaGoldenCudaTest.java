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
import dev.jvllm.cuda.CudaBackendProvider;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link LlamaGoldenTest} on the GPU: Llama through the CUDA backend against Hugging Face
 * Transformers' float32 logits and greedy tokens. Skipped, with the reason, where there is no GPU.
 */
class LlamaGoldenCudaTest {


    static Stream<Golden> llamaCases() {
        return LlamaGoldenTest.llamaCases();
    }

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("llamaCases")
    void logitsMatchTransformersAtEveryPosition(Golden golden) {
        ModelConfig config = ModelConfig.load(golden.directory());
        try (Checkpoint checkpoint = Checkpoint.open(golden.directory());
             Backend backend = Backends.create("cuda", BackendOptions.defaults());
             CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 256));
             KvCache cache = backend.allocateKvCache(model.kvCacheSpec(8, 16))) {
            for (Golden.Prompt prompt : golden.prompts()) {
                int n = prompt.tokenIds().length;
                int[] all = IntStream.range(0, n).toArray();
                ForwardBatch batch = new ForwardBatch(prompt.tokenIds(), all, all, new int[]{0, n}, new int[]{n},
                        new int[][]{{0, 1, 2, 3}}, 16, all);
                float[] logits = backend.toFloatArray(model.forward(batch, cache));
                int vocab = model.vocabSize();
                for (int p = 0; p < n; p++) {
                    double err = 0, norm = 0;
                    for (int v = 0; v < vocab; v++) {
                        double expected = prompt.logits()[p][v];
                        err += Math.pow(logits[p * vocab + v] - expected, 2);
                        norm += expected * expected;
                    }
                    double relative = Math.sqrt(err / norm);
                    assertTrue(relative < 1e-4, golden + " prompt of " + n + " tokens, position " + p
                            + ": relative logit error " + relative);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("llamaCases")
    void greedyTokensEqualTransformers(Golden golden) {
        assertGreedyTokensEqualTransformers(golden, "cuda");
    }

    /**
     * The engine on the machine's last GPU by index ("cuda:N"; on a machine of one GPU, "cuda:0"): the
     * index's way through the builder and the provider. That the work ran on device N rather than 0 is not
     * checked here (the tokens would be the same); CudaBackendProviderTest checks that a backend on cuda:N
     * puts its tensors in device N's memory.
     */
    @Test
    void theLastGpuByIndexGivesTransformersTokens() {
        assertGreedyTokensEqualTransformers(llamaCases().findFirst().orElseThrow(),
                "cuda:" + (CudaBackendProvider.deviceCount() - 1));
    }

    private static void assertGreedyTokensEqualTransformers(Golden golden, String device) {
        SamplingParams greedy = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
        try (LLM llm = LLM.builder().model(golden.directory().toString()).device(device).maxModelLen(128).build()) {
            List<Prompt> prompts = golden.prompts().stream().map(p -> Prompt.tokens(p.tokenIds())).toList();
            List<RequestOutput> outputs = llm.generatePrompts(prompts, greedy);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(golden.prompts().get(i).greedyTokenIds(), outputs.get(i).outputs().getFirst().tokenIdArray(),
                        golden + " on " + device + ", prompt " + i);
                assertEquals("length", outputs.get(i).outputs().getFirst().finishReason().toString());
            }
        }
    }
}
