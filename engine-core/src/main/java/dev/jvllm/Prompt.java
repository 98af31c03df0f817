package dev.jvllm;

import java.util.List;

/**
 * A prompt: text to be tokenized, or token ids given directly (vLLM's TokensPrompt), optionally with
 * images for a vision-language model (vLLM's {@code multi_modal_data}). Each image goes where the
 * prompt holds the model's image placeholder ({@code <image>} for LLaVA), in order. For an
 * encoder-decoder model (BART) a plain prompt is the encoder's, and the decoder starts from its start
 * token; {@link #encoderDecoder} gives the decoder a prompt of its own (vLLM's ExplicitEncoderDecoderPrompt).
 *
 * <p>A prompt may carry a cache salt ({@link #withCacheSalt}, vLLM's {@code cache_salt}) that keeps
 * its blocks in the prefix cache apart: requests whose salts differ never share cached blocks (so a
 * tenant can neither reuse nor time another's cached prefix), requests of one salt share them as
 * before, and requests without a salt share one pool.
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

    /** The most characters a {@linkplain #withCacheSalt cache salt} may have. */
    int MAX_CACHE_SALT_LENGTH = 256;

    /** The prompt's {@linkplain #withCacheSalt cache salt}, or null for none (the shared pool). */
    String cacheSalt();

    /**
     * This prompt with a cache salt (vLLM's {@code cache_salt}), e.g. a tenant's id:
     * {@code Prompt.text("...").withCacheSalt("tenant-a")}. Prefix-cache blocks are shared only
     * between requests of equal salts: a request salted differently (or not at all) never reuses
     * this one's cached blocks, nor this one theirs, so it cannot tell from its latency what another
     * tenant asked. Requests of one salt share as unsalted ones do. Outputs are the same either way.
     * The salt is a key only, never part of the model's input. For an encoder-decoder prompt it goes
     * on the encoder's prompt. Null takes the salt away.
     *
     * @throws InvalidRequestException (field {@code "cacheSalt"}) where the salt is empty or longer
     *                                 than {@value #MAX_CACHE_SALT_LENGTH} characters
     */
    Prompt withCacheSalt(String cacheSalt);

    /** {@code salt} where it is null or a valid cache salt. */
    private static String checkCacheSalt(String salt) {
        if (salt == null) return null;
        if (salt.isEmpty()) {
            throw new InvalidRequestException("cacheSalt", "cacheSalt must not be empty; leave it out (null) for the shared prefix cache");
        }
        if (salt.length() > MAX_CACHE_SALT_LENGTH) {
            throw new InvalidRequestException("cacheSalt", "cacheSalt has " + salt.length() + " characters; at most "
                    + MAX_CACHE_SALT_LENGTH);
        }
        return salt;
    }

    /** @param cacheSalt see {@link #withCacheSalt}; null for none */
    record Text(String text, List<ImageInput> images, String cacheSalt) implements Prompt {
        public Text {
            images = List.copyOf(images);
            checkCacheSalt(cacheSalt);
        }

        public Text(String text, List<ImageInput> images) {
            this(text, images, null);
        }

        public Text(String text) {
            this(text, List.of());
        }

        @Override
        public Text withCacheSalt(String cacheSalt) {
            return new Text(text, images, cacheSalt);
        }
    }

    /** @param cacheSalt see {@link #withCacheSalt}; null for none */
    record Tokens(int[] tokenIds, List<ImageInput> images, String cacheSalt) implements Prompt {
        public Tokens {
            images = List.copyOf(images);
            checkCacheSalt(cacheSalt);
        }

        public Tokens(int[] tokenIds, List<ImageInput> images) {
            this(tokenIds, images, null);
        }

        public Tokens(int[] tokenIds) {
            this(tokenIds, List.of());
        }

        @Override
        public Tokens withCacheSalt(String cacheSalt) {
            return new Tokens(tokenIds, images, cacheSalt);
        }
    }

    /** Its images and its cache salt are the encoder prompt's. */
    record EncoderDecoder(Prompt encoder, Prompt decoder) implements Prompt {
        public EncoderDecoder {
            java.util.Objects.requireNonNull(encoder, "encoder");
            java.util.Objects.requireNonNull(decoder, "decoder");
            if (encoder instanceof EncoderDecoder || decoder instanceof EncoderDecoder) {
                throw new IllegalArgumentException("an encoder or decoder prompt cannot hold another encoder-decoder prompt");
            }
            if (!decoder.images().isEmpty()) throw new IllegalArgumentException("a decoder prompt takes no images");
            if (decoder.cacheSalt() != null) {
                throw new IllegalArgumentException("a decoder prompt takes no cache salt; give it to the encoder prompt or the whole prompt");
            }
        }

        @Override
        public List<ImageInput> images() {
            return encoder.images();
        }

        @Override
        public String cacheSalt() {
            return encoder.cacheSalt();
        }

        @Override
        public EncoderDecoder withCacheSalt(String cacheSalt) {
            return new EncoderDecoder(encoder.withCacheSalt(cacheSalt), decoder);
        }
    }
}
