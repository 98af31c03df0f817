package dev.jvllm.hub;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

// A loopback server that stops answering must fail the test, not stall CI.
@Timeout(120)
class HubDownloaderTest {

    private static final String MODEL = "acme/tiny-llama";
    private static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";
    private static final String CONFIG = "{\"architectures\": [\"LlamaForCausalLM\"]}";

    @TempDir
    Path home;
    private Path cache;
    private FakeHub hub;
    private byte[] weights;

    @BeforeEach
    void startHub() throws Exception {
        cache = home.resolve(".cache/huggingface/hub");
        weights = new byte[3 << 20];
        new Random(7).nextBytes(weights);
        hub = new FakeHub(MODEL, COMMIT)
                .file("config.json", CONFIG)
                .file("tokenizer.json", "{\"model\": {}}")
                .file("model.safetensors", weights, true)
                .file("1_Pooling/config.json", "{\"pooling_mode_cls_token\": true}");
    }

    @AfterEach
    void stopHub() {
        hub.close();
    }

    private HubDownloader.Builder downloader() {
        return HubDownloader.builder(cache).endpoint(hub.endpoint()).attempts(3, Duration.ofMillis(10))
                .stallTimeout(Duration.ofSeconds(10));
    }

    private Path repository() {
        return cache.resolve("models--acme--tiny-llama");
    }

    @Test
    void downloadsIntoTheHuggingFaceCacheLayout() throws Exception {
        Path snapshot = downloader().build().download(MODEL, "main");

        assertEquals(repository().resolve("snapshots").resolve(COMMIT), snapshot);
        assertEquals(COMMIT, Files.readString(repository().resolve("refs/main")));
        Path config = snapshot.resolve("config.json");
        assertTrue(Files.isSymbolicLink(config));
        assertEquals(Path.of("../../blobs/" + FakeHub.gitBlobSha1(CONFIG.getBytes(StandardCharsets.UTF_8))),
                Files.readSymbolicLink(config));
        assertEquals(CONFIG, Files.readString(config));
        assertArrayEquals(weights, Files.readAllBytes(snapshot.resolve("model.safetensors")));
        assertEquals(Path.of("../../../blobs/" + FakeHub.gitBlobSha1("{\"pooling_mode_cls_token\": true}".getBytes(StandardCharsets.UTF_8))),
                Files.readSymbolicLink(snapshot.resolve("1_Pooling/config.json")));
        assertTrue(Files.isRegularFile(repository().resolve("blobs").resolve(FakeHub.sha256(weights))));
        try (Stream<Path> blobs = Files.list(repository().resolve("blobs"))) {
            assertTrue(blobs.noneMatch(p -> p.toString().endsWith(".incomplete")));
        }
    }

    @Test
    void theResolverDownloadsWhatItDoesNotFindAndFindsItOfflineAfterwards() {
        Map<String, String> env = Map.of("HF_ENDPOINT", hub.endpoint().toString());
        Path snapshot = new ModelResolver(env, home).resolveOrDownload(MODEL, "main");
        hub.close();

        Map<String, String> offline = Map.of("HF_ENDPOINT", hub.endpoint().toString(), "HF_HUB_OFFLINE", "1");
        assertEquals(snapshot, new ModelResolver(offline, home).resolveOrDownload(MODEL, "main"));
        assertEquals(snapshot, new ModelResolver(Map.of(), home).resolve(MODEL));
    }

    @Test
    void offlineModeAsksNothingAndSaysWhy() {
        Map<String, String> env = Map.of("HF_ENDPOINT", hub.endpoint().toString(), "HF_HUB_OFFLINE", "true");

        assertThrowsNaming(ModelNotFoundException.class, () -> new ModelResolver(env, home).resolveOrDownload(MODEL, "main"),
                MODEL, "HF_HUB_OFFLINE", "models--acme--tiny-llama");
        assertTrue(hub.seen.isEmpty());
    }

    @Test
    void aSecondDownloadFetchesNoBytesAgain() {
        downloader().build().download(MODEL, "main");
        downloader().build().download(MODEL, "main");

        assertEquals(1, hub.bodyRequests("model.safetensors"));
        assertEquals(1, hub.bodyRequests("config.json"));
    }

