package dev.jvllm.tokenizer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;

/**
 * Lowers the scheduling priority of the calling thread, for work that should only take cores
 * nothing else wants: on Linux, {@code setpriority(PRIO_PROCESS, 0, 19)}, which there applies to
 * the calling thread alone (the nice value is per thread), needs no privilege and ends with the
 * thread. Java's own {@link Thread#setPriority} is ignored on Linux. Elsewhere, or when the call
 * is refused, nothing changes.
 */
final class BackgroundPriority {

    private static final Logger log = LoggerFactory.getLogger(BackgroundPriority.class);
    private static final int PRIO_PROCESS = 0;
    private static final int LOWEST = 19;

    private BackgroundPriority() {
    }

    /** Gives the calling thread the lowest priority; true if it now has it. */
    static boolean lowerCurrentThread() {
        if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
            return false;
        }
        try {
            Linker linker = Linker.nativeLinker();
            MethodHandle setpriority = linker.downcallHandle(linker.defaultLookup().find("setpriority").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            return (int) setpriority.invokeExact(PRIO_PROCESS, 0, LOWEST) == 0;
        } catch (Throwable e) {
            log.debug("cannot lower the priority of {}: {}", Thread.currentThread().getName(), e.toString());
            return false;
        }
    }
}
