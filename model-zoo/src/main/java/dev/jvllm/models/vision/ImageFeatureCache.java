package dev.jvllm.models.vision;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Images' features by content hash, kept between the steps of a prompt whose placeholders are
 * prefilled in chunks and for later prompts showing the same image (vLLM's encoder cache). Holds
 * up to {@code capacity} images in buffers of the most rows an image may take, allocated once and
 * reused, least recently used first; a step needing more images at once than that grows it.
 */
public final class ImageFeatureCache {

    /** Feature rows a model keeps for later steps: sixteen LLaVA-1.5 images (576 rows each). */
    public static final int ROW_BUDGET = 16 * 576;

    private final Backend backend;
    private final int rows;
    private final int cols;
    private final int capacity;
    private final LinkedHashMap<String, Tensor> kept = new LinkedHashMap<>(32, 0.75f, true);

    /** A cache of up to {@code capacity} images of at most {@code rows × cols} features each. */
    public ImageFeatureCache(Backend backend, int rows, int cols, int capacity) {
        this.backend = backend;
        this.rows = rows;
        this.cols = cols;
        this.capacity = capacity;
    }

    public boolean holds(String hash) {
        return kept.containsKey(hash);
    }

    /** The features of the image of that hash ({@code rows} rows, of which the image's come first); it must be held. */
    public Tensor get(String hash) {
        Tensor t = kept.get(hash);
        if (t == null) throw new IllegalStateException("no features kept for image " + hash);
        return t;
    }

    /**
     * The buffer to write a new image's features into, kept under {@code hash}: the least recently
     * used image's whose hash is not in {@code inUse} once {@code capacity} are kept, else new.
     */
    public Tensor put(String hash, Set<String> inUse) {
        Tensor buffer = null;
        if (kept.size() >= capacity) {
            for (Iterator<Map.Entry<String, Tensor>> it = kept.entrySet().iterator(); it.hasNext(); ) {
                Map.Entry<String, Tensor> eldest = it.next();
                if (!inUse.contains(eldest.getKey())) {
                    buffer = eldest.getValue();
                    it.remove();
                    break;
                }
            }
        }
        if (buffer == null) buffer = backend.allocate(rows, cols);
        kept.put(hash, buffer);
        return buffer;
    }
}
