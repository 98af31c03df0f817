package dev.jvllm.structured;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A JSON schema's string patterns and formats, followed over the strings' JSON text. */
class JsonStringPatternTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The regex of a string schema with this pattern, over a whole JSON string (quotes included). */
    private static Regex stringWithPattern(String pattern) throws Exception {
        return Regex.compile(JsonSchemaRegex.of(JSON.createObjectNode().put("type", "string").put("pattern", pattern)));
    }

    private static String jsonText(String value) throws Exception {
        return JSON.writeValueAsString(value);
    }

    /**
     * On values without characters JSON escapes, a string's JSON text matches exactly when the value
     * matches the pattern whole (java.util.regex the judge), over random values near the patterns.
     */
    @Test
    void plainValuesMatchAsThePatternMatchesThem() throws Exception {
        List<String[]> patterns = List.of(  // {our pattern, java.util.regex's form of it}
                new String[]{"^\\d{3}-\\d{4}$", "\\d{3}-\\d{4}"}, new String[]{"[A-Z][a-z]+", "[A-Z][a-z]+"},
                new String[]{"(?P<year>\\d{4})-(0[1-9]|1[0-2])", "(?<year>\\d{4})-(0[1-9]|1[0-2])"}, new String[]{"a.c", "a.c"},
                new String[]{"[^x]+", "[^x]+"}, new String[]{"\\w+@\\w+\\.com", "\\w+@\\w+\\.com"}, new String[]{"colou?r", "colou?r"},
                new String[]{"(ab|cd){2}", "(ab|cd){2}"}, new String[]{"\\S+ \\S+", "\\S+ \\S+"}, new String[]{"[a-c\\d]{2,3}", "[a-c\\d]{2,3}"});
        String alphabet = "abcdrxoluAZ019-@.com ";
        Random random = new Random(5);
        for (String[] pattern : patterns) {
            Regex regex = stringWithPattern(pattern[0]);
            java.util.regex.Pattern judge = java.util.regex.Pattern.compile(pattern[1]);
            for (int i = 0; i < 3000; i++) {
                StringBuilder value = new StringBuilder();
                int length = random.nextInt(9);
                for (int j = 0; j < length; j++) value.append(alphabet.charAt(random.nextInt(alphabet.length())));
                assertEquals(judge.matcher(value).matches(), regex.matches(jsonText(value.toString())), pattern[0] + " on '" + value + "'");
            }
            for (String match : List.of("555-1234", "Paris", "2024-11", "abc", "yyy", "me@host.com", "color", "abcd", "ab cd", "a1c")) {
                assertEquals(judge.matcher(match).matches(), regex.matches(jsonText(match)), pattern[0] + " on '" + match + "'");
            }
        }
    }

    /**
     * Quotes, backslashes and control characters the pattern asks for are matched as their JSON
     * escapes, so that the output is valid JSON holding them; raw, they are refused.
     */
    @Test
    void charactersJsonEscapesAreMatchedAsTheirEscapes() throws Exception {
        Regex quoted = stringWithPattern("say \"hi\"");
        assertTrue(quoted.matches(jsonText("say \"hi\"")));
        assertFalse(quoted.matches("\"say \"hi\"\""), "a raw quote would end the string");
        assertTrue(stringWithPattern("a\\\\b").matches(jsonText("a\\b")), "a literal backslash");
        assertTrue(stringWithPattern("line\\nbreak").matches(jsonText("line\nbreak")));
        assertTrue(stringWithPattern("x\\x01").matches("\"x\\u0001\""));
        // A class of printable ASCII holds the quote and the backslash: each is taken escaped.
        Regex printable = stringWithPattern("[ -~]{1,6}");
        String awkward = "a\"b\\c";
        assertTrue(printable.matches(jsonText(awkward)), JSON.writeValueAsString(awkward));
        assertFalse(printable.matches("\"a\"b\""));
        assertTrue(stringWithPattern("[\\s]+").matches(jsonText(" \t\n")));
    }

    /** What a pattern leaves open ('.', negated classes, \D \W \S) takes no character that JSON escapes. */
    @Test
    void openPartsTakeNoEscapedCharacters() throws Exception {
        for (String open : List.of(".+", "[^a]+", "\\D+", "\\W+", "\\S+")) {
            Regex regex = stringWithPattern(open);
            assertTrue(regex.matches(jsonText("%#")), open);
            assertFalse(regex.matches(jsonText("\"")), open + " took a quote");
            assertFalse(regex.matches(jsonText("\\")), open + " took a backslash");
            assertFalse(regex.matches(jsonText("\t")), open + " took a tab");
        }
    }

    @Test
    void whatCannotBeFollowedIsRefusedNamingWhere() {
        for (String refused : List.of("(?=a)b", "(?<!a)b", "(a)\\1", "\\bword", "a^b", "a$b", "[a", "x\\", "[b-a]")) {
            var e = assertThrows(IllegalArgumentException.class, () -> stringWithPattern(refused), refused);
            assertTrue(e.getMessage().contains("#"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> JsonSchemaRegex.of(JSON.readTree(
                "{\"type\": \"string\", \"pattern\": \"[a-z]+\", \"maxLength\": 3}")), "a pattern and lengths together are not followed");
    }

    @Test
    void formatsAreFollowed() throws Exception {
        record Case(String format, String good, String bad) {
        }
        for (Case c : List.of(new Case("date-time", "2024-01-31T12:05:59.25+01:00", "2024-13-01T12:00:00Z"),
                new Case("date", "1999-12-31", "1999-12-32"), new Case("time", "23:59:59Z", "23:59:59"),
                new Case("date-time", "2024-01-15T10:30:00Z", "2024-01-15T10:30:00." + "1".repeat(17) + "Z"),
                new Case("uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-42661417400"),
                new Case("ipv4", "192.168.0.255", "256.1.1.1"), new Case("email", "first.last@mail.example.org", "no-at.example.org"))) {
            Regex regex = Regex.compile(JsonSchemaRegex.of(JSON.createObjectNode().put("type", "string").put("format", c.format())));
            assertTrue(regex.matches(jsonText(c.good())), c.format() + " " + c.good());
            assertFalse(regex.matches(jsonText(c.bad())), c.format() + " " + c.bad());
        }
        Regex other = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"string\", \"format\": \"hostname\"}")));
        assertTrue(other.matches(jsonText("anything at all")), "other formats are annotations");
    }

    /**
     * From a review: a top-level alternation stays between the quotes; a quantifier after an escaped
     * character repeats its whole escape; anchors at an alternative's ends are taken; a quantifier with
     * nothing before it is refused; characters beyond the BMP are one character to '.', and a lone
     * surrogate is never written.
     */
    @Test
    void alternationsQuantifiedEscapesAnchorsAndSurrogatePairs() throws Exception {
        Regex either = stringWithPattern("^\\d+|N/A$");
        assertTrue(either.matches(jsonText("12")) && either.matches(jsonText("N/A")));
        assertFalse(either.matches("\"12"), "an alternative may not take the closing quote");
        Regex quotes = stringWithPattern("^say \"+hi$");
        assertTrue(quotes.matches(jsonText("say \"\"hi")));
        assertFalse(quotes.matches("\"say \\\"\"\"hi\""), "the quantifier repeats the escape, not its quote");
        assertTrue(stringWithPattern("C:\\\\?x").matches(jsonText("C:x")));
        assertTrue(stringWithPattern("a\\n{2}").matches(jsonText("a\n\n")));
        Regex words = stringWithPattern("^abc$|^def$");
        assertTrue(words.matches(jsonText("abc")) && words.matches(jsonText("def")) && !words.matches(jsonText("abcdef")));
        for (String nothing : List.of("a*{2}", "{2}a", "*a", "(|+)")) {
            assertThrows(IllegalArgumentException.class, () -> stringWithPattern(nothing), nothing);
        }
        assertTrue(stringWithPattern("a{,2}").matches(jsonText("aa")), "{,m} as Python reads it");
        Regex one = stringWithPattern("^.$");
        assertTrue(one.matches(jsonText("\uD83D\uDE00")), "a character beyond the BMP is one");
        assertFalse(one.matches("\"\uD83D\""), "a lone surrogate is no character");
    }
}
