package dev.jvllm.engine;

import dev.jvllm.ImageInput;
import dev.jvllm.SamplingParams;
import dev.jvllm.sampling.RandomSource;
import dev.jvllm.sampling.SequenceSamplingState;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

import static dev.jvllm.engine.TestSequences.group;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** A block's key holds its salts and media as parts that cannot pass for one another. */
class CacheSaltKeyTest {

    private static final int BLOCK = 4;

    @Test
    void aSaltSpellingAnImagePartIsNotThatImage() {
        ImageInput image = image(3);
        String hash = image.contentHash();
        EngineRequest withImage = request(12, "t", new PromptImage(0, 4, image));
        for (String spelled : List.of("t|image:" + hash, "t;image:" + hash.length() + ":" + hash + ";",
                "t;image:" + hash.length() + ":" + hash)) {
            EngineRequest saltOnly = request(12, spelled);
            assertNotEquals(withImage.blockKey(0, null, BLOCK), saltOnly.blockKey(0, null, BLOCK), spelled);
        }
        // The same image and salt again: the same key.
        assertEquals(withImage.blockKey(0, null, BLOCK), request(12, "t", new PromptImage(0, 4, image)).blockKey(0, null, BLOCK));
    }

    @Test
    void aUserSaltNeverPassesForTheEnginesOwnSalts() {
        String lora = EngineRequest.cacheSalt(null, 7, null);
        String bypass = EngineRequest.cacheSalt(null, null, "req-1");
        for (String user : List.of("lora:7", "lora:1:7;", "lora:1:7", "req-1", "request:5:req-1;", lora, bypass)) {
            String salted = EngineRequest.cacheSalt(user, null, null);
            assertNotEquals(lora, salted, user);
            assertNotEquals(bypass, salted, user);
        }
        assertNotEquals(EngineRequest.cacheSalt("a", 7, null), EngineRequest.cacheSalt("a;lora:1:7;", null, null));
        assertNotEquals(EngineRequest.cacheSalt("a", 7, null), EngineRequest.cacheSalt("a", 8, null));
        assertEquals(EngineRequest.cacheSalt("a", 7, null), EngineRequest.cacheSalt("a", 7, null));
        assertNull(EngineRequest.cacheSalt(null, null, null), "no salt at all: the shared pool");
    }

    @Test
    void keysDifferForDifferentUserSaltsAndMatchForEqualOnes() {
        int[] prompt = IntStream.range(0, 12).toArray();
        PrefixCacheKey a = group("a", prompt, 1, EngineRequest.cacheSalt("a", null, null)).leader().blockKey(0, null, BLOCK);
        PrefixCacheKey b = group("b", prompt, 1, EngineRequest.cacheSalt("b", null, null)).leader().blockKey(0, null, BLOCK);
        PrefixCacheKey none = group("c", prompt, 1, null).leader().blockKey(0, null, BLOCK);
        PrefixCacheKey aAgain = group("d", prompt, 1, EngineRequest.cacheSalt("a", null, null)).leader().blockKey(0, null, BLOCK);
        assertNotEquals(a, b);
        assertNotEquals(a, none);
        assertEquals(a, aAgain);
        assertEquals(PrefixCacheKey.of(null, prompt, 0, BLOCK, null), none, "an unsalted block's key is its tokens' alone, as before");
    }

    @Test
    void unpairedSurrogatesAreKeptApartFromTheCharacterUtf8WouldReplaceThemWith() {
        int[] tokens = {1, 2, 3, 4};
        assertNotEquals(PrefixCacheKey.of(null, tokens, 0, 4, "\uD800"), PrefixCacheKey.of(null, tokens, 0, 4, "?"));
    }

    private static EngineRequest request(int promptLength, String salt, PromptImage... images) {
        int[] prompt = IntStream.range(0, promptLength).toArray();
        SamplingParams params = SamplingParams.builder().temperature(0).build();
        RequestGroup group = new RequestGroup("r", null, prompt, params, List.of(images));
        group.sequences.add(new EngineRequest(group, 0, new SequenceSamplingState(params, prompt, List.of(), TestSequences.VOCAB,
                RandomSource.seeded(0).generatorFor(params, 0)), new TextAccumulator(null, List.of(), false), salt));
        return group.leader();
    }

    private static ImageInput image(int seed) {
        byte[] rgb = new byte[12];
        Arrays.fill(rgb, (byte) seed);
        return ImageInput.rgb(2, 2, rgb);
    }
}
