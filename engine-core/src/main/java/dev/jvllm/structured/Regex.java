package dev.jvllm.structured;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.ToIntFunction;

/**
 * A regular expression compiled for constrained decoding: a whole-text matcher that can tell, after
 * any prefix, whether some continuation can still match. The pattern language is the common subset
 * of Java's and Python's: literals, {@code .}, classes ({@code [a-z]}, {@code [^"\\]}, {@code \d \w \s}
 * and their negations), escapes ({@code \n \t \r \f \xHH \\uHHHH}, escaped punctuation), groups
 * ({@code (...)}, {@code (?:...)}), alternation and the quantifiers {@code * + ? {n} {n,} {n,m}}
 * (a trailing {@code ?} or {@code +} is accepted and means the same). Anchors at the ends are
 * accepted and ignored (the match is always whole); lookaround and back-references are refused.
 *
 * <p>It compiles to a Thompson automaton whose deterministic states are made as they are reached
 * ({@link #start}, {@link #step}); this object caches them and is safe for one thread at a time.
 */
public final class Regex {

    /** A state from which nothing matches. */
    public static final int DEAD = -1;
    /** Repetition bounds above this are refused (each repeat is a copy of the automaton). */
    private static final int MAX_REPEAT = 1000;
    /** Patterns whose automaton would pass this many states are refused when compiled (nested repeats multiply). */
    static final int MAX_NFA_STATES = 200_000;
    /**
     * Deterministic states made past this many fail the step with {@link TooComplexException}: a
     * pattern such as {@code (a|b)*a(a|b){20}} has exponentially many, and each costs memory.
     */
    static final int MAX_DFA_STATES = 20_000;

    /** A pattern whose deterministic states grew past {@link #MAX_DFA_STATES}, or a grammar too ambiguous to follow. */
    public static final class TooComplexException extends RuntimeException {
        /** @param message what was passed: a pattern's states, a grammar's readings, nesting or walk */
        TooComplexException(String message) {
            super(message);
        }

        static TooComplexException ofPattern(String pattern) {
            return new TooComplexException("the pattern '" + (pattern.length() > 100 ? pattern.substring(0, 100) + "..." : pattern)
                    + "' needs more than " + MAX_DFA_STATES + " states");
        }
    }

    // The automaton: per state, its character transitions (lo, hi, target) and empty transitions.
    private final List<int[]> ranges = new ArrayList<>();
    private final List<int[]> empties = new ArrayList<>();
    private final int accept;
    private final int nfaStart;

    // The deterministic states found so far: each a set of automaton states.
    private final List<BitSet> dfaStates = new ArrayList<>();
    private final Map<BitSet, Integer> dfaIds = new HashMap<>();
    private final List<Map<Integer, Integer>> dfaNext = new ArrayList<>();
    /** Per deterministic state, the rules it may call (a grammar's rule only), and whether some character leads on; null until {@link #examine}d. */
    private final List<int[]> dfaCalls = new ArrayList<>();
    private final List<Boolean> dfaReads = new ArrayList<>();
    /** The next states on ASCII characters, which most tokens are made of, without boxing ({@link #UNKNOWN}: not yet made). */
    private final List<int[]> dfaNextAscii = new ArrayList<>();
    private static final int UNKNOWN = -2;
    private final List<Boolean> dfaAccepting = new ArrayList<>();

    private final String pattern;
    /** A grammar rule's pattern may call other rules, {@code \\g{name}}: the rule's index by name (null: a plain regex). */
    private final ToIntFunction<String> ruleIndex;
    /**
     * A call of rule k is a transition on the symbol {@code CALL + k}: above every character, so no
     * class or {@code .} takes it.
     */
    private static final int CALL = Character.MAX_VALUE + 1;

    private Regex(String pattern, ToIntFunction<String> ruleIndex) {
        this.pattern = pattern;
        this.ruleIndex = ruleIndex;
        Parser parser = new Parser(pattern);
        int[] fragment = parser.alternation();
        if (parser.pos != pattern.length()) throw parser.error("unbalanced ')'");
        this.nfaStart = fragment[0];
        this.accept = fragment[1];
    }

