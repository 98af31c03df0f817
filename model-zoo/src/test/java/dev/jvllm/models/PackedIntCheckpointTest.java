package dev.jvllm.models;

import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.Int4Weight;
import dev.jvllm.weights.PackedIntCheckpoint;
import dev.jvllm.weights.PackedIntCheckpoint.Format;
import dev.jvllm.weights.SafetensorsTestWriter;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;
import dev.jvllm.weights.WeightsException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPTQ and AWQ checkpoints: a golden Llama's projections quantized and packed here the way AutoGPTQ,
 * GPTQModel and AutoAWQ pack them, against its float32 twin holding the quantized values
 * ((q - zero) × float16 scale; {@link QuantizedTwins}).
 */
class PackedIntCheckpointTest {

    /** AutoAWQ packs outputs 8w + {0, 2, 4, 6, 1, 3, 5, 7} of a word from its low bits up. */
    private static final int[] AWQ_PACK_ORDER = {0, 2, 4, 6, 1, 3, 5, 7};

    @TempDir
    Path work;

    @Test
    void gptqFourBitsWithActOrderAnswersAsItsFloat32Twin() throws Exception {
        assertSameAnswers(work, Format.GPTQ, 4, 16, true, "cpu");
    }

    @Test
    void gptqV2EightBitsInOneGroupAnswersAsItsFloat32Twin() throws Exception {
        assertSameAnswers(work, Format.GPTQ_V2, 8, -1, false, "cpu");
    }

    @Test
    void gptqTwoBitsAnswersAsItsFloat32Twin() throws Exception {
        assertSameAnswers(work, Format.GPTQ, 2, 32, false, "cpu");
    }

    @Test
    void awqAnswersAsItsFloat32Twin() throws Exception {
        assertSameAnswers(work, Format.AWQ, 4, 16, false, "cpu");
    }

