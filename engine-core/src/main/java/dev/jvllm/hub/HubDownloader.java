package dev.jvllm.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLEncoder;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

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
    private static final Pattern COMMIT_HASH = Pattern.compile("[0-9a-f]{40}");
    private static final Pattern GIT_BLOB_SHA1 = Pattern.compile("[0-9a-f]{40}");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final int MAX_LISTING_BYTES = 32 << 20;
    private static final int MAX_FILES = 20_000;
    private static final int MAX_FILE_NAME_LENGTH = 1024;
    private static final int MAX_REDIRECTS = 5;
    private static final int MAX_TOKEN_FILE_BYTES = 4096;
    private static final long PROGRESS_LOG_INTERVAL_NANOS = 5_000_000_000L;
    private static final long PROGRESS_LISTENER_INTERVAL_NANOS = 100_000_000L;
    /** Weight formats jvllm does not read: fetching them would only cost time and disk. */
    private static final Set<String> OTHER_WEIGHT_SUFFIXES = Set.of(".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack",
            ".onnx", ".onnx_data", ".gguf", ".ggml", ".tflite", ".ot", ".npz", ".pb", ".mlmodel", ".pdparams", ".nemo");
    /** One lock per blob lock file within this process: a {@link FileLock} only keeps other processes out. */
    private static final Map<Path, ReentrantLock> PROCESS_LOCKS = new ConcurrentHashMap<>();

    private final String endpoint;
    private final String endpointOrigin;
    private final String token;
    private final Path cache;
    private final Consumer<DownloadProgress> listener;
    private final Duration connectTimeout;
    private final Duration stallTimeout;
    private final int attempts;
    private final Duration retryPause;

    private HubDownloader(Builder b) {
        String base = b.endpoint.toString();
        this.endpoint = base.endsWith("/") ? base.substring(0, base.length() - 1) : base;
        this.endpointOrigin = origin(b.endpoint);
        this.token = b.token;
        this.cache = b.cache.toAbsolutePath().normalize();
        this.listener = b.listener;
        this.connectTimeout = b.connectTimeout;
        this.stallTimeout = b.stallTimeout;
        this.attempts = b.attempts;
        this.retryPause = b.retryPause;
    }

    /** A downloader into the Hugging Face cache directory {@code hubCache} (the directory holding {@code models--*}). */
    public static Builder builder(Path hubCache) {
        return new Builder(hubCache);
    }

    /**
     * A downloader configured as huggingface_hub is: {@code HF_ENDPOINT}; the token from {@code HF_TOKEN}
     * (or {@code HUGGING_FACE_HUB_TOKEN}), else the file {@code HF_TOKEN_PATH}, else {@code HF_HOME/token},
     * else {@code ~/.cache/huggingface/token}.
     */
    public static HubDownloader fromEnvironment(Map<String, String> env, Path hubCache, Path home) {
        Builder builder = builder(hubCache);
        String endpoint = env.get("HF_ENDPOINT");
        if (endpoint != null && !endpoint.isBlank()) {
            builder.endpoint(URI.create(endpoint.strip()));
        }
        tokenFrom(env, home).ifPresent(builder::token);
        return builder.build();
    }

    private static Optional<String> tokenFrom(Map<String, String> env, Path home) {
        for (String name : List.of("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")) {
            String value = env.get(name);
            if (value != null && !value.isBlank()) return Optional.of(value.strip());
        }
        Path hfHome = Optional.ofNullable(env.get("HF_HOME")).filter(v -> !v.isBlank()).map(Path::of)
                .orElseGet(() -> Optional.ofNullable(env.get("XDG_CACHE_HOME")).filter(v -> !v.isBlank())
                        .map(v -> Path.of(v, "huggingface")).orElse(home.resolve(".cache/huggingface")));
        Path file = Optional.ofNullable(env.get("HF_TOKEN_PATH")).filter(v -> !v.isBlank()).map(Path::of)
                .orElse(hfHome.resolve("token"));
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
        List<String> wanted = filesToFetch(model, revision, listing.files());
        Path repository = cache.resolve("models--" + model.replace("/", "--"));
        Path snapshot = repository.resolve("snapshots").resolve(listing.commit());
        log.info("downloading {} at {} (commit {}) into {}: {} files", model, revision, listing.commit(), repository,
                wanted.size());
        try {
            for (String file : wanted) {
                if (!isWeights(file)) fetchIntoSnapshot(model, listing.commit(), file, repository, snapshot);
            }
            Files.createDirectories(snapshot);
            beforeWeights.accept(snapshot);
            for (String file : wanted) {
                if (isWeights(file)) fetchIntoSnapshot(model, listing.commit(), file, repository, snapshot);
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
        String url = endpoint + "/api/models/" + model + "/revision/" + URLEncoder.encode(revision, StandardCharsets.UTF_8);
        String what = "the file list of " + model + " at " + revision;
        byte[] body = withRetries(what, () -> {
            HttpURLConnection c = request(URI.create(url), "GET", Map.of("Accept", "application/json"), true);
            try {
                int status = c.getResponseCode();
                if (status != 200) throw failure(c, status, what, model, revision, null);
                try (InputStream in = c.getInputStream()) {
                    byte[] read = in.readNBytes(MAX_LISTING_BYTES + 1);
                    if (read.length > MAX_LISTING_BYTES) {
                        throw new HubDownloadException(what + " is over " + (MAX_LISTING_BYTES >> 20) + " MB; refused");
                    }
                    return read;
                }
            } finally {
                c.disconnect();
            }
        });
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (IOException e) {
            throw new HubDownloadException(what + " is not JSON: " + abbreviate(String.valueOf(e.getMessage())));
        }
        String commit = root.path("sha").asText("");
        if (!COMMIT_HASH.matcher(commit).matches()) {
            throw new HubDownloadException(what + " names no commit hash ('sha': '" + abbreviate(commit) + "')");
        }
        JsonNode siblings = root.path("siblings");
        if (!siblings.isArray() || siblings.size() > MAX_FILES) {
            throw new HubDownloadException(what + " has no list of files ('siblings'), or more than " + MAX_FILES);
        }
        List<String> files = new ArrayList<>();
        for (JsonNode sibling : siblings) {
            String name = sibling.path("rfilename").asText("");
            if (!isSafeFileName(name)) {
                throw new HubDownloadException(what + " holds the file name '" + abbreviate(name)
                        + "', which is not a plain relative path; refused");
            }
            files.add(name);
        }
        return new Listing(commit, List.copyOf(files));
    }

    /** The files jvllm reads, of those the repository has; refuses a repository with no safetensors weights. */
    static List<String> filesToFetch(String model, String revision, List<String> files) {
        if (files.stream().noneMatch(f -> !f.contains("/") && f.endsWith(".safetensors"))) {
            String shown = files.stream().limit(12).collect(Collectors.joining(", "));
            throw new HubDownloadException(model + " at " + revision + " has no safetensors weights (its files: " + shown
                    + (files.size() > 12 ? ", ..." : "") + "); jvllm reads weights in safetensors only");
        }
        return files.stream().filter(HubDownloader::isWanted).toList();
    }

    private static boolean isWeights(String file) {
        return file.endsWith(".safetensors");
    }

    private static boolean isWanted(String file) {
        String name = file.substring(file.lastIndexOf('/') + 1);
        String lower = name.toLowerCase(Locale.ROOT);
        if (name.startsWith(".") || OTHER_WEIGHT_SUFFIXES.stream().anyMatch(lower::endsWith)) return false;
        if (!file.contains("/")) return true;
        return !file.startsWith("original/") && lower.endsWith(".json");
    }

    /** A repository path that stays inside the snapshot on every platform: relative, no '..', '.', empty parts, '\', ':' or control characters. */
    static boolean isSafeFileName(String name) {
        if (name.isEmpty() || name.length() > MAX_FILE_NAME_LENGTH || name.startsWith("/") || name.endsWith("/")) return false;
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c < 0x20 || c == 0x7f || c == '\\' || c == ':') return false;
        }
        for (String part : name.split("/", -1)) {
            if (part.isEmpty() || part.equals(".") || part.equals("..")) return false;
        }
        return true;
    }

    /** Where a file of the repository is, per its HEAD at the resolve URL. */
    private record Remote(String etag, long size, URI location) {
    }

    private void fetchIntoSnapshot(String model, String commit, String file, Path repository, Path snapshot)
            throws IOException {
        Path link = snapshot.resolve(file).normalize();
        if (!link.startsWith(snapshot)) throw new HubDownloadException("file name '" + file + "' leaves the snapshot");
        URI url = URI.create(endpoint + "/" + model + "/resolve/" + commit + "/" + encodePath(file));
        Remote remote = head(model, commit, file, url);
        Path blob = repository.resolve("blobs").resolve(remote.etag());
        if (!Files.isRegularFile(blob)) {
            Path lockFile = cache.resolve(".locks").resolve(repository.getFileName()).resolve(remote.etag() + ".lock");
            Files.createDirectories(lockFile.getParent());
            Files.createDirectories(blob.getParent());
            ReentrantLock processLock = PROCESS_LOCKS.computeIfAbsent(lockFile, k -> new ReentrantLock());
            processLock.lock();
            try (FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                 FileLock ignored = channel.lock()) {
                if (!Files.isRegularFile(blob)) fetchBlob(model, file, remote, blob);
            } finally {
                processLock.unlock();
            }
        }
        linkIntoSnapshot(blob, link);
    }

    private Remote head(String model, String commit, String file, URI url) {
        String what = file + " of " + model;
        return withRetries(what, () -> {
            HttpURLConnection c = request(url, "HEAD", Map.of("Accept-Encoding", "identity"), false);
            try {
                int status = c.getResponseCode();
                boolean elsewhere = isRedirect(status);
                if (status != 200 && !elsewhere) throw failure(c, status, what, model, commit, file);
                String etag = normalizeEtag(Optional.ofNullable(c.getHeaderField("X-Linked-Etag")).orElse(c.getHeaderField("ETag")));
                if (etag == null || !(SHA256.matcher(etag).matches() || GIT_BLOB_SHA1.matcher(etag).matches())) {
                    throw new HubDownloadException("the Hub gave " + what + " no usable ETag ('" + abbreviate(String.valueOf(etag))
                            + "'; expected a sha256 or git sha1)");
                }
                String size = Optional.ofNullable(c.getHeaderField("X-Linked-Size")).orElse(c.getHeaderField("Content-Length"));
                long bytes = parseSize(size);
                if (bytes < 0) throw new HubDownloadException("the Hub gave " + what + " no size ('" + abbreviate(String.valueOf(size)) + "')");
                URI answered = URI.create(c.getURL().toString()); // after redirects within the Hub
                URI location = elsewhere ? redirectTarget(answered, c) : answered;
                return new Remote(etag, bytes, location);
            } finally {
                c.disconnect();
            }
        });
    }

    private void fetchBlob(String model, String file, Remote remote, Path blob) throws IOException {
        Path partial = blob.resolveSibling(blob.getFileName() + ".incomplete");
        Progress progress = new Progress(model, file, remote.size());
        IOException last = null;
        for (int attempt = 1; attempt <= attempts; attempt++) {
            long have = Files.isRegularFile(partial) ? Files.size(partial) : 0;
            if (have > remote.size()) {
                Files.delete(partial);
                have = 0;
            }
            if (have == remote.size() && Files.exists(partial)) break;
            try {
                Map<String, String> headers = have > 0 ? Map.of("Range", "bytes=" + have + "-", "Accept-Encoding", "identity")
                        : Map.of("Accept-Encoding", "identity");
                HttpURLConnection c = request(remote.location(), "GET", headers, true);
                try {
                    int status = c.getResponseCode();
                    boolean append;
                    if (status == 206 && have > 0 && rangeStartsAt(c.getHeaderField("Content-Range"), have)) {
                        append = true;
                    } else if (status == 200) {
                        append = false; // the whole file, whatever was asked
                    } else if (status == 416 && have == remote.size()) {
                        break;
                    } else {
                        throw failure(c, status, file + " of " + model, model, null, file);
                    }
                    if (attempt > 1 || have > 0) {
                        log.info("{} of {}: {} at byte {}", file, model, append ? "resuming" : "restarting", append ? have : 0);
                    }
                    copy(c, partial, append ? have : 0, remote.size(), progress);
                } finally {
                    c.disconnect();
                }
                break;
            } catch (IOException e) {
                last = e; // a server error, a refused or dropped connection, a stall: resume
            }
            log.warn("download of {} of {} interrupted ({}); attempt {} of {}", file, model, last.toString(), attempt, attempts);
            pause(attempt);
        }
        long have = Files.isRegularFile(partial) ? Files.size(partial) : 0;
        if (have != remote.size()) {
            throw new HubDownloadException("downloading " + file + " of " + model + " failed after " + attempts + " attempts: "
                    + have + " of " + remote.size() + " bytes" + (last == null ? "" : " (" + last + ")"), last);
        }
        String actual = remote.etag().length() == 64 ? sha256(partial) : gitBlobSha1(partial);
        if (!actual.equals(remote.etag())) {
            Files.delete(partial);
            throw new HubDownloadException(file + " of " + model + " does not match its hash: the Hub named " + remote.etag()
                    + ", the bytes received hash to " + actual + "; the download was deleted");
        }
        Files.move(partial, blob, StandardCopyOption.ATOMIC_MOVE);
        progress.finish();
    }

    private void copy(HttpURLConnection c, Path partial, long start, long total, Progress progress) throws IOException {
        try (InputStream in = c.getInputStream();
             OutputStream out = start > 0
                     ? Files.newOutputStream(partial, StandardOpenOption.WRITE, StandardOpenOption.APPEND)
                     : Files.newOutputStream(partial, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                     StandardOpenOption.WRITE)) {
            byte[] buffer = new byte[1 << 16];
            long done = start;
            progress.report(done);
            for (int n; (n = in.read(buffer)) > 0; ) {
                if (done + n > total) {
                    throw new HubDownloadException(progress.file + " of " + progress.model + ": the server sent more than the "
                            + total + " bytes the Hub announced; refused");
                }
                out.write(buffer, 0, n);
                done += n;
                progress.report(done);
            }
        }
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

    // ---- HTTP -----------------------------------------------------------------------------------

    /** An answer worth asking again for: a server error, or too many requests. */
    private static final class RetryableException extends IOException {
        RetryableException(String message) {
            super(message);
        }
    }

    private interface Call<T> {
        T run() throws IOException;
    }

    private <T> T withRetries(String what, Call<T> call) {
        IOException last = null;
        for (int attempt = 1; attempt <= attempts; attempt++) {
            try {
                return call.run();
            } catch (java.net.UnknownHostException e) {
                throw new HubDownloadException("could not reach the Hub at " + endpoint + " for " + what + " (unknown host "
                        + e.getMessage() + "); set HF_HUB_OFFLINE=1 to use the cache only, or HF_ENDPOINT for a mirror", e);
            } catch (IOException e) {
                last = e;
                log.warn("asking the Hub for {} failed ({}); attempt {} of {}", what, e.toString(), attempt, attempts);
                pause(attempt);
            }
        }
        throw new HubDownloadException("asking the Hub at " + endpoint + " for " + what + " failed " + attempts
                + " times; last: " + last, last);
    }

    private void pause(int attempt) {
        try {
            Thread.sleep(retryPause.multipliedBy(attempt));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubDownloadException("interrupted while waiting to retry a download");
        }
    }

    /**
     * Sends a request, following up to 5 redirects. The token goes only to the endpoint's origin;
     * with {@code followElsewhere} false, a redirect to another origin is returned unfollowed (its
     * headers describe the file; the body lives there).
     */
    private HttpURLConnection request(URI uri, String method, Map<String, String> headers, boolean followElsewhere)
            throws IOException {
        for (int redirects = 0; ; redirects++) {
            String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
            if (!scheme.equals("https") && !scheme.equals("http")) {
                throw new HubDownloadException("refused to follow the Hub to a " + (scheme.isEmpty() ? "relative" : scheme)
                        + " address (host " + uri.getHost() + ")");
            }
            boolean home = origin(uri).equals(endpointOrigin);
            HttpURLConnection c = (HttpURLConnection) uri.toURL().openConnection();
            c.setInstanceFollowRedirects(false);
            c.setConnectTimeout((int) connectTimeout.toMillis());
            c.setReadTimeout((int) stallTimeout.toMillis());
            c.setRequestMethod(method);
            c.setRequestProperty("User-Agent", "jvllm; java/" + Runtime.version().feature());
            if (home && token != null) c.setRequestProperty("Authorization", "Bearer " + token);
            headers.forEach(c::setRequestProperty);
            int status = c.getResponseCode();
            if (!isRedirect(status)) return c;
            URI next = redirectTarget(uri, c);
            if (!followElsewhere && !origin(next).equals(endpointOrigin)) return c;
            c.disconnect();
            if (redirects == MAX_REDIRECTS) {
                throw new HubDownloadException("the Hub redirected more than " + MAX_REDIRECTS + " times (last to host "
                        + next.getHost() + ")");
            }
            uri = next;
        }
    }

    private static boolean isRedirect(int status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    }

    private static URI redirectTarget(URI from, HttpURLConnection c) throws IOException {
        String location = c.getHeaderField("Location");
        if (location == null) throw new IOException("a redirect (" + c.getResponseCode() + ") without a Location");
        try {
            return from.resolve(new URI(location));
        } catch (URISyntaxException e) {
            throw new HubDownloadException("the Hub redirected to a malformed address");
        }
    }

    private static String origin(URI uri) {
        int port = uri.getPort() >= 0 ? uri.getPort() : "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
        return String.valueOf(uri.getScheme()).toLowerCase(Locale.ROOT) + "://"
                + String.valueOf(uri.getHost()).toLowerCase(Locale.ROOT) + ":" + port;
    }

    /** The error for a refusal: typed and worded by status; server errors and 429 are retried by the caller. */
    private IOException failure(HttpURLConnection c, int status, String what, String model, String revision, String file)
            throws IOException {
        if (status >= 500 || status == 429) return new RetryableException("the Hub answered " + status + " for " + what);
        String code = Optional.ofNullable(c.getHeaderField("X-Error-Code")).orElse("");
        String message = switch (status) {
            case 401 -> "the Hub refused " + what + " (401): " + model + " is private or gated, or the token is not valid; "
                    + (token == null ? "set HF_TOKEN to a token that may read it" : "check HF_TOKEN");
            case 403 -> "the Hub refused " + what + " (403): " + model + " is gated; accept its terms on its Hub page "
                    + "with the account whose token is in HF_TOKEN";
            case 404 -> switch (code) {
                case "RevisionNotFound" -> "the Hub has no revision '" + revision + "' of " + model + " (404)";
                case "EntryNotFound" -> "the Hub has no file " + file + " in " + model + " (404)";
                default -> "the Hub at " + endpoint + " has no model " + model + " (404; a private model needs HF_TOKEN)";
            };
            default -> "the Hub answered " + status + " for " + what;
        };
        throw new HubDownloadException(message, status, null);
    }

    // ---- small pieces ---------------------------------------------------------------------------

    private static String encodePath(String file) {
        return java.util.Arrays.stream(file.split("/"))
                .map(part -> URLEncoder.encode(part, StandardCharsets.UTF_8).replace("+", "%20"))
                .collect(Collectors.joining("/"));
    }

    /** An ETag without quotes or the weak marker, lower case; null stays null. */
    static String normalizeEtag(String etag) {
        if (etag == null) return null;
        String value = etag.strip();
        if (value.startsWith("W/")) value = value.substring(2);
        if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\"")) value = value.substring(1, value.length() - 1);
        return value.toLowerCase(Locale.ROOT);
    }

    private static long parseSize(String size) {
        if (size == null) return -1;
        try {
            return Long.parseLong(size.strip());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static boolean rangeStartsAt(String contentRange, long start) {
        return contentRange != null && contentRange.strip().startsWith("bytes " + start + "-");
    }

    private static String abbreviate(String text) {
        String printable = text.replaceAll("\\p{Cntrl}", "?");
        return printable.length() <= 80 ? printable : printable.substring(0, 80) + "...";
    }

    static String sha256(Path file) throws IOException {
        return hash(file, "SHA-256", null);
    }

    /** git's object id of a file's contents: sha1 over "blob <size>\0" and the bytes. */
    static String gitBlobSha1(Path file) throws IOException {
        return hash(file, "SHA-1", ("blob " + Files.size(file) + "\0").getBytes(StandardCharsets.US_ASCII));
    }

    private static String hash(Path file, String algorithm, byte[] prefix) throws IOException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(algorithm + " is part of every JDK", e);
        }
        if (prefix != null) digest.update(prefix);
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buffer = new byte[1 << 16];
            for (int n; (n = in.read(buffer)) > 0; ) digest.update(buffer, 0, n);
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    /** Reports a file's progress to the listener (every 100 ms at most) and the log (every 5 s). */
    private final class Progress {
        final String model;
        final String file;
        final long total;
        final long started = System.nanoTime();
        long lastLogged = started;
        long lastReported = Long.MIN_VALUE;

        Progress(String model, String file, long total) {
            this.model = model;
            this.file = file;
            this.total = total;
        }

        void report(long done) {
            long now = System.nanoTime();
            if (listener != null && (now - lastReported >= PROGRESS_LISTENER_INTERVAL_NANOS || done == total)) {
                lastReported = now;
                listener.accept(new DownloadProgress(model, file, done, total));
            }
            if (now - lastLogged >= PROGRESS_LOG_INTERVAL_NANOS) {
                lastLogged = now;
                log.info("downloading {} of {}: {} of {} MB ({}%)", file, model, done >> 20, total >> 20,
                        total == 0 ? 100 : done * 100 / total);
            }
        }

        void finish() {
            double seconds = Math.max(1e-9, (System.nanoTime() - started) / 1e9);
            log.info("downloaded {} of {}: {} MB in {} s", file, model, String.format(Locale.ROOT, "%.1f", total / 1048576.0),
                    String.format(Locale.ROOT, "%.1f", seconds));
        }
    }

    /** Options of a {@link HubDownloader}. */
    public static final class Builder {
        private final Path cache;
        private URI endpoint = DEFAULT_ENDPOINT;
        private String token;
        private Consumer<DownloadProgress> listener;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration stallTimeout = Duration.ofSeconds(60);
        private int attempts = 5;
        private Duration retryPause = Duration.ofSeconds(1);

        private Builder(Path cache) {
            this.cache = Objects.requireNonNull(cache, "cache");
        }

        /** The Hub's address ({@link #DEFAULT_ENDPOINT}, or a mirror's). */
        public Builder endpoint(URI endpoint) {
            String scheme = String.valueOf(endpoint.getScheme()).toLowerCase(Locale.ROOT);
            if (!(scheme.equals("https") || scheme.equals("http")) || endpoint.getHost() == null) {
                throw new IllegalArgumentException("the Hub endpoint must be an http(s) address with a host: " + endpoint);
            }
            this.endpoint = endpoint;
            return this;
        }

        /** A Hugging Face access token, sent to the endpoint only; none by default. */
        public Builder token(String token) {
            this.token = token;
            return this;
        }

        /** Called with each file's progress, at most every 100 ms and once at its end, on the downloading thread. */
        public Builder progress(Consumer<DownloadProgress> listener) {
            this.listener = listener;
            return this;
        }

        public Builder connectTimeout(Duration timeout) {
            this.connectTimeout = positive(timeout, "connectTimeout");
            return this;
        }

        /** How long a connection may send nothing before it is dropped and the download resumed (60 s). */
        public Builder stallTimeout(Duration timeout) {
            this.stallTimeout = positive(timeout, "stallTimeout");
            return this;
        }

        /** Tries per request and per file before giving up (5), pausing 1, 2, 3, ... × the retry pause between them. */
        public Builder attempts(int attempts, Duration retryPause) {
            if (attempts < 1) throw new IllegalArgumentException("attempts must be at least 1: " + attempts);
            this.attempts = attempts;
            this.retryPause = Objects.requireNonNull(retryPause, "retryPause");
            return this;
        }

        public HubDownloader build() {
            return new HubDownloader(this);
        }

        private static Duration positive(Duration d, String name) {
            if (d.isNegative() || d.isZero() || d.toMillis() > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(name + " must be positive and under 24 days: " + d);
            }
            return d;
        }
    }
}
