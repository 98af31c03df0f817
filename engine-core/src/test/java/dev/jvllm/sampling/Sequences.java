package dev.jvllm.sampling;

import dev.jvllm.SamplingParams;

import java.util.List;
import java.util.random.RandomGeneratorFactory;

/** Builds sampling states for tests: no EOS ids, a generator seeded from 0 unless the params carry a seed. */
final class Sequences {

    private Sequences() {
    }

    static SequenceSamplingState state(SamplingParams params, int vocabSize) {
        return state(params, new int[0], vocabSize);
    }

    static SequenceSamplingState state(SamplingParams params, int[] prompt, int vocabSize) {
        return new SequenceSamplingState(params, prompt, List.of(), vocabSize,
                RandomSource.seeded(0).generatorFor(params, 0));
    }

    static SequenceSamplingState stateWithGeneratorSeed(SamplingParams params, long generatorSeed, int vocabSize) {
        return new SequenceSamplingState(params, new int[0], List.of(), vocabSize,
                RandomGeneratorFactory.of("L64X128MixRandom").create(generatorSeed));
    }

    /** The softmax of {@code logits / temperature}, in double precision. */
    static double[] softmax(float[] logits, double temperature) {
        double max = Double.NEGATIVE_INFINITY;
        for (float x : logits) {
            max = Math.max(max, x / temperature);
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            p[i] = Math.exp(logits[i] / temperature - max);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /** The log-softmax of {@code logits}, in double precision. */
    static double[] logSoftmax(float[] logits) {
        double[] p = softmax(logits, 1.0);
        double[] logp = new double[p.length];
        for (int i = 0; i < p.length; i++) {
            logp[i] = Math.log(p[i]);
        }
        return logp;
    }

    /** How often each token is sampled in {@code draws} independent steps from copies of {@code logits}. */
    static int[] sampleCounts(SequenceSamplingState state, float[] logits, int draws) {
        Sampler sampler = new Sampler();
        int[] counts = new int[logits.length];
        for (int i = 0; i < draws; i++) {
            counts[sampler.sample(state, logits.clone()).tokenId()]++;
        }
        return counts;
    }
}
