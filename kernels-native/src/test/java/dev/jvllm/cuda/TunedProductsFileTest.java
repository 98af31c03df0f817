package dev.jvllm.cuda;

import dev.jvllm.weights.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The file of cuBLASLt algorithms kept between runs (no GPU needed): what one run keeps the next
 * reads back, one file per device, library and type, and a damaged or hostile file costs a search
 * again, never a wrong algorithm or a failed start.
 */
class TunedProductsFileTest {

    private static final TunedProducts.Shape DECODE = new TunedProducts.Shape(64, 4096, 14336, DType.BF16, 256, 256, 256);
    private static final TunedProducts.Shape ODD = new TunedProducts.Shape(17, 203, 90, DType.F32, 4, 4, 8);

    private static byte[] algorithm(int seed) {
        byte[] bytes = new byte[(int) CublasLt.ALGORITHM_BYTES];
        for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) (seed * 31 + i * 7);
        return bytes;
    }

    private static TunedProductsFile open(Path directory) {
        return TunedProductsFile.open(directory, "NVIDIA H100 80GB HBM3", 9, 0, 130100, "clusters", DType.BF16);
    }

    @Test
    void whatOneRunKeepsTheNextReadsBack(@TempDir Path directory) {
        TunedProductsFile first = open(directory);
        assertTrue(first.algorithm(DECODE).isEmpty(), "nothing is kept before the first run");
        first.keep(DECODE, algorithm(1));
        first.keep(ODD, null);

        TunedProductsFile next = open(directory);
        assertEquals(2, next.size());
        assertArrayEquals(algorithm(1), next.algorithm(DECODE).orElseThrow(), "the searched algorithm");
        assertEquals(0, next.algorithm(ODD).orElseThrow().length, "a shape left to cublasGemmEx stays so");
    }

    /**
     * A shape with the bias epilogue is kept apart from the same product without it (its algorithm was
     * searched with the epilogue), and a line written before biased shapes existed still reads as unbiased.
     */
    @Test
    void biasedShapesAreKeptApartAndOlderLinesReadAsUnbiased(@TempDir Path directory) throws IOException {
        TunedProducts.Shape biased = new TunedProducts.Shape(64, 4096, 14336, DType.BF16, 256, 256, 256, true);
        TunedProductsFile first = open(directory);
        first.keep(DECODE, algorithm(1));
        first.keep(biased, algorithm(2));
        TunedProductsFile next = open(directory);
        assertArrayEquals(algorithm(1), next.algorithm(DECODE).orElseThrow());
        assertArrayEquals(algorithm(2), next.algorithm(biased).orElseThrow());
        assertTrue(Files.readString(next.file()).contains(" 256 bias "), "the biased line is marked");

        Path older = directory.resolve("older");
        Files.createDirectories(older);
        Files.writeString(open(older).file(), TunedProductsFile.HEADER + "\n17 203 90 F32 4 4 8 -\n"
                + "17 203 90 F32 4 4 8 relu -\n");
        TunedProductsFile read = open(older);
        assertEquals(1, read.size(), "the line with an unknown eighth word is skipped");
        assertEquals(0, read.algorithm(ODD).orElseThrow().length, "the older line is the unbiased shape");
        assertTrue(read.algorithm(new TunedProducts.Shape(17, 203, 90, DType.F32, 4, 4, 8, true)).isEmpty());
    }

    @Test
    void eachDeviceLibrarySearchAndTypeHasItsOwnFile(@TempDir Path directory) {
        open(directory).keep(DECODE, algorithm(1));
        assertTrue(TunedProductsFile.open(directory, "NVIDIA H200", 9, 0, 130100, "clusters", DType.BF16).algorithm(DECODE).isEmpty());
        assertTrue(TunedProductsFile.open(directory, "NVIDIA H100 80GB HBM3", 9, 0, 130200, "clusters", DType.BF16)
                .algorithm(DECODE).isEmpty(), "another cuBLASLt build");
        assertTrue(TunedProductsFile.open(directory, "NVIDIA H100 80GB HBM3", 9, 0, 130100, "clusters", DType.F16)
                .algorithm(DECODE).isEmpty());
        assertTrue(TunedProductsFile.open(directory, "NVIDIA H100 80GB HBM3", 9, 0, 130100, "heuristic", DType.BF16)
                .algorithm(DECODE).isEmpty(), "choices of a search among fewer candidates");
        Path file = open(directory).file();
        assertEquals(directory, file.getParent());
        assertTrue(file.getFileName().toString().matches("[A-Za-z0-9_.-]+"), "a plain file name: " + file);
    }

    @Test
    void aKeptShapeIsReplacedAndAForgottenOneIsSearchedAgain(@TempDir Path directory) {
        TunedProductsFile file = open(directory);
        file.keep(DECODE, algorithm(1));
        file.keep(DECODE, algorithm(2));
        file.keep(ODD, algorithm(3));
        file.forget(ODD);
        assertTrue(file.algorithm(ODD).isEmpty());
        assertArrayEquals(algorithm(2), open(directory).algorithm(DECODE).orElseThrow());
    }

    @Test
    void damagedLinesAreSkippedAndTheRestIsRead(@TempDir Path directory) throws IOException {
        TunedProductsFile file = open(directory);
        file.keep(DECODE, algorithm(1));
        String good = Files.readAllLines(file.file()).get(1);
        String hex = good.substring(good.lastIndexOf(' ') + 1);
        Files.write(file.file(), List.of(
                TunedProductsFile.HEADER,
                "64 4096 14336 BF16 256 256 256",                       // a field short
                "64 4096 14336 BF16 256 256 256 " + hex.substring(2),   // a byte short
                "64 4096 14336 BF16 256 256 256 zz" + hex.substring(2), // not hex
                "-1 4096 14336 BF16 256 256 256 " + hex,                // no such row count
                "64 4096 14336 Q4 256 256 256 " + hex,                  // no such type
                "64 4096 14336 BF16 256 256 96 " + hex,                 // an alignment not a power of two
                "64 4096 14336 BF16 256 256 512 " + hex,                // an alignment above 256
                "99999999999 1 1 BF16 256 256 256 -",                   // beyond an int
                "",
                good));
        TunedProductsFile read = open(directory);
        assertEquals(1, read.size(), "only the good line");
        assertArrayEquals(algorithm(1), read.algorithm(DECODE).orElseThrow());
    }

    @Test
    void anUnreadableOrUnwritablePlaceCostsOnlyASearch(@TempDir Path directory) throws IOException {
        Path blocker = directory.resolve("not-a-directory");
        Files.writeString(blocker, "x");
        TunedProductsFile file = open(blocker);
        assertEquals(0, file.size());
        file.keep(DECODE, algorithm(1));   // logged, not thrown: the choice holds for this run
        assertArrayEquals(algorithm(1), file.algorithm(DECODE).orElseThrow());
    }

    @Test
    void rewritingLeavesNoTemporaryFiles(@TempDir Path directory) throws IOException {
        TunedProductsFile file = open(directory);
        for (int i = 0; i < 5; i++) file.keep(new TunedProducts.Shape(8 * (i + 1), 4096, 4096, DType.BF16, 256, 256, 256), algorithm(i));
        try (Stream<Path> files = Files.list(directory)) {
            assertEquals(List.of(file.file()), files.toList());
        }
        assertEquals(6, Files.readAllLines(file.file()).size(), "the header and a line a shape");
    }

    @Test
    void anAlgorithmOfTheWrongSizeIsRefused(@TempDir Path directory) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> open(directory).keep(DECODE, new byte[8]));
        assertTrue(e.getMessage().contains("64 bytes"), e.getMessage());
    }
}
