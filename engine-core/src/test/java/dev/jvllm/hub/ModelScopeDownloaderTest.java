package dev.jvllm.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

// A loopback server that stops answering must fail the test, not stall CI.
/** Downloads from a ModelScope on loopback: its file list API, its file API with ranges, its cache layout. */
@Timeout(120)
class ModelScopeDownloaderTest {

    private static final String MODEL = "acme/tiny.v1";
    private static final String CONFIG = "{\"architectures\": [\"LlamaForCausalLM\"]}";

    @TempDir
    Path home;
    private Path cache;
    private HttpServer server;
    private byte[] weights;
    /** Path → (content, listed sha256 or "" for none). */
    private final Map<String, Object[]> files = new LinkedHashMap<>();
    private final List<String> queries = new CopyOnWriteArrayList<>();
    private final List<String> ranges = new CopyOnWriteArrayList<>();
    private final AtomicBoolean cutNextWeights = new AtomicBoolean();
    private volatile String listingOverride;
    /** Sizes the listing gives instead of the served bytes' own, by path. */
    private final Map<String, Long> listedSizes = new java.util.concurrent.ConcurrentHashMap<>();

    @BeforeEach
    void start() throws IOException {
        cache = home.resolve(".cache/modelscope/hub");
        weights = new byte[1 << 20];
        new Random(5).nextBytes(weights);
        file("config.json", CONFIG.getBytes(StandardCharsets.UTF_8), true);
        file("tokenizer.json", "{}".getBytes(StandardCharsets.UTF_8), false);
        file("model.safetensors", weights, true);
        file("pytorch_model.bin", new byte[64], true);
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 8);
        server.createContext("/", this::handle);
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private void file(String path, byte[] content, boolean listSha) {
        files.put(path, new Object[]{content, listSha ? FakeHub.sha256(content) : ""});
    }

    private URI endpoint() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    private ModelScopeDownloader downloader() {
        return ModelScopeDownloader.builder(cache).endpoint(endpoint()).attempts(3, Duration.ofMillis(10)).build();
    }

