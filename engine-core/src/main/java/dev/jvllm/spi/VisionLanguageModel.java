package dev.jvllm.spi;

import dev.jvllm.ImageInput;

/**
 * A {@link CausalLM} that also reads images (LLaVA): a prompt holds a placeholder token where each
 * image goes, which the engine expands to {@link #imageTokenCount} copies; the model replaces those
 * positions' input vectors by the image's features, found through {@code ForwardBatch.images()}.
 */
public interface VisionLanguageModel {

    /** The placeholder token id (config.json's {@code image_token_index}). */
    int imageTokenId();

    /** How many placeholder positions the image takes in the prompt. */
    int imageTokenCount(ImageInput image);
}
