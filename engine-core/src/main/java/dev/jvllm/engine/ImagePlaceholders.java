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
 * placeholders already of that length are taken as they are. A model that marks where an image
 * starts and ends (InternVL's {@code <img>} and {@code </img>}) has them put around the
 * placeholders where the prompt does not already have them there.
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
        return expand(ids, images, placeholder, -1, -1, tokenCount);
    }

    /**
     * @param start the token before each image's placeholders, or -1 for none
     * @param end   the token after them, or -1 for none
     */
    /**
     * The placeholders' groups, {start, length in the prompt}, in order: each image takes one
     * placeholder (expanded here) or, with {@code expandedRuns}, where as many follow, its whole
     * length (already expanded).
     */
    private static List<int[]> groups(int[] ids, int placeholder, int[] counts, boolean expandedRuns) {
        List<int[]> groups = new ArrayList<>();
        for (int i = 0; i < ids.length; ) {
            if (ids[i] != placeholder) {
                i++;
                continue;
            }
            int run = 0;
            while (i + run < ids.length && ids[i + run] == placeholder) run++;
            int k = groups.size();
            int length = expandedRuns && k < counts.length && counts[k] > 1 && run >= counts[k] ? counts[k] : 1;
            groups.add(new int[]{i, length});
            i += length;
        }
        return groups;
    }

    static Expanded expand(int[] ids, List<ImageInput> images, int placeholder, int start, int end,
                           ToIntFunction<ImageInput> tokenCount) {
        int[] counts = images.stream().mapToInt(tokenCount).toArray();
        List<int[]> groups = groups(ids, placeholder, counts, true);
        if (groups.size() != images.size()) {
            // Runs read as expanded images did not match: each placeholder one image ("<image><image>"
            // for two images that each take two positions).
            List<int[]> singles = groups(ids, placeholder, counts, false);
            if (singles.size() == images.size()) groups = singles;
        }
        if (groups.size() != images.size()) {
            throw new InvalidRequestException("images", "the prompt holds " + groups.size() + " image placeholder"
                    + (groups.size() == 1 ? "" : "s") + " (token id " + placeholder + ") for " + images.size()
                    + " image" + (images.size() == 1 ? "" : "s") + "; write the placeholder once per image, in order"
                    + (images.isEmpty() ? "" : " (an image takes " + Arrays.toString(counts) + " positions)"));
        }
        boolean[] opens = new boolean[groups.size()], closes = new boolean[groups.size()];
        int length = ids.length;
        for (int g = 0; g < groups.size(); g++) {
            int at = groups.get(g)[0], after = at + groups.get(g)[1];
            opens[g] = start >= 0 && (at == 0 || ids[at - 1] != start);
            closes[g] = end >= 0 && (after == ids.length || ids[after] != end);
            length += counts[g] - groups.get(g)[1] + (opens[g] ? 1 : 0) + (closes[g] ? 1 : 0);
        }
        int[] expanded = new int[length];
        List<PromptImage> spans = new ArrayList<>(images.size());
        int from = 0, to = 0;
        for (int g = 0; g < groups.size(); g++) {
            int at = groups.get(g)[0];
            System.arraycopy(ids, from, expanded, to, at - from);
            to += at - from;
            if (opens[g]) expanded[to++] = start;
            Arrays.fill(expanded, to, to + counts[g], placeholder);
            spans.add(new PromptImage(to, counts[g], images.get(g)));
            to += counts[g];
            if (closes[g]) expanded[to++] = end;
            from = at + groups.get(g)[1];
        }
        System.arraycopy(ids, from, expanded, to, ids.length - from);
        return new Expanded(expanded, spans);
    }
}