    /**
     * Compiles {@code pattern}.
     *
     * @throws IllegalArgumentException naming the position and the problem
     */
    public static Regex compile(String pattern) {
        return new Regex(pattern, null);
    }

    /**
     * Compiles a grammar rule's pattern, which may also call rules by name, {@code \\g{name}}.
     *
     * @param ruleIndex each called rule's index; it throws {@link IllegalArgumentException} for an unknown name
     */
    static Regex compileRule(String pattern, ToIntFunction<String> ruleIndex) {
        return new Regex(pattern, Objects.requireNonNull(ruleIndex, "ruleIndex"));
    }

    public String pattern() {
        return pattern;
    }

    /** {@code text} as a pattern that matches exactly it: each metacharacter escaped. */
    public static String quote(String text) {
        StringBuilder b = new StringBuilder(text.length() + 8);
        for (char c : text.toCharArray()) {
            if ("\\^$.|?*+()[]{}".indexOf(c) >= 0) b.append('\\');
            b.append(c);
        }
        return b.toString();
    }

    /** The state before any character. */
    public int start() {
        BitSet set = new BitSet();
        set.set(nfaStart);
        return idOf(closure(set));
    }

    /** The state after {@code c} from {@code state}, or {@link #DEAD}. */
    public int step(int state, char c) {
        return stepSymbol(state, c);
    }

    /** The state after a call of rule {@code rule} from {@code state} returned, or {@link #DEAD}. */
    int stepCall(int state, int rule) {
        return stepSymbol(state, CALL + rule);
    }

    /** The rules {@code state} may call next (none for a plain regex). */
    int[] calls(int state) {
        if (state == DEAD || ruleIndex == null) return NO_CALLS;
        if (dfaCalls.get(state) == null) examine(state);
        return dfaCalls.get(state);
    }

    private static final int[] NO_CALLS = new int[0];

    /** Reads a deterministic state's transitions once for what a grammar asks of it: the rules it calls, and whether it reads characters. */
    private void examine(int state) {
        BitSet called = new BitSet();
        boolean reads = false;
        BitSet set = dfaStates.get(state);
        for (int s = set.nextSetBit(0); s >= 0; s = set.nextSetBit(s + 1)) {
            int[] r = ranges.get(s);
            for (int i = 0; i < r.length; i += 3) {
                if (r[i] >= CALL) called.set(r[i] - CALL);
                else reads = true;
            }
        }
        dfaCalls.set(state, called.stream().toArray());
        dfaReads.set(state, reads);
    }

    // ---- a grammar rule's automaton, read as a whole (Pushdown's checks when it is compiled) --------

    /** How many automaton states the pattern compiled to. */
    int automatonStates() {
        return ranges.size();
    }

    /** Every rule the pattern calls somewhere. */
    int[] calledRules() {
        BitSet called = new BitSet();
        for (int[] r : ranges) {
            for (int i = 0; i < r.length; i += 3) if (r[i] >= CALL) called.set(r[i] - CALL);
        }
        return called.stream().toArray();
    }

    /**
     * Whether a path from the start reaches the end taking characters (if {@code readsCharacters})
     * and calls of the rules {@code callPasses} admits: with characters, whether the rule can finish
     * at all (its calls' rules finish); without, whether it can match the empty text.
     */
    boolean reachesAccept(java.util.function.IntPredicate callPasses, boolean readsCharacters) {
        return walkWithoutDead(callPasses, readsCharacters, null);
    }

    /** The rules called on paths from the start that read no character, passing only calls of the rules {@code nullable} admits. */
    int[] callsBeforeReading(java.util.function.IntPredicate nullable) {
        BitSet called = new BitSet();
        walkWithoutDead(nullable, false, called);
        return called.stream().toArray();
    }

