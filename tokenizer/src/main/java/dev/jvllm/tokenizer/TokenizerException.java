package dev.jvllm.tokenizer;

/**
 * A tokenizer could not be loaded or used: a missing or malformed {@code tokenizer.json} or
 * {@code tokenizer_config.json}, a token id outside the vocabulary, or a failure of the native
 * tokenizers library. The message names the file or the value at fault.
 */
public class TokenizerException extends RuntimeException {

    public TokenizerException(String message) {
        super(message);
    }

    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
