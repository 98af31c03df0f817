package dev.jvllm.tokenizer;

import dev.jvllm.tokenizer.JinjaAst.Binary;
import dev.jvllm.tokenizer.JinjaAst.Break;
import dev.jvllm.tokenizer.JinjaAst.Call;
import dev.jvllm.tokenizer.JinjaAst.Compare;
import dev.jvllm.tokenizer.JinjaAst.Concat;
import dev.jvllm.tokenizer.JinjaAst.Conditional;
import dev.jvllm.tokenizer.JinjaAst.Const;
import dev.jvllm.tokenizer.JinjaAst.Continue;
import dev.jvllm.tokenizer.JinjaAst.DictLit;
import dev.jvllm.tokenizer.JinjaAst.Expr;
import dev.jvllm.tokenizer.JinjaAst.Filter;
import dev.jvllm.tokenizer.JinjaAst.FilterBlock;
import dev.jvllm.tokenizer.JinjaAst.FilterCall;
import dev.jvllm.tokenizer.JinjaAst.For;
import dev.jvllm.tokenizer.JinjaAst.GetAttr;
import dev.jvllm.tokenizer.JinjaAst.GetItem;
import dev.jvllm.tokenizer.JinjaAst.If;
import dev.jvllm.tokenizer.JinjaAst.ListLit;
import dev.jvllm.tokenizer.JinjaAst.Macro;
import dev.jvllm.tokenizer.JinjaAst.Name;
import dev.jvllm.tokenizer.JinjaAst.Node;
import dev.jvllm.tokenizer.JinjaAst.Output;
import dev.jvllm.tokenizer.JinjaAst.Set;
import dev.jvllm.tokenizer.JinjaAst.SetBlock;
import dev.jvllm.tokenizer.JinjaAst.Slice;
import dev.jvllm.tokenizer.JinjaAst.Test;
import dev.jvllm.tokenizer.JinjaAst.Text;
import dev.jvllm.tokenizer.JinjaAst.Unary;
import dev.jvllm.tokenizer.JinjaLexer.Token;
import dev.jvllm.tokenizer.JinjaLexer.Type;
import java.util.ArrayList;
import java.util.List;

/**
 * Recursive-descent parser for the Jinja subset chat templates use. Operator precedence follows
 * Jinja2's parser: {@code if-else} &lt; {@code or} &lt; {@code and} &lt; {@code not} &lt;
 * comparisons &lt; {@code + -} &lt; {@code ~} &lt; {@code * / // %} &lt; {@code **} &lt; unary
 * &lt; filters and tests &lt; postfix ({@code . [] ()}).
 */
final class JinjaParser {

    private static final int MAX_NESTING = 200;
    private static final java.util.Set<String> COMPARE_OPS = java.util.Set.of("==", "!=", "<", ">", "<=", ">=");

    private final List<Token> tokens;
    private int at;
    private int nesting;

    private JinjaParser(List<Token> tokens) {
        this.tokens = tokens;
    }

    static List<Node> parse(String source) {
        JinjaParser parser = new JinjaParser(JinjaLexer.tokenize(source));
        List<Node> body = parser.subparse(java.util.Set.of());
        return body;
    }

    // ---- statements ----

    /** Parses until EOF or a block tag whose name is in {@code endNames} (its name left unread). */
    private List<Node> subparse(java.util.Set<String> endNames) {
        List<Node> body = new ArrayList<>();
        while (true) {
            Token t = peek();
            switch (t.type()) {
                case TEXT -> {
                    next();
                    body.add(new Text(t.text(), t.line()));
                }
                case VARIABLE_BEGIN -> {
                    next();
                    Expr e = parseTuple(true, false);
                    expect(Type.VARIABLE_END, "}}");
                    body.add(new Output(e, t.line()));
                }
                case BLOCK_BEGIN -> {
                    Token name = peek(1);
                    if (name.type() == Type.NAME && endNames.contains(name.text())) {
                        next();
                        return body;
                    }
                    next();
                    parseStatement(body);
                }
                case EOF -> {
                    if (!endNames.isEmpty()) {
                        throw syntax(t, "unexpected end of template; expected one of " + endNames);
                    }
                    return body;
                }
                default -> throw syntax(t, "unexpected '" + t.text() + "'");
            }
        }
    }

