package dev.jvllm.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Downloads a model from ModelScope into its cache in ModelScope's layout,
 * {@code models/<org>/<name>} (a '.' of the name written "___"), where {@link ModelResolver} finds it
 * when {@code VLLM_USE_MODELSCOPE} is set. The same files are fetched as from the Hugging Face Hub
 * (configs, tokenizer, safetensors weights) with the same checks: safe names only, sizes, each file's
 * sha256 where ModelScope lists one, resumed ranges, lock files. The files go into a hidden staging
 * directory beside the model's, moved into place once all are there, so that a download cut short is
 * never taken for the model. ModelScope's cache keeps one revision a model.
 */
public final class ModelScopeDownloader {

    /** ModelScope's own site. */
    public static final URI DEFAULT_ENDPOINT = URI.create("https://www.modelscope.cn");
    /** ModelScope's name for the default branch. */
    public static final String DEFAULT_REVISION = "master";

    private static final Logger log = LoggerFactory.getLogger(ModelScopeDownloader.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final FileTransfer transfer;
    private final Path cache;

    private ModelScopeDownloader(Builder b) {
        this.transfer = b.transfer("set MODELSCOPE_DOMAIN for a mirror, or unset VLLM_USE_MODELSCOPE for the Hugging Face Hub");
        this.cache = b.cache;
    }

    /** A downloader into the ModelScope cache directory {@code cache} (the one holding {@code models/}). */
    public static Builder builder(Path cache) {
        return new Builder(cache);
    }

    /**
     * A downloader configured as ModelScope's SDK is: {@code MODELSCOPE_DOMAIN} (a host, or a whole
     * address) and {@code MODELSCOPE_API_TOKEN}.
     */
    public static ModelScopeDownloader fromEnvironment(Map<String, String> env, Path cache) {
        Builder builder = builder(cache);
        String domain = env.get("MODELSCOPE_DOMAIN");
        if (domain != null && !domain.isBlank()) {
            String address = domain.strip();
            builder.endpoint(URI.create(address.contains("://") ? address : "https://" + address));
        }
        String token = env.get("MODELSCOPE_API_TOKEN");
        if (token != null && !token.isBlank()) builder.token(token.strip());
        return builder.build();
    }

    /**
     * Downloads what jvllm needs of {@code model} at {@code revision} ("main" is taken for ModelScope's
     * "master") and returns the model's directory; a model already there is not fetched again.
     * {@code beforeWeights} sees the staging directory once everything but the weights is in it, and
     * may throw to stop before the weights.
     *
     * @throws HubDownloadException when ModelScope refuses or fails, or what it sends does not check out
     */
    public Path download(String model, String revision, Consumer<Path> beforeWeights) {
        if (!ModelResolver.isModelId(model) || !model.contains("/")) {
            throw new HubDownloadException("'" + model + "' is not a ModelScope model id (org/name)");
        }
        if (!ModelResolver.isRevision(revision)) {
            throw new HubDownloadException("'" + revision + "' is not a branch, tag or commit of a ModelScope model");
        }
        String branch = revision.equals(ModelResolver.DEFAULT_REVISION) ? DEFAULT_REVISION : revision;
        String org = model.substring(0, model.indexOf('/'));
        String name = model.substring(model.indexOf('/') + 1).replace(".", "___");
        Path target = cache.resolve("models").resolve(org).resolve(name);
        if (Files.isDirectory(target)) return target;
        Map<String, Listed> listing = list(model, branch);
        List<String> wanted = ModelFiles.toFetch(model, branch, List.copyOf(listing.keySet()));
        Path staging = target.resolveSibling("." + name + ".jvllm-incomplete");
        log.info("downloading {} at {} from ModelScope into {}: {} files", model, branch, target, wanted.size());
        try {
            for (String file : wanted) {
                if (!ModelFiles.isWeights(file)) fetch(model, branch, file, listing.get(file), staging);
            }
            Files.createDirectories(staging);
            beforeWeights.accept(staging);
            for (String file : wanted) {
                if (ModelFiles.isWeights(file)) fetch(model, branch, file, listing.get(file), staging);
            }
            try {
                Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | AtomicMoveNotSupportedException | java.nio.file.DirectoryNotEmptyException e) {
                if (!Files.isDirectory(target)) throw e;
                deleteTree(staging); // another process finished first
            }
        } catch (IOException e) {
            throw new HubDownloadException("downloading " + model + " from ModelScope into " + target + " failed: " + e, e);
        }
        log.info("downloaded {} at {}: {}", model, branch, target);
        return target;
    }

    /** A file as ModelScope lists it: its size and, where given, its sha256. */
    private record Listed(long size, String sha256) {
    }

    private Map<String, Listed> list(String model, String branch) {
        String what = "the file list of " + model + " at " + branch;
        URI url = URI.create(transfer.endpoint() + "/api/v1/models/" + model + "/repo/files?Revision="
                + URLEncoder.encode(branch, StandardCharsets.UTF_8) + "&Recursive=true");
        byte[] body = transfer.getListing(url, what, refusal(what, model, branch));
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (IOException e) {
            throw new HubDownloadException(what + " is not JSON: " + FileTransfer.abbreviate(String.valueOf(e.getMessage())));
        }
        JsonNode code = root.get("Code");
        if (code != null && code.asInt(200) != 200) {
            throw new HubDownloadException("ModelScope refused " + what + " (Code " + FileTransfer.abbreviate(code.asText()) + ": "
                    + FileTransfer.abbreviate(root.path("Message").asText("")) + ")", code.asInt() == 404 ? 404 : -1, null);
        }
        JsonNode files = root.path("Data").path("Files");
        if (!files.isArray() || files.size() > FileTransfer.MAX_LISTED_FILES) {
            throw new HubDownloadException(what + " has no list of files (Data.Files), or more than " + FileTransfer.MAX_LISTED_FILES);
        }
        Map<String, Listed> listed = new LinkedHashMap<>();
        for (JsonNode file : files) {
            if ("tree".equals(file.path("Type").asText())) continue;
            String path = file.path("Path").asText("");
            if (!ModelFiles.isSafeName(path)) {
                throw new HubDownloadException(what + " holds the file name '" + FileTransfer.abbreviate(path)
                        + "', which is not a plain relative path; refused");
            }
            JsonNode size = file.get("Size");
            if (size == null || !size.canConvertToLong() || size.asLong() < 0) {
                throw new HubDownloadException(what + " gives " + path + " no size");
            }
            String sha = file.path("Sha256").asText("").toLowerCase(Locale.ROOT);
            if (!sha.isEmpty() && !FileTransfer.isSha256(sha)) {
                throw new HubDownloadException(what + " gives " + path + " a Sha256 that is not one ('" + FileTransfer.abbreviate(sha) + "')");
            }
            if (sha.isEmpty() && ModelFiles.isWeights(path)) {
                // Weights are what a tampered mirror or a cut transfer would change unseen by a size check.
                throw new HubDownloadException(what + " gives the weights " + path + " no Sha256 to check them against; refused");
            }
            listed.put(path, new Listed(size.asLong(), sha.isEmpty() ? null : sha));
        }
        return listed;
    }

    private void fetch(String model, String branch, String file, Listed listed, Path staging) throws IOException {
        Path target = staging.resolve(file).normalize();
        if (!target.startsWith(staging)) throw new HubDownloadException("file name '" + file + "' leaves the model's directory");
        URI url = URI.create(transfer.endpoint() + "/api/v1/models/" + model + "/repo?Revision="
                + URLEncoder.encode(branch, StandardCharsets.UTF_8) + "&FilePath=" + URLEncoder.encode(file, StandardCharsets.UTF_8));
        // Locked by content where ModelScope names it, else by the file's name.
        String key = listed.sha256() != null ? listed.sha256() : nameHash(file);
        Path lockFile = cache.resolve(".locks").resolve("models").resolve(model).resolve(key + ".lock");
        transfer.fetch(model, file, url, listed.size(), listed.sha256(), target, lockFile,
                refusal(file + " of " + model, model, branch));
    }

    private FileTransfer.Refusal refusal(String what, String model, String branch) {
        return (status, code) -> switch (status) {
            case 401, 403 -> "ModelScope refused " + what + " (" + status + "): " + model + " is private or gated; "
                    + (transfer.hasToken() ? "check MODELSCOPE_API_TOKEN" : "set MODELSCOPE_API_TOKEN to a token that may read it");
            case 404 -> "ModelScope at " + transfer.endpoint() + " has no model " + model + " at revision '" + branch + "' (404)";
            default -> null;
        };
    }

    private static String nameHash(String file) {
        try {
            return HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(file.getBytes(StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }

    private static void deleteTree(Path directory) throws IOException {
        try (Stream<Path> paths = Files.walk(directory)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(path);
        }
    }

    /** Options of a {@link ModelScopeDownloader}; all are {@link DownloaderBuilder}'s. */
    public static final class Builder extends DownloaderBuilder<Builder> {

        private Builder(Path cache) {
            super(cache, DEFAULT_ENDPOINT, "ModelScope");
        }

        @Override
        Builder self() {
            return this;
        }

        public ModelScopeDownloader build() {
            return new ModelScopeDownloader(this);
        }
    }
}
