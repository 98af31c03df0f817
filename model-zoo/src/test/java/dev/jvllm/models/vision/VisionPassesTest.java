package dev.jvllm.models.vision;

import dev.jvllm.ImageInput;
import dev.jvllm.spi.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** How a step's images are grouped into vision tower passes within a budget. */
class VisionPassesTest {

    private static List<List<Integer>> passes(int budget, int... costs) {
        List<ImageInput> images = new ArrayList<>();
        for (int i = 0; i < costs.length; i++) images.add(ImageInput.rgb(i + 1, 1, new byte[3 * (i + 1)]));
        List<Tensor> outs = new ArrayList<>(java.util.Collections.nCopies(costs.length, (Tensor) null));
        List<List<Integer>> passes = new ArrayList<>();
        VisionLanguageDecoder.inPasses(images, outs, image -> costs[image.width() - 1], budget,
                (group, groupOuts) -> {
                    assertEquals(group.size(), groupOuts.size());
                    passes.add(group.stream().map(image -> image.width() - 1).toList());
                });
        return passes;
    }

    @Test
    void imagesShareAPassWhileTheirCostsFitTheBudget() {
        assertEquals(List.of(List.of(0, 1), List.of(2)), passes(64, 24, 20, 48));
        assertEquals(List.of(List.of(0, 1, 2)), passes(100, 24, 20, 48));
    }

    @Test
    void anImageOverTheBudgetHasAPassOfItsOwn() {
        assertEquals(List.of(List.of(0), List.of(1), List.of(2)), passes(10, 24, 5, 48));
        assertEquals(Arrays.asList(List.of(0, 1), List.of(2, 3)), passes(8, 4, 4, 4, 4));
    }
}
