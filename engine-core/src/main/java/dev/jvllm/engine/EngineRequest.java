package dev.jvllm.engine;

import dev.jvllm.FinishReason;
import dev.jvllm.Logprob;
import dev.jvllm.sampling.SequenceSamplingState;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * One sequence the engine generates: its tokens (prompt, then output), how many are in the KV
 * cache and the blocks holding them, and its output so far. A request with n > 1 runs as n of
 * these, which share the prompt's cached blocks.
 */
final class EngineRequest {

    /** The id a pending token has until it is known; never looked up (the device supplies the real one). */
    static final int PENDING_TOKEN = -1;

    private final RequestGroup group;
    private final int index;
    private final int promptLength;
    /** The salt as the first part of each block's extra keys ({@link PrefixCacheKey#appendPart}); empty for none. */
    private final String saltPart;
    private int[] tokens;
    private int numTokens;
    private int numComputed;
    /** Whether the last token is a place held for a token still being sampled on the device. */
    private boolean pendingLast;
    private final BlockTable blockTable = new BlockTable();
    private final List<PrefixCacheKey> blockKeys = new ArrayList<>();

    /** The slot of the LoRA adapter it runs with ({@link dev.jvllm.lora.LoraBackend#slotFor}), or -1 for none. */
    final int adapterSlot;
    final SequenceSamplingState sampling;
    final TextAccumulator text;
    /** What this sequence's delta outputs carried so far ({@link RequestGroup#toDeltaOutput}): tokens, characters, its end. */
    int deltaTokens;
    int deltaChars;
    boolean deltaFinished;
    final List<Map<Integer, Logprob>> logprobs;
    FinishReason finishReason;
    Object stopReason;
    /** Whether the scheduler holds it among its running requests (written by the scheduler only). */
    boolean running;

    EngineRequest(RequestGroup group, int index, SequenceSamplingState sampling, TextAccumulator text,
                  String cacheSalt) {
        this(group, index, sampling, text, cacheSalt, -1);
    }

    /**
     * @param cacheSalt   extra keys of its prefix-cache blocks (null for none; {@link #cacheSalt} makes
     *                    one of a request's salts): blocks are shared only between requests of one salt
     * @param adapterSlot the LoRA adapter's slot, or -1
     */
    EngineRequest(RequestGroup group, int index, SequenceSamplingState sampling, TextAccumulator text,
                  String cacheSalt, int adapterSlot) {
        this.group = group;
        this.adapterSlot = adapterSlot;
        this.index = index;
        int[] prompt = group.promptTokenIds();
        this.promptLength = prompt.length;
        this.saltPart = cacheSalt == null ? "" : PrefixCacheKey.appendPart(new StringBuilder(), "salt", cacheSalt).toString();
        this.tokens = Arrays.copyOf(prompt, prompt.length + 16);
        this.numTokens = prompt.length;
        this.sampling = sampling;
        this.text = text;
        this.logprobs = sampling.params().logprobs().isPresent() ? new ArrayList<>() : null;
    }

    RequestGroup group() {
        return group;
    }

    int index() {
        return index;
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

    /** The output tokens so far, without copying them (later tokens go past this list's end). */
    TokenIdList outputTokenIds() {
        return new TokenIdList(tokens, promptLength, numTokens);
    }

    boolean finished() {
        return finishReason != null;
    }

    /** Appends a sampled token, or puts it in the place {@link #appendPending} held for it. */
    void appendToken(int token) {
        if (pendingLast) {
            tokens[numTokens - 1] = token;
            pendingLast = false;
            return;
        }
        if (numTokens == tokens.length) tokens = Arrays.copyOf(tokens, tokens.length * 2);
        tokens[numTokens++] = token;
    }

    /**
     * Holds the place of a token the device is still sampling, so that the next step can be
     * scheduled (its id taken on the device) before {@link #appendToken} writes it.
     */
    void appendPending() {
        appendToken(PENDING_TOKEN);
        pendingLast = true;
    }

    boolean hasPendingToken() {
        return pendingLast;
    }

    /** Gives up a held place (the request ends before its token is read). */
    void dropPendingToken() {
        if (pendingLast) {
            numTokens--;
            pendingLast = false;
        }
    }

    void advanceComputed(int count) {
        numComputed += count;
    }

    /** After preemption: nothing is cached any more; all tokens so far are recomputed as a prompt. */
    void resetForRecompute() {
        numComputed = 0;
    }

    BlockTable blockTable() {
        return blockTable;
    }

    List<PrefixCacheKey> blockKeys() {
        return blockKeys;
    }

    /**
     * A request's cache salt from its parts, each written so that no two different sets of parts
     * make one salt ({@link PrefixCacheKey#appendPart}): the user's salt ({@link dev.jvllm.Prompt#cacheSalt}),
     * the LoRA adapter's id (its blocks are its own) and, for a request that must bypass the cache
     * (prompt logprobs), its request id. Null where all are null: such requests share the one pool.
     */
    static String cacheSalt(String userSalt, Integer loraId, String bypassRequestId) {
        StringBuilder salt = new StringBuilder();
        if (userSalt != null) PrefixCacheKey.appendPart(salt, "user", userSalt);
        if (loraId != null) PrefixCacheKey.appendPart(salt, "lora", loraId.toString());
        if (bypassRequestId != null) PrefixCacheKey.appendPart(salt, "request", bypassRequestId);
        return salt.isEmpty() ? null : salt.toString();
    }

    /**
     * The key of block {@code block}: its tokens after {@code parent}'s, with the salt, the encoder
     * input's hash (an encoder-decoder model's decoder prompts are alike) and the content
     * hash of each image whose placeholders it holds (placeholder ids are equal for every image, so
     * the hash is what tells two images apart; later blocks inherit it through the parent). Each is
     * a length-prefixed part, so a salt can never pass for another salt with an encoder or images.
     */
    PrefixCacheKey blockKey(int block, PrefixCacheKey parent, int blockSize) {
        int from = block * blockSize;
        String extra = saltPart;
        if (group.encoder() != null || !group.images().isEmpty()) {
            StringBuilder keys = new StringBuilder(saltPart);
            if (group.encoder() != null) PrefixCacheKey.appendPart(keys, "encoder", group.encoder().hash());
            for (PromptImage image : group.images()) {
                if (image.overlaps(from, from + blockSize)) PrefixCacheKey.appendPart(keys, "image", image.image().contentHash());
            }
            extra = keys.toString();
        }
        return PrefixCacheKey.of(parent, tokens, from, blockSize, extra.isEmpty() ? null : extra);
    }

    /** All of the prompt's images, in order; empty for none. */
    List<PromptImage> promptImages() {
        return group.images();
    }

    /** The prompt's images whose placeholders lie among positions {@code [from, to)}; empty for none. */
    List<PromptImage> imagesAmong(int from, int to) {
        List<PromptImage> all = group.images();
        if (all.isEmpty()) return List.of();
        List<PromptImage> among = new ArrayList<>(1);
        for (PromptImage image : all) {
            if (image.overlaps(from, to)) among.add(image);
        }
        return among;
    }

    /** The cache slot of token {@code position}. */
    int slot(int position, int blockSize) {
        return blockTable.get(position / blockSize) * blockSize + position % blockSize;
    }

    @Override
    public String toString() {
        return "Request[" + group.requestId() + "#" + index + ", tokens=" + numTokens + ", computed=" + numComputed + "]";
    }
}
