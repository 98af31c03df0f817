package dev.jvllm.tokenizer;

import java.util.List;

/** The syntax tree of a parsed Jinja template: statements ({@link Node}) and expressions ({@link Expr}). */
final class JinjaAst {

    private JinjaAst() {}

    sealed interface Node {
        int line();
    }

    record Text(String text, int line) implements Node {}

    record Output(Expr expr, int line) implements Node {}

    record If(List<Expr> conditions, List<List<Node>> bodies, List<Node> elseBody, int line) implements Node {}

    record For(
            List<String> targets,
            Expr iterable,
            Expr filter,
            List<Node> body,
            List<Node> elseBody,
            boolean recursive,
            int line)
            implements Node {}

    /** {@code set a = v}, {@code set a, b = v}, or {@code set ns.attr = v} (attribute non-null). */
    record Set(List<String> names, String attribute, Expr value, int line) implements Node {}

    record SetBlock(String name, List<Node> body, List<FilterCall> filters, int line) implements Node {}

    record Macro(String name, List<String> params, List<Expr> defaults, List<Node> body, int line) implements Node {}

    record FilterBlock(List<FilterCall> filters, List<Node> body, int line) implements Node {}

    record Break(int line) implements Node {}

    record Continue(int line) implements Node {}

    record FilterCall(String name, List<Expr> args, List<String> kwNames, List<Expr> kwValues) {}

    sealed interface Expr {
        int line();
    }

    record Const(Object value, int line) implements Expr {}

    record Name(String name, int line) implements Expr {}

    record ListLit(List<Expr> items, boolean tuple, int line) implements Expr {}

    record DictLit(List<Expr> keys, List<Expr> values, int line) implements Expr {}

    record GetAttr(Expr target, String name, int line) implements Expr {}

    record GetItem(Expr target, Expr key, int line) implements Expr {}

    /** {@code target[start:stop:step]}; absent parts are null. */
    record Slice(Expr target, Expr start, Expr stop, Expr step, int line) implements Expr {}

    record Call(Expr callee, List<Expr> args, List<String> kwNames, List<Expr> kwValues, int line) implements Expr {}

    record Filter(Expr value, FilterCall call, int line) implements Expr {}

    record Test(Expr value, String name, List<Expr> args, boolean negated, int line) implements Expr {}

    record Unary(String op, Expr operand, int line) implements Expr {}

    record Binary(String op, Expr left, Expr right, int line) implements Expr {}

    record Compare(Expr first, List<String> ops, List<Expr> operands, int line) implements Expr {}

    record Conditional(Expr condition, Expr then, Expr otherwise, int line) implements Expr {}

    record Concat(List<Expr> parts, int line) implements Expr {}

    /** {@code *args} or {@code **kwargs} in a call's argument list. */
    record Starred(Expr value, boolean keywords, int line) implements Expr {}
}
