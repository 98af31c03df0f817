package dev.jvllm.models.layers;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Which layers attend through a sliding window, and how wide it is (0 = the whole context), as
 * each family's config class in Transformers 5 decides it.
 */
public final class SlidingWindows {

    private SlidingWindows() {
    }

    /**
     * Every layer, when {@code sliding_window} is set (Mistral, Phi-3; their classes ignore
     * {@code layer_types} and {@code max_window_layers}).
     *
     * @param classDefault the window when the field is absent (Mistral 4096, Phi-3 none)
     */
    public static int[] everyLayer(ModelConfig config, int classDefault) {
        int[] windows = new int[config.numLayers()];
        Arrays.fill(windows, window(config, classDefault));
        return windows;
    }

    /**
     * Qwen2, Qwen3: a window only with {@code use_sliding_window}; then the layers {@code layer_types}
     * marks "sliding_attention", or without it every layer from {@code max_window_layers} on.
     */
    public static int[] qwen(ModelConfig config) {
        int window = config.bool("use_sliding_window", false) ? window(config, 4096) : 0;
        int fullAttentionLayers = config.intOr(28, "max_window_layers");
        return byLayerType(config, window, layer -> layer >= fullAttentionLayers);
    }

    /**
     * As a config states it without a family's own rule (the generic decoder): the layers
     * {@code layer_types} marks "sliding_attention"; without layer_types, every layer when
     * {@code sliding_window} is set, unless {@code use_sliding_window} is false.
     */
    public static int[] statedPerLayer(ModelConfig config) {
        boolean used = config.bool("use_sliding_window", true);
        int window = used ? window(config, 0) : 0;
        return byLayerType(config, window, layer -> true);
    }

    /**
     * Gemma 3: the layers {@code layer_types} marks "sliding_attention", else all but every
     * {@code sliding_window_pattern}-th (6 by default).
     */
    public static int[] allButEveryNth(ModelConfig config) {
        int pattern = config.intOr(6, "sliding_window_pattern");
        return byLayerType(config, window(config, 4096), layer -> (layer + 1) % pattern != 0);
    }

    /** Gemma 2: the layers {@code layer_types} marks "sliding_attention", else the even ones. */
    public static int[] alternating(ModelConfig config) {
        return byLayerType(config, window(config, 4096), layer -> layer % 2 == 0);
    }

    private static int[] byLayerType(ModelConfig config, int window, IntPredicate slidesWithoutLayerTypes) {
        int layers = config.numLayers();
        JsonNode types = config.raw().path("layer_types");
        if (types.isArray() && types.size() != layers) {
            throw new ConfigException(config.source() + ": layer_types lists " + types.size()
                    + " layers but num_hidden_layers is " + layers);
        }
        int[] windows = new int[layers];
        for (int i = 0; i < layers; i++) {
            boolean slides = types.isArray()
                    ? types.get(i).asText().equals("sliding_attention")
                    : slidesWithoutLayerTypes.test(i);
            windows[i] = slides ? window : 0;
        }
        return windows;
    }

    private static int window(ModelConfig config, int classDefault) {
        return (int) ConfigValues.numberOrOff(config, "sliding_window", classDefault);
    }
}
