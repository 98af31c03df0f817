package dev.jvllm.hub;

import java.net.URI;
import java.nio.file.Path;

/** A download run as its own process by {@link HubDownloaderTest}: arguments endpoint, hub cache, model, revision, token. */
public final class DownloadInAnotherProcess {

    private DownloadInAnotherProcess() {
    }

    public static void main(String[] args) {
        Path snapshot = HubDownloader.builder(Path.of(args[1])).endpoint(URI.create(args[0])).token(args[4]).build()
                .download(args[2], args[3]);
        System.out.println(snapshot);
    }
}