    @Test
    void otherWeightFormatsOriginalCheckpointsAndCodeAreNotFetched() {
        hub.file("pytorch_model.bin", new byte[100], true)
                .file("original/consolidated.00.pth", new byte[100], true)
                .file("original/params.json", "{}")
                .file("onnx/model.onnx", new byte[100], true)
                .file("modeling_evil.py", "import os; os.system('rm -rf ~')")
                .file("configuration_evil.py", "x = 1")
                .file("kernels/libfast.so", new byte[100], true)
                .file("tokenizer.model", new byte[10], true);

        Path snapshot = downloader().build().download(MODEL, "main");

        assertTrue(Files.exists(snapshot.resolve("tokenizer.model")));
        for (String skipped : List.of("pytorch_model.bin", "original/consolidated.00.pth", "original/params.json", "onnx/model.onnx",
                "modeling_evil.py", "configuration_evil.py", "kernels/libfast.so")) {
            assertFalse(Files.exists(snapshot.resolve(skipped)), skipped);
            assertEquals(0, hub.bodyRequests(skipped), skipped);
        }
    }

    @Test
    void aRepositoryWithoutSafetensorsIsRefusedBeforeAnyDownload() throws Exception {
        try (FakeHub binOnly = new FakeHub(MODEL, COMMIT).file("config.json", CONFIG).file("pytorch_model.bin", new byte[64], true)) {
            HubDownloader downloader = HubDownloader.builder(cache).endpoint(binOnly.endpoint()).build();

            assertThrowsNaming(HubDownloadException.class, () -> downloader.download(MODEL, "main"),
                    "no safetensors weights", "pytorch_model.bin");
            assertTrue(binOnly.seen.stream().allMatch(s -> s.path().startsWith("/api/")));
        }
    }

    @Test
    void theTokenGoesToTheHubButNotAlongTheRedirectToAnotherHost() {
        hub.requiredToken = "hf_secret";
        downloader().token("hf_secret").build().download(MODEL, "main");

        List<FakeHub.Seen> atHub = hub.seen.stream().filter(s -> s.server().equals("hub")).toList();
        List<FakeHub.Seen> atCdn = hub.seen.stream().filter(s -> s.server().equals("cdn")).toList();
        assertFalse(atCdn.isEmpty(), "the weights came from the CDN");
        assertTrue(atHub.stream().allMatch(s -> "Bearer hf_secret".equals(s.authorization())));
        atCdn.forEach(s -> assertNull(s.authorization(), s.path()));
    }

    @Test
    void aGatedModelWithoutATokenSaysToSetOne() {
        hub.requiredToken = "hf_secret";

        var e = assertThrowsNaming(HubDownloadException.class, () -> downloader().build().download(MODEL, "main"),
                "401", MODEL, "HF_TOKEN");
        assertEquals(401, e.status());
        assertFalse(Files.exists(repository().resolve("snapshots")));
    }

    @Test
    void anUnknownModelOrRevisionIsNotFoundNamingTheHub() {
        Map<String, String> env = Map.of("HF_ENDPOINT", hub.endpoint().toString());
        assertThrowsNaming(ModelNotFoundException.class,
                () -> new ModelResolver(env, home).resolveOrDownload("acme/no-such-model", "main"),
                "acme/no-such-model", "has no model", hub.endpoint().toString());
        assertThrowsNaming(ModelNotFoundException.class,
                () -> new ModelResolver(env, home).resolveOrDownload(MODEL, "v9"), "no revision 'v9'");
    }

    @Test
    void anInterruptedDownloadResumesWhereItStopped() throws Exception {
        hub.fault("model.safetensors", FakeHub.Fault.CUT_HALFWAY, 1);

        Path snapshot = downloader().build().download(MODEL, "main");

        assertArrayEquals(weights, Files.readAllBytes(snapshot.resolve("model.safetensors")));
        List<String> ranges = hub.seen.stream().filter(s -> s.server().equals("cdn")).map(FakeHub.Seen::range).toList();
        assertEquals(2, ranges.size());
        assertNull(ranges.get(0));
        assertEquals("bytes=" + weights.length / 2 + "-", ranges.get(1));
    }

    @Test
    void aStalledConnectionIsDroppedAndResumed() throws Exception {
        hub.stallMillis = 5_000;
        hub.fault("model.safetensors", FakeHub.Fault.STALL_HALFWAY, 1);

        Path snapshot = downloader().stallTimeout(Duration.ofSeconds(1)).build().download(MODEL, "main");

        assertArrayEquals(weights, Files.readAllBytes(snapshot.resolve("model.safetensors")));
        assertEquals(2, hub.bodyRequests("model.safetensors"));
    }

    @Test
    void aServerThatIgnoresTheRangeRestartsTheFile() throws Exception {
        Path partial = repository().resolve("blobs").resolve(FakeHub.sha256(weights) + ".incomplete");
        Files.createDirectories(partial.getParent());
        Files.write(partial, new byte[1000]); // left by an earlier process, and not even the right bytes
        hub.fault("model.safetensors", FakeHub.Fault.IGNORE_RANGE, 1);

        Path snapshot = downloader().build().download(MODEL, "main");

        assertArrayEquals(weights, Files.readAllBytes(snapshot.resolve("model.safetensors")));
        assertFalse(Files.exists(partial));
    }

