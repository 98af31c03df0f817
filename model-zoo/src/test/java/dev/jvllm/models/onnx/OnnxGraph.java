package dev.jvllm.models.onnx;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parts of an ONNX {@code ModelProto} an importer needs — the graph's nodes in order and its
 * initializers — read straight from the protobuf wire format (onnx.proto3 field numbers), with
 * every length checked against the bytes there are. Initializer data stays in the memory-mapped file.
 */
public record OnnxGraph(List<Node> nodes, Map<String, Initializer> initializers) {

    /** A graph node: {@code op_type}, its input and output value names. */
    public record Node(String name, String opType, List<String> inputs, List<String> outputs) {
    }

    /** A constant tensor: name, shape and its little-endian data (FLOAT or INT64 only). */
    public record Initializer(String name, int dataType, long[] dims, MemorySegment data) {
        public static final int FLOAT = 1;
        public static final int INT64 = 7;

        public long elementCount() {
            long n = 1;
            for (long d : dims) n = Math.multiplyExact(n, d);
            return n;
        }
    }

    /** Thrown when the file is not the protobuf it claims to be. */
    public static final class FormatException extends RuntimeException {
        FormatException(String message) {
            super(message);
        }
    }

    private static final int MODEL_GRAPH = 7;
    private static final int GRAPH_NODE = 1;
    private static final int GRAPH_INITIALIZER = 5;
    private static final int NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4;
    private static final int TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_FLOAT_DATA = 4, TENSOR_INT64_DATA = 7,
            TENSOR_NAME = 8, TENSOR_RAW_DATA = 9, TENSOR_EXTERNAL_DATA = 13;

