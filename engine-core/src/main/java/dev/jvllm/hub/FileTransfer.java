package dev.jvllm.hub;

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
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The HTTP side of the model downloaders ({@link HubDownloader}, {@link ModelScopeDownloader}):
 * requests that follow redirects themselves, sending the token only to the hub's own origin and
 * refusing any address that is not http(s); retries of server errors and dropped connections; and
 * {@link #fetch}, a file written as {@code .incomplete} under a lock file, resumed by range, checked
 * against its size and hash, then moved into place.
 */
final class FileTransfer {

    private static final Logger log = LoggerFactory.getLogger(FileTransfer.class);
    private static final int MAX_REDIRECTS = 5;
    /** Bounds on a hub's file list, untrusted like everything it sends: its bytes, and its files. */
    private static final int MAX_LISTING_BYTES = 32 << 20;
    static final int MAX_LISTED_FILES = 20_000;
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    static final Pattern SHA1 = Pattern.compile("[0-9a-f]{40}");
    private static final long PROGRESS_LOG_INTERVAL_NANOS = 5_000_000_000L;
    private static final long PROGRESS_LISTENER_INTERVAL_NANOS = 100_000_000L;
    /** One lock per lock file within this process: a {@link FileLock} only keeps other processes out. */
    private static final Map<Path, ReentrantLock> PROCESS_LOCKS = new ConcurrentHashMap<>();

    /** How a hub words a refusal (a 4xx other than 429) of one request, by HTTP status and its error code header. */
    interface Refusal {
        String message(int status, String errorCode);
    }

    interface Call<T> {
        T run() throws IOException;
    }

    private final String hubName;
    private final String endpoint;
    private final String endpointOrigin;
    private final String token;
    private final Duration connectTimeout;
    private final Duration stallTimeout;
    private final int attempts;
    private final Duration retryPause;
    private final Consumer<DownloadProgress> listener;
    private final String unreachableHint;

    /**
     * @param hubName         how messages name the hub ("the Hub", "ModelScope")
     * @param unreachableHint what a message about an unknown host suggests
     */
    FileTransfer(String hubName, URI endpoint, String token, Duration connectTimeout, Duration stallTimeout, int attempts,
                 Duration retryPause, Consumer<DownloadProgress> listener, String unreachableHint) {
        this.hubName = hubName;
        String base = endpoint.toString();
        this.endpoint = base.endsWith("/") ? base.substring(0, base.length() - 1) : base;
        this.endpointOrigin = origin(endpoint);
        this.token = token;
        this.connectTimeout = connectTimeout;
        this.stallTimeout = stallTimeout;
        this.attempts = attempts;
        this.retryPause = retryPause;
        this.listener = listener;
        this.unreachableHint = unreachableHint;
    }

    /** The endpoint without a trailing slash, to append paths to. */
    String endpoint() {
        return endpoint;
    }

    boolean hasToken() {
        return token != null;
    }

    /** A hub's file list (JSON) of at most {@link #MAX_LISTING_BYTES}, asked for with retries. */
    byte[] getListing(URI uri, String what, Refusal refusal) {
        return withRetries(what, () -> {
            HttpURLConnection c = request(uri, "GET", Map.of("Accept", "application/json"), true);
            try {
                int status = c.getResponseCode();
                if (status != 200) throw failure(c, status, what, refusal);
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
    }

    /**
     * Puts the file at {@code location} ({@code size} bytes) at {@code target} unless it is there:
     * under {@code lockFile} (threads and processes take turns), into {@code target.incomplete}, resumed
     * by HTTP range across attempts (a 200 answer restarts it), then checked against {@code hash}
     * (64 hex digits: sha256; 40: git's blob sha1; null: the size only) and moved into place.
     */
    void fetch(String model, String file, URI location, long size, String hash, Path target, Path lockFile, Refusal refusal)
            throws IOException {
        if (Files.isRegularFile(target)) return;
        Files.createDirectories(lockFile.getParent());
        Files.createDirectories(target.getParent());
        ReentrantLock processLock = PROCESS_LOCKS.computeIfAbsent(lockFile, k -> new ReentrantLock());
        processLock.lock();
        try (FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock ignored = channel.lock()) {
            if (!Files.isRegularFile(target)) fetchUnlocked(model, file, location, size, hash, target, refusal);
        } finally {
            processLock.unlock();
        }
    }

    private void fetchUnlocked(String model, String file, URI location, long size, String hash, Path target, Refusal refusal)
            throws IOException {
        Path partial = target.resolveSibling(target.getFileName() + ".incomplete");
        Progress progress = new Progress(model, file, size);
        IOException last = null;
        for (int attempt = 1; attempt <= attempts; attempt++) {
            long have = Files.isRegularFile(partial) ? Files.size(partial) : 0;
            if (have > size) {
                Files.delete(partial);
                have = 0;
            }
            if (have == size && Files.exists(partial)) break;
            try {
                Map<String, String> headers = have > 0 ? Map.of("Range", "bytes=" + have + "-", "Accept-Encoding", "identity")
                        : Map.of("Accept-Encoding", "identity");
                HttpURLConnection c = request(location, "GET", headers, true);
                try {
                    int status = c.getResponseCode();
                    boolean append;
                    if (status == 206 && have > 0 && rangeStartsAt(c.getHeaderField("Content-Range"), have)) {
                        append = true;
                    } else if (status == 200) {
                        append = false; // the whole file, whatever was asked
                    } else if (status == 416 && have == size) {
                        break;
                    } else if (status == 206) {
                        Files.deleteIfExists(partial); // a range other than the one asked for: start over
                        throw new IOException("the server answered a range other than bytes=" + have + "-");
                    } else {
                        throw failure(c, status, file + " of " + model, refusal);
                    }
                    if (attempt > 1 || have > 0) {
                        log.info("{} of {}: {} at byte {}", file, model, append ? "resuming" : "restarting", append ? have : 0);
                    }
                    copy(c, partial, append ? have : 0, size, progress);
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
        if (have != size) {
            throw new HubDownloadException("downloading " + file + " of " + model + " failed after " + attempts + " attempts: "
                    + have + " of " + size + " bytes" + (last == null ? "" : " (" + last + ")"), last);
        }
        if (hash != null) {
            String actual = hash.length() == 64 ? sha256(partial) : gitBlobSha1(partial);
            if (!actual.equals(hash)) {
                Files.delete(partial);
                throw new HubDownloadException(file + " of " + model + " does not match its hash: " + hubName + " named " + hash
                        + ", the bytes received hash to " + actual + "; the download was deleted");
            }
        }
        Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE);
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
                            + total + " bytes " + hubName + " announced; refused");
                }
                out.write(buffer, 0, n);
                done += n;
                progress.report(done);
            }
            if (done != total) throw new IOException("the connection ended at byte " + done + " of " + total);
        }
    }

    /** An answer worth asking again for: a server error, or too many requests. */
    private static final class RetryableException extends IOException {
        RetryableException(String message) {
            super(message);
        }
    }

    <T> T withRetries(String what, Call<T> call) {
        IOException last = null;
        for (int attempt = 1; attempt <= attempts; attempt++) {
            try {
                return call.run();
            } catch (java.net.UnknownHostException e) {
                throw new HubDownloadException("could not reach " + hubName + " at " + endpoint + " for " + what + " (unknown host "
                        + e.getMessage() + "); " + unreachableHint, e);
            } catch (IOException e) {
                last = e;
                log.warn("asking {} for {} failed ({}); attempt {} of {}", hubName, what, e.toString(), attempt, attempts);
                pause(attempt);
            }
        }
        throw new HubDownloadException("asking " + hubName + " at " + endpoint + " for " + what + " failed " + attempts
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
    HttpURLConnection request(URI uri, String method, Map<String, String> headers, boolean followElsewhere) throws IOException {
        for (int redirects = 0; ; redirects++) {
            String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
            if (!scheme.equals("https") && !scheme.equals("http")) {
                throw new HubDownloadException("refused to follow " + hubName + " to a " + (scheme.isEmpty() ? "relative" : scheme)
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
                throw new HubDownloadException(hubName + " redirected more than " + MAX_REDIRECTS + " times (last to host "
                        + next.getHost() + ")");
            }
            uri = next;
        }
    }

    static boolean isRedirect(int status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    }

    URI redirectTarget(URI from, HttpURLConnection c) throws IOException {
        String location = c.getHeaderField("Location");
        if (location == null) throw new IOException("a redirect (" + c.getResponseCode() + ") without a Location");
        try {
            return from.resolve(new URI(location));
        } catch (URISyntaxException e) {
            throw new HubDownloadException(hubName + " redirected to a malformed address");
        }
    }

    static String origin(URI uri) {
        int port = uri.getPort() >= 0 ? uri.getPort() : "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
        return String.valueOf(uri.getScheme()).toLowerCase(Locale.ROOT) + "://"
                + String.valueOf(uri.getHost()).toLowerCase(Locale.ROOT) + ":" + port;
    }

    /**
     * The error for an answer other than the one expected: server errors and 429 come back to be
     * retried; any other is thrown as a {@link HubDownloadException} worded by the hub.
     */
    IOException failure(HttpURLConnection c, int status, String what, Refusal refusal) {
        if (status >= 500 || status == 429) return new RetryableException(hubName + " answered " + status + " for " + what);
        String code = c.getHeaderField("X-Error-Code");
        String message = status >= 400 && status < 500 ? refusal.message(status, code == null ? "" : code) : null;
        throw new HubDownloadException(message != null ? message : hubName + " answered " + status + " for " + what, status, null);
    }

    // ---- small pieces ---------------------------------------------------------------------------

    /** Whether {@code text} is a sha256 in lower-case hex. */
    static boolean isSha256(String text) {
        return SHA256.matcher(text).matches();
    }

    /** Whether {@code text} names content as {@link #fetch} checks it: a sha256, or git's sha1 of a blob (a commit's too). */
    static boolean isContentHash(String text) {
        return SHA256.matcher(text).matches() || SHA1.matcher(text).matches();
    }

    /** A repository path with each part URL-encoded, its slashes kept. */
    static String encodePath(String file) {
        return Arrays.stream(file.split("/"))
                .map(part -> URLEncoder.encode(part, StandardCharsets.UTF_8).replace("+", "%20"))
                .collect(Collectors.joining("/"));
    }

    static long parseSize(String size) {
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

    /** Untrusted text for a message: control characters replaced, at most 80 characters. */
    static String abbreviate(String text) {
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
}