    private void parseStatement(List<Node> body) {
        Token t = next();
        if (t.type() != Type.NAME) {
            throw syntax(t, "expected a tag name, got '" + t.text() + "'");
        }
        switch (t.text()) {
            case "if" -> body.add(parseIf(t));
            case "for" -> body.add(parseFor(t));
            case "set" -> body.add(parseSet(t));
            case "macro" -> body.add(parseMacro(t));
            case "filter" -> body.add(parseFilterBlock(t));
            case "break" -> {
                expectBlockEnd();
                body.add(new Break(t.line()));
            }
            case "continue" -> {
                expectBlockEnd();
                body.add(new Continue(t.line()));
            }
            case "generation" -> {
                // transformers' {% generation %} marks assistant text for masks; it renders as its body.
                expectBlockEnd();
                body.addAll(subparse(java.util.Set.of("endgeneration")));
                endTag("endgeneration");
            }
            default -> throw syntax(t, "unsupported or unknown tag '" + t.text() + "'");
        }
    }

    private If parseIf(Token start) {
        List<Expr> conditions = new ArrayList<>();
        List<List<Node>> bodies = new ArrayList<>();
        List<Node> elseBody = List.of();
        conditions.add(parseTuple(false, false));
        expectBlockEnd();
        while (true) {
            bodies.add(subparse(java.util.Set.of("elif", "else", "endif")));
            Token tag = next();
            if (tag.text().equals("elif")) {
                conditions.add(parseTuple(false, false));
                expectBlockEnd();
            } else if (tag.text().equals("else")) {
                expectBlockEnd();
                elseBody = subparse(java.util.Set.of("endif"));
                endTag("endif");
                break;
            } else {
                expectBlockEnd();
                break;
            }
        }
        return new If(conditions, bodies, elseBody, start.line());
    }

    private For parseFor(Token start) {
        List<String> targets = parseAssignNames();
        expectName("in");
        Expr iterable = parseTuple(false, false);
        Expr filter = null;
        if (peek().isName("if")) {
            next();
            filter = parseExpression(true);
        }
        boolean recursive = false;
        if (peek().isName("recursive")) {
            next();
            recursive = true;
        }
        expectBlockEnd();
        List<Node> body = subparse(java.util.Set.of("endfor", "else"));
        List<Node> elseBody = List.of();
        if (next().text().equals("else")) {
            expectBlockEnd();
            elseBody = subparse(java.util.Set.of("endfor"));
            endTag("endfor");
        } else {
            expectBlockEnd();
        }
        if (recursive) {
            throw syntax(start, "recursive for loops are not supported");
        }
        return new For(targets, iterable, filter, body, elseBody, false, start.line());
    }

    private Node parseSet(Token start) {
        Token first = expect(Type.NAME, "a variable name");
        if (peek().isOperator(".")) {
            next();
            String attribute = expect(Type.NAME, "an attribute name").text();
            expectOperator("=");
            Expr value = parseTuple(true, false);
            expectBlockEnd();
            return new Set(List.of(first.text()), attribute, value, start.line());
        }
        List<String> names = new ArrayList<>(List.of(first.text()));
        while (peek().isOperator(",")) {
            next();
            names.add(expect(Type.NAME, "a variable name").text());
        }
        if (peek().isOperator("=")) {
            next();
            Expr value = parseTuple(true, false);
            expectBlockEnd();
            return new Set(List.copyOf(names), null, value, start.line());
        }
        if (names.size() != 1) {
            throw syntax(start, "a block set assigns one name");
        }
        List<FilterCall> filters = new ArrayList<>();
        while (peek().isOperator("|")) {
            next();
            filters.add(parseFilterCall());
        }
        expectBlockEnd();
        List<Node> body = subparse(java.util.Set.of("endset"));
        endTag("endset");
        return new SetBlock(first.text(), body, filters, start.line());
    }

    private Macro parseMacro(Token start) {
        String name = expect(Type.NAME, "a macro name").text();
        expectOperator("(");
        List<String> params = new ArrayList<>();
        List<Expr> defaults = new ArrayList<>();
        while (!peek().isOperator(")")) {
            if (!params.isEmpty()) {
                expectOperator(",");
                if (peek().isOperator(")")) {
                    break;
                }
            }
            params.add(expect(Type.NAME, "a parameter name").text());
            if (peek().isOperator("=")) {
                next();
                defaults.add(parseExpression(true));
            } else {
                defaults.add(null);
            }
        }
        expectOperator(")");
        expectBlockEnd();
        List<Node> body = subparse(java.util.Set.of("endmacro"));
        endTag("endmacro");
        return new Macro(name, params, defaults, body, start.line());
    }

