package dev.jvllm;

/**
 * A request asked for something jvllm will not do: a sampling parameter out of range, a token id
 * outside the vocabulary, too many stop strings. Only that request fails; the message names the
 * offending field and value and never carries internal details, so servers may return it verbatim
 * (for example as an HTTP 400).
 */
public class InvalidRequestException extends JvllmException {

    private final String field;

    /**
     * @param field   the parameter at fault, as named by its builder method (for example {@code "topP"})
     * @param message the complete message, naming the field and the value received
     */
    public InvalidRequestException(String field, String message) {
        super(message);
        this.field = field;
    }

    /** The parameter at fault, as named by its builder method (for example {@code "topP"}). */
    public String field() {
        return field;
    }
}
