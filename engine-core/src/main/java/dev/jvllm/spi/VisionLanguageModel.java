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

    /**
     * Refuses, when a request arrives, an image the model's preprocessing could not make (too thin
     * to resize, past the processor's budget), so that no image fails inside a forward pass. None by default.
     *
     * @throws dev.jvllm.InvalidRequestException (field {@code "image"}) naming why
     */
    default void checkImage(ImageInput image) {
    }

    /**
     * Encodes and keeps the features of these images, those not kept already, before the forward
     * pass that places them: the engine calls it for a step's new images so that a failure is
     * found before the pass and ends only the requests whose images fail, where a failure inside
     * the pass ends every request of the step. A failed call keeps none of its images. Nothing by
     * default (the forward pass encodes).
     */
    default void encodeImages(java.util.List<ImageInput> images) {
    }

    /**
     * Allocates, before the engine sizes the KV cache from the device memory left, what a step
     * with images needs beyond a text step: room to keep the features of images covering
     * {@code promptTokensAStep} placeholder positions, and the vision tower's buffers for its
     * largest pass, run once on blank images of the largest kind (vLLM profiles with its largest
     * multimodal inputs too). Nothing by default.
     */
    default void reserveImageMemory(int promptTokensAStep) {
    }

    /** How many upcoming images the engine names to {@link #prepareImages} at the most. */
    int IMAGES_PREPARED_AHEAD = 8;

    /**
     * Starts the host preprocessing of the images the next steps will reach ({@code upcoming}, in the
     * order they will; at most {@link #IMAGES_PREPARED_AHEAD}), in the background, so that a step's
     * encode finds it done; called by the engine's thread after it queues a step, while the device
     * runs it, and with none when the engine is idle. Images no longer upcoming are forgotten.
     * Nothing by default.
     */
    default void prepareImages(java.util.List<dev.jvllm.ImageInput> upcoming) {
    }

    /**
     * The most feature rows the images one step's prompt chunks touch may take together (each image
     * counted once, whole, however few of its placeholders the step computes): the rows kept for image
     * features, which the scheduler then never outgrows, so that a step allocates nothing after
     * {@link #reserveImageMemory}. One image alone is always scheduled. No limit by default.
     */
    default int imageFeatureRowsAStep() {
        return Integer.MAX_VALUE;
    }

    /**
     * The token the engine puts before each image's placeholders where the prompt does not have it
     * there already (InternVL's {@code <img>}), or -1 for none (LLaVA).
     */
    default int imageStartTokenId() {
        return -1;
    }

    /** The token after each image's placeholders (InternVL's {@code </img>}), or -1 for none. */
    default int imageEndTokenId() {
        return -1;
    }

    /**
     * The placeholder as prompt text, which the tokenizer turns into {@link #imageTokenId}: what a
     * chat goes through a template that takes content as a string puts in a message once per image,
     * on a line of its own before the text (vLLM's placeholder string). {@code LLM} takes the
     * tokenizer's own text for the image token where the tokenizer has it as a special token, and
     * this otherwise. Default {@code "<image>"}, LLaVA's.
     */
    default String imagePlaceholderText() {
        return "<image>";
    }

    /**
     * Where the model's processor marks images in prompt text with numbered tags rather than with
     * one token (Phi-3-Vision's {@code <|image_1|>}, {@code <|image_2|>}, ...): the tags' pattern, its
     * first group the image's number from 1. The engine ({@code LLMEngine.textPrompt}) then tokenizes
     * a text prompt with images as that processor does, the pieces between tags apart (each with the
     * tokenizer's special tokens) and each tag as {@link #imageTokenId}, binding the images by number,
     * and a chat writes image {@code n}'s tag as {@link #numberedImageTag}. Null by default: the
     * placeholder is a token of the tokenizer.
     */
    default java.util.regex.Pattern numberedImageTags() {
        return null;
    }

    /** Image {@code number}'s tag (from 1), where {@link #numberedImageTags} is not null. */
    default String numberedImageTag(int number) {
        throw new UnsupportedOperationException("this model's images have no numbered tags");
    }
}
