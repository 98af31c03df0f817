package dev.jvllm.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One sequence the engine generates: its tokens (prompt, then output), how many of them are in
 * the KV cache, and the blocks holding them. A request with n > 1 runs as n of these.
 */
final class EngineRequest {

    private final String id;
    private final long arrival;
    private final int promptLength;
    private final String cacheSalt;
    private int[] tokens;
    private int numTokens;
    private int numComputed;
    private final List<Integer> blockTable = new ArrayList<>();
    private final List<PrefixCacheKey> blockKeys = new ArrayList<>();

    EngineRequest(String id, long arrival, int[] promptTokenIds, int maxTokens, String cacheSalt) {
        this.id = id;
        this.arrival = arrival;
        this.promptLength = promptTokenIds.length;
        this.cacheSalt = cacheSalt;
        this.tokens = Arrays.copyOf(promptTokenIds, promptTokenIds.length + Math.min(maxTokens, 256));
        this.numTokens = promptTokenIds.length;
    }

    String id() {
        return id;
    }

    long arrival() {
        return arrival;
    }

    int promptLength() {
        return promptLength;
    }

    int numTokens() {
        return numTokens;
    }

    int numOutputTokens() {
        return numTokens - promptLength;
    }

    int numComputedTokens() {
        return numComputed;
    }

    int token(int index) {
        return tokens[index];
    }

    /** The tokens [from, to) as a fresh array. */
    int[] tokens(int from, int to) {
        return Arrays.copyOfRange(tokens, from, to);
    }

    int[] outputTokens() {
        return tokens(promptLength, numTokens);
    }

    int[] promptTokens() {
        return tokens(0, promptLength);
    }

    void appendToken(int token) {
        if (numTokens == tokens.length) tokens = Arrays.copyOf(tokens, tokens.length * 2);
        tokens[numTokens++] = token;
    }

    void advanceComputed(int count) {
        numComputed += count;
    }

    /** After preemption: nothing is cached any more; all tokens so far are recomputed as a prompt. */
    void resetForRecompute() {
        numComputed = 0;
    }

    List<Integer> blockTable() {
        return blockTable;
    }

    List<PrefixCacheKey> blockKeys() {
        return blockKeys;
    }

    PrefixCacheKey blockKey(int block, PrefixCacheKey parent, int blockSize) {
        return PrefixCacheKey.of(parent, tokens, block * blockSize, blockSize, cacheSalt);
    }

    /** The cache slot of token {@code position}. */
    int slot(int position, int blockSize) {
        return blockTable.get(position / blockSize) * blockSize + position % blockSize;
    }

    int[] blockTableArray() {
        return blockTable.stream().mapToInt(Integer::intValue).toArray();
    }

    @Override
    public String toString() {
        return "Request[" + id + ", tokens=" + numTokens + ", computed=" + numComputed + "]";
    }
}
