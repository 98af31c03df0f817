package dev.jvllm.cpu;

import dev.jvllm.weights.Int4Weight;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Random;

/** Random 4-bit weights and their values, for the tests of the backends' 4-bit products. */
public final class Int4TestWeights {

    private static final ValueLayout.OfInt WORD = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Int4TestWeights() {
    }

    /** Random words, scales and zeros; with actOrder the inputs shuffled into the packed order. */
    public static Int4Weight randomInt4(String name, int rows, int cols, int group, boolean actOrder, Random random) {
        Arena arena = Arena.ofShared();
        MemorySegment words = arena.allocate((long) rows * cols / 2, 16);
        for (long i = 0; i < (long) rows * cols / 8; i++) words.setAtIndex(WORD, i, random.nextInt());
        int groups = rows * (cols / group);
        float[] scales = new float[groups], zeros = new float[groups];
        for (int g = 0; g < groups; g++) {
            scales[g] = 0.01f + 0.05f * random.nextFloat();
            zeros[g] = random.nextInt(16);
        }
        int[] order = null;
        if (actOrder) {
            order = new int[cols];
            for (int i = 0; i < cols; i++) order[i] = i;
            for (int i = cols - 1; i > 0; i--) {
                int j = random.nextInt(i + 1), swap = order[i];
                order[i] = order[j];
                order[j] = swap;
            }
        }
        return new Int4Weight(name, rows, cols, group, words, scales, zeros, order, Path.of("random.safetensors"), arena);
    }

    /** The weight's elements [rows, cols] in the checkpoint's input order, as float32. */
    public static float[] dense(Int4Weight w) {
        float[] out = new float[w.rows() * w.cols()];
        for (int r = 0; r < w.rows(); r++) {
            for (int i = 0; i < w.cols(); i++) {
                int word = w.words().getAtIndex(WORD, Int4Weight.wordIndex(w.cols(), r, i));
                int q = (word >>> Int4Weight.bitOf(r, i)) & 0xf;
                int g = r * w.groupsPerRow() + i / w.groupSize();
                int input = w.inputOrder() == null ? i : w.inputOrder()[i];
                out[r * w.cols() + input] = (q - w.zeros()[g]) * w.scales()[g];
            }
        }
        return out;
    }
}
