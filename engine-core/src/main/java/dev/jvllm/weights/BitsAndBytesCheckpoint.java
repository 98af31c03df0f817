package dev.jvllm.weights;

import java.lang.foreign.Arena;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A checkpoint of weights serialized by bitsandbytes (Transformers' {@code load_in_4bit} /
 * {@code load_in_8bit} models saved with {@code save_pretrained}), each read as its unquantized
 * {@code target}-typed [out, in] tensor, decoded once when first asked for:
 * <ul>
 *   <li>4-bit (nf4, fp4): {@code <w>} uint8, two values a byte, the even element of the flattened
 *       [out, in] in the high nibble; each value is {@code quant_map[nibble] × absmax[element /
 *       blocksize]}. The JSON in {@code <w>.quant_state.bitsandbytes__nf4} (or {@code __fp4}) gives
 *       the shape and block size. With double quantization the block maxima are themselves bytes:
 *       {@code nested_quant_map[byte] × nested_absmax[block / nested_blocksize] + nested_offset}.</li>
 *   <li>8-bit (LLM.int8): {@code <prefix>.weight} int8 [out, in] and {@code <prefix>.SCB}, each row's
 *       maximum, so an element is {@code int8 × SCB[row] / 127}.</li>
 * </ul>
 * Every other tensor is the underlying checkpoint's. The weights then cost what {@code target}
 * costs: no bitsandbytes kernel runs yet.
 */
public final class BitsAndBytesCheckpoint extends DecodingCheckpoint {

    private static final List<String> STATE_TYPES = List.of("nf4", "fp4");
    /** The tensors that describe a 4-bit weight {@code <w>}, as {@code <w>} + suffix. */
    private static final List<String> FOUR_BIT_PARTS = List.of(".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
            ".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4");
    /** The quant state's JSON is a few hundred bytes; anything past this is not one. */
    private static final long MAX_STATE_BYTES = 1 << 16;

    public BitsAndBytesCheckpoint(Checkpoint inner, DType target) {
        super(inner, target);
    }

    /** The underlying names without the tensors that only describe a quantized weight. */
    @Override
    public Set<String> names() {
        Set<String> inner = this.inner.names();
        Set<String> names = new LinkedHashSet<>();
        for (String name : inner) {
            boolean part = FOUR_BIT_PARTS.stream().anyMatch(s -> name.endsWith(s) && inner.contains(name.substring(0, name.length() - s.length())))
                    || (name.endsWith(".SCB") && inner.contains(name.substring(0, name.length() - ".SCB".length()) + ".weight"))
                    || (name.endsWith(".weight_format") && inner.contains(name.substring(0, name.length() - ".weight_format".length()) + ".SCB"));
            if (!part) names.add(name);
        }
        return names;
    }

    @Override
    boolean decodes(String name) {
        WeightTensor t = inner.find(name).orElse(null);
        if (t == null) return false;
        if (t.dtype() == DType.U8) return quantState(name) != null;
        return t.dtype() == DType.I8 && name.endsWith(".weight") && inner.find(eightBitScalesName(name)).isPresent();
    }

    @Override
    WeightTensor decode(String name, Arena arena) {
        WeightTensor weight = inner.get(name);
        return weight.dtype() == DType.I8 ? decodeEightBit(weight, arena) : decodeFourBit(weight, quantState(name), arena);
    }

    private WeightTensor decodeEightBit(WeightTensor weight, Arena arena) {
        if (weight.rank() != 2) throw new WeightsException("8-bit tensor '" + weight.name() + "' is not a matrix: " + weight);
        int rows = Math.toIntExact(weight.dim(0));
        WeightTensor scaleTensor = inner.get(eightBitScalesName(weight.name()));
        float[] rowMax = finiteFloats(scaleTensor);
        if (rowMax.length != rows) {
            throw new WeightsException("'" + scaleTensor.name() + "' holds " + rowMax.length + " row maxima, but '" + weight.name()
                    + "' has " + rows + " rows");
        }
        return decodeByteRows(arena, weight, (r, raw, row) -> {
            float scale = rowMax[r] / 127f;
            for (int k = 0; k < raw.length; k++) row[k] = raw[k] * scale;
        });
    }

