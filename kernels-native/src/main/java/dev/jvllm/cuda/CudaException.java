package dev.jvllm.cuda;

import dev.jvllm.JvllmException;

/**
 * A CUDA, NVRTC or cuBLAS call that failed, or a library that could not be loaded. The message
 * names the call and the library's name for the error, e.g.
 * {@code cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)}.
 */
public class CudaException extends JvllmException {

    private final String call;
    private final String errorName;

    public CudaException(String call, String errorName, String description) {
        super(call + " failed: " + errorName + (description == null || description.isEmpty() ? "" : " (" + description + ")"));
        this.call = call;
        this.errorName = errorName;
    }

    public CudaException(String message) {
        super(message);
        this.call = "";
        this.errorName = "";
    }

    /** The library function that failed ("cuLaunchKernel"), or "" when no call did. */
    public String call() {
        return call;
    }

    /** The library's name for the error ("CUDA_ERROR_OUT_OF_MEMORY"), or "". */
    public String errorName() {
        return errorName;
    }
}
