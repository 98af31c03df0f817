package dev.jvllm.engine;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * An encoder-decoder request's encoder input: its token ids and their SHA-256, by which a model keeps
 * what it computed from them (the cross-attention keys and values) and the prefix cache tells apart
 * requests whose decoder prompts are equal.
 */
public record EncoderInput(int[] tokenIds, String hash) {

    public static EncoderInput of(int[] tokenIds) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            ByteBuffer bytes = ByteBuffer.allocate(tokenIds.length * Integer.BYTES);
            for (int id : tokenIds) bytes.putInt(id);
            sha.update(bytes.array());
            return new EncoderInput(tokenIds.clone(), HexFormat.of().formatHex(sha.digest()));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this runtime", e);
        }
    }

    public int length() {
        return tokenIds.length;
    }
}
