package dev.jvllm.weights;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/** PLACEHOLDER reader (to be replaced by the validated one): single file only. */
final class SafetensorsCheckpoint implements Checkpoint {
    private final Arena arena = Arena.ofShared();
    private final Map<String, WeightTensor> tensors = new LinkedHashMap<>();
    private final Path dir;

    private SafetensorsCheckpoint(Path dir) {
        this.dir = dir;
    }

    static Checkpoint open(Path dir) {
        SafetensorsCheckpoint c = new SafetensorsCheckpoint(dir);
        try {
            Path file = dir.resolve("model.safetensors");
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), c.arena);
                long n = all.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
                byte[] h = all.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
                JsonNode header = new ObjectMapper().readTree(new String(h, StandardCharsets.UTF_8));
                for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                    var e = it.next();
                    if (e.getKey().equals("__metadata__")) continue;
                    JsonNode t = e.getValue();
                    long[] shape = new long[t.get("shape").size()];
                    for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asLong();
                    long b = t.get("data_offsets").get(0).asLong(), en = t.get("data_offsets").get(1).asLong();
                    c.tensors.put(e.getKey(), new WeightTensor(e.getKey(), DType.fromSafetensorsName(t.get("dtype").asText()).orElseThrow(),
                            shape, all.asSlice(8 + n + b, en - b), file));
                }
            }
        } catch (IOException e) {
            throw new WeightsException("cannot read " + dir, e);
        }
        return c;
    }

    public Set<String> names() { return tensors.keySet(); }
    public Optional<WeightTensor> find(String name) { return Optional.ofNullable(tensors.get(name)); }
    public WeightTensor get(String name) {
        WeightTensor t = tensors.get(name);
        if (t == null) throw new WeightsException("tensor '" + name + "' not found in " + dir);
        return t;
    }
    public void close() { arena.close(); }
}
