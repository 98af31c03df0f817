package dev.jvllm.tokenizer;

import dev.jvllm.tokenizer.ChatTemplateException.Reason;
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
import dev.jvllm.tokenizer.PyValues.Namespace;
import dev.jvllm.tokenizer.PyValues.PyCallable;
import dev.jvllm.tokenizer.PyValues.PyError;
import dev.jvllm.tokenizer.PyValues.Undefined;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a parsed template. Scoping follows Jinja2: each for-loop iteration and each macro call has
 * its own scope, {@code if} has none, and {@code set} writes to the innermost scope (hence
 * {@code namespace()} for state that outlives a loop iteration).
 *
 * <p>Every loop iteration and statement checks the deadline and the thread's interrupt flag, and
 * every string, list and range is checked against the limits, so no template can run or grow
 * without bound.
 */
final class JinjaInterpreter {

    private final ChatTemplate.Limits limits;
    private final long deadlineNanos;
    final PyBuiltins builtins;
    private int callDepth;
    private int steps;

    JinjaInterpreter(ChatTemplate.Limits limits, long deadlineNanos) {
        this.limits = limits;
        this.deadlineNanos = deadlineNanos;
        this.builtins = new PyBuiltins(this);
    }

    String render(List<Node> template, Map<String, Object> variables) {
        Scope root = new Scope(null, variables);
        Out out = new Out();
        try {
            execute(template, root, out);
        } catch (LoopControl c) {
            throw new ChatTemplateException(Reason.SYNTAX, "'break' or 'continue' outside of a loop");
        }
        return out.toString();
    }

    // ---- scopes and output ----

    final class Scope {
        private final Scope parent;
        private final Map<String, Object> globals;
        private final Map<String, Object> vars = new HashMap<>();

        Scope(Scope parent, Map<String, Object> globals) {
            this.parent = parent;
            this.globals = globals;
        }

        Object lookup(String name) {
            for (Scope s = this; s != null; s = s.parent) {
                if (s.vars.containsKey(name)) {
                    return s.vars.get(name);
                }
                if (s.globals != null && s.globals.containsKey(name)) {
                    return s.globals.get(name);
                }
            }
            Object builtin = builtins.global(name);
            return builtin != null ? builtin : PyValues.undefined("'" + name + "' is undefined");
        }

        void set(String name, Object value) {
            vars.put(name, value);
        }
    }

    final class Out {
        private final StringBuilder sb = new StringBuilder();

        void append(String s) {
            if (sb.length() + (long) s.length() > limits.maxOutputChars()) {
                throw new ChatTemplateException(
                        Reason.LIMIT_EXCEEDED, "template output exceeds " + limits.maxOutputChars() + " characters");
            }
            sb.append(s);
        }

        @Override
        public String toString() {
            return sb.toString();
        }
    }

    private static final class LoopControl extends RuntimeException {
        final boolean isBreak;

        LoopControl(boolean isBreak) {
            super(null, null, false, false);
            this.isBreak = isBreak;
        }
    }

    private static final LoopControl BREAK = new LoopControl(true);
    private static final LoopControl CONTINUE = new LoopControl(false);

    // ---- limits ----

    void checkDeadline() {
        if (System.nanoTime() - deadlineNanos > 0 || Thread.currentThread().isInterrupted()) {
            throw new ChatTemplateException(
                    Reason.TIMEOUT, "template rendering exceeded " + limits.timeout().toMillis() + " ms and was stopped");
        }
    }

    private void step() {
        if ((++steps & 0x3F) == 0) {
            checkDeadline();
        }
    }

    String checkString(String s) {
        checkLength(s.length());
        return s;
    }

    void checkLength(long length) {
        if (length > limits.maxOutputChars()) {
            throw new ChatTemplateException(
                    Reason.LIMIT_EXCEEDED, "a string in the template exceeds " + limits.maxOutputChars() + " characters");
        }
    }

    void checkSize(long size) {
        if (size > limits.maxCollectionSize()) {
            throw new ChatTemplateException(
                    Reason.LIMIT_EXCEEDED, "a list in the template exceeds " + limits.maxCollectionSize() + " items");
        }
    }

    int maxRange() {
        return limits.maxRange();
    }

    Object checkResult(Object v) {
        if (v instanceof String s) {
            checkString(s);
        } else if (v instanceof List<?> l) {
            checkSize(l.size());
        }
        return v;
    }

    // ---- statements ----

