package dev.jvllm.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.ImageInput;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The tiny LLaVA of {@code vision-goldens/llava-default} as a chat model: its files, copied from
 * the classpath (this module's test resources, or its test jar for the server's tests), beside a
 * WordLevel {@code tokenizer.json} written here for its 512 ids and a {@code chat_template.json}.
 *
 * <p>The tokenizer: {@code <s>} (1), {@code </s>} (2) and {@code <image>} (500, the image token) are
 * added special tokens and a line break an added token ({@link #NEWLINE}); {@link #WORDS} are ids 3,
 * 4, ...; every other id i is the word {@code w<i>}; text is split on whitespace and punctuation. So {@code "<s><image>w480 w216"} encodes to
 * {@code [1, 500, 480, 216]}.
 */
public final class LlavaChatModel {

    public static final int IMAGE_TOKEN = 500;
    /** Words with ids of their own from 3 on, for prompts that read as text. */
    public static final List<String> WORDS = List.of("USER", "ASSISTANT", "SYSTEM", ":", "What", "is", "shown", "?", "Describe",
            "both", "images", ".", "Be", "brief", "And", "now", ",", "user", "system", "assistant");
    /** The id of "\n", an added token after the words. */
    public static final int NEWLINE = 3 + WORDS.size();
    /** The shape of llava-hf's templates, as the brief of a LLaVA chat gives it: images of a message, then its text. */
    public static final String LLAVA_TEMPLATE = "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
            + "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
            + "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}{{ c['text'] + ' ' }}{% endfor %}"
            + "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";
    /** A template that reads content as a string. */
    public static final String STRING_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";
    /** Parts in their order, after the BOS: how the golden prompts with images were written. */
    public static final String INTERLEAVED_TEMPLATE = "{{ bos_token }}{% for m in messages %}{% for p in m['content'] %}"
            + "{% if p['type'] == 'image' %}{{ '<image>' }}{% else %}{{ p['text'] }}{% endif %}{% endfor %}{% endfor %}";

    private static final String GOLDEN = "/vision-goldens/llava-default/";
    private static final List<String> FILES = List.of("config.json", "generation_config.json", "preprocessor_config.json",
            "model.safetensors");
    private static final ObjectMapper JSON = new ObjectMapper();

    private LlavaChatModel() {
    }

    /** Writes the model with {@code chatTemplate} into {@code directory} (made if missing); returns it. */
    public static Path write(Path directory, String chatTemplate) throws IOException {
        return write(directory, GOLDEN, FILES, Map.of(IMAGE_TOKEN, "<image>"), chatTemplate);
    }

    /**
     * Another vision golden ({@code /vision-goldens/NAME/}, its {@code files}) as a chat model, its
     * {@code special} ids (beside {@code <s>} and {@code </s>}) added tokens of their texts.
     */
    public static Path write(Path directory, String golden, List<String> files, Map<Integer, String> special,
                             String chatTemplate) throws IOException {
        Files.createDirectories(directory);
        for (String file : files) Files.write(directory.resolve(file), resource(golden, file));
        JSON.writeValue(directory.resolve("tokenizer.json").toFile(), tokenizer(special));
        JSON.writeValue(directory.resolve("tokenizer_config.json").toFile(), Map.of("bos_token", "<s>", "eos_token", "</s>",
                "add_bos_token", false, "add_eos_token", false));
        JSON.writeValue(directory.resolve("chat_template.json").toFile(), Map.of("chat_template", chatTemplate));
        return directory;
    }

    /** The golden's image i (0 or 1) as PNG bytes. */
    public static byte[] png(int i) {
        return png(GOLDEN, i);
    }

    /** Image i of the vision golden under {@code golden} (a class-path folder, as {@link #write} takes) as PNG bytes. */
    public static byte[] png(String golden, int i) {
        try {
            return resource(golden, "images/image" + i + ".png");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The golden's image i (0 or 1). */
    public static ImageInput image(int i) {
        return ImageInput.decode(png(i));
    }

    private static byte[] resource(String golden, String file) throws IOException {
        try (InputStream in = LlavaChatModel.class.getResourceAsStream(golden + file)) {
            if (in == null) throw new IOException("no resource " + golden + file + " on the classpath");
            return in.readAllBytes();
        }
    }

    /** The text of token id {@code id} in the tokenizer this writes (not a special one). */
    public static String word(int id) {
        return id >= 3 && id < NEWLINE ? WORDS.get(id - 3) : id == NEWLINE ? "\n" : "w" + id;
    }

    private static ObjectNode tokenizer(Map<Integer, String> special) {
        ObjectNode root = JSON.createObjectNode().put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        addedToken(added, 1, "<s>");
        addedToken(added, 2, "</s>");
        special.forEach((id, text) -> addedToken(added, id, text));
        // a line break is a token of its own, as in LLaVA's Llama vocabulary, so that "<image>\n<image>" is two placeholders
        addedToken(added, NEWLINE, "\n").put("special", false);
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "Whitespace");
        root.putNull("post_processor");
        root.putNull("decoder");
        ObjectNode model = root.putObject("model").put("type", "WordLevel").put("unk_token", "<unk>");
        ObjectNode vocab = model.putObject("vocab");
        vocab.put("<unk>", 0).put("<s>", 1).put("</s>", 2);
        for (int id = 3; id < 512; id++) {
            vocab.put(special.getOrDefault(id, word(id)), id);
        }
        return root;
    }

    private static ObjectNode addedToken(ArrayNode added, int id, String content) {
        return added.addObject().put("id", id).put("content", content).put("single_word", false).put("lstrip", false)
                .put("rstrip", false).put("normalized", false).put("special", true);
    }
}
