package dev.jvllm.benchmarks;

import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.SpeculativeConfig;
import dev.jvllm.engine.EngineMetrics;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Speculative decoding by prompt lookup against plain decoding, on one model in one process: the same
 * greedy requests, first one at a time (batch 1, what speculation is for), then all together; output
 * tokens per second, steps, guesses verified and kept, and whether every answer is the same.
 *
 * <p>Prompts: one a line from {@code --prompts FILE}; else, for a model with a tokenizer, texts that
 * the demo model continues by repeating what it read; else (a random-weight checkpoint) runs of
 * {@code --input-len / 4} random token ids written four times, whose answers depend on the weights.
 * Then the same speculative engine with guesses known right and known wrong ({@link
 * dev.jvllm.engine.GuessOracle}, from the plain answers): what a step of 1 + k tokens costs here
 * against a step of one, so what prompt lookup can gain and lose on this machine and model.
 */
public final class SpeculativeBenchmark {

    private static final String USAGE = """
            usage: ./jvllm java dev.jvllm.benchmarks.SpeculativeBenchmark [options]
              --num-speculative-tokens N  guesses verified a step (default 4)
              --prompt-lookup-min N       (default 2)
              --prompt-lookup-max N       (default 4)
              --prompts FILE              one prompt a line, or "ids: 1 2 3" for token ids (default: see the class's documentation)
            """ + BenchmarkOptions.COMMON_USAGE;

    /** The demo model's prompts; {@code benchmarks/prompts/speculative-demo-ids.txt} holds them as token ids. */
    static final List<String> TEXT_PROMPTS = List.of(
            "The Commission shall adopt the measures. The Commission shall adopt the measures. The Commission shall",
            "Article 1, Article 2, Article 3, Article 4, Article 5, Article",
            "Member States shall ensure that the rules are applied. Member States shall ensure that",
            "In accordance with the procedure referred to in Article 5, the Council",
            "The European Parliament",
            "Having regard to the Treaty on the Functioning of the European Union, and in particular Article 114 thereof, "
                    + "Having regard to the proposal from the European Commission, Having regard to the Treaty");

