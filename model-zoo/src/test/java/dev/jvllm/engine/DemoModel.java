package dev.jvllm.engine;

import java.nio.file.Files;
import java.nio.file.Path;

/** The repository's demo model, found from a module directory (Maven) or the repository root (the GPU test script). */
public final class DemoModel {

    private DemoModel() {
    }

    public static Path path() {
        Path fromModule = Path.of("../models/jvllm-demo");
        return Files.isDirectory(fromModule) ? fromModule : Path.of("models/jvllm-demo");
    }
}
