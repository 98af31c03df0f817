package dev.jvllm.models.layers;

import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.engine.PromptImage;

import java.util.function.Function;

/**
 * Multimodal rotary positions (M-RoPE, Qwen2-VL, arXiv:2409.12191): the rotated pairs fall into
 * sections ({@code mrope_section}) turned by a token's temporal, height and width position in turn.
 * A text token has the same position in all three: its place in the sequence, less what the images
 * before it saved (an image of h × w merged patches advances the positions by max(h, w), not h·w).
 * An image token's positions are its row and column in the image's grid, from the image's start.
 */
final class MultimodalRope {

    /** The positions of a step's tokens: one table row each, or for image tokens their own rows. */
    record Rows(int[] positions, float[] ownRows) {
    }

    private final int[] sectionOfPair;
    private final double[] invFreq;
    private final double magnitude;
    private Function<ImageInput, int[]> grid;

    /**
     * @param sections pairs a section, in order (t, h, w, t, ...); they must add up to dim / 2
     */
    MultimodalRope(int[] sections, double[] invFreq, double magnitude) {
        int total = 0;
        for (int s : sections) total += s;
        if (total != invFreq.length) {
            throw new ConfigException("mrope_section " + java.util.Arrays.toString(sections) + " covers " + total
                    + " rotary pairs; the heads rotate " + invFreq.length);
        }
        this.sectionOfPair = new int[invFreq.length];
        for (int s = 0, pair = 0; s < sections.length; s++) {
            for (int k = 0; k < sections[s]; k++) sectionOfPair[pair++] = s % 3;
        }
        this.invFreq = invFreq;
        this.magnitude = magnitude;
    }

    /** How the model lays an image's tokens out: {temporal, height, width} merged patches. */
    void bindImageGrid(Function<ImageInput, int[]> imageGrid) {
        this.grid = imageGrid;
    }

    Rows rows(ForwardBatch batch) {
        int[] positions = batch.positions().clone();
        if (grid == null || batch.promptImages() == null) return new Rows(positions, null);
        int[][] imagePositions = null;  // t, h, w of the step's image tokens
        for (int s = 0; s < batch.numSequences(); s++) {
            var images = batch.promptImagesOf(s);
            if (images.isEmpty()) continue;
            // Each image's grid, and the positions the images before it saved, once a sequence.
            int[][] grids = new int[images.size()][];
            int[] savedBefore = new int[images.size() + 1];
            for (int i = 0; i < images.size(); i++) {
                grids[i] = grid.apply(images.get(i).image());
                savedBefore[i + 1] = savedBefore[i] + images.get(i).length() - Math.max(grids[i][1], grids[i][2]);
            }
            int image = 0;  // the first image not wholly before the token: a step's positions ascend within a sequence
            for (int token = batch.queryStarts()[s]; token < batch.queryStarts()[s + 1]; token++) {
                int p = batch.positions()[token];
                while (image < images.size() && p >= images.get(image).end()) image++;
                int saved = savedBefore[image];
                if (image < images.size() && p >= images.get(image).start()) {
                    if (imagePositions == null) imagePositions = new int[batch.numTokens()][];
                    int[] g = grids[image];
                    int k = p - images.get(image).start(), base = images.get(image).start() - saved, plane = g[1] * g[2];
                    imagePositions[token] = new int[]{base + k / plane, base + k % plane / g[2], base + k % g[2]};
                }
                positions[token] = p - saved;
            }
        }
        if (imagePositions == null) return new Rows(positions, null);
        int half = invFreq.length, dim = 2 * half;
        float[] own = new float[batch.numTokens() * dim];
        for (int token = 0; token < batch.numTokens(); token++) {
            int[] thw = imagePositions[token];
            for (int i = 0; i < half; i++) {
                double angle = (thw == null ? positions[token] : thw[sectionOfPair[i]]) * invFreq[i];
                own[token * dim + i] = (float) (Math.cos(angle) * magnitude);
                own[token * dim + half + i] = (float) (Math.sin(angle) * magnitude);
            }
        }
        return new Rows(positions, own);
    }
}
