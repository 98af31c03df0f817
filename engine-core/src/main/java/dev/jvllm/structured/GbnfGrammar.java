package dev.jvllm.structured;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads a grammar in GBNF, the EBNF of llama.cpp and xgrammar that vLLM's {@code grammar}
 * structured output takes: rules {@code name ::= alternatives}, starting at {@code root}; string
 * literals {@code "..."}, character classes {@code [a-z]}, {@code [^"\\]}, any character {@code .},
 * rule names, groups {@code ( )}, alternation {@code |}, the quantifiers {@code * + ? {m} {m,} {m,n}}
 * and comments from {@code #} to the end of the line. A rule may span lines: the next rule begins
 * where a name is followed by {@code ::=}. Escapes: {@code \n \r \t \\ \" \' \[ \] \- \xHH \\uHHHH
 * \UHHHHHHHH}.
 */
public final class GbnfGrammar {

    /** Any JSON value (RFC 8259), with whitespace where JSON allows it: a grammar to start from. */
    public static final String JSON = """
            root   ::= ws value ws
            value  ::= object | array | string | number | "true" | "false" | "null"
            object ::= "{" ws ( member ( ws "," ws member )* ws )? "}"
            member ::= string ws ":" ws value
            array  ::= "[" ws ( value ( ws "," ws value )* ws )? "]"
            string ::= "\\"" ( [^"\\\\\\x00-\\x1F] | "\\\\" ( ["\\\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\\""
            number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
            ws     ::= [ \\t\\n\\r]*
            """;

    /** Grammar texts longer than this are refused. */
    static final int MAX_LENGTH = 1 << 20;
    /** Repetition bounds above this are refused, as in {@link Regex}. */
    static final int MAX_REPEAT = 1000;
    /** Groups nested deeper than this are refused (the reader recurses once a level). */
    static final int MAX_DEPTH = 200;

    private final String text;
    private int pos;
    private int depth;

    private GbnfGrammar(String text) {
        this.text = text;
    }

    /**
     * The rules of a GBNF grammar, {@code root} first.
     *
     * @throws IllegalArgumentException naming the line, column and problem
     */
    public static GrammarRules parse(String text) {
        if (text.length() > MAX_LENGTH) throw new IllegalArgumentException("the grammar is longer than " + MAX_LENGTH + " characters");
        return new GbnfGrammar(text).rules();
    }

    private GrammarRules rules() {
        Map<String, String> rules = new LinkedHashMap<>();
        skipSpace();
        while (pos < text.length()) {
            int at = pos;
            String name = name();
            if (name.isEmpty()) throw error("a rule name expected");
            skipSpace();
            if (!text.startsWith("::=", pos)) throw error("'::=' expected after the rule name '" + name + "'");
            pos += 3;
            String body = alternatives();
            if (rules.put(name, body) != null) {
                pos = at;
                throw error("the rule '" + name + "' is defined twice");
            }
            skipSpace();
        }
        if (rules.isEmpty()) throw new IllegalArgumentException("the grammar has no rules");
        String root = rules.remove("root");
        if (root == null) throw new IllegalArgumentException("the grammar has no 'root' rule, where the output starts");
        Map<String, String> ordered = new LinkedHashMap<>();
        ordered.put("root", root);
        ordered.putAll(rules);
        return new GrammarRules(ordered);
    }

    private String alternatives() {
        StringBuilder b = new StringBuilder(sequence());
        while (true) {
            skipSpace();
            if (pos >= text.length() || text.charAt(pos) != '|') return b.toString();
            pos++;
            b.append('|').append(sequence());
        }
    }

    private String sequence() {
        StringBuilder b = new StringBuilder();
        while (true) {
            skipSpace();
            if (pos >= text.length()) return b.toString();
            char c = text.charAt(pos);
            if (c == '|' || c == ')' || startsRule()) return b.toString();
            String element = element();
            skipSpace();
            // Quantifiers apply in turn, as llama.cpp reads them: "a"*? is ("a"*)?.
            for (String q; !(q = quantifier()).isEmpty(); ) {
                element = "(?:" + element + ")" + q;
                skipSpace();
            }
            b.append(element);
        }
    }

    private String element() {
        char c = text.charAt(pos);
        switch (c) {
            case '"' -> {
                pos++;
                StringBuilder literal = new StringBuilder();
                while (true) {
                    if (pos >= text.length()) throw error("unclosed string literal");
                    char d = text.charAt(pos);
                    if (d == '"') break;
                    if (d == '\\') literal.appendCodePoint(escape());
                    else {
                        literal.append(d);
                        pos++;
                    }
                }
                pos++;
                return "(?:" + Regex.quote(literal.toString()) + ")";
            }
            case '[' -> {
                return charClass();
            }
            case '.' -> {
                pos++;
                return ANY_CHARACTER;
            }
            case '(' -> {
                if (++depth > MAX_DEPTH) throw error("groups nest deeper than " + MAX_DEPTH);
                pos++;
                String inner = alternatives();
                skipSpace();
                if (pos >= text.length() || text.charAt(pos) != ')') throw error("unclosed '('");
                pos++;
                depth--;
                return "(?:" + inner + ")";
            }
            default -> {
                String name = name();
                if (name.isEmpty()) throw error("unexpected '" + c + "'");
                return GrammarRules.call(name);
            }
        }
    }

    private String charClass() {
        int start = pos;
        pos++;
        boolean negate = pos < text.length() && text.charAt(pos) == '^';
        if (negate) pos++;
        java.util.List<int[]> ranges = new java.util.ArrayList<>();
        while (true) {
            if (pos >= text.length()) {
                pos = start;
                throw error("unclosed '['");
            }
            if (text.charAt(pos) == ']') break;
            int lo = classCharacter();
            int hi = lo;
            if (pos + 1 < text.length() && text.charAt(pos) == '-' && text.charAt(pos + 1) != ']') {
                pos++;
                hi = classCharacter();
                if (hi < lo) throw error("the range ends before it starts");
            }
            ranges.add(new int[]{lo, hi});
        }
        if (ranges.isEmpty()) {
            pos = start;
            throw error("an empty character class matches nothing");
        }
        pos++;
        int[] codePoints = Regex.merge(ranges);
        if (negate) codePoints = Regex.complement(codePoints, Character.MAX_CODE_POINT);
        codePoints = withoutSurrogates(codePoints);
        if (codePoints.length == 0) {
            pos = start;
            throw error("the character class matches no character");
        }
        return codePointPattern(codePoints);
    }

    /** Any character: every code point, those beyond U+FFFF as their pair of surrogates. */
    private static final String ANY_CHARACTER = codePointPattern(new int[]{0, 0xD7FF, 0xE000, Character.MAX_CODE_POINT});

    /** The pairs less the surrogate block, which holds no characters (a text's surrogates come in pairs, one character). */
    private static int[] withoutSurrogates(int[] pairs) {
        java.util.List<int[]> out = new java.util.ArrayList<>();
        for (int i = 0; i < pairs.length; i += 2) {
            int lo = pairs[i], hi = pairs[i + 1];
            if (lo < Character.MIN_SURROGATE) out.add(new int[]{lo, Math.min(hi, Character.MIN_SURROGATE - 1)});
            if (hi > Character.MAX_SURROGATE) out.add(new int[]{Math.max(lo, Character.MAX_SURROGATE + 1), hi});
        }
        return out.stream().flatMapToInt(java.util.Arrays::stream).toArray();
    }

    /**
     * A pattern taking one code point of the (lo, hi) pairs, surrogates excluded: those up to U+FFFF
     * as one class, those beyond as their pairs of UTF-16 surrogates (the text is matched by char).
     */
    private static String codePointPattern(int[] pairs) {
        StringBuilder bmp = new StringBuilder();
        java.util.List<String> astral = new java.util.ArrayList<>();
        for (int i = 0; i < pairs.length; i += 2) {
            int lo = pairs[i], hi = pairs[i + 1];
            if (lo <= Character.MAX_VALUE) {
                int top = Math.min(hi, Character.MAX_VALUE);
                bmp.append(unicodeEscape(lo));
                if (top != lo) bmp.append('-').append(unicodeEscape(top));
            }
            if (hi > Character.MAX_VALUE) {
                int from = Math.max(lo, Character.MIN_SUPPLEMENTARY_CODE_POINT);
                char highFrom = Character.highSurrogate(from), lowFrom = Character.lowSurrogate(from);
                char highTo = Character.highSurrogate(hi), lowTo = Character.lowSurrogate(hi);
                if (highFrom == highTo) {
                    astral.add(unicodeEscape(highFrom) + "[" + unicodeEscape(lowFrom) + "-" + unicodeEscape(lowTo) + "]");
                } else {
                    astral.add(unicodeEscape(highFrom) + "[" + unicodeEscape(lowFrom) + "-\\uDFFF]");
                    if (highTo - highFrom > 1) {
                        astral.add("[" + unicodeEscape(highFrom + 1) + "-" + unicodeEscape(highTo - 1) + "][\\uDC00-\\uDFFF]");
                    }
                    astral.add(unicodeEscape(highTo) + "[\\uDC00-" + unicodeEscape(lowTo) + "]");
                }
            }
        }
        java.util.List<String> options = new java.util.ArrayList<>();
        if (!bmp.isEmpty()) options.add("[" + bmp + "]");
        options.addAll(astral);
        return options.size() == 1 ? options.getFirst() : "(?:" + String.join("|", options) + ")";
    }

    private int classCharacter() {
        char c = text.charAt(pos);
        if (c == '\\') return escape();
        if (Character.isHighSurrogate(c) && pos + 1 < text.length() && Character.isLowSurrogate(text.charAt(pos + 1))) {
            pos += 2;
            return Character.toCodePoint(c, text.charAt(pos - 1));
        }
        pos++;
        return c;
    }

    /** A character as a regex escape, {@code \\uHHHH} (a class's members are written so; structural tags' too). */
    static String unicodeEscape(int c) {
        return String.format("\\u%04X", c);
    }

    /** An escape at {@code pos} (its backslash), as a code point. */
    private int escape() {
        pos++;
        if (pos >= text.length()) throw error("trailing backslash");
        char c = text.charAt(pos++);
        return switch (c) {
            case 'n' -> '\n';
            case 'r' -> '\r';
            case 't' -> '\t';
            case '\\', '"', '\'', '[', ']', '-', '^' -> c;
            case 'x' -> hex(2);
            case 'u' -> hex(4);
            case 'U' -> hex(8);
            default -> {
                pos -= 2;
                throw error("unknown escape '\\" + c + "'");
            }
        };
    }

    private int hex(int digits) {
        if (pos + digits > text.length()) throw error("short hex escape");
        try {
            int v = Integer.parseUnsignedInt(text.substring(pos, pos + digits), 16);
            if (v > Character.MAX_CODE_POINT) throw error("U+" + Integer.toHexString(v) + " is not a character");
            pos += digits;
            return v;
        } catch (NumberFormatException e) {
            throw error("bad hex escape");
        }
    }

    private String quantifier() {
        if (pos >= text.length()) return "";
        char c = text.charAt(pos);
        if (c == '*' || c == '+' || c == '?') {
            pos++;
            return String.valueOf(c);
        }
        if (c != '{') return "";
        int close = text.indexOf('}', pos);
        if (close < 0) throw error("unclosed '{'");
        String bounds = text.substring(pos + 1, close).replace(" ", "");
        if (!bounds.matches("\\d{1,9}(,\\d{0,9})?")) throw error("bad repetition bounds '{" + bounds + "}'");
        String[] parts = bounds.split(",", -1);
        int min = Integer.parseInt(parts[0]);
        int max = parts.length == 1 ? min : parts[1].isEmpty() ? -1 : Integer.parseInt(parts[1]);
        if (min > MAX_REPEAT || max > MAX_REPEAT) throw error("repetition bounds above " + MAX_REPEAT + " are not supported: '{" + bounds + "}'");
        if (max >= 0 && max < min) throw error("the repetition's bounds '{" + bounds + "}' end before they start");
        pos = close + 1;
        return "{" + bounds + "}";
    }

    /** Whether a rule's definition starts at {@code pos}: a name, then {@code ::=}. */
    private boolean startsRule() {
        int saved = pos;
        try {
            if (name().isEmpty()) return false;
            skipSpace();
            return text.startsWith("::=", pos);
        } finally {
            pos = saved;
        }
    }

    private String name() {
        int start = pos;
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (!(c < 128 && (Character.isLetterOrDigit(c) || c == '_' || c == '-'))) break;
            pos++;
        }
        return text.substring(start, pos);
    }

    private void skipSpace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c == '#') {
                while (pos < text.length() && text.charAt(pos) != '\n') pos++;
            } else if (Character.isWhitespace(c)) {
                pos++;
            } else {
                return;
            }
        }
    }

    private IllegalArgumentException error(String what) {
        int line = 1, column = 1;
        for (int i = 0; i < Math.min(pos, text.length()); i++) {
            if (text.charAt(i) == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        return new IllegalArgumentException("grammar line " + line + ", column " + column + ": " + what);
    }
}
