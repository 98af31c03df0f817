package dev.jvllm.weights;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsCheckpointTest {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.EXCLUDE, names = {"F8_E4M3", "F8_E5M2"})
    void readsBackTheValuesWrittenForEachDtype(DType dtype) {
        double[] values = switch (dtype) {
            case BOOL -> new double[] {1, 0, 1, 1};
            case U8 -> new double[] {1, 200, 0, 255};
            default -> dtype.isFloating() ? new double[] {1.5, -2.25, 0, 1024} : new double[] {1, -2, 0, 100};
        };
        new SafetensorsTestWriter().add("w", dtype, new long[] {2, 2}, values).write(dir.resolve("model.safetensors"));

        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            WeightTensor w = checkpoint.get("w");
            assertEquals(dtype, w.dtype());
            assertArrayEquals(new long[] {2, 2}, w.shape());
            double[] read = new double[values.length];
            for (int i = 0; i < read.length; i++) {
                read[i] = element(w, i);
            }
            assertArrayEquals(values, read);
        }
    }

    @Test
    void eightBitFloatTensorsKeepTheirBytes() {
        byte[] bytes = {0x38, (byte) 0xB8, 0x00, 0x7E};
        new SafetensorsTestWriter().add("q", DType.F8_E4M3, new long[] {4}, bytes)
                .add("r", DType.F8_E5M2, new long[] {1, 4}, bytes).write(dir.resolve("model.safetensors"));

        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            assertArrayEquals(bytes, checkpoint.get("q").data().toArray(ValueLayout.JAVA_BYTE));
            assertEquals(DType.F8_E5M2, checkpoint.get("r").dtype());
            assertArrayEquals(new long[] {1, 4}, checkpoint.get("r").shape());
        }
    }

    @Test
    void tensorAtAnUnalignedOffsetIsReadable() {
        new SafetensorsTestWriter()
                .add("bytes", DType.I8, new long[] {3}, 1, 2, 3)
                .add("floats", DType.F32, new long[] {2}, 0.5, -7)
                .write(dir.resolve("model.safetensors"));

        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            WeightTensor floats = checkpoint.get("floats");
            assertNotEquals(0, floats.data().address() % 4, "the test needs an unaligned tensor");
            assertEquals(-7f, floats.data().get(F32, 4));
        }
    }

    @Test
    void scalarsEmptyTensorsMetadataAndHeaderOrderAreAccepted() {
        String header = """
                {"__metadata__": {"format": "pt"},
                 "late": {"dtype": "F32", "shape": [], "data_offsets": [4, 8]},
                 "empty": {"dtype": "BF16", "shape": [0, 16], "data_offsets": [4, 4]},
                 "early": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}""";
        byte[] data = new byte[8];
        MemorySegment.ofArray(data).set(F32, 4, 2.5f);
        SafetensorsTestWriter.writeRaw(dir.resolve("model.safetensors"), header, data);

        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            assertEquals(Set.of("late", "empty", "early"), checkpoint.names());
            assertEquals(0, checkpoint.get("late").rank());
            assertEquals(2.5f, checkpoint.get("late").data().get(F32, 0));
            assertEquals(0, checkpoint.get("empty").data().byteSize());
        }
    }

    @Test
    void theOnlySafetensorsFileIsUsedWhenNoStandardNameExists() {
        new SafetensorsTestWriter().add("w", DType.F32, new long[] {1}, 3).write(dir.resolve("consolidated.safetensors"));

        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            assertEquals(dir.resolve("consolidated.safetensors"), checkpoint.get("w").file());
        }
    }

    @Test
    void severalUnnamedSafetensorsFilesAreAmbiguous() {
        new SafetensorsTestWriter().write(dir.resolve("a.safetensors"));
        new SafetensorsTestWriter().write(dir.resolve("b.safetensors"));

        assertThrowsNaming(WeightsException.class, () -> Checkpoint.open(dir), dir.toString(), "a.safetensors",
                "b.safetensors");
    }

    @Test
    void directoryWithoutSafetensorsFilesIsRefused() {
        assertThrowsNaming(WeightsException.class, () -> Checkpoint.open(dir), dir.toString(), "model.safetensors");
    }

    @Test
    void missingTensorIsReportedWithTheCheckpoint() throws Exception {
        new SafetensorsTestWriter().add("w", DType.F32, new long[] {1}, 3).write(dir.resolve("model.safetensors"));

        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            assertTrue(checkpoint.find("lm_head.weight").isEmpty());
            assertThrowsNaming(WeightsException.class, () -> checkpoint.get("lm_head.weight"), "lm_head.weight",
                    dir.toString());
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 7})
    void loadingIntoMemoryOnSeveralThreadsKeepsEveryValue(int threads) {
        SafetensorsTestWriter writer = new SafetensorsTestWriter();
        for (int t = 0; t < 5; t++) {
            writer.add("w" + t, DType.F32, new long[] {3}, t, -t, 0.5 * t);
        }
        writer.write(dir.resolve("model.safetensors"));

        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            checkpoint.loadIntoMemory(threads);
            for (int t = 0; t < 5; t++) {
                MemorySegment data = checkpoint.get("w" + t).data();
                assertArrayEquals(new float[] {t, -t, 0.5f * t},
                        new float[] {data.getAtIndex(F32, 0), data.getAtIndex(F32, 1), data.getAtIndex(F32, 2)});
            }
        }
    }

    @Test
    void tensorDataCannotBeReadAfterClose() {
        new SafetensorsTestWriter().add("w", DType.F32, new long[] {1}, 3).write(dir.resolve("model.safetensors"));
        Checkpoint checkpoint = Checkpoint.open(dir);
        MemorySegment data = checkpoint.get("w").data();

        checkpoint.close();
        checkpoint.close();

        assertThrows(IllegalStateException.class, () -> data.get(F32, 0));
    }

    @Test
    void shardsAreLoadedAsOneCheckpoint() {
        new SafetensorsTestWriter().add("embed", DType.F32, new long[] {2}, 1, 2)
                .write(dir.resolve("model-00001-of-00002.safetensors"));
        new SafetensorsTestWriter().add("norm", DType.BF16, new long[] {1}, 4)
                .add("head", DType.F16, new long[] {1}, -1)
                .write(dir.resolve("model-00002-of-00002.safetensors"));
        SafetensorsTestWriter.writeIndex(dir, Map.of(
                "embed", "model-00001-of-00002.safetensors",
                "norm", "model-00002-of-00002.safetensors",
                "head", "model-00002-of-00002.safetensors"));

        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            assertEquals(Set.of("embed", "norm", "head"), checkpoint.names());
            assertEquals(2f, checkpoint.get("embed").data().get(F32, 4));
            assertEquals(-1.0, element(checkpoint.get("head"), 0));
            assertEquals(dir.resolve("model-00002-of-00002.safetensors"), checkpoint.get("norm").file());
        }
    }

    @Test
    void shardReachedThroughASymbolicLinkIsAccepted() throws Exception {
        // The Hugging Face cache stores snapshot files as links into its blobs folder.
        Path blobs = Files.createDirectories(dir.resolve("blobs"));
        Path snapshot = Files.createDirectories(dir.resolve("snapshots/abc"));
        new SafetensorsTestWriter().add("w", DType.F32, new long[] {1}, 3).write(blobs.resolve("5f1e"));
        Files.createSymbolicLink(snapshot.resolve("model-00001-of-00001.safetensors"), Path.of("../../blobs/5f1e"));
        SafetensorsTestWriter.writeIndex(snapshot, Map.of("w", "model-00001-of-00001.safetensors"));

        try (Checkpoint checkpoint = Checkpoint.open(snapshot)) {
            assertEquals(3f, checkpoint.get("w").data().get(F32, 0));
        }
    }

    /** Element {@code i} of a tensor as a double, decoded as a backend would. */
    static double element(WeightTensor t, long i) {
        MemorySegment d = t.data();
        long at = i * t.dtype().byteSize();
        return switch (t.dtype()) {
            case F64 -> d.get(ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), at);
            case F32 -> d.get(F32, at);
            case F16 -> Float.float16ToFloat(d.get(I16, at));
            case BF16 -> Float.intBitsToFloat(d.get(I16, at) << 16);
            case I64 -> d.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), at);
            case I32 -> d.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), at);
            case I16 -> d.get(I16, at);
            case I8 -> d.get(ValueLayout.JAVA_BYTE, at);
            case U8 -> Byte.toUnsignedInt(d.get(ValueLayout.JAVA_BYTE, at));
            case BOOL -> d.get(ValueLayout.JAVA_BYTE, at) != 0 ? 1 : 0;
            case F8_E4M3, F8_E5M2 -> throw new UnsupportedOperationException(t.dtype().name());
        };
    }
}
