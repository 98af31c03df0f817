package dev.jvllm.structured;

import dev.jvllm.sampling.TokenConstraint;

import java.util.HashMap;
import java.util.Map;

/**
 * A regex or a context-free grammar over a token vocabulary: which tokens each of its states allows
 * (found once per state and kept), and a {@link TokenConstraint} per sequence that follows it. Shared
 * by the sequences of one structured output, which the sampler may draw on several threads: the
 * automata and the masks are reached under this object's lock.
 *
 * <p>A constraint that reaches a state the regex cannot make, or a point the grammar cannot follow
 * ({@link Regex.TooComplexException}), throws it from {@link TokenConstraint#mask} or
 * {@link TokenConstraint#advance}: no output it could allow from there is known to match, so its
 * sequence must fail rather than end as if complete. A regex is then {@link #full}, and every later
 * new state fails too; a grammar so spent is not reused.
 */
public final class Grammar {

    private final Machine<?> machine;
    private final TokenVocabulary vocabulary;
    private final int[] eosTokenIds;
    private static final int MAX_MASKS = 2048;
    private static final int MAX_INSIDE_WALKS = 256;

    public Grammar(Regex regex, TokenVocabulary vocabulary, int[] eosTokenIds) {
        this(new RegexMachine(regex, vocabulary), vocabulary, eosTokenIds);
    }

    public Grammar(Pushdown pushdown, TokenVocabulary vocabulary, int[] eosTokenIds) {
        this(new PushdownMachine(pushdown, vocabulary), vocabulary, eosTokenIds);
    }

    private Grammar(Machine<?> machine, TokenVocabulary vocabulary, int[] eosTokenIds) {
        this.machine = machine;
        this.vocabulary = vocabulary;
        this.eosTokenIds = eosTokenIds.clone();
    }

    /** A constraint for one sequence, at the start. */
    public TokenConstraint newConstraint() {
        return constraint(machine);
    }

    private <S> TokenConstraint constraint(Machine<S> m) {
        synchronized (this) {
            return new Constraint<>(m, m.start());
        }
    }

    /** Whether the regex can make no further state, so that sequences following it fail on the next one they need. */
    public synchronized boolean full() {
        return machine.full();
    }

    /**
     * What a constrained output follows, character by character: its states (null: dead), which
     * tokens each allows, and whether the text read so far is complete. Not thread-safe.
     */
    private abstract static class Machine<S> {
        private final Map<S, long[]> allowedByState = new HashMap<>();
        final TokenVocabulary vocabulary;

        Machine(TokenVocabulary vocabulary) {
            this.vocabulary = vocabulary;
        }

        abstract S start();

        abstract S step(S state, String text);

        abstract boolean accepting(S state);

        abstract long[] findAllowed(S state);

        boolean full() {
            return false;
        }

        final long[] allowed(S state) {
            long[] known = allowedByState.get(state);
            if (known == null) {
                known = findAllowed(state);
                // A mask is a bit a token (16 KB for 128k tokens): past this many, start over rather than grow.
                if (allowedByState.size() >= MAX_MASKS) allowedByState.clear();
                allowedByState.put(state, known);
            }
            return known;
        }
    }

    private static final class RegexMachine extends Machine<Integer> {
        private final Regex regex;

        RegexMachine(Regex regex, TokenVocabulary vocabulary) {
            super(vocabulary);
            this.regex = regex;
        }

        @Override
        Integer start() {
            return regex.start();
        }

        @Override
        Integer step(Integer state, String text) {
            int next = regex.step(state, text);
            return next == Regex.DEAD ? null : next;
        }

        @Override
        boolean accepting(Integer state) {
            return regex.accepting(state);
        }

        @Override
        long[] findAllowed(Integer state) {
            return vocabulary.allowed(regex, state);
        }

        @Override
        boolean full() {
            return regex.full();
        }
    }

    private static final class PushdownMachine extends Machine<Pushdown.Configuration> {
        private final Pushdown pushdown;

        PushdownMachine(Pushdown pushdown, TokenVocabulary vocabulary) {
            super(vocabulary);
            this.pushdown = pushdown;
        }

        @Override
        Pushdown.Configuration start() {
            return pushdown.start();
        }

        @Override
        Pushdown.Configuration step(Pushdown.Configuration state, String text) {
            return pushdown.step(state, text);
        }

        @Override
        boolean accepting(Pushdown.Configuration state) {
            return pushdown.accepting(state);
        }

        /** The inside walks made so far, by rule and state ({@link TokenVocabulary#inside}). */
        private final Map<Long, TokenVocabulary.InsideWalk> insideWalks = new HashMap<>();

        @Override
        long[] findAllowed(Pushdown.Configuration state) {
            Pushdown.Frame top = pushdown.single(state);
            if (top == null) {
                // Several readings (or a complete one): each is walked and kept as a point of its own, so
                // that the readings points share (a value's start, a string's) are walked once.
                long[] union = new long[(vocabulary.size() + 63) / 64];
                long lastStep = pushdown.steps() + Pushdown.MAX_WALK_STEPS;  // one budget for all the readings' walks
                for (Pushdown.Configuration reading : pushdown.readings(state)) {
                    if (pushdown.steps() > lastStep) throw Pushdown.walkTooLong();
                    long[] bits = allowed(reading);
                    for (int i = 0; i < union.length; i++) union[i] |= bits[i];
                }
                return union;
            }
            long key = (long) top.rule << 32 | top.state;
            TokenVocabulary.InsideWalk inside = insideWalks.get(key);
            if (inside == null) {
                inside = vocabulary.inside(pushdown, top, top.state);
                // Few rule states repeat inside walks (a string's, a number's): fewer kept than masks, each also 16 KB at 128k tokens.
                if (insideWalks.size() >= MAX_INSIDE_WALKS) insideWalks.clear();
                insideWalks.put(key, inside);
            }
            return vocabulary.allowed(pushdown, top, inside);
        }

        @Override
        boolean full() {
            return pushdown.full();
        }
    }

    private final class Constraint<S> implements TokenConstraint {
        private final Machine<S> machine;
        private S state;

        Constraint(Machine<S> machine, S start) {
            this.machine = machine;
            this.state = start;
        }

        @Override
        public void mask(float[] logits) {
            long[] allowed;
            boolean end;
            synchronized (Grammar.this) {
                allowed = state == null ? new long[(logits.length + 63) / 64] : machine.allowed(state);
                // The end of the sequence only where the output is complete (or, never expected, dead).
                end = state == null || machine.accepting(state);
            }
            float[] eosLogits = new float[eosTokenIds.length];
            for (int i = 0; i < eosTokenIds.length; i++) eosLogits[i] = eosTokenIds[i] < logits.length ? logits[eosTokenIds[i]] : 0f;
            for (int id = 0; id < logits.length; id++) {
                boolean ok = id < vocabulary.size() && (allowed[id >>> 6] & (1L << (id & 63))) != 0;
                if (!ok) logits[id] = Float.NEGATIVE_INFINITY;
            }
            for (int i = 0; i < eosTokenIds.length; i++) {
                int eos = eosTokenIds[i];
                if (eos < logits.length) logits[eos] = end ? eosLogits[i] : Float.NEGATIVE_INFINITY;
            }
        }

        @Override
        public void advance(int tokenId) {
            for (int eos : eosTokenIds) if (eos == tokenId) return;
            String text = vocabulary.text(tokenId);
            if (state == null || text == null) {
                state = null;
                return;
            }
            synchronized (Grammar.this) {
                state = machine.step(state, text);
            }
        }
    }
}
