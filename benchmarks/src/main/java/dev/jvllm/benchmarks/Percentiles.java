package dev.jvllm.benchmarks;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Summary statistics of a sample, percentiles interpolated linearly between ranks (numpy's default). */
final class Percentiles {

    private Percentiles() {
    }

    static double percentile(double[] sorted, double p) {
        if (sorted.length == 0) return Double.NaN;
        double rank = p / 100 * (sorted.length - 1);
        int lo = (int) Math.floor(rank), hi = (int) Math.ceil(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    /** Mean, p50, p90 and p99 of {@code values}, in milliseconds when given seconds. */
    static Map<String, Double> summaryMillis(List<Double> seconds) {
        double[] sorted = seconds.stream().mapToDouble(s -> s * 1000).sorted().toArray();
        Map<String, Double> out = new LinkedHashMap<>();
        out.put("mean_ms", round(Arrays.stream(sorted).average().orElse(Double.NaN)));
        for (int p : new int[]{50, 90, 99}) out.put("p" + p + "_ms", round(percentile(sorted, p)));
        return out;
    }

    static double round(double value) {
        return Math.round(value * 1000) / 1000.0;
    }
}
