package dev.jvllm.models;

import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.LoraRequest;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.SafetensorsTestWriter;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA adapters: a golden Llama with a PEFT adapter on every projection of its layers, against the
 * same model with the adapter merged into its weights ({@code W + scale · B · A}, written as float32).
 * A request with the adapter must answer as the merged model, a request without it as the base
 * model, in the same batch.
 */
class LoraTest {

    /** The backend the tests run on ({@link LoraCudaTest}: "cuda"). */
    String device() {
        return "cpu";
    }

    private static final Path GOLDEN = Golden.root().resolve("llama-plain");
    private static final int RANK = 4;
    private static final double ALPHA = 8;
    /** 40 tokens: two full cache blocks of 16, which the prefix cache may share. */
    private static final int[] PROMPT = {1, 15, 27, 3, 90, 41, 7, 300, 12, 250, 64, 9, 77, 130, 2, 48, 199, 5, 33, 410, 88, 17,
            260, 71, 4, 150, 99, 23, 310, 6, 57, 120, 45, 201, 11, 370, 29, 140, 66, 8};
    private static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).maxTokens(8).logprobs(2).build();

    @TempDir
    static Path work;
    static Path adapterOne, adapterTwo, mergedOne, mergedTwo;

    @BeforeAll
    static void writeAdaptersAndTheirMergedModels() throws IOException {
        adapterOne = work.resolve("adapter-one");
        adapterTwo = work.resolve("adapter-two");
        mergedOne = work.resolve("merged-one");
        mergedTwo = work.resolve("merged-two");
        writeAdapter(adapterOne, mergedOne, 11, false);
        writeAdapter(adapterTwo, mergedTwo, 12, true);
    }

    @Test
    void aRequestWithAnAdapterAnswersAsTheMergedModel() {
        RequestOutput withAdapter;
        try (LLM llm = LLM.builder().model(GOLDEN.toString()).device(device()).enableLora(true).build()) {
            withAdapter = llm.generatePrompts(List.of(Prompt.tokens(PROMPT)), GREEDY,
                    List.of(new LoraRequest("one", 1, adapterOne))).getFirst();
        }
        assertSameAnswers(answer(mergedOne), withAdapter);
        assertNotEquals(answer(GOLDEN).outputs().getFirst().tokenIds(), withAdapter.outputs().getFirst().tokenIds(),
                "the adapter changes the answer (else the test could not see it missing)");
    }

    @Test
    void requestsWithDifferentAdaptersOrNoneShareABatchAndKeepTheirOwnAnswers() {
        List<RequestOutput> outputs;
        try (LLM llm = LLM.builder().model(GOLDEN.toString()).device(device()).enableLora(true).build()) {
            // The same prompt each time: a prefix cached for one adapter must not serve another.
            outputs = llm.generatePrompts(List.of(Prompt.tokens(PROMPT), Prompt.tokens(PROMPT), Prompt.tokens(PROMPT),
                            Prompt.tokens(PROMPT)), GREEDY,
                    Arrays.asList(new LoraRequest("one", 1, adapterOne), null, new LoraRequest("two", 2, adapterTwo),
                            new LoraRequest("one", 1, adapterOne)));
        }
        assertSameAnswers(answer(mergedOne), outputs.get(0));
        assertSameAnswers(answer(GOLDEN), outputs.get(1));
        assertSameAnswers(answer(mergedTwo), outputs.get(2));
        assertSameAnswers(answer(mergedOne), outputs.get(3));
    }

    @Test
    void aPromptCachedWithAnAdapterDoesNotServeARequestWithoutIt() {
        try (LLM llm = LLM.builder().model(GOLDEN.toString()).device(device()).enableLora(true).build()) {
            RequestOutput first = llm.generatePrompts(List.of(Prompt.tokens(PROMPT)), GREEDY,
                    List.of(new LoraRequest("one", 1, adapterOne))).getFirst();
            RequestOutput plain = llm.generate(PROMPT, GREEDY);
            RequestOutput again = llm.generatePrompts(List.of(Prompt.tokens(PROMPT)), GREEDY,
                    List.of(new LoraRequest("one", 1, adapterOne))).getFirst();
            assertSameAnswers(answer(mergedOne), first);
            assertSameAnswers(answer(GOLDEN), plain);
            assertSameAnswers(answer(mergedOne), again);
            assertTrue(llm.metrics().prefixCacheHits() > 0, "the adapter's second request reused its cached prefix");
        }
    }

    @Test
    void anAdapterOnMixtureOfExpertsExpertsIsRefusedNamingTheWeight() throws IOException {
        Path experts = work.resolve("experts");
        Files.createDirectories(experts);
        Files.writeString(experts.resolve("adapter_config.json"), "{\"r\": 4, \"lora_alpha\": 8, \"bias\": \"none\"}");
        new SafetensorsTestWriter()
                .add("base_model.model.model.layers.0.block_sparse_moe.experts.0.w1.lora_A.weight", DType.F32, new long[]{4, 64}, new byte[4 * 64 * 4])
                .add("base_model.model.model.layers.0.block_sparse_moe.experts.0.w1.lora_B.weight", DType.F32, new long[]{64, 4}, new byte[64 * 4 * 4])
                .write(experts.resolve("adapter_model.safetensors"));
        try (LLM llm = LLM.builder().model(Golden.root().resolve("mixtral-top2").toString()).device(device()).enableLora(true).build()) {
            var e = assertThrows(InvalidRequestException.class,
                    () -> llm.generatePrompts(List.of(Prompt.tokens(PROMPT)), GREEDY, List.of(new LoraRequest("experts", 1, experts))));
            assertTrue(e.getMessage().contains("experts.0.w1.weight") && e.getMessage().contains("expert"), e.getMessage());
        }
    }

    @Test
    void adaptersAreRefusedClearly() throws IOException {
        try (LLM plain = LLM.builder().model(GOLDEN.toString()).device(device()).build()) {
            var e = assertThrows(InvalidRequestException.class,
                    () -> plain.generatePrompts(List.of(Prompt.tokens(PROMPT)), GREEDY, List.of(new LoraRequest("one", 1, adapterOne))));
            assertTrue(e.getMessage().contains("enableLora"), e.getMessage());
        }
        try (LLM llm = LLM.builder().model(GOLDEN.toString()).device(device()).enableLora(true).maxLoraRank(2).build()) {
            var rank = assertThrows(InvalidRequestException.class,
                    () -> llm.generatePrompts(List.of(Prompt.tokens(PROMPT)), GREEDY, List.of(new LoraRequest("one", 1, adapterOne))));
            assertTrue(rank.getMessage().contains("rank 4") && rank.getMessage().contains("maxLoraRank 2"), rank.getMessage());
        }
        Path stray = work.resolve("stray");
        Files.createDirectories(stray);
        Files.writeString(stray.resolve("adapter_config.json"), "{\"r\": 4, \"lora_alpha\": 8, \"bias\": \"none\"}");
        new SafetensorsTestWriter()
                .add("base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight", DType.F32, new long[]{4, 64}, new byte[4 * 64 * 4])
                .add("base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight", DType.F32, new long[]{192, 4}, new byte[192 * 4 * 4])
                .write(stray.resolve("adapter_model.safetensors"));
        try (LLM llm = LLM.builder().model(GOLDEN.toString()).device(device()).enableLora(true).build()) {
            var module = assertThrows(InvalidRequestException.class,
                    () -> llm.generatePrompts(List.of(Prompt.tokens(PROMPT)), GREEDY, List.of(new LoraRequest("stray", 3, stray))));
            assertTrue(module.getMessage().contains("model.layers.0.self_attn.qkv_proj.weight"), module.getMessage());
            llm.generatePrompts(List.of(Prompt.tokens(PROMPT)), GREEDY, List.of(new LoraRequest("one", 1, adapterOne)));
            var id = assertThrows(InvalidRequestException.class,
                    () -> llm.generatePrompts(List.of(Prompt.tokens(PROMPT)), GREEDY, List.of(new LoraRequest("two", 1, adapterTwo))));
            assertTrue(id.getMessage().contains("LoRA id 1"), id.getMessage());
        }
    }

    private RequestOutput answer(Path model) {
        try (LLM llm = LLM.builder().model(model.toString()).device(device()).build()) {
            return llm.generate(PROMPT, GREEDY);
        }
    }

    private static void assertSameAnswers(RequestOutput expected, RequestOutput actual) {
        assertEquals(expected.outputs().getFirst().tokenIds(), actual.outputs().getFirst().tokenIds());
        for (int step = 0; step < expected.outputs().getFirst().tokenIds().size(); step++) {
            int token = expected.outputs().getFirst().tokenIds().get(step);
            assertEquals(expected.outputs().getFirst().logprobs().get(step).get(token).logprob(),
                    actual.outputs().getFirst().logprobs().get(step).get(token).logprob(), 1e-4, "step " + step);
        }
    }

    /**
     * Writes a PEFT adapter of random A and B on every projection of the golden's layers into
     * {@code adapter}, and the golden with it merged into {@code merged}.
     */
    private static void writeAdapter(Path adapter, Path merged, long seed, boolean rsLora) throws IOException {
        Files.createDirectories(adapter);
        Files.createDirectories(merged);
        Random random = new Random(seed);
        double scale = rsLora ? ALPHA / Math.sqrt(RANK) : ALPHA / RANK;
        SafetensorsTestWriter adapterWriter = new SafetensorsTestWriter();
        SafetensorsTestWriter mergedWriter = new SafetensorsTestWriter();
        try (Checkpoint golden = Checkpoint.open(GOLDEN)) {
            for (String name : golden.names().stream().sorted().toList()) {
                WeightTensor t = golden.get(name);
                float[] w = WeightValues.floats(t);
                if (name.startsWith("model.layers.") && name.endsWith("_proj.weight")) {
                    int out = (int) t.dim(0), in = (int) t.dim(1);
                    float[] a = new float[RANK * in], b = new float[out * RANK];
                    for (int i = 0; i < a.length; i++) a[i] = (float) (random.nextGaussian() * 0.2);
                    for (int i = 0; i < b.length; i++) b[i] = (float) (random.nextGaussian() * 0.2);
                    for (int o = 0; o < out; o++) {
                        for (int k = 0; k < in; k++) {
                            double sum = 0;
                            for (int r = 0; r < RANK; r++) sum += (double) b[o * RANK + r] * a[r * in + k];
                            w[o * in + k] += (float) (scale * sum);
                        }
                    }
                    String module = "base_model.model." + name.substring(0, name.length() - ".weight".length());
                    adapterWriter.add(module + ".lora_A.weight", DType.F32, new long[]{RANK, in}, QuantizedTwins.f32(a));
                    adapterWriter.add(module + ".lora_B.weight", DType.F32, new long[]{out, RANK}, QuantizedTwins.f32(b));
                }
                mergedWriter.add(name, DType.F32, t.shape(), QuantizedTwins.f32(w));
            }
        }
        adapterWriter.write(adapter.resolve("adapter_model.safetensors"));
        mergedWriter.write(merged.resolve("model.safetensors"));
        Files.writeString(adapter.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": " + RANK + ", \"lora_alpha\": " + ALPHA
                + ", \"use_rslora\": " + rsLora + ", \"bias\": \"none\", \"fan_in_fan_out\": false, \"target_modules\": "
                + "[\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", \"up_proj\", \"down_proj\"]}");
        Files.copy(GOLDEN.resolve("config.json"), merged.resolve("config.json"));
    }
}