    private WeightTensor decodeFourBit(WeightTensor weight, WeightTensor stateTensor, Arena arena) {
        JsonNode state = stateJson(stateTensor);
        JsonNode shape = state.path("shape");
        if (!shape.isArray() || shape.size() != 2 || shape.get(0).asLong() < 1 || shape.get(1).asLong() < 1) {
            throw new WeightsException("'" + stateTensor.name() + "' gives no [out, in] shape: " + shape);
        }
        long outputs = shape.get(0).asLong(), inputs = shape.get(1).asLong(), elements = outputs * inputs;
        if (outputs > Integer.MAX_VALUE || inputs > Integer.MAX_VALUE) throw new WeightsException("'" + weight.name() + "' is too large");
        if (weight.elementCount() != (elements + 1) / 2) {
            throw new WeightsException("'" + weight.name() + "' holds " + weight.elementCount() + " bytes, but a " + outputs + " × "
                    + inputs + " weight of two values a byte needs " + (elements + 1) / 2);
        }
        int blockSize = state.path("blocksize").asInt(0);
        if (blockSize < 1) throw new WeightsException("'" + stateTensor.name() + "' gives no positive blocksize");
        String w = weight.name();
        float[] quantMap = floatsOfLength(inner.get(w + ".quant_map"), 16);
        float[] blockMax = blockMaxima(w, state, stateTensor, (elements + blockSize - 1) / blockSize);
        MemorySegment data = weight.data();
        int rows = (int) outputs, cols = (int) inputs;
        if (target == DType.F32) {
            return decodeRows(arena, w, rows, cols, (first, out) -> {
                FourBitRow source = new FourBitRow(data, cols, blockSize);
                for (int i = 0; i < out.length; i++) {
                    float[] row = out[i];
                    source.read(first + i, (k, end, block) -> {
                        float max = blockMax[block];
                        for (; k < end; k++) row[k] = quantMap[source.nibble(k)] * max;
                    });
                }
            }, weight.file());
        }
        // To a 16-bit type: each block's 16 values rounded once, then a lookup a value (the same product and rounding).
        return decodeHalfRows(arena, w, rows, cols, (first, out) -> {
            FourBitRow source = new FourBitRow(data, cols, blockSize);
            short[] patterns = new short[16];
            for (int i = 0; i < out.length; i++) {
                short[] row = out[i];
                source.read(first + i, (k, end, block) -> {
                    float max = blockMax[block];
                    for (int q = 0; q < 16; q++) patterns[q] = half(quantMap[q] * max);
                    for (; k < end; k++) row[k] = patterns[source.nibble(k)];
                });
            }
        }, weight.file());
    }

    /**
     * One row of a weight stored two values a byte (the even element high), read a row at a time into
     * a buffer and walked block by block: {@code blocks.run(from, to, block)} for each run of the
     * row's elements in one block.
     */
    private static final class FourBitRow {
        private final MemorySegment data;
        private final int cols, blockSize;
        private final byte[] bytes;
        private long base, firstByte;

        FourBitRow(MemorySegment data, int cols, int blockSize) {
            this.data = data;
            this.cols = cols;
            this.blockSize = blockSize;
            this.bytes = new byte[cols / 2 + 2];
        }

        interface Blocks {
            void run(int from, int to, int block);
        }

        void read(int row, Blocks blocks) {
            base = (long) row * cols;
            firstByte = base >>> 1;
            long lastByte = (base + cols - 1) >>> 1;
            MemorySegment.copy(data, ValueLayout.JAVA_BYTE, firstByte, bytes, 0, (int) (lastByte - firstByte + 1));
            for (int k = 0; k < cols; ) {
                long block = (base + k) / blockSize;
                int end = (int) Math.min(cols, (block + 1) * blockSize - base);
                blocks.run(k, end, (int) block);
                k = end;
            }
        }

