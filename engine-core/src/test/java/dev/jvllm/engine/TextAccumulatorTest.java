package dev.jvllm.engine;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class TextAccumulatorTest {

    private static final Map<Integer, String> PIECES = Map.of(1, "ab", 2, "c", 3, "EN", 4, "D!", 5, "", 6, "b", 7, "a", 8, "c");

    private static TextAccumulator withStop(String stop) {
        return new TextAccumulator(PIECES::get, List.of(stop), false);
    }

    @Test
    void textHoldsBackWhatAStopStringCouldStillTakeAndShowsItOnceFinished() {
        TextAccumulator text = withStop("END");
        assertNull(text.append(1, true));
        assertNull(text.append(2, true));
        assertEquals("a", text.text(false), "the last two characters could begin END");
        assertNull(text.append(5, true));
        assertEquals("a", text.text(false));
        assertEquals("abc", text.text(true));
    }

    @Test
    void stopStringIsCutAndTheTextBeforeItKept() {
        TextAccumulator text = withStop("END");
        text.append(1, true);
        String before = text.text(false);
        text.append(3, true);
        assertEquals("END", text.append(4, true));
        assertEquals("ab", text.text(true));
        assertEquals("", before);
    }

    /** Before min_tokens no stop string ends the text or cuts it: the text only grows, so streamed pieces add up. */
    @Test
    void aStopStringBeforeMinTokensNeitherEndsNorCutsTheText() {
        TextAccumulator text = withStop("END");
        text.append(1, false);
        text.append(3, false);
        assertNull(text.append(4, false));
        assertEquals("abEND!", text.text(true));
        assertNull(text.append(3, true), "a stop string completed before min_tokens is not found later");
    }

    /** Each stop string is looked for only where it would end in the new text, whatever the longest one's length. */
    @Test
    void aShortStopStringInTextBeforeMinTokensIsNotFoundByALaterToken() {
        TextAccumulator text = new TextAccumulator(PIECES::get, List.of("zzzz", "a"), false);
        text.append(6, false);
        text.append(7, false);
        assertNull(text.append(8, true));
        assertEquals("bac", text.text(true));
    }
}
