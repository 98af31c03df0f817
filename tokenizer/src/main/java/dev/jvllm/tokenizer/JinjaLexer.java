package dev.jvllm.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits a Jinja template into text and tag tokens, with the whitespace rules of the environment
 * transformers renders chat templates in: {@code trim_blocks=True}, {@code lstrip_blocks=True},
 * {@code keep_trailing_newline=False}, and {@code -}/{@code +} modifiers on tags.
 */
final class JinjaLexer {

    enum Type { TEXT, VARIABLE_BEGIN, VARIABLE_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, INTEGER, FLOAT, OPERATOR, EOF }

    record Token(Type type, String text, Object value, int line) {
        boolean is(Type t, String s) {
            return type == t && text.equals(s);
        }

        boolean isOperator(String s) {
            return is(Type.OPERATOR, s);
        }

        boolean isName(String s) {
            return is(Type.NAME, s);
        }
    }

    private static final Pattern RAW_BEGIN = Pattern.compile("\\{%([-+]?)\\s*raw\\s*([-+]?)%}");
    private static final Pattern RAW_END = Pattern.compile("\\{%([-+]?)\\s*endraw\\s*([-+]?)%}");
    private static final String[] OPERATORS = {
        "//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{",
        "}", ",", ".", ":", "|"
    };

    private final String src;
    private final List<Token> tokens = new ArrayList<>();
    private int pos;
    private int line = 1;
    /** The previous tag ended with {@code -}: strip all leading whitespace of the next text. */
    private boolean stripNextText;

    private JinjaLexer(String source) {
        this.src = source;
    }

    static List<Token> tokenize(String source) {
        String normalized = source.replace("\r\n", "\n").replace('\r', '\n');
        if (normalized.endsWith("\n")) {
            normalized = normalized.substring(0, normalized.length() - 1);
        }
        JinjaLexer lexer = new JinjaLexer(normalized);
        lexer.run();
        return lexer.tokens;
    }

    private void run() {
        while (pos < src.length()) {
            int tag = nextTagStart(pos);
            int textEnd = tag < 0 ? src.length() : tag;
            String text = src.substring(pos, textEnd);
            boolean atLineStart = pos == 0 || src.charAt(pos - 1) == '\n';
            if (stripNextText) {
                text = stripLeading(text);
                stripNextText = false;
            }
            if (tag < 0) {
                emitText(text);
                pos = src.length();
                break;
            }
            char kind = src.charAt(tag + 1);
            char modifier = tag + 2 < src.length() ? src.charAt(tag + 2) : ' ';
            if (modifier == '-') {
                text = stripTrailing(text);
            } else if ((kind == '%' || kind == '#') && modifier != '+') {
                text = lstripBlock(text, atLineStart);
            }
            emitText(text);
            line += count(src, pos, tag, '\n');
            pos = tag;
            if (kind == '#') {
                lexComment();
            } else if (kind == '%' && lexRaw()) {
                // raw block handled
            } else {
                lexTag(kind);
            }
        }
        tokens.add(new Token(Type.EOF, "", null, line));
    }

    private int nextTagStart(int from) {
        int i = from;
        while (true) {
            i = src.indexOf('{', i);
            if (i < 0 || i + 1 >= src.length()) {
                return -1;
            }
            char c = src.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
            i++;
        }
    }

    private void emitText(String text) {
        if (!text.isEmpty()) {
            tokens.add(new Token(Type.TEXT, text, text, line));
        }
    }

    /** lstrip_blocks: whitespace between a line start and a block tag or comment is dropped. */
    private static String lstripBlock(String text, boolean textStartsLine) {
        int lineStart = text.lastIndexOf('\n') + 1;
        if (lineStart == 0 && !textStartsLine) {
            return text;
        }
        for (int i = lineStart; i < text.length(); i++) {
            if (!PyValues.isPyWhitespace(text.charAt(i))) {
                return text;
            }
        }
        return text.substring(0, lineStart);
    }

    /** After a block tag or comment, trim_blocks drops one newline unless the tag ended with +. */
    private void afterBlockEnd(char endModifier) {
        if (endModifier == '-') {
            stripNextText = true;
        } else if (endModifier != '+' && pos < src.length() && src.charAt(pos) == '\n') {
            pos++;
            line++;
        }
    }

