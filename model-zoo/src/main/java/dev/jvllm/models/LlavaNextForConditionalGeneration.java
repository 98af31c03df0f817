package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.vision.AnyResolutionTiling;
import dev.jvllm.models.vision.LlavaStyleModel;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * LLaVA-NeXT / LLaVA-1.6 ({@code llava-hf/llava-v1.6-mistral-7b-hf}, {@code -vicuna-*}): an image
 * is seen at a resolution chosen from {@code image_grid_pinpoints}, as a tile of the whole image
 * and a grid of tiles ({@link AnyResolutionTiling}); its placeholders take the whole tile's
 * features, then the grid's feature map without its padding, each row ended by the learned
 * {@code image_newline}. So an image takes as many placeholders as its size gives.
 */
public final class LlavaNextForConditionalGeneration implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("LlavaNextForConditionalGeneration");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new Model(context);
    }

    private static final class Model extends LlavaStyleModel {

        private final AnyResolutionTiling tiling;
        private final Tensor newline;

        Model(ModelContext context) {
            super(context, List.of("default"));
            ModelConfig config = context.config();
            int tile = tower.imageSize();
            int patches = tower.tokensPerImage() - 1;
            int side = (int) Math.round(Math.sqrt(patches));
            if (processor.shortestEdge() != 0 && processor.shortestEdge() != tile) {
                throw new ConfigException(config.source() + ": the image processor resizes to " + processor.shortestEdge()
                        + " pixels, the vision tower reads " + tile);
            }
            this.tiling = new AnyResolutionTiling(pinpoints(config, tile), tile, side);
            // Float32 values, put into the activations by a row gather, which converts.
            this.newline = backend.constant(root.has("image_newline") ? root.floats("image_newline", hidden)
                    : root.floats("model.image_newline", hidden), 1, hidden);
        }

        private static List<int[]> pinpoints(ModelConfig config, int tile) {
            JsonNode list = config.raw().path("image_grid_pinpoints");
            List<int[]> pinpoints = new ArrayList<>();
            for (JsonNode p : list) {
                if (!p.isArray() || p.size() != 2 || !p.get(0).isInt() || !p.get(1).isInt()
                        || p.get(0).asInt() < tile || p.get(1).asInt() < tile
                        || p.get(0).asInt() % tile != 0 || p.get(1).asInt() % tile != 0) {
                    throw new ConfigException(config.source() + ": image_grid_pinpoints entry " + p
                            + " is not a [height, width] pair of multiples of the tower's " + tile + " pixels");
                }
                pinpoints.add(new int[]{p.get(0).asInt(), p.get(1).asInt()});
            }
            if (pinpoints.isEmpty()) {
                throw new ConfigException(config.source() + ": image_grid_pinpoints is missing or empty");
            }
            return pinpoints;
        }

        @Override
        public int imageTokenCount(ImageInput image) {
            return tiling.featureCount(image.height(), image.width());
        }

        @Override
        protected int maxImageTokens() {
            return tiling.maxFeatureCount();
        }

        @Override
        protected int towerCost(ImageInput image) {
            return tiling.tileCount(image.height(), image.width());
        }

        @Override
        protected ImageInput largestImage() {
            int[] most = tiling.pinpointOfMostTiles();
            return blankImage(most[1], most[0]);
        }

        @Override
        protected int maxTiles() {
            return tiling.maxTileCount();
        }

        @Override
        protected List<float[]> tiles(ImageInput image) {
            return tiling.tiles(image, processor).stream().map(processor::pixels).toList();
        }

        @Override
        protected void arrange(ImageInput image, Tensor tileFeatures, Tensor out) {
            AnyResolutionTiling.Layout layout = tiling.layout(image.height(), image.width());
            int newlineRow = (1 + layout.rows() * layout.cols()) * tileTokens;
            backend.gatherRows(newline, backend.indices(new int[]{0}), tileFeatures.rows(newlineRow, 1));
            int[] rows = tiling.featureRows(layout, newlineRow);
            backend.gatherRows(tileFeatures.rows(0, newlineRow + 1), backend.indices(rows), out);
        }
    }

    @Override
    public List<String> modelTypes() {
        return List.of("llava_next");
    }
}
