package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * Rows a model computes once for an input and reads in later steps, kept by the input's content
 * hash: images' features (vLLM's encoder cache), an encoder-decoder model's cross-attention keys and
 * values. Each entry is a run of rows at the same place in each of one or more planes (a plane: one
 * buffer of the budget's rows and its own width), so that a kernel may address every entry's rows
 * in one buffer by where they start.
 * <p>
 * The buffers are allocated once ({@link #reserve}, or at the first entry); each entry takes its own
 * rows, placed at the first gap that fits, starting at a multiple of the alignment (1 unless given: a
 * kernel may read the rows in blocks of that many, as the paged KV cache is read), so that with an
 * alignment it holds its rows rounded up to one (and the budget is rounded up likewise). To make room, the least recently used entries that
 * the step does not use are dropped; where the rows then free would hold the entry but no gap does,
 * the kept entries move down to join the gaps. Where a step's entries in use do not fit together, the
 * planes are reallocated at twice the rows (or what fits), the old rows copied to the same places, with a
 * warning. The old buffers go when unreachable (the CUDA backend frees such buffers in stream order
 * at an allocation after the garbage collector finds them), and memory the step needs beyond the
 * reservation was not counted when the KV cache was sized.
 */
public final class KeptRows {

    private static final Logger log = LoggerFactory.getLogger(KeptRows.class);

    /** Rows kept where no budget is given: sixteen LLaVA-1.5 images (576 rows each). */
    public static final int DEFAULT_BUDGET_ROWS = 16 * 576;

    private final Backend backend;
    private final String what;
    private final int[] planeCols;
    private final int alignment;
    private int capacity;
    private Tensor[] planes;
    /** First row → rows, of each entry kept. */
    private final TreeMap<Integer, Integer> runs = new TreeMap<>();
    /** Kept entries' first rows in access order, least recently used first. */
    private final LinkedHashMap<String, Integer> kept = new LinkedHashMap<>(32, 0.75f, true);

    /**
     * @param what      what the rows are, for the warning when a step needs more ("image features")
     * @param budgetRows the rows each plane holds before any growth
     * @param planeCols each plane's width
     */
    public KeptRows(Backend backend, String what, int budgetRows, int... planeCols) {
        this(backend, what, budgetRows, 1, planeCols);
    }

    /**
     * As {@link #KeptRows(Backend, String, int, int...)}, each entry starting at a multiple of
     * {@code alignment} rows (the budget rounded up to one).
     */
    public KeptRows(Backend backend, String what, int budgetRows, int alignment, int[] planeCols) {
        if (budgetRows < 1 || planeCols.length == 0 || alignment < 1) {
            throw new IllegalArgumentException("a budget of " + budgetRows + " rows in " + planeCols.length
                    + " planes, aligned to " + alignment);
        }
        for (int cols : planeCols) if (cols < 1) throw new IllegalArgumentException("a plane of width " + cols);
        this.backend = backend;
        this.what = what;
        this.alignment = alignment;
        this.capacity = alignedRows(budgetRows);
        this.planeCols = planeCols.clone();
    }

    /** {@code rows} rounded up to a multiple of the alignment. */
    private long aligned(long rows) {
        return (rows + alignment - 1) / alignment * alignment;
    }

    /** A plane's rows for at least {@code rows}: rounded up to the alignment, at most the largest aligned int. */
    private int alignedRows(long rows) {
        return (int) Math.min(Integer.MAX_VALUE / alignment * alignment, aligned(rows));
    }

    /** Allocates the planes now, if not yet allocated (so that a device's memory accounts for them). */
    public void reserve() {
        if (planes == null) planes = allocate(capacity);
    }

    private Tensor[] allocate(int rows) {
        Tensor[] buffers = new Tensor[planeCols.length];
        for (int p = 0; p < buffers.length; p++) buffers[p] = backend.allocate(rows, planeCols[p]);
        return buffers;
    }

    /** Rows each plane holds now: the budget, or more after a step that needed more. */
    public int capacity() {
        return capacity;
    }

    public boolean holds(String key) {
        return kept.containsKey(key);
    }

    /** The rows of the entry of that key in plane {@code plane}; it must be held. */
    public Tensor get(String key, int plane) {
        int first = firstRow(key);
        return planes[plane].rows(first, runs.get(first));
    }

    /** The entry's rows in the first plane. */
    public Tensor get(String key) {
        return get(key, 0);
    }

    /** Where the entry of that key starts in every plane; it must be held. */
    public int firstRow(String key) {
        Integer first = kept.get(key);
        if (first == null) throw new IllegalStateException("no " + what + " kept for " + key);
        return first;
    }

    /** Plane {@code plane} whole, valid until the next {@link #put}: what kernels index by {@link #firstRow}. */
    public Tensor plane(int plane) {
        reserve();
        return planes[plane];
    }

    /**
     * Keeps an entry for every key of {@code rowsByKey} (its rows): places those not kept, without
     * dropping any of these keys to make room, then has {@code fill} write the new ones (given their
     * keys, in order; {@link #get} finds their rows). Where {@code fill} fails, the new entries are
     * dropped again and the failure rethrown, so that no unwritten rows are kept as an input's. Rows
     * any {@link #get} or {@link #plane} gave before this call may be stale after it (the planes may grow).
     *
     * @return the keys that were new
     */
    public List<String> keepAll(Map<String, Integer> rowsByKey, Consumer<List<String>> fill) {
        List<String> missing = rowsByKey.keySet().stream().filter(key -> !holds(key)).toList();
        if (missing.isEmpty()) return missing;
        try {
            for (String key : missing) put(key, rowsByKey.get(key), rowsByKey.keySet());
            fill.accept(missing);
        } catch (RuntimeException e) {
            missing.forEach(this::drop);
            throw e;
        }
        return missing;
    }

    /**
     * Places a new entry of {@code rows} rows under {@code key}: the first gap that fits, after
     * dropping least recently used entries whose keys are not in {@code inUse} while none does, else
     * in planes grown to fit. Rows that {@link #get} or {@link #plane} gave before may be stale after it.
     */
    public void put(String key, int rows, Set<String> inUse) {
        if (rows < 1) throw new IllegalArgumentException("an entry of " + rows + " rows");
        if (kept.containsKey(key)) throw new IllegalStateException(what + " of " + key + " are kept already");
        reserve();
        int first = firstFit(rows);
        if (first < 0 && keptRows() + rows <= capacity) first = compactThenFit(rows);
        // Drops the least recently used entries the step does not use, one at a time, until a gap fits
        // or the rows free would hold the entry once the kept ones move together.
        for (Iterator<Map.Entry<String, Integer>> it = kept.entrySet().iterator(); first < 0 && it.hasNext(); ) {
            Map.Entry<String, Integer> eldest = it.next();
            if (inUse.contains(eldest.getKey())) continue;
            runs.remove(eldest.getValue());
            it.remove();
            first = firstFit(rows);
            if (first < 0 && keptRows() + rows <= capacity) first = compactThenFit(rows);
        }
        if (first < 0) {
            grow(rows);
            first = firstFit(rows);
        }
        runs.put(first, rows);
        kept.put(key, first);
    }

    /** Forgets the entry of that key (its rows were not written after all), if kept. */
    public void drop(String key) {
        Integer first = kept.remove(key);
        if (first != null) runs.remove(first);
    }

    /** The rows the kept entries take, each rounded up to the alignment (what they take moved together). */
    private long keptRows() {
        long total = 0;
        for (int count : runs.values()) total += aligned(count);
        return total;
    }

    /**
     * Moves the kept entries down to the lowest rows, in order, so that their gaps join at the end:
     * what lets an entry in where the rows free in all would hold it but no gap does. An entry moves
     * in pieces no longer than its distance down, so that no piece's rows overlap where it lands
     * (copies run in order); the entries keep their places in the least-recently-used order.
     */
    private int compactThenFit(int rows) {
        Map<Integer, Integer> movedTo = new TreeMap<>();
        int next = 0;
        for (Map.Entry<Integer, Integer> run : runs.entrySet()) {
            int first = run.getKey(), count = run.getValue();
            next = (int) aligned(next);  // never past first, which is aligned and at or after the run before
            for (int done = 0; first != next && done < count; ) {
                int piece = Math.min(count - done, first - next);
                for (Tensor plane : planes) backend.scale(plane.rows(first + done, piece), 1f, plane.rows(next + done, piece));
                done += piece;
            }
            movedTo.put(first, next);
            next += count;
        }
        TreeMap<Integer, Integer> moved = new TreeMap<>();
        runs.forEach((first, count) -> moved.put(movedTo.get(first), count));
        runs.clear();
        runs.putAll(moved);
        for (Map.Entry<String, Integer> entry : kept.entrySet()) entry.setValue(movedTo.get(entry.getValue()));
        return firstFit(rows);
    }

    private int firstFit(int rows) {
        long free = 0;
        for (Map.Entry<Integer, Integer> run : runs.entrySet()) {
            if (run.getKey() - free >= rows) return (int) free;
            free = aligned(run.getKey() + run.getValue());
        }
        return capacity - free >= rows ? (int) free : -1;
    }

    private void grow(int rows) {
        long end = runs.isEmpty() ? 0 : aligned(runs.lastKey() + runs.lastEntry().getValue());
        int grown = alignedRows(Math.max(2L * capacity, end + rows));
        log.warn("the {} one step uses need more than the {} rows kept for them: {} rows allocated", what, capacity, grown);
        Tensor[] larger = allocate(grown);
        for (int p = 0; p < planes.length; p++) backend.scale(planes[p], 1f, larger[p].rows(0, capacity));
        planes = larger;
        capacity = grown;
    }
}
