package dev.jvllm.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Downloads a model from the Hugging Face Hub (or a mirror: {@code HF_ENDPOINT}) into the Hugging
 * Face cache, in huggingface_hub's layout, so that jvllm and Python tools share one copy:
 * {@code models--org--name/blobs/<etag>} holds each file once, {@code snapshots/<commit>/<file>} is a
 * relative symbolic link to its blob (a copy where the file system has no links), and
 * {@code refs/<revision>} names the commit.
 *
 * <p>What is fetched: the files at the top of the repository (configs, tokenizer, safetensors
 * weights) and the JSON files of its folders (sentence-transformers' pooling configs), but no
 * weights in other formats ({@code .bin}, {@code .pth}, ONNX, GGUF, ...) and nothing under
 * {@code original/}. A repository without safetensors weights is refused before any download.
 *
 * <p>Everything the Hub sends is checked as untrusted: file names with {@code ..}, absolute, drive or
 * backslash paths are refused; a blob's name must be the hash the Hub gave for it, and the bytes must
 * hash to it (sha256 for large files, git's blob sha1 for small ones) and have the announced size. A
 * file is written as {@code <blob>.incomplete} and moved into place when complete; an interrupted
 * download resumes with an HTTP range (a server that answers a range with the whole file restarts
 * it), and a connection that sends nothing for the stall timeout is dropped and resumed. Processes and
 * threads downloading one blob take turns through a lock file under {@code .locks}, so one writes it
 * and the others find it. The token goes only to the endpoint's own host, never along a redirect to a
 * download server elsewhere, and is never logged. Progress is logged, and reported to an optional
 * listener.
 */
public final class HubDownloader {

    /** The public Hub. */
    public static final URI DEFAULT_ENDPOINT = URI.create("https://huggingface.co");

    private static final Logger log = LoggerFactory.getLogger(HubDownloader.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_TOKEN_FILE_BYTES = 4096;

    private final FileTransfer transfer;
    private final Path cache;

    private HubDownloader(Builder b) {
        this.transfer = b.transfer("set HF_HUB_OFFLINE=1 to use the cache only, or HF_ENDPOINT for a mirror");
        this.cache = b.cache;
    }

    /** A downloader into the Hugging Face cache directory {@code hubCache} (the directory holding {@code models--*}). */
    public static Builder builder(Path hubCache) {
        return new Builder(hubCache);
    }

    /**
     * A downloader configured as huggingface_hub is: {@code HF_ENDPOINT}, and the token from
     * {@code HF_TOKEN} (or {@code HUGGING_FACE_HUB_TOKEN}), else from {@code tokenFile} (where
     * {@code huggingface-cli login} writes it; {@link ModelResolver} finds it as it finds the cache).
     */
    public static HubDownloader fromEnvironment(Map<String, String> env, Path hubCache, Path tokenFile) {
        Builder builder = builder(hubCache);
        String endpoint = env.get("HF_ENDPOINT");
        if (endpoint != null && !endpoint.isBlank()) {
            builder.endpoint(URI.create(endpoint.strip()));
        }
        tokenFrom(env, tokenFile).ifPresent(builder::token);
        return builder.build();
    }

    private static Optional<String> tokenFrom(Map<String, String> env, Path file) {
        for (String name : List.of("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")) {
            String value = env.get(name);
            if (value != null && !value.isBlank()) return Optional.of(value.strip());
        }
        try {
            if (Files.isRegularFile(file) && Files.size(file) <= MAX_TOKEN_FILE_BYTES) {
                String value = Files.readString(file, StandardCharsets.UTF_8).strip();
                if (!value.isEmpty()) return Optional.of(value);
            }
        } catch (IOException e) {
            log.warn("could not read the Hugging Face token file {}: {}", file, e.toString());
        }
        return Optional.empty();
    }

    /**
     * Downloads what jvllm needs of {@code model} at {@code revision} (a branch, tag or commit) and
     * returns the snapshot directory. Files already in the cache are not fetched again.
     *
     * @throws HubDownloadException when the Hub refuses or fails, or what it sends does not check out
     */
    public Path download(String model, String revision) {
        return download(model, revision, snapshot -> { });
    }

    /**
     * {@link #download(String, String)}, calling {@code beforeWeights} with the snapshot directory once
     * every other file is there (config.json among them) and before the weights are fetched: it may
     * throw to refuse a model it cannot serve without downloading its weights.
     */
    public Path download(String model, String revision, Consumer<Path> beforeWeights) {
        if (!ModelResolver.isModelId(model)) {
            throw new HubDownloadException("'" + model + "' is not a Hugging Face model id (org/name)");
        }
        if (!ModelResolver.isRevision(revision)) {
            throw new HubDownloadException("'" + revision + "' is not a branch, tag or commit of a Hugging Face model");
        }
        Listing listing = list(model, revision);
        List<String> wanted = ModelFiles.toFetch(model, revision, listing.files());
        Path repository = cache.resolve("models--" + model.replace("/", "--"));
        Path snapshot = repository.resolve("snapshots").resolve(listing.commit());
        log.info("downloading {} at {} (commit {}) into {}: {} files", model, revision, listing.commit(), repository,
                wanted.size());
        try {
            for (String file : wanted) {
                if (!ModelFiles.isWeights(file)) fetchIntoSnapshot(model, listing.commit(), file, repository, snapshot);
            }
            Files.createDirectories(snapshot);
            beforeWeights.accept(snapshot);
            for (String file : wanted) {
                if (ModelFiles.isWeights(file)) fetchIntoSnapshot(model, listing.commit(), file, repository, snapshot);
            }
            if (!revision.equals(listing.commit())) {
                Path ref = repository.resolve("refs").resolve(revision);
                Files.createDirectories(ref.getParent());
                Path written = Files.createTempFile(ref.getParent(), ".ref", ".tmp");
                Files.writeString(written, listing.commit());
                Files.move(written, ref, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            }
        } catch (IOException e) {
            throw new HubDownloadException("downloading " + model + " into " + repository + " failed: " + e, e);
        }
        log.info("downloaded {} at {}: {}", model, revision, snapshot);
        return snapshot;
    }

    private record Listing(String commit, List<String> files) {
    }

    /** The commit a revision names and the repository's files there (the Hub's model API). */
    private Listing list(String model, String revision) {
        String url = transfer.endpoint() + "/api/models/" + model + "/revision/" + URLEncoder.encode(revision, StandardCharsets.UTF_8);
        String what = "the file list of " + model + " at " + revision;
        byte[] body = transfer.getListing(URI.create(url), what, refusal(what, model, revision, null));
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (IOException e) {
            throw new HubDownloadException(what + " is not JSON: " + FileTransfer.abbreviate(String.valueOf(e.getMessage())));
        }
        String commit = root.path("sha").asText("");
        if (!ModelResolver.isCommitHash(commit)) {
            throw new HubDownloadException(what + " names no commit hash ('sha': '" + FileTransfer.abbreviate(commit) + "')");
        }
        JsonNode siblings = root.path("siblings");
        if (!siblings.isArray() || siblings.size() > FileTransfer.MAX_LISTED_FILES) {
            throw new HubDownloadException(what + " has no list of files ('siblings'), or more than " + FileTransfer.MAX_LISTED_FILES);
        }
        List<String> files = new ArrayList<>();
        for (JsonNode sibling : siblings) {
            String name = sibling.path("rfilename").asText("");
            if (!ModelFiles.isSafeName(name)) {
                throw new HubDownloadException(what + " holds the file name '" + FileTransfer.abbreviate(name)
                        + "', which is not a plain relative path; refused");
            }
            files.add(name);
        }
        return new Listing(commit, List.copyOf(files));
    }

    /** Where a file of the repository is, per its HEAD at the resolve URL. */
    private record Remote(String etag, long size, URI location) {
    }

    private void fetchIntoSnapshot(String model, String commit, String file, Path repository, Path snapshot)
            throws IOException {
        Path link = snapshot.resolve(file).normalize();
        if (!link.startsWith(snapshot)) throw new HubDownloadException("file name '" + file + "' leaves the snapshot");
        URI url = URI.create(transfer.endpoint() + "/" + model + "/resolve/" + commit + "/" + FileTransfer.encodePath(file));
        Remote remote = head(model, commit, file, url);
        Path blob = repository.resolve("blobs").resolve(remote.etag());
        Path lockFile = cache.resolve(".locks").resolve(repository.getFileName()).resolve(remote.etag() + ".lock");
        transfer.fetch(model, file, remote.location(), remote.size(), remote.etag(), blob, lockFile,
                refusal(file + " of " + model, model, commit, file));
        linkIntoSnapshot(blob, link);
    }

    private Remote head(String model, String commit, String file, URI url) {
        String what = file + " of " + model;
        return transfer.withRetries(what, () -> {
            HttpURLConnection c = transfer.request(url, "HEAD", Map.of("Accept-Encoding", "identity"), false);
            try {
                int status = c.getResponseCode();
                boolean elsewhere = FileTransfer.isRedirect(status);
                if (status != 200 && !elsewhere) throw transfer.failure(c, status, what, refusal(what, model, commit, file));
                String etag = normalizeEtag(Optional.ofNullable(c.getHeaderField("X-Linked-Etag")).orElse(c.getHeaderField("ETag")));
                if (etag == null || !FileTransfer.isContentHash(etag)) {
                    throw new HubDownloadException("the Hub gave " + what + " no usable ETag ('"
                            + FileTransfer.abbreviate(String.valueOf(etag)) + "'; expected a sha256 or git sha1)");
                }
                String size = Optional.ofNullable(c.getHeaderField("X-Linked-Size")).orElse(c.getHeaderField("Content-Length"));
                long bytes = FileTransfer.parseSize(size);
                if (bytes < 0) {
                    throw new HubDownloadException("the Hub gave " + what + " no size ('" + FileTransfer.abbreviate(String.valueOf(size)) + "')");
                }
                URI answered = URI.create(c.getURL().toString()); // after redirects within the Hub
                URI location = elsewhere ? transfer.redirectTarget(answered, c) : answered;
                return new Remote(etag, bytes, location);
            } finally {
                c.disconnect();
            }
        });
    }

    /** The Hub's refusals of one request, worded with what the user can do about them. */
    private FileTransfer.Refusal refusal(String what, String model, String revision, String file) {
        return (status, code) -> switch (status) {
            case 401 -> "the Hub refused " + what + " (401): " + model + " is private or gated, or the token is not valid; "
                    + (transfer.hasToken() ? "check HF_TOKEN" : "set HF_TOKEN to a token that may read it");
            case 403 -> "the Hub refused " + what + " (403): " + model + " is gated; accept its terms on its Hub page "
                    + "with the account whose token is in HF_TOKEN";
            case 404 -> switch (code) {
                case "RevisionNotFound" -> "the Hub has no revision '" + revision + "' of " + model + " (404)";
                case "EntryNotFound" -> "the Hub has no file " + file + " in " + model + " (404)";
                default -> "the Hub at " + transfer.endpoint() + " has no model " + model + " (404; a private model needs HF_TOKEN)";
            };
            default -> null;
        };
    }

    private static void linkIntoSnapshot(Path blob, Path link) throws IOException {
        Files.createDirectories(link.getParent());
        Path target = link.getParent().relativize(blob);
        if (Files.isSymbolicLink(link) && Files.readSymbolicLink(link).equals(target)) return;
        Files.deleteIfExists(link);
        try {
            Files.createSymbolicLink(link, target);
        } catch (UnsupportedOperationException | FileSystemException noLinks) {
            Files.copy(blob, link, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** An ETag without quotes or the weak marker, lower case; null stays null. */
    static String normalizeEtag(String etag) {
        if (etag == null) return null;
        String value = etag.strip();
        if (value.startsWith("W/")) value = value.substring(2);
        if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\"")) value = value.substring(1, value.length() - 1);
        return value.toLowerCase(Locale.ROOT);
    }

    /** Options of a {@link HubDownloader}; all are {@link DownloaderBuilder}'s. */
    public static final class Builder extends DownloaderBuilder<Builder> {

        private Builder(Path cache) {
            super(cache, DEFAULT_ENDPOINT, "the Hub");
        }

        @Override
        Builder self() {
            return this;
        }

        public HubDownloader build() {
            return new HubDownloader(this);
        }
    }
}
