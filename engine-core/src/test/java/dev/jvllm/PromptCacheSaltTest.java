package dev.jvllm;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PromptCacheSaltTest {

    @Test
    void withCacheSaltKeepsThePromptAndAddsTheSalt() {
        Prompt text = Prompt.text("hello").withCacheSalt("tenant-a");
        assertEquals("tenant-a", text.cacheSalt());
        assertEquals("hello", ((Prompt.Text) text).text());
        assertNull(Prompt.text("hello").cacheSalt(), "no salt by default");
        Prompt tokens = Prompt.tokens(1, 2, 3).withCacheSalt("t");
        assertArrayEquals(new int[]{1, 2, 3}, ((Prompt.Tokens) tokens).tokenIds());
        assertEquals("t", tokens.cacheSalt());
        assertNull(tokens.withCacheSalt(null).cacheSalt(), "null takes it away");
        assertEquals("x".repeat(Prompt.MAX_CACHE_SALT_LENGTH), Prompt.text("a").withCacheSalt("x".repeat(256)).cacheSalt());
    }

    @Test
    void anEncoderDecoderPromptsSaltIsItsEncoders() {
        Prompt prompt = Prompt.encoderDecoder(Prompt.text("source"), 1, 2).withCacheSalt("s");
        assertEquals("s", prompt.cacheSalt());
        assertEquals("s", ((Prompt.EncoderDecoder) prompt).encoder().cacheSalt());
        assertThrows(IllegalArgumentException.class,
                () -> Prompt.encoderDecoder(Prompt.text("source"), Prompt.tokens(1).withCacheSalt("s")));
    }

    @Test
    void anEmptyOrOverlongSaltIsRefusedNamingTheField() {
        for (String bad : List.of("", "x".repeat(Prompt.MAX_CACHE_SALT_LENGTH + 1))) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> Prompt.text("a").withCacheSalt(bad));
            assertEquals("cacheSalt", e.field());
            assertTrue(e.getMessage().contains("cacheSalt"), e.getMessage());
            assertThrows(InvalidRequestException.class, () -> Prompt.tokens(1).withCacheSalt(bad));
        }
    }
}
