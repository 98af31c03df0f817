package dev.jvllm.engine;

import dev.jvllm.ImageInput;

/**
 * An image of a prompt and where its placeholder tokens lie: prompt positions
 * {@code [start, start + length)}, whose input vectors are the image's features, row
 * {@code position - start} for each.
 */
public record PromptImage(int start, int length, ImageInput image) {

    public PromptImage {
        if (start < 0 || length < 1) {
            throw new IllegalArgumentException("image placeholder span [" + start + ", +" + length + ") is empty or negative");
        }
    }

    /** One past the last placeholder position. */
    public int end() {
        return start + length;
    }

    /** Whether the positions {@code [from, to)} hold any of this image's placeholders. */
    public boolean overlaps(int from, int to) {
        return from < end() && start < to;
    }
}
