package dev.jvllm.hub;

import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/** Which files of a model repository jvllm downloads, and which names it will write at all. */
final class ModelFiles {

    private static final int MAX_NAME_LENGTH = 1024;
    /** Weight formats jvllm does not read: fetching them would only cost time and disk. */
    private static final Set<String> OTHER_WEIGHT_SUFFIXES = Set.of(".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack",
            ".onnx", ".onnx_data", ".gguf", ".ggml", ".tflite", ".ot", ".npz", ".pb", ".mlmodel", ".pdparams", ".nemo");
    /**
     * Code a repository may carry for trust_remote_code ({@code modeling_*.py}, ...) or for its own tools: jvllm
     * never runs it, so it is not fetched either (a copy in the shared cache is one less thing to be run by mistake).
     */
    private static final Set<String> CODE_SUFFIXES = Set.of(".py", ".pyc", ".pyo", ".so", ".dylib", ".dll", ".exe",
            ".sh", ".bat", ".ps1", ".jar", ".class");

    private ModelFiles() {
    }

    /**
     * The files jvllm reads, of those the repository has: those at its top (configs, tokenizer,
     * safetensors weights) and the JSON files of its folders, without other weight formats, code or
     * anything under {@code original/}. Refuses a repository with no safetensors weights at its top.
     */
    static List<String> toFetch(String model, String revision, List<String> files) {
        if (files.stream().noneMatch(f -> !f.contains("/") && f.endsWith(".safetensors"))) {
            String shown = files.stream().limit(12).collect(Collectors.joining(", "));
            throw new HubDownloadException(model + " at " + revision + " has no safetensors weights (its files: " + shown
                    + (files.size() > 12 ? ", ..." : "") + "); jvllm reads weights in safetensors only");
        }
        return files.stream().filter(ModelFiles::isWanted).toList();
    }

    static boolean isWeights(String file) {
        return file.endsWith(".safetensors");
    }

    private static boolean isWanted(String file) {
        String name = file.substring(file.lastIndexOf('/') + 1);
        String lower = name.toLowerCase(Locale.ROOT);
        if (name.startsWith(".") || OTHER_WEIGHT_SUFFIXES.stream().anyMatch(lower::endsWith)
                || CODE_SUFFIXES.stream().anyMatch(lower::endsWith)) return false;
        if (!file.contains("/")) return true;
        return !file.startsWith("original/") && lower.endsWith(".json");
    }

    /** A repository path that stays inside its directory on every platform: relative; no '..', '.' or empty parts; no backslash, colon or control character. */
    static boolean isSafeName(String name) {
        if (name.isEmpty() || name.length() > MAX_NAME_LENGTH || name.startsWith("/") || name.endsWith("/")) return false;
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c < 0x20 || c == 0x7f || c == '\\' || c == ':') return false;
        }
        for (String part : name.split("/", -1)) {
            if (part.isEmpty() || part.equals(".") || part.equals("..")) return false;
        }
        return true;
    }
}
