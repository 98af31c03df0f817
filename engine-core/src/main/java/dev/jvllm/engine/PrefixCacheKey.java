package dev.jvllm.engine;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * Identity of a full KV block for prefix caching: SHA-256 over the parent block's key, the block's
 * token ids and extra keys (a LoRA adapter, a tenant salt, media hashes), so equal keys mean equal
 * contents of the whole prefix up to and including this block.
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
        if (extraKeys != null) sha.update(extraKeys.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return new PrefixCacheKey(sha.digest());
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
