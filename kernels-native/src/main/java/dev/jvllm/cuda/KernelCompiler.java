package dev.jvllm.cuda;

import dev.jvllm.weights.DType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * Turns the {@code .cu} kernel sources kept beside this class ({@code dev/jvllm/cuda/*.cu}) into
 * cubins for one GPU architecture with NVRTC, caching each on disk under
 * {@code ~/.cache/jvllm/cuda} (or {@code $JVLLM_CACHE_DIR/cuda}) by the SHA-256 of its source,
 * its headers, the architecture, the options and the NVRTC version, so a source is compiled once
 * per machine. Each module is built once per activation type (common.cuh's {@code JV_ACT_TYPE}).
 */
final class KernelCompiler {

    private static final Logger log = LoggerFactory.getLogger(KernelCompiler.class);
    static final String RESOURCE_DIRECTORY = "/dev/jvllm/cuda/";
    /** The modules, one per .cu file. */
    static final List<String> MODULES = List.of("elementwise", "norms", "gather", "rotary", "attention", "linear", "quantized", "moe", "sampling");
    private static final List<String> HEADERS = List.of("common.cuh");

    private final Nvrtc nvrtc;
    private final String architecture;
    private final Path cacheDirectory;

    /** @param architecture a real architecture such as "sm_90" */
    KernelCompiler(Nvrtc nvrtc, String architecture, Path cacheDirectory) {
        this.nvrtc = nvrtc;
        this.architecture = architecture;
        this.cacheDirectory = cacheDirectory;
    }

    static Path defaultCacheDirectory() {
        String configured = System.getenv("JVLLM_CACHE_DIR");
        Path root = configured != null && !configured.isBlank()
                ? Path.of(configured) : Path.of(System.getProperty("user.home"), ".cache", "jvllm");
        return root.resolve("cuda");
    }

    /** The cubin of {@code module} for activations of {@code activationType}, from the cache or freshly compiled. */
    byte[] cubin(String module, DType activationType) {
        String source = resource(module + ".cu");
        Map<String, String> headers = headers();
        List<String> options = options(activationType);
        Path cached = cacheDirectory.resolve(module + "-" + key(source, headers, options) + ".cubin");
        if (Files.isRegularFile(cached)) {
            try {
                return Files.readAllBytes(cached);
            } catch (IOException e) {
                log.warn("cannot read cached kernel module {}: {}; compiling it again", cached, e.toString());
            }
        }
        long start = System.nanoTime();
        // Several seconds a module, once per build and device: said, so that a first start is not a silent wait.
        log.info("compiling CUDA kernels {}.cu for {} ({} activations; kept in {} for later starts)", module, architecture,
                activationType, cacheDirectory);
        Nvrtc.Output output = nvrtc.compile(module + ".cu", source, headers, options, true);
        log.info("compiled {}.cu in {} ms", module, (System.nanoTime() - start) / 1_000_000);
        if (!output.log().isEmpty()) log.debug("NVRTC's log for {}.cu:\n{}", module, output.log());
        store(cached, output.image());
        return output.image();
    }

    List<String> options(DType activationType) {
        for (String define : EXTRA_DEFINES) {
            if (define.startsWith("DECODE_TILES") || define.startsWith("DECODE_PARTITION")) {
                // The backend sizes decode partitions for the form and limit it knows of; a kernel built otherwise overruns its scores.
                throw new CudaException("jvllm.cuda.kernelDefines: " + define
                        + " is not a define to set there (use -Djvllm.cuda.decodeTiles or -Djvllm.cuda.decodeTilesAllWidths)");
            }
        }
        List<String> options = new java.util.ArrayList<>(List.of("--gpu-architecture=" + architecture, "--std=c++17",
                "-default-device", "-lineinfo", "-DJV_ACT_TYPE=" + CudaTensor.typeCode(activationType)));
        if (!DECODE_TILES) options.add("-DDECODE_TILES=0");
        if (!DECODE_TILES_ALL_WIDTHS) options.add("-DDECODE_TILES_ALL_WIDTHS=0");
        for (String define : EXTRA_DEFINES) options.add("-D" + define);
        return options;
    }

    /**
     * Whether paged_decode takes its tiled, tensor-core form for 16-bit activations (attention.cu's
     * DECODE_TILES); {@code -Djvllm.cuda.decodeTiles=false} builds the scalar form, for comparisons.
     */
    static final boolean DECODE_TILES = Boolean.parseBoolean(System.getProperty("jvllm.cuda.decodeTiles", "true"));

    /**
     * Whether 80-, 96- and 256-wide heads take the tiled form too, as 64- and 128-wide ones do (attention.cu's
     * DECODE_TILES_ALL_WIDTHS); {@code -Djvllm.cuda.decodeTilesAllWidths=false} leaves them the scalar
     * form, for comparisons.
     */
    static final boolean DECODE_TILES_ALL_WIDTHS =
            Boolean.parseBoolean(System.getProperty("jvllm.cuda.decodeTilesAllWidths", "true"));

    /** Whether paged_decode takes its tiled form for heads of this width (as attention.cu's paged_decode_block chooses). */
    static boolean tiledDecode(int headDim) {
        return DECODE_TILES && (headDim == 64 || headDim == 128 || (headDim == 80 || headDim == 96 || headDim == 256) && DECODE_TILES_ALL_WIDTHS);
    }

    /**
     * Macro definitions added to every module's build, from {@code -Djvllm.cuda.kernelDefines=A=1,B=2}:
     * for comparing a kernel's tuning constants (those a source leaves to {@code #ifndef}) in one
     * process per variant, without a rebuild.
     */
    private static final List<String> EXTRA_DEFINES = java.util.Arrays.stream(
                    System.getProperty("jvllm.cuda.kernelDefines", "").split(","))
            .map(String::trim).filter(d -> d.matches("[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z0-9_.]+)?")).toList();

    Map<String, String> headers() {
        Map<String, String> headers = new java.util.LinkedHashMap<>();
        for (String header : HEADERS) headers.put(header, resource(header));
        return headers;
    }

    private String key(String source, Map<String, String> headers, List<String> options) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(source.getBytes(StandardCharsets.UTF_8));
            for (Map.Entry<String, String> header : headers.entrySet()) {
                sha.update(header.getKey().getBytes(StandardCharsets.UTF_8));
                sha.update(header.getValue().getBytes(StandardCharsets.UTF_8));
            }
            sha.update(String.join(" ", options).getBytes(StandardCharsets.UTF_8));
            sha.update(("nvrtc " + nvrtc.version()).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(sha.digest(), 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Writes through a temporary file so that a concurrent reader never sees half a cubin. */
    private static void store(Path target, byte[] image) {
        try {
            replaceAtomically(target, image);
        } catch (IOException | UnsupportedOperationException e) {
            log.warn("cannot cache kernel module at {}: {}", target, e.toString());
        }
    }

    /**
     * Replaces {@code target} (its directories made as needed) with {@code content} through a
     * temporary file beside it, moved into place at once, so that a reader sees the old file or the
     * new one, never half of one; the temporary file does not outlive a failure.
     */
    static void replaceAtomically(Path target, byte[] content) throws IOException {
        Files.createDirectories(target.getParent());
        Path temporary = Files.createTempFile(target.getParent(), target.getFileName().toString(), ".tmp");
        try {
            Files.write(temporary, content);
            Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temporary);
        }
    }

    static String resource(String name) {
        try (InputStream in = KernelCompiler.class.getResourceAsStream(RESOURCE_DIRECTORY + name)) {
            if (in == null) throw new IllegalStateException("kernel source " + RESOURCE_DIRECTORY + name + " is missing");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
