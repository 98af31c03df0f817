package dev.jvllm;

import java.util.List;

/**
 * A prompt: text to be tokenized, or token ids given directly (vLLM's TokensPrompt), optionally with
 * images for a vision-language model (vLLM's {@code multi_modal_data}). Each image goes where the
 * prompt holds the model's image placeholder ({@code <image>} for LLaVA), in order. For an
 * encoder-decoder model (BART) a plain prompt is the encoder's, and the decoder starts from its start
 * token; {@link #encoderDecoder} gives the decoder a prompt of its own (vLLM's ExplicitEncoderDecoderPrompt).
 */
public sealed interface Prompt {

    static Prompt text(String text) {
        return new Text(text, List.of());
    }

    /** Text holding one image placeholder per image, e.g. {@code "USER: <image>\nWhat is shown? ASSISTANT:"}. */
    static Prompt text(String text, List<ImageInput> images) {
        return new Text(text, images);
    }

    static Prompt tokens(int... tokenIds) {
        return new Tokens(tokenIds.clone(), List.of());
    }

    /** Token ids holding the model's image placeholder id once per image (or already expanded to each image's length). */
    static Prompt tokens(int[] tokenIds, List<ImageInput> images) {
        return new Tokens(tokenIds.clone(), images);
    }

    /**
     * An encoder-decoder model's prompt: {@code encoder} (text or token ids) for its encoder, and the
     * decoder's first tokens, to which the model's decoder start token is put in front where they do not begin with it.
     */
    static Prompt encoderDecoder(Prompt encoder, int... decoderTokenIds) {
        return new EncoderDecoder(encoder, tokens(decoderTokenIds));
    }

    /**
     * As {@link #encoderDecoder(Prompt, int...)}, the decoder's prompt as text or token ids; text is
     * tokenized without the special tokens the tokenizer adds around a whole input (the decoder goes on from it).
     */
    static Prompt encoderDecoder(Prompt encoder, Prompt decoder) {
        return new EncoderDecoder(encoder, decoder);
    }

    /** The images of the prompt, in the order of their placeholders; empty for text alone. */
    List<ImageInput> images();

    record Text(String text, List<ImageInput> images) implements Prompt {
        public Text {
            images = List.copyOf(images);
        }

        public Text(String text) {
            this(text, List.of());
        }
    }

    record Tokens(int[] tokenIds, List<ImageInput> images) implements Prompt {
        public Tokens {
            images = List.copyOf(images);
        }

        public Tokens(int[] tokenIds) {
            this(tokenIds, List.of());
        }
    }

    record EncoderDecoder(Prompt encoder, Prompt decoder) implements Prompt {
        public EncoderDecoder {
            java.util.Objects.requireNonNull(encoder, "encoder");
            java.util.Objects.requireNonNull(decoder, "decoder");
            if (encoder instanceof EncoderDecoder || decoder instanceof EncoderDecoder) {
                throw new IllegalArgumentException("an encoder or decoder prompt cannot hold another encoder-decoder prompt");
            }
            if (!decoder.images().isEmpty()) throw new IllegalArgumentException("a decoder prompt takes no images");
        }

        @Override
        public List<ImageInput> images() {
            return encoder.images();
        }
    }
}
