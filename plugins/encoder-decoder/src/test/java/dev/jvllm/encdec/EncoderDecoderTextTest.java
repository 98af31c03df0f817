package dev.jvllm.encdec;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Text prompts to an encoder-decoder model, through its tokenizer: the tiny BART golden with a
 * word-level tokenizer of its 512 ids ("t3" is id 3) whose post-processor puts {@code <s>} (0) and
 * {@code </s>} (2) around an input, as BART's does. The encoder's text gets them, the decoder's does not.
 */
class EncoderDecoderTextTest {

    private static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(8).build();

    /** The golden's files and a tokenizer.json of words t3 ... t511 and the special tokens 0, 1, 2. */
    private static Path withTokenizer(Path dir) throws IOException {
        Path golden = EncoderDecoderGoldenTest.Case.load("bart").directory();
        for (String file : new String[]{"config.json", "generation_config.json", "model.safetensors"}) {
            Files.copy(golden.resolve(file), dir.resolve(file));
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode tokenizer = json.createObjectNode().put("version", "1.0");
        tokenizer.putNull("truncation");
        tokenizer.putNull("padding");
        ArrayNode added = tokenizer.putArray("added_tokens");
        String[] specials = {"<s>", "<pad>", "</s>"};
        for (int id = 0; id < specials.length; id++) {
            added.addObject().put("id", id).put("content", specials[id]).put("single_word", false).put("lstrip", false)
                    .put("rstrip", false).put("normalized", false).put("special", true);
        }
        tokenizer.putNull("normalizer");
        tokenizer.putObject("pre_tokenizer").put("type", "WhitespaceSplit");
        ObjectNode post = tokenizer.putObject("post_processor").put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        single.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        ArrayNode pair = post.putArray("pair");
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode special = post.putObject("special_tokens");
        for (int id : new int[]{0, 2}) {
            ObjectNode token = special.putObject(specials[id]).put("id", specials[id]);
            token.putArray("ids").add(id);
            token.putArray("tokens").add(specials[id]);
        }
        tokenizer.putObject("decoder").put("type", "WordPiece").put("prefix", "##").put("cleanup", false);
        ObjectNode model = tokenizer.putObject("model").put("type", "WordLevel").put("unk_token", "<pad>");
        ObjectNode vocab = model.putObject("vocab");
        for (int id = 0; id < specials.length; id++) vocab.put(specials[id], id);
        for (int id = 3; id < 512; id++) vocab.put("t" + id, id);
        json.writeValue(dir.resolve("tokenizer.json").toFile(), tokenizer);
        return dir;
    }

    @Test
    void theEncodersTextGetsTheSpecialTokensAndTheDecodersDoesNot(@TempDir Path dir) throws IOException {
        try (LLM llm = LLM.builder().model(withTokenizer(dir).toString()).device("cpu").build()) {
            RequestOutput text = llm.generate("t5 t6 t7 t8", GREEDY);
            RequestOutput ids = llm.generatePrompts(List.of(Prompt.tokens(0, 5, 6, 7, 8, 2)), GREEDY).getFirst();
            assertArrayEquals(ids.outputs().getFirst().tokenIdArray(), text.outputs().getFirst().tokenIdArray(),
                    "the encoder's text is <s> t5 t6 t7 t8 </s>");
            assertEquals("t5 t6 t7 t8", text.prompt());

            RequestOutput both = llm.generatePrompts(List.of(Prompt.encoderDecoder(Prompt.text("t5 t6 t7 t8"),
                    Prompt.text("t9 t10"))), GREEDY).getFirst();
            RequestOutput bothIds = llm.generatePrompts(List.of(Prompt.encoderDecoder(Prompt.tokens(0, 5, 6, 7, 8, 2), 9, 10)),
                    GREEDY).getFirst();
            assertEquals(List.of(2, 9, 10), both.promptTokenIds(), "the decoder's text: its words after the start token, nothing added");
            assertArrayEquals(bothIds.outputs().getFirst().tokenIdArray(), both.outputs().getFirst().tokenIdArray());
            assertEquals(8, both.text().trim().split(" +").length, "eight words decoded: \"" + both.text() + "\"");
        }
    }
}
