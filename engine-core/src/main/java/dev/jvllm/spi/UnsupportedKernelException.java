package dev.jvllm.spi;

import dev.jvllm.JvllmException;

/** A {@link Backend} that does not (yet) implement a kernel a model asked for. */
public final class UnsupportedKernelException extends JvllmException {

    private final String backend;
    private final String kernel;

    public UnsupportedKernelException(String backend, String kernel, String detail) {
        super("the " + backend + " backend does not implement " + kernel + (detail.isEmpty() ? "" : ": " + detail));
        this.backend = backend;
        this.kernel = kernel;
    }

    /** "cuda", "cpu", ... */
    public String backend() {
        return backend;
    }

    /** The {@link Backend} method, e.g. "latentAttention". */
    public String kernel() {
        return kernel;
    }
}