    private boolean walkWithoutDead(java.util.function.IntPredicate callPasses, boolean readsCharacters, BitSet calledOut) {
        BitSet seen = new BitSet();
        int[] stack = new int[16];
        int top = 0;
        stack[top++] = nfaStart;
        seen.set(nfaStart);
        boolean accepted = false;
        while (top > 0) {
            int s = stack[--top];
            if (s == accept) accepted = true;
            int[] r = ranges.get(s);
            int[] e = empties.get(s);
            int[] next = new int[e.length + r.length / 3];
            int n = 0;
            for (int t : e) next[n++] = t;
            for (int i = 0; i < r.length; i += 3) {
                boolean call = r[i] >= CALL;
                if (call && calledOut != null) calledOut.set(r[i] - CALL);
                if (call ? callPasses.test(r[i] - CALL) : readsCharacters) next[n++] = r[i + 2];
            }
            for (int k = 0; k < n; k++) {
                if (seen.get(next[k])) continue;
                seen.set(next[k]);
                if (top == stack.length) stack = Arrays.copyOf(stack, top * 2);
                stack[top++] = next[k];
            }
        }
        return accepted;
    }

    /** Whether some character (not a call) leads on from {@code state}. */
    boolean readsCharacters(int state) {
        if (state == DEAD) return false;
        if (dfaReads.get(state) == null) examine(state);
        return dfaReads.get(state);
    }

    private int stepSymbol(int state, int c) {
        if (state == DEAD) return DEAD;
        int[] ascii = c < 128 ? dfaNextAscii.get(state) : null;
        if (ascii != null && ascii[c] != UNKNOWN) return ascii[c];
        Map<Integer, Integer> next = dfaNext.get(state);
        Integer known = ascii == null ? next.get(c) : null;
        if (known != null) return known;
        BitSet from = dfaStates.get(state), to = new BitSet();
        for (int s = from.nextSetBit(0); s >= 0; s = from.nextSetBit(s + 1)) {
            int[] r = ranges.get(s);
            for (int i = 0; i < r.length; i += 3) {
                if (c >= r[i] && c <= r[i + 1]) to.set(r[i + 2]);
            }
        }
        int id = to.isEmpty() ? DEAD : idOf(closure(to));
        if (ascii != null) ascii[c] = id;
        else next.put(c, id);
        return id;
    }

    /** The state after {@code text} from {@code state}, or {@link #DEAD}. */
    public int step(int state, CharSequence text) {
        for (int i = 0; i < text.length() && state != DEAD; i++) state = step(state, text.charAt(i));
        return state;
    }

    /** Whether the text read to reach {@code state} matches the whole pattern. */
    public boolean accepting(int state) {
        return state != DEAD && dfaAccepting.get(state);
    }

    /** Whether some character leads on from {@code state} (false: the match is complete, or dead). */
    public boolean canContinue(int state) {
        if (state == DEAD) return false;
        BitSet set = dfaStates.get(state);
        for (int s = set.nextSetBit(0); s >= 0; s = set.nextSetBit(s + 1)) {
            if (ranges.get(s).length > 0) return true;
        }
        return false;
    }

    /** Whether {@code text} as a whole matches. */
    public boolean matches(CharSequence text) {
        return accepting(step(start(), text));
    }

    /** How many deterministic states have been made so far. */
    public int statesMade() {
        return dfaStates.size();
    }

    /** Whether no further deterministic state can be made: a step that needs one throws {@link TooComplexException}. */
    public boolean full() {
        return dfaStates.size() >= MAX_DFA_STATES;
    }

    private int idOf(BitSet set) {
        Integer id = dfaIds.get(set);
        if (id != null) return id;
        id = dfaStates.size();
        if (id >= MAX_DFA_STATES) throw TooComplexException.ofPattern(pattern);
        dfaStates.add(set);
        dfaIds.put(set, id);
        dfaNext.add(new HashMap<>());
        dfaCalls.add(null);
        dfaReads.add(null);
        int[] ascii = new int[128];
        Arrays.fill(ascii, UNKNOWN);
        dfaNextAscii.add(ascii);
        dfaAccepting.add(set.get(accept));
        return id;
    }

    private BitSet closure(BitSet set) {
        int[] stack = new int[Math.max(16, set.cardinality())];
        int top = 0;
        for (int s = set.nextSetBit(0); s >= 0; s = set.nextSetBit(s + 1)) {
            if (top == stack.length) stack = Arrays.copyOf(stack, top * 2);
            stack[top++] = s;
        }
        while (top > 0) {
            int s = stack[--top];
            for (int t : empties.get(s)) {
                if (!set.get(t)) {
                    set.set(t);
                    if (top == stack.length) stack = Arrays.copyOf(stack, top * 2);
                    stack[top++] = t;
                }
            }
        }
        return set;
    }

