package dev.jvllm.structured;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A context-free grammar ({@link GrammarRules}) followed character by character, for constrained
 * decoding: after any prefix it tells whether some continuation can still complete the grammar.
 *
 * <p>Each rule is a {@link Regex} whose transitions may call rules. A point in the text is a set of
 * parse stacks ({@link Configuration}), each the state of the innermost rule and the states its
 * callers wait in; several stacks stand for the readings an ambiguous grammar leaves open. Left
 * recursion ({@code expr ::= expr "+" term}) would push without end and is refused when compiled;
 * so are calls of rules never defined.
 *
 * <p>This object builds its rules' automata as they are reached and is safe for one thread at a time.
 */
public final class Pushdown {

    /** Points with more parse stacks than this fail with {@link Regex.TooComplexException} (a grammar too ambiguous to follow). */
    static final int MAX_STACKS = 2_000;
    /** Stacks deeper than this fail with {@link Regex.TooComplexException} (nesting the memory of one point would not hold). */
    static final int MAX_DEPTH = 10_000;

    private final GrammarRules grammar;
    private final String[] names;
    private final Regex[] rules;
    private final int[] starts;

    /**
     * Compiles {@code grammar}.
     *
     * @throws IllegalArgumentException naming a rule whose pattern is not valid, a call of an undefined
     *                                  rule, or a left-recursive rule
     */
    public Pushdown(GrammarRules grammar) {
        this.grammar = grammar;
        names = grammar.names().toArray(String[]::new);
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < names.length; i++) index.put(names[i], i);
        rules = new Regex[names.length];
        starts = new int[names.length];
        for (int i = 0; i < names.length; i++) {
            String rule = names[i];
            try {
                rules[i] = Regex.compileRule(grammar.rules().get(rule), called -> {
                    Integer k = index.get(called);
                    if (k == null) throw new IllegalArgumentException("the rule '" + called + "' is not defined");
                    return k;
                });
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("rule '" + rule + "': " + e.getMessage(), e);
            }
            starts[i] = rules[i].start();
        }
        refuseLeftRecursion(nullable());
    }

    public GrammarRules grammar() {
        return grammar;
    }

    /**
     * One parse stack: a rule's state, and the frame of the rule that called it. Immutable; stacks
     * share their callers. A rule called last in its caller's rule takes its caller's place
     * (a tail call), so that right recursion ({@code list ::= item list?}) keeps the stack flat:
     * {@code returnsAs} is then the rule whose call it completes.
     */
    static final class Frame {
        final int rule;
        final int state;
        final Frame caller;
        final int returnsAs;
        final int depth;
        private final int hash;

        Frame(int rule, int state, Frame caller, int returnsAs) {
            this.rule = rule;
            this.state = state;
            this.caller = caller;
            this.returnsAs = returnsAs;
            this.depth = caller == null ? 1 : caller.depth + 1;
            this.hash = 31 * (31 * (31 * rule + state) + returnsAs) + (caller == null ? 0 : caller.hash);
        }

        Frame at(int next) {
            return new Frame(rule, next, caller, returnsAs);
        }

        @Override
        public int hashCode() {
            return hash;
        }

        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Frame other)) return false;
            // Iteratively: stacks may be thousands of frames deep.
            for (Frame a = this, b = other; a != b; a = a.caller, b = b.caller) {
                if (a == null || b == null || a.hash != b.hash || a.rule != b.rule || a.state != b.state || a.returnsAs != b.returnsAs
                        || a.depth != b.depth) {
                    return false;
                }
            }
            return true;
        }
    }

    /** The parse stacks alive at one point of the text. Immutable; equal when their stacks are, so usable as a key. */
    public static final class Configuration {
        private final Frame[] stacks;
        private final boolean accepting;
        // Made only when the point is a key (once a token, not once a character of the trie walk).
        private Set<Frame> set;

        /** @param stacks distinct stacks */
        private Configuration(Frame[] stacks, boolean accepting) {
            this.stacks = stacks;
            this.accepting = accepting;
        }

        private Set<Frame> set() {
            if (set == null) set = Set.of(stacks);
            return set;
        }

        @Override
        public int hashCode() {
            int hash = accepting ? 1 : 0;
            for (Frame f : stacks) hash += f.hash;
            return hash;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Configuration c && c.accepting == accepting && c.stacks.length == stacks.length && c.set().equals(set());
        }
    }

    /** The point before any character. */
    public Configuration start() {
        return closure(List.of(new Frame(0, starts[0], null, 0)));
    }

    /** The point after {@code c}, or null where no continuation completes the grammar. */
    public Configuration step(Configuration from, char c) {
        Frame[] moved = null;
        int count = 0;
        boolean inside = true;
        for (Frame f : from.stacks) {
            int next = rules[f.rule].step(f.state, c);
            if (next == Regex.DEAD) continue;
            if (moved == null) moved = new Frame[from.stacks.length];
            moved[count++] = f.at(next);
            inside &= !rules[f.rule].accepting(next) && rules[f.rule].calls(next).length == 0;
        }
        if (count == 0) return null;
        // Most characters (a string's, a number's) leave each stack inside its rule: nothing to return or call.
        if (inside) return new Configuration(distinct(moved, count), false);
        return closure(Arrays.asList(moved).subList(0, count));
    }

    // ---- for a trie walk: a point of one stack stepped without making objects ------------------

    /** The only stack of {@code at}, or null where it has several or is complete. */
    Frame single(Configuration at) {
        return at.stacks.length == 1 && !at.accepting ? at.stacks[0] : null;
    }

    /** The state of {@code top}'s rule after {@code c} from {@code state}, or {@link Regex#DEAD}. */
    int stepTop(Frame top, int state, char c) {
        return rules[top.rule].step(state, c);
    }

    /** Whether {@code top}'s rule in {@code state} neither finishes nor calls: only characters lead on. */
    boolean inside(Frame top, int state) {
        return !rules[top.rule].accepting(state) && rules[top.rule].calls(state).length == 0;
    }

    /** The point of {@code top} moved to {@code state}. */
    Configuration point(Frame top, int state) {
        Frame moved = top.at(state);
        return inside(top, state) ? new Configuration(new Frame[]{moved}, false) : closure(List.of(moved));
    }

    private static Frame[] distinct(Frame[] frames, int count) {
        int kept = 0;
        outer:
        for (int i = 0; i < count; i++) {
            for (int j = 0; j < kept; j++) if (frames[j].equals(frames[i])) continue outer;
            frames[kept++] = frames[i];
        }
        return kept == frames.length ? frames : Arrays.copyOf(frames, kept);
    }

    /** The point after {@code text}, or null. */
    public Configuration step(Configuration from, CharSequence text) {
        Configuration at = from;
        for (int i = 0; i < text.length() && at != null; i++) at = step(at, text.charAt(i));
        return at;
    }

    /** Whether the text read to reach {@code at} is a whole sentence of the grammar. */
    public boolean accepting(Configuration at) {
        return at != null && at.accepting;
    }

    /** Whether {@code text} as a whole is a sentence of the grammar. */
    public boolean matches(CharSequence text) {
        return accepting(step(start(), text));
    }

    /**
     * Every stack reachable from {@code seeds} without reading: a finished rule returns to its caller,
     * a rule about to call another pushes it. Only stacks that can read a character are kept (and the
     * finished start rule, as acceptance), so that equal points compare equal.
     */
    private Configuration closure(List<Frame> seeds) {
        Set<Frame> seen = new HashSet<>();
        Set<Frame> kept = new HashSet<>();
        ArrayDeque<Frame> work = new ArrayDeque<>(seeds);
        boolean accepting = false;
        while (!work.isEmpty()) {
            Frame f = work.pop();
            if (!seen.add(f)) continue;
            if (seen.size() > MAX_STACKS * 4) throw tooAmbiguous();
            Regex rule = rules[f.rule];
            if (rule.readsCharacters(f.state)) kept.add(f);
            if (rule.accepting(f.state)) {
                if (f.caller == null) {
                    accepting = true;
                } else {
                    int returned = rules[f.caller.rule].stepCall(f.caller.state, f.returnsAs);
                    if (returned != Regex.DEAD) work.push(f.caller.at(returned));
                }
            }
            for (int callee : rule.calls(f.state)) {
                if (finished(f.rule, rule.stepCall(f.state, callee))) {
                    work.push(new Frame(callee, starts[callee], f.caller, f.returnsAs));
                    continue;
                }
                if (f.depth >= MAX_DEPTH) {
                    throw new Regex.TooComplexException("the grammar nests deeper than " + MAX_DEPTH + " rules", MAX_DEPTH);
                }
                work.push(new Frame(callee, starts[callee], f, callee));
            }
        }
        if (kept.size() > MAX_STACKS) throw tooAmbiguous();
        return new Configuration(kept.toArray(Frame[]::new), accepting);
    }

    /** Whether rule {@code r} in {@code state} can only return: a call that leads there is a tail call. */
    private boolean finished(int r, int state) {
        return state != Regex.DEAD && rules[r].accepting(state) && !rules[r].readsCharacters(state) && rules[r].calls(state).length == 0;
    }

    private static Regex.TooComplexException tooAmbiguous() {
        return new Regex.TooComplexException("the grammar leaves more than " + MAX_STACKS + " readings open at one point", MAX_STACKS);
    }

    /** The rules that can match the empty text. */
    private boolean[] nullable() {
        boolean[] nullable = new boolean[rules.length];
        for (boolean changed = true; changed; ) {
            changed = false;
            for (int r = 0; r < rules.length; r++) {
                if (nullable[r]) continue;
                for (int state : statesWithoutReading(r, nullable)) {
                    if (rules[r].accepting(state)) {
                        nullable[r] = true;
                        changed = true;
                        break;
                    }
                }
            }
        }
        return nullable;
    }

    /** The states of rule {@code r} reached from its start through calls of rules that match the empty text only. */
    private List<Integer> statesWithoutReading(int r, boolean[] nullable) {
        List<Integer> states = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        ArrayDeque<Integer> work = new ArrayDeque<>();
        work.push(starts[r]);
        while (!work.isEmpty()) {
            int state = work.pop();
            if (!seen.add(state)) continue;
            states.add(state);
            for (int callee : rules[r].calls(state)) {
                if (!nullable[callee]) continue;
                int next = rules[r].stepCall(state, callee);
                if (next != Regex.DEAD) work.push(next);
            }
        }
        return states;
    }

    /** Refuses a rule that can call itself before reading a character: its stack would grow without end. */
    private void refuseLeftRecursion(boolean[] nullable) {
        int[][] leftCalls = new int[rules.length][];
        for (int r = 0; r < rules.length; r++) {
            Set<Integer> called = new java.util.TreeSet<>();
            for (int state : statesWithoutReading(r, nullable)) for (int callee : rules[r].calls(state)) called.add(callee);
            leftCalls[r] = called.stream().mapToInt(Integer::intValue).toArray();
        }
        // Depth first over "calls before reading"; a rule met again on the current path closes a cycle.
        int[] mark = new int[rules.length]; // 0 unvisited, 1 on the path, 2 done
        for (int r = 0; r < rules.length; r++) {
            if (mark[r] != 0) continue;
            ArrayDeque<int[]> path = new ArrayDeque<>(); // (rule, next edge)
            path.push(new int[]{r, 0});
            mark[r] = 1;
            while (!path.isEmpty()) {
                int[] top = path.peek();
                if (top[1] == leftCalls[top[0]].length) {
                    mark[top[0]] = 2;
                    path.pop();
                    continue;
                }
                int callee = leftCalls[top[0]][top[1]++];
                if (mark[callee] == 1) {
                    List<String> cycle = new ArrayList<>();
                    for (int[] frame : (Iterable<int[]>) path::descendingIterator) cycle.add(names[frame[0]]);
                    cycle = cycle.subList(cycle.indexOf(names[callee]), cycle.size());
                    cycle.add(names[callee]);
                    throw new IllegalArgumentException("the rule '" + names[callee] + "' is left-recursive (" + String.join(" -> ", cycle)
                            + " before reading a character), which is not supported: write the repetition with '*' or '+'");
                }
                if (mark[callee] == 0) {
                    mark[callee] = 1;
                    path.push(new int[]{callee, 0});
                }
            }
        }
    }

    @Override
    public String toString() {
        return "Pushdown[" + names.length + " rules, start " + names[0] + "]";
    }
}
