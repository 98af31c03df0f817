package dev.jvllm.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Hugging Face "fast" tokenizer loaded from a model directory: {@code tokenizer.json} (required)
 * runs through the Rust {@code tokenizers} library (via DJL), and {@code tokenizer_config.json}
 * (optional) supplies the BOS/EOS tokens, {@code add_bos_token}/{@code add_eos_token} and the chat
 * template.
 *
 * <p>Behaviour follows {@code transformers.AutoTokenizer}:
 *
 * <ul>
 *   <li>No truncation and no padding: a prompt of any length encodes to all of its tokens.
 *   <li>{@code encode(text, true)} adds what the {@code tokenizer.json} post-processor adds, and
 *       also a BOS (EOS) when {@code tokenizer_config.json} says {@code add_bos_token}
 *       ({@code add_eos_token}) and the post-processor did not add it, as the transformers
 *       Llama-family tokenizers do.
 *   <li>{@code decode} returns the decoder's text without {@code clean_up_tokenization_spaces}
 *       (which is lossy: it would turn {@code "a ,b"} into {@code "a,b"}), so decoding and
 *       streaming ({@link IncrementalDetokenizer}) agree.
 * </ul>
 *
 * <p>Loading never touches the network. DJL's start-up telemetry (which probes the EC2 metadata
 * address) is switched off and the CPU build of the native library, shipped inside the DJL jar, is
 * used: see {@link #load(Path)}.
 *
 * <p>Instances are thread-safe for encoding and decoding; {@link #close()} releases the native
 * tokenizer and must not race with other calls.
 */
public final class HfTokenizer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(HfTokenizer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * For tokenizer.json, whose vocabulary is 100k+ distinct object keys: Jackson's default keeps
     * every key in its symbol table and interns it, which took most of the vocabulary's read time.
     */
    private static final ObjectMapper VOCABULARY_JSON = new ObjectMapper(JsonFactory.builder()
            .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
            .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
            .build());

    /** DJL's tokenizer, built on its own thread; encode and decode wait for it. */
    private final FutureTask<HuggingFaceTokenizer> nativeBuild;
    private final Path directory;
    private final Map<String, Integer> idsByToken;
    private final String[] tokensById;
    private final Set<Integer> specialTokenIds;
    /** Whether token entries are byte-level BPE's, for {@link #tokenBytes}. */
    private final boolean byteLevel;
    private final Integer bosTokenId;
    private final Integer eosTokenId;
    private final boolean addBosToken;
    private final boolean addEosToken;
    private final ChatTemplate chatTemplate;
    private final ChatTemplateException chatTemplateError;
    /** The special tokens a chat template sees as variables (bos_token, eos_token, unk_token, pad_token). */
    private final Map<String, Object> templateTokens;

    private HfTokenizer(
            FutureTask<HuggingFaceTokenizer> nativeBuild,
            Path directory,
            Vocabulary vocabulary,
            SpecialTokensConfig config,
            ChatTemplate chatTemplate,
            ChatTemplateException chatTemplateError) {
        this.nativeBuild = nativeBuild;
        this.directory = directory;
        this.idsByToken = vocabulary.idsByToken();
        this.byteLevel = isByteLevel(idsByToken);
        this.tokensById = vocabulary.tokensById();
        this.specialTokenIds = vocabulary.specialIds();
        this.bosTokenId = config.bosToken() == null ? null : idsByToken.get(config.bosToken());
        this.eosTokenId = config.eosToken() == null ? null : idsByToken.get(config.eosToken());
        this.addBosToken = config.addBosToken();
        this.addEosToken = config.addEosToken();
        this.chatTemplate = chatTemplate;
        this.chatTemplateError = chatTemplateError;
        this.templateTokens = templateTokens(config);
    }

    /** {@code other} with another chat template (and no template error). */
    private HfTokenizer(HfTokenizer other, ChatTemplate chatTemplate) {
        this.nativeBuild = other.nativeBuild;
        this.directory = other.directory;
        this.idsByToken = other.idsByToken;
        this.byteLevel = other.byteLevel;
        this.tokensById = other.tokensById;
        this.specialTokenIds = other.specialTokenIds;
        this.bosTokenId = other.bosTokenId;
        this.eosTokenId = other.eosTokenId;
        this.addBosToken = other.addBosToken;
        this.addEosToken = other.addEosToken;
        this.chatTemplate = chatTemplate;
        this.chatTemplateError = null;
        this.templateTokens = other.templateTokens;
    }

    /**
     * This tokenizer with {@code source} as its chat template instead of the checkpoint's (vLLM's
     * {@code --chat-template}), its special tokens bound as the checkpoint's template has them.
     *
     * @throws ChatTemplateException where the template does not parse
     */
    public HfTokenizer withChatTemplate(String source) {
        return new HfTokenizer(this, ChatTemplate.compile(Objects.requireNonNull(source, "source"), templateTokens));
    }

    private static Map<String, Object> templateTokens(SpecialTokensConfig config) {
        Map<String, Object> tokens = new LinkedHashMap<>();
        putIfNotNull(tokens, "bos_token", config.bosToken());
        putIfNotNull(tokens, "eos_token", config.eosToken());
        putIfNotNull(tokens, "unk_token", config.unkToken());
        putIfNotNull(tokens, "pad_token", config.padToken());
        return tokens;
    }

    /**
     * Loads the tokenizer of a model directory.
     *
     * <p>Before the first load this sets two DJL system properties unless the application set them:
     * {@code OPT_OUT_TRACKING=true} (DJL otherwise sends a telemetry request and probes
     * {@code 169.254.169.254} on tokenizer creation) and {@code RUST_FLAVOR=cpu} (on a CUDA machine
     * DJL otherwise tries to download a CUDA build of the tokenizers library). The native library
     * is extracted from the DJL jar into DJL's cache directory ({@code ~/.djl.ai}, or
     * {@code DJL_CACHE_DIR}).
     *
     * @param modelDirectory a directory holding {@code tokenizer.json} and, optionally,
     *     {@code tokenizer_config.json}
     * @throws TokenizerException when {@code tokenizer.json} is missing or cannot be parsed, or
     *     {@code tokenizer_config.json} is malformed; the message names the file
     */
    public static HfTokenizer load(Path modelDirectory) {
        HfTokenizer tokenizer = loadBuilding(modelDirectory, false);
        try {
            tokenizer.nativeTokenizer();
            return tokenizer;
        } catch (RuntimeException | Error e) {
            tokenizer.close();
            throw e;
        }
    }

    /**
     * As {@link #load(Path)}, but returns once the vocabulary and {@code tokenizer_config.json} are
     * read, while DJL's native build (Rust tokenizers parsing the whole file, merges included: most
     * of a load) goes on on its own thread. {@link #encode} and {@link #decode} wait for the build;
     * a {@code tokenizer.json} the native library rejects is reported by them, or by
     * {@link #awaitNativeBuild()}, rather than here. Lets a model load overlap the build with the
     * weights and a first forward pass of token ids.
     *
     * <p>The build runs at the lowest scheduling priority (on Linux; see {@link BackgroundPriority}),
     * so that on a machine with few cores it takes only cycles the weights' loading and the forward
     * passes leave, rather than half of them ({@code -Djvllm.tokenizer.lowPriorityBuild=false} keeps
     * the normal priority, for comparisons).
     */
    public static HfTokenizer loadBuildingInBackground(Path modelDirectory) {
        return loadBuilding(modelDirectory, LOW_PRIORITY_BUILD);
    }

    /**
     * The ids of {@code modelDirectory}'s tokenizer.json vocabulary entries and added tokens, by their
     * text as written there, read without building a tokenizer (the merges are never parsed): for
     * naming tokens in a model's config.
     *
     * @throws TokenizerException when the file is missing or cannot be parsed
     */
    public static Map<String, Integer> vocabulary(Path modelDirectory) {
        return Collections.unmodifiableMap(Vocabulary.read(tokenizerFile(modelDirectory)).idsByToken());
    }

    private static Path tokenizerFile(Path modelDirectory) {
        Path tokenizerJson = modelDirectory.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizerJson)) {
            throw new TokenizerException("No tokenizer file: " + tokenizerJson + " does not exist");
        }
        return tokenizerJson;
    }

    private static final boolean LOW_PRIORITY_BUILD =
            Boolean.parseBoolean(System.getProperty("jvllm.tokenizer.lowPriorityBuild", "true"));

    private static HfTokenizer loadBuilding(Path modelDirectory, boolean lowPriority) {
        Path tokenizerJson = tokenizerFile(modelDirectory);
        Path configJson = modelDirectory.resolve("tokenizer_config.json");
        FutureTask<HuggingFaceTokenizer> nativeBuild = new FutureTask<>(() -> {
            if (lowPriority) {
                BackgroundPriority.lowerCurrentThread();
            }
            return buildNative(tokenizerJson);
        });
        Thread.ofPlatform().daemon().name("jvllm-tokenizer-build").start(nativeBuild);
        try {
            return load(modelDirectory, tokenizerJson, configJson, nativeBuild);
        } catch (RuntimeException | Error e) {
            closeWhenBuilt(nativeBuild);
            throw e;
        }
    }

    private static HfTokenizer load(Path modelDirectory, Path tokenizerJson, Path configJson,
                                    FutureTask<HuggingFaceTokenizer> nativeBuild) {
        Vocabulary vocabulary = Vocabulary.read(tokenizerJson);
        JsonNode configTree = Files.isRegularFile(configJson) ? readJson(configJson) : null;
        SpecialTokensConfig config = SpecialTokensConfig.from(configTree, configJson);
        ChatTemplate template = null;
        ChatTemplateException templateError = null;
        // As Transformers: chat_template.jinja clobbers the config's template; a processor's
        // chat_template.json (LLaVA's) comes before the tokenizer's, as vLLM takes the processor's first.
        Path jinjaFile = modelDirectory.resolve(CHAT_TEMPLATE_FILE);
        Path processorFile = modelDirectory.resolve(PROCESSOR_CHAT_TEMPLATE_FILE);
        Path templateFile = null;
        Optional<String> source = Optional.empty();
        if (Files.isRegularFile(jinjaFile)) {
            templateFile = jinjaFile;
            source = Optional.of(readTemplateFile(jinjaFile));
        } else if (Files.isRegularFile(processorFile)) {
            templateFile = processorFile;
            source = ChatTemplate.sourceFromTokenizerConfig(readTemplateJson(processorFile), processorFile);
        }
        if (source.isEmpty() && configTree != null) {
            templateFile = configJson;
            source = ChatTemplate.sourceFromTokenizerConfig(configTree, configJson);
        }
        if (source.isPresent()) {
            try {
                template = ChatTemplate.compile(source.get(), templateTokens(config));
            } catch (ChatTemplateException e) {
                // Encoding and decoding still work; asking for the template reports this.
                templateError = new ChatTemplateException(e.reason(), "chat template in " + templateFile + ": " + e.getMessage(), e);
                log.warn("{}", templateError.getMessage());
            }
        }
        log.debug("Read tokenizer {} ({} tokens)", tokenizerJson, vocabulary.tokensById().length);
        return new HfTokenizer(nativeBuild, modelDirectory, vocabulary, config, template, templateError);
    }

    /**
     * Waits for the native tokenizer's build (see {@link #loadBuildingInBackground}).
     *
     * @throws TokenizerException when the native library rejected {@code tokenizer.json}
     */
    public void awaitNativeBuild() {
        nativeTokenizer();
    }

    private HuggingFaceTokenizer nativeTokenizer() {
        return join(nativeBuild);
    }

    /** Transformers 5 saves the template beside tokenizer_config.json rather than inside it. */
    private static final String CHAT_TEMPLATE_FILE = "chat_template.jinja";
    /** Where processors (LLaVA's) kept their template before chat_template.jinja: {@code {"chat_template": "..."}}. */
    private static final String PROCESSOR_CHAT_TEMPLATE_FILE = "chat_template.json";
    private static final long MAX_TEMPLATE_BYTES = 1 << 20;

    private static String readTemplateFile(Path file) {
        try {
            if (Files.size(file) > MAX_TEMPLATE_BYTES) {
                throw new TokenizerException(file + ": larger than " + MAX_TEMPLATE_BYTES + " bytes");
            }
            return Files.readString(file);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot be read: " + e.getMessage(), e);
        }
    }

    private static HuggingFaceTokenizer join(FutureTask<HuggingFaceTokenizer> build) {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return build.get();
                } catch (InterruptedException e) {
                    interrupted = true; // the build cannot be abandoned half-way: its native memory must be freed
                }
            }
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw new TokenizerException("Cannot load tokenizer: " + e.getCause(), e.getCause());
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /** After a failure elsewhere: frees the native tokenizer once its build ends. */
    private static void closeWhenBuilt(FutureTask<HuggingFaceTokenizer> build) {
        try {
            join(build).close();
        } catch (RuntimeException | Error ignored) {
            // the build failed as well; the first failure is the one reported
        }
    }

    private static HuggingFaceTokenizer buildNative(Path tokenizerJson) {
        DjlOfflineSettings.apply();
        try {
            // Pointing at the file, not the directory, keeps DJL from applying its own reading of
            // tokenizer_config.json (lower-casing, prefix spaces, clean-up) on top of ours.
            return HuggingFaceTokenizer.builder()
                    .optTokenizerPath(tokenizerJson)
                    .optAddSpecialTokens(false)
                    .optTruncation(false)
                    .optPadding(false)
                    .build();
        } catch (IOException | RuntimeException e) {
            throw new TokenizerException(
                    "Cannot load tokenizer " + tokenizerJson + ": " + e.getMessage(), e);
        }
    }

    /** chat_template.json: an object, at most as large as a template file. */
    private static JsonNode readTemplateJson(Path file) {
        JsonNode tree;
        try {
            tree = JSON.readTree(readTemplateFile(file));
        } catch (IOException e) {
            throw new TokenizerException("Malformed JSON in " + file + ": " + e.getMessage(), e);
        }
        if (tree == null || !tree.isObject()) {
            throw new TokenizerException(file + " must hold a JSON object with \"chat_template\"");
        }
        return tree;
    }

    private static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new TokenizerException("Malformed JSON in " + file + ": " + e.getMessage(), e);
        }
    }

    private static void putIfNotNull(Map<String, Object> map, String key, String value) {
        if (value != null) {
            map.put(key, value);
        }
    }

    /**
     * Encodes text to token ids.
     *
     * @param addSpecialTokens whether to add the model's special tokens (typically a BOS) as
     *     {@code transformers} does with {@code add_special_tokens=True}
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        long[] ids;
        try {
            ids = nativeTokenizer().encode(text, addSpecialTokens, false).getIds();
        } catch (RuntimeException e) {
            throw new TokenizerException("Encoding failed with " + directory + ": " + e, e);
        }
        int[] result = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            result[i] = Math.toIntExact(ids[i]);
        }
        if (addSpecialTokens) {
            result = addConfiguredBosEos(result);
        }
        return result;
    }

    /** A pair of texts as one input: its token ids and each token's type (0 for the first text's, 1 for the second's, as the tokenizer's pair template sets them). */
    public record PairEncoding(int[] ids, int[] typeIds) {
    }

    /**
     * Encodes a pair of texts as one input, with the special tokens of the tokenizer's pair template
     * ({@code [CLS] a [SEP] b [SEP]} for BERT, {@code <s> a </s></s> b </s>} for RoBERTa), as a
     * cross-encoder reads a query and a document.
     */
    public PairEncoding encodePair(String text, String pair) {
        return pairEncoding(nativePairEncoding(text, pair));
    }

    private ai.djl.huggingface.tokenizers.Encoding nativePairEncoding(String text, String pair) {
        try {
            return nativeTokenizer().encode(text, pair, true, false);
        } catch (RuntimeException e) {
            throw new TokenizerException("Encoding a pair failed with " + directory + ": " + e, e);
        }
    }

    /**
     * {@link #encodePair} cut to at most {@code maxLength} tokens, special tokens included, as Hugging
     * Face's tokenizers cut a pair with {@code truncation=True, max_length=maxLength} (longest first: the
     * shorter text is kept whole where it fits half the room, the longer cut to the rest; both cut to
     * halves where neither fits), so that a long document is scored on its beginning rather than refused.
     *
     * @throws IllegalArgumentException when {@code maxLength} leaves no room beside the pair template's
     *                                  special tokens
     */
    public PairEncoding encodePair(String text, String pair, int maxLength) {
        ai.djl.huggingface.tokenizers.Encoding whole = nativePairEncoding(text, pair);
        long[] ids = whole.getIds(), special = whole.getSpecialTokenMask();
        if (ids.length <= maxLength) return pairEncoding(whole);
        int specials = 0;
        for (long s : special) specials += (int) s;
        int room = maxLength - specials;
        if (room < 1) {
            throw new IllegalArgumentException("a pair cut to " + maxLength + " tokens leaves no room beside its " + specials
                    + " special tokens");
        }
        int first = encode(text, false).length, second = ids.length - specials - first;
        if (second < 0) throw new TokenizerException("the pair's texts do not add up to its tokens with " + directory);
        // Hugging Face's longest-first split of the room between the two texts.
        boolean swap = first > second;
        int shorter = swap ? second : first, longer = swap ? first : second;
        int keepLonger = shorter > room ? shorter : Math.max(shorter, room - shorter);
        int keepShorter = shorter;
        if (keepShorter + keepLonger > room) {
            keepShorter = room / 2;
            keepLonger = keepShorter + room % 2;
        }
        int keepFirst = Math.min(first, swap ? keepLonger : keepShorter), keepSecond = Math.min(second, swap ? keepShorter : keepLonger);
        // The template's tokens stay where they are; the first text's tokens come before the second's.
        long[] types = whole.getTypeIds();
        int[] idsOut = new int[specials + keepFirst + keepSecond], typesOut = new int[idsOut.length];
        int out = 0, seen = 0;
        for (int i = 0; i < ids.length; i++) {
            boolean keep = special[i] == 1 || (seen < first ? seen < keepFirst : seen - first < keepSecond);
            if (special[i] == 0) seen++;
            if (!keep) continue;
            idsOut[out] = Math.toIntExact(ids[i]);
            typesOut[out++] = types.length == ids.length ? Math.toIntExact(types[i]) : 0;
        }
        return new PairEncoding(idsOut, typesOut);
    }

    private static PairEncoding pairEncoding(ai.djl.huggingface.tokenizers.Encoding encoding) {
        long[] ids = encoding.getIds(), types = encoding.getTypeIds();
        int[] idsOut = new int[ids.length], typesOut = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            idsOut[i] = Math.toIntExact(ids[i]);
            typesOut[i] = types.length == ids.length ? Math.toIntExact(types[i]) : 0;
        }
        return new PairEncoding(idsOut, typesOut);
    }

    private int[] addConfiguredBosEos(int[] ids) {
        boolean prependBos = addBosToken && bosTokenId != null && (ids.length == 0 || ids[0] != bosTokenId);
        boolean appendEos =
                addEosToken && eosTokenId != null && (ids.length == 0 || ids[ids.length - 1] != eosTokenId);
        if (!prependBos && !appendEos) {
            return ids;
        }
        int[] result = new int[ids.length + (prependBos ? 1 : 0) + (appendEos ? 1 : 0)];
        int at = 0;
        if (prependBos) {
            result[at++] = bosTokenId;
        }
        System.arraycopy(ids, 0, result, at, ids.length);
        if (appendEos) {
            result[result.length - 1] = eosTokenId;
        }
        return result;
    }

    /**
     * Decodes token ids to text. Incomplete UTF-8 sequences at the end (bytes of a character split
     * over tokens) come out as U+FFFD, as in Hugging Face's decoder.
     *
     * @param skipSpecialTokens whether special tokens (BOS, EOS, chat markers) are left out
     * @throws TokenizerException when an id is outside {@code [0, vocabSize())}
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] longIds = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            checkId(ids[i]);
            longIds[i] = ids[i];
        }
        try {
            return nativeTokenizer().decode(longIds, skipSpecialTokens);
        } catch (RuntimeException e) {
            throw new TokenizerException("Decoding failed with " + directory + ": " + e, e);
        }
    }

    /**
     * The vocabulary entry of a token id as written in {@code tokenizer.json}, e.g. {@code "Ġthe"}
     * (byte-level BPE) or {@code "▁the"} (SentencePiece), or the content of an added token.
     *
     * @throws TokenizerException when the id is outside {@code [0, vocabSize())} or unused
     */
    public String tokenText(int id) {
        checkId(id);
        String token = tokensById[id];
        if (token == null) {
            throw new TokenizerException("Token id " + id + " has no entry in " + directory.resolve("tokenizer.json"));
        }
        return token;
    }

    /**
     * The bytes token {@code id} stands for in decoded text, or null for a special token or an id
     * without an entry: a byte-level BPE entry ({@code "Ġthe"}) through GPT-2's byte-to-character
     * map, a SentencePiece entry with {@code ▁} as a space and {@code <0xHH>} as that byte. Tokens
     * of a multi-byte character hold part of its UTF-8 bytes.
     */
    public byte[] tokenBytes(int id) {
        checkId(id);
        String token = tokensById[id];
        if (token == null || specialTokenIds.contains(id)) return null;
        if (byteLevel) {
            int[] byteOf = ByteLevelAlphabet.BYTE_OF_CHAR;
            byte[] out = new byte[token.length()];
            for (int i = 0; i < token.length(); i++) {
                char c = token.charAt(i);
                if (c >= byteOf.length || byteOf[c] < 0) return token.getBytes(java.nio.charset.StandardCharsets.UTF_8); // an added token
                out[i] = (byte) byteOf[c];
            }
            return out;
        }
        if (token.length() == 6 && token.startsWith("<0x") && token.endsWith(">")) {
            try {
                return new byte[]{(byte) Integer.parseInt(token.substring(3, 5), 16)};
            } catch (NumberFormatException e) {
                // not a byte token
            }
        }
        return token.replace('\u2581', ' ').getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    /**
     * Whether the vocabulary is byte-level BPE's (entries such as "Ġthe"), else SentencePiece-like.
     * SentencePiece vocabularies with byte fallback (Llama 2, Gemma) hold <0x0A>, and may hold "Ġ" entries too.
     */
    private static boolean isByteLevel(Map<String, Integer> idsByToken) {
        boolean sentencePiece = idsByToken.containsKey("<0x0A>") || idsByToken.containsKey("\u2581the");
        return !sentencePiece && (idsByToken.containsKey("\u0120the") || idsByToken.containsKey("\u0120") || idsByToken.containsKey("\u010a"));
    }

    /** GPT-2's bytes_to_unicode, inverted: the byte each of its 256 characters stands for (-1: none). */
    private static final class ByteLevelAlphabet {
        static final int[] BYTE_OF_CHAR = new int[512];

        static {
            java.util.Arrays.fill(BYTE_OF_CHAR, -1);
            int extra = 0;
            for (int b = 0; b < 256; b++) {
                boolean printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
                BYTE_OF_CHAR[printable ? b : 256 + extra++] = b;
            }
        }
    }

    /** The id of a vocabulary entry or added token, written as in {@code tokenizer.json}. */
    public OptionalInt idOf(String token) {
        Integer id = idsByToken.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /**
     * Number of token ids: the model vocabulary plus added tokens (one more than the largest id),
     * as {@code len(tokenizer)} in transformers. The model's embedding table may be larger.
     */
    public int vocabSize() {
        return tokensById.length;
    }

    /** Ids of the added tokens marked {@code "special": true} in {@code tokenizer.json}. */
    public Set<Integer> specialTokenIds() {
        return specialTokenIds;
    }

    /** The id of {@code bos_token} from {@code tokenizer_config.json}, if it names a known token. */
    public OptionalInt bosTokenId() {
        return bosTokenId == null ? OptionalInt.empty() : OptionalInt.of(bosTokenId);
    }

    /** The id of {@code eos_token} from {@code tokenizer_config.json}, if it names a known token. */
    public OptionalInt eosTokenId() {
        return eosTokenId == null ? OptionalInt.empty() : OptionalInt.of(eosTokenId);
    }

    /**
     * The model's chat template, bound to this tokenizer's {@code bos_token}, {@code eos_token},
     * {@code unk_token} and {@code pad_token}: from {@code chat_template.jinja}, else a processor's
     * {@code chat_template.json} ({@code {"chat_template": "..."}}, where LLaVA checkpoints keep it),
     * else {@code tokenizer_config.json}'s {@code chat_template} (or its entry named "default" when
     * it is a list), the first found as Transformers and vLLM take them. Empty when none has one.
     *
     * @throws ChatTemplateException when the template found could not be compiled (the message
     *     names the file); encoding and decoding are not affected
     */
    public Optional<ChatTemplate> chatTemplate() {
        if (chatTemplateError != null) {
            throw new ChatTemplateException(chatTemplateError.reason(), chatTemplateError.getMessage(), chatTemplateError);
        }
        return Optional.ofNullable(chatTemplate);
    }

    /** The directory this tokenizer was loaded from. */
    public Path directory() {
        return directory;
    }

    private void checkId(int id) {
        if (id < 0 || id >= tokensById.length) {
            throw new TokenizerException(
                    "Token id " + id + " is outside the vocabulary [0, " + tokensById.length + ") of " + directory);
        }
    }

    /** Releases the native tokenizer, once built. */
    @Override
    public void close() {
        closeWhenBuilt(nativeBuild);
    }

    /**
     * Token strings and ids from {@code model.vocab} and {@code added_tokens} of tokenizer.json,
     * read with the streaming parser: everything else is skipped unparsed, and reading stops once
     * both are read, so the merges (hundreds of thousands of pairs, after the vocabulary in files
     * that Hugging Face writes) are never tokenized.
     */
    private record Vocabulary(Map<String, Integer> idsByToken, String[] tokensById, Set<Integer> specialIds) {

        static Vocabulary read(Path file) {
            Map<String, Integer> ids = null;
            JsonNode addedTokens = null;
            try (JsonParser p = VOCABULARY_JSON.createParser(file.toFile())) {
                if (p.nextToken() != JsonToken.START_OBJECT) {
                    throw new TokenizerException("Expected a JSON object in " + file);
                }
                while ((ids == null || addedTokens == null) && p.nextToken() == JsonToken.FIELD_NAME) {
                    String field = p.currentName();
                    p.nextToken();
                    if (field.equals("model") && p.currentToken() == JsonToken.START_OBJECT) {
                        ids = readModelVocab(p, addedTokens != null);
                    } else if (field.equals("added_tokens")) {
                        addedTokens = p.readValueAsTree();
                    } else {
                        p.skipChildren();
                    }
                }
            } catch (IOException e) {
                throw new TokenizerException("Malformed JSON in " + file + ": " + e.getMessage(), e);
            }
            if (ids == null) {
                throw new TokenizerException("No model.vocab in " + file + " (is it a Hugging Face tokenizer.json?)");
            }
            return from(ids, addedTokens == null ? MissingNode.getInstance() : addedTokens, file);
        }

        /**
         * The vocabulary of the {@code model} object the parser is at; stops right after it when
         * {@code last} (the parser is then left inside the object), else reads to the object's end.
         * Null when the object has no vocabulary.
         */
        private static Map<String, Integer> readModelVocab(JsonParser p, boolean last) throws IOException {
            Map<String, Integer> ids = null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                if (!field.equals("vocab")) {
                    p.skipChildren();
                } else if (value == JsonToken.START_OBJECT) {
                    // BPE, WordPiece, WordLevel: {"token": id}
                    ids = new HashMap<>(1 << 18);
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String token = p.currentName();
                        p.nextToken();
                        ids.put(token, p.getValueAsInt());
                        p.skipChildren();
                    }
                } else if (value == JsonToken.START_ARRAY) {
                    // Unigram: [["token", score], ...], id = position
                    ids = new HashMap<>(1 << 18);
                    for (int i = 0; p.nextToken() != JsonToken.END_ARRAY; i++) {
                        JsonNode entry = p.readValueAsTree();
                        ids.put(entry.path(0).asText(), i);
                    }
                } else {
                    p.skipChildren();
                }
                if (ids != null && last) {
                    return ids;
                }
            }
            return ids;
        }

        private static Vocabulary from(Map<String, Integer> ids, JsonNode addedTokens, Path file) {
            Set<Integer> special = new TreeSet<>();
            Map<Integer, String> addedById = new HashMap<>();
            for (JsonNode added : addedTokens) {
                int id = added.path("id").asInt(-1);
                String content = added.path("content").asText(null);
                if (id < 0 || content == null) {
                    throw new TokenizerException("Malformed entry in added_tokens of " + file + ": " + added);
                }
                ids.put(content, id);
                addedById.put(id, content);
                if (added.path("special").asBoolean(false)) {
                    special.add(id);
                }
            }
            int size = ids.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
            String[] tokens = new String[size];
            for (Map.Entry<String, Integer> e : ids.entrySet()) {
                tokens[e.getValue()] = e.getKey();
            }
            // An added token may share its id with a vocab entry; the added content wins, as in tokenizers.
            addedById.forEach((id, content) -> tokens[id] = content);
            return new Vocabulary(Map.copyOf(ids), tokens, Collections.unmodifiableSet(special));
        }
    }

    /** The special-token settings of tokenizer_config.json that encoding and templates use. */
    private record SpecialTokensConfig(
            String bosToken,
            String eosToken,
            String unkToken,
            String padToken,
            boolean addBosToken,
            boolean addEosToken) {

        static SpecialTokensConfig from(JsonNode config, Path file) {
            if (config == null) {
                return new SpecialTokensConfig(null, null, null, null, false, false);
            }
            if (!config.isObject()) {
                throw new TokenizerException("Expected a JSON object in " + file);
            }
            return new SpecialTokensConfig(
                    tokenContent(config.get("bos_token"), "bos_token", file),
                    tokenContent(config.get("eos_token"), "eos_token", file),
                    tokenContent(config.get("unk_token"), "unk_token", file),
                    tokenContent(config.get("pad_token"), "pad_token", file),
                    config.path("add_bos_token").asBoolean(false),
                    config.path("add_eos_token").asBoolean(false));
        }

        /** A special token is written as a string or as an AddedToken object {"content": ...}. */
        private static String tokenContent(JsonNode node, String key, Path file) {
            if (node == null || node.isNull()) {
                return null;
            }
            if (node.isTextual()) {
                return node.asText();
            }
            if (node.isObject() && node.path("content").isTextual()) {
                return node.get("content").asText();
            }
            throw new TokenizerException(
                    key + " in " + file + " must be a string or an object with \"content\", not " + node);
        }
    }
}
