package dev.jvllm.engine;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * Identity of a full KV block for prefix caching: SHA-256 over the parent block's key, the block's
 * token ids and extra keys (a LoRA adapter, a tenant salt, media hashes), so equal keys mean equal
 * contents of the whole prefix up to and including this block. Extra keys are made of
 * {@linkplain #appendPart length-prefixed parts}, so no two different sets of them read alike.
 */
public final class PrefixCacheKey {

    private final byte[] digest;
    private final int hash;

    private PrefixCacheKey(byte[] digest) {
        this.digest = digest;
        this.hash = Arrays.hashCode(digest);
    }

    /** Key of a block holding {@code tokens[from, from + count)} after the block keyed {@code parent} (null for the first). */
    public static PrefixCacheKey of(PrefixCacheKey parent, int[] tokens, int from, int count, String extraKeys) {
        MessageDigest sha = sha256();
        if (parent != null) sha.update(parent.digest);
        ByteBuffer buf = ByteBuffer.allocate(4 * count + 4);
        buf.putInt(count);
        for (int i = 0; i < count; i++) buf.putInt(tokens[from + i]);
        sha.update(buf.array());
        if (extraKeys != null) {
            // The UTF-16 units themselves: an encoding to UTF-8 would turn every unpaired surrogate into one '?'.
            ByteBuffer chars = ByteBuffer.allocate(2 * extraKeys.length());
            for (int i = 0; i < extraKeys.length(); i++) chars.putChar(extraKeys.charAt(i));
            sha.update(chars.array());
        }
        return new PrefixCacheKey(sha.digest());
    }

    /**
     * Appends one part of a block's extra keys as {@code name:length:value;}, the length in UTF-16
     * units: parts so written are read back one way only, whatever their values hold (a salt may
     * hold {@code ":"}, {@code "|image:..."} or a whole other part), so different parts never make equal keys.
     * Names are fixed words without {@code ':'}.
     */
    static StringBuilder appendPart(StringBuilder keys, String name, String value) {
        return keys.append(name).append(':').append(value.length()).append(':').append(value).append(';');
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every Java platform", e);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PrefixCacheKey k && Arrays.equals(digest, k.digest);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public String toString() {
        return HexFormat.of().formatHex(digest, 0, 8);
    }
}
