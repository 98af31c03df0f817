package dev.jvllm.engine;

import dev.jvllm.EngineConfig;
import dev.jvllm.spi.Backend;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Proxy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

/** The padded form of decode batches (the recorded passes' runs on a real model are in model-zoo's CapturedDecodeTest). */
class CapturedDecodePaddingTest {

    private static final int BLOCK = 4;

    private static CapturedDecode capturedDecode() {
        Backend recording = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("capturesGraphs")) return true;
                    throw new UnsupportedOperationException(method.getName());
                });
        return new CapturedDecode(recording, null, new EngineConfig(64, BLOCK, 1 << 20, 8, 64, false, 0L, "cpu", 1));
    }

    /** A decode step of one token per sequence, at each sequence's last position. */
    private static ForwardBatch decode(int[]... tables) {
        int n = tables.length;
        int[] ids = new int[n], positions = new int[n], slots = new int[n], starts = new int[n + 1];
        int[] contexts = new int[n], logitRows = new int[n];
        for (int s = 0; s < n; s++) {
            positions[s] = tables[s].length * BLOCK - 1;
            slots[s] = tables[s][tables[s].length - 1] * BLOCK + BLOCK - 1;
            starts[s + 1] = s + 1;
            contexts[s] = positions[s] + 1;
            logitRows[s] = s;
        }
        return new ForwardBatch(ids, positions, slots, starts, contexts, tables, BLOCK, logitRows);
    }

    @Test
    void paddingSequencesWriteNothingAndTablesGrowToTheGivenLength() {
        ForwardBatch padded = capturedDecode().padded(decode(new int[]{1}, new int[]{2, 3}, new int[]{4, 5, 6}), 4, 4);
        assertEquals(4, padded.numSequences());
        assertArrayEquals(new int[]{1, 0, 0, 0}, padded.blockTables()[0]);
        assertArrayEquals(new int[]{4, 5, 6, 0}, padded.blockTables()[2]);
        assertArrayEquals(new int[]{0, 0, 0, 0}, padded.blockTables()[3]);
        assertEquals(-1, padded.slotMapping()[3]);
        assertEquals(1, padded.contextLengths()[3]);
    }

    /** A step in which each sequence verifies two guesses: three tokens a sequence, every row's logits. */
    private static ForwardBatch guessing(int[]... tables) {
        int n = tables.length;
        int[] ids = new int[3 * n], positions = new int[3 * n], slots = new int[3 * n], starts = new int[n + 1];
        int[] contexts = new int[n], logitRows = new int[3 * n];
        for (int s = 0; s < n; s++) {
            for (int i = 0; i < 3; i++) {
                int t = 3 * s + i;
                ids[t] = 10 * s + i;
                positions[t] = tables[s].length * BLOCK - 3 + i;
                slots[t] = tables[s][positions[t] / BLOCK] * BLOCK + positions[t] % BLOCK;
                logitRows[t] = t;
            }
            starts[s + 1] = 3 * (s + 1);
            contexts[s] = positions[3 * s + 2] + 1;
        }
        return new ForwardBatch(ids, positions, slots, starts, contexts, tables, BLOCK, logitRows);
    }

    @Test
    void aStepOfGuessesIsPaddedWithSequencesOfAsManyTokensThatWriteNothing() {
        ForwardBatch batch = guessing(new int[]{1, 2}, new int[]{3}, new int[]{4, 5, 6});
        assertEquals(3, CapturedDecode.tokensEach(batch));
        ForwardBatch padded = capturedDecode().padded(batch, 4, 4);
        assertEquals(4, padded.numSequences());
        assertEquals(12, padded.numTokens());
        assertEquals(3, CapturedDecode.tokensEach(padded), "the padded step has the same shape");
        assertArrayEquals(java.util.Arrays.copyOf(batch.tokenIds(), 9), java.util.Arrays.copyOf(padded.tokenIds(), 9));
        assertArrayEquals(new int[]{0, 1, 2}, java.util.Arrays.copyOfRange(padded.positions(), 9, 12));
        assertArrayEquals(new int[]{-1, -1, -1}, java.util.Arrays.copyOfRange(padded.slotMapping(), 9, 12));
        assertEquals(3, padded.contextLengths()[3]);
        assertArrayEquals(java.util.stream.IntStream.range(0, 12).toArray(), padded.logitRows());
        assertArrayEquals(new int[]{0, 3, 6, 9, 12}, padded.queryStarts());
    }

    @Test
    void onlyStepsOfAsManyConsecutiveTokensEachWithEveryRowsLogitsHaveAShape() {
        ForwardBatch batch = guessing(new int[]{1}, new int[]{2});
        assertEquals(1, CapturedDecode.tokensEach(decode(new int[]{1}, new int[]{2})));
        int[] fewerRows = {2, 5};
        assertEquals(0, CapturedDecode.tokensEach(new ForwardBatch(batch.tokenIds(), batch.positions(), batch.slotMapping(),
                batch.queryStarts(), batch.contextLengths(), batch.blockTables(), BLOCK, fewerRows)), "a prompt chunk's step");
        int[] uneven = {0, 2, 6};
        assertEquals(0, CapturedDecode.tokensEach(new ForwardBatch(batch.tokenIds(), batch.positions(), batch.slotMapping(),
                uneven, batch.contextLengths(), batch.blockTables(), BLOCK, batch.logitRows())), "2 and 4 tokens");
        int[] scattered = batch.positions().clone();
        scattered[1] += 1;
        assertEquals(0, CapturedDecode.tokensEach(new ForwardBatch(batch.tokenIds(), scattered, batch.slotMapping(),
                batch.queryStarts(), batch.contextLengths(), batch.blockTables(), BLOCK, batch.logitRows())), "positions apart");
    }

    @Test
    void paddingSequencesOfAnEncoderDecoderBatchAttendToTheFirstSequencesEncoderInput() {
        ForwardBatch batch = decode(new int[]{1}, new int[]{2}, new int[]{3});
        EncoderInput a = EncoderInput.of(new int[]{5, 6}), b = EncoderInput.of(new int[]{7}), c = EncoderInput.of(new int[]{8, 9, 10});
        ForwardBatch withEncoders = new ForwardBatch(batch.tokenIds(), batch.positions(), batch.slotMapping(), batch.queryStarts(),
                batch.contextLengths(), batch.blockTables(), BLOCK, batch.logitRows(), null, null, null, java.util.List.of(a, b, c));
        ForwardBatch padded = capturedDecode().padded(withEncoders, 4, 1);
        assertEquals(java.util.List.of(a, b, c, a), padded.encoderInputs());
        assertEquals(null, capturedDecode().padded(batch, 4, 1).encoderInputs(), "a decoder-only batch stays without");
    }

    @Test
    void aTableThatGainedABlockIsCopiedAgainAndAnUnchangedOneIsNot() {
        CapturedDecode captured = capturedDecode();
        int[] a = {1}, b = {2, 3};
        ForwardBatch first = captured.padded(decode(a, b), 2, 4);
        int[] bGrown = {2, 3, 8};
        ForwardBatch second = captured.padded(decode(a, bGrown), 2, 4);
        assertSame(first.blockTables()[0], second.blockTables()[0], "the same table, padded once");
        assertArrayEquals(new int[]{2, 3, 8, 0}, second.blockTables()[1]);
        assertArrayEquals(new int[]{2, 3, 0, 0}, first.blockTables()[1], "an earlier batch is left as it was");
        // Another sequence in row 0, and longer tables for all.
        ForwardBatch third = captured.padded(decode(b, a), 2, 8);
        assertArrayEquals(new int[]{2, 3, 0, 0, 0, 0, 0, 0}, third.blockTables()[0]);
        assertArrayEquals(new int[]{1, 0, 0, 0, 0, 0, 0, 0}, third.blockTables()[1]);
    }
}
