package dev.jvllm.engine;

import dev.jvllm.EngineConfig;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.EncoderDecoderModel;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;

/**
 * Runs decode steps through {@link Backend#runCaptured}, as vLLM runs them through CUDA graphs: a
 * step whose sequences each add one token is padded to the next of a few batch sizes (1, 2, 4,
 * then multiples of 8 up to 256 and of 16 up to 512), and its block tables to the next power of
 * two of entries, so that the steps of one padded shape launch the same work and one recording
 * serves them all. Padding sequences write no KV-cache slot (slot -1) and their logits are cut off.
 * An encoder-decoder model's decode steps are recorded too, once their encoder inputs' outputs are
 * kept ({@link EncoderDecoderModel#keepsEncoderOutputs}); its padding sequences attend to the first
 * sequence's encoder input.
 *
 * <p>A step in which every sequence verifies as many guesses (speculative decoding: {@link Scheduler}
 * pads them to one count where the step is small) is recorded the same way, its sequences padded
 * alike, each of {@code 1 + K} tokens; up to {@link #LARGEST_GUESSING_STEP} tokens once padded.
 *
 * <p>Prompt steps, steps of more sequences than the largest size, and every step with
 * {@link EngineConfig#enforceEager} or on a backend that records nothing run as they are.
 */
final class CapturedDecode {

    static final int LARGEST_BATCH = 512;

    /**
     * The most tokens (padded sequences × tokens each) of a recorded step whose sequences each verify
     * guesses (speculative decoding): where several rows a sequence are still bound by reading the weights.
     */
    static final int LARGEST_GUESSING_STEP = 64;

    /**
     * The padded shape of a decode step: what one recording serves. With async scheduling, steps
     * take turns between two recordings of each shape ({@code copy} 0 and 1), so that a step can
     * write its uploads while the recording of the step before it may still be running.
     */
    record Shape(int sequences, int blockTableEntries, int copy, int tokensEach) {
        @Override
        public String toString() {
            return "decode of " + sequences + " sequences" + (tokensEach == 1 ? "" : " of " + tokensEach + " tokens each")
                    + " with block tables of " + blockTableEntries + " blocks" + (copy == 0 ? "" : " (copy " + copy + ")");
        }
    }

    private final Backend backend;
    /** Null where the engine has no model (tests of the padding alone). */
    private final CausalLM model;
    private final boolean enabled;
    private final int largestBatch;
    /** Whether steps take turns between two recordings per shape (async scheduling). */
    private final boolean alternating;
    private int nextCopy;
    /**
     * By row, the block tables of the last padded step and their padded copies: a sequence's table
     * array changes only when it gains a block (see {@link BlockTable#toArray}), so most rows reuse
     * their copy instead of copying every table at every step.
     */
    private int[][] copiedTables = new int[0][];
    private int[][] paddedTables = new int[0][];

    CapturedDecode(Backend backend, CausalLM model, EngineConfig config) {
        this.backend = backend;
        this.model = model;
        this.enabled = !config.enforceEager() && backend.capturesGraphs();
        this.largestBatch = Math.min(LARGEST_BATCH, paddedSize(config.maxNumSeqs()));
        this.alternating = LLMEngine.schedulesAhead(config, backend);
    }

    /** The most tokens a step whose sequences verify guesses may have to be recorded ({@link #LARGEST_GUESSING_STEP}); 0 where nothing is. */
    int largestGuessingStep() {
        return enabled ? LARGEST_GUESSING_STEP : 0;
    }

    /** The logits of {@code batch}'s logit rows, from {@code pass} run on the batch or on its padded form; a decode step's. */
    Tensor forward(ForwardBatch batch, Function<ForwardBatch, Tensor> pass) {
        return forward(batch, false, pass);
    }

    /**
     * As {@link #forward(ForwardBatch, Function)}; {@code verifiesGuesses}: every sequence of the step
     * verifies guesses after its one known token, so a step of several tokens each may be recorded too
     * (a prompt chunk with prompt logprobs may have the same form, and is not recorded).
     */
    Tensor forward(ForwardBatch batch, boolean verifiesGuesses, Function<ForwardBatch, Tensor> pass) {
        int tokensEach = enabled ? tokensEach(batch) : 0;
        if (tokensEach == 0 || tokensEach > 1 && !verifiesGuesses || !recordable(batch, tokensEach)
                || batch.numSequences() > largestBatch) {
            return pass.apply(batch);
        }
        int sequences = batch.numSequences();
        ForwardBatch padded = padded(batch, paddedSize(sequences), tableEntries(batch));
        int copy = 0;
        if (alternating) {
            copy = nextCopy;
            nextCopy ^= 1;
        }
        Shape shape = new Shape(padded.numSequences(), padded.blockTables()[0].length, copy, tokensEach);
        return backend.runCaptured(shape, () -> pass.apply(padded)).rows(0, sequences * tokensEach);
    }