        /** Element k of the row read last. */
        int nibble(int k) {
            long e = base + k;
            int b = bytes[(int) ((e >>> 1) - firstByte)] & 0xff;
            return (e & 1) == 0 ? b >>> 4 : b & 0xf;
        }
    }

    /** Each block's maximum, undoing the double quantization where the state names one. */
    private float[] blockMaxima(String w, JsonNode state, WeightTensor stateTensor, long blocks) {
        WeightTensor absmax = inner.get(w + ".absmax");
        if (absmax.elementCount() != blocks) {
            throw new WeightsException("'" + absmax.name() + "' holds " + absmax.elementCount() + " block maxima, but '" + w + "' has "
                    + blocks + " blocks");
        }
        if (!state.has("nested_offset")) return finiteFloats(absmax);
        if (absmax.dtype() != DType.U8) throw new WeightsException("'" + absmax.name() + "' of a double-quantized weight should be U8, but is " + absmax);
        int nestedBlockSize = state.path("nested_blocksize").asInt(0);
        float offset = (float) state.path("nested_offset").asDouble(Double.NaN);
        if (nestedBlockSize < 1 || !Float.isFinite(offset)) {
            throw new WeightsException("'" + stateTensor.name() + "' gives no positive nested_blocksize or finite nested_offset");
        }
        float[] code = floatsOfLength(inner.get(w + ".nested_quant_map"), 256);
        WeightTensor nestedMaxTensor = inner.get(w + ".nested_absmax");
        float[] nestedMax = finiteFloats(nestedMaxTensor);
        if (nestedMax.length != (blocks + nestedBlockSize - 1) / nestedBlockSize) {
            throw new WeightsException("'" + nestedMaxTensor.name() + "' holds " + nestedMax.length + " maxima, but " + blocks
                    + " blocks in groups of " + nestedBlockSize + " need " + (blocks + nestedBlockSize - 1) / nestedBlockSize);
        }
        float[] out = new float[(int) blocks];
        MemorySegment bytes = absmax.data();
        for (int b = 0; b < out.length; b++) {
            out[b] = code[bytes.get(ValueLayout.JAVA_BYTE, b) & 0xff] * nestedMax[b / nestedBlockSize] + offset;
        }
        return out;
    }

    /** The quant-state tensor of 4-bit weight {@code w}, or null where it has none. */
    private WeightTensor quantState(String w) {
        for (String type : STATE_TYPES) {
            WeightTensor state = inner.find(w + ".quant_state.bitsandbytes__" + type).orElse(null);
            if (state != null) return state;
        }
        return null;
    }

    private static JsonNode stateJson(WeightTensor state) {
        if (state.dtype() != DType.U8 || state.rank() != 1 || state.elementCount() > MAX_STATE_BYTES) {
            throw new WeightsException("'" + state.name() + "' should be the quant state's JSON as U8 bytes, but is " + state);
        }
        byte[] bytes = state.data().toArray(ValueLayout.JAVA_BYTE);
        try {
            JsonNode json = new ObjectMapper().readTree(new String(bytes, StandardCharsets.UTF_8));
            if (json == null || !json.isObject()) throw new WeightsException("'" + state.name() + "' holds no JSON object");
            return json;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new WeightsException("'" + state.name() + "' holds no readable JSON: " + e.getOriginalMessage());
        }
    }

    private static float[] floatsOfLength(WeightTensor t, int length) {
        float[] values = finiteFloats(t);
        if (values.length != length) throw new WeightsException("'" + t.name() + "' should hold " + length + " values, but holds " + values.length);
        return values;
    }

    private static String eightBitScalesName(String weightName) {
        return weightName.substring(0, weightName.length() - ".weight".length()) + ".SCB";
    }
}