    private Path modelDirectory() {
        return cache.resolve("models/acme/tiny___v1");
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            String path = exchange.getRequestURI().getPath();
            Map<String, String> query = Stream.of(exchange.getRequestURI().getRawQuery().split("&"))
                    .map(p -> p.split("=", 2)).collect(Collectors.toMap(p -> p[0], p -> URLDecoder.decode(p[1], StandardCharsets.UTF_8)));
            queries.add(path + "?" + query);
            if (path.equals("/api/v1/models/" + MODEL + "/repo/files")) {
                String json = listingOverride != null ? listingOverride : files.entrySet().stream()
                        .map(e -> "{\"Type\": \"blob\", \"Path\": \"" + e.getKey() + "\", \"Size\": "
                                + listedSizes.getOrDefault(e.getKey(), (long) ((byte[]) e.getValue()[0]).length)
                                + ", \"Sha256\": \"" + e.getValue()[1] + "\"}")
                        .collect(Collectors.joining(", ", "{\"Code\": 200, \"Data\": {\"Files\": [{\"Type\": \"tree\", \"Path\": \"1_Pooling\"}, ", "]}}"));
                byte[] body = json.getBytes(StandardCharsets.UTF_8);
                exchange.sendResponseHeaders(200, body.length);
                exchange.getResponseBody().write(body);
                return;
            }
            if (!path.equals("/api/v1/models/" + MODEL + "/repo") || !files.containsKey(query.get("FilePath"))) {
                exchange.sendResponseHeaders(404, -1);
                return;
            }
            byte[] content = (byte[]) files.get(query.get("FilePath"))[0];
            String range = exchange.getRequestHeaders().getFirst("Range");
            int start = range == null ? 0 : Integer.parseInt(range.substring(6, range.indexOf('-')));
            if (query.get("FilePath").equals("model.safetensors")) ranges.add(String.valueOf(range));
            if (range != null) {
                exchange.getResponseHeaders().add("Content-Range", "bytes " + start + "-" + (content.length - 1) + "/" + content.length);
                exchange.sendResponseHeaders(206, content.length - start);
            } else {
                exchange.sendResponseHeaders(200, content.length);
            }
            if (query.get("FilePath").equals("model.safetensors") && cutNextWeights.getAndSet(false)) {
                exchange.getResponseBody().write(content, start, (content.length - start) / 2);
                throw new IOException("fault: cut halfway");
            }
            exchange.getResponseBody().write(content, start, content.length - start);
        }
    }

    @Test
    void theResolverDownloadsFromModelScopeIntoItsLayoutAndFindsItOfflineAfterwards() throws Exception {
        Map<String, String> env = Map.of("VLLM_USE_MODELSCOPE", "true", "MODELSCOPE_DOMAIN", endpoint().toString(),
                "MODELSCOPE_CACHE", cache.toString());

        Path directory = new ModelResolver(env, home).resolveOrDownload(MODEL, "main");

        assertEquals(modelDirectory(), directory);
        assertEquals(CONFIG, Files.readString(directory.resolve("config.json")));
        assertArrayEquals(weights, Files.readAllBytes(directory.resolve("model.safetensors")));
        assertFalse(Files.exists(directory.resolve("pytorch_model.bin")));
        assertTrue(queries.stream().allMatch(q -> q.contains("Revision=master")), "'main' is ModelScope's master: " + queries);
        try (Stream<Path> siblings = Files.list(directory.getParent())) {
            assertEquals(List.of(directory), siblings.toList(), "no staging directory left");
        }
        server.stop(0);
        Map<String, String> offline = new LinkedHashMap<>(env);
        offline.put("HF_HUB_OFFLINE", "1");
        assertEquals(directory, new ModelResolver(offline, home).resolveOrDownload(MODEL, "main"));
    }

    @Test
    void aCutDownloadResumesAndAFileWithoutAListedHashIsCheckedBySize() throws Exception {
        cutNextWeights.set(true);

        Path directory = downloader().download(MODEL, "master", d -> { });

        assertArrayEquals(weights, Files.readAllBytes(directory.resolve("model.safetensors")));
        assertEquals(List.of("null", "bytes=" + weights.length / 2 + "-"), ranges);
        assertEquals("{}", Files.readString(directory.resolve("tokenizer.json")));
    }

    @Test
    void bytesThatDoNotMatchTheListedHashAreRefusedAndNothingIsTakenForTheModel() {
        files.put("model.safetensors", new Object[]{weights, "e".repeat(64)});

        assertThrowsNaming(HubDownloadException.class, () -> downloader().download(MODEL, "master", d -> { }),
                "model.safetensors", "does not match its hash");
        assertFalse(Files.exists(modelDirectory()));
    }

    @Test
    void aFileWithoutAListedHashWhoseBytesFallShortOfItsSizeIsRefused() {
        listedSizes.put("tokenizer.json", 5L);  // served: "{}", 2 bytes

        assertThrowsNaming(HubDownloadException.class, () -> downloader().download(MODEL, "master", d -> { }),
                "tokenizer.json", "2 of 5 bytes");
        assertFalse(Files.exists(modelDirectory()));
    }

    @Test
    void weightsWithoutAListedHashAreRefusedBeforeAnyDownload() {
        file("model.safetensors", weights, false);

        assertThrowsNaming(HubDownloadException.class, () -> downloader().download(MODEL, "master", d -> { }),
                "model.safetensors", "no Sha256");
        assertTrue(ranges.isEmpty(), "no weights were fetched");
        assertFalse(Files.exists(modelDirectory()));
    }

    @Test
    void aModelRefusedOnItsConfigLeavesNoModelDirectory() {
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> downloader().download(MODEL, "master", d -> { throw new IllegalStateException("quantized"); }));

        assertEquals("quantized", e.getMessage());
        assertTrue(ranges.isEmpty(), "no weights were fetched");
        assertFalse(Files.exists(modelDirectory()));
    }

    @Test
    void unsafeNamesAndRefusalsInTheListingAreErrorsNamingThem() {
        listingOverride = "{\"Code\": 200, \"Data\": {\"Files\": [{\"Type\": \"blob\", \"Path\": \"../../evil.json\", \"Size\": 2}]}}";
        assertThrowsNaming(HubDownloadException.class, () -> downloader().download(MODEL, "master", d -> { }),
                "../../evil.json", "not a plain relative path");

        listingOverride = "{\"Code\": 10010205001, \"Message\": \"model not found\", \"Data\": null}";
        assertThrowsNaming(HubDownloadException.class, () -> downloader().download(MODEL, "master", d -> { }),
                "ModelScope refused", "model not found");
    }

    @Test
    void anUnknownModelIsNotFoundThroughTheResolver() {
        Map<String, String> env = Map.of("VLLM_USE_MODELSCOPE", "1", "MODELSCOPE_DOMAIN", endpoint().toString(),
                "MODELSCOPE_CACHE", cache.toString());

        assertThrowsNaming(ModelNotFoundException.class, () -> new ModelResolver(env, home).resolveOrDownload("acme/other", "main"),
                "acme/other", "ModelScope", "404");
    }
}
