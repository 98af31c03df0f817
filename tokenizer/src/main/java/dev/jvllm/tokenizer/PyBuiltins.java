package dev.jvllm.tokenizer;

import dev.jvllm.tokenizer.ChatTemplateException.Reason;
import dev.jvllm.tokenizer.PyValues.Namespace;
import dev.jvllm.tokenizer.PyValues.PyCallable;
import dev.jvllm.tokenizer.PyValues.PyError;
import dev.jvllm.tokenizer.PyValues.Undefined;
import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The globals, filters, tests and Python methods available to templates: Jinja2's built-ins that
 * chat templates use, the globals transformers adds ({@code raise_exception}, {@code strftime_now},
 * and its {@code tojson} with {@code json.dumps} spacing), and the non-mutating methods of Python's
 * str, list and dict. Mutating methods ({@code append}, {@code pop}, {@code update}, ...) fail as in
 * transformers' ImmutableSandboxedEnvironment.
 */
final class PyBuiltins {

    private static final java.util.Set<String> UNSAFE_LIST_METHODS =
            java.util.Set.of("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse");
    private static final java.util.Set<String> UNSAFE_DICT_METHODS =
            java.util.Set.of("pop", "popitem", "setdefault", "update", "clear");

    private final JinjaInterpreter interpreter;

    PyBuiltins(JinjaInterpreter interpreter) {
        this.interpreter = interpreter;
    }

    // ---- globals ----

    Object global(String name) {
        return switch (name) {
            case "range" -> (PyCallable) (args, kwargs) -> range(args);
            case "namespace" -> (PyCallable) (args, kwargs) -> {
                Namespace ns = new Namespace();
                for (Object a : args) {
                    if (a instanceof Map<?, ?> m) {
                        m.forEach((k, v) -> ns.attributes.put(PyValues.str(k), v));
                    } else if (a instanceof List<?> pairs) {
                        for (Object pair : pairs) {
                            List<Object> kv = PyValues.iterate(pair);
                            if (kv.size() != 2) {
                                throw new PyError("namespace() sequence element has length " + kv.size() + "; 2 is required");
                            }
                            ns.attributes.put(PyValues.str(kv.get(0)), kv.get(1));
                        }
                    } else {
                        throw new PyError("namespace() positional argument must be a mapping or a list of pairs");
                    }
                }
                ns.attributes.putAll(kwargs);
                return ns;
            };
            case "dict" -> (PyCallable) (args, kwargs) -> {
                Map<Object, Object> map = new LinkedHashMap<>();
                for (Object a : args) {
                    if (a instanceof Map<?, ?> m) {
                        map.putAll(m);
                    } else {
                        throw new PyError("dict() positional argument must be a dict");
                    }
                }
                map.putAll(kwargs);
                return map;
            };
            case "raise_exception" -> (PyCallable) (args, kwargs) -> {
                throw new ChatTemplateException(
                        Reason.RAISED_BY_TEMPLATE, args.isEmpty() ? "template raised an exception" : PyValues.str(args.get(0)));
            };
            case "strftime_now" -> (PyCallable) (args, kwargs) -> strftime(LocalDateTime.now(), PyValues.str(arg(args, kwargs, 0, "format", "")));
            default -> null;
        };
    }

