package dev.jvllm.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jvllm.LLM;
import dev.jvllm.config.ModelConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A benchmark's result as JSON in {@code benchmarks/results/}: the exact command, the machine (CPU
 * model, cores, memory, Java), the git revision, the model, the settings and the numbers, so a
 * number can always be traced to how it was made.
 */
final class ResultFile {

    private static final Path RESULTS = Path.of("benchmarks", "results");

    private ResultFile() {
    }

    /** Writes the result and returns the file. */
    static Path write(String benchmark, BenchmarkOptions options, LLM llm, Map<String, Object> results) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("benchmark", benchmark);
        json.put("command", command(benchmark, options.arguments));
        json.put("date", OffsetDateTime.now(ZoneOffset.UTC).truncatedTo(ChronoUnit.SECONDS).toString());
        json.put("git", git());
        json.put("machine", machine());
        json.put("model", model(options, llm));
        json.put("config", options.describe());
        json.put("results", results);
        Path file = options.outputJson != null ? options.outputJson : RESULTS.resolve(defaultName(benchmark, options));
        try {
            if (file.getParent() != null) Files.createDirectories(file.getParent());
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), json);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
        return file;
    }

    private static String defaultName(String benchmark, BenchmarkOptions o) {
        String model = o.model.startsWith("random") ? o.model.replaceAll("[^A-Za-z0-9=.-]+", "_")
                : Path.of(o.model).getFileName().toString();
        String size = benchmark.equals("latency") ? "bs" + o.batchSize : "n" + o.numPrompts + "-seqs" + o.maxNumSeqs;
        return benchmark + "-" + model + "-in" + o.inputLen + "-out" + o.outputLen + "-" + size + ".json";
    }

    /** As typed when run through the {@code jvllm} script (it passes {@code -Djvllm.command}), else the java command. */
    private static String command(String benchmark, List<String> arguments) {
        String viaScript = System.getProperty("jvllm.command");
        if (viaScript != null && !viaScript.isBlank()) return viaScript;
        return "java " + String.join(" ", ManagementFactory.getRuntimeMXBean().getInputArguments()) + " "
                + System.getProperty("sun.java.command", benchmark + " " + String.join(" ", arguments));
    }

    private static Map<String, Object> git() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("revision", run("git", "rev-parse", "HEAD"));
        String status = run("git", "status", "--porcelain", "--untracked-files=no");
        m.put("dirty", status == null ? null : !status.isBlank());
        return m;
    }

    private static Map<String, Object> machine() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cpu", cpuModel());
        m.put("cores", Runtime.getRuntime().availableProcessors());
        try {
            putMemory(m);
        } catch (NoClassDefFoundError e) {
            // A runtime without jdk.management (the GPU machine's jlinked one): the memory goes unrecorded.
        }
        // Other processes competing for the cores skew every number: record how busy the machine was.
        m.put("load_average_1m_at_end", Percentiles.round(ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage()));
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        m.put("java", System.getProperty("java.vm.vendor") + " " + System.getProperty("java.vm.name") + " " + Runtime.version());
        m.put("max_heap_mib", Runtime.getRuntime().maxMemory() >> 20);
        return m;
    }

    private static void putMemory(Map<String, Object> m) {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            m.put("memory_gib", Percentiles.round(os.getTotalMemorySize() / (double) (1L << 30)));
        }
    }

    private static Map<String, Object> model(BenchmarkOptions options, LLM llm) {
        ModelConfig c = llm.modelConfig();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", options.model);
        m.put("directory", llm.modelDirectory().toString());
        m.put("architectures", c.architectures());
        m.put("hidden_size", c.hiddenSize());
        m.put("num_hidden_layers", c.numLayers());
        m.put("num_attention_heads", c.numHeads());
        m.put("num_key_value_heads", c.numKvHeads());
        m.put("vocab_size", c.vocabSize());
        m.put("dtype", c.dtype().map(Object::toString).orElse(null));
        try (Stream<Path> files = Files.list(llm.modelDirectory())) {
            m.put("weight_bytes", files.filter(f -> f.toString().endsWith(".safetensors")).mapToLong(ResultFile::size).sum());
        } catch (IOException e) {
            m.put("weight_bytes", null);
        }
        return m;
    }

    private static long size(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            return 0;
        }
    }

    /** The first processor's model name, family, model and vector extensions from /proc/cpuinfo. */
    private static String cpuModel() {
        Map<String, String> cpu = new LinkedHashMap<>();
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            lines.takeWhile(l -> !l.isBlank()).filter(l -> l.contains(":"))
                    .forEach(l -> cpu.putIfAbsent(l.substring(0, l.indexOf(':')).trim(), l.substring(l.indexOf(':') + 1).trim()));
        } catch (IOException | UncheckedIOException e) {
            return System.getProperty("os.arch");
        }
        String vectors = Stream.of(cpu.getOrDefault("flags", "").split(" "))
                .filter(f -> f.equals("avx2") || f.equals("avx512f") || f.equals("avx512_bf16")).collect(Collectors.joining(" "));
        return cpu.getOrDefault("model name", System.getProperty("os.arch")) + " (family " + cpu.get("cpu family")
                + ", model " + cpu.get("model") + (vectors.isEmpty() ? "" : ", " + vectors) + ")";
    }

    /** A command's trimmed output, or null if it cannot run. */
    private static String run(String... command) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0 ? out : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }
}
