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
 * from a regex state finds every token that keeps the output alive. Special tokens, and tokens whose
 * bytes are not whole UTF-8 characters (parts of a multi-byte character), are left out: a constrained
 * output is made of whole characters.
 */
public final class TokenVocabulary {

    private final String[] texts;
    // The trie: per node, its children's characters and nodes (sorted by character), and the tokens ending there.
    private final List<char[]> childChars = new ArrayList<>();
    private final List<int[]> childNodes = new ArrayList<>();
    private final List<int[]> endingTokens = new ArrayList<>();

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
        long[] bits = new long[(texts.length + 63) / 64];
        walk(regex, 0, state, bits);
        return bits;
    }

    private void walk(Regex regex, int node, int state, long[] bits) {
        char[] chars = childChars.get(node);
        int[] nodes = childNodes.get(node);
        for (int i = 0; i < chars.length; i++) {
            int next = regex.step(state, chars[i]);
            if (next == Regex.DEAD) continue;
            for (int id : endingTokens.get(nodes[i])) bits[id >>> 6] |= 1L << (id & 63);
            walk(regex, nodes[i], next, bits);
        }
    }

    private int newNode() {
        childChars.add(new char[0]);
        childNodes.add(new int[0]);
        endingTokens.add(new int[0]);
        return childChars.size() - 1;
    }

    private int child(int node, char c) {
        char[] chars = childChars.get(node);
        int at = Arrays.binarySearch(chars, c);
        if (at >= 0) return childNodes.get(node)[at];
        int insert = -at - 1, created = newNode();
        char[] newChars = new char[chars.length + 1];
        int[] nodes = childNodes.get(node), newNodes = new int[nodes.length + 1];
        System.arraycopy(chars, 0, newChars, 0, insert);
        System.arraycopy(nodes, 0, newNodes, 0, insert);
        newChars[insert] = c;
        newNodes[insert] = created;
        System.arraycopy(chars, insert, newChars, insert + 1, chars.length - insert);
        System.arraycopy(nodes, insert, newNodes, insert + 1, nodes.length - insert);
        childChars.set(node, newChars);
        childNodes.set(node, newNodes);
        return created;
    }
}