    private List<Object> range(List<Object> args) {
        long start = 0;
        long stop;
        long step = 1;
        if (args.size() == 1) {
            stop = PyValues.asLong(args.get(0));
        } else if (args.size() == 2 || args.size() == 3) {
            start = PyValues.asLong(args.get(0));
            stop = PyValues.asLong(args.get(1));
            if (args.size() == 3) {
                step = PyValues.asLong(args.get(2));
            }
        } else {
            throw new PyError("range expected 1 to 3 arguments, got " + args.size());
        }
        if (step == 0) {
            throw new PyError("range() arg 3 must not be zero");
        }
        double count = Math.max(0, Math.ceil(((double) stop - start) / step));
        if (count > interpreter.maxRange()) {
            throw new ChatTemplateException(
                    Reason.LIMIT_EXCEEDED, "range too big: the sandbox blocks ranges larger than " + interpreter.maxRange());
        }
        List<Object> result = new ArrayList<>((int) count);
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
            result.add(i);
        }
        return result;
    }

    /** Python's datetime.strftime for the directives templates use (e.g. "%d %b %Y"). */
    static String strftime(LocalDateTime t, String format) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 >= format.length()) {
                sb.append(c);
                continue;
            }
            char d = format.charAt(++i);
            boolean noPad = d == '-' && i + 1 < format.length();
            if (noPad) {
                d = format.charAt(++i);
            }
            String pad2 = noPad ? "%d" : "%02d";
            switch (d) {
                case 'Y' -> sb.append(t.getYear());
                case 'y' -> sb.append(String.format("%02d", t.getYear() % 100));
                case 'm' -> sb.append(String.format(pad2, t.getMonthValue()));
                case 'd' -> sb.append(String.format(pad2, t.getDayOfMonth()));
                case 'e' -> sb.append(String.format("%2d", t.getDayOfMonth()));
                case 'H' -> sb.append(String.format(pad2, t.getHour()));
                case 'I' -> sb.append(String.format(pad2, (t.getHour() + 11) % 12 + 1));
                case 'M' -> sb.append(String.format(pad2, t.getMinute()));
                case 'S' -> sb.append(String.format(pad2, t.getSecond()));
                case 'p' -> sb.append(t.getHour() < 12 ? "AM" : "PM");
                case 'j' -> sb.append(String.format(noPad ? "%d" : "%03d", t.getDayOfYear()));
                case 'b', 'h' -> sb.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.US));
                case 'B' -> sb.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.US));
                case 'a' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.US));
                case 'A' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.US));
                case '%' -> sb.append('%');
                default -> sb.append('%').append(d);
            }
        }
        return sb.toString();
    }

    // ---- filters ----

    Object filter(String name, Object value, List<Object> args, Map<String, Object> kwargs) {
        return switch (name) {
            case "abs" -> {
                if (value instanceof Double d) {
                    yield Math.abs(d);
                }
                yield Math.absExact(PyValues.asLong(value));
            }
            case "attr" -> interpreter.getAttribute(value, PyValues.str(arg(args, kwargs, 0, "name", "")));
            case "batch" -> {
                long size = PyValues.asLong(arg(args, kwargs, 0, "linecount", 1L));
                if (size <= 0) {
                    throw new PyError("batch size must be positive");
                }
                Object fill = arg(args, kwargs, 1, "fill_with", null);
                List<Object> batches = new ArrayList<>();
                List<Object> current = new ArrayList<>();
                for (Object item : PyValues.iterate(value)) {
                    current.add(item);
                    if (current.size() == size) {
                        batches.add(current);
                        current = new ArrayList<>();
                    }
                }
                if (!current.isEmpty()) {
                    if (fill != null) {
                        while (current.size() < size) {
                            current.add(fill);
                        }
                    }
                    batches.add(current);
                }
                yield batches;
            }
            case "capitalize" -> capitalize(PyValues.str(value));
            case "center" -> center(PyValues.str(value), (int) PyValues.asLong(arg(args, kwargs, 0, "width", 80L)), " ");
            case "count", "length" -> (long) PyValues.len(value);
            case "default", "d" -> {
                Object fallback = arg(args, kwargs, 0, "default_value", "");
                boolean useForFalsy = PyValues.truthy(arg(args, kwargs, 1, "boolean", false));
                yield value instanceof Undefined || (useForFalsy && !PyValues.truthy(value)) ? fallback : value;
            }
            case "dictsort" -> dictsort(value, args, kwargs);
            case "escape", "e", "forceescape" -> escapeHtml(PyValues.str(value));
            case "first" -> {
                List<Object> items = PyValues.iterate(value);
                yield items.isEmpty() ? PyValues.undefined("No first item, sequence was empty.") : items.get(0);
            }
            case "last" -> {
                List<Object> items = PyValues.iterate(value);
                yield items.isEmpty() ? PyValues.undefined("No last item, sequence was empty.") : items.get(items.size() - 1);
            }
            case "float" -> toFloat(value, arg(args, kwargs, 0, "default", 0.0));
            case "int" -> toInt(value, arg(args, kwargs, 0, "default", 0L));
            case "format" -> percentFormat(PyValues.str(value), args);
            case "indent" -> indent(PyValues.str(value), arg(args, kwargs, 0, "width", 4L),
                    PyValues.truthy(arg(args, kwargs, 1, "first", false)), PyValues.truthy(arg(args, kwargs, 2, "blank", false)));
            case "items" -> {
                if (value instanceof Undefined) {
                    yield new ArrayList<>();
                }
                if (!(value instanceof Map<?, ?> m)) {
                    throw new PyError("Can only get item pairs from a mapping.");
                }
                yield items(m);
            }
            case "join" -> {
                String separator = PyValues.str(arg(args, kwargs, 0, "d", ""));
                Object attribute = arg(args, kwargs, 1, "attribute", null);
                StringBuilder sb = new StringBuilder();
                boolean first = true;
                for (Object item : PyValues.iterate(value)) {
                    if (!first) {
                        sb.append(separator);
                    }
                    first = false;
                    sb.append(PyValues.str(attribute == null ? item : attributePath(item, attribute)));
                    interpreter.checkLength(sb.length());
                }
                yield sb.toString();
            }
            case "list" -> PyValues.iterate(value);
            case "lower" -> PyValues.str(value).toLowerCase(Locale.ROOT);
            case "upper" -> PyValues.str(value).toUpperCase(Locale.ROOT);
            case "title" -> title(PyValues.str(value));
            case "trim" -> strip(PyValues.str(value), arg(args, kwargs, 0, "chars", null), true, true);
            case "replace" -> replace(PyValues.str(value), PyValues.str(arg(args, kwargs, 0, "old", "")),
                    PyValues.str(arg(args, kwargs, 1, "new", "")), arg(args, kwargs, 2, "count", null));
            case "reverse" -> {
                if (value instanceof String s) {
                    yield new StringBuilder(s).reverse().toString();
                }
                List<Object> items = PyValues.iterate(value);
                Collections.reverse(items);
                yield items;
            }
            case "round" -> round(value, arg(args, kwargs, 0, "precision", 0L), PyValues.str(arg(args, kwargs, 1, "method", "common")));
            case "safe", "pprint_safe" -> value;
            case "string" -> PyValues.str(value);
            case "pprint" -> PyValues.repr(value);
            case "sum" -> {
                Object attribute = arg(args, kwargs, 0, "attribute", null);
                Object total = arg(args, kwargs, 1, "start", 0L);
                for (Object item : PyValues.iterate(value)) {
                    total = interpreter.arithmetic("+", total, attribute == null ? item : attributePath(item, attribute));
                }
                yield total;
            }
            case "min", "max" -> {
                List<Object> items = sorted(PyValues.iterate(value), false,
                        PyValues.truthy(arg(args, kwargs, 0, "case_sensitive", false)), arg(args, kwargs, 1, "attribute", null));
                if (items.isEmpty()) {
                    yield PyValues.undefined("No aggregated item, sequence was empty.");
                }
                yield name.equals("min") ? items.get(0) : items.get(items.size() - 1);
            }
            case "sort" -> sorted(PyValues.iterate(value), PyValues.truthy(arg(args, kwargs, 0, "reverse", false)),
                    PyValues.truthy(arg(args, kwargs, 1, "case_sensitive", false)), arg(args, kwargs, 2, "attribute", null));
            case "unique" -> {
                boolean caseSensitive = PyValues.truthy(arg(args, kwargs, 0, "case_sensitive", false));
                Object attribute = arg(args, kwargs, 1, "attribute", null);
                List<Object> seen = new ArrayList<>();
                List<Object> result = new ArrayList<>();
                for (Object item : PyValues.iterate(value)) {
                    Object key = sortKey(attribute == null ? item : attributePath(item, attribute), caseSensitive);
                    if (seen.stream().noneMatch(s -> PyValues.eq(s, key))) {
                        seen.add(key);
                        result.add(item);
                    }
                }
                yield result;
            }
            case "map" -> map(value, args, kwargs);
            case "select", "reject" -> selectOrReject(value, args, name.equals("select"), false);
            case "selectattr", "rejectattr" -> selectOrReject(value, args, name.equals("selectattr"), true);
            case "tojson" -> tojson(value, args, kwargs);
            case "wordcount" -> (long) splitWhitespace(PyValues.str(value), -1).size();
            case "truncate" -> truncate(PyValues.str(value), args, kwargs);
            default -> throw new ChatTemplateException(Reason.RENDER, "no filter named '" + name + "'");
        };
    }

    /** transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent, separators=..., sort_keys=...). */
    private Object tojson(Object value, List<Object> args, Map<String, Object> kwargs) {
        boolean ensureAscii = PyValues.truthy(arg(args, kwargs, 0, "ensure_ascii", false));
        Object indentArg = arg(args, kwargs, 1, "indent", null);
        Object separators = arg(args, kwargs, 2, "separators", null);
        boolean sortKeys = PyValues.truthy(arg(args, kwargs, 3, "sort_keys", false));
        String indent = null;
        if (indentArg instanceof String s) {
            indent = s;
        } else if (indentArg != null) {
            indent = " ".repeat((int) Math.max(0, Math.min(64, PyValues.asLong(indentArg))));
        }
        String itemSeparator = indent == null ? ", " : ",";
        String keySeparator = ": ";
        if (separators instanceof List<?> seps && seps.size() == 2) {
            itemSeparator = PyValues.str(seps.get(0));
            keySeparator = PyValues.str(seps.get(1));
        }
        return PyValues.toJson(value, indent, itemSeparator, keySeparator, sortKeys, ensureAscii);
    }

    private Object map(Object value, List<Object> args, Map<String, Object> kwargs) {
        List<Object> result = new ArrayList<>();
        if (kwargs.containsKey("attribute")) {
            Object attribute = kwargs.get("attribute");
            Object fallback = kwargs.get("default");
            for (Object item : PyValues.iterate(value)) {
                Object v = attributePath(item, attribute);
                result.add(v instanceof Undefined && kwargs.containsKey("default") ? fallback : v);
            }
            return result;
        }
        if (args.isEmpty()) {
            throw new PyError("map requires a filter name or attribute=");
        }
        String filterName = PyValues.str(args.get(0));
        List<Object> filterArgs = args.subList(1, args.size());
        for (Object item : PyValues.iterate(value)) {
            result.add(filter(filterName, item, filterArgs, kwargs));
        }
        return result;
    }

    private Object selectOrReject(Object value, List<Object> args, boolean select, boolean byAttribute) {
        List<Object> result = new ArrayList<>();
        int at = 0;
        Object attribute = null;
        if (byAttribute) {
            if (args.isEmpty()) {
                throw new PyError("selectattr/rejectattr need an attribute name");
            }
            attribute = args.get(at++);
        }
        String testName = at < args.size() ? PyValues.str(args.get(at++)) : null;
        List<Object> testArgs = args.subList(Math.min(at, args.size()), args.size());
        for (Object item : PyValues.iterate(value)) {
            Object subject = byAttribute ? attributePath(item, attribute) : item;
            boolean passed = testName == null ? PyValues.truthy(subject) : test(testName, subject, testArgs);
            if (passed == select) {
                result.add(item);
            }
        }
        return result;
    }

    private Object attributePath(Object item, Object attribute) {
        if (PyValues.isInteger(attribute)) {
            return interpreter.getItem(item, attribute);
        }
        Object v = item;
        for (String part : PyValues.str(attribute).split("\\.")) {
            if (v instanceof Undefined) {
                return v;
            }
            v = part.chars().allMatch(Character::isDigit) && !part.isEmpty()
                    ? interpreter.getItem(v, Long.parseLong(part))
                    : interpreter.getItem(v, part);
        }
        return v;
    }

    private List<Object> sorted(List<Object> items, boolean reverse, boolean caseSensitive, Object attribute) {
        List<Object> result = new ArrayList<>(items);
        Comparator<Object> order = (a, b) -> PyValues.compare(
                sortKey(attribute == null ? a : attributePath(a, attribute), caseSensitive),
                sortKey(attribute == null ? b : attributePath(b, attribute), caseSensitive),
                "<");
        result.sort(reverse ? order.reversed() : order);
        return result;
    }

    private static Object sortKey(Object v, boolean caseSensitive) {
        return !caseSensitive && v instanceof String s ? s.toLowerCase(Locale.ROOT) : v;
    }

    private Object dictsort(Object value, List<Object> args, Map<String, Object> kwargs) {
        if (!(value instanceof Map<?, ?> m)) {
            throw new PyError("You can only sort by either \"key\" or \"value\" of a mapping");
        }
        boolean caseSensitive = PyValues.truthy(arg(args, kwargs, 0, "case_sensitive", false));
        int position = PyValues.str(arg(args, kwargs, 1, "by", "key")).equals("value") ? 1 : 0;
        boolean reverse = PyValues.truthy(arg(args, kwargs, 2, "reverse", false));
        List<Object> pairs = items(m);
        Comparator<Object> order = (a, b) -> PyValues.compare(
                sortKey(((List<?>) a).get(position), caseSensitive), sortKey(((List<?>) b).get(position), caseSensitive), "<");
        pairs.sort(reverse ? order.reversed() : order);
        return pairs;
    }

    private static List<Object> items(Map<?, ?> m) {
        List<Object> pairs = new ArrayList<>();
        m.forEach((k, v) -> pairs.add(java.util.Arrays.asList(k, v)));
        return pairs;
    }

    private static Object toFloat(Object value, Object fallback) {
        if (value instanceof Double) {
            return value;
        }
        if (PyValues.isInteger(value)) {
            return (double) PyValues.asLong(value);
        }
        if (value instanceof String s) {
            try {
                return Double.parseDouble(s.strip());
            } catch (NumberFormatException e) {
                return fallback;
            }
        }
        return fallback;
    }

    private static Object toInt(Object value, Object fallback) {
        if (PyValues.isInteger(value)) {
            return PyValues.asLong(value);
        }
        if (value instanceof Double d) {
            return (long) (double) d;
        }
        if (value instanceof String s) {
            String t = s.strip().replace("_", "");
            try {
                return Long.parseLong(t);
            } catch (NumberFormatException e) {
                try {
                    return (long) Double.parseDouble(t);
                } catch (NumberFormatException e2) {
                    return fallback;
                }
            }
        }
        return fallback;
    }

    private static Object round(Object value, Object precision, String method) {
        double v = PyValues.asDouble(value);
        long digits = PyValues.asLong(precision);
        double factor = Math.pow(10, digits);
        double rounded = switch (method) {
            case "ceil" -> Math.ceil(v * factor) / factor;
            case "floor" -> Math.floor(v * factor) / factor;
            default -> new java.math.BigDecimal(Double.toString(v))
                    .setScale((int) digits, java.math.RoundingMode.HALF_EVEN).doubleValue();
        };
        return rounded;
    }

    private static String indent(String s, Object width, boolean first, boolean blank) {
        String indention = width instanceof String w ? w : " ".repeat((int) Math.max(0, Math.min(1024, PyValues.asLong(width))));
        List<String> lines = splitlines(s + "\n", false);
        String rv;
        if (blank) {
            rv = String.join("\n" + indention, lines);
        } else {
            StringBuilder sb = new StringBuilder(lines.get(0));
            if (lines.size() > 1) {
                sb.append('\n');
                for (int i = 1; i < lines.size(); i++) {
                    if (i > 1) {
                        sb.append('\n');
                    }
                    String line = lines.get(i);
                    sb.append(line.isEmpty() ? line : indention + line);
                }
            }
            rv = sb.toString();
        }
        return first ? indention + rv : rv;
    }

    private static String truncate(String s, List<Object> args, Map<String, Object> kwargs) {
        long length = PyValues.asLong(arg(args, kwargs, 0, "length", 255L));
        boolean killwords = PyValues.truthy(arg(args, kwargs, 1, "killwords", false));
        String end = PyValues.str(arg(args, kwargs, 2, "end", "..."));
        long leeway = PyValues.asLong(arg(args, kwargs, 3, "leeway", 5L));
        if (s.length() <= length + leeway) {
            return s;
        }
        int cut = (int) Math.max(0, length - end.length());
        if (killwords) {
            return s.substring(0, cut) + end;
        }
        String head = s.substring(0, cut);
        int space = head.lastIndexOf(' ');
        return (space >= 0 ? head.substring(0, space) : head) + end;
    }

    private static String escapeHtml(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&#34;").replace("'", "&#39;");
    }

    /** Python's {@code format % args} for %s, %r, %d, %i, %f and %%. */
    String percentFormat(String format, List<Object> args) {
        StringBuilder sb = new StringBuilder();
        int next = 0;
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%') {
                sb.append(c);
                continue;
            }
            if (i + 1 >= format.length()) {
                throw new PyError("incomplete format");
            }
            char spec = format.charAt(++i);
            if (spec == '%') {
                sb.append('%');
                continue;
            }
            if (next >= args.size()) {
                throw new PyError("not enough arguments for format string");
            }
            Object arg = args.get(next++);
            switch (spec) {
                case 's' -> sb.append(PyValues.str(arg));
                case 'r' -> sb.append(PyValues.repr(arg));
                case 'd', 'i' -> sb.append(PyValues.isNumber(arg) ? Long.toString((long) PyValues.asDouble(arg)) : fail("%d format: a real number is required, not " + PyValues.typeName(arg)));
                case 'f' -> sb.append(String.format(Locale.ROOT, "%f", PyValues.asDouble(arg)));
                default -> throw new PyError("unsupported format character '" + spec + "'");
            }
            interpreter.checkLength(sb.length());
        }
        if (next < args.size()) {
            throw new PyError("not all arguments converted during string formatting");
        }
        return sb.toString();
    }

    private static String fail(String message) {
        throw new PyError(message);
    }

    // ---- tests ----

    boolean test(String name, Object value, List<Object> args) {
        return switch (name) {
            case "defined" -> !(value instanceof Undefined);
            case "undefined" -> value instanceof Undefined;
            case "none" -> value == null;
            case "boolean" -> value instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(value);
            case "false" -> Boolean.FALSE.equals(value);
            case "integer" -> value instanceof Long;
            case "float" -> value instanceof Double;
            case "number" -> PyValues.isNumber(value);
            case "string" -> value instanceof String;
            case "mapping" -> value instanceof Map<?, ?>;
            case "sequence" -> value instanceof List<?> || value instanceof String || value instanceof Map<?, ?>;
            case "iterable" -> value instanceof List<?> || value instanceof String || value instanceof Map<?, ?> || value instanceof Undefined;
            case "callable" -> value instanceof PyCallable;
            case "odd" -> PyValues.asLong(value) % 2 != 0;
            case "even" -> PyValues.asLong(value) % 2 == 0;
            case "divisibleby" -> {
                long divisor = PyValues.asLong(args.get(0));
                yield divisor != 0 && PyValues.asLong(value) % divisor == 0;
            }
            case "eq", "equalto", "==" -> PyValues.eq(value, argument(args, name));
            case "ne", "!=" -> !PyValues.eq(value, argument(args, name));
            case "lt", "lessthan", "<" -> interpreter.compareOnce("<", value, argument(args, name));
            case "le", "<=" -> interpreter.compareOnce("<=", value, argument(args, name));
            case "gt", "greaterthan", ">" -> interpreter.compareOnce(">", value, argument(args, name));
            case "ge", ">=" -> interpreter.compareOnce(">=", value, argument(args, name));
            case "in" -> PyValues.contains(argument(args, name), value);
            case "sameas" -> {
                Object other = argument(args, name);
                yield value == other || (value == null ? other == null : (value instanceof Boolean && value.equals(other)));
            }
            case "lower" -> value instanceof String s && s.equals(s.toLowerCase(Locale.ROOT));
            case "upper" -> value instanceof String s && s.equals(s.toUpperCase(Locale.ROOT));
            case "escaped" -> false;
            default -> throw new ChatTemplateException(Reason.RENDER, "no test named '" + name + "'");
        };
    }

    private static Object argument(List<Object> args, String test) {
        if (args.isEmpty()) {
            throw new PyError("test '" + test + "' needs an argument");
        }
        return args.get(0);
    }

    // ---- methods ----

    PyCallable dictMethod(Map<?, ?> map, String name) {
        if (UNSAFE_DICT_METHODS.contains(name)) {
            return unsafe(name, "dict");
        }
        return switch (name) {
            case "items" -> (args, kwargs) -> items(map);
            case "keys" -> (args, kwargs) -> new ArrayList<Object>(map.keySet());
            case "values" -> (args, kwargs) -> new ArrayList<Object>(map.values());
            case "get" -> (args, kwargs) -> {
                Object key = PyValues.normalizeKey(arg(args, kwargs, 0, "key", null));
                return map.containsKey(key) ? map.get(key) : arg(args, kwargs, 1, "default", null);
            };
            case "copy" -> (args, kwargs) -> new LinkedHashMap<Object, Object>(map);
            default -> null;
        };
    }

    PyCallable listMethod(List<?> list, String name) {
        if (UNSAFE_LIST_METHODS.contains(name)) {
            return unsafe(name, "list");
        }
        return switch (name) {
            case "index" -> (args, kwargs) -> {
                Object needle = arg(args, kwargs, 0, "value", null);
                for (int i = 0; i < list.size(); i++) {
                    if (PyValues.eq(list.get(i), needle)) {
                        return (long) i;
                    }
                }
                throw new PyError(PyValues.repr(needle) + " is not in list");
            };
            case "count" -> (args, kwargs) -> list.stream().filter(x -> PyValues.eq(x, args.isEmpty() ? null : args.get(0))).count();
            case "copy" -> (args, kwargs) -> new ArrayList<Object>(list);
            default -> null;
        };
    }

    private static PyCallable unsafe(String name, String type) {
        return (args, kwargs) -> {
            throw new PyError("access to attribute '" + name + "' of '" + type + "' object is unsafe");
        };
    }

    PyCallable stringMethod(String s, String name) {
        return switch (name) {
            case "strip" -> (args, kwargs) -> strip(s, arg(args, kwargs, 0, "chars", null), true, true);
            case "lstrip" -> (args, kwargs) -> strip(s, arg(args, kwargs, 0, "chars", null), true, false);
            case "rstrip" -> (args, kwargs) -> strip(s, arg(args, kwargs, 0, "chars", null), false, true);
            case "startswith" -> (args, kwargs) -> affix(s, arg(args, kwargs, 0, "prefix", null), true);
            case "endswith" -> (args, kwargs) -> affix(s, arg(args, kwargs, 0, "suffix", null), false);
            case "split" -> (args, kwargs) -> split(s, arg(args, kwargs, 0, "sep", null), arg(args, kwargs, 1, "maxsplit", -1L), false);
            case "rsplit" -> (args, kwargs) -> split(s, arg(args, kwargs, 0, "sep", null), arg(args, kwargs, 1, "maxsplit", -1L), true);
            case "splitlines" -> (args, kwargs) -> new ArrayList<Object>(splitlines(s, PyValues.truthy(arg(args, kwargs, 0, "keepends", false))));
            case "upper" -> (args, kwargs) -> s.toUpperCase(Locale.ROOT);
            case "lower", "casefold" -> (args, kwargs) -> s.toLowerCase(Locale.ROOT);
            case "title" -> (args, kwargs) -> title(s);
            case "capitalize" -> (args, kwargs) -> capitalize(s);
            case "swapcase" -> (args, kwargs) -> swapcase(s);
            case "replace" -> (args, kwargs) -> replace(s, PyValues.str(arg(args, kwargs, 0, "old", "")),
                    PyValues.str(arg(args, kwargs, 1, "new", "")), arg(args, kwargs, 2, "count", null));
            case "find" -> (args, kwargs) -> (long) codePointIndex(s, s.indexOf(stringArg(args, 0, "find")));
            case "rfind" -> (args, kwargs) -> (long) codePointIndex(s, s.lastIndexOf(stringArg(args, 0, "rfind")));
            case "index" -> (args, kwargs) -> {
                int i = s.indexOf(stringArg(args, 0, "index"));
                if (i < 0) {
                    throw new PyError("substring not found");
                }
                return (long) codePointIndex(s, i);
            };
            case "count" -> (args, kwargs) -> {
                String sub = stringArg(args, 0, "count");
                if (sub.isEmpty()) {
                    return (long) PyValues.len(s) + 1;
                }
                long n = 0;
                for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) {
                    n++;
                }
                return n;
            };
            case "join" -> (args, kwargs) -> {
                StringBuilder sb = new StringBuilder();
                List<Object> items = PyValues.iterate(arg(args, kwargs, 0, "iterable", List.of()));
                for (int i = 0; i < items.size(); i++) {
                    if (!(items.get(i) instanceof String item)) {
                        throw new PyError("sequence item " + i + ": expected str instance, " + PyValues.typeName(items.get(i)) + " found");
                    }
                    if (i > 0) {
                        sb.append(s);
                    }
                    sb.append(item);
                    interpreter.checkLength(sb.length());
                }
                return sb.toString();
            };
            case "format" -> (args, kwargs) -> strFormat(s, args, kwargs);
            case "isdigit", "isnumeric", "isdecimal" -> (args, kwargs) -> !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            case "isalpha" -> (args, kwargs) -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isalnum" -> (args, kwargs) -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            case "isspace" -> (args, kwargs) -> !s.isEmpty() && s.codePoints().allMatch(PyValues::isPyWhitespace);
            case "isupper" -> (args, kwargs) -> s.codePoints().anyMatch(Character::isLetter) && s.equals(s.toUpperCase(Locale.ROOT));
            case "islower" -> (args, kwargs) -> s.codePoints().anyMatch(Character::isLetter) && s.equals(s.toLowerCase(Locale.ROOT));
            case "zfill" -> (args, kwargs) -> {
                int width = (int) Math.min(PyValues.asLong(arg(args, kwargs, 0, "width", 0L)), 1_000_000);
                int len = PyValues.len(s);
                if (len >= width) {
                    return s;
                }
                boolean signed = s.startsWith("-") || s.startsWith("+");
                String zeros = "0".repeat(width - len);
                return signed ? s.charAt(0) + zeros + s.substring(1) : zeros + s;
            };
            case "center" -> (args, kwargs) -> center(s, (int) PyValues.asLong(arg(args, kwargs, 0, "width", 0L)), PyValues.str(arg(args, kwargs, 1, "fillchar", " ")));
            case "ljust", "rjust" -> (args, kwargs) -> {
                int width = (int) Math.min(PyValues.asLong(arg(args, kwargs, 0, "width", 0L)), 1_000_000);
                String fill = PyValues.str(arg(args, kwargs, 1, "fillchar", " "));
                int len = PyValues.len(s);
                if (len >= width) {
                    return s;
                }
                String padding = fill.repeat(width - len);
                return name.equals("ljust") ? s + padding : padding + s;
            };
            case "partition", "rpartition" -> (args, kwargs) -> {
                String sep = stringArg(args, 0, name);
                int i = name.equals("partition") ? s.indexOf(sep) : s.lastIndexOf(sep);
                if (i < 0) {
                    return name.equals("partition") ? List.<Object>of(s, "", "") : List.<Object>of("", "", s);
                }
                return List.<Object>of(s.substring(0, i), sep, s.substring(i + sep.length()));
            };
            case "removeprefix" -> (args, kwargs) -> {
                String p = stringArg(args, 0, name);
                return s.startsWith(p) ? s.substring(p.length()) : s;
            };
            case "removesuffix" -> (args, kwargs) -> {
                String p = stringArg(args, 0, name);
                return !p.isEmpty() && s.endsWith(p) ? s.substring(0, s.length() - p.length()) : s;
            };
            default -> null;
        };
    }

    private static String stringArg(List<Object> args, int index, String method) {
        if (args.size() <= index || !(args.get(index) instanceof String s)) {
            throw new PyError(method + "() argument must be str");
        }
        return s;
    }

    private static int codePointIndex(String s, int charIndex) {
        return charIndex < 0 ? -1 : s.codePointCount(0, charIndex);
    }

    static String strip(String s, Object chars, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        if (chars == null || chars instanceof Undefined) {
            while (left && start < end && PyValues.isPyWhitespace(s.codePointAt(start))) {
                start += Character.charCount(s.codePointAt(start));
            }
            while (right && end > start && PyValues.isPyWhitespace(s.codePointBefore(end))) {
                end -= Character.charCount(s.codePointBefore(end));
            }
        } else {
            String set = PyValues.str(chars);
            while (left && start < end && set.indexOf(s.codePointAt(start)) >= 0) {
                start += Character.charCount(s.codePointAt(start));
            }
            while (right && end > start && set.indexOf(s.codePointBefore(end)) >= 0) {
                end -= Character.charCount(s.codePointBefore(end));
            }
        }
        return s.substring(start, end);
    }

    private static boolean affix(String s, Object affix, boolean prefix) {
        if (affix instanceof List<?> options) {
            for (Object o : options) {
                if (affix(s, o, prefix)) {
                    return true;
                }
            }
            return false;
        }
        if (!(affix instanceof String a)) {
            throw new PyError((prefix ? "startswith" : "endswith") + " first arg must be str or a tuple of str, not " + PyValues.typeName(affix));
        }
        return prefix ? s.startsWith(a) : s.endsWith(a);
    }

    static List<Object> split(String s, Object sep, Object maxsplitArg, boolean fromRight) {
        long maxsplit = maxsplitArg == null ? -1 : PyValues.asLong(maxsplitArg);
        if (sep == null) {
            if (!fromRight) {
                return new ArrayList<>(splitWhitespace(s, maxsplit));
            }
            List<String> reversed = splitWhitespace(new StringBuilder(s).reverse().toString(), maxsplit);
            List<Object> result = new ArrayList<>();
            for (int i = reversed.size() - 1; i >= 0; i--) {
                result.add(new StringBuilder(reversed.get(i)).reverse().toString());
            }
            return result;
        }
        String separator = PyValues.str(sep);
        if (separator.isEmpty()) {
            throw new PyError("empty separator");
        }
        List<Object> parts = new ArrayList<>();
        if (!fromRight) {
            int from = 0;
            int i;
            while ((maxsplit < 0 || parts.size() < maxsplit) && (i = s.indexOf(separator, from)) >= 0) {
                parts.add(s.substring(from, i));
                from = i + separator.length();
            }
            parts.add(s.substring(from));
            return parts;
        }
        int to = s.length();
        int i;
        while ((maxsplit < 0 || parts.size() < maxsplit) && (i = s.lastIndexOf(separator, to - separator.length())) >= 0) {
            parts.add(0, s.substring(i + separator.length(), to));
            to = i;
        }
        parts.add(0, s.substring(0, to));
        return parts;
    }

    private static List<String> splitWhitespace(String s, long maxsplit) {
        List<String> parts = new ArrayList<>();
        int i = 0;
        int n = s.length();
        while (true) {
            while (i < n && PyValues.isPyWhitespace(s.charAt(i))) {
                i++;
            }
            if (i >= n) {
                return parts;
            }
            if (maxsplit >= 0 && parts.size() == maxsplit) {
                // Python keeps the remainder's trailing whitespace: ' a b '.split(None, 1) == ['a', 'b ']
                parts.add(s.substring(i));
                return parts;
            }
            int start = i;
            while (i < n && !PyValues.isPyWhitespace(s.charAt(i))) {
                i++;
            }
            parts.add(s.substring(start, i));
        }
    }

    /** Python's str.splitlines: \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029. */
    static List<String> splitlines(String s, boolean keepEnds) {
        List<String> lines = new ArrayList<>();
        int start = 0;
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            int breakLength = 0;
            if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') {
                breakLength = 2;
            } else if (c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) || c == 0x85 || c == 0x2028 || c == 0x2029) {
                breakLength = 1;
            }
            if (breakLength > 0) {
                lines.add(s.substring(start, keepEnds ? i + breakLength : i));
                i += breakLength;
                start = i;
            } else {
                i++;
            }
        }
        if (start < s.length()) {
            lines.add(s.substring(start));
        }
        return lines;
    }

    private static String replace(String s, String old, String replacement, Object countArg) {
        long count = countArg == null ? -1 : PyValues.asLong(countArg);
        if (count < 0 && !old.isEmpty()) {
            return s.replace(old, replacement);
        }
        StringBuilder sb = new StringBuilder();
        if (old.isEmpty()) {
            int[] cps = s.codePoints().toArray();
            long done = 0;
            for (int cp : cps) {
                if (count < 0 || done < count) {
                    sb.append(replacement);
                    done++;
                }
                sb.appendCodePoint(cp);
            }
            if (count < 0 || done < count) {
                sb.append(replacement);
            }
            return sb.toString();
        }
        int from = 0;
        long done = 0;
        int i;
        while (done < count && (i = s.indexOf(old, from)) >= 0) {
            sb.append(s, from, i).append(replacement);
            from = i + old.length();
            done++;
        }
        return sb.append(s.substring(from)).toString();
    }

    private static String capitalize(String s) {
        if (s.isEmpty()) {
            return s;
        }
        int first = s.codePointAt(0);
        return new StringBuilder().appendCodePoint(Character.toTitleCase(first))
                .append(s.substring(Character.charCount(first)).toLowerCase(Locale.ROOT)).toString();
    }

    private static String title(String s) {
        StringBuilder sb = new StringBuilder();
        boolean previousCased = false;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            sb.appendCodePoint(previousCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
            previousCased = Character.isLetter(c);
            i += Character.charCount(c);
        }
        return sb.toString();
    }

    private static String swapcase(String s) {
        StringBuilder sb = new StringBuilder();
        s.codePoints().forEach(c -> sb.appendCodePoint(
                Character.isUpperCase(c) ? Character.toLowerCase(c) : Character.isLowerCase(c) ? Character.toUpperCase(c) : c));
        return sb.toString();
    }

    private static String center(String s, int width, String fill) {
        int len = PyValues.len(s);
        width = Math.min(width, 1_000_000);
        if (len >= width) {
            return s;
        }
        int total = width - len;
        int left = total / 2 + (total & width & 1);
        return fill.repeat(left) + s + fill.repeat(total - left);
    }

    /** Python's str.format with {}, {0}, {name} and {{ }}; format specs are not supported. */
    private static String strFormat(String format, List<Object> args, Map<String, Object> kwargs) {
        StringBuilder sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c == '{' && i + 1 < format.length() && format.charAt(i + 1) == '{') {
                sb.append('{');
                i++;
            } else if (c == '}' && i + 1 < format.length() && format.charAt(i + 1) == '}') {
                sb.append('}');
                i++;
            } else if (c == '{') {
                int close = format.indexOf('}', i);
                if (close < 0) {
                    throw new PyError("Single '{' encountered in format string");
                }
                String field = format.substring(i + 1, close);
                if (field.contains(":") || field.contains("!")) {
                    throw new PyError("format specs are not supported: {" + field + "}");
                }
                Object value;
                if (field.isEmpty()) {
                    if (auto >= args.size()) {
                        throw new PyError("Replacement index " + auto + " out of range for positional args tuple");
                    }
                    value = args.get(auto++);
                } else if (field.chars().allMatch(Character::isDigit)) {
                    int index = Integer.parseInt(field);
                    if (index >= args.size()) {
                        throw new PyError("Replacement index " + index + " out of range for positional args tuple");
                    }
                    value = args.get(index);
                } else {
                    if (!kwargs.containsKey(field)) {
                        throw new PyError("KeyError: '" + field + "'");
                    }
                    value = kwargs.get(field);
                }
                sb.append(PyValues.str(value));
                i = close;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }

    /** The argument at {@code index}, or the keyword {@code name}, or {@code fallback}. */
    private static Object arg(List<Object> args, Map<String, Object> kwargs, int index, String name, Object fallback) {
        if (index < args.size()) {
            return args.get(index);
        }
        return kwargs.getOrDefault(name, fallback);
    }
}
