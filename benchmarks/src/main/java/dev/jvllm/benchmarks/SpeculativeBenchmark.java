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
        List<double[]> plainGaps = null;
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
            List<List<Integer>> togetherAnswers = together.stream().map(o -> o.outputs().getFirst().tokenIds()).toList();
            if (plainAnswers == null) {
                plainAnswers = answers;
                // Batching alone can part greedy answers where the pass rounds differently (16-bit types).
                variant.put("batched_answers_equal_to_batch1", equalCount(togetherAnswers, plainAnswers));
            } else {
                variant.put("answers_equal_to_plain", equalCount(answers, plainAnswers));
                variant.put("batched_answers_equal_to_plain", equalCount(togetherAnswers, plainAnswers));
            }
            results.put(config == null ? "plain" : "speculative", variant);
            System.out.println((config == null ? "plain: " : "speculative: ") + variant);
            if (config == null) {
                plainGaps = logprobGaps(llm, prompts, params);
                continue;
            }
            // The two ends for this machine and model: every guess wrong, then every guess right. The right
            // guesses are the answers of the wrong-guess run, whose tokens all come from several-token passes
            // as the right-guess run's do: in 16-bit types the plain run's one-token passes round differently,
            // and one token parted early makes every later guess from the plain answer wrong.
            List<List<Integer>> ownAnswers = plainAnswers;
            for (boolean right : new boolean[]{false, true}) {
                dev.jvllm.engine.GuessOracle.install(llm, prompts, ownAnswers, speculativeTokens, right);
                for (int[] prompt : prompts) llm.generate(prompt, params);
                Map<String, Object> bound = new LinkedHashMap<>();
                before = llm.metrics();
                start = System.nanoTime();
                List<List<Integer>> boundAnswers = new ArrayList<>();
                for (int[] prompt : prompts) boundAnswers.add(llm.generate(prompt, params).outputs().getFirst().tokenIds());
                double seconds = (System.nanoTime() - start) / 1e9;
                after = llm.metrics();
                bound.put("batch1_output_tokens_per_s", Percentiles.round(tokens / seconds));
                bound.put("batch1_steps", after.steps() - before.steps());
                bound.put("batch1_ms_per_step", Percentiles.round(seconds * 1000 / (after.steps() - before.steps())));
                bound.put("batch1_draft_tokens", after.draftTokens() - before.draftTokens());
                bound.put("batch1_accepted_tokens", after.acceptedDraftTokens() - before.acceptedDraftTokens());
                bound.put("answers_equal_to_plain", equalCount(boundAnswers, plainAnswers));
                if (!right) bound.put("where_answers_part_from_plain", parting(boundAnswers, plainAnswers, plainGaps));
                bound.put("answers_equal_to_the_guessed_answers", equalCount(boundAnswers, ownAnswers));
                String name = right ? "every_guess_right" : "every_guess_wrong";
                results.put(name, bound);
                System.out.println(name + ": " + bound);
                ownAnswers = boundAnswers;
            }
        }
        Path file = ResultFile.write("speculative", options, last, results);
        last.close();
        System.out.println("written to " + file);
    }

    /** Per prompt, at each output position of the plain greedy answer, its top token's logprob less the runner-up's. */
    private static List<double[]> logprobGaps(LLM llm, List<int[]> prompts, SamplingParams params) {
        SamplingParams withLogprobs = params.toBuilder().logprobs(2).build();
        List<double[]> gaps = new ArrayList<>();
        for (int[] prompt : prompts) {
            var output = llm.generate(prompt, withLogprobs).outputs().getFirst();
            double[] gap = new double[output.logprobs().size()];
            for (int i = 0; i < gap.length; i++) {
                double[] top = output.logprobs().get(i).values().stream().mapToDouble(dev.jvllm.Logprob::logprob)
                        .map(x -> -x).sorted().map(x -> -x).toArray();
                gap[i] = top.length < 2 ? Double.NaN : top[0] - top[1];
            }
            gaps.add(gap);
        }
        return gaps;
    }

    /**
     * Where each answer first differs from the plain one, with the plain answer's margin there (its
     * top token's logprob over the runner-up's): a small margin is two tokens the passes' rounding can swap.
     */
    private static List<Map<String, Object>> parting(List<List<Integer>> answers, List<List<Integer>> plain, List<double[]> gaps) {
        List<Map<String, Object>> parts = new ArrayList<>();
        for (int i = 0; i < answers.size(); i++) {
            int at = 0;
            while (at < answers.get(i).size() && at < plain.get(i).size() && answers.get(i).get(at).equals(plain.get(i).get(at))) at++;
            Map<String, Object> part = new LinkedHashMap<>();
            part.put("position", at == answers.get(i).size() ? "none" : at);
            if (at < answers.get(i).size() && gaps != null && at < gaps.get(i).length) part.put("plain_margin", gaps.get(i)[at]);
            parts.add(part);
        }
        return parts;
    }

    /** How many of the answers equal the other list's answer at the same place. */
    private static int equalCount(List<List<Integer>> answers, List<List<Integer>> others) {
        int equal = 0;
        for (int i = 0; i < answers.size(); i++) if (answers.get(i).equals(others.get(i))) equal++;
        return equal;
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
