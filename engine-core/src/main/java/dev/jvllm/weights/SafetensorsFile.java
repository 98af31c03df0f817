package dev.jvllm.weights;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads one safetensors file: maps it and validates it before any tensor is handed out. The layout is an
 * 8-byte little-endian header length, a UTF-8 JSON header giving each tensor's dtype, shape and
 * {@code data_offsets} (relative to the data region), then the data region, which the tensors must
 * tile exactly. Tensor data is never copied: each {@link WeightTensor#data()} is a slice of the
 * mapping, valid until the arena that mapped it is closed.
 */
final class SafetensorsFile {

    /** The bound the reference implementation puts on a header; larger ones are refused unread. */
    static final long MAX_HEADER_BYTES = 100_000_000L;

    /**
     * JSON for untrusted headers and indexes: duplicate keys are an error (Jackson would otherwise
     * keep the last one silently, so two readers could disagree on a file), as is anything after
     * the top-level value.
     */
    static final ObjectMapper STRICT_JSON = new ObjectMapper(JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(16).build())
            .build())
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private static final long LENGTH_PREFIX_BYTES = 8;
    private static final String METADATA_KEY = "__metadata__";

    private SafetensorsFile() {
    }

    /**
     * Maps {@code file} into {@code arena}, validates it and returns its tensors in header order; the
     * caller closes the arena, also on failure.
     */
    static Map<String, WeightTensor> map(Path file, Arena arena) {
        if (!Files.isRegularFile(file)) {
            throw new WeightsException(file + ": not a regular file");
        }
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < LENGTH_PREFIX_BYTES) {
                throw new WeightsException(file + ": " + size + " bytes, too short to hold the 8-byte header length");
            }
            return parse(file, channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena));
        } catch (IOException e) {
            throw new WeightsException(file + ": cannot be read: " + e.getMessage(), e);
        }
    }

    private static Map<String, WeightTensor> parse(Path file, MemorySegment contents) {
        long headerLength = contents.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        long available = contents.byteSize() - LENGTH_PREFIX_BYTES;
        // A length of 2^63 or more reads as negative: it is too large either way.
        if (headerLength < 0 || headerLength > available) {
            throw new WeightsException(file + ": header length " + Long.toUnsignedString(headerLength)
                    + " exceeds the " + available + " bytes that follow it");
        }
        if (headerLength > MAX_HEADER_BYTES) {
            throw new WeightsException(file + ": header length " + headerLength + " exceeds the limit of "
                    + MAX_HEADER_BYTES + " bytes");
        }
        JsonNode header = readHeader(file, contents.asSlice(LENGTH_PREFIX_BYTES, headerLength));
        long dataStart = LENGTH_PREFIX_BYTES + headerLength;
        long dataSize = contents.byteSize() - dataStart;

        List<TensorEntry> entries = new ArrayList<>();
        for (Map.Entry<String, JsonNode> field : header.properties()) {
            if (field.getKey().equals(METADATA_KEY)) {
                checkMetadata(file, field.getValue());
            } else {
                entries.add(TensorEntry.of(file, field.getKey(), field.getValue(), dataSize));
            }
        }
        checkTiling(file, entries, dataSize);

        Map<String, WeightTensor> tensors = new LinkedHashMap<>();
        for (TensorEntry e : entries) {
            MemorySegment data = contents.asSlice(dataStart + e.begin(), e.end() - e.begin());
            tensors.put(e.name(), new WeightTensor(e.name(), e.dtype(), e.shape(), data, file));
        }
        return Collections.unmodifiableMap(tensors);
    }

    private static JsonNode readHeader(Path file, MemorySegment bytes) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes.asByteBuffer())
                    .toString();
        } catch (CharacterCodingException e) {
            throw new WeightsException(file + ": header is not valid UTF-8", e);
        }
        JsonNode header;
        try {
            header = STRICT_JSON.readTree(text);
        } catch (JacksonException e) {
            throw new WeightsException(file + ": header is not valid JSON" + where(e) + ": " + e.getOriginalMessage(), e);
        }
        if (header == null || !header.isObject()) {
            throw new WeightsException(file + ": header must be a JSON object");
        }
        return header;
    }

    /** Where in the JSON a parse error struck, as a JSON pointer such as {@code /w/dtype}, when known. */
    static String where(JacksonException e) {
        if (!(e.getProcessor() instanceof JsonParser parser)) {
            return "";
        }
        String pointer = parser.getParsingContext().pathAsPointer().toString();
        return pointer.isEmpty() ? "" : " at " + pointer;
    }

    /** {@code __metadata__} is free-form, but the format fixes its type: a map of strings. */
    private static void checkMetadata(Path file, JsonNode node) {
        if (!node.isObject()) {
            throw new WeightsException(file + ": '" + METADATA_KEY + "' must be an object of strings");
        }
        for (Map.Entry<String, JsonNode> field : node.properties()) {
            if (!field.getValue().isTextual()) {
                throw new WeightsException(file + ": '" + METADATA_KEY + "' entry '" + field.getKey()
                        + "' must be a string");
            }
        }
    }

    /** Sorted by offset, the tensors must start at 0 and follow each other without gap or overlap up to the end. */
    private static void checkTiling(Path file, List<TensorEntry> entries, long dataSize) {
        List<TensorEntry> byOffset = new ArrayList<>(entries);
        byOffset.sort(Comparator.comparingLong(TensorEntry::begin).thenComparingLong(TensorEntry::end));
        long covered = 0;
        String previous = null;
        for (TensorEntry e : byOffset) {
            if (e.begin() > covered) {
                throw new WeightsException(file + ": tensor '" + e.name() + "' starts at data byte " + e.begin()
                        + ", leaving bytes " + covered + ".." + e.begin() + " unused");
            }
            if (e.begin() < covered) {
                throw new WeightsException(file + ": tensor '" + e.name() + "' overlaps tensor '" + previous + "'");
            }
            covered = e.end();
            previous = e.name();
        }
        if (covered != dataSize) {
            throw new WeightsException(file + ": " + (dataSize - covered)
                    + " bytes after the last tensor belong to no tensor");
        }
    }

    /** One validated header entry; offsets are relative to the data region. */
    private record TensorEntry(String name, DType dtype, long[] shape, long begin, long end) {

        static TensorEntry of(Path file, String name, JsonNode node, long dataSize) {
            if (!node.isObject()) {
                throw invalid(file, name, "entry must be a JSON object");
            }
            DType dtype = dtype(file, name, node.get("dtype"));
            long[] shape = nonNegativeLongs(file, name, "shape", node.get("shape"));
            long[] offsets = nonNegativeLongs(file, name, "data_offsets", node.get("data_offsets"));
            if (offsets.length != 2 || offsets[0] > offsets[1]) {
                throw invalid(file, name, "'data_offsets' must be [begin, end] with begin <= end");
            }
            if (offsets[1] > dataSize) {
                throw invalid(file, name, "data_offsets [" + offsets[0] + ", " + offsets[1]
                        + "] lie outside the data region of " + dataSize + " bytes");
            }
            long bytes = byteCount(file, name, dtype, shape);
            if (bytes != offsets[1] - offsets[0]) {
                throw invalid(file, name, "shape and dtype need " + bytes + " bytes but data_offsets span "
                        + (offsets[1] - offsets[0]));
            }
            return new TensorEntry(name, dtype, shape, offsets[0], offsets[1]);
        }

        private static DType dtype(Path file, String name, JsonNode node) {
            if (node == null || !node.isTextual()) {
                throw invalid(file, name, "'dtype' must be a string");
            }
            return DType.fromSafetensorsName(node.textValue())
                    .orElseThrow(() -> invalid(file, name, "unknown dtype '" + node.textValue() + "'"));
        }

        private static long[] nonNegativeLongs(Path file, String name, String field, JsonNode node) {
            if (node == null || !node.isArray()) {
                throw invalid(file, name, "'" + field + "' must be an array of integers");
            }
            long[] values = new long[node.size()];
            for (int i = 0; i < values.length; i++) {
                JsonNode n = node.get(i);
                if (!n.isIntegralNumber() || !n.canConvertToLong()) {
                    throw invalid(file, name, "'" + field + "' must be an array of integers, got " + n);
                }
                if (n.longValue() < 0) {
                    throw invalid(file, name, "'" + field + "' must not be negative, got " + n);
                }
                values[i] = n.longValue();
            }
            return values;
        }

        private static long byteCount(Path file, String name, DType dtype, long[] shape) {
            try {
                long count = 1;
                for (long dim : shape) {
                    count = Math.multiplyExact(count, dim);
                }
                return Math.multiplyExact(count, dtype.byteSize());
            } catch (ArithmeticException overflow) {
                throw invalid(file, name, "shape " + Arrays.toString(shape) + " of " + dtype
                        + " overflows a 64-bit byte count");
            }
        }

        private static WeightsException invalid(Path file, String name, String problem) {
            return new WeightsException(file + ": tensor '" + name + "': " + problem);
        }
    }
}