    private void execute(List<Node> nodes, Scope scope, Out out) {
        for (Node node : nodes) {
            step();
            try {
                execute(node, scope, out);
            } catch (PyError e) {
                throw new ChatTemplateException(Reason.RENDER, "line " + node.line() + ": " + e.getMessage());
            }
        }
    }

    private void execute(Node node, Scope scope, Out out) {
        switch (node) {
            case Text t -> out.append(t.text());
            case Output o -> out.append(PyValues.str(eval(o.expr(), scope)));
            case If i -> {
                for (int k = 0; k < i.conditions().size(); k++) {
                    if (PyValues.truthy(eval(i.conditions().get(k), scope))) {
                        execute(i.bodies().get(k), scope, out);
                        return;
                    }
                }
                execute(i.elseBody(), scope, out);
            }
            case For f -> executeFor(f, scope, out);
            case Set s -> executeSet(s, scope);
            case SetBlock s -> {
                Out body = new Out();
                execute(s.body(), scope, body);
                Object value = body.toString();
                for (FilterCall filter : s.filters()) {
                    value = applyFilter(filter, value, scope);
                }
                scope.set(s.name(), value);
            }
            case Macro m -> scope.set(m.name(), new MacroValue(m, scope));
            case FilterBlock f -> {
                Out body = new Out();
                execute(f.body(), scope, body);
                Object value = body.toString();
                for (FilterCall filter : f.filters()) {
                    value = applyFilter(filter, value, scope);
                }
                out.append(PyValues.str(value));
            }
            case Break b -> throw BREAK;
            case Continue c -> throw CONTINUE;
        }
    }

    private void executeFor(For f, Scope scope, Out out) {
        List<Object> items = PyValues.iterate(eval(f.iterable(), scope));
        if (f.filter() != null) {
            List<Object> kept = new ArrayList<>();
            for (Object item : items) {
                step();
                Scope probe = new Scope(scope, null);
                bindTargets(f.targets(), item, probe);
                if (PyValues.truthy(eval(f.filter(), probe))) {
                    kept.add(item);
                }
            }
            items = kept;
        }
        if (items.isEmpty()) {
            execute(f.elseBody(), scope, out);
            return;
        }
        for (int i = 0; i < items.size(); i++) {
            checkDeadline();
            Scope iteration = new Scope(scope, null);
            bindTargets(f.targets(), items.get(i), iteration);
            iteration.set("loop", new LoopContext(items, i));
            try {
                execute(f.body(), iteration, out);
            } catch (LoopControl c) {
                if (c.isBreak) {
                    break;
                }
            }
        }
    }

    private void bindTargets(List<String> targets, Object item, Scope scope) {
        if (targets.size() == 1) {
            scope.set(targets.get(0), item);
            return;
        }
        List<Object> values = PyValues.iterate(item);
        if (values.size() != targets.size()) {
            throw new PyError((values.size() < targets.size() ? "not enough" : "too many")
                    + " values to unpack (expected " + targets.size() + ", got " + values.size() + ")");
        }
        for (int k = 0; k < targets.size(); k++) {
            scope.set(targets.get(k), values.get(k));
        }
    }

    private void executeSet(Set s, Scope scope) {
        Object value = eval(s.value(), scope);
        if (s.attribute() != null) {
            Object target = scope.lookup(s.names().get(0));
            if (!(target instanceof Namespace ns)) {
                throw new PyError("cannot assign attribute on non-namespace object");
            }
            ns.attributes.put(s.attribute(), value);
            return;
        }
        bindTargets(s.names(), value, scope);
    }

    /** A macro: a callable that renders its body with the arguments bound. */
    private final class MacroValue implements PyCallable {
        private final Macro macro;
        private final Scope definedIn;

        MacroValue(Macro macro, Scope definedIn) {
            this.macro = macro;
            this.definedIn = definedIn;
        }

        @Override
        public Object call(List<Object> args, Map<String, Object> kwargs) {
            if (args.size() > macro.params().size()) {
                throw new PyError("macro '" + macro.name() + "' takes not more than " + macro.params().size() + " argument(s)");
            }
            if (++callDepth > limits.maxCallDepth()) {
                callDepth--;
                throw new ChatTemplateException(
                        Reason.LIMIT_EXCEEDED, "macro calls nested deeper than " + limits.maxCallDepth());
            }
            try {
                Scope local = new Scope(definedIn, null);
                for (int k = 0; k < macro.params().size(); k++) {
                    String param = macro.params().get(k);
                    Object value;
                    if (k < args.size()) {
                        value = args.get(k);
                    } else if (kwargs.containsKey(param)) {
                        value = kwargs.get(param);
                    } else if (macro.defaults().get(k) != null) {
                        value = eval(macro.defaults().get(k), local);
                    } else {
                        value = PyValues.undefined("parameter '" + param + "' was not provided");
                    }
                    local.set(param, value);
                }
                Out out = new Out();
                execute(macro.body(), local, out);
                return out.toString();
            } finally {
                callDepth--;
            }
        }
    }

