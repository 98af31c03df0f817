package dev.jvllm.structured;

import dev.jvllm.sampling.TokenConstraint;

import java.util.HashMap;
import java.util.Map;

/**
 * A regex over a token vocabulary: which tokens each of its states allows (found once per state and
 * kept), and a {@link TokenConstraint} per sequence that follows it. Shared by the sequences of one
 * pattern, which the sampler may draw on several threads: the regex's states and the masks are
 * reached under this object's lock.
 *
 * <p>A constraint that reaches a state the regex cannot make ({@link Regex.TooComplexException})
 * throws it from {@link TokenConstraint#mask} or {@link TokenConstraint#advance}: no output it could
 * allow from there is known to match, so its sequence must fail rather than end as if complete. The
 * regex is then {@link #full}, and every later new state fails too; a grammar so spent is not reused.
 */
public final class Grammar {

    private final Regex regex;
    private final TokenVocabulary vocabulary;
    private final int[] eosTokenIds;
    private final Map<Integer, long[]> allowedByState = new HashMap<>();
    private static final int MAX_MASKS = 2048;

    public Grammar(Regex regex, TokenVocabulary vocabulary, int[] eosTokenIds) {
        this.regex = regex;
        this.vocabulary = vocabulary;
        this.eosTokenIds = eosTokenIds.clone();
    }

    /** A constraint for one sequence, at the pattern's start. */
    public TokenConstraint newConstraint() {
        return new Constraint();
    }

    private synchronized long[] allowed(int state) {
        long[] known = allowedByState.get(state);
        if (known == null) {
            known = vocabulary.allowed(regex, state);
            // A mask is a bit a token (16 KB for 128k tokens): past this many, start over rather than grow.
            if (allowedByState.size() >= MAX_MASKS) allowedByState.clear();
            allowedByState.put(state, known);
        }
        return known;
    }

    /** Whether the regex can make no further state, so that sequences following it fail on the next one they need. */
    public synchronized boolean full() {
        return regex.full();
    }

    private synchronized boolean accepting(int state) {
        return regex.accepting(state);
    }

    private synchronized int step(int state, String text) {
        return regex.step(state, text);
    }

    private final class Constraint implements TokenConstraint {
        private int state;

        Constraint() {
            synchronized (Grammar.this) {
                state = regex.start();
            }
        }

        @Override
        public void mask(float[] logits) {
            long[] allowed = state == Regex.DEAD ? new long[(logits.length + 63) / 64] : allowed(state);
            // The end of the sequence only where the output is complete (or, never expected, dead).
            boolean end = state == Regex.DEAD || accepting(state);
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
            state = text == null ? Regex.DEAD : step(state, text);
        }
    }
}