    @Test
    void releasedTensorsAreFreedAndDecodedAgainWhenAskedFor() throws Exception {
        Path model = awqWord("release");
        try (PackedIntCheckpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, Format.AWQ, 4, -1)) {
            WeightTensor first = checkpoint.get("m.weight");
            float[] values = WeightValues.floats(first);
            assertEquals(8 * Float.BYTES, checkpoint.releaseDecoded());
            assertThrows(IllegalStateException.class, () -> WeightValues.floats(first));
            assertArrayEquals(values, WeightValues.floats(checkpoint.get("m.weight")));
            assertEquals(8 * Float.BYTES, checkpoint.releaseDecoded());
        }
    }

    @Test
    void oneAwqWordUnpacksInAutoAwqsOrder() throws Exception {
        // Nibble i of the word holds i: output j reads nibble {0, 4, 1, 5, 2, 6, 3, 7}[j].
        Path model = awqWord("awq-word");
        try (Checkpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, Format.AWQ, 4, -1)) {
            WeightTensor weight = checkpoint.get("m.weight");
            assertArrayEquals(new long[]{8, 1}, weight.shape());
            assertArrayEquals(new float[]{0, 4, 1, 5, 2, 6, 3, 7}, WeightValues.floats(weight));
            assertTrue(checkpoint.names().contains("m.weight"));
            assertFalse(checkpoint.names().contains("m.qweight"));
        }
    }

    /**
     * The 4-bit form a GPU multiplies by as it is (Int4Weight: each output's inputs in words, act-order
     * inputs sorted by group) holds the values the decoded weight holds, for each format; 2- and 8-bit
     * weights and groups that are not whole tiles of 64 inputs have none.
     */
    @Test
    void fourBitWeightsRepackForKernelsHoldingTheDecodedValues() throws Exception {
        int out = 32, in = 128, group = 64;
        Random random = new Random(3);
        for (Format format : Format.values()) {
            for (boolean actOrder : format == Format.AWQ ? new boolean[]{false} : new boolean[]{false, true}) {
                Path model = Files.createDirectories(work.resolve(format + "-" + actOrder));
                writePacked(model, format, 4, out, in, group, actOrder, random);
                try (Checkpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, format, 4, group);
                     Int4Weight packed = checkpoint.int4("m.weight").orElseThrow()) {
                    float[] decoded = WeightValues.floats(checkpoint.get("m.weight"));
                    assertEquals(out, packed.rows());
                    assertEquals(in, packed.cols());
                    assertEquals(actOrder, packed.inputOrder() != null, format + " act-order " + actOrder);
                    for (int o = 0; o < out; o++) {
                        for (int k = 0; k < in; k++) {
                            assertEquals(decoded[o * in + k], packed.value(o, k), 1e-6f * Math.max(1, Math.abs(decoded[o * in + k])),
                                    format + " act-order " + actOrder + " at " + o + ", " + k);
                        }
                    }
                }
            }
        }
        Path eightBits = Files.createDirectories(work.resolve("eight"));
        writePacked(eightBits, Format.GPTQ, 8, out, in, group, false, random);
        try (Checkpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(eightBits), DType.F32, Format.GPTQ, 8, group)) {
            assertTrue(checkpoint.int4("m.weight").isEmpty(), "8-bit weights are decoded");
            assertTrue(checkpoint.int4("m.bias").isEmpty(), "only packed weights have a 4-bit form");
        }
        Path narrowGroups = Files.createDirectories(work.resolve("narrow"));
        writePacked(narrowGroups, Format.GPTQ, 4, out, in, 32, false, random);
        try (Checkpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(narrowGroups), DType.F32, Format.GPTQ, 4, 32)) {
            assertTrue(checkpoint.int4("m.weight").isEmpty(), "groups of 32 inputs are not whole tiles");
            assertEquals(out * in, WeightValues.floats(checkpoint.get("m.weight")).length);
        }
    }

    /**
     * Decoded to bfloat16 or float16, each value is the float32 decode rounded to nearest even (the
     * 4-bit-or-less GPTQ words go by a lookup of each group's rounded levels, the others through float rows).
     */
    @ParameterizedTest
    @CsvSource({"GPTQ, 4, false, BF16, 64", "GPTQ, 4, true, BF16, 64", "GPTQ, 4, true, F16, 128", "GPTQ_V2, 2, true, BF16, 64",
            "GPTQ, 2, false, F16, 64", "GPTQ, 8, false, F16, 64", "AWQ, 4, false, BF16, 64", "AWQ, 4, false, F16, 128", "GPTQ, 4, false, BF16, -1"})
    void sixteenBitDecodesAreTheFloat32DecodeRounded(Format format, int bits, boolean actOrder, DType type, int group) throws Exception {
        int out = 80, in = 384;
        Path model = Files.createDirectories(work.resolve("sixteen"));
        writePacked(model, format, bits, out, in, group < 0 ? in : group, actOrder, new Random(17));
        try (Checkpoint wide = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, format, bits, group);
             Checkpoint narrow = new PackedIntCheckpoint(Checkpoint.open(model), type, format, bits, group)) {
            float[] exact = WeightValues.floats(wide.get("m.weight"));
            WeightTensor halves = narrow.get("m.weight");
            assertEquals(type, halves.dtype());
            for (int i = 0; i < exact.length; i++) {
                short expected = type == DType.BF16 ? bf16(exact[i]) : Float.floatToFloat16(exact[i]);
                assertEquals(expected, halves.data().getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i), "element " + i);
            }
        }
    }

    private static short bf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    /** Several row tiles and k tiles, a partial last block of the parallel repack, act-order and one group over all inputs. */
    @ParameterizedTest
    @CsvSource({"GPTQ, false, 80, 192, 64", "GPTQ, true, 208, 320, 64", "GPTQ_V2, true, 144, 384, 128", "AWQ, false, 80, 192, 64",
            "AWQ, false, 208, 256, 256", "GPTQ, false, 48, 256, -1"})
    void largerFourBitWeightsRepackHoldingTheDecodedValues(Format format, boolean actOrder, int out, int in, int group) throws Exception {
        Path model = Files.createDirectories(work.resolve("larger"));
        writePacked(model, format, 4, out, in, group < 0 ? in : group, actOrder, new Random(11));
        try (Checkpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, format, 4, group);
             Int4Weight packed = checkpoint.int4("m.weight").orElseThrow()) {
            float[] decoded = WeightValues.floats(checkpoint.get("m.weight"));
            for (int o = 0; o < out; o++) {
                for (int k = 0; k < in; k++) {
                    assertEquals(decoded[o * in + k], packed.value(o, k), 1e-6f * Math.max(1, Math.abs(decoded[o * in + k])), o + ", " + k);
                }
            }
        }
    }

    /** A [out, in] weight of random levels, zeros and scales packed as {@code format} writes it into {@code model}. */
    private static void writePacked(Path model, Format format, int bits, int out, int in, int group, boolean actOrder,
                                    Random random) throws IOException {
        writePacked(model, format, bits, out, in, group, actOrder, random, "m");
    }

    /** As above, one such weight under each of {@code prefixes} ({@code <prefix>.qweight}, ...), in one file. */
    static void writePacked(Path model, Format format, int bits, int out, int in, int group, boolean actOrder,
                            Random random, String... prefixes) throws IOException {
        int groups = in / group, levels = (1 << bits) - 1;
        SafetensorsTestWriter writer = new SafetensorsTestWriter();
        for (String prefix : prefixes) {
            int[] q = new int[out * in], zeros = new int[groups * out];
            for (int i = 0; i < q.length; i++) q[i] = random.nextInt(levels + 1);
            // Every zero a format stores: AutoGPTQ's stored zero less one reaches levels + 1 (16 at 4 bits, a
            // stored 15), GPTQModel's v2 and AWQ reach 0.
            for (int i = 0; i < zeros.length; i++) zeros[i] = (format == Format.GPTQ ? 1 : 0) + random.nextInt(levels + 1);
            double[] scales = new double[groups * out];
            for (int i = 0; i < scales.length; i++) scales[i] = 0.01 + random.nextDouble() * 0.1;
            pack(writer, prefix, format, bits, q, zeros, out, in, groups);
            writer.add(prefix + ".scales", DType.F16, new long[]{groups, out}, SafetensorsTestWriter.encode(DType.F16, scales));
            if (actOrder) {
                int[] order = shuffled(in, random);
                double[] gIdx = new double[in];
                for (int k = 0; k < in; k++) gIdx[order[k]] = k / group;
                writer.add(prefix + ".g_idx", DType.I32, new long[]{in}, SafetensorsTestWriter.encode(DType.I32, gIdx));
            }
        }
        writer.write(model.resolve("model.safetensors"));
    }

    /** A one-input, eight-output AWQ weight whose word holds nibble i = i, zero 0 and scale 1, in {@code work/dir}. */
    private Path awqWord(String dir) throws IOException {
        Path model = Files.createDirectories(work.resolve(dir));
        new SafetensorsTestWriter().add("m.qweight", DType.I32, new long[]{1, 1}, SafetensorsTestWriter.encode(DType.I32, 0x76543210))
                .add("m.qzeros", DType.I32, new long[]{1, 1}, SafetensorsTestWriter.encode(DType.I32, 0))
                .add("m.scales", DType.F16, new long[]{1, 8}, SafetensorsTestWriter.encode(DType.F16, 1, 1, 1, 1, 1, 1, 1, 1))
                .write(model.resolve("model.safetensors"));
        return model;
    }

    @Test
    void oneGptqWordUnpacksFromTheLowBitsWithAutoGptqsZeroLessOne() throws Exception {
        // Inputs 0..7 of one output in one word, input k in bits 4k; the stored zero 7 means 8.
        Path model = Files.createDirectories(work.resolve("gptq-word"));
        new SafetensorsTestWriter().add("m.qweight", DType.I32, new long[]{1, 8}, SafetensorsTestWriter.encode(DType.I32,
                        0x76543210, 0, 0, 0, 0, 0, 0, 0))
                .add("m.qzeros", DType.I32, new long[]{1, 1}, SafetensorsTestWriter.encode(DType.I32, 0x77777777))
                .add("m.scales", DType.F16, new long[]{1, 8}, SafetensorsTestWriter.encode(DType.F16, 0.5, 1, 1, 1, 1, 1, 1, 1))
                .write(model.resolve("model.safetensors"));
        try (Checkpoint v1 = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, Format.GPTQ, 4, -1);
             Checkpoint v2 = new PackedIntCheckpoint(Checkpoint.open(model), DType.F32, Format.GPTQ_V2, 4, -1)) {
            float[] first = java.util.Arrays.copyOf(WeightValues.floats(v1.get("m.weight")), 8);
            assertArrayEquals(new float[]{-4, -3.5f, -3, -2.5f, -2, -1.5f, -1, -0.5f}, first);
            float[] firstV2 = java.util.Arrays.copyOf(WeightValues.floats(v2.get("m.weight")), 8);
            assertArrayEquals(new float[]{-3.5f, -3, -2.5f, -2, -1.5f, -1, -0.5f, 0}, firstV2);
        }
    }

    @Test
    void inconsistentPackedTensorsAreRefusedNamingThem() throws Exception {
        Path model = Files.createDirectories(work.resolve("bad"));
        new SafetensorsTestWriter().add("a.qweight", DType.I32, new long[]{2, 8}, new byte[64])
                .add("a.qzeros", DType.I32, new long[]{2, 1}, new byte[8])
                .add("a.scales", DType.F16, new long[]{2, 4}, new byte[16])  // 2 groups of 8 outputs need [2, 8]
                .add("b.qweight", DType.I32, new long[]{2, 8}, new byte[64])
                .add("b.scales", DType.F16, new long[]{2, 8}, new byte[32])  // no qzeros
                .add("c.qweight", DType.I32, new long[]{2, 8}, new byte[64])
                .add("c.qzeros", DType.I32, new long[]{2, 1}, new byte[8])
                .add("c.scales", DType.F16, new long[]{2, 8}, new byte[32])
                .add("c.g_idx", DType.I32, new long[]{16}, SafetensorsTestWriter.encode(DType.I32,
                        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2))     // group 2 of 2
                .write(model.resolve("model.safetensors"));
        try (Checkpoint checkpoint = new PackedIntCheckpoint(Checkpoint.open(model), DType.BF16, Format.GPTQ, 4, 8)) {
            var shape = assertThrows(WeightsException.class, () -> checkpoint.get("a.weight"));
            assertTrue(shape.getMessage().contains("'a.scales' is [2, 4]") && shape.getMessage().contains("needs [2, 8]"), shape.getMessage());
            var missing = assertThrows(WeightsException.class, () -> checkpoint.get("b.weight"));
            assertTrue(missing.getMessage().contains("b.qzeros"), missing.getMessage());
            var group = assertThrows(WeightsException.class, () -> checkpoint.get("c.weight"));
            assertTrue(group.getMessage().contains("'c.g_idx'") && group.getMessage().contains("input 15"), group.getMessage());
        }
        assertThrows(WeightsException.class, () -> new PackedIntCheckpoint(Checkpoint.open(model), DType.BF16, Format.GPTQ, 3, 8));
    }

    /**
     * Quantizes every projection of the golden's layers to {@code bits} (groups of {@code groupSize}
     * inputs, or one group; with {@code actOrder}, groups of shuffled inputs named by g_idx), packs it
     * in {@code format}, and checks the model's greedy tokens and logprobs against the float32 twin.
     */
    static void assertSameAnswers(Path work, Format format, int bits, int groupSize, boolean actOrder, String device) throws Exception {
        assertSameAnswers(work, format, bits, groupSize, actOrder, device, "auto", 1e-5);
    }

    /** As above, both models computing in {@code dtype}, their logprobs within {@code tolerance}. */
    static void assertSameAnswers(Path work, Format format, int bits, int groupSize, boolean actOrder, String device, String dtype,
                                  double tolerance) throws Exception {
        Path packed = work.resolve("packed"), twin = work.resolve("twin");
        int quantized = QuantizedTwins.write(packed, twin, projection(format, bits, groupSize, actOrder, new Random(7)),
                quantizationConfig(format, bits, groupSize, actOrder));
        assertEquals(14, quantized, "every projection of the two layers is packed");
        QuantizedTwins.assertSameGreedyAnswers(packed, twin, tolerance, device, dtype);
    }

    /**
     * Quantizes each projection to {@code bits} (groups of {@code groupSize} inputs, or one group;
     * with {@code actOrder}, groups of shuffled inputs named by g_idx, one shuffle for every projection
     * of the same input width, as projections of one input share theirs in real checkpoints), packed
     * as {@code format} writes it.
     */
    static QuantizedTwins.Projection projection(Format format, int bits, int groupSize, boolean actOrder, Random random) {
        java.util.Map<Integer, int[]> orders = new java.util.HashMap<>();
        return (name, t, w, writer) -> {
            int out = (int) t.dim(0), in = (int) t.dim(1);
            int groups = groupSize < 0 ? 1 : in / groupSize;
            int[] groupOf = new int[in];
            int[] order = orders.computeIfAbsent(in, n -> shuffled(n, actOrder ? random : null));
            for (int k = 0; k < in; k++) groupOf[order[k]] = groupSize < 0 ? 0 : k / groupSize;
            int levels = (1 << bits) - 1;
            float[] scales = new float[groups * out];
            int[] zeros = new int[groups * out];
            for (int g = 0; g < groups; g++) {
                for (int o = 0; o < out; o++) {
                    float min = 0, max = 0;
                    for (int k = 0; k < in; k++) {
                        if (groupOf[k] != g) continue;
                        min = Math.min(min, w[o * in + k]);
                        max = Math.max(max, w[o * in + k]);
                    }
                    float scale = Float.float16ToFloat(Float.floatToFloat16(Math.max((max - min) / levels, 1e-4f)));
                    scales[g * out + o] = scale;
                    // AutoGPTQ's stored zero less one cannot hold a zero of 0 (GPTQModel's v2 format exists for it).
                    zeros[g * out + o] = Math.clamp(Math.round(-min / scale), format == Format.GPTQ ? 1 : 0, levels);
                }
            }
            int[] q = new int[out * in];
            float[] decoded = new float[out * in];
            for (int o = 0; o < out; o++) {
                for (int k = 0; k < in; k++) {
                    int at = groupOf[k] * out + o;
                    q[o * in + k] = Math.clamp(Math.round(w[o * in + k] / scales[at]) + zeros[at], 0, levels);
                    decoded[o * in + k] = (q[o * in + k] - zeros[at]) * scales[at];
                }
            }
            String prefix = name.substring(0, name.length() - ".weight".length());
            pack(writer, prefix, format, bits, q, zeros, out, in, groups);
            writer.add(prefix + ".scales", DType.F16, new long[]{groups, out}, SafetensorsTestWriter.encode(DType.F16, doubles(scales)));
            if (format != Format.AWQ && (actOrder || groupSize > 0)) {
                double[] gIdx = new double[in];
                for (int k = 0; k < in; k++) gIdx[k] = groupOf[k];
                writer.add(prefix + ".g_idx", DType.I32, new long[]{in}, SafetensorsTestWriter.encode(DType.I32, gIdx));
            }
            return decoded;
        };
    }

    /** The {@code quantization_config} a quantizer writes for these settings. */
    static java.util.function.Consumer<com.fasterxml.jackson.databind.node.ObjectNode> quantizationConfig(Format format, int bits,
                                                                                                    int groupSize, boolean actOrder) {
        return config -> {
            if (format == Format.AWQ) {
                config.put("quant_method", "awq").put("bits", bits).put("group_size", groupSize).put("zero_point", true).put("version", "gemm");
            } else {
                config.put("quant_method", "gptq").put("bits", bits).put("group_size", groupSize).put("desc_act", actOrder)
                        .put("sym", false).put("checkpoint_format", format == Format.GPTQ ? "gptq" : "gptq_v2");
            }
        };
    }

    /**
     * GPT-2's Conv1D projections quantized as AutoGPTQ writes them (it packs a Conv1D as the Linear it
     * transposes to: qweight [in / 8, out]), against a float32 twin holding their values as Conv1D
     * weights ([in, out]).
     */
    @Test
    void gpt2FourBitAnswersAsItsFloat32Twin() throws Exception {
        assertGpt2Answers(work, "cpu", "auto", 1e-5);
    }

    /** As {@link #gpt2FourBitAnswersAsItsFloat32Twin} on {@code device}, computing in {@code dtype}. */
    static void assertGpt2Answers(Path work, String device, String dtype, double tolerance) throws Exception {
        Path packed = work.resolve("gpt2-packed"), twin = work.resolve("gpt2-twin");
        int quantized = QuantizedTwins.write(Golden.root().resolve("gpt2-plain"), QuantizedTwins.CONV1D, packed, twin,
                projection(Format.GPTQ, 4, 64, false, new Random(3)), quantizationConfig(Format.GPTQ, 4, 64, false));
        assertTrue(quantized >= 8, quantized + " projections packed");
        QuantizedTwins.assertSameGreedyAnswers(packed, twin, tolerance, device, dtype);
    }

    /** qweight and qzeros as the quantizers write them (q: [out, in]; zeros: [groups, out]). */
    private static void pack(SafetensorsTestWriter writer, String prefix, Format format, int bits, int[] q, int[] zeros,
                             int out, int in, int groups) {
        int pack = 32 / bits;
        if (format == Format.AWQ) {
            // [in, out / 8] and [groups, out / 8]: outputs 8w + AWQ_PACK_ORDER[i] in bits 4i of word w.
            double[] words = new double[in * (out / 8)];
            for (int k = 0; k < in; k++) {
                for (int w = 0; w < out / 8; w++) {
                    int word = 0;
                    for (int i = 0; i < 8; i++) word |= q[(8 * w + AWQ_PACK_ORDER[i]) * in + k] << (4 * i);
                    words[k * (out / 8) + w] = word;
                }
            }
            double[] zeroWords = new double[groups * (out / 8)];
            for (int g = 0; g < groups; g++) {
                for (int w = 0; w < out / 8; w++) {
                    int word = 0;
                    for (int i = 0; i < 8; i++) word |= zeros[g * out + 8 * w + AWQ_PACK_ORDER[i]] << (4 * i);
                    zeroWords[g * (out / 8) + w] = word;
                }
            }
            writer.add(prefix + ".qweight", DType.I32, new long[]{in, out / 8}, SafetensorsTestWriter.encode(DType.I32, words));
            writer.add(prefix + ".qzeros", DType.I32, new long[]{groups, out / 8}, SafetensorsTestWriter.encode(DType.I32, zeroWords));
            return;
        }
        // GPTQ: [in / pack, out], inputs pack·r + j in bits bits·j; zeros [groups, out / pack] along the
        // output, AutoGPTQ's format storing each zero less one.
        int zeroOffset = format == Format.GPTQ ? 1 : 0;
        double[] words = new double[(in / pack) * out];
        for (int r = 0; r < in / pack; r++) {
            for (int o = 0; o < out; o++) {
                int word = 0;
                for (int j = 0; j < pack; j++) word |= q[o * in + pack * r + j] << (bits * j);
                words[r * out + o] = word;
            }
        }
        double[] zeroWords = new double[groups * (out / pack)];
        for (int g = 0; g < groups; g++) {
            for (int c = 0; c < out / pack; c++) {
                int word = 0;
                for (int j = 0; j < pack; j++) word |= ((zeros[g * out + pack * c + j] - zeroOffset) & ((1 << bits) - 1)) << (bits * j);
                zeroWords[g * (out / pack) + c] = word;
            }
        }
        writer.add(prefix + ".qweight", DType.I32, new long[]{in / pack, out}, SafetensorsTestWriter.encode(DType.I32, words));
        writer.add(prefix + ".qzeros", DType.I32, new long[]{groups, out / pack}, SafetensorsTestWriter.encode(DType.I32, zeroWords));
    }

    private static int[] shuffled(int n, Random random) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        if (random == null) return order;
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1), swap = order[i];
            order[i] = order[j];
            order[j] = swap;
        }
        return order;
    }

    private static double[] doubles(float[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) out[i] = values[i];
        return out;
    }
}
