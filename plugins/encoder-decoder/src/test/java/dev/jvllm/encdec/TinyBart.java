package dev.jvllm.encdec;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The tiny BART golden (tools/reference/make_encoder_decoder_goldens.py) with a tokenizer: a
 * word-level tokenizer.json of its 512 ids ("t3" is id 3) whose post-processor puts {@code <s>} (0)
 * and {@code </s>} (2) around an input, as BART's does. For text-prompt tests here and in the server.
 */
public final class TinyBart {

    private TinyBart() {
    }

    /** Writes into {@code dir} the golden's files and a tokenizer.json of words t3 ... t511 and the special tokens 0, 1, 2. */
    public static Path withTokenizer(Path dir) throws IOException {
        for (String file : new String[]{"config.json", "generation_config.json", "model.safetensors"}) {
            try (InputStream in = TinyBart.class.getResourceAsStream("/encoder-decoder-goldens/bart/" + file)) {
                if (in == null) throw new IOException("no resource encoder-decoder-goldens/bart/" + file);
                Files.copy(in, dir.resolve(file));
            }
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

}
