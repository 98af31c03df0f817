package dev.jvllm.spi;

import dev.jvllm.config.ConfigException;

import java.util.Locale;

/** Elementwise activation functions, named as config.json's {@code hidden_act} names them. */
public enum Activation {
    /** x · sigmoid(x). */
    SILU,
    /** The exact GELU, x · Φ(x). */
    GELU,
    /** GELU's tanh approximation (gelu_new, gelu_pytorch_tanh, gelu_fast). */
    GELU_TANH,
    /** x · sigmoid(1.702 x). */
    QUICK_GELU,
    /** max(x, 0). */
    RELU;

    /** The function a {@code hidden_act}/{@code activation_function} value names. */
    public static Activation fromConfig(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "silu", "swish" -> SILU;
            case "gelu", "gelu_python" -> GELU;
            case "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_tanh" -> GELU_TANH;
            case "quick_gelu" -> QUICK_GELU;
            case "relu" -> RELU;
            default -> throw new ConfigException("activation '" + name + "' is not supported "
                    + "(supported: silu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu)");
        };
    }

    /** The function at one point, in double precision (the reference the kernels follow). */
    public double apply(double x) {
        return switch (this) {
            case SILU -> x / (1 + Math.exp(-x));
            case GELU -> 0.5 * x * (1 + erf(x / Math.sqrt(2)));
            case GELU_TANH -> 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            case QUICK_GELU -> x / (1 + Math.exp(-1.702 * x));
            case RELU -> Math.max(x, 0);
        };
    }

    /**
     * Error function: its Taylor series below |x| = 2.5 (exact to double rounding with 60 terms),
     * Abramowitz–Stegun 7.1.26 above (absolute error under 1.5e-7 where erf is within 4e-4 of ±1).
     */
    public static double erf(double x) {
        if (Math.abs(x) < 2.5) {
            double sum = x, term = x, x2 = x * x;
            for (int n = 1; n < 60; n++) {
                term *= -x2 / n;
                sum += term / (2 * n + 1);
            }
            return 2 / Math.sqrt(Math.PI) * sum;
        }
        double t = 1 / (1 + 0.3275911 * Math.abs(x));
        double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592)
                * t * Math.exp(-x * x);
        return Math.copySign(y, x);
    }
}
