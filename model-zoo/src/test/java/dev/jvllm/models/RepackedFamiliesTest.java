package dev.jvllm.models;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions.Positions;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Baichuan, InternLM, InternLM2 and ChatGLM, whose Hub code Transformers does not ship: Llama
 * goldens rewritten into each family's names and packing (as tools/reference/cases/part_c.py
 * rewrites the references) must give the Llama logits back, and the decisions their configs do not
 * state are made as vLLM makes them.
 */
class RepackedFamiliesTest {

    @TempDir
    Path temp;

    @Test
    void everyFamilyIsFoundByItsArchitectureName() {
        Map<String, Class<? extends ModelArchitecture>> expected = Map.of(
                "BaichuanForCausalLM", BaichuanForCausalLM.class,
                "BaiChuanForCausalLM", BaichuanForCausalLM.class,
                "InternLMForCausalLM", InternLMForCausalLM.class,
                "InternLM2ForCausalLM", InternLM2ForCausalLM.class,
                "ChatGLMModel", ChatGLMForConditionalGeneration.class,
                "ChatGLMForConditionalGeneration", ChatGLMForConditionalGeneration.class);
        expected.forEach((name, type) -> assertInstanceOf(type,
                ModelRegistry.find(ModelConfig.parse("{\"architectures\": [\"" + name + "\"]}")), name));
    }

    @Test
    void baichuanWithLlamaWeightsPackedInWPackIsLlama() {
        Golden baichuan = RepackedGolden.of("llama-plain").packQkv("self_attn", "W_pack", 0, 0)
                .write(temp.resolve("baichuan"), "BaiChuanForCausalLM", config -> config.put("model_type", "baichuan"));
        GoldenChecks.logitsMatchAtEveryPosition(baichuan);
    }

    @Test
    void baichuan2NormHeadScalesEachLmHeadRowToUnitLength() {
        int vocab = 512, hidden = 64;
        float[] head = RepackedGolden.of("llama-plain").values("lm_head.weight");
        float[] toUnit = new float[vocab];
        float[] toAnyLength = new float[vocab];
        Random random = new Random(6);
        for (int r = 0; r < vocab; r++) {
            double sumSquares = 0;
            for (int c = 0; c < hidden; c++) sumSquares += head[r * hidden + c] * head[r * hidden + c];
            toUnit[r] = (float) (1 / Math.sqrt(sumSquares));
            toAnyLength[r] = toUnit[r] * (0.25f + 2 * random.nextFloat());
        }
        Golden unitRows = RepackedGolden.of("llama-plain").scaleRows("lm_head.weight", toUnit)
                .write(temp.resolve("unit-rows"), "LlamaForCausalLM", config -> { });
        Golden normHead = RepackedGolden.of("llama-plain").packQkv("self_attn", "W_pack", 0, 0)
                .scaleRows("lm_head.weight", toAnyLength)
                .write(temp.resolve("norm-head"), "BaiChuanForCausalLM", config -> config.put("norm_head", true));
        float[][][] expected = GoldenChecks.prefillLogits(unitRows.directory(), unitRows.prompts());
        float[][][] actual = GoldenChecks.prefillLogits(normHead.directory(), normHead.prompts());
        for (int i = 0; i < expected.length; i++) {
            for (int p = 0; p < expected[i].length; p++) {
                for (int v = 0; v < vocab; v++) {
                    assertEquals(expected[i][p][v], actual[i][p][v], 1e-4f, "prompt " + i + " position " + p + " token " + v);
                }
            }
        }
    }

    @Test
    void alibiBaichuanAgreesWithLlamaOnlyWhereThereIsNoPositionToEncode() {
        // BaichuanForCausalLM below hidden size 4096 is a 13B-style ALiBi model. At a prompt's first
        // position attention sees one key, so neither rotary nor ALiBi changes anything there.
        Golden alibi = RepackedGolden.of("llama-plain").packQkv("self_attn", "W_pack", 0, 0)
                .write(temp.resolve("alibi"), "BaichuanForCausalLM", config -> { });
        double[][] errors = GoldenChecks.relativeLogitErrors(alibi);
        for (double[] prompt : errors) {
            assertTrue(prompt[0] < 1e-4, "first position, error " + prompt[0]);
            for (int p = 1; p < prompt.length; p++) {
                assertTrue(prompt[p] > 1e-4, "position " + p + " should differ from rotary Llama, error " + prompt[p]);
            }
        }
    }

    @Test
    void baichuanIsRotaryAt7BAndAlibiAt13BAsVllmDecides() {
        assertEquals(Positions.ROTARY, BaichuanForCausalLM.positions(baichuan("BaiChuanForCausalLM", 4096, 64000)));
        assertEquals(Positions.ROTARY, BaichuanForCausalLM.positions(baichuan("BaichuanForCausalLM", 4096, 125696)));
        assertEquals(Positions.ALIBI, BaichuanForCausalLM.positions(baichuan("BaichuanForCausalLM", 5120, 64000)));
        assertEquals(Positions.ALIBI, BaichuanForCausalLM.positions(baichuan("BaichuanForCausalLM", 5120, 125696)));
    }