    /** The {@code loop} variable of a for loop. */
    static final class LoopContext {
        final List<Object> items;
        final int index0;

        LoopContext(List<Object> items, int index0) {
            this.items = items;
            this.index0 = index0;
        }

        Object attribute(String name) {
            int length = items.size();
            return switch (name) {
                case "index" -> (long) index0 + 1;
                case "index0" -> (long) index0;
                case "revindex" -> (long) (length - index0);
                case "revindex0" -> (long) (length - index0 - 1);
                case "first" -> index0 == 0;
                case "last" -> index0 == length - 1;
                case "length" -> (long) length;
                case "depth" -> 1L;
                case "depth0" -> 0L;
                case "previtem" -> index0 > 0 ? items.get(index0 - 1) : PyValues.undefined("there is no previous item");
                case "nextitem" -> index0 < length - 1 ? items.get(index0 + 1) : PyValues.undefined("there is no next item");
                case "cycle" -> (PyCallable) (args, kwargs) -> {
                    if (args.isEmpty()) {
                        throw new PyError("no items for cycling given");
                    }
                    return args.get(index0 % args.size());
                };
                default -> PyValues.undefined("'LoopContext object' has no attribute '" + name + "'");
            };
        }
    }

    // ---- expressions ----

    Object eval(Expr expr, Scope scope) {
        return switch (expr) {
            case Const c -> c.value();
            case Name n -> scope.lookup(n.name());
            case ListLit l -> {
                checkSize(l.items().size());
                List<Object> items = new ArrayList<>(l.items().size());
                for (Expr item : l.items()) {
                    items.add(eval(item, scope));
                }
                yield items;
            }
            case DictLit d -> {
                Map<Object, Object> map = new LinkedHashMap<>();
                for (int k = 0; k < d.keys().size(); k++) {
                    map.put(PyValues.normalizeKey(eval(d.keys().get(k), scope)), eval(d.values().get(k), scope));
                }
                yield map;
            }
            case GetAttr g -> getAttribute(eval(g.target(), scope), g.name());
            case GetItem g -> getItem(eval(g.target(), scope), eval(g.key(), scope));
            case Slice s -> slice(eval(s.target(), scope), evalOrNull(s.start(), scope), evalOrNull(s.stop(), scope), evalOrNull(s.step(), scope));
            case Call c -> call(c, scope);
            case Filter f -> applyFilter(f.call(), eval(f.value(), scope), scope);
            case Test t -> {
                List<Object> args = new ArrayList<>();
                evalArguments(t.args(), List.of(), List.of(), scope, args, new LinkedHashMap<>());
                boolean result = builtins.test(t.name(), eval(t.value(), scope), args);
                yield t.negated() != result;
            }
            case Unary u -> unary(u, scope);
            case Binary b -> binary(b, scope);
            case Compare c -> compare(c, scope);
            case Conditional c -> PyValues.truthy(eval(c.condition(), scope))
                    ? eval(c.then(), scope)
                    : c.otherwise() == null ? PyValues.undefined("the inline if-expression evaluated to false and no else section was defined") : eval(c.otherwise(), scope);
            case JinjaAst.Starred s -> throw new PyError("'*' is only allowed in call arguments");
            case Concat c -> {
                StringBuilder sb = new StringBuilder();
                for (Expr part : c.parts()) {
                    sb.append(PyValues.str(eval(part, scope)));
                    checkLength(sb.length());
                }
                yield sb.toString();
            }
        };
    }

    private Object evalOrNull(Expr e, Scope scope) {
        return e == null ? null : eval(e, scope);
    }

    private Object call(Call c, Scope scope) {
        Object callee = eval(c.callee(), scope);
        List<Object> args = new ArrayList<>();
        Map<String, Object> kwargs = new LinkedHashMap<>();
        evalArguments(c.args(), c.kwNames(), c.kwValues(), scope, args, kwargs);
        if (callee instanceof Undefined u) {
            throw new PyError(u.hint);
        }
        if (!(callee instanceof PyCallable f)) {
            throw new PyError("'" + PyValues.typeName(callee) + "' object is not callable");
        }
        step();
        return checkResult(f.call(args, kwargs));
    }