    private SpeculativeBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int speculativeTokens = 4, lookupMin = 2, lookupMax = 4;
        Path promptFile = null;
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--num-speculative-tokens" -> speculativeTokens = Integer.parseInt(args[++i]);
                case "--prompt-lookup-min" -> lookupMin = Integer.parseInt(args[++i]);
                case "--prompt-lookup-max" -> lookupMax = Integer.parseInt(args[++i]);
                case "--prompts" -> promptFile = Path.of(args[++i]);
                default -> rest.add(args[i]);
            }
        }
        BenchmarkOptions options = BenchmarkOptions.parse(rest.toArray(String[]::new), USAGE);
        SpeculativeConfig speculative = SpeculativeConfig.ngram(speculativeTokens, lookupMin, lookupMax);
        SamplingParams params = options.samplingParams(options.outputLen);

        Map<String, Object> results = new LinkedHashMap<>();
        results.put("speculative_config", Map.of("method", "ngram", "num_speculative_tokens", speculativeTokens,
                "prompt_lookup_min", lookupMin, "prompt_lookup_max", lookupMax));
        List<List<Integer>> plainAnswers = null;
        LLM last = null;
        for (SpeculativeConfig config : java.util.Arrays.asList(null, speculative)) {
            LLM llm = options.builder().speculativeConfig(config).build();
            if (last != null) last.close();
            last = llm;
            List<int[]> prompts = prompts(llm, options, promptFile);
            results.put("prompts", prompts.size());
            // Untimed, each way it is then timed: the JIT compiles one-token and several-token passes
            // separately, and CUDA graphs and searched products are made per shape.
            Warmup.run(llm, options);
            for (int[] prompt : prompts) llm.generate(prompt, params);
            generate(llm, prompts, params);
            Map<String, Object> variant = new LinkedHashMap<>();
            List<List<Integer>> answers = new ArrayList<>();
            EngineMetrics before = llm.metrics();
            long start = System.nanoTime();
            for (int[] prompt : prompts) answers.add(llm.generate(prompt, params).outputs().getFirst().tokenIds());
            double alone = (System.nanoTime() - start) / 1e9;
            EngineMetrics after = llm.metrics();
            long tokens = answers.stream().mapToLong(List::size).sum();
            variant.put("batch1_output_tokens_per_s", Percentiles.round(tokens / alone));
            variant.put("batch1_ms_per_output_token", Percentiles.round(alone * 1000 / tokens));
            variant.put("batch1_steps", after.steps() - before.steps());
            variant.put("batch1_ms_per_step", Percentiles.round(alone * 1000 / (after.steps() - before.steps())));
            variant.put("batch1_draft_tokens", after.draftTokens() - before.draftTokens());
            variant.put("batch1_accepted_tokens", after.acceptedDraftTokens() - before.acceptedDraftTokens());
            before = after;
            start = System.nanoTime();
            List<RequestOutput> together = generate(llm, prompts, params);
            double batched = (System.nanoTime() - start) / 1e9;
            after = llm.metrics();
            variant.put("batched_output_tokens_per_s", Percentiles.round(tokens / batched));
            variant.put("batched_steps", after.steps() - before.steps());
            variant.put("batched_accepted_tokens", after.acceptedDraftTokens() - before.acceptedDraftTokens());
            if (plainAnswers == null) {
                plainAnswers = answers;
            } else {
                int same = 0;
                for (int i = 0; i < answers.size(); i++) if (answers.get(i).equals(plainAnswers.get(i))) same++;
                variant.put("answers_equal_to_plain", same);
                int sameTogether = 0;
                for (int i = 0; i < together.size(); i++) {
                    if (together.get(i).outputs().getFirst().tokenIds().equals(plainAnswers.get(i))) sameTogether++;
                }
                variant.put("batched_answers_equal_to_plain", sameTogether);
            }
            results.put(config == null ? "plain" : "speculative", variant);
            System.out.println((config == null ? "plain: " : "speculative: ") + variant);
            if (config == null) continue;
            // The two ends for this machine and model: every guess right, every guess wrong.
            for (boolean right : new boolean[]{true, false}) {
                dev.jvllm.engine.GuessOracle.install(llm, prompts, plainAnswers, speculativeTokens, right);
                for (int[] prompt : prompts) llm.generate(prompt, params);
                Map<String, Object> bound = new LinkedHashMap<>();
                before = llm.metrics();
                start = System.nanoTime();
                int same = 0;
                for (int i = 0; i < prompts.size(); i++) {
                    if (llm.generate(prompts.get(i), params).outputs().getFirst().tokenIds().equals(plainAnswers.get(i))) same++;
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                after = llm.metrics();
                bound.put("batch1_output_tokens_per_s", Percentiles.round(tokens / seconds));
                bound.put("batch1_steps", after.steps() - before.steps());
                bound.put("batch1_ms_per_step", Percentiles.round(seconds * 1000 / (after.steps() - before.steps())));
                bound.put("batch1_draft_tokens", after.draftTokens() - before.draftTokens());
                bound.put("batch1_accepted_tokens", after.acceptedDraftTokens() - before.acceptedDraftTokens());
                bound.put("answers_equal_to_plain", same);
                String name = right ? "every_guess_right" : "every_guess_wrong";
                results.put(name, bound);
                System.out.println(name + ": " + bound);
            }
        }
        Path file = ResultFile.write("speculative", options, last, results);
        last.close();
        System.out.println("written to " + file);
    }

    private static List<RequestOutput> generate(LLM llm, List<int[]> prompts, SamplingParams params) {
        return llm.generatePrompts(prompts.stream().map(dev.jvllm.Prompt::tokens).toList(), params);
    }

    private static List<int[]> prompts(LLM llm, BenchmarkOptions options, Path file) throws java.io.IOException {
        if (file != null) {
            // "ids: 1 2 3" lines are token ids, for a machine without the tokenizer's native library (the GPU kit).
            return Files.readAllLines(file).stream().filter(line -> !line.isBlank())
                    .map(line -> line.startsWith("ids:")
                            ? java.util.Arrays.stream(line.substring(4).trim().split("\\s+")).mapToInt(Integer::parseInt).toArray()
                            : llm.tokenizer().encode(line, true))
                    .toList();
        }
        if (!options.model.startsWith("random")) return TEXT_PROMPTS.stream().map(text -> llm.tokenizer().encode(text, true)).toList();
        int run = Math.max(1, options.inputLen / 4);
        List<int[]> prompts = new ArrayList<>();
        for (int[] tokens : BenchmarkOptions.randomPrompts(options.batchSize, run, llm.modelConfig().vocabSize(), options.seed)) {
            int[] prompt = new int[run * 4];
            for (int i = 0; i < prompt.length; i++) prompt[i] = tokens[i % run];
            prompts.add(prompt);
        }
        return prompts;
    }
}
