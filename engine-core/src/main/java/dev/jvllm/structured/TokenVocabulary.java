package dev.jvllm.structured;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntFunction;

/**
 * The text of every token a constrained output may use, as a trie of characters, so that one walk
 * from a regex state or a grammar's point finds every token that keeps the output alive. Special tokens, and tokens whose
 * bytes are not whole UTF-8 characters (parts of a multi-byte character), are left out: a constrained
 * output is made of whole characters.
 */
public final class TokenVocabulary {

    private final String[] texts;
    // The trie while it is built: per node, its children by character, and the tokens ending there.
    private final List<java.util.Map<Character, Integer>> children = new ArrayList<>();
    private final List<int[]> endingTokens = new ArrayList<>();
    // The trie as walked, in flat arrays: node n's edges are [edgeStart[n], edgeStart[n + 1]), the
    // tokens ending at it [tokenStart[n], tokenStart[n + 1]) of endings.
    private final int[] edgeStart;
    private final char[] edgeChar;
    private final int[] edgeNode;
    private final int[] tokenStart;
    private final int[] endings;

    /** @param bytesOfToken each token's bytes, null for those left out */
    public TokenVocabulary(int vocabSize, IntFunction<byte[]> bytesOfToken) {
        texts = new String[vocabSize];
        var decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        for (int id = 0; id < vocabSize; id++) {
            byte[] bytes = bytesOfToken.apply(id);
            if (bytes == null || bytes.length == 0) continue;
            try {
                texts[id] = decoder.decode(ByteBuffer.wrap(bytes)).toString();
            } catch (CharacterCodingException e) {
                // part of a multi-byte character
            }
        }
        newNode();
        for (int id = 0; id < vocabSize; id++) {
            if (texts[id] == null) continue;
            int node = 0;
            for (char c : texts[id].toCharArray()) node = child(node, c);
            int[] ending = endingTokens.get(node);
            ending = Arrays.copyOf(ending, ending.length + 1);
            ending[ending.length - 1] = id;
            endingTokens.set(node, ending);
        }
        int nodes = children.size(), edges = 0, ends = 0;
        for (int n = 0; n < nodes; n++) {
            edges += children.get(n).size();
            ends += endingTokens.get(n).length;
        }
        edgeStart = new int[nodes + 1];
        edgeChar = new char[edges];
        edgeNode = new int[edges];
        tokenStart = new int[nodes + 1];
        endings = new int[ends];
        for (int n = 0, e = 0, t = 0; n < nodes; n++) {
            edgeStart[n] = e;
            tokenStart[n] = t;
            for (Character c : new java.util.TreeSet<>(children.get(n).keySet())) {
                edgeChar[e] = c;
                edgeNode[e++] = children.get(n).get(c);
            }
            int[] ending = endingTokens.get(n);
            System.arraycopy(ending, 0, endings, t, ending.length);
            t += ending.length;
            edgeStart[n + 1] = e;
            tokenStart[n + 1] = t;
        }
        children.clear();
        endingTokens.clear();
    }

    public int size() {
        return texts.length;
    }

    /** The text of a token, or null where it is left out. */
    public String text(int tokenId) {
        return tokenId >= 0 && tokenId < texts.length ? texts[tokenId] : null;
    }

    /** The tokens whose text keeps {@code regex} alive from {@code state}, as a bit set over the vocabulary. */
    public long[] allowed(Regex regex, int state) {
        long[] bits = noTokens();
        // Depth first from the root, each node with the regex state its path leads to.
        int[] nodeStack = new int[64], stateStack = new int[64];
        int top = 0;
        nodeStack[top] = 0;
        stateStack[top++] = state;
        while (top > 0) {
            int node = nodeStack[--top], at = stateStack[top];
            for (int e = edgeStart[node]; e < edgeStart[node + 1]; e++) {
                int next = regex.step(at, edgeChar[e]);
                if (next == Regex.DEAD) continue;
                int child = edgeNode[e];
                markEndingAt(child, bits);
                if (edgeStart[child] == edgeStart[child + 1]) continue;
                if (top == nodeStack.length) {
                    nodeStack = Arrays.copyOf(nodeStack, top * 2);
                    stateStack = Arrays.copyOf(stateStack, top * 2);
                }
                nodeStack[top] = child;
                stateStack[top++] = next;
            }
        }
        return bits;
    }

    /** The tokens whose text keeps {@code grammar} alive from {@code at}, as a bit set over the vocabulary. */
    public long[] allowed(Pushdown grammar, Pushdown.Configuration at) {
        long[] bits = noTokens();
        walk(grammar, 0, null, 0, at, bits, null, grammar.steps() + Pushdown.MAX_WALK_STEPS);
        return bits;
    }

    /**
     * What a point of one stack allows whatever the stacks below its top: the tokens whose text stays
     * inside the top's rule from {@code state} (neither finishing nor calling: xgrammar's
     * context-independent tokens), and the trie nodes where a text leaves it, each with the rule's
     * state there. A string's walk is then made once per grammar, not once per caller.
     */
    record InsideWalk(long[] bits, int[] nodes, int[] states) {
    }

