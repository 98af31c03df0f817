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
    static final int MAX_STACKS = 256;
    /**
     * A token mask's walk of the vocabulary that steps more stacks than this fails with
     * {@link Regex.TooComplexException}: a grammar that keeps many readings open over long texts
     * would otherwise hold the engine's step for seconds. Inside a JSON string a walk takes about
     * 400 000 steps on a 128k vocabulary.
     */
    static final long MAX_WALK_STEPS = 8_000_000;
    /** Stacks deeper than this fail with {@link Regex.TooComplexException} (nesting the memory of one point would not hold). */
    static final int MAX_DEPTH = 10_000;

    private final GrammarRules grammar;
    private final String[] names;
    private final Regex[] rules;
    private final int[] starts;
    private final Configuration start;
    /** Stacks stepped so far, for the walks' budget. */
    private long steps;

    /**
     * Compiles {@code grammar}.
     *
     * @throws IllegalArgumentException naming a rule whose pattern is not valid, a call of an undefined
     *                                  rule, a rule that can never finish (a recursion without a way
     *                                  out), a left-recursive rule, rules too large together, or a start
     *                                  that leaves too many readings open
     */
    public Pushdown(GrammarRules grammar) {
        this.grammar = grammar;
        names = grammar.names().toArray(String[]::new);
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < names.length; i++) index.put(names[i], i);
        rules = new Regex[names.length];
        starts = new int[names.length];
        int automatonStates = 0;
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
            automatonStates += rules[i].automatonStates();
            if (automatonStates > Regex.MAX_NFA_STATES) {
                throw new IllegalArgumentException("the grammar's rules pass " + Regex.MAX_NFA_STATES + " automaton states together (at rule '"
                        + rule + "')");
            }
            starts[i] = rules[i].start();
        }
        int[][] callers = callers();
        refuseRulesThatNeverFinish(holding((r, finishes) -> rules[r].reachesAccept(k -> finishes[k], true), callers));
        refuseLeftRecursion(holding((r, nullable) -> rules[r].reachesAccept(k -> nullable[k], false), callers));
        try {
            start = closure(List.of(new Frame(0, starts[0], null, 0)));
        } catch (Regex.TooComplexException e) {
            throw new IllegalArgumentException("at its start " + e.getMessage(), e);
        }
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
        return start;
    }

    /** Whether a rule's automaton can make no further state, so that every later new state fails. */
    public boolean full() {
        for (Regex rule : rules) if (rule.full()) return true;
        return false;
    }

    /** The point after {@code c}, or null where no continuation completes the grammar. */
    public Configuration step(Configuration from, char c) {
        steps += from.stacks.length;
        Frame[] moved = null;
        int count = 0;
        boolean inside = true;
        for (Frame f : from.stacks) {
            int next = rules[f.rule].step(f.state, c);
            if (next == Regex.DEAD) continue;
            if (moved == null) moved = new Frame[from.stacks.length];
            moved[count++] = f.at(next);
            inside &= inside(f.rule, next);
        }
        if (count == 0) return null;
        // Most characters (a string's, a number's) leave each stack inside its rule: nothing to return or call.
        if (inside) return new Configuration(distinct(moved, count), false);
        return closure(Arrays.asList(moved).subList(0, count));
    }

    // ---- for a trie walk: a point of one stack stepped without making objects ------------------

    /**
     * Each stack of {@code at} as a point of its own, complete or not as it is: the stacks are
     * readings that go on independently, so what {@code at} allows is what any of them allows.
     */
    List<Configuration> readings(Configuration at) {
        List<Configuration> readings = new ArrayList<>(at.stacks.length);
        for (Frame f : at.stacks) readings.add(new Configuration(new Frame[]{f}, false));
        return readings;
    }

    /** The only stack of {@code at}, or null where it has several or is complete. */
    Frame single(Configuration at) {
        return at.stacks.length == 1 && !at.accepting ? at.stacks[0] : null;
    }

    /** The state of {@code top}'s rule after {@code c} from {@code state}, or {@link Regex#DEAD}. */
    int stepTop(Frame top, int state, char c) {
        steps++;
        return rules[top.rule].step(state, c);
    }

    /** Stacks stepped so far (a walk's cost). */
    long steps() {
        return steps;
    }

    static Regex.TooComplexException walkTooLong() {
        return new Regex.TooComplexException("the grammar keeps so many readings open that masking the vocabulary takes more than "
                + MAX_WALK_STEPS + " steps");
    }

    /** Whether {@code top}'s rule in {@code state} neither finishes nor calls: only characters lead on. */
    boolean inside(Frame top, int state) {
        return inside(top.rule, state);
    }

    private boolean inside(int rule, int state) {
        return !rules[rule].accepting(state) && rules[rule].calls(state).length == 0;
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
            if (seen.size() > MAX_STACKS * 4 + 2 * rules.length) throw tooAmbiguous();
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
                    throw new Regex.TooComplexException("the grammar nests deeper than " + MAX_DEPTH + " rules");
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
        return new Regex.TooComplexException("the grammar leaves more than " + MAX_STACKS + " readings open at one point");
    }

    /** Per rule, the rules that call it. */
    private int[][] callers() {
        List<List<Integer>> callers = new ArrayList<>();
        for (int r = 0; r < rules.length; r++) callers.add(new ArrayList<>());
        for (int r = 0; r < rules.length; r++) for (int callee : rules[r].calledRules()) callers.get(callee).add(r);
        int[][] result = new int[rules.length][];
        for (int r = 0; r < rules.length; r++) result[r] = callers.get(r).stream().mapToInt(Integer::intValue).toArray();
        return result;
    }

    private interface RuleTest {
        boolean holds(int rule, boolean[] known);
    }

    /**
     * The rules for which {@code test} holds, given those already found (the least fixpoint): each
     * rule is tried once, and again only when one it calls is found.
     */
    private boolean[] holding(RuleTest test, int[][] callers) {
        boolean[] known = new boolean[rules.length];
        boolean[] queued = new boolean[rules.length];
        ArrayDeque<Integer> work = new ArrayDeque<>();
        for (int r = rules.length - 1; r >= 0; r--) {
            work.add(r);
            queued[r] = true;
        }
        while (!work.isEmpty()) {
            int r = work.poll();
            queued[r] = false;
            if (known[r] || !test.holds(r, known)) continue;
            known[r] = true;
            for (int caller : callers[r]) {
                if (!known[caller] && !queued[caller]) {
                    queued[caller] = true;
                    work.add(caller);
                }
            }
        }
        return known;
    }

    /**
     * Refuses a rule reached from the start that can never finish (each way through it calls a rule
     * that never finishes, as {@code root ::= "{" root "}"}): its prefixes would stay alive without any
     * way to complete, and the output would run to its length limit.
     */
    private void refuseRulesThatNeverFinish(boolean[] finishes) {
        boolean[] reached = new boolean[rules.length];
        ArrayDeque<Integer> work = new ArrayDeque<>(List.of(0));
        reached[0] = true;
        while (!work.isEmpty()) {
            int r = work.pop();
            if (!finishes[r]) {
                throw new IllegalArgumentException("the rule '" + names[r] + "' can never finish: every way through it calls a rule that "
                        + "never finishes (a recursion with no way out)");
            }
            for (int callee : rules[r].calledRules()) {
                if (!reached[callee]) {
                    reached[callee] = true;
                    work.push(callee);
                }
            }
        }
    }

    /** Refuses a rule that can call itself before reading a character: its stack would grow without end. */
    private void refuseLeftRecursion(boolean[] nullable) {
        int[][] leftCalls = new int[rules.length][];
        for (int r = 0; r < rules.length; r++) leftCalls[r] = rules[r].callsBeforeReading(k -> nullable[k]);
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
                            + " before reading a character), which is not supported");
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