    private void evalArguments(List<Expr> argExprs, List<String> kwNames, List<Expr> kwValues, Scope scope,
            List<Object> args, Map<String, Object> kwargs) {
        for (Expr a : argExprs) {
            if (a instanceof JinjaAst.Starred starred) {
                Object value = eval(starred.value(), scope);
                if (!starred.keywords()) {
                    args.addAll(PyValues.iterate(value));
                } else if (value instanceof Map<?, ?> map) {
                    map.forEach((k, v) -> kwargs.put(PyValues.str(k), v));
                } else {
                    throw new PyError("argument after ** must be a mapping, not " + PyValues.typeName(value));
                }
            } else {
                args.add(eval(a, scope));
            }
        }
        for (int k = 0; k < kwNames.size(); k++) {
            kwargs.put(kwNames.get(k), eval(kwValues.get(k), scope));
        }
    }

    private Object applyFilter(FilterCall filter, Object value, Scope scope) {
        List<Object> args = new ArrayList<>();
        Map<String, Object> kwargs = new LinkedHashMap<>();
        evalArguments(filter.args(), filter.kwNames(), filter.kwValues(), scope, args, kwargs);
        step();
        return checkResult(builtins.filter(filter.name(), value, args, kwargs));
    }

    Object getAttribute(Object target, String name) {
        if (target instanceof Undefined u) {
            throw new PyError(u.hint);
        }
        if (target instanceof Map<?, ?> map) {
            PyCallable method = builtins.dictMethod(map, name);
            if (method != null) {
                return method;
            }
            return map.containsKey(name) ? map.get(name) : PyValues.undefined("'dict object' has no attribute '" + name + "'");
        }
        if (target instanceof Namespace ns) {
            return ns.attributes.containsKey(name) ? ns.attributes.get(name) : PyValues.undefined("'Namespace object' has no attribute '" + name + "'");
        }
        if (target instanceof LoopContext loop) {
            return loop.attribute(name);
        }
        PyCallable method = null;
        if (target instanceof String s) {
            method = builtins.stringMethod(s, name);
        } else if (target instanceof List<?> list) {
            method = builtins.listMethod(list, name);
        }
        if (method != null) {
            return method;
        }
        String owner = target == null ? "'None'" : "'" + PyValues.typeName(target) + " object'";
        return PyValues.undefined(owner + " has no attribute '" + name + "'");
    }

    Object getItem(Object target, Object key) {
        if (target instanceof Undefined u) {
            throw new PyError(u.hint);
        }
        if (target instanceof Map<?, ?> map) {
            Object k = PyValues.normalizeKey(key);
            if (map.containsKey(k)) {
                return map.get(k);
            }
            if (key instanceof String name) {
                return getAttribute(target, name);
            }
            return PyValues.undefined("'dict object' has no attribute " + PyValues.repr(key));
        }
        if ((target instanceof List<?> || target instanceof String) && PyValues.isInteger(key)) {
            List<Object> items = target instanceof String s ? PyValues.iterate(s) : null;
            List<?> list = items != null ? items : (List<?>) target;
            long index = PyValues.asLong(key);
            if (index < 0) {
                index += list.size();
            }
            if (index < 0 || index >= list.size()) {
                return PyValues.undefined("'" + PyValues.typeName(target) + " object' has no element " + key);
            }
            return list.get((int) index);
        }
        if (key instanceof String name) {
            return getAttribute(target, name);
        }
        return PyValues.undefined("'" + PyValues.typeName(target) + " object' has no element " + PyValues.repr(key));
    }

    private Object slice(Object target, Object start, Object stop, Object step) {
        if (target instanceof Undefined u) {
            throw new PyError(u.hint);
        }
        boolean isString = target instanceof String;
        List<Object> items;
        if (isString) {
            items = PyValues.iterate(target);
        } else if (target instanceof List<?> l) {
            items = new ArrayList<>(l);
        } else {
            throw new PyError("'" + PyValues.typeName(target) + "' object is not subscriptable");
        }
        long n = items.size();
        long stepValue = step == null ? 1 : PyValues.asLong(step);
        if (stepValue == 0) {
            throw new PyError("slice step cannot be zero");
        }
        long lower = stepValue > 0 ? 0 : -1;
        long upper = stepValue > 0 ? n : n - 1;
        long from = sliceBound(start, n, lower, upper, stepValue > 0 ? lower : upper);
        long to = sliceBound(stop, n, lower, upper, stepValue > 0 ? upper : lower);
        List<Object> result = new ArrayList<>();
        for (long i = from; stepValue > 0 ? i < to : i > to; i += stepValue) {
            result.add(items.get((int) i));
        }
        if (isString) {
            StringBuilder sb = new StringBuilder();
            result.forEach(c -> sb.append((String) c));
            return sb.toString();
        }
        return result;
    }