    // ---- construction -------------------------------------------------------------------------

    private int newState() {
        if (ranges.size() >= MAX_NFA_STATES) {
            throw new IllegalArgumentException("regex '" + (pattern.length() > 100 ? pattern.substring(0, 100) + "..." : pattern)
                    + "' is too large: its automaton passes " + MAX_NFA_STATES + " states");
        }
        ranges.add(new int[0]);
        empties.add(new int[0]);
        return ranges.size() - 1;
    }

    private void addEmpty(int from, int to) {
        int[] e = empties.get(from);
        e = Arrays.copyOf(e, e.length + 1);
        e[e.length - 1] = to;
        empties.set(from, e);
    }

    /** A fragment [start, end] taking one character of the ranges (lo, hi pairs). */
    private int[] charFragment(int[] loHi) {
        int s = newState(), e = newState();
        int[] r = new int[loHi.length / 2 * 3];
        for (int i = 0, j = 0; i < loHi.length; i += 2, j += 3) {
            r[j] = loHi[i];
            r[j + 1] = loHi[i + 1];
            r[j + 2] = e;
        }
        ranges.set(s, r);
        return new int[]{s, e};
    }

    private int[] emptyFragment() {
        int s = newState(), e = newState();
        addEmpty(s, e);
        return new int[]{s, e};
    }

    /** A copy of the states of a fragment built by {@code build}, made by building it again. */
    private interface Builder {
        int[] build();
    }

    /**
     * {@code first} repeated min to max times (max -1: unbounded); the copies after the first are
     * built by {@code more}, so a repeat that needs one copy costs no states beyond it.
     */
    private int[] repeat(int[] first, Builder more, int min, int max) {
        int[][] pending = {first};
        java.util.function.Supplier<int[]> copy = () -> {
            if (pending[0] != null) {
                int[] f = pending[0];
                pending[0] = null;
                return f;
            }
            return more.build();
        };
        int[] result = emptyFragment();
        int end = result[1];
        for (int i = 0; i < min; i++) {
            int[] f = copy.get();
            addEmpty(end, f[0]);
            end = f[1];
        }
        if (max < 0) {
            int[] f = copy.get();
            int loopEnd = newState();
            addEmpty(end, f[0]);
            addEmpty(end, loopEnd);
            addEmpty(f[1], f[0]);
            addEmpty(f[1], loopEnd);
            end = loopEnd;
        } else {
            int finalEnd = newState();
            for (int i = min; i < max; i++) {
                int[] f = copy.get();
                addEmpty(end, f[0]);
                addEmpty(end, finalEnd);
                end = f[1];
            }
            addEmpty(end, finalEnd);
            end = finalEnd;
        }
        return new int[]{result[0], end};
    }

    /** Groups nested deeper than this are refused (the parser recurses once a level). */
    static final int MAX_GROUP_DEPTH = 200;

    private final class Parser {
        private final String p;
        private int pos;
        private int depth;

        Parser(String pattern) {
            this.p = pattern;
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException("regex '" + (p.length() > 200 ? p.substring(0, 200) + "..." : p) + "' at " + pos + ": " + what);
        }

        int[] alternation() {
            int start = pos;
            List<int[]> branches = new ArrayList<>();
            branches.add(sequence());
            while (pos < p.length() && p.charAt(pos) == '|') {
                pos++;
                branches.add(sequence());
            }
            if (branches.size() == 1) return branches.getFirst();
            int s = newState(), e = newState();
            for (int[] b : branches) {
                addEmpty(s, b[0]);
                addEmpty(b[1], e);
            }
            return new int[]{s, e};
        }

