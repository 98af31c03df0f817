package dev.jvllm.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.SafetensorsTestWriter;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A golden Llama (float32) written twice: with its layers' projections quantized, and as a float32
 * twin holding the values the quantized weights decode to. The two must answer alike, so what a test
 * of a quantized format checks is the decoding, not the quantization's error.
 */
final class QuantizedTwins {

    private static final Path GOLDEN = Golden.root().resolve("llama-plain");

    /** Quantizes one projection: writes its quantized tensors and returns the values they decode to. */
    interface Projection {
        float[] quantize(String name, WeightTensor weight, float[] values, SafetensorsTestWriter quantized);
    }

    private QuantizedTwins() {
    }

    /**
     * Writes {@code quantized} (its config's {@code quantization_config} filled by {@code configure})
     * and {@code twin} from the golden, each projection of the layers through {@code projection}.
     *
     * @return how many projections were quantized
     */
    static int write(Path quantized, Path twin, Projection projection, Consumer<ObjectNode> configure) throws IOException {
        return write(GOLDEN, LINEAR, quantized, twin, projection, configure);
    }

    /** Which tensors of a golden are quantized, and whether they are stored [in, out] (GPT-2's Conv1D) rather than [out, in]. */
    record Projections(java.util.function.Predicate<String> names, boolean transposed) {
    }

    /** A Llama's layers' projections. */
    static final Projections LINEAR = new Projections(name -> name.startsWith("model.layers.") && name.endsWith("_proj.weight"), false);
    /** GPT-2's layers' Conv1D projections. */
    static final Projections CONV1D = new Projections(name -> name.matches("transformer\\.h\\.\\d+\\.(attn|mlp)\\.c_\\w+\\.weight"), true);

    /** As {@link #write(Path, Path, Projection, Consumer)} from the golden {@code golden}, its {@code projections} quantized. */
    static int write(Path golden, Projections projections, Path quantized, Path twin, Projection projection,
                     Consumer<ObjectNode> configure) throws IOException {
        Files.createDirectories(quantized);
        Files.createDirectories(twin);
        SafetensorsTestWriter quantizedWriter = new SafetensorsTestWriter();
        SafetensorsTestWriter twinWriter = new SafetensorsTestWriter();
        int count = 0;
        try (Checkpoint source = Checkpoint.open(golden)) {
            for (String name : source.names().stream().sorted().toList()) {
                WeightTensor t = source.get(name);
                float[] w = WeightValues.floats(t);
                float[] decoded = w;
                if (projections.names().test(name)) {
                    if (projections.transposed()) {
                        // Quantized as the [out, in] Linear a Conv1D transposes to; the twin keeps [in, out].
                        int in = (int) t.dim(0), out = (int) t.dim(1);
                        WeightTensor linear = new WeightTensor(name, t.dtype(), new long[]{out, in}, t.data(), t.file());
                        decoded = transpose(projection.quantize(name, linear, transpose(w, in, out), quantizedWriter), out, in);
                    } else {
                        decoded = projection.quantize(name, t, w, quantizedWriter);
                    }
                    count++;
                } else {
                    quantizedWriter.add(name, DType.F32, t.shape(), f32(w));
                }
                twinWriter.add(name, DType.F32, t.shape(), f32(decoded));
            }
        }
        quantizedWriter.write(quantized.resolve("model.safetensors"));
        twinWriter.write(twin.resolve("model.safetensors"));
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(golden.resolve("config.json").toFile());
        Files.writeString(twin.resolve("config.json"), config.toString());
        configure.accept(config.putObject("quantization_config"));
        Files.writeString(quantized.resolve("config.json"), config.toString());
        return count;
    }

    /** Both models' greedy tokens on the CPU are equal and their logprobs within {@code tolerance}, over 8 tokens. */
    static void assertSameGreedyAnswers(Path quantized, Path twin, double tolerance) {
        assertSameGreedyAnswers(quantized, twin, tolerance, "cpu");
    }

    /** As {@link #assertSameGreedyAnswers(Path, Path, double)} on {@code device}. */
    static void assertSameGreedyAnswers(Path quantized, Path twin, double tolerance, String device) {
        assertSameGreedyAnswers(quantized, twin, tolerance, device, "auto");
    }

    /** As {@link #assertSameGreedyAnswers(Path, Path, double, String)}, both models computing in {@code dtype}. */
    static void assertSameGreedyAnswers(Path quantized, Path twin, double tolerance, String device, String dtype) {
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(8).logprobs(3).build();
        int[] prompt = {1, 15, 27, 3, 90, 41};
        RequestOutput fromQuantized, fromTwin;
        try (LLM llm = LLM.builder().model(quantized.toString()).device(device).dtype(dtype).build()) {
            fromQuantized = llm.generate(prompt, greedy);
        }
        try (LLM llm = LLM.builder().model(twin.toString()).device(device).dtype(dtype).build()) {
            fromTwin = llm.generate(prompt, greedy);
        }
        assertEquals(fromTwin.outputs().getFirst().tokenIds(), fromQuantized.outputs().getFirst().tokenIds());
        for (int step = 0; step < 8; step++) {
            int token = fromTwin.outputs().getFirst().tokenIds().get(step);
            assertEquals(fromTwin.outputs().getFirst().logprobs().get(step).get(token).logprob(),
                    fromQuantized.outputs().getFirst().logprobs().get(step).get(token).logprob(), tolerance, "step " + step);
        }
    }

    /** A [rows, cols] matrix's transpose. */
    private static float[] transpose(float[] m, int rows, int cols) {
        float[] t = new float[m.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
        }
        return t;
    }

    static byte[] f32(float[] values) {
        double[] asDoubles = new double[values.length];
        for (int i = 0; i < values.length; i++) asDoubles[i] = values[i];
        return SafetensorsTestWriter.encode(DType.F32, asDoubles);
    }
}
