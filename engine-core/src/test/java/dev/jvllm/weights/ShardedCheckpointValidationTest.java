package dev.jvllm.weights;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;

/** A sharded checkpoint whose index and shards disagree, or whose index names an unsafe file, is refused. */
class ShardedCheckpointValidationTest {

    private static final String SHARD_1 = "model-00001-of-00002.safetensors";
    private static final String SHARD_2 = "model-00002-of-00002.safetensors";

    @TempDir
    Path dir;

    private Path index() {
        return dir.resolve("model.safetensors.index.json");
    }

    private void writeShard(String file, String... tensorNames) {
        SafetensorsTestWriter writer = new SafetensorsTestWriter();
        for (String name : tensorNames) {
            writer.add(name, DType.F32, new long[] {1}, 1);
        }
        writer.write(dir.resolve(file));
    }

    private static Map<String, String> ordered(String... tensorThenFile) {
        Map<String, String> map = new LinkedHashMap<>();
        for (int i = 0; i < tensorThenFile.length; i += 2) {
            map.put(tensorThenFile[i], tensorThenFile[i + 1]);
        }
        return map;
    }

    private void assertRefused(String... fragments) {
        assertThrowsNaming(WeightsException.class, () -> Checkpoint.open(dir).close(), fragments);
    }

    @ParameterizedTest
    @ValueSource(strings = {"../outside.safetensors", "sub/../../outside.safetensors", "/etc/passwd",
            "C:model.safetensors", "C:\\weights\\model.safetensors", "\\\\server\\share\\model.safetensors", ""})
    void unsafeShardNameIsRefusedBeforeAnyShardIsOpened(String unsafeName) throws Exception {
        // The first shard is garbage: had it been opened first, the error would be about it.
        Files.writeString(dir.resolve(SHARD_1), "not a safetensors file");
        SafetensorsTestWriter.writeIndex(dir, ordered("a", SHARD_1, "b", unsafeName));

        assertRefused(index().toString(), "'" + unsafeName + "'", "not a plain relative path");
    }

    @Test
    void shardNameThatIsADirectoryIsRefused() throws Exception {
        Files.createDirectory(dir.resolve("weights.safetensors"));
        SafetensorsTestWriter.writeIndex(dir, ordered("a", "weights.safetensors"));

        assertRefused(index().toString(), "'weights.safetensors' is not a regular file");
    }

    @Test
    void missingShardIsRefused() {
        SafetensorsTestWriter.writeIndex(dir, ordered("a", SHARD_1));

        assertRefused(index().toString(), "'" + SHARD_1 + "' does not exist");
    }

    @Test
    void tensorListedButAbsentFromItsShard() {
        writeShard(SHARD_1, "a");
        SafetensorsTestWriter.writeIndex(dir, ordered("a", SHARD_1, "b", SHARD_1));

        assertRefused(index().toString(), "'b'", SHARD_1, "does not contain it");
    }

    @Test
    void shardTensorMissingFromTheIndex() {
        writeShard(SHARD_1, "a", "stray");
        SafetensorsTestWriter.writeIndex(dir, ordered("a", SHARD_1));

        assertRefused(dir.resolve(SHARD_1).toString(), "'stray'", "not listed in " + index());
    }

    @Test
    void tensorsInOtherShardsThanListed() {
        writeShard(SHARD_1, "a");
        writeShard(SHARD_2, "b");
        SafetensorsTestWriter.writeIndex(dir, ordered("a", SHARD_2, "b", SHARD_1));

        assertRefused(dir.resolve(SHARD_2).toString(), "'b'", "as being in " + dir.resolve(SHARD_1));
    }

    @Test
    void tensorPresentInTwoShards() {
        writeShard(SHARD_1, "a", "shared");
        writeShard(SHARD_2, "b", "shared");
        SafetensorsTestWriter.writeIndex(dir, ordered("a", SHARD_1, "b", SHARD_2, "shared", SHARD_1));

        assertRefused("'shared' is present in both", dir.resolve(SHARD_1).toString(), dir.resolve(SHARD_2).toString());
    }

    @Test
    void malformedShardIsReportedByItsName() throws Exception {
        writeShard(SHARD_1, "a");
        Files.write(dir.resolve(SHARD_2), new byte[3]);
        SafetensorsTestWriter.writeIndex(dir, ordered("a", SHARD_1, "b", SHARD_2));

        assertRefused(dir.resolve(SHARD_2).toString(), "too short");
    }

    @ParameterizedTest
    @ValueSource(strings = {"{\"metadata\": {}}", "{\"weight_map\": [\"a\"]}", "{\"weight_map\": {\"a\": 1}}",
            "{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}", "{\"weight_map\": ", "[]"})
    void malformedIndexIsRefused(String json) throws Exception {
        Files.writeString(index(), json);

        assertRefused(index().toString());
    }
}