    @Test
    void serverErrorsAreRetried() throws Exception {
        hub.fault("model.safetensors", FakeHub.Fault.SERVER_ERROR, 2);

        Path snapshot = downloader().build().download(MODEL, "main");

        assertArrayEquals(weights, Files.readAllBytes(snapshot.resolve("model.safetensors")));
        assertEquals(3, hub.bodyRequests("model.safetensors"));
    }

    @Test
    void bytesThatDoNotMatchTheirHashAreDeletedAndRefused() {
        hub.etags = etag -> etag.length() == 64 ? "f".repeat(64) : etag;

        assertThrowsNaming(HubDownloadException.class, () -> downloader().build().download(MODEL, "main"),
                "model.safetensors", "does not match its hash", "f".repeat(64));
        assertFalse(Files.exists(repository().resolve("blobs").resolve("f".repeat(64))));
        assertFalse(Files.exists(repository().resolve("blobs").resolve("f".repeat(64) + ".incomplete")));
        assertFalse(Files.exists(repository().resolve("snapshots").resolve(COMMIT).resolve("model.safetensors")));
    }

    @Test
    void anEtagThatIsNotAHashIsRefusedBeforeItNamesAFile() {
        hub.etags = etag -> "../../../evil";

        assertThrowsNaming(HubDownloadException.class, () -> downloader().build().download(MODEL, "main"),
                "no usable ETag", "config.json");
        assertFalse(Files.exists(home.resolve(".cache/evil")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"../evil.json", "/etc/evil.json", "a/../../evil.json", "C:evil.json", "a\\\\..\\\\evil.json", "./config.json", "a//b.json"})
    void unsafeFileNamesInTheListingAreRefused(String name) throws Exception {
        hub.listingNames = names -> {
            List<String> all = new ArrayList<>(names);
            all.add(name);
            return all;
        };

        assertThrowsNaming(HubDownloadException.class, () -> downloader().build().download(MODEL, "main"),
                "not a plain relative path");
        assertFalse(Files.exists(repository().resolve("snapshots")));
        try (Stream<Path> written = Files.walk(home)) {
            assertTrue(written.noneMatch(p -> p.getFileName().toString().contains("evil")));
        }
    }

    @Test
    void twoDownloadsOfOneModelAtOnceFetchEachBlobOnce() throws Exception {
        hub.bodyDelayMillis = 300;
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<Path>> downloads = new ArrayList<>();
            for (int i = 0; i < 2; i++) downloads.add(pool.submit(() -> downloader().build().download(MODEL, "main")));
            Path first = downloads.get(0).get(60, TimeUnit.SECONDS);
            assertEquals(first, downloads.get(1).get(60, TimeUnit.SECONDS));
            assertArrayEquals(weights, Files.readAllBytes(first.resolve("model.safetensors")));
            assertEquals(1, hub.bodyRequests("model.safetensors"));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void twoProcessesDownloadingOneModelLeaveOneValidBlobFetchedOnceAndLogNoToken() throws Exception {
        hub.bodyDelayMillis = 1_000;
        hub.requiredToken = "hf_secret_in_no_log";
        List<Process> processes = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            processes.add(new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-cp", System.getProperty("java.class.path"), DownloadInAnotherProcess.class.getName(),
                    hub.endpoint().toString(), cache.toString(), MODEL, "main", hub.requiredToken)
                    .redirectErrorStream(true).redirectOutput(home.resolve("process-" + i + ".log").toFile()).start());
        }
        for (Process process : processes) {
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "a download process did not end");
            assertEquals(0, process.exitValue(), () -> "a download process failed: " + readLog(processes.indexOf(process)));
        }

