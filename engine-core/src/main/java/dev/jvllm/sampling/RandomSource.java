package dev.jvllm.sampling;

import dev.jvllm.SamplingParams;

import java.util.random.RandomGenerator;
import java.util.random.RandomGenerator.SplittableGenerator;
import java.util.random.RandomGeneratorFactory;

/**
 * Hands each sequence its own random generator, so that what one sequence draws never depends on
 * which others share its batch.
 *
 * <p>A request with a {@link SamplingParams#seed() seed} gets a generator seeded from it (the
 * i-th of its {@code n} sequences from {@code seed + i}, as vLLM seeds parallel samples): same
 * seed, same tokens. A request without one gets a generator split off this source's own, itself
 * seeded from the engine-level seed when there is one, so a whole run repeats when the requests
 * arrive in the same order.
 *
 * <p>Thread-safe. Uses the JDK's {@code L64X128MixRandom}, an LXM generator whose output for a
 * given seed is fixed by its specification.
 */
public final class RandomSource {

    private static final RandomGeneratorFactory<SplittableGenerator> ALGORITHM =
            RandomGeneratorFactory.of("L64X128MixRandom");

    private final SplittableGenerator engineGenerator;

    private RandomSource(SplittableGenerator engineGenerator) {
        this.engineGenerator = engineGenerator;
    }

    /** A source whose unseeded requests are reproducible from {@code engineSeed}. */
    public static RandomSource seeded(long engineSeed) {
        return new RandomSource(ALGORITHM.create(engineSeed));
    }

    /** A source seeded from system entropy. */
    public static RandomSource unseeded() {
        return new RandomSource(ALGORITHM.create());
    }

    /**
     * The generator for sequence {@code sequenceIndex} (0 to {@code n - 1}) of a request.
     *
     * @throws IllegalArgumentException if the index is not below {@code params.n()}
     */
    public RandomGenerator generatorFor(SamplingParams params, int sequenceIndex) {
        if (sequenceIndex < 0 || sequenceIndex >= params.n()) {
            throw new IllegalArgumentException("sequence index " + sequenceIndex + " outside [0, " + params.n() + ")");
        }
        if (params.seed().isPresent()) {
            return ALGORITHM.create(params.seed().getAsLong() + sequenceIndex);
        }
        synchronized (engineGenerator) {
            return engineGenerator.split();
        }
    }
}
