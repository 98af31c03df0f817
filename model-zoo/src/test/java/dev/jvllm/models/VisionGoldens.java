package dev.jvllm.models;

import dev.jvllm.ImageInput;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.engine.PromptImage;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checks shared by the vision-language golden tests whose prompts wrap each image's placeholders in start and end tokens. */
final class VisionGoldens {

    private VisionGoldens() {
    }

    /**
     * The golden's logits at every position of each prompt, within 1e-4, from the checkpoint in
     * {@code directory} on {@code device}, one prefill a prompt; {@code loaded} checks the model first.
     */
    static void assertLogits(LlavaGoldenTest.Case golden, Path directory, String device, int imageToken, Consumer<CausalLM> loaded) {
        String name = directory.getFileName().toString();
        ModelConfig config = ModelConfig.load(directory);
        try (Checkpoint checkpoint = Checkpoint.open(directory);
             Backend backend = Backends.create(device, BackendOptions.defaults());
             CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 256, directory));
             KvCache cache = backend.allocateKvCache(model.kvCacheSpec(16, 16))) {
            loaded.accept(model);
            for (int i = 0; i < golden.prompts().size(); i++) {
                int[] tokens = golden.prompts().get(i);
                int n = tokens.length;
                int[] all = IntStream.range(0, n).toArray();
                List<PromptImage> spans = new ArrayList<>();
                List<ImageInput> images = golden.imagesOf(i);
                for (int k = 0, image = 0; k < n; k++) {
                    if (tokens[k] == imageToken && (k == 0 || tokens[k - 1] != imageToken)) {
                        int end = k;
                        while (end < n && tokens[end] == imageToken) end++;
                        spans.add(new PromptImage(k, end - k, images.get(image++)));
                    }
                }
                ForwardBatch batch = new ForwardBatch(tokens, all, all, new int[]{0, n}, new int[]{n},
                        new int[][]{IntStream.range(0, 16).toArray()}, 16, all, null, spans.isEmpty() ? null : List.of(spans));
                float[] logits = backend.toFloatArray(model.forward(batch, cache));
                int vocab = model.vocabSize();
                float[][] expected = golden.logits().get(i);
                for (int p = 0; p < n; p++) {
                    double err = 0, norm = 0;
                    for (int v = 0; v < vocab; v++) {
                        err += Math.pow(logits[p * vocab + v] - expected[p][v], 2);
                        norm += (double) expected[p][v] * expected[p][v];
                    }
                    double relative = Math.sqrt(err / norm);
                    assertTrue(relative < 1e-4, name + " prompt " + i + " position " + p + ": relative logit error " + relative);
                }
            }
        }
    }

    /** A golden image decoded from its PNG, which must give the pixels of the raw copy beside it. */
    static ImageInput decoded(Path png) {
        RuntimeAssumptions.requirePngDecoding();
        ImageInput decoded = ImageInput.read(png);
        org.junit.jupiter.api.Assertions.assertEquals(LlavaGoldenTest.raw(png), decoded, png + " decodes to its raw RGB copy");
        return decoded;
    }

    /** Greedy tokens of each prompt equal the golden's, and each output's prompt is the golden's expanded prompt. */
    static void assertGenerates(LlavaGoldenTest.Case golden, Path directory, String device, List<Prompt> prompts) {
        try (LLM llm = LLM.builder().model(directory.toString()).device(device).maxModelLen(256).build()) {
            List<RequestOutput> outputs = llm.generatePrompts(prompts, SamplingParams.builder().temperature(0).ignoreEos(true)
                    .maxTokens(16).build());
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(golden.greedy().get(i), outputs.get(i).outputs().getFirst().tokenIdArray(), "prompt " + i);
                assertArrayEquals(golden.prompts().get(i), outputs.get(i).promptTokenIds().stream().mapToInt(Integer::intValue)
                        .toArray(), "the prompt as Transformers' processor expands it");
            }
        }
    }

    /** Each prompt with its images' start and end tokens left out: the engine must add them. */
    static List<Prompt> bare(LlavaGoldenTest.Case golden, int start, int end) {
        List<Prompt> bare = new ArrayList<>();
        for (int i = 0; i < golden.prompts().size(); i++) {
            int[] ids = IntStream.of(golden.collapsed(i)).filter(t -> t != start && t != end).toArray();
            bare.add(Prompt.tokens(ids, golden.imagesOf(i)));
        }
        return bare;
    }
}