    private static long sliceBound(Object value, long n, long lower, long upper, long absent) {
        if (value == null) {
            return absent;
        }
        long v = PyValues.asLong(value);
        if (v < 0) {
            v += n;
            return Math.max(v, lower);
        }
        return Math.min(v, upper);
    }

    private Object unary(Unary u, Scope scope) {
        Object v = eval(u.operand(), scope);
        if (u.op().equals("not")) {
            return !PyValues.truthy(v);
        }
        if (v instanceof Undefined undefined) {
            throw new PyError(undefined.hint);
        }
        if (u.op().equals("-")) {
            if (v instanceof Double d) {
                return -d;
            }
            if (PyValues.isInteger(v)) {
                return Math.negateExact(PyValues.asLong(v));
            }
            throw new PyError("bad operand type for unary -: '" + PyValues.typeName(v) + "'");
        }
        if (PyValues.isNumber(v)) {
            return v instanceof Boolean ? (Object) PyValues.asLong(v) : v;
        }
        throw new PyError("bad operand type for unary +: '" + PyValues.typeName(v) + "'");
    }

    private Object binary(Binary b, Scope scope) {
        if (b.op().equals("and")) {
            Object left = eval(b.left(), scope);
            return PyValues.truthy(left) ? eval(b.right(), scope) : left;
        }
        if (b.op().equals("or")) {
            Object left = eval(b.left(), scope);
            return PyValues.truthy(left) ? left : eval(b.right(), scope);
        }
        return arithmetic(b.op(), eval(b.left(), scope), eval(b.right(), scope));
    }

    Object arithmetic(String op, Object a, Object b) {
        if (a instanceof Undefined u) {
            throw new PyError(u.hint);
        }
        if (b instanceof Undefined u) {
            throw new PyError(u.hint);
        }
        try {
            return switch (op) {
                case "+" -> add(a, b);
                case "-" -> numeric(op, a, b, Math::subtractExact, (x, y) -> x - y);
                case "*" -> multiply(a, b);
                case "/" -> {
                    double divisor = numberOperand(op, b, a);
                    if (divisor == 0) {
                        throw new PyError("division by zero");
                    }
                    yield numberOperand(op, a, b) / divisor;
                }
                case "//" -> {
                    if (PyValues.isInteger(a) && PyValues.isInteger(b)) {
                        if (PyValues.asLong(b) == 0) {
                            throw new PyError("integer division or modulo by zero");
                        }
                        yield Math.floorDiv(PyValues.asLong(a), PyValues.asLong(b));
                    }
                    double divisor = numberOperand(op, b, a);
                    if (divisor == 0) {
                        throw new PyError("float floor division by zero");
                    }
                    yield Math.floor(numberOperand(op, a, b) / divisor);
                }
                case "%" -> {
                    if (a instanceof String format) {
                        yield checkString(builtins.percentFormat(format, b instanceof List<?> l ? new ArrayList<>(l) : List.of(b)));
                    }
                    if (PyValues.isInteger(a) && PyValues.isInteger(b)) {
                        if (PyValues.asLong(b) == 0) {
                            throw new PyError("integer division or modulo by zero");
                        }
                        yield Math.floorMod(PyValues.asLong(a), PyValues.asLong(b));
                    }
                    double x = numberOperand(op, a, b);
                    double y = numberOperand(op, b, a);
                    if (y == 0) {
                        throw new PyError("float modulo");
                    }
                    yield x - y * Math.floor(x / y);
                }
                case "**" -> power(a, b);
                default -> throw new PyError("unknown operator " + op);
            };
        } catch (ArithmeticException e) {
            throw new PyError("integer overflow in '" + op + "'");
        }
    }