    private void lexComment() {
        int end = src.indexOf("#}", pos + 2);
        if (end < 0) {
            throw new ChatTemplateException(ChatTemplateException.Reason.SYNTAX, "line " + line + ": unclosed comment");
        }
        char endModifier = src.charAt(end - 1);
        line += count(src, pos, end, '\n');
        pos = end + 2;
        afterBlockEnd(endModifier == '-' || endModifier == '+' ? endModifier : ' ');
    }

    private boolean lexRaw() {
        Matcher begin = RAW_BEGIN.matcher(src).region(pos, src.length());
        if (!begin.lookingAt()) {
            return false;
        }
        Matcher end = RAW_END.matcher(src);
        if (!end.find(begin.end())) {
            throw new ChatTemplateException(ChatTemplateException.Reason.SYNTAX, "line " + line + ": unclosed raw block");
        }
        String text = src.substring(begin.end(), end.start());
        if ("-".equals(begin.group(2))) {
            text = stripLeading(text);
        } else if (!"+".equals(begin.group(2)) && text.startsWith("\n")) {
            text = text.substring(1);
        }
        if ("-".equals(end.group(1))) {
            text = stripTrailing(text);
        } else if (!"+".equals(end.group(1))) {
            text = lstripBlock(text, false);
        }
        emitText(text);
        line += count(src, pos, end.end(), '\n');
        pos = end.end();
        String endModifier = end.group(2);
        afterBlockEnd(endModifier.isEmpty() ? ' ' : endModifier.charAt(0));
        return true;
    }

    private void lexTag(char kind) {
        boolean block = kind == '%';
        tokens.add(new Token(block ? Type.BLOCK_BEGIN : Type.VARIABLE_BEGIN, src.substring(pos, pos + 2), null, line));
        pos += 2;
        if (pos < src.length() && (src.charAt(pos) == '-' || src.charAt(pos) == '+')) {
            pos++;
        }
        char close = block ? '%' : '}';
        int depth = 0;
        while (true) {
            skipWhitespace();
            if (pos >= src.length()) {
                throw new ChatTemplateException(
                        ChatTemplateException.Reason.SYNTAX, "line " + line + ": unclosed " + (block ? "{%" : "{{"));
            }
            if (depth == 0) {
                char endModifier = ' ';
                int at = pos;
                if ((src.charAt(at) == '-' || src.charAt(at) == '+') && src.startsWith(close + "}", at + 1)) {
                    endModifier = src.charAt(at);
                    at++;
                }
                if (src.startsWith(close + "}", at)) {
                    tokens.add(new Token(block ? Type.BLOCK_END : Type.VARIABLE_END, close + "}", null, line));
                    pos = at + 2;
                    if (block) {
                        afterBlockEnd(endModifier);
                    } else if (endModifier == '-') {
                        stripNextText = true;
                    }
                    return;
                }
            }
            char c = src.charAt(pos);
            if (Character.isLetter(c) || c == '_') {
                int start = pos;
                while (pos < src.length() && (Character.isLetterOrDigit(src.charAt(pos)) || src.charAt(pos) == '_')) {
                    pos++;
                }
                String name = src.substring(start, pos);
                tokens.add(new Token(Type.NAME, name, name, line));
            } else if (Character.isDigit(c)) {
                lexNumber();
            } else if (c == '\'' || c == '"') {
                lexString(c);
            } else {
                String op = matchOperator();
                if (op == null) {
                    throw new ChatTemplateException(
                            ChatTemplateException.Reason.SYNTAX, "line " + line + ": unexpected character '" + c + "'");
                }
                if (op.equals("(") || op.equals("[") || op.equals("{")) {
                    depth++;
                } else if (op.equals(")") || op.equals("]") || op.equals("}")) {
                    depth--;
                }
                tokens.add(new Token(Type.OPERATOR, op, op, line));
                pos += op.length();
            }
        }
    }

    private String matchOperator() {
        for (String op : OPERATORS) {
            if (src.startsWith(op, pos)) {
                return op;
            }
        }
        return null;
    }