    InsideWalk inside(Pushdown grammar, Pushdown.Frame top, int state) {
        long[] bits = noTokens();
        List<int[]> boundaries = new ArrayList<>();
        walk(grammar, 0, top, state, null, bits, boundaries, grammar.steps() + Pushdown.MAX_WALK_STEPS);
        return new InsideWalk(bits, boundaries.stream().mapToInt(b -> b[0]).toArray(), boundaries.stream().mapToInt(b -> b[1]).toArray());
    }

    /** The tokens the point of the one stack {@code top} allows, from its rule's {@link #inside} walk at {@code top}'s state. */
    long[] allowed(Pushdown grammar, Pushdown.Frame top, InsideWalk inside) {
        long[] bits = inside.bits().clone();
        long lastStep = grammar.steps() + Pushdown.MAX_WALK_STEPS;  // one budget for all the boundaries' walks
        for (int b = 0; b < inside.nodes().length; b++) {
            int node = inside.nodes()[b];
            Pushdown.Configuration at = grammar.point(top, inside.states()[b]);
            markEndingAt(node, bits);
            walk(grammar, node, null, 0, at, bits, null, lastStep);
        }
        return bits;
    }

    /**
     * Marks the tokens below {@code start} that keep the grammar alive from a point: {@code at}, or
     * the one stack {@code single} in its rule's {@code state}. Where {@code boundaries} is given, a
     * text that leaves that stack's rule is not followed but recorded (its node and the rule's state).
     * Past {@code lastStep} of the grammar's steps it fails ({@link Pushdown#MAX_WALK_STEPS}).
     */
    private void walk(Pushdown grammar, int start, Pushdown.Frame single0, int state0, Pushdown.Configuration at, long[] bits,
                      List<int[]> boundaries, long lastStep) {
        // As for a regex, each node with the point its path leads to. A point of one stack whose rule
        // only reads on (inside a string, a number) is kept as that stack and its rule's state, so that
        // most nodes cost an array lookup, as under a regex; other points are objects.
        int[] nodeStack = new int[64], stateStack = new int[64];
        Pushdown.Frame[] topStack = new Pushdown.Frame[64];
        Pushdown.Configuration[] pointStack = new Pushdown.Configuration[64];
        int top = 0;
        nodeStack[top] = start;
        stateStack[top] = state0;
        topStack[top] = single0;
        pointStack[top++] = at;
        while (top > 0) {
            if (grammar.steps() > lastStep) throw Pushdown.walkTooLong();
            int node = nodeStack[--top], state = stateStack[top];
            Pushdown.Frame single = topStack[top];
            Pushdown.Configuration from = pointStack[top];
            topStack[top] = null;
            pointStack[top] = null;
            if (single == null && from != null && (single = grammar.single(from)) != null) {
                state = single.state;
            }
            for (int e = edgeStart[node]; e < edgeStart[node + 1]; e++) {
                Pushdown.Frame nextTop = null;
                int nextState = 0;
                Pushdown.Configuration next = null;
                int child = edgeNode[e];
                if (single != null) {
                    nextState = grammar.stepTop(single, state, edgeChar[e]);
                    if (nextState == Regex.DEAD) continue;
                    if (grammar.inside(single, nextState)) {
                        nextTop = single;
                    } else if (boundaries != null) {
                        boundaries.add(new int[]{child, nextState});
                        continue;
                    } else {
                        next = grammar.point(single, nextState);
                    }
                } else {
                    next = grammar.step(from, edgeChar[e]);
                    if (next == null) continue;
                }
                markEndingAt(child, bits);
                if (edgeStart[child] == edgeStart[child + 1]) continue;
                if (top == nodeStack.length) {
                    nodeStack = Arrays.copyOf(nodeStack, top * 2);
                    stateStack = Arrays.copyOf(stateStack, top * 2);
                    topStack = Arrays.copyOf(topStack, top * 2);
                    pointStack = Arrays.copyOf(pointStack, top * 2);
                }
                nodeStack[top] = child;
                stateStack[top] = nextState;
                topStack[top] = nextTop;
                pointStack[top++] = next;
            }
        }
    }

    /** A bit set over the vocabulary, every token out. */
    private long[] noTokens() {
        return new long[(texts.length + 63) / 64];
    }

    /** Lets in the tokens whose text ends at trie node {@code node}. */
    private void markEndingAt(int node, long[] bits) {
        for (int t = tokenStart[node]; t < tokenStart[node + 1]; t++) bits[endings[t] >>> 6] |= 1L << (endings[t] & 63);
    }

    private int newNode() {
        children.add(new java.util.HashMap<>(4));
        endingTokens.add(new int[0]);
        return children.size() - 1;
    }

    private int child(int node, char c) {
        Integer known = children.get(node).get(c);
        if (known != null) return known;
        int created = newNode();
        children.get(node).put(c, created);
        return created;
    }
}
