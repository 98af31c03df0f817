package dev.jvllm;

import java.util.Optional;
import java.util.OptionalInt;

/**
 * How {@link LLM#embed} turns an input into its vector: vLLM's {@code PoolingParams}. Immutable;
 * unset options take the model's defaults.
 *
 * <pre>{@code
 * PoolingParams params = PoolingParams.builder().dimensions(256).truncatePromptTokens(-1).build();
 * }</pre>
 */
public final class PoolingParams {

    private final Boolean normalize;
    private final Integer dimensions;
    private final Integer truncatePromptTokens;

    private PoolingParams(Builder b) {
        this.normalize = b.normalize;
        this.dimensions = b.dimensions;
        this.truncatePromptTokens = b.truncatePromptTokens;
    }

    /** The model's defaults: its own normalization, full width, no truncation. */
    public static PoolingParams defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Whether to L2-normalize; empty: the model's sentence-transformers setting, else true. */
    public Optional<Boolean> normalize() {
        return Optional.ofNullable(normalize);
    }

    /** Matryoshka truncation to this many leading dimensions (before normalizing); empty: full width. */
    public OptionalInt dimensions() {
        return dimensions == null ? OptionalInt.empty() : OptionalInt.of(dimensions);
    }

    /** Keep only the last k tokens of each input (-1: the model's maximum length); empty: refuse long inputs. */
    public OptionalInt truncatePromptTokens() {
        return truncatePromptTokens == null ? OptionalInt.empty() : OptionalInt.of(truncatePromptTokens);
    }

    @Override
    public String toString() {
        return "PoolingParams[normalize=" + normalize + ", dimensions=" + dimensions
                + ", truncatePromptTokens=" + truncatePromptTokens + "]";
    }

    /** Builds {@link PoolingParams}; {@link #build()} rejects values out of range. */
    public static final class Builder {
        private Boolean normalize;
        private Integer dimensions;
        private Integer truncatePromptTokens;

        private Builder() {
        }

        public Builder normalize(boolean normalize) {
            this.normalize = normalize;
            return this;
        }

        /** Output dimensions for Matryoshka models (refused for other models at embed time). */
        public Builder dimensions(int dimensions) {
            this.dimensions = dimensions;
            return this;
        }

        /** Keep the last {@code k} tokens of each input; -1 keeps as many as the model takes. */
        public Builder truncatePromptTokens(int k) {
            this.truncatePromptTokens = k;
            return this;
        }

        public PoolingParams build() {
            if (dimensions != null && dimensions < 1) {
                throw new InvalidRequestException("dimensions", "dimensions must be at least 1, got " + dimensions);
            }
            if (truncatePromptTokens != null && truncatePromptTokens < 1 && truncatePromptTokens != -1) {
                throw new InvalidRequestException("truncatePromptTokens",
                        "truncatePromptTokens must be -1 or at least 1, got " + truncatePromptTokens);
            }
            return new PoolingParams(this);
        }
    }
}
