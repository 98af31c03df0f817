package dev.jvllm.engine;

import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.ToIntFunction;

/**
 * Where a prompt's images go: each image's placeholder token, written once, becomes as many
 * placeholders as the image has feature rows (what Transformers' LLaVA processor does to the text);
 * a run already of that length is taken as it is.
 */
final class ImagePlaceholders {

    /** A prompt with its placeholders expanded, and each image's span in it. */
    record Expanded(int[] tokenIds, List<PromptImage> images) {
    }

    private ImagePlaceholders() {
    }

    /**
     * @param placeholder the model's image token id
     * @param tokenCount  how many positions an image takes
     * @throws InvalidRequestException when the prompt's placeholder runs do not match the images
     */
    static Expanded expand(int[] ids, List<ImageInput> images, int placeholder, ToIntFunction<ImageInput> tokenCount) {
        List<int[]> runs = new ArrayList<>(); // {start, length}
        for (int i = 0; i < ids.length; ) {
            if (ids[i] != placeholder) {
                i++;
                continue;
            }
            int start = i;
            while (i < ids.length && ids[i] == placeholder) i++;
            runs.add(new int[]{start, i - start});
        }
        int[] counts = images.stream().mapToInt(tokenCount).toArray();
        boolean matches = runs.size() == images.size();
        for (int r = 0; matches && r < runs.size(); r++) {
            matches = runs.get(r)[1] == 1 || runs.get(r)[1] == counts[r];
        }
        if (!matches) {
            throw new InvalidRequestException("images", "the prompt holds " + runs.size() + " image placeholder"
                    + (runs.size() == 1 ? "" : "s") + " (token id " + placeholder + ", run lengths "
                    + runs.stream().map(run -> Integer.toString(run[1])).toList() + ") for " + images.size()
                    + " image" + (images.size() == 1 ? "" : "s") + "; write the placeholder once per image, in order"
                    + (images.isEmpty() ? "" : " (an image takes " + Arrays.toString(counts) + " positions)"));
        }
        int length = ids.length;
        for (int r = 0; r < runs.size(); r++) length += counts[r] - runs.get(r)[1];
        int[] expanded = new int[length];
        List<PromptImage> spans = new ArrayList<>(images.size());
        int from = 0, to = 0;
        for (int r = 0; r < runs.size(); r++) {
            int start = runs.get(r)[0];
            System.arraycopy(ids, from, expanded, to, start - from);
            to += start - from;
            Arrays.fill(expanded, to, to + counts[r], placeholder);
            spans.add(new PromptImage(to, counts[r], images.get(r)));
            to += counts[r];
            from = start + runs.get(r)[1];
        }
        System.arraycopy(ids, from, expanded, to, ids.length - from);
        return new Expanded(expanded, spans);
    }
}