        Path snapshot = repository().resolve("snapshots").resolve(COMMIT);
        assertArrayEquals(weights, Files.readAllBytes(snapshot.resolve("model.safetensors")));
        assertEquals(1, hub.bodyRequests("model.safetensors"));
        for (int i = 0; i < processes.size(); i++) {
            String log = readLog(i);
            assertTrue(log.contains("INFO dev.jvllm.hub.HubDownloader"), "the process logged its download: " + log);
            assertFalse(log.contains(hub.requiredToken), "process " + i + " logged the token: " + log);
        }
        try (Stream<Path> blobs = Files.list(repository().resolve("blobs"))) {
            assertEquals(List.of(), blobs.filter(p -> p.toString().endsWith(".incomplete")).toList());
        }
    }

    private String readLog(int process) {
        try {
            return Files.readString(home.resolve("process-" + process + ".log"));
        } catch (java.io.IOException e) {
            return e.toString();
        }
    }

    @Test
    void progressIsReportedUpToEachFilesSize() {
        List<DownloadProgress> reports = new CopyOnWriteArrayList<>();
        downloader().progress(reports::add).build().download(MODEL, "main");

        List<DownloadProgress> weightReports = reports.stream().filter(r -> r.file().equals("model.safetensors")).toList();
        assertTrue(weightReports.getLast().finished());
        assertEquals(weights.length, weightReports.getLast().bytesDone());
        for (int i = 1; i < weightReports.size(); i++) {
            assertTrue(weightReports.get(i).bytesDone() >= weightReports.get(i - 1).bytesDone());
        }
        assertTrue(reports.stream().anyMatch(r -> r.file().equals("config.json") && r.finished()));
    }

    @Test
    void theTokenIsReadFromTheEnvironmentOrTheTokenFile() throws Exception {
        hub.requiredToken = "hf_from_file";
        Path tokenFile = home.resolve(".cache/huggingface/token");
        Files.createDirectories(tokenFile.getParent());
        Files.writeString(tokenFile, "hf_from_file\n");
        Map<String, String> env = new HashMap<>(Map.of("HF_ENDPOINT", hub.endpoint().toString()));

        HubDownloader.fromEnvironment(env, cache, tokenFile).download(MODEL, "main");

        hub.requiredToken = "hf_from_env";
        env.put("HF_TOKEN", "hf_from_env");
        HubDownloader.fromEnvironment(env, cache, tokenFile).download(MODEL, COMMIT);

        // The resolver finds the token file where huggingface-cli login writes it, beside the default cache.
        hub.requiredToken = "hf_from_file";
        Path elsewhere = home.resolve("elsewhere");
        assertEquals(elsewhere.resolve("models--acme--tiny-llama/snapshots").resolve(COMMIT),
                new ModelResolver(Map.of("HF_ENDPOINT", hub.endpoint().toString()), home).withHubCache(elsewhere)
                        .resolveOrDownload(MODEL, "main"));
    }

    @Test
    void aHubThatCannotBeReachedFailsAfterItsAttemptsNamingIt() throws Exception {
        java.net.URI closed;
        try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = java.net.URI.create("http://127.0.0.1:" + socket.getLocalPort());
        }
        HubDownloader downloader = HubDownloader.builder(cache).endpoint(closed).attempts(2, Duration.ofMillis(10)).build();

        assertThrowsNaming(HubDownloadException.class, () -> downloader.download(MODEL, "main"),
                closed.toString(), "failed 2 times", MODEL);
    }

    @Test
    void aModelRefusedOnItsConfigFetchesNoWeights() {
        IllegalStateException refused = new IllegalStateException("quantized");
        List<String> seenConfig = new ArrayList<>();

        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> downloader().build().download(MODEL, "main", snapshot -> {
                    seenConfig.add(readString(snapshot.resolve("config.json")));
                    throw refused;
                }));

        assertEquals(refused, e);
        assertEquals(List.of(CONFIG), seenConfig);
        assertEquals(0, hub.bodyRequests("model.safetensors"));
        assertFalse(Files.exists(repository().resolve("refs/main")));
    }

    private static String readString(Path file) {
        try {
            return Files.readString(file);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"../../evil", "/abs", "main/../../x", "a b"})
    void implausibleRevisionsAreRefusedBeforeAnyRequest(String revision) {
        assertThrowsNaming(HubDownloadException.class, () -> downloader().build().download(MODEL, revision), revision);
        assertTrue(hub.seen.isEmpty());
    }

    @Test
    void aCommitRevisionWritesNoRef() {
        Path snapshot = downloader().build().download(MODEL, COMMIT);

        assertEquals(repository().resolve("snapshots").resolve(COMMIT), snapshot);
        assertFalse(Files.exists(repository().resolve("refs")));
    }

    @Test
    void safeFileNames() {
        for (String ok : List.of("config.json", "1_Pooling/config.json", "model-00001-of-00002.safetensors", "a b.json")) {
            assertTrue(ModelFiles.isSafeName(ok), ok);
        }
        for (String bad : List.of("", "..", "../x", "x/..", "/x", "x/", "C:x", "a\\b", "a\u0000b", "a//b", "./a")) {
            assertFalse(ModelFiles.isSafeName(bad), bad);
        }
    }
}
