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
 * up to {@link #CAPACITY} images in buffers allocated once and reused, least recently used first;
 * a step needing more images at once than that grows it.
 */
public final class ImageFeatureCache {

    /** Images kept beyond the ones a step needs. */
    public static final int CAPACITY = 16;

    private final Backend backend;
    private final int rows;
    private final int cols;
    private final LinkedHashMap<String, Tensor> kept = new LinkedHashMap<>(32, 0.75f, true);

    /** A cache of images of {@code rows × cols} features each. */
    public ImageFeatureCache(Backend backend, int rows, int cols) {
        this.backend = backend;
        this.rows = rows;
        this.cols = cols;
    }

    public boolean holds(String hash) {
        return kept.containsKey(hash);
    }

    /** The features of the image of that hash; it must be held. */
    public Tensor get(String hash) {
        Tensor t = kept.get(hash);
        if (t == null) throw new IllegalStateException("no features kept for image " + hash);
        return t;
    }

    /**
     * The buffer to write a new image's features into, kept under {@code hash}: the least recently
     * used image's whose hash is not in {@code inUse} once {@link #CAPACITY} are kept, else new.
     */
    public Tensor put(String hash, Set<String> inUse) {
        Tensor buffer = null;
        if (kept.size() >= CAPACITY) {
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