        int[] sequence() {
            int[] result = emptyFragment();
            int end = result[1];
            while (pos < p.length() && p.charAt(pos) != '|' && p.charAt(pos) != ')') {
                int atomStart = pos;
                if ((p.charAt(pos) == '^' && pos == 0) || (p.charAt(pos) == '$' && pos == p.length() - 1)) {
                    pos++;
                    continue;
                }
                int[] atom = atom();
                int[] bounds = quantifier();
                if (bounds != null) {
                    atom = repeat(atom, () -> {
                        int saved = pos;
                        pos = atomStart;
                        int[] copy = atom();
                        pos = saved;
                        return copy;
                    }, bounds[0], bounds[1]);
                }
                addEmpty(end, atom[0]);
                end = atom[1];
            }
            return new int[]{result[0], end};
        }

        int[] quantifier() {
            if (pos >= p.length()) return null;
            char c = p.charAt(pos);
            int[] bounds;
            if (c == '*') {
                pos++;
                bounds = new int[]{0, -1};
            } else if (c == '+') {
                pos++;
                bounds = new int[]{1, -1};
            } else if (c == '?') {
                pos++;
                bounds = new int[]{0, 1};
            } else if (c == '{' && pos + 1 < p.length() && Character.isDigit(p.charAt(pos + 1))) {
                int close = p.indexOf('}', pos);
                if (close < 0) throw error("unclosed '{'");
                String[] parts = p.substring(pos + 1, close).split(",", -1);
                try {
                    int min = Integer.parseInt(parts[0].strip());
                    int max = parts.length == 1 ? min : parts[1].isBlank() ? -1 : Integer.parseInt(parts[1].strip());
                    if (parts.length > 2 || min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && max < min)) throw error("bad bounds");
                    bounds = new int[]{min, max};
                } catch (NumberFormatException e) {
                    throw error("bad bounds");
                }
                pos = close + 1;
            } else {
                return null;
            }
            if (pos < p.length() && (p.charAt(pos) == '?' || p.charAt(pos) == '+')) pos++;
            return bounds;
        }

        int[] atom() {
            char c = p.charAt(pos);
            switch (c) {
                case '(' -> {
                    if (++depth > MAX_GROUP_DEPTH) throw error("groups nest deeper than " + MAX_GROUP_DEPTH);
                    pos++;
                    if (p.startsWith("?:", pos)) pos += 2;
                    else if (pos < p.length() && p.charAt(pos) == '?') throw error("lookaround and named groups are not supported");
                    int[] inner = alternation();
                    if (pos >= p.length() || p.charAt(pos) != ')') throw error("unclosed '('");
                    pos++;
                    depth--;
                    return inner;
                }
                case '[' -> {
                    return charFragment(charClass());
                }
                case '.' -> {
                    pos++;
                    return charFragment(new int[]{0, '\n' - 1, '\n' + 1, Character.MAX_VALUE});
                }
                case '\\' -> {
                    if (ruleIndex != null && p.startsWith("g{", pos + 1)) return callFragment();
                    return charFragment(escape(false));
                }
                case '*', '+', '?' -> throw error("nothing to repeat");
                default -> {
                    pos++;
                    return charFragment(new int[]{c, c});
                }
            }
        }

        /** A call of another rule, {@code \\g{name}}. */
        int[] callFragment() {
            int close = p.indexOf('}', pos);
            if (close < 0) throw error("unclosed rule call");
            String name = p.substring(pos + 3, close);
            int rule = ruleIndex.applyAsInt(name);
            pos = close + 1;
            return charFragment(new int[]{CALL + rule, CALL + rule});
        }

        /** A class [..] as sorted, merged (lo, hi) pairs. */
        int[] charClass() {
            pos++;
            boolean negate = pos < p.length() && p.charAt(pos) == '^';
            if (negate) pos++;
            List<int[]> parts = new ArrayList<>();
            boolean first = true;
            while (pos < p.length() && (p.charAt(pos) != ']' || first)) {
                first = false;
                int[] lo;
                if (p.charAt(pos) == '\\') {
                    lo = escape(true);
                } else {
                    char c = p.charAt(pos++);
                    lo = new int[]{c, c};
                }
                if (lo.length == 2 && lo[0] == lo[1] && pos + 1 < p.length() && p.charAt(pos) == '-' && p.charAt(pos + 1) != ']') {
                    pos++;
                    int[] hi = p.charAt(pos) == '\\' ? escape(true) : new int[]{p.charAt(pos), p.charAt(pos++)};
                    if (hi.length != 2 || hi[0] != hi[1] || hi[0] < lo[0]) throw error("bad range");
                    parts.add(new int[]{lo[0], hi[0]});
                } else {
                    for (int i = 0; i < lo.length; i += 2) parts.add(new int[]{lo[i], lo[i + 1]});
                }
            }
            if (pos >= p.length()) throw error("unclosed '['");
            pos++;
            int[] merged = merge(parts);
            return negate ? complement(merged) : merged;
        }

