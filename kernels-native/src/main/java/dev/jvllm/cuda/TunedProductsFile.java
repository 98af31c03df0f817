package dev.jvllm.cuda;

import dev.jvllm.weights.DType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * The algorithms {@link TunedProducts} chose, kept on disk between runs, as compiled kernels are:
 * one text file per device, compute capability, cuBLASLt version, search form and activation type (an algorithm
 * descriptor is only valid for the library and device that offered it), so that a later run takes
 * a searched shape's algorithm instead of timing its candidates again.
 *
 * <p>A line per shape: {@code tokens in outFeatures type weightAlignment inputAlignment
 * outputAlignment [bias] algorithm}, the word {@code bias} for a shape with the bias epilogue, the
 * algorithm as 128 hex digits (cublasLtMatmulAlgo_t's 64 bytes) or {@code -} where no candidate ran
 * and cublasGemmEx takes the shape. The file is read as untrusted:
 * a line that does not parse is skipped with a warning naming the file and line, and the library
 * checks every algorithm read back ({@code cublasLtMatmulAlgoCheck}) before it is used.
 */
final class TunedProductsFile {

    private static final Logger log = LoggerFactory.getLogger(TunedProductsFile.class);

    static final String HEADER = "# jvllm cuBLASLt algorithms v1: tokens in outFeatures type weightAlignment"
            + " inputAlignment outputAlignment [bias] algorithm";
    /** Shapes read at most; a longer file is cut there (a run meets a few hundred). */
    static final int MAX_SHAPES = 100_000;
    private static final HexFormat HEX = HexFormat.of();

    private final Path file;
    /** By shape, the algorithm's bytes, or an empty array where cublasGemmEx takes the shape. */
    private final Map<TunedProducts.Shape, byte[]> algorithms = new LinkedHashMap<>();

    private TunedProductsFile(Path file) {
        this.file = file;
    }

    /**
     * The file for this device, library, search and type under {@code directory}, with what it holds
     * (none where it does not exist or cannot be read). {@code search} names which candidates the
     * search timed (letters and digits), so that choices made among fewer are searched again.
     */
    static TunedProductsFile open(Path directory, String deviceName, int computeMajor, int computeMinor,
                                  long libraryVersion, String search, DType type) {
        String name = "cublaslt-" + deviceName.replaceAll("[^A-Za-z0-9]+", "_") + "-sm" + computeMajor + computeMinor
                + "-lt" + libraryVersion + "-" + search.replaceAll("[^A-Za-z0-9]+", "_") + "-" + type.name().toLowerCase()
                + ".txt";
        return read(directory.resolve(name));
    }

    static TunedProductsFile read(Path file) {
        TunedProductsFile store = new TunedProductsFile(file);
        if (!Files.isRegularFile(file)) return store;
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException | RuntimeException e) {
            log.warn("cannot read the cuBLASLt algorithms in {} ({}); shapes are searched again", file, e.toString());
            return store;
        }
        for (int i = 0; i < lines.size() && store.algorithms.size() < MAX_SHAPES; i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) continue;
            try {
                store.parse(line);
            } catch (IllegalArgumentException e) {
                log.warn("{} line {}: {}; the line is skipped", file, i + 1, e.getMessage());
            }
        }
        return store;
    }

    private void parse(String line) {
        String[] fields = line.split("\\s+");
        boolean bias = fields.length == 9 && fields[7].equals("bias");
        if (fields.length != 8 && !bias) {
            throw new IllegalArgumentException("expected 8 fields, or 9 with 'bias' as the eighth; found " + fields.length);
        }
        int tokens = positive(fields[0], "tokens");
        int in = positive(fields[1], "in");
        int outFeatures = positive(fields[2], "outFeatures");
        DType type;
        try {
            type = DType.valueOf(fields[3]);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown type '" + fields[3] + "'");
        }
        int weightAlignment = alignment(fields[4], "weightAlignment");
        int inputAlignment = alignment(fields[5], "inputAlignment");
        int outputAlignment = alignment(fields[6], "outputAlignment");
        String hex = fields[fields.length - 1];
        byte[] algorithm;
        if (hex.equals("-")) {
            algorithm = new byte[0];
        } else {
            if (hex.length() != 2 * CublasLt.ALGORITHM_BYTES) {
                throw new IllegalArgumentException("the algorithm has " + hex.length() + " hex digits, not "
                        + 2 * CublasLt.ALGORITHM_BYTES);
            }
            algorithm = HEX.parseHex(hex);
        }
        algorithms.put(new TunedProducts.Shape(tokens, in, outFeatures, type, weightAlignment, inputAlignment,
                outputAlignment, bias), algorithm);
    }

    private static int positive(String field, String name) {
        int value;
        try {
            value = Integer.parseInt(field);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " '" + field + "' is not a number");
        }
        if (value <= 0) throw new IllegalArgumentException(name + " " + value + " is not positive");
        return value;
    }

    private static int alignment(String field, String name) {
        int value = positive(field, name);
        if (Integer.bitCount(value) != 1 || value > TunedProducts.MAX_ALIGNMENT) {
            throw new IllegalArgumentException(name + " " + value + " is not a power of two up to "
                    + TunedProducts.MAX_ALIGNMENT);
        }
        return value;
    }

    /**
     * The kept algorithm of {@code shape}: its bytes, an empty array where cublasGemmEx takes the
     * shape, or empty where the shape was never searched.
     */
    Optional<byte[]> algorithm(TunedProducts.Shape shape) {
        byte[] bytes = algorithms.get(shape);
        return bytes == null ? Optional.empty() : Optional.of(bytes.clone());
    }

    /** Forgets a shape whose kept algorithm the library no longer accepts. */
    void forget(TunedProducts.Shape shape) {
        algorithms.remove(shape);
    }

    /**
     * Keeps {@code algorithm} (null: cublasGemmEx) for {@code shape} and rewrites the file through a
     * temporary one, so that a reader never sees it half written. A file that cannot be written is
     * logged and left: the choice still holds for this run.
     */
    void keep(TunedProducts.Shape shape, byte[] algorithm) {
        if (algorithm != null && algorithm.length != CublasLt.ALGORITHM_BYTES) {
            throw new IllegalArgumentException("an algorithm is " + CublasLt.ALGORITHM_BYTES + " bytes, not "
                    + algorithm.length);
        }
        algorithms.put(shape, algorithm == null ? new byte[0] : algorithm.clone());
        List<String> lines = new ArrayList<>(algorithms.size() + 1);
        lines.add(HEADER);
        algorithms.forEach((s, bytes) -> lines.add(s.tokens() + " " + s.in() + " " + s.outFeatures() + " "
                + s.type().name() + " " + s.weightAlignment() + " " + s.inputAlignment() + " " + s.outputAlignment()
                + (s.bias() ? " bias" : "") + " " + (bytes.length == 0 ? "-" : HEX.formatHex(bytes))));
        String text = lines.stream().map(line -> line + System.lineSeparator()).collect(Collectors.joining());
        try {
            KernelCompiler.replaceAtomically(file, text.getBytes(StandardCharsets.UTF_8));
        } catch (IOException | RuntimeException e) {
            log.warn("cannot keep the cuBLASLt algorithms in {} ({}); this run's choices are not kept", file, e.toString());
        }
    }

    int size() {
        return algorithms.size();
    }

    Path file() {
        return file;
    }
}
