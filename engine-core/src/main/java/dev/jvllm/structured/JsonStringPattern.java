package dev.jvllm.structured;

import java.util.BitSet;

/**
 * A JSON schema's string {@code pattern} as a regular expression over the string's JSON text (what
 * stands between its quotes), so that constrained output is both valid JSON and a match: a quote,
 * a backslash or a control character the pattern asks for is written as its JSON escape ({@code \"},
 * {@code \\}, {@code \n}, or a u-escape of four hex digits), and what the pattern leaves open ({@code .},
 * negated classes, {@code \D \W \S}) takes none of those characters. The whole string matches the
 * pattern, as outlines and xgrammar read it (JSON Schema alone would also take text around an unanchored
 * match); {@code ^} and {@code $} at a top-level alternative's ends are taken as implied. The syntax is
 * {@link Regex}'s, plus {@code (?P<name>...)} and {@code (?<name>...)} groups (taken as plain groups);
 * lookaround, back-references, word boundaries and anchors inside the pattern are refused.
 */
final class JsonStringPattern {

    private static final int SURROGATES_FROM = 0xD800, SURROGATES_TO = 0xDFFF;

    /** Characters a JSON string holds only escaped. */
    private static final BitSet ESCAPED = new BitSet();

    static {
        ESCAPED.set(0, 0x20);
        ESCAPED.set('"');
        ESCAPED.set('\\');
    }

    private final String pattern;
    private final String where;
    private int pos;

    private JsonStringPattern(String pattern, String where) {
        this.pattern = pattern;
        this.where = where;
    }

    /**
     * The regex of the JSON text of strings matching {@code pattern} (without the quotes).
     *
     * @throws IllegalArgumentException naming {@code where} and what the pattern uses that cannot be followed
     */
    static String of(String pattern, String where) {
        JsonStringPattern translator = new JsonStringPattern(pattern, where);
        // One group, so that a top-level alternation stays between the string's quotes.
        String regex = "(?:" + translator.translate() + ")";
        Regex.compile(regex);  // what the translation cannot check (groups' balance) fails here, naming the position
        return regex;
    }

    /**
     * The translation, item by item. Anchors are taken where the whole match already implies them:
     * '^' at the start of a top-level alternative, '$' at its end. A quantifier must follow something
     * it can repeat.
     */
    private String translate() {
        StringBuilder out = new StringBuilder(pattern.length() * 2);
        int depth = 0;
        boolean repeatable = false;  // whether the item before can take a quantifier
        while (pos < pattern.length()) {
            char c = pattern.charAt(pos++);
            switch (c) {
                case '^' -> {
                    if (depth > 0 || !(pos == 1 || pattern.charAt(pos - 2) == '|' && !escapedAt(pattern, pos - 2))) {
                        throw refused("an anchor ('^') inside the pattern");
                    }
                }
                case '$' -> {
                    if (depth > 0 || !(pos == pattern.length() || pattern.charAt(pos) == '|')) throw refused("an anchor ('$') inside the pattern");
                }
                case '(' -> {
                    out.append(group());
                    depth++;
                    repeatable = false;
                }
                case ')' -> {
                    out.append(c);
                    depth--;
                    repeatable = true;
                }
                case '|' -> {
                    out.append(c);
                    repeatable = false;
                }
                case '*', '+', '?' -> {
                    if (!repeatable) throw refused("a quantifier ('" + c + "') with nothing to repeat");
                    out.append(c);
                    // A lazy or possessive mark after it, taken as the same quantifier.
                    if (pos < pattern.length() && (pattern.charAt(pos) == '?' || pattern.charAt(pos) == '+')) out.append(pattern.charAt(pos++));
                    repeatable = false;
                }
                case '{' -> {
                    String bounds = repeat();
                    if (bounds != null) {
                        if (!repeatable) throw refused("a repeat ('" + bounds + "') with nothing to repeat");
                        out.append(bounds);
                        if (pos < pattern.length() && pattern.charAt(pos) == '?') out.append(pattern.charAt(pos++));
                        repeatable = false;
                    } else {
                        out.append(literal('{'));
                        repeatable = true;
                    }
                }
                default -> {
                    out.append(switch (c) {
                        case '[' -> set(charClass());
                        case '.' -> set(all(true));
                        case '\\' -> escape();
                        default -> literal(c);
                    });
                    repeatable = true;
                }
            }
        }
        return out.toString();
    }

    /** Whether the character at {@code at} is escaped by an odd run of backslashes before it. */
    private static boolean escapedAt(String text, int at) {
        int backslashes = 0;
        for (int i = at - 1; i >= 0 && text.charAt(i) == '\\'; i--) backslashes++;
        return backslashes % 2 == 1;
    }

