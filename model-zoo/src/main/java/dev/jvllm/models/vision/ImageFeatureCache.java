package dev.jvllm.models.vision;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Images' features by content hash, kept between the steps of a prompt whose placeholders are
 * prefilled in chunks and for later prompts showing the same image (vLLM's encoder cache).
 * <p>
 * The features live in one buffer of a budget of rows, allocated once ({@link #reserve}, or at the
 * first image); each image takes a run of exactly its own rows, placed at the first gap that fits.
 * To make room, the least recently used images that the step does not use are dropped. Backend
 * memory is never freed, so sizing each image by its own rows rather than the largest image's is
 * what keeps many small images (Qwen2-VL's can be four rows, its largest sixteen thousand) from
 * growing the cache a buffer of the largest size at a time. A step whose images do not fit the
 * budget together gets a further buffer for the rest, with a warning.
 */
public final class ImageFeatureCache {

    private static final Logger log = LoggerFactory.getLogger(ImageFeatureCache.class);

    /** Feature rows kept where no budget is given: sixteen LLaVA-1.5 images (576 rows each). */
    public static final int DEFAULT_BUDGET_ROWS = 16 * 576;

    private final Backend backend;
    private final int cols;
    private final int budgetRows;
    private final List<Arena> arenas = new ArrayList<>();
    /** Kept images in access order, least recently used first. */
    private final LinkedHashMap<String, Placed> kept = new LinkedHashMap<>(32, 0.75f, true);

    /** A buffer and the runs of its rows that images hold, by first row. */
    private record Arena(Tensor buffer, TreeMap<Integer, Integer> runs) {
    }

    private record Placed(Arena arena, int start, int rows) {
        Tensor tensor() {
            return arena.buffer().rows(start, rows);
        }
    }

    /** A cache of {@code budgetRows} feature rows of {@code cols} each (its buffer is allocated at first use). */
    public ImageFeatureCache(Backend backend, int budgetRows, int cols) {
        if (budgetRows < 1 || cols < 1) throw new IllegalArgumentException("budget " + budgetRows + " rows of " + cols);
        this.backend = backend;
        this.budgetRows = budgetRows;
        this.cols = cols;
    }

    /** Allocates the budget's buffer now, if not yet allocated (so that a device's memory accounts for it). */
    public void reserve() {
        if (arenas.isEmpty()) arenas.add(new Arena(backend.allocate(budgetRows, cols), new TreeMap<>()));
    }

    public int budgetRows() {
        return budgetRows;
    }

    /** Rows of all buffers allocated so far: the budget's, and any a step needed beyond it. */
    public long allocatedRows() {
        long rows = 0;
        for (Arena arena : arenas) rows += arena.buffer().rows();
        return rows;
    }

    public boolean holds(String hash) {
        return kept.containsKey(hash);
    }

    /** The features of the image of that hash, its rows exactly; it must be held. */
    public Tensor get(String hash) {
        Placed placed = kept.get(hash);
        if (placed == null) throw new IllegalStateException("no features kept for image " + hash);
        return placed.tensor();
    }

    /**
     * Rows to write a new image's {@code rows} features into, kept under {@code hash}: the first gap
     * that fits, after dropping least recently used images whose hashes are not in {@code inUse}
     * while none does, else a further buffer.
     */
    public Tensor put(String hash, int rows, Set<String> inUse) {
        if (rows < 1) throw new IllegalArgumentException("an image of " + rows + " feature rows");
        if (kept.containsKey(hash)) throw new IllegalStateException("features of image " + hash + " are kept already");
        reserve();
        Placed placed = firstFit(rows);
        for (Iterator<Map.Entry<String, Placed>> it = kept.entrySet().iterator(); placed == null && it.hasNext(); ) {
            Map.Entry<String, Placed> eldest = it.next();
            if (inUse.contains(eldest.getKey())) continue;
            Placed dropped = eldest.getValue();
            dropped.arena().runs().remove(dropped.start());
            it.remove();
            placed = firstFit(rows);
        }
        if (placed == null) {
            int extra = Math.max(rows, budgetRows / 4);
            log.warn("the images of one step need more than the {} feature rows kept for images: {} more allocated", budgetRows,
                    extra);
            Arena arena = new Arena(backend.allocate(extra, cols), new TreeMap<>());
            arenas.add(arena);
            placed = new Placed(arena, 0, rows);
        }
        placed.arena().runs().put(placed.start(), rows);
        kept.put(hash, placed);
        return placed.tensor();
    }

    /** Forgets the image of that hash (its features were not written after all), if kept. */
    public void drop(String hash) {
        Placed placed = kept.remove(hash);
        if (placed != null) placed.arena().runs().remove(placed.start());
    }

    private Placed firstFit(int rows) {
        for (Arena arena : arenas) {
            int free = 0;
            for (Map.Entry<Integer, Integer> run : arena.runs().entrySet()) {
                if (run.getKey() - free >= rows) return new Placed(arena, free, rows);
                free = run.getKey() + run.getValue();
            }
            if (arena.buffer().rows() - free >= rows) return new Placed(arena, free, rows);
        }
        return null;
    }
}