    private void skipWhitespace() {
        while (pos < src.length() && Character.isWhitespace(src.charAt(pos))) {
            if (src.charAt(pos) == '\n') {
                line++;
            }
            pos++;
        }
    }

    private void lexNumber() {
        int start = pos;
        boolean afterDot = start > 0 && src.charAt(start - 1) == '.';
        digits();
        boolean isFloat = false;
        if (!afterDot && pos + 1 < src.length() && src.charAt(pos) == '.' && Character.isDigit(src.charAt(pos + 1))) {
            pos++;
            digits();
            isFloat = true;
        }
        if (!afterDot && pos < src.length() && (src.charAt(pos) == 'e' || src.charAt(pos) == 'E')) {
            int save = pos;
            pos++;
            if (pos < src.length() && (src.charAt(pos) == '+' || src.charAt(pos) == '-')) {
                pos++;
            }
            if (pos < src.length() && Character.isDigit(src.charAt(pos))) {
                digits();
                isFloat = true;
            } else {
                pos = save;
            }
        }
        String text = src.substring(start, pos).replace("_", "");
        if (isFloat) {
            tokens.add(new Token(Type.FLOAT, text, Double.parseDouble(text), line));
        } else {
            try {
                tokens.add(new Token(Type.INTEGER, text, Long.parseLong(text), line));
            } catch (NumberFormatException e) {
                throw new ChatTemplateException(ChatTemplateException.Reason.SYNTAX, "line " + line + ": integer too large: " + text);
            }
        }
    }

    private void digits() {
        while (pos < src.length() && (Character.isDigit(src.charAt(pos)) || src.charAt(pos) == '_')) {
            pos++;
        }
    }

    private void lexString(char quote) {
        int startLine = line;
        StringBuilder out = new StringBuilder();
        int i = pos + 1;
        while (true) {
            if (i >= src.length()) {
                throw new ChatTemplateException(ChatTemplateException.Reason.SYNTAX, "line " + startLine + ": unclosed string");
            }
            char c = src.charAt(i);
            if (c == quote) {
                i++;
                break;
            }
            if (c == '\n') {
                line++;
            }
            if (c != '\\' || i + 1 >= src.length()) {
                out.append(c);
                i++;
                continue;
            }
            char e = src.charAt(i + 1);
            i += 2;
            switch (e) {
                case 'n' -> out.append('\n');
                case 't' -> out.append('\t');
                case 'r' -> out.append('\r');
                case '\\' -> out.append('\\');
                case '\'' -> out.append('\'');
                case '"' -> out.append('"');
                case 'a' -> out.append('\u0007');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'v' -> out.append('\u000b');
                case '0' -> out.append('\0');
                case '\n' -> line++; // line continuation
                case 'x' -> i = appendHexEscape(out, i, 2, startLine);
                case 'u' -> i = appendHexEscape(out, i, 4, startLine);
                case 'U' -> i = appendHexEscape(out, i, 8, startLine);
                default -> out.append('\\').append(e);
            }
        }
        String value = out.toString();
        tokens.add(new Token(Type.STRING, value, value, startLine));
        pos = i;
    }

    private int appendHexEscape(StringBuilder out, int at, int digits, int startLine) {
        if (at + digits > src.length()) {
            throw new ChatTemplateException(ChatTemplateException.Reason.SYNTAX, "line " + startLine + ": truncated escape");
        }
        try {
            out.appendCodePoint(Integer.parseInt(src.substring(at, at + digits), 16));
        } catch (IllegalArgumentException ex) {
            throw new ChatTemplateException(ChatTemplateException.Reason.SYNTAX, "line " + startLine + ": bad escape");
        }
        return at + digits;
    }

    static String stripLeading(String s) {
        int i = 0;
        while (i < s.length() && PyValues.isPyWhitespace(s.charAt(i))) {
            i++;
        }
        return s.substring(i);
    }

    static String stripTrailing(String s) {
        int i = s.length();
        while (i > 0 && PyValues.isPyWhitespace(s.charAt(i - 1))) {
            i--;
        }
        return s.substring(0, i);
    }

    private static int count(String s, int from, int to, char c) {
        int n = 0;
        for (int i = from; i < to; i++) {
            if (s.charAt(i) == c) {
                n++;
            }
        }
        return n;
    }
}