    private FilterBlock parseFilterBlock(Token start) {
        List<FilterCall> filters = new ArrayList<>();
        filters.add(parseFilterCall());
        while (peek().isOperator("|")) {
            next();
            filters.add(parseFilterCall());
        }
        expectBlockEnd();
        List<Node> body = subparse(java.util.Set.of("endfilter"));
        endTag("endfilter");
        return new FilterBlock(filters, body, start.line());
    }

    private List<String> parseAssignNames() {
        boolean parens = peek().isOperator("(");
        if (parens) {
            next();
        }
        List<String> names = new ArrayList<>();
        names.add(expect(Type.NAME, "a loop variable").text());
        while (peek().isOperator(",")) {
            next();
            names.add(expect(Type.NAME, "a loop variable").text());
        }
        if (parens) {
            expectOperator(")");
        }
        return List.copyOf(names);
    }

    /** Reads the name of an end tag (already current) and its closing {@code %}}. */
    private void endTag(String name) {
        Token t = next();
        if (!t.isName(name)) {
            throw syntax(t, "expected '" + name + "', got '" + t.text() + "'");
        }
        expectBlockEnd();
    }

    // ---- expressions ----

    /** A comma-separated list is a tuple; a single expression without comma is itself. */
    private Expr parseTuple(boolean withConditional, boolean explicitParens) {
        int line = peek().line();
        List<Expr> items = new ArrayList<>();
        boolean sawComma = false;
        while (true) {
            if (!items.isEmpty()) {
                if (!peek().isOperator(",")) {
                    break;
                }
                next();
                sawComma = true;
            }
            if (isTupleEnd()) {
                break;
            }
            items.add(parseExpression(withConditional));
        }
        if (!sawComma) {
            if (items.isEmpty()) {
                if (explicitParens) {
                    return new ListLit(List.of(), true, line);
                }
                throw syntax(peek(), "expected an expression, got '" + peek().text() + "'");
            }
            return items.get(0);
        }
        return new ListLit(List.copyOf(items), true, line);
    }

    private boolean isTupleEnd() {
        Token t = peek();
        return t.type() == Type.VARIABLE_END
                || t.type() == Type.BLOCK_END
                || t.type() == Type.EOF
                || t.isOperator(")")
                || t.isOperator("]")
                || t.isOperator("}")
                || t.isOperator("=");
    }

    private Expr parseExpression(boolean withConditional) {
        return withConditional ? parseConditional() : parseOr();
    }

    private Expr parseConditional() {
        Expr expr = parseOr();
        while (peek().isName("if")) {
            int line = next().line();
            Expr condition = parseOr();
            Expr otherwise = null;
            if (peek().isName("else")) {
                next();
                otherwise = parseConditional();
            }
            expr = new Conditional(condition, expr, otherwise, line);
        }
        return expr;
    }

    private Expr parseOr() {
        Expr left = parseAnd();
        while (peek().isName("or")) {
            int line = next().line();
            left = new Binary("or", left, parseAnd(), line);
        }
        return left;
    }

    private Expr parseAnd() {
        Expr left = parseNot();
        while (peek().isName("and")) {
            int line = next().line();
            left = new Binary("and", left, parseNot(), line);
        }
        return left;
    }

    private Expr parseNot() {
        if (peek().isName("not")) {
            int line = next().line();
            return new Unary("not", descend(this::parseNot), line);
        }
        return parseCompare();
    }

    private Expr parseCompare() {
        int line = peek().line();
        Expr first = parseMath1();
        List<String> ops = new ArrayList<>();
        List<Expr> operands = new ArrayList<>();
        while (true) {
            Token t = peek();
            if (t.type() == Type.OPERATOR && COMPARE_OPS.contains(t.text())) {
                next();
                ops.add(t.text());
            } else if (t.isName("in")) {
                next();
                ops.add("in");
            } else if (t.isName("not") && peek(1).isName("in")) {
                next();
                next();
                ops.add("not in");
            } else {
                break;
            }
            operands.add(parseMath1());
        }
        return ops.isEmpty() ? first : new Compare(first, ops, operands, line);
    }

    private Expr parseMath1() {
        Expr left = parseConcat();
        while (peek().isOperator("+") || peek().isOperator("-")) {
            Token op = next();
            left = new Binary(op.text(), left, parseConcat(), op.line());
        }
        return left;
    }

    private Expr parseConcat() {
        int line = peek().line();
        List<Expr> parts = new ArrayList<>();
        parts.add(parseMath2());
        while (peek().isOperator("~")) {
            next();
            parts.add(parseMath2());
        }
        return parts.size() == 1 ? parts.get(0) : new Concat(parts, line);
    }

