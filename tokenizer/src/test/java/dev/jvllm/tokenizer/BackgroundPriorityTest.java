package dev.jvllm.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BackgroundPriorityTest {

    @Test
    @EnabledOnOs(OS.LINUX)
    void onlyTheLoweredThreadRunsAtTheLowestPriority() throws Exception {
        int callerNice = niceOfCurrentThread();
        AtomicInteger loweredNice = new AtomicInteger(Integer.MIN_VALUE);
        Thread lowered = Thread.ofPlatform().start(() -> {
            assertTrue(BackgroundPriority.lowerCurrentThread());
            loweredNice.set(niceOfCurrentThread());
        });
        lowered.join();

        assertEquals(19, loweredNice.get());
        assertEquals(callerNice, niceOfCurrentThread());
    }

    /** Field 19 of /proc/thread-self/stat, after the parenthesised command name (which may hold spaces). */
    private static int niceOfCurrentThread() {
        try {
            String stat = Files.readString(Path.of("/proc/thread-self/stat"));
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return Integer.parseInt(fields[16]);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
