package dev.jvllm.engine;

import java.util.AbstractList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.RandomAccess;

/**
 * An unmodifiable list of token ids read from a range of an {@code int[]} that is never written
 * again: a sequence's tokens only grow past its end (a full array is replaced by a larger copy,
 * the old one left as it was), and a prompt's array is the engine's own copy. So an output can hold
 * the tokens so far without boxing or copying them at every step; {@link dev.jvllm.RequestOutput}
 * and {@link dev.jvllm.CompletionOutput} keep one as it is instead of copying it.
 */
public final class TokenIdList extends AbstractList<Integer> implements RandomAccess {

    private final int[] ids;
    private final int from;
    private final int size;

    /** {@code ids[from, to)}, which nothing may write afterwards. */
    TokenIdList(int[] ids, int from, int to) {
        Objects.checkFromToIndex(from, to, ids.length);
        this.ids = ids;
        this.from = from;
        this.size = to - from;
    }

    @Override
    public Integer get(int index) {
        return getInt(index);
    }

    /** The id at {@code index}, unboxed. */
    public int getInt(int index) {
        Objects.checkIndex(index, size);
        return ids[from + index];
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public List<Integer> subList(int fromIndex, int toIndex) {
        Objects.checkFromToIndex(fromIndex, toIndex, size);
        return new TokenIdList(ids, from + fromIndex, from + toIndex);
    }

    /** A copy of the ids as an array. */
    public int[] toIntArray() {
        return Arrays.copyOfRange(ids, from, from + size);
    }
}