        /** An escape (after the backslash) as (lo, hi) pairs. */
        int[] escape(boolean inClass) {
            pos++;
            if (pos >= p.length()) throw error("trailing backslash");
            char c = p.charAt(pos++);
            return switch (c) {
                case 'd' -> new int[]{'0', '9'};
                case 'D' -> complement(new int[]{'0', '9'});
                case 'w' -> merge(List.of(new int[]{'0', '9'}, new int[]{'A', 'Z'}, new int[]{'_', '_'}, new int[]{'a', 'z'}));
                case 'W' -> complement(merge(List.of(new int[]{'0', '9'}, new int[]{'A', 'Z'}, new int[]{'_', '_'}, new int[]{'a', 'z'})));
                case 's' -> merge(List.of(new int[]{'\t', '\r'}, new int[]{' ', ' '}));
                case 'S' -> complement(merge(List.of(new int[]{'\t', '\r'}, new int[]{' ', ' '})));
                case 'n' -> new int[]{'\n', '\n'};
                case 't' -> new int[]{'\t', '\t'};
                case 'r' -> new int[]{'\r', '\r'};
                case 'f' -> new int[]{'\f', '\f'};
                case 'v' -> new int[]{0x0b, 0x0b};
                case '0' -> new int[]{0, 0};
                case 'x' -> hex(2);
                case 'u' -> hex(4);
                default -> {
                    if (Character.isLetterOrDigit(c)) {
                        throw error("'\\" + c + "' (" + (Character.isDigit(c) ? "back-references" : "this escape") + ") is not supported");
                    }
                    yield new int[]{c, c};
                }
            };
        }

        int[] hex(int digits) {
            if (pos + digits > p.length()) throw error("short hex escape");
            try {
                int v = Integer.parseInt(p.substring(pos, pos + digits), 16);
                pos += digits;
                return new int[]{v, v};
            } catch (NumberFormatException e) {
                throw error("bad hex escape");
            }
        }
    }

    /** Sorted, merged (lo, hi) pairs of {@code parts}, as one flat array; GBNF's classes of code points use it too. */
    static int[] merge(List<int[]> parts) {
        List<int[]> sorted = new ArrayList<>(parts);
        sorted.sort((a, b) -> Integer.compare(a[0], b[0]));
        List<int[]> out = new ArrayList<>();
        for (int[] r : sorted) {
            if (!out.isEmpty() && r[0] <= out.getLast()[1] + 1) out.getLast()[1] = Math.max(out.getLast()[1], r[1]);
            else out.add(new int[]{r[0], r[1]});
        }
        int[] flat = new int[out.size() * 2];
        for (int i = 0; i < out.size(); i++) {
            flat[2 * i] = out.get(i)[0];
            flat[2 * i + 1] = out.get(i)[1];
        }
        return flat;
    }

    private static int[] complement(int[] sortedPairs) {
        return complement(sortedPairs, Character.MAX_VALUE);
    }

    /** What of [0, {@code max}] the sorted, merged pairs leave out, as sorted, merged pairs. */
    static int[] complement(int[] sortedPairs, int max) {
        List<int[]> out = new ArrayList<>();
        int next = 0;
        for (int i = 0; i < sortedPairs.length; i += 2) {
            if (sortedPairs[i] > next) out.add(new int[]{next, sortedPairs[i] - 1});
            next = sortedPairs[i + 1] + 1;
        }
        if (next <= max) out.add(new int[]{next, max});
        return merge(out);
    }
}
