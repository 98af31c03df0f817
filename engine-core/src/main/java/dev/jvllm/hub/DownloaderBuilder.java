package dev.jvllm.hub;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The options every model downloader's builder takes ({@link HubDownloader.Builder},
 * {@link ModelScopeDownloader.Builder}).
 *
 * @param <B> the builder itself, returned by each setter
 */
public abstract class DownloaderBuilder<B extends DownloaderBuilder<B>> {

    final Path cache;
    private String token;
    private Consumer<DownloadProgress> listener;
    private Duration connectTimeout = Duration.ofSeconds(10);
    private Duration stallTimeout = Duration.ofSeconds(60);
    private int attempts = 5;
    private Duration retryPause = Duration.ofSeconds(1);
    private final String hubName;
    URI endpoint;

    DownloaderBuilder(Path cache, URI defaultEndpoint, String hubName) {
        this.cache = Objects.requireNonNull(cache, "cache").toAbsolutePath().normalize();
        this.endpoint = defaultEndpoint;
        this.hubName = hubName;
    }

    abstract B self();

    /** The hub's address (its public site by default, or a mirror's). */
    public B endpoint(URI endpoint) {
        String scheme = String.valueOf(endpoint.getScheme()).toLowerCase(Locale.ROOT);
        if (!(scheme.equals("https") || scheme.equals("http")) || endpoint.getHost() == null) {
            throw new IllegalArgumentException(hubName + "'s endpoint must be an http(s) address with a host: " + endpoint);
        }
        this.endpoint = endpoint;
        return self();
    }

    /** An access token, sent to the hub's own address only; none by default. */
    public B token(String token) {
        this.token = token;
        return self();
    }

    /** Called with each file's progress, at most every 100 ms and once at its end, on the downloading thread. */
    public B progress(Consumer<DownloadProgress> listener) {
        this.listener = listener;
        return self();
    }

    /** How long opening a connection may take (10 s). */
    public B connectTimeout(Duration timeout) {
        this.connectTimeout = positive(timeout, "connectTimeout");
        return self();
    }

    /** How long a connection may send nothing before it is dropped and the download resumed (60 s). */
    public B stallTimeout(Duration timeout) {
        this.stallTimeout = positive(timeout, "stallTimeout");
        return self();
    }

    /** Tries per request and per file before giving up (5), pausing 1, 2, 3, ... × the retry pause between them. */
    public B attempts(int attempts, Duration retryPause) {
        if (attempts < 1) throw new IllegalArgumentException("attempts must be at least 1: " + attempts);
        this.attempts = attempts;
        this.retryPause = Objects.requireNonNull(retryPause, "retryPause");
        return self();
    }

    /** The transfers of a downloader built from these options; {@code unreachableHint} is what an unknown host's message suggests. */
    FileTransfer transfer(String unreachableHint) {
        return new FileTransfer(hubName, endpoint, token, connectTimeout, stallTimeout, attempts, retryPause, listener,
                unreachableHint);
    }

    private static Duration positive(Duration d, String name) {
        if (d.isNegative() || d.isZero() || d.toMillis() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + " must be positive and under 24 days: " + d);
        }
        return d;
    }
}