    private Expr parseMath2() {
        Expr left = parsePow();
        while (peek().isOperator("*") || peek().isOperator("/") || peek().isOperator("//") || peek().isOperator("%")) {
            Token op = next();
            left = new Binary(op.text(), left, parsePow(), op.line());
        }
        return left;
    }

    private Expr parsePow() {
        Expr left = parseUnary(true);
        while (peek().isOperator("**")) {
            Token op = next();
            left = new Binary("**", left, parseUnary(true), op.line());
        }
        return left;
    }

    private Expr parseUnary(boolean withFilter) {
        Token t = peek();
        Expr node;
        if (t.isOperator("-") || t.isOperator("+")) {
            next();
            node = new Unary(t.text(), descend(() -> parseUnary(false)), t.line());
        } else {
            node = descend(this::parsePrimary);
        }
        node = parsePostfix(node);
        if (withFilter) {
            node = parseFilterExpr(node);
        }
        return node;
    }

    private Expr parsePrimary() {
        Token t = next();
        switch (t.type()) {
            case NAME -> {
                return switch (t.text()) {
                    case "true", "True" -> new Const(Boolean.TRUE, t.line());
                    case "false", "False" -> new Const(Boolean.FALSE, t.line());
                    case "none", "None" -> new Const(null, t.line());
                    default -> new Name(t.text(), t.line());
                };
            }
            case STRING -> {
                StringBuilder s = new StringBuilder(t.text());
                while (peek().type() == Type.STRING) {
                    s.append(next().text());
                }
                return new Const(s.toString(), t.line());
            }
            case INTEGER, FLOAT -> {
                return new Const(t.value(), t.line());
            }
            case OPERATOR -> {
                switch (t.text()) {
                    case "(" -> {
                        Expr e = parseTuple(true, true);
                        expectOperator(")");
                        return e;
                    }
                    case "[" -> {
                        List<Expr> items = new ArrayList<>();
                        while (!peek().isOperator("]")) {
                            if (!items.isEmpty()) {
                                expectOperator(",");
                                if (peek().isOperator("]")) {
                                    break;
                                }
                            }
                            items.add(parseExpression(true));
                        }
                        expectOperator("]");
                        return new ListLit(List.copyOf(items), false, t.line());
                    }
                    case "{" -> {
                        List<Expr> keys = new ArrayList<>();
                        List<Expr> values = new ArrayList<>();
                        while (!peek().isOperator("}")) {
                            if (!keys.isEmpty()) {
                                expectOperator(",");
                                if (peek().isOperator("}")) {
                                    break;
                                }
                            }
                            keys.add(parseExpression(true));
                            expectOperator(":");
                            values.add(parseExpression(true));
                        }
                        expectOperator("}");
                        return new DictLit(List.copyOf(keys), List.copyOf(values), t.line());
                    }
                    default -> throw syntax(t, "unexpected '" + t.text() + "'");
                }
            }
            default -> throw syntax(t, "expected an expression, got '" + t.text() + "'");
        }
    }

    private Expr parsePostfix(Expr node) {
        while (true) {
            Token t = peek();
            if (t.isOperator(".")) {
                next();
                Token attr = next();
                if (attr.type() == Type.NAME) {
                    node = new GetAttr(node, attr.text(), attr.line());
                } else if (attr.type() == Type.INTEGER) {
                    node = new GetItem(node, new Const(attr.value(), attr.line()), attr.line());
                } else {
                    throw syntax(attr, "expected an attribute name after '.'");
                }
            } else if (t.isOperator("[")) {
                next();
                node = parseSubscript(node, t.line());
            } else if (t.isOperator("(")) {
                node = parseCall(node);
            } else {
                return node;
            }
        }
    }

    private Expr parseSubscript(Expr target, int line) {
        Expr start = null;
        if (!peek().isOperator(":")) {
            start = parseExpression(true);
            if (peek().isOperator("]")) {
                next();
                return new GetItem(target, start, line);
            }
        }
        expectOperator(":");
        Expr stop = null;
        Expr step = null;
        if (!peek().isOperator("]") && !peek().isOperator(":")) {
            stop = parseExpression(true);
        }
        if (peek().isOperator(":")) {
            next();
            if (!peek().isOperator("]")) {
                step = parseExpression(true);
            }
        }
        expectOperator("]");
        return new Slice(target, start, stop, step, line);
    }

    private Call parseCall(Expr callee) {
        Token open = expectOperator("(");
        List<Expr> args = new ArrayList<>();
        List<String> kwNames = new ArrayList<>();
        List<Expr> kwValues = new ArrayList<>();
        parseArguments(args, kwNames, kwValues);
        return new Call(callee, args, kwNames, kwValues, open.line());
    }