    /** After '(': a plain or non-capturing group's opening; named groups become plain ones. */
    private String group() {
        if (!pattern.startsWith("?", pos)) return "(";
        if (pattern.startsWith("?:", pos)) {
            pos += 2;
            return "(?:";
        }
        int nameAt = pattern.startsWith("?P<", pos) ? pos + 3 : pattern.startsWith("?<", pos) && !pattern.startsWith("?<=", pos)
                && !pattern.startsWith("?<!", pos) ? pos + 2 : -1;
        if (nameAt < 0) throw refused("lookaround or a group flag ('(" + pattern.substring(pos, Math.min(pos + 3, pattern.length())) + "')");
        int end = pattern.indexOf('>', nameAt);
        if (end < 0) throw refused("a group name that does not close");
        pos = end + 1;
        return "(?:";
    }

    /** After '{': a repeat's bounds ({@code {,m}} as Python reads it, from 0), or null where '{' starts none (a literal). */
    private String repeat() {
        int end = pattern.indexOf('}', pos);
        if (end < 0 || !pattern.substring(pos, end).matches("[0-9]*(,[0-9]*)?") || end == pos || pattern.substring(pos, end).equals(",")) {
            return null;
        }
        String inner = pattern.substring(pos, end);
        pos = end + 1;
        return "{" + (inner.startsWith(",") ? "0" + inner : inner) + "}";
    }

    /** After a backslash outside a class. */
    private String escape() {
        if (pos >= pattern.length()) throw refused("a trailing backslash");
        char e = pattern.charAt(pos++);
        BitSet shorthand = shorthand(e);
        if (shorthand != null) return set(shorthand);
        if (e == 'b' || e == 'B' || e == 'A' || e == 'Z' || e == 'z') throw refused("a boundary ('\\" + e + "')");
        if (e >= '1' && e <= '9') throw refused("a back-reference ('\\" + e + "')");
        return literal(escapedChar(e));
    }

    /** The character an escape (after its backslash, {@code e} already read) stands for. */
    private char escapedChar(char e) {
        return switch (e) {
            case 'n' -> '\n';
            case 't' -> '\t';
            case 'r' -> '\r';
            case 'f' -> '\f';
            case 'v' -> '\u000b';
            case '0' -> {
                if (pos < pattern.length() && Character.isDigit(pattern.charAt(pos))) throw refused("an octal escape ('\\0" + pattern.charAt(pos) + "')");
                yield '\0';
            }
            case 'x' -> hex(2);
            case 'u' -> hex(4);
            default -> {
                if (Character.isLetterOrDigit(e)) throw refused("the escape '\\" + e + "'");
                yield e;
            }
        };
    }

    private char hex(int digits) {
        if (pos + digits > pattern.length()) throw refused("a short hexadecimal escape");
        String hex = pattern.substring(pos, pos + digits);
        if (!hex.matches("[0-9a-fA-F]+")) throw refused("the hexadecimal escape '" + hex + "'");
        pos += digits;
        return (char) Integer.parseInt(hex, 16);
    }

    /** {@code \d \w \s} and their negations (without the characters JSON escapes) as sets, or null for another escape. */
    private static BitSet shorthand(char e) {
        BitSet set = new BitSet();
        switch (Character.toLowerCase(e)) {
            case 'd' -> set.set('0', '9' + 1);
            case 'w' -> {
                set.set('0', '9' + 1);
                set.set('A', 'Z' + 1);
                set.set('a', 'z' + 1);
                set.set('_');
            }
            case 's' -> {
                set.set(' ');
                set.set('\t', '\r' + 1);  // tab, line feed, vertical tab, form feed, carriage return
            }
            default -> {
                return null;
            }
        }
        if (Character.isUpperCase(e)) {  // a negation leaves characters open: none that JSON escapes
            set.flip(0, 0x10000);
            set.andNot(ESCAPED);
        }
        return set;
    }