    @Test
    void baichuan2IsRecognizedByItsVocabularyUnlessNormHeadSays() {
        assertTrue(BaichuanForCausalLM.normalizesLmHead(baichuan("BaichuanForCausalLM", 4096, 125696)));
        assertFalse(BaichuanForCausalLM.normalizesLmHead(baichuan("BaiChuanForCausalLM", 4096, 64000)));
        assertFalse(BaichuanForCausalLM.normalizesLmHead(ModelConfig.parse(
                "{\"vocab_size\": 125696, \"norm_head\": false}")));
        assertTrue(BaichuanForCausalLM.normalizesLmHead(ModelConfig.parse("{\"vocab_size\": 512, \"norm_head\": true}")));
    }

    @Test
    void internLMTakesItsAttentionBiasesFromBias() {
        Golden internLM = RepackedGolden.of("llama-bias").write(temp.resolve("internlm"), "InternLMForCausalLM", config -> {
            config.remove("attention_bias");
            config.put("bias", true);
        });
        GoldenChecks.logitsMatchAtEveryPosition(internLM);
    }

    @Test
    void internLM2WithLlamaWeightsGroupedPerKeyValueHeadIsLlama() {
        // llama-gqa: 8 query heads of 8 features over 2 key/value heads.
        Golden internLM2 = RepackedGolden.of("llama-gqa").packQkv("self_attn", "wqkv", 2, 8)
                .rename("self_attn.wqkv.", "attention.wqkv.").rename("self_attn.o_proj.", "attention.wo.")
                .rename("mlp.gate_proj.", "feed_forward.w1.").rename("mlp.up_proj.", "feed_forward.w3.")
                .rename("mlp.down_proj.", "feed_forward.w2.").rename("input_layernorm.", "attention_norm.")
                .rename("post_attention_layernorm.", "ffn_norm.").rename("model.embed_tokens.", "model.tok_embeddings.")
                .rename("lm_head.", "output.")
                .write(temp.resolve("internlm2"), "InternLM2ForCausalLM", config -> {
                    config.remove("attention_bias");
                    config.put("bias", false);
                });
        GoldenChecks.logitsMatchAtEveryPosition(internLM2);
    }

    @Test
    void chatGLMConfigReadsAsLlamaFields() {
        // The fields that matter from THUDM/chatglm3-6b-32k's config.json.
        ModelConfig chatGLM = ChatGLMForConditionalGeneration.llamaFields(ModelConfig.parse("""
                {"architectures": ["ChatGLMModel"], "num_layers": 28, "padded_vocab_size": 65024, "hidden_size": 4096,
                 "ffn_hidden_size": 13696, "kv_channels": 128, "num_attention_heads": 32, "seq_length": 32768,
                 "layernorm_epsilon": 1e-05, "rmsnorm": true, "multi_query_attention": true, "multi_query_group_num": 2,
                 "add_qkv_bias": true, "add_bias_linear": false, "original_rope": true, "rope_ratio": 50}"""));
        assertEquals(28, chatGLM.numLayers());
        assertEquals(65024, chatGLM.vocabSize());
        assertEquals(13696, chatGLM.intermediateSize());
        assertEquals(128, chatGLM.headDim());
        assertEquals(2, chatGLM.numKvHeads());
        assertEquals(32768, chatGLM.maxPositionEmbeddings());
        assertEquals(500000.0, chatGLM.rope().theta());
        assertEquals(64, chatGLM.rope().rotaryDim(chatGLM.headDim()));
        ModelConfig everyHeadItsOwn = ChatGLMForConditionalGeneration.llamaFields(ModelConfig.parse(
                "{\"num_attention_heads\": 32, \"multi_query_attention\": false, \"multi_query_group_num\": 2}"));
        assertEquals(32, everyHeadItsOwn.numKvHeads());
    }

    @Test
    void firstGenerationChatGLMIsRefused() {
        var e = assertThrows(ConfigException.class, () -> ChatGLMForConditionalGeneration.llamaFields(
                ModelConfig.parse("{\"architectures\": [\"ChatGLMModel\"], \"position_encoding_2d\": true}")));
        assertTrue(e.getMessage().contains("position_encoding_2d"), e.getMessage());
    }

    private static ModelConfig baichuan(String architecture, int hidden, int vocab) {
        return ModelConfig.parse("{\"architectures\": [\"" + architecture + "\"], \"hidden_size\": " + hidden
                + ", \"vocab_size\": " + vocab + "}");
    }
}
