package dev.jvllm.hub;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ModelResolverTest {

    private static final String MODEL = "Qwen/Qwen2.5-0.5B";
    private static final String MAIN_COMMIT = "a".repeat(40);
    private static final String OTHER_COMMIT = "0123456789abcdef0123456789abcdef01234567";

    @TempDir
    Path home;

    private Path hfRepo(Path hubCache) {
        return hubCache.resolve("models--Qwen--Qwen2.5-0.5B");
    }

    /** Lays out a cached snapshot as huggingface_hub does and returns its directory. */
    private Path cacheSnapshot(Path hubCache, String revision, String commit) throws Exception {
        Path ref = hfRepo(hubCache).resolve("refs").resolve(revision);
        Files.createDirectories(ref.getParent());
        Files.writeString(ref, commit);
        return Files.createDirectories(hfRepo(hubCache).resolve("snapshots").resolve(commit));
    }

    private ModelResolver resolver(Map<String, String> env) {
        return new ModelResolver(env, home);
    }

    @Test
    void aCachedSnapshotGoesByItsModelIdAndALocalDirectoryByItsName() throws Exception {
        Path snapshot = cacheSnapshot(home.resolve("hub"), "main", MAIN_COMMIT);
        Path local = Files.createDirectories(home.resolve("models").resolve("my-llama"));

        assertEquals(MODEL, ModelResolver.modelName(snapshot));
        assertEquals("my-llama", ModelResolver.modelName(local));
    }

    @Test
    void aGivenHubCacheReplacesTheEnvironmentsOne() throws Exception {
        Path elsewhere = home.resolve("elsewhere");
        cacheSnapshot(home.resolve(".cache/huggingface/hub"), "main", OTHER_COMMIT);
        Path snapshot = cacheSnapshot(elsewhere, "main", MAIN_COMMIT);

        assertEquals(snapshot, resolver(Map.of("HF_HUB_CACHE", home.resolve("unused").toString())).withHubCache(elsewhere).resolve(MODEL));
    }

    @Test
    void existingDirectoryWinsOverTheCache() throws Exception {
        Path hub = home.resolve(".cache/huggingface/hub");
        cacheSnapshot(hub, "main", MAIN_COMMIT);
        Path local = Files.createDirectories(home.resolve("my-model"));

        assertEquals(local, resolver(Map.of()).resolve(local.toString()));
    }

    @Test
    void relativeDirectoryIsTakenFromTheWorkingDirectory() throws Exception {
        Path local = Files.createDirectories(home.resolve("relative-model"));
        String relative = Path.of("").toAbsolutePath().relativize(local).toString();

        assertEquals(local, resolver(Map.of()).resolve(relative));
    }

    @Test
    void tildeMeansTheHomeDirectory() throws Exception {
        Path local = Files.createDirectories(home.resolve("models/llama"));

        assertEquals(local, resolver(Map.of()).resolve("~/models/llama"));
    }

    @Test
    void mainRefOfTheDefaultHuggingFaceCacheNamesTheSnapshot() throws Exception {
        Path snapshot = cacheSnapshot(home.resolve(".cache/huggingface/hub"), "main", MAIN_COMMIT);

        assertEquals(snapshot, resolver(Map.of()).resolve(MODEL));
    }

    @Test
    void hfHomeHoldsTheHubCache() throws Exception {
        Path hfHome = home.resolve("hf");
        Path snapshot = cacheSnapshot(hfHome.resolve("hub"), "main", MAIN_COMMIT);

        assertEquals(snapshot, resolver(Map.of("HF_HOME", hfHome.toString())).resolve(MODEL));
    }

    @Test
    void hfHubCacheTakesPrecedenceOverHfHome() throws Exception {
        Path hubCache = home.resolve("hub-cache");
        cacheSnapshot(home.resolve("hf/hub"), "main", OTHER_COMMIT);
        Path snapshot = cacheSnapshot(hubCache, "main", MAIN_COMMIT);

        Map<String, String> env = Map.of("HF_HUB_CACHE", hubCache.toString(), "HF_HOME", home.resolve("hf").toString());
        assertEquals(snapshot, resolver(env).resolve(MODEL));
    }

    @Test
    void namedRevisionFollowsItsRef() throws Exception {
        Path hub = home.resolve(".cache/huggingface/hub");
        cacheSnapshot(hub, "main", MAIN_COMMIT);
        Path tagged = cacheSnapshot(hub, "v1.0", OTHER_COMMIT);

        assertEquals(tagged, resolver(Map.of()).resolve(MODEL, "v1.0"));
    }

    @Test
    void commitHashRevisionNamesItsSnapshotDirectly() throws Exception {
        Path snapshot = Files.createDirectories(
                hfRepo(home.resolve(".cache/huggingface/hub")).resolve("snapshots").resolve(OTHER_COMMIT));

        assertEquals(snapshot, resolver(Map.of()).resolve(MODEL, OTHER_COMMIT));
    }

    @Test
    void refToAMissingSnapshotIsNotFound() throws Exception {
        Path hub = home.resolve(".cache/huggingface/hub");
        Path snapshot = cacheSnapshot(hub, "main", MAIN_COMMIT);
        Files.delete(snapshot);

        assertThrowsNaming(ModelNotFoundException.class, () -> resolver(Map.of()).resolve(MODEL),
                snapshot.toString(), hfRepo(hub).resolve("refs/main").toString());
    }

    @Test
    void refWithoutACommitHashIsNotFollowed() throws Exception {
        Path hub = home.resolve(".cache/huggingface/hub");
        cacheSnapshot(hub, "main", "../../../../etc");

        assertThrowsNaming(ModelNotFoundException.class, () -> resolver(Map.of()).resolve(MODEL),
                "refs/main (does not hold a commit hash)");
    }

    @ParameterizedTest
    @ValueSource(strings = {"models/Qwen/Qwen2___5-0___5B", "models/Qwen/Qwen2.5-0.5B", "Qwen/Qwen2___5-0___5B",
            "Qwen/Qwen2.5-0.5B"})
    void modelScopeCacheLayoutsAreFound(String layout) throws Exception {
        Path cache = home.resolve("modelscope");
        Path model = Files.createDirectories(cache.resolve(layout));

        Map<String, String> env = Map.of("VLLM_USE_MODELSCOPE", "True", "MODELSCOPE_CACHE", cache.toString());
        assertEquals(model, resolver(env).resolve(MODEL));
    }

    @Test
    void defaultModelScopeCacheIsUnderTheHomeDirectory() throws Exception {
        Path model = Files.createDirectories(home.resolve(".cache/modelscope/hub/models/Qwen/Qwen2___5-0___5B"));

        assertEquals(model, resolver(Map.of("JVLLM_USE_MODELSCOPE", "1")).resolve(MODEL));
    }

    @Test
    void modelScopeCacheIsIgnoredUnlessEnabled() throws Exception {
        Files.createDirectories(home.resolve(".cache/modelscope/hub/models/Qwen/Qwen2___5-0___5B"));

        assertThrows(ModelNotFoundException.class, () -> resolver(Map.of("VLLM_USE_MODELSCOPE", "0")).resolve(MODEL));
    }

    @Test
    void modelScopeMissFallsBackToTheHuggingFaceCache() throws Exception {
        Path snapshot = cacheSnapshot(home.resolve(".cache/huggingface/hub"), "main", MAIN_COMMIT);

        assertEquals(snapshot, resolver(Map.of("VLLM_USE_MODELSCOPE", "true")).resolve(MODEL));
    }

    @Test
    void notFoundListsEveryPlaceLookedAt() {
        Path modelScope = home.resolve(".cache/modelscope/hub");
        ModelNotFoundException e = assertThrowsNaming(ModelNotFoundException.class,
                () -> resolver(Map.of("VLLM_USE_MODELSCOPE", "1")).resolve(MODEL),
                "'" + MODEL + "'",
                Path.of(MODEL).toAbsolutePath().toString(),
                modelScope.resolve("models/Qwen/Qwen2___5-0___5B").toString(),
                modelScope.resolve("models/Qwen/Qwen2.5-0.5B").toString(),
                modelScope.resolve("Qwen/Qwen2___5-0___5B").toString(),
                modelScope.resolve("Qwen/Qwen2.5-0.5B").toString(),
                hfRepo(home.resolve(".cache/huggingface/hub")).resolve("refs/main").toString());
        assertEquals(6, e.placesLookedAt().size());
    }

    @ParameterizedTest
    @ValueSource(strings = {"../outside", "/no/such/dir", "org/name/extra", "org/na--me", "C:\\models\\x", "org/.hidden",
            "org/name.git"})
    void referenceThatIsNeitherADirectoryNorAModelIdIsNotLookedUpInCaches(String reference) {
        assertThrowsNaming(ModelNotFoundException.class, () -> resolver(Map.of()).resolve(reference),
                "neither a local directory nor a valid model id");
    }

    @ParameterizedTest
    @ValueSource(strings = {"../main", "/main", "main branch", ""})
    void implausibleRevisionIsRejected(String revision) {
        assertThrows(IllegalArgumentException.class, () -> resolver(Map.of()).resolve(MODEL, revision));
    }

    @Test
    void emptyReferenceIsRejectedRatherThanMeaningTheWorkingDirectory() {
        assertThrows(IllegalArgumentException.class, () -> resolver(Map.of()).resolve(" "));
    }
}