    /** After '[': the class's characters, its negation applied. */
    private BitSet charClass() {
        boolean negated = pos < pattern.length() && pattern.charAt(pos) == '^';
        if (negated) pos++;
        BitSet set = new BitSet();
        boolean first = true;
        while (true) {
            if (pos >= pattern.length()) throw refused("a class that does not close");
            char c = pattern.charAt(pos++);
            if (c == ']' && !first) break;
            first = false;
            int low;
            if (c == '\\') {
                if (pos >= pattern.length()) throw refused("a trailing backslash");
                char e = pattern.charAt(pos++);
                BitSet shorthand = shorthand(e);
                if (shorthand != null) {
                    set.or(shorthand);
                    continue;
                }
                low = e == 'b' ? '\b' : escapedChar(e);
            } else {
                low = c;
            }
            if (pos + 1 < pattern.length() && pattern.charAt(pos) == '-' && pattern.charAt(pos + 1) != ']') {
                pos++;
                char h = pattern.charAt(pos++);
                int high = h == '\\' ? escapedCharInRange() : h;
                if (high < low) throw refused("the range '" + (char) low + "-" + (char) high + "' runs backwards");
                set.set(low, high + 1);
            } else {
                set.set(low);
            }
        }
        if (negated) set.flip(0, 0x10000);
        return negated ? withoutEscaped(set) : set;
    }

    private int escapedCharInRange() {
        if (pos >= pattern.length()) throw refused("a trailing backslash");
        char e = pattern.charAt(pos++);
        if (shorthand(e) != null) throw refused("a shorthand class ('\\" + e + "') as a range's end");
        return escapedChar(e);
    }

    /** Every character ({@code open}: what a pattern leaves open takes no character JSON escapes). */
    private static BitSet all(boolean open) {
        BitSet set = new BitSet();
        set.set(0, 0x10000);
        set.clear('\n');  // '.' stops at a line's end
        return open ? withoutEscaped(set) : set;
    }

    private static BitSet withoutEscaped(BitSet set) {
        BitSet copy = (BitSet) set.clone();
        copy.andNot(ESCAPED);
        return copy;
    }

    /**
     * A set of characters over the JSON text: the plain ones as one class, each one JSON escapes as
     * its escape, the lot as alternatives.
     */
    private String set(BitSet chars) {
        if (chars.isEmpty()) throw refused("a class that matches no character a JSON string may hold");
        // A set that takes every surrogate (what '.' and negations leave open) takes the characters beyond
        // the BMP as their pairs; a lone surrogate is no character, so it is never written.
        boolean pairs = chars.nextClearBit(SURROGATES_FROM) > SURROGATES_TO;
        chars = (BitSet) chars.clone();
        chars.clear(SURROGATES_FROM, SURROGATES_TO + 1);
        StringBuilder plain = new StringBuilder();
        BitSet unescaped = withoutEscaped(chars);
        for (int lo = unescaped.nextSetBit(0); lo >= 0; lo = unescaped.nextSetBit(lo + 1)) {
            int hi = unescaped.nextClearBit(lo) - 1;
            plain.append(classChar(lo));
            if (hi > lo) plain.append('-').append(classChar(hi));
            lo = hi;
        }
        StringBuilder alternatives = new StringBuilder();
        if (!plain.isEmpty()) alternatives.append('[').append(plain).append(']');
        BitSet escaped = (BitSet) chars.clone();
        escaped.and(ESCAPED);
        for (int c = escaped.nextSetBit(0); c >= 0; c = escaped.nextSetBit(c + 1)) {
            if (!alternatives.isEmpty()) alternatives.append('|');
            alternatives.append(literal((char) c));
        }
        if (pairs) alternatives.append(alternatives.isEmpty() ? "" : "|").append("[\\ud800-\\udbff][\\udc00-\\udfff]");
        if (alternatives.isEmpty()) throw refused("a class that matches no character a JSON string may hold");
        return "(?:" + alternatives + ")";
    }

    /** A character inside a class, escaped unless it is a letter or a digit. */
    private static String classChar(int c) {
        return Character.isLetterOrDigit(c) && c < 128 ? String.valueOf((char) c) : String.format("\\u%04x", c);
    }

    /**
     * One character of the string, as its JSON text (escaped where JSON escapes it), quoted for a
     * regex; an escape, several characters of text, is one group, so that a quantifier repeats it whole.
     */
    private static String literal(char c) {
        String escape = switch (c) {
            case '"' -> "\\\\\"";
            case '\\' -> "\\\\\\\\";
            case '\n' -> "\\\\n";
            case '\t' -> "\\\\t";
            case '\r' -> "\\\\r";
            case '\f' -> "\\\\f";
            case '\b' -> "\\\\b";
            default -> c < 0x20 ? String.format("\\\\u%04x", (int) c) : null;
        };
        return escape == null ? Regex.quote(String.valueOf(c)) : "(?:" + escape + ")";
    }

    private IllegalArgumentException refused(String what) {
        return new IllegalArgumentException("the string pattern at " + where + " uses " + what + ", which constrained decoding cannot follow");
    }
}
