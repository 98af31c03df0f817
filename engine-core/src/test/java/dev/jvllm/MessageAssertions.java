package dev.jvllm;

import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Assertions on what an error tells its reader. */
public final class MessageAssertions {

    private MessageAssertions() {
    }

    /** Asserts that {@code action} throws {@code type} with a message containing every fragment. */
    public static <T extends Throwable> T assertThrowsNaming(Class<T> type, Executable action, String... fragments) {
        T thrown = assertThrows(type, action);
        for (String fragment : fragments) {
            assertTrue(thrown.getMessage() != null && thrown.getMessage().contains(fragment),
                    () -> "message should name '" + fragment + "': " + thrown.getMessage());
        }
        return thrown;
    }
}
