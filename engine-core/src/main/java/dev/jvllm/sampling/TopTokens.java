package dev.jvllm.sampling;

/**
 * The {@code capacity} best (value, token id) pairs offered, where higher values are better and
 * equal values prefer the lower id. A bounded min-heap over primitive arrays: one pass over a
 * vocabulary costs O(V log capacity) and mostly a single comparison per token.
 */
final class TopTokens {

    private final float[] values;
    private final int[] ids;
    private int size;

    TopTokens(int capacity) {
        values = new float[capacity];
        ids = new int[capacity];
    }

    /** Offers a candidate; NaN values are ignored. */
    void offer(float value, int tokenId) {
        if (Float.isNaN(value) || values.length == 0) {
            return;
        }
        if (size < values.length) {
            values[size] = value;
            ids[size] = tokenId;
            siftUp(size++);
        } else if (isBetter(value, tokenId, values[0], ids[0])) {
            values[0] = value;
            ids[0] = tokenId;
            siftDown(0);
        }
    }

    int size() {
        return size;
    }

    /** The worst of the kept values: with a full heap, the capacity-th largest value offered. */
    float worstValue() {
        if (size == 0) {
            throw new IllegalStateException("no tokens offered");
        }
        return values[0];
    }

    /** The kept token ids, best first. Empties the heap. */
    int[] drainBestFirst() {
        int[] best = new int[size];
        for (int i = size - 1; i >= 0; i--) {
            best[i] = ids[0];
            size--;
            values[0] = values[size];
            ids[0] = ids[size];
            siftDown(0);
        }
        return best;
    }

    private static boolean isBetter(float value, int id, float otherValue, int otherId) {
        return value > otherValue || (value == otherValue && id < otherId);
    }

    private void siftUp(int i) {
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (!isBetter(values[parent], ids[parent], values[i], ids[i])) {
                return;
            }
            swap(i, parent);
            i = parent;
        }
    }

    private void siftDown(int i) {
        while (true) {
            int worst = i;
            int left = 2 * i + 1;
            int right = left + 1;
            if (left < size && isBetter(values[worst], ids[worst], values[left], ids[left])) {
                worst = left;
            }
            if (right < size && isBetter(values[worst], ids[worst], values[right], ids[right])) {
                worst = right;
            }
            if (worst == i) {
                return;
            }
            swap(i, worst);
            i = worst;
        }
    }

    private void swap(int a, int b) {
        float v = values[a];
        values[a] = values[b];
        values[b] = v;
        int id = ids[a];
        ids[a] = ids[b];
        ids[b] = id;
    }
}
