package dev.jvllm.server;

/**
 * An error answered in OpenAI's shape, {@code {"error": {"message", "type", "param", "code"}}}, with
 * its HTTP status. The message says what was wrong with the request; it never carries a stack trace.
 */
final class ApiError extends RuntimeException {

    final int status;
    final String type;
    final String param;

    ApiError(int status, String type, String message, String param) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
    }

    static ApiError invalid(String param, String message) {
        return new ApiError(400, "invalid_request_error", message, param);
    }

    static ApiError notFound(String message) {
        return new ApiError(404, "not_found_error", message, null);
    }
}
