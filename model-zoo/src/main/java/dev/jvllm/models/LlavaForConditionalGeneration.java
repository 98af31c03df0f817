package dev.jvllm.models;

import dev.jvllm.ImageInput;
import dev.jvllm.models.vision.LlavaStyleModel;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.util.List;

/**
 * LLaVA-1.5 (arXiv:2310.03744; {@code llava-hf/llava-1.5-*-hf}): each image is one tile, the
 * CLIP preprocessing's crop, whose features (576 for a 336-pixel tower of 14-pixel patches, one
 * more with strategy "full") take the place of its placeholders in order.
 */
public final class LlavaForConditionalGeneration implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("LlavaForConditionalGeneration");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new Model(context);
    }

    private static final class Model extends LlavaStyleModel {

        Model(ModelContext context) {
            super(context, List.of("default", "full"));
        }

        @Override
        public int imageTokenCount(ImageInput image) {
            return tileTokens;
        }

        @Override
        protected int maxImageTokens() {
            return tileTokens;
        }

        @Override
        protected List<float[]> tiles(ImageInput image) {
            return List.of(processor.pixels(image));
        }

        @Override
        protected void arrange(ImageInput image, Tensor tileFeatures, Tensor out) {
            backend.scale(tileFeatures.rows(0, tileTokens), 1f, out);
        }
    }

    @Override
    public List<String> modelTypes() {
        return List.of("llava");
    }
}
