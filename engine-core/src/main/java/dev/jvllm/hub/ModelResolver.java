package dev.jvllm.hub;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * Finds the local directory of a model reference ({@link #resolve}, without any network access;
 * {@link #resolveOrDownload} also downloads what is not found, from the Hub or ModelScope):
 * <ol>
 *   <li>an existing directory, absolute, relative to the working directory or starting with
 *       {@code ~/}, wins;</li>
 *   <li>else, when {@code VLLM_USE_MODELSCOPE} or {@code JVLLM_USE_MODELSCOPE} is {@code true} or
 *       {@code 1}, a model id {@code org/name} is looked up in the ModelScope cache
 *       ({@code MODELSCOPE_CACHE}, else {@code ~/.cache/modelscope/hub}), in both the layout
 *       {@code models/org/name} of current ModelScope releases and the older {@code org/name}, each
 *       with the name as given and with {@code .} spelled {@code ___}, as ModelScope stores it;</li>
 *   <li>else (and after a ModelScope miss) the id is looked up in the Hugging Face cache
 *       ({@code HF_HUB_CACHE}, else {@code HUGGINGFACE_HUB_CACHE}, else {@code HF_HOME/hub}, else
 *       {@code $XDG_CACHE_HOME/huggingface/hub}, else {@code ~/.cache/huggingface/hub}): the file
 *       {@code models--org--name/refs/<revision>} holds a commit hash naming the directory
 *       {@code snapshots/<hash>}; a revision that is itself a commit hash names its snapshot directly.</li>
 * </ol>
 * The environment and home directory are injected, so that resolution is reproducible in tests;
 * {@link #fromEnvironment()} uses the process's.
 */
public final class ModelResolver {

    /** The revision looked up when none is given. */
    public static final String DEFAULT_REVISION = "main";

    // As the Hub validates ids: [org/]name, word characters, '-' and '.', starting and ending with a word character.
    private static final String ID_PART = "\\w(?:[\\w.-]*\\w)?";
    private static final Pattern MODEL_ID = Pattern.compile("(?:" + ID_PART + "/)?" + ID_PART);
    private static final int MAX_MODEL_ID_LENGTH = 96;
    private static final Pattern REVISION = Pattern.compile("[\\w.-]+(?:/[\\w.-]+)*");
    private static final int MAX_REF_FILE_BYTES = 1024;

    private final Map<String, String> env;
    private final Path home;

    /**
     * @param env  environment variables to read ({@code HF_HUB_CACHE}, {@code MODELSCOPE_CACHE}, ...)
     * @param home the user's home directory, for the default cache locations and {@code ~} in variables
     */
    public ModelResolver(Map<String, String> env, Path home) {
        this.env = Map.copyOf(env);
        this.home = home.toAbsolutePath().normalize();
    }

    /** A resolver reading this process's environment and the {@code user.home} directory. */
    public static ModelResolver fromEnvironment() {
        return new ModelResolver(System.getenv(), Path.of(System.getProperty("user.home")));
    }

    /**
     * This resolver with {@code hubCache} as the Hugging Face cache, to look in and download into
     * (vLLM's {@code download_dir}), whatever the environment says.
     */
    public ModelResolver withHubCache(Path hubCache) {
        Map<String, String> changed = new HashMap<>(env);
        changed.put("HF_HUB_CACHE", hubCache.toAbsolutePath().normalize().toString());
        return new ModelResolver(changed, home);
    }

    /** Resolves {@code model} at the {@linkplain #DEFAULT_REVISION default revision}; see {@link #resolve(String, String)}. */
    public Path resolve(String model) {
        return resolve(model, DEFAULT_REVISION);
    }

    /**
     * The absolute directory of {@code model}: a local directory, or the cached snapshot of a model
     * id at {@code revision} (a branch, tag or commit hash; ModelScope's cache keeps one revision
     * per model, so there it is not consulted).
     *
     * @throws ModelNotFoundException   when nothing matches; the message lists every place looked at
     * @throws IllegalArgumentException when {@code model} is blank or {@code revision} is not a
     *                                  plausible branch, tag or commit hash
     */
    public Path resolve(String model, String revision) {
        if (model.isBlank()) {
            throw new IllegalArgumentException("empty model reference");
        }
        if (!isRevision(revision)) {
            throw new IllegalArgumentException("invalid revision '" + revision + "'");
        }
        List<String> lookedAt = new ArrayList<>();
        Optional<Path> local = path(model);
        if (local.isPresent() && Files.isDirectory(local.get())) {
            return local.get();
        }
        lookedAt.add("local directory " + local.map(Path::toString).orElse(model) + " (absent)");
        if (!isModelId(model)) {
            throw new ModelNotFoundException(model, "is neither a local directory nor a valid model id (org/name)",
                    lookedAt);
        }
        if (modelScopeEnabled()) {
            for (Path candidate : modelScopeCandidates(model)) {
                if (Files.isDirectory(candidate)) {
                    return candidate;
                }
                lookedAt.add("ModelScope cache " + candidate + " (absent)");
            }
        }
        return huggingFaceSnapshot(model, revision, lookedAt)
                .orElseThrow(() -> new ModelNotFoundException(model, "was not found", lookedAt));
    }

    /**
     * {@link #resolve(String, String)}, else, for a model id, a download from the Hugging Face Hub into
     * its cache ({@link HubDownloader#fromEnvironment}), or with {@code VLLM_USE_MODELSCOPE} from
     * ModelScope into its cache ({@link ModelScopeDownloader#fromEnvironment}), unless
     * {@code HF_HUB_OFFLINE} or {@code TRANSFORMERS_OFFLINE} is set. A model found in a cache is not
     * checked against its hub.
     *
     * @throws ModelNotFoundException when nothing matches locally and the Hub has no such model
     * @throws HubDownloadException   when the download fails otherwise
     */
    public Path resolveOrDownload(String model, String revision) {
        return resolveOrDownload(model, revision, snapshot -> { });
    }

    /**
     * {@link #resolveOrDownload(String, String)}; a download calls {@code beforeWeights} with the
     * snapshot directory when everything but the weights is there, and stops if it throws.
     */
    public Path resolveOrDownload(String model, String revision, Consumer<Path> beforeWeights) {
        try {
            return resolve(model, revision);
        } catch (ModelNotFoundException missing) {
            if (!isModelId(model)) throw missing;
            List<String> lookedAt = missing.placesLookedAt();
            if (offline()) {
                throw new ModelNotFoundException(model, "was not found, and the Hub is not asked (HF_HUB_OFFLINE or "
                        + "TRANSFORMERS_OFFLINE is set)", lookedAt);
            }
            try {
                if (modelScopeEnabled()) {
                    return ModelScopeDownloader.fromEnvironment(env, modelScopeCache()).download(model, revision, beforeWeights);
                }
                Path tokenFile = variable("HF_TOKEN_PATH").orElse(huggingFaceHome().resolve("token"));
                return HubDownloader.fromEnvironment(env, huggingFaceCache(), tokenFile).download(model, revision, beforeWeights);
            } catch (HubDownloadException e) {
                if (e.status() != 404) throw e;
                List<String> all = new ArrayList<>(lookedAt);
                all.add(e.getMessage());
                throw new ModelNotFoundException(model, "was not found", all);
            }
        }
    }

    private boolean offline() {
        return isTrue(env.get("HF_HUB_OFFLINE")) || isTrue(env.get("TRANSFORMERS_OFFLINE"));
    }

    /**
     * The name a resolved model directory goes by: {@code org/name} for a Hugging Face cache snapshot
     * ({@code models--org--name/snapshots/<hash>}), else the directory's own name.
     */
    public static String modelName(Path directory) {
        Path parent = directory.getParent();
        if (parent != null && parent.getFileName() != null && parent.getFileName().toString().equals("snapshots")
                && parent.getParent() != null && parent.getParent().getFileName().toString().startsWith("models--")) {
            return parent.getParent().getFileName().toString().substring("models--".length()).replaceFirst("--", "/");
        }
        return directory.getFileName() == null ? directory.toString() : directory.getFileName().toString();
    }

    /** A git commit hash: 40 lower-case hex digits. */
    static boolean isCommitHash(String text) {
        return FileTransfer.SHA1.matcher(text).matches();
    }

    /** A plausible branch, tag or commit: also keeps {@code ..} and absolute paths out of the cache's refs. */
    static boolean isRevision(String revision) {
        return REVISION.matcher(revision).matches() && !revision.contains("..");
    }

    /** An id the Hub could have issued: also keeps {@code ..}, absolute and drive paths out of cache paths. */
    static boolean isModelId(String model) {
        return model.length() <= MAX_MODEL_ID_LENGTH && MODEL_ID.matcher(model).matches()
                && !model.contains("..") && !model.contains("--") && !model.endsWith(".git");
    }

    private boolean modelScopeEnabled() {
        return isTrue(env.get("VLLM_USE_MODELSCOPE")) || isTrue(env.get("JVLLM_USE_MODELSCOPE"));
    }

    /** As huggingface_hub reads its switches: 1, true, yes or on, in any case. */
    private static boolean isTrue(String value) {
        return value != null && Set.of("1", "true", "yes", "on").contains(value.strip().toLowerCase(Locale.ROOT));
    }

    private List<Path> modelScopeCandidates(String model) {
        int slash = model.indexOf('/');
        if (slash < 0) {
            return List.of(); // ModelScope ids always name their owner
        }
        String org = model.substring(0, slash);
        String name = model.substring(slash + 1);
        Path cache = modelScopeCache();
        Set<Path> candidates = new LinkedHashSet<>();
        for (Path root : List.of(cache.resolve("models"), cache)) {
            candidates.add(root.resolve(org).resolve(name.replace(".", "___")));
            candidates.add(root.resolve(org).resolve(name));
        }
        return List.copyOf(candidates);
    }

    private Optional<Path> huggingFaceSnapshot(String model, String revision, List<String> lookedAt) {
        Path repo = huggingFaceCache().resolve("models--" + model.replace("/", "--"));
        String commit = revision;
        String via = "";
        if (!isCommitHash(revision)) {
            Path ref = repo.resolve("refs").resolve(revision);
            Optional<String> hash = commitHashIn(ref);
            if (hash.isEmpty()) {
                lookedAt.add("Hugging Face cache ref " + ref + (Files.isRegularFile(ref)
                        ? " (does not hold a commit hash)" : " (absent)"));
                return Optional.empty();
            }
            commit = hash.get();
            via = ", named by " + ref;
        }
        Path snapshot = repo.resolve("snapshots").resolve(commit);
        if (Files.isDirectory(snapshot)) {
            return Optional.of(snapshot);
        }
        lookedAt.add("Hugging Face cache snapshot " + snapshot + " (absent" + via + ")");
        return Optional.empty();
    }

    private static Optional<String> commitHashIn(Path ref) {
        try {
            if (!Files.isRegularFile(ref) || Files.size(ref) > MAX_REF_FILE_BYTES) {
                return Optional.empty();
            }
            String hash = Files.readString(ref, StandardCharsets.UTF_8).strip();
            return isCommitHash(hash) ? Optional.of(hash) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** ModelScope's cache: {@code MODELSCOPE_CACHE}, else {@code ~/.cache/modelscope/hub}. */
    private Path modelScopeCache() {
        return variable("MODELSCOPE_CACHE").orElse(home.resolve(".cache/modelscope/hub"));
    }

    /** The hub cache, with huggingface_hub's precedence of variables. */
    private Path huggingFaceCache() {
        return variable("HF_HUB_CACHE")
                .or(() -> variable("HUGGINGFACE_HUB_CACHE"))
                .orElseGet(() -> huggingFaceHome().resolve("hub"));
    }

    /** huggingface_hub's home: {@code HF_HOME}, else {@code $XDG_CACHE_HOME/huggingface}, else {@code ~/.cache/huggingface}. */
    private Path huggingFaceHome() {
        return variable("HF_HOME")
                .or(() -> variable("XDG_CACHE_HOME").map(cache -> cache.resolve("huggingface")))
                .orElse(home.resolve(".cache/huggingface"));
    }

    /** A path-valued variable; unset when empty. */
    private Optional<Path> variable(String name) {
        String value = env.get(name);
        return value == null || value.isBlank() ? Optional.empty() : path(value);
    }

    /** The absolute path {@code text} names, a leading {@code ~} meaning the home directory; empty if no path. */
    private Optional<Path> path(String text) {
        try {
            Path path = text.equals("~") ? home : text.startsWith("~/") ? home.resolve(text.substring(2)) : Path.of(text);
            return Optional.of(path.toAbsolutePath().normalize());
        } catch (InvalidPathException e) {
            return Optional.empty();
        }
    }
}