    private Object add(Object a, Object b) {
        if (a instanceof String sa && b instanceof String sb) {
            if ((long) sa.length() + sb.length() > limits.maxOutputChars()) {
                throw new ChatTemplateException(
                        Reason.LIMIT_EXCEEDED, "a string in the template exceeds " + limits.maxOutputChars() + " characters");
            }
            return sa + sb;
        }
        if (a instanceof List<?> la && b instanceof List<?> lb) {
            checkSize((long) la.size() + lb.size());
            List<Object> result = new ArrayList<>(la);
            result.addAll(lb);
            return result;
        }
        if (a instanceof String) {
            throw new PyError("can only concatenate str (not \"" + PyValues.typeName(b) + "\") to str");
        }
        if (a instanceof List<?>) {
            throw new PyError("can only concatenate list (not \"" + PyValues.typeName(b) + "\") to list");
        }
        return numeric("+", a, b, Math::addExact, Double::sum);
    }

    private Object multiply(Object a, Object b) {
        if ((a instanceof String || a instanceof List<?>) && PyValues.isInteger(b)) {
            return repeat(a, PyValues.asLong(b));
        }
        if ((b instanceof String || b instanceof List<?>) && PyValues.isInteger(a)) {
            return repeat(b, PyValues.asLong(a));
        }
        return numeric("*", a, b, Math::multiplyExact, (x, y) -> x * y);
    }

    private Object repeat(Object sequence, long times) {
        long count = Math.max(0, times);
        if (sequence instanceof String s) {
            if (s.length() * count > limits.maxOutputChars()) {
                throw new ChatTemplateException(
                        Reason.LIMIT_EXCEEDED, "a string in the template exceeds " + limits.maxOutputChars() + " characters");
            }
            return s.repeat((int) count);
        }
        List<?> list = (List<?>) sequence;
        checkSize(list.size() * count);
        List<Object> result = new ArrayList<>();
        for (long i = 0; i < count; i++) {
            result.addAll(list);
        }
        return result;
    }

    private Object power(Object a, Object b) {
        if (PyValues.isInteger(a) && PyValues.isInteger(b) && PyValues.asLong(b) >= 0) {
            long base = PyValues.asLong(a);
            long exp = PyValues.asLong(b);
            long result = 1;
            for (long i = 0; i < exp; i++) {
                result = Math.multiplyExact(result, base);
                if (result == 0 || result == 1 && base == 1) {
                    break;
                }
                if (i > 64 && (base == -1)) {
                    return exp % 2 == 0 ? 1L : -1L;
                }
            }
            return result;
        }
        return Math.pow(numberOperand("**", a, b), numberOperand("**", b, a));
    }

    private interface LongOp {
        long apply(long x, long y);
    }

    private interface DoubleOp {
        double apply(double x, double y);
    }

    private Object numeric(String op, Object a, Object b, LongOp longOp, DoubleOp doubleOp) {
        if (PyValues.isInteger(a) && PyValues.isInteger(b)) {
            return longOp.apply(PyValues.asLong(a), PyValues.asLong(b));
        }
        return doubleOp.apply(numberOperand(op, a, b), numberOperand(op, b, a));
    }

    private static double numberOperand(String op, Object v, Object other) {
        if (!PyValues.isNumber(v)) {
            throw new PyError("unsupported operand type(s) for " + op + ": '" + PyValues.typeName(v) + "' and '" + PyValues.typeName(other) + "'");
        }
        return PyValues.asDouble(v);
    }

    private Object compare(Compare c, Scope scope) {
        Object left = eval(c.first(), scope);
        for (int k = 0; k < c.ops().size(); k++) {
            Object right = eval(c.operands().get(k), scope);
            if (!compareOnce(c.ops().get(k), left, right)) {
                return false;
            }
            left = right;
        }
        return true;
    }

    boolean compareOnce(String op, Object left, Object right) {
        switch (op) {
            case "==":
                return PyValues.eq(left, right);
            case "!=":
                return !PyValues.eq(left, right);
            case "in":
                return PyValues.contains(right, left);
            case "not in":
                return !PyValues.contains(right, left);
            default:
                if (left instanceof Undefined u) {
                    throw new PyError(u.hint);
                }
                if (right instanceof Undefined u) {
                    throw new PyError(u.hint);
                }
                int cmp = PyValues.compare(left, right, op);
                return switch (op) {
                    case "<" -> cmp < 0;
                    case ">" -> cmp > 0;
                    case "<=" -> cmp <= 0;
                    case ">=" -> cmp >= 0;
                    default -> throw new PyError("unknown comparison " + op);
                };
        }
    }
}
