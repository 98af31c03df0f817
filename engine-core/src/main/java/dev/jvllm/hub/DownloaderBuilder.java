package dev.jvllm.hub;

import java.time.Duration;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The options every model downloader's builder takes ({@link HubDownloader.Builder},
 * {@link ModelScopeDownloader.Builder}).
 *
 * @param <B> the builder itself, returned by each setter
 */
public abstract class DownloaderBuilder<B extends DownloaderBuilder<B>> {

    final FileTransfer.Options options = new FileTransfer.Options();

    DownloaderBuilder() {
    }

    abstract B self();

    /** An access token, sent to the hub's own address only; none by default. */
    public B token(String token) {
        options.token = token;
        return self();
    }

    /** Called with each file's progress, at most every 100 ms and once at its end, on the downloading thread. */
    public B progress(Consumer<DownloadProgress> listener) {
        options.listener = listener;
        return self();
    }

    /** How long opening a connection may take (10 s). */
    public B connectTimeout(Duration timeout) {
        options.connectTimeout = FileTransfer.Options.positive(timeout, "connectTimeout");
        return self();
    }

    /** How long a connection may send nothing before it is dropped and the download resumed (60 s). */
    public B stallTimeout(Duration timeout) {
        options.stallTimeout = FileTransfer.Options.positive(timeout, "stallTimeout");
        return self();
    }

    /** Tries per request and per file before giving up (5), pausing 1, 2, 3, ... × the retry pause between them. */
    public B attempts(int attempts, Duration retryPause) {
        if (attempts < 1) throw new IllegalArgumentException("attempts must be at least 1: " + attempts);
        options.attempts = attempts;
        options.retryPause = Objects.requireNonNull(retryPause, "retryPause");
        return self();
    }

    /** An http(s) address with a host, or an error naming what it is for. */
    static java.net.URI httpAddress(java.net.URI address, String what) {
        String scheme = String.valueOf(address.getScheme()).toLowerCase(java.util.Locale.ROOT);
        if (!(scheme.equals("https") || scheme.equals("http")) || address.getHost() == null) {
            throw new IllegalArgumentException(what + " must be an http(s) address with a host: " + address);
        }
        return address;
    }
}
