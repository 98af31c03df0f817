package dev.jvllm.engine;

import java.util.Arrays;
import java.util.List;

/**
 * One forward pass over a flattened mixed batch: the new tokens of every scheduled sequence
 * (prefill chunks and single decode tokens alike) laid end to end.
 *
 * @param tokenIds       the T new tokens; -1 where sampledTokenRows gives a row (models read them
 *                       through {@link dev.jvllm.spi.Backend#tokenIds}, which fills those in)
 * @param positions      each token's position in its sequence
 * @param slotMapping    the KV-cache slot each token's key and value are written to
 * @param queryStarts    S + 1 offsets: sequence s owns tokens [queryStarts[s], queryStarts[s+1])
 * @param contextLengths per sequence, the tokens in its context once this step's are added
 * @param blockTables    per sequence, the cache blocks holding its context in order
 * @param blockSize      token slots per block
 * @param logitRows      the tokens (indices into the T) whose logits the caller wants, in order
 * @param sampledTokenRows null, or per token the row of the last {@link dev.jvllm.spi.Backend#argmaxRowsAsync}
 *                       result its id is taken from on the device (-1: its id is in tokenIds): the
 *                       tokens of a step launched before the step ahead was read back (async scheduling)
 * @param images         null when no sequence of the batch has images; else per sequence the images of
 *                       its prompt whose placeholders lie among this step's positions (vision-language models)
 * @param promptImages   null when no sequence of the batch has images; else per sequence all of its prompt's
 *                       images, in every step (decode steps too): what positions that depend on the images
 *                       before them need (Qwen2-VL's M-RoPE)
 * @param encoderInputs  null for a decoder-only model; else per sequence its encoder input, in every step
 *                       (an encoder-decoder model's cross-attention reads it at each)
 */
public record ForwardBatch(int[] tokenIds, int[] positions, int[] slotMapping, int[] queryStarts,
                           int[] contextLengths, int[][] blockTables, int blockSize, int[] logitRows,
                           int[] sampledTokenRows, List<List<PromptImage>> images, List<List<PromptImage>> promptImages,
                           List<EncoderInput> encoderInputs) {

    public ForwardBatch {
        int t = tokenIds.length;
        if (positions.length != t || slotMapping.length != t) {
            throw new IllegalArgumentException("token ids, positions and slot mapping differ in length");
        }
        if (sampledTokenRows != null && sampledTokenRows.length != t) {
            throw new IllegalArgumentException("sampled token rows and token ids differ in length");
        }
        int s = contextLengths.length;
        if (queryStarts.length != s + 1 || blockTables.length != s || queryStarts[s] != t || queryStarts[0] != 0) {
            throw new IllegalArgumentException("sequence offsets do not cover the " + t + " tokens");
        }
        if (images != null && images.size() != s) {
            throw new IllegalArgumentException(images.size() + " image lists for " + s + " sequences");
        }
        if (promptImages != null && promptImages.size() != s) {
            throw new IllegalArgumentException(promptImages.size() + " prompt image lists for " + s + " sequences");
        }
        if (encoderInputs != null && encoderInputs.size() != s) {
            throw new IllegalArgumentException(encoderInputs.size() + " encoder inputs for " + s + " sequences");
        }
    }

    /** A batch of a decoder-only model. */
    public ForwardBatch(int[] tokenIds, int[] positions, int[] slotMapping, int[] queryStarts,
                        int[] contextLengths, int[][] blockTables, int blockSize, int[] logitRows,
                        int[] sampledTokenRows, List<List<PromptImage>> images, List<List<PromptImage>> promptImages) {
        this(tokenIds, positions, slotMapping, queryStarts, contextLengths, blockTables, blockSize, logitRows,
                sampledTokenRows, images, promptImages, null);
    }

    /** A batch whose step's images are all of its prompts' images (each sequence's whole prompt, as a test's prefill). */
    public ForwardBatch(int[] tokenIds, int[] positions, int[] slotMapping, int[] queryStarts,
                        int[] contextLengths, int[][] blockTables, int blockSize, int[] logitRows,
                        int[] sampledTokenRows, List<List<PromptImage>> images) {
        this(tokenIds, positions, slotMapping, queryStarts, contextLengths, blockTables, blockSize, logitRows,
                sampledTokenRows, images, images);
    }

    /** A batch without images. */
    public ForwardBatch(int[] tokenIds, int[] positions, int[] slotMapping, int[] queryStarts,
                        int[] contextLengths, int[][] blockTables, int blockSize, int[] logitRows,
                        int[] sampledTokenRows) {
        this(tokenIds, positions, slotMapping, queryStarts, contextLengths, blockTables, blockSize, logitRows,
                sampledTokenRows, null, null);
    }

    /** A batch whose token ids are all known on the host. */
    public ForwardBatch(int[] tokenIds, int[] positions, int[] slotMapping, int[] queryStarts,
                        int[] contextLengths, int[][] blockTables, int blockSize, int[] logitRows) {
        this(tokenIds, positions, slotMapping, queryStarts, contextLengths, blockTables, blockSize, logitRows, null, null, null);
    }

    public int numTokens() {
        return tokenIds.length;
    }

    public int numSequences() {
        return contextLengths.length;
    }

    /** The images whose placeholders sequence {@code sequence} holds among this step's positions; empty for none. */
    public List<PromptImage> imagesOf(int sequence) {
        return images == null ? List.of() : images.get(sequence);
    }

    /** All of sequence {@code sequence}'s prompt images, whichever positions this step holds; empty for none. */
    public List<PromptImage> promptImagesOf(int sequence) {
        return promptImages == null ? List.of() : promptImages.get(sequence);
    }

    /** Sequence {@code sequence}'s encoder input; the batch must have them. */
    public EncoderInput encoderInputOf(int sequence) {
        if (encoderInputs == null) throw new IllegalStateException("the batch has no encoder inputs");
        return encoderInputs.get(sequence);
    }

    public int queryLength(int sequence) {
        return queryStarts[sequence + 1] - queryStarts[sequence];
    }

    @Override
    public String toString() {
        return "ForwardBatch[tokens=" + numTokens() + ", sequences=" + numSequences()
                + ", contexts=" + Arrays.toString(contextLengths) + "]";
    }
}