    /** Reads {@code a, b, key=value)} after an opening parenthesis, through the closing one. */
    private void parseArguments(List<Expr> args, List<String> kwNames, List<Expr> kwValues) {
        boolean first = true;
        while (!peek().isOperator(")")) {
            if (!first) {
                expectOperator(",");
                if (peek().isOperator(")")) {
                    break;
                }
            }
            first = false;
            if (peek().isOperator("*") || peek().isOperator("**")) {
                Token star = next();
                args.add(new JinjaAst.Starred(parseExpression(true), star.text().equals("**"), star.line()));
            } else if (peek().type() == Type.NAME && peek(1).isOperator("=")) {
                kwNames.add(next().text());
                next();
                kwValues.add(parseExpression(true));
            } else {
                if (!kwNames.isEmpty()) {
                    throw syntax(peek(), "positional argument after keyword argument");
                }
                args.add(parseExpression(true));
            }
        }
        expectOperator(")");
    }

    private Expr parseFilterExpr(Expr node) {
        while (true) {
            Token t = peek();
            if (t.isOperator("|")) {
                next();
                node = new Filter(node, parseFilterCall(), t.line());
            } else if (t.isName("is")) {
                next();
                node = parseTest(node, t.line());
            } else if (t.isOperator("(")) {
                node = parseCall(node);
            } else {
                return node;
            }
        }
    }

    private FilterCall parseFilterCall() {
        StringBuilder name = new StringBuilder(expect(Type.NAME, "a filter name").text());
        while (peek().isOperator(".")) {
            next();
            name.append('.').append(expect(Type.NAME, "a filter name").text());
        }
        List<Expr> args = new ArrayList<>();
        List<String> kwNames = new ArrayList<>();
        List<Expr> kwValues = new ArrayList<>();
        if (peek().isOperator("(")) {
            next();
            parseArguments(args, kwNames, kwValues);
        }
        return new FilterCall(name.toString(), args, kwNames, kwValues);
    }

    private Expr parseTest(Expr value, int line) {
        boolean negated = false;
        if (peek().isName("not")) {
            next();
            negated = true;
        }
        String name = expect(Type.NAME, "a test name after 'is'").text();
        List<Expr> args = new ArrayList<>();
        Token t = peek();
        if (t.isOperator("(")) {
            next();
            List<String> kwNames = new ArrayList<>();
            parseArguments(args, kwNames, new ArrayList<>());
            if (!kwNames.isEmpty()) {
                throw syntax(t, "keyword arguments to tests are not supported");
            }
        } else if ((t.type() == Type.NAME || t.type() == Type.STRING || t.type() == Type.INTEGER
                        || t.type() == Type.FLOAT || t.isOperator("[") || t.isOperator("{"))
                && !t.isName("else") && !t.isName("or") && !t.isName("and")) {
            args.add(parsePostfix(descend(this::parsePrimary)));
        }
        return new Test(value, name, args, negated, line);
    }

    // ---- token helpers ----

    private <T> T descend(java.util.function.Supplier<T> parse) {
        if (++nesting > MAX_NESTING) {
            throw syntax(peek(), "expression nested too deeply");
        }
        try {
            return parse.get();
        } finally {
            nesting--;
        }
    }

    private Token peek() {
        return tokens.get(at);
    }

    private Token peek(int ahead) {
        return tokens.get(Math.min(at + ahead, tokens.size() - 1));
    }

    private Token next() {
        Token t = tokens.get(at);
        if (at < tokens.size() - 1) {
            at++;
        }
        return t;
    }

    private Token expect(Type type, String what) {
        Token t = next();
        if (t.type() != type) {
            throw syntax(t, "expected " + what + ", got '" + t.text() + "'");
        }
        return t;
    }

    private Token expectOperator(String op) {
        Token t = next();
        if (!t.isOperator(op)) {
            throw syntax(t, "expected '" + op + "', got '" + t.text() + "'");
        }
        return t;
    }

    private void expectName(String name) {
        Token t = next();
        if (!t.isName(name)) {
            throw syntax(t, "expected '" + name + "', got '" + t.text() + "'");
        }
    }

    private void expectBlockEnd() {
        expect(Type.BLOCK_END, "'%}'");
    }

    private static ChatTemplateException syntax(Token at, String message) {
        return new ChatTemplateException(ChatTemplateException.Reason.SYNTAX, "line " + at.line() + ": " + message);
    }
}
