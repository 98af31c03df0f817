package dev.jvllm.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * A Hugging Face Hub on loopback, as much of it as a download uses: the model API's file list, HEAD and
 * GET at {@code /org/name/resolve/<revision>/<file>}, small files served there (ETag = git blob sha1)
 * and large ones ("LFS": X-Linked-Etag = sha256, X-Linked-Size) redirected to a second server, the
 * "CDN", at another host name (localhost against 127.0.0.1). Both honour ranges. Every request is
 * recorded; faults can be set per file.
 */
final class FakeHub implements AutoCloseable {

    /** One request as the server saw it. */
    record Seen(String server, String method, String path, String range, String authorization) {
    }

    /** What goes wrong when a file's body is served (its next {@code times} GETs). */
    enum Fault { CUT_HALFWAY, STALL_HALFWAY, IGNORE_RANGE, SERVER_ERROR }

    final String model;
    final String commit;
    private final Map<String, byte[]> files = new LinkedHashMap<>();
    private final Map<String, Boolean> large = new LinkedHashMap<>();
    private final Map<String, Fault> faults = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> faultsLeft = new ConcurrentHashMap<>();
    final List<Seen> seen = new CopyOnWriteArrayList<>();
    volatile String requiredToken;
    volatile long stallMillis = 2_000;
    volatile long bodyDelayMillis;
    /** Rewrites the listing's file names, to serve what a hostile Hub would. */
    volatile Function<List<String>, List<String>> listingNames = names -> names;
    /** Rewrites a file's announced ETag. */
    volatile Function<String, String> etags = etag -> etag;
    private final HttpServer hub;
    private final HttpServer cdn;
    private final ExecutorService threads = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "fake-hub");
        t.setDaemon(true);
        return t;
    });

    FakeHub(String model, String commit) throws IOException {
        this.model = model;
        this.commit = commit;
        InetAddress loopback = InetAddress.getLoopbackAddress();
        hub = HttpServer.create(new InetSocketAddress(loopback, 0), 16);
        cdn = HttpServer.create(new InetSocketAddress(loopback, 0), 16);
        hub.createContext("/", exchange -> handle("hub", exchange));
        cdn.createContext("/", exchange -> handle("cdn", exchange));
        hub.setExecutor(threads);
        cdn.setExecutor(threads);
        hub.start();
        cdn.start();
    }

    /** The Hub's address, by IP; the CDN is named "localhost", so it is another origin. */
    URI endpoint() {
        return URI.create("http://127.0.0.1:" + hub.getAddress().getPort());
    }

    FakeHub file(String name, byte[] content, boolean lfs) {
        files.put(name, content);
        large.put(name, lfs);
        return this;
    }

    FakeHub file(String name, String content) {
        return file(name, content.getBytes(StandardCharsets.UTF_8), false);
    }

    void fault(String file, Fault fault, int times) {
        faults.put(file, fault);
        faultsLeft.put(file, new AtomicInteger(times));
    }

    /** GETs of a file's bytes, at the Hub or the CDN. */
    long bodyRequests(String file) {
        String hubPath = "/" + model + "/resolve/" + commit + "/" + file;
        String cdnPath = "/blobs/" + sha256(files.get(file));
        return seen.stream().filter(s -> s.method.equals("GET") && (s.path.equals(hubPath) || s.path.equals(cdnPath))).count();
    }

    static String sha256(byte[] content) {
        return digest("SHA-256", content, new byte[0]);
    }

    static String gitBlobSha1(byte[] content) {
        return digest("SHA-1", content, ("blob " + content.length + "\0").getBytes(StandardCharsets.US_ASCII));
    }

    private static String digest(String algorithm, byte[] content, byte[] prefix) {
        try {
            MessageDigest d = MessageDigest.getInstance(algorithm);
            d.update(prefix);
            return HexFormat.of().formatHex(d.digest(content));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private void handle(String server, HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getRawPath();
        String method = exchange.getRequestMethod();
        seen.add(new Seen(server, method, path, exchange.getRequestHeaders().getFirst("Range"),
                exchange.getRequestHeaders().getFirst("Authorization")));
        try (exchange) {
            if (server.equals("hub") && requiredToken != null
                    && !("Bearer " + requiredToken).equals(exchange.getRequestHeaders().getFirst("Authorization"))) {
                exchange.getResponseHeaders().add("X-Error-Code", "GatedRepo");
                exchange.sendResponseHeaders(401, -1);
                return;
            }
            if (server.equals("cdn")) {
                String sha = path.substring("/blobs/".length());
                for (var e : files.entrySet()) {
                    if (sha256(e.getValue()).equals(sha)) {
                        serveBody(exchange, e.getKey(), e.getValue());
                        return;
                    }
                }
                exchange.sendResponseHeaders(404, -1);
                return;
            }
            String api = "/api/models/" + model + "/revision/";
            if (path.startsWith("/api/models/")) {
                if (!path.startsWith(api)) {
                    exchange.getResponseHeaders().add("X-Error-Code", "RepoNotFound");
                    exchange.sendResponseHeaders(404, -1);
                } else if (!List.of("main", commit).contains(URI.create("x:/" + path.substring(api.length())).getPath().substring(1))) {
                    exchange.getResponseHeaders().add("X-Error-Code", "RevisionNotFound");
                    exchange.sendResponseHeaders(404, -1);
                } else {
                    List<String> names = listingNames.apply(new ArrayList<>(files.keySet()));
                    StringBuilder json = new StringBuilder("{\"id\":\"" + model + "\",\"sha\":\"" + commit + "\",\"siblings\":[");
                    for (int i = 0; i < names.size(); i++) {
                        json.append(i == 0 ? "" : ",").append("{\"rfilename\":\"").append(names.get(i).replace("\\", "\\\\")).append("\"}");
                    }
                    byte[] body = json.append("]}").toString().getBytes(StandardCharsets.UTF_8);
                    exchange.getResponseHeaders().add("Content-Type", "application/json");
                    exchange.sendResponseHeaders(200, body.length);
                    exchange.getResponseBody().write(body);
                }
                return;
            }
            String resolve = "/" + model + "/resolve/" + commit + "/";
            String file = path.startsWith(resolve) ? path.substring(resolve.length()) : null;
            if (file == null || !files.containsKey(file)) {
                exchange.getResponseHeaders().add("X-Error-Code", "EntryNotFound");
                exchange.sendResponseHeaders(404, -1);
                return;
            }
            byte[] content = files.get(file);
            exchange.getResponseHeaders().add("X-Repo-Commit", commit);
            if (large.get(file)) {
                exchange.getResponseHeaders().add("X-Linked-Etag", "\"" + etags.apply(sha256(content)) + "\"");
                exchange.getResponseHeaders().add("X-Linked-Size", String.valueOf(content.length));
                exchange.getResponseHeaders().add("Location", "http://localhost:" + cdn.getAddress().getPort() + "/blobs/" + sha256(content));
                exchange.sendResponseHeaders(302, -1);
                return;
            }
            exchange.getResponseHeaders().add("ETag", "\"" + etags.apply(gitBlobSha1(content)) + "\"");
            if (method.equals("HEAD")) {
                exchange.getResponseHeaders().add("Content-Length", String.valueOf(content.length));
                exchange.sendResponseHeaders(200, -1);
                return;
            }
            serveBody(exchange, file, content);
        }
    }

    private void serveBody(HttpExchange exchange, String file, byte[] content) throws IOException {
        Fault fault = faults.get(file);
        if (fault != null && faultsLeft.get(file).getAndDecrement() <= 0) fault = null;
        if (fault == Fault.SERVER_ERROR) {
            exchange.sendResponseHeaders(503, -1);
            return;
        }
        int start = 0;
        String range = exchange.getRequestHeaders().getFirst("Range");
        if (range != null && fault != Fault.IGNORE_RANGE) {
            start = Integer.parseInt(range.substring("bytes=".length(), range.indexOf('-')));
            exchange.getResponseHeaders().add("Content-Range", "bytes " + start + "-" + (content.length - 1) + "/" + content.length);
            exchange.sendResponseHeaders(206, content.length - start);
        } else {
            exchange.sendResponseHeaders(200, content.length);
        }
        OutputStream out = exchange.getResponseBody();
        int half = start + (content.length - start) / 2;
        if (fault == Fault.CUT_HALFWAY || fault == Fault.STALL_HALFWAY) {
            out.write(content, start, half - start);
            out.flush();
            if (fault == Fault.STALL_HALFWAY) sleep(stallMillis);
            // Ends the exchange short of its announced length: the client sees the connection end.
            throw new IOException("fault: connection ended halfway");
        }
        if (bodyDelayMillis > 0) sleep(bodyDelayMillis);
        out.write(content, start, content.length - start);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        hub.stop(0);
        cdn.stop(0);
        threads.shutdownNow();
    }
}
