package dev.jvllm.tokenizer;

/**
 * A chat template could not be compiled or rendered. {@link #reason()} tells whether the template
 * is malformed, rejected the conversation itself ({@code raise_exception}), failed while running,
 * or hit one of the limits that protect the caller from an untrusted template.
 */
public class ChatTemplateException extends RuntimeException {

    /** Why compiling or rendering failed. */
    public enum Reason {
        /** The template is not valid Jinja, or uses a feature this engine does not support. */
        SYNTAX,
        /** The template called {@code raise_exception(message)}, e.g. for roles out of order. */
        RAISED_BY_TEMPLATE,
        /** An error while rendering: an undefined value used, a type error, a forbidden call. */
        RENDER,
        /** Rendering ran past the time limit and was stopped. */
        TIMEOUT,
        /** The output, a string, a list or a range grew past its limit. */
        LIMIT_EXCEEDED,
        /** A variable passed in is not a plain Map/List/String/Number/Boolean/null value. */
        BAD_INPUT
    }

    private final Reason reason;

    public ChatTemplateException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public ChatTemplateException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