    /**
     * A step whose pass launches the same work each time: of an encoder-decoder model, only where no
     * encoder input of the step needs the encoder (a graph replays no encoder); one whose sequences
     * verify guesses, only of a decoder-only model and up to {@link #LARGEST_GUESSING_STEP} tokens once padded.
     */
    private boolean recordable(ForwardBatch batch, int tokensEach) {
        if (tokensEach > 1) {
            return batch.encoderInputs() == null && (long) paddedSize(batch.numSequences()) * tokensEach <= LARGEST_GUESSING_STEP;
        }
        return batch.encoderInputs() == null
                || model instanceof EncoderDecoderModel encoderDecoder && encoderDecoder.keepsEncoderOutputs(batch);
    }

    /** One new token per sequence, each wanting its logits, in order, none an image's (a graph replays no encoder). */
    static boolean decodeOnly(ForwardBatch batch) {
        return tokensEach(batch) == 1;
    }

    /**
     * The tokens each sequence adds where every sequence adds as many, at consecutive positions, each
     * token wanting its logits, in order, none an image's: 1 for a decode step, 1 + K for a step in which
     * each sequence verifies K guesses. 0 for any other step.
     */
    static int tokensEach(ForwardBatch batch) {
        int n = batch.numSequences();
        int tokens = batch.numTokens();
        if (n == 0 || tokens % n != 0 || batch.logitRows().length != tokens || batch.images() != null) return 0;
        int each = tokens / n;
        for (int t = 0; t < tokens; t++) {
            if (batch.logitRows()[t] != t) return 0;
        }
        for (int s = 0; s < n; s++) {
            int start = batch.queryStarts()[s];
            if (start != s * each) return 0;
            for (int i = 1; i < each; i++) {
                if (batch.positions()[start + i] != batch.positions()[start] + i) return 0;
            }
        }
        return each;
    }

    /** The batch size a step of {@code sequences} is padded to. */
    static int paddedSize(int sequences) {
        if (sequences <= 2) return Math.max(1, sequences);
        if (sequences <= 4) return 4;
        if (sequences <= 256) return (sequences + 7) / 8 * 8;
        return (sequences + 15) / 16 * 16;
    }

    private static int tableEntries(ForwardBatch batch) {
        int longest = 1;
        for (int[] table : batch.blockTables()) longest = Math.max(longest, table.length);
        return longest == 1 ? 1 : Integer.highestOneBit(longest - 1) << 1;
    }

    /**
     * {@code batch} (a step of {@link #tokensEach} tokens a sequence) with padding sequences up to
     * {@code size} (token 0 at positions 0, 1, ..., written nowhere, reading block 0, taking no
     * sampled token, with the first sequence's encoder input if any) and every block table
     * {@code entries} long.
     */
    ForwardBatch padded(ForwardBatch batch, int size, int entries) {
        int n = batch.numSequences();
        int each = batch.numTokens() / n;
        int[] ids = Arrays.copyOf(batch.tokenIds(), size * each);
        int[] positions = Arrays.copyOf(batch.positions(), size * each);
        int[] slots = Arrays.copyOf(batch.slotMapping(), size * each);
        int[] starts = new int[size + 1];
        int[] contexts = Arrays.copyOf(batch.contextLengths(), size);
        int[][] tables = new int[size][];
        int[] logitRows = new int[size * each];
        if (copiedTables.length < size) {
            copiedTables = Arrays.copyOf(copiedTables, size);
            paddedTables = Arrays.copyOf(paddedTables, size);
        }
        int[] paddingTable = new int[entries];  // one array for every padding sequence: nothing writes a batch's arrays
        for (int t = 0; t < logitRows.length; t++) logitRows[t] = t;
        for (int s = 0; s < size; s++) {
            starts[s + 1] = (s + 1) * each;
            int[] table = s < n ? batch.blockTables()[s] : paddingTable;
            if (table.length == entries) {
                tables[s] = table;
            } else if (copiedTables[s] == table && paddedTables[s].length == entries) {
                tables[s] = paddedTables[s];
            } else {
                tables[s] = Arrays.copyOf(table, entries);
                copiedTables[s] = table;
                paddedTables[s] = tables[s];
            }
            if (s >= n) {
                for (int i = 0; i < each; i++) {
                    positions[s * each + i] = i;
                    slots[s * each + i] = -1;
                }
                contexts[s] = each;
            }
        }
        int[] sampledRows = null;
        if (batch.sampledTokenRows() != null) {
            sampledRows = Arrays.copyOf(batch.sampledTokenRows(), size * each);
            Arrays.fill(sampledRows, n * each, size * each, -1);
        }
        List<List<PromptImage>> promptImages = null;
        if (batch.promptImages() != null) {
            promptImages = new ArrayList<>(batch.promptImages());
            promptImages.addAll(Collections.nCopies(size - n, List.of()));
        }
        List<EncoderInput> encoderInputs = null;
        if (batch.encoderInputs() != null) {
            encoderInputs = new ArrayList<>(batch.encoderInputs());
            encoderInputs.addAll(Collections.nCopies(size - n, batch.encoderInputOf(0)));
        }
        return new ForwardBatch(ids, positions, slots, starts, contexts, tables, batch.blockSize(), logitRows, sampledRows,
                null, promptImages, encoderInputs);
    }
}
