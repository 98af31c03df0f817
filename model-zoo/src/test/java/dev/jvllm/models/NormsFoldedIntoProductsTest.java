package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Pre-norm layers hand their RMSNorms to the products that read them and their residual adds to
 * the products that end a branch ({@code Backend.rmsNormLinears}, {@code rmsNormGatedLinear},
 * {@code linearAdd}, {@code linearAddRmsNorm}). On the CPU below a backend that takes every such
 * chance (its {@code linearAddRmsNorm} only adds and leaves the norm pending, as the CUDA backend
 * does at one row) the logits are the CPU's own, bit for bit, and a one-token decode step of a
 * Llama layer makes five launches where the composed calls make seven.
 */
class NormsFoldedIntoProductsTest {

    /** The calls the CUDA backend runs as one kernel at one row, though Backend composes them by default. */
    private static final Set<String> ONE_KERNEL = Set.of("linears", "gatedLinear", "addRmsNorm", "rotaryAttention");
    private static final Set<String> FOLDING = Set.of("rmsNormLinears", "rmsNormGatedLinear", "linearAdd",
            "linearAddRmsNorm");
    private static final Set<String> NOT_KERNELS = Set.of("name", "activationType", "weight", "stackedWeight",
            "transposedWeight", "constant", "stepValues", "allocate", "indices", "toFloatArray", "allocateKvCache",
            "deviceMemory", "runCaptured", "capturesGraphs", "allocateIndices", "expertWeights", "close");

    static Stream<Golden> cases() {
        return Stream.of("llama-", "llama3-", "qwen2-tied", "qwen3-qk-norm", "gemma-plain", "gemma2-softcap",
                "mixtral-top2", "phi3-fused", "gpt2-plain").flatMap(Golden::cases);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void logitsOfPrefillAndDecodeStepsAreTheComposedOnesBitForBit(Golden golden) {
        int[] tokens = golden.prompts().getFirst().tokenIds();
        float[][] composed = logitsOfEachStep(golden, tokens, false, new TreeMap<>());
        float[][] folded = logitsOfEachStep(golden, tokens, true, new TreeMap<>());
        for (int step = 0; step < composed.length; step++) {
            assertArrayEquals(composed[step], folded[step], golden + " step " + step);
        }
    }

    @Test
    void aOneTokenDecodeStepMakesFiveLaunchesALayerWhereNormsFold() {
        Golden golden = Golden.cases("llama-plain").findFirst().orElseThrow();
        int layers = ModelConfig.load(golden.directory()).numLayers();
        int[] tokens = golden.prompts().getFirst().tokenIds();
        Map<String, Integer> composed = new TreeMap<>(), folded = new TreeMap<>();
        logitsOfEachStep(golden, tokens, false, composed);
        logitsOfEachStep(golden, tokens, true, folded);
        // Outside the layers: the embedding, the logit row's gather, the final norm and the LM head.
        assertEquals(Map.of("embedding", 1, "rmsNorm", 2, "linears", layers, "rotaryAttention", layers,
                "linear", 2 * layers + 1, "addRmsNorm", 2 * layers - 1, "gatedLinear", layers, "add", 1,
                "gatherRows", 1), composed, "7 launches a layer");
        assertEquals(Map.of("embedding", 1, "rmsNormLinears", layers, "rotaryAttention", layers,
                "linearAddRmsNorm", 2 * layers - 1, "rmsNormGatedLinear", layers, "linearAdd", 1, "gatherRows", 1,
                "rmsNorm", 1, "linear", 1), folded, "5 launches a layer");
    }

    /**
     * The logits of a prefill of all but the last token, then of a decode step of the last, on the
     * CPU seen through {@link #counting}; {@code launches} gets the launches of the decode step.
     */
    private static float[][] logitsOfEachStep(Golden golden, int[] tokens, boolean folds, Map<String, Integer> launches) {
        ModelConfig config = ModelConfig.load(golden.directory());
        Map<String, Integer> prefillLaunches = new TreeMap<>();
        try (Checkpoint checkpoint = Checkpoint.open(golden.directory());
             Backend cpu = Backends.create("cpu", BackendOptions.defaults())) {
            Map<String, Integer>[] counts = new Map[]{prefillLaunches};
            Backend backend = counting(cpu, folds, counts);
            try (CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 256));
                 KvCache cache = backend.allocateKvCache(model.kvCacheSpec(8, 16))) {
                int n = tokens.length - 1;
                int[] prompt = IntStream.range(0, n).toArray();
                int[][] table = {{0, 1, 2, 3}};
                float[] prefill = backend.toFloatArray(model.forward(new ForwardBatch(Arrays.copyOf(tokens, n), prompt,
                        prompt, new int[]{0, n}, new int[]{n}, table, 16, prompt), cache));
                counts[0] = launches;
                float[] decode = backend.toFloatArray(model.forward(new ForwardBatch(new int[]{tokens[n]}, new int[]{n},
                        new int[]{n}, new int[]{0, 1}, new int[]{n + 1}, table, 16, new int[]{0}), cache));
                return new float[][]{prefill, decode};
            }
        }
    }

    /**
     * The CPU backend, counting launches into {@code counts[0]} as the CUDA backend makes them at
     * one row: the calls in ONE_KERNEL count once, other composed calls count their parts. With
     * {@code folds} the calls in FOLDING count once too, and linearAddRmsNorm only adds and leaves
     * the norm pending.
     */
    private static Backend counting(Backend cpu, boolean folds, Map<String, Integer>[] counts) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class},
                (proxy, method, args) -> {
                    String name = method.getName();
                    boolean folded = folds && FOLDING.contains(name);
                    if (method.isDefault() && !folded && !ONE_KERNEL.contains(name) && !NOT_KERNELS.contains(name)) {
                        return InvocationHandler.invokeDefault(proxy, method, args);
                    }
                    if (!NOT_KERNELS.contains(name)) counts[0].merge(name, 1, Integer::sum);
                    if (folded && name.equals("linearAddRmsNorm")) {
                        cpu.linearAdd((Tensor) args[0], (Tensor) args[1], (Tensor) args[2], (Tensor) args[3],
                                (Tensor) args[4]);
                        return false;
                    }
                    try {
                        return method.invoke(cpu, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }
}