    /** Maps the file (into {@code arena}, which must outlive the graph) and reads its graph. */
    public static OnnxGraph read(Path file, Arena arena) throws IOException {
        MemorySegment bytes;
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            bytes = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
        }
        Field graph = null;
        for (Field f : fields(bytes, file + " ModelProto")) {
            if (f.number == MODEL_GRAPH) graph = f;
        }
        if (graph == null) throw new FormatException(file + ": ModelProto has no graph (field 7)");
        List<Node> nodes = new ArrayList<>();
        Map<String, Initializer> initializers = new LinkedHashMap<>();
        for (Field f : fields(graph.bytes(), "GraphProto")) {
            if (f.number == GRAPH_NODE) nodes.add(node(f.bytes()));
            if (f.number == GRAPH_INITIALIZER) {
                Initializer init = initializer(f.bytes());
                if (initializers.put(init.name(), init) != null) {
                    throw new FormatException(file + ": initializer '" + init.name() + "' appears twice");
                }
            }
        }
        return new OnnxGraph(List.copyOf(nodes), initializers);
    }

    /** The nodes reading {@code value}, in graph order. */
    public List<Node> consumers(String value) {
        return nodes.stream().filter(n -> n.inputs().contains(value)).toList();
    }

    private static Node node(MemorySegment bytes) {
        String name = "", op = "";
        List<String> inputs = new ArrayList<>(), outputs = new ArrayList<>();
        for (Field f : fields(bytes, "NodeProto")) {
            switch (f.number) {
                case NODE_INPUT -> inputs.add(f.string());
                case NODE_OUTPUT -> outputs.add(f.string());
                case NODE_NAME -> name = f.string();
                case NODE_OP_TYPE -> op = f.string();
                default -> { }
            }
        }
        return new Node(name, op, List.copyOf(inputs), List.copyOf(outputs));
    }

    private static Initializer initializer(MemorySegment bytes) {
        String name = null;
        int type = 0;
        List<Long> dims = new ArrayList<>();
        MemorySegment raw = null, floats = null, longs = null;
        for (Field f : fields(bytes, "TensorProto")) {
            switch (f.number) {
                case TENSOR_DIMS -> {
                    if (f.wireType == 0) dims.add(f.varint);
                    else varints(f.bytes(), dims);
                }
                case TENSOR_DATA_TYPE -> type = (int) f.varint;
                case TENSOR_NAME -> name = f.string();
                case TENSOR_RAW_DATA -> raw = f.bytes();
                case TENSOR_FLOAT_DATA -> floats = f.bytes();
                case TENSOR_INT64_DATA -> longs = f.bytes();
                case TENSOR_EXTERNAL_DATA -> throw new FormatException("initializer " + name + " keeps its data in an external file");
                default -> { }
            }
        }
        if (name == null) throw new FormatException("an initializer has no name");
        long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
        for (long d : shape) {
            if (d < 0) throw new FormatException("initializer " + name + " has a negative dimension");
        }
        MemorySegment data = raw != null ? raw : type == Initializer.FLOAT ? floats : type == Initializer.INT64 ? packedLongs(longs) : null;
        if (type != Initializer.FLOAT && type != Initializer.INT64) {
            data = raw == null ? MemorySegment.NULL : raw; // other types are kept only by name
            return new Initializer(name, type, shape, data);
        }
        Initializer init = new Initializer(name, type, shape, data == null ? MemorySegment.ofArray(new byte[0]) : data);
        long expected = Math.multiplyExact(init.elementCount(), type == Initializer.FLOAT ? 4L : 8L);
        if (init.data().byteSize() != expected) {
            throw new FormatException("initializer " + name + " has " + init.data().byteSize() + " bytes of data but its shape "
                    + java.util.Arrays.toString(shape) + " needs " + expected);
        }
        return init;
    }

    private static MemorySegment packedLongs(MemorySegment packed) {
        if (packed == null) return null;
        List<Long> values = new ArrayList<>();
        varints(packed, values);
        MemorySegment out = MemorySegment.ofArray(new long[values.size()]);
        for (int i = 0; i < values.size(); i++) out.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, values.get(i));
        return out;
    }

    private static void varints(MemorySegment bytes, List<Long> into) {
        long[] at = {0};
        while (at[0] < bytes.byteSize()) into.add(varint(bytes, at, "packed varints"));
    }

    /** One field of a message: a varint value, or a length-delimited slice. */
    private record Field(int number, int wireType, long varint, MemorySegment slice) {
        MemorySegment bytes() {
            if (wireType != 2) throw new FormatException("field " + number + " is not length-delimited");
            return slice;
        }

        String string() {
            return new String(bytes().toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        }
    }

    private static List<Field> fields(MemorySegment message, String what) {
        List<Field> out = new ArrayList<>();
        long[] at = {0};
        long size = message.byteSize();
        while (at[0] < size) {
            long key = varint(message, at, what);
            int number = (int) (key >>> 3);
            int wire = (int) (key & 7);
            switch (wire) {
                case 0 -> out.add(new Field(number, wire, varint(message, at, what), null));
                case 1 -> { skip(message, at, 8, what); out.add(new Field(number, wire, 0, null)); }
                case 5 -> { skip(message, at, 4, what); out.add(new Field(number, wire, 0, null)); }
                case 2 -> {
                    long length = varint(message, at, what);
                    if (length < 0 || length > size - at[0]) {
                        throw new FormatException(what + ": field " + number + " of " + length + " bytes overruns the message");
                    }
                    out.add(new Field(number, wire, 0, message.asSlice(at[0], length)));
                    at[0] += length;
                }
                default -> throw new FormatException(what + ": unsupported wire type " + wire + " at byte " + at[0]);
            }
        }
        return out;
    }

    private static void skip(MemorySegment m, long[] at, int n, String what) {
        if (at[0] + n > m.byteSize()) throw new FormatException(what + ": truncated fixed-width field");
        at[0] += n;
    }

    private static long varint(MemorySegment m, long[] at, String what) {
        long result = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (at[0] >= m.byteSize()) throw new FormatException(what + ": truncated varint");
            byte b = m.get(ValueLayout.JAVA_BYTE, at[0]++);
            result |= (long) (b & 0x7f) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new FormatException(what + ": varint longer than 10 bytes");
    }
}
