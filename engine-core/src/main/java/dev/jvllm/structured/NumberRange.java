package dev.jvllm.structured;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;

/**
 * The JSON numbers within bounds (each inclusive or exclusive, either absent) as a regular
 * expression: decimals without an exponent, {@code -?(0|[1-9][0-9]*)(\.[0-9]+)?}, whose value lies
 * in the range. A number's integer part is bounded as integers are ({@link JsonSchemaRegex#magnitudes});
 * at the integer parts of the bounds themselves, the fraction's digits are compared one by one with
 * the bound's.
 */
final class NumberRange {

    private static final BigDecimal LARGEST = BigDecimal.valueOf(1_000_000_000_000_000L);
    /**
     * The most digits after the point: more than a double's 17 significant digits can tell apart
     * are not written, and a model sampling freely cannot run on with digits until its tokens end.
     */
    static final int MAX_FRACTION_DIGITS = 16;
    private static final String ANY_FRACTION = "(?:\\.[0-9]{1," + MAX_FRACTION_DIGITS + "})?";

    private NumberRange() {
    }

    /**
     * The numbers x with {@code low ≤ x} ({@code <} where lowStrict; no bound where null) and
     * {@code x ≤ high} ({@code <} where highStrict).
     *
     * @throws IllegalArgumentException naming {@code where} when no number is in the range, or a bound
     *                                  is beyond ±10<sup>15</sup>
     */
    static String of(BigDecimal low, boolean lowStrict, BigDecimal high, boolean highStrict, String where) {
        for (BigDecimal bound : new BigDecimal[]{low, high}) {
            if (bound != null && bound.abs().compareTo(LARGEST) > 0) {
                throw new IllegalArgumentException("the number bound " + bound.toPlainString() + " at " + where + " is out of range");
            }
        }
        List<String> parts = new ArrayList<>();
        // Negative numbers: '-' and a magnitude above 0 (and above -high where high < 0), up to -low.
        if (low == null || low.signum() < 0) {
            boolean highNegative = high != null && high.signum() < 0;
            String magnitudes = magnitudes(highNegative ? high.negate() : BigDecimal.ZERO, !highNegative || highStrict,
                    low == null ? null : low.negate(), lowStrict);
            if (magnitudes != null) parts.add("-" + magnitudes);
        }
        // Numbers from 0 (or from low, where low ≥ 0) up to high.
        if (high == null || high.signum() > 0 || high.signum() == 0 && !highStrict) {
            boolean lowPositive = low != null && low.signum() >= 0;
            String magnitudes = magnitudes(lowPositive ? low : BigDecimal.ZERO, lowPositive && lowStrict, high, highStrict);
            if (magnitudes != null) parts.add(magnitudes);
        }
        if (parts.isEmpty()) throw new IllegalArgumentException("no number is within the bounds at " + where);
        return parts.size() == 1 ? parts.getFirst() : "(?:" + String.join("|", parts) + ")";
    }

    /** Unsigned decimals in [a, b] (open at a strict end; b null: unbounded), a ≥ 0; null where there are none. */
    private static String magnitudes(BigDecimal a, boolean aStrict, BigDecimal b, boolean bStrict) {
        long ia = a.setScale(0, RoundingMode.FLOOR).longValueExact();
        String fa = fractionDigits(a);
        List<String> parts = new ArrayList<>();
        if (b == null) {
            add(parts, Long.toString(ia), fraction(new Bounds(fa, aStrict, null, false)));
            parts.add(JsonSchemaRegex.magnitudeFrom(ia + 1) + ANY_FRACTION);
        } else {
            if (b.compareTo(a) < 0 || b.compareTo(a) == 0 && (aStrict || bStrict)) return null;
            long ib = b.setScale(0, RoundingMode.FLOOR).longValueExact();
            String fb = fractionDigits(b);
            if (ia == ib) {
                add(parts, Long.toString(ia), fraction(new Bounds(fa, aStrict, fb, bStrict)));
            } else {
                add(parts, Long.toString(ia), fraction(new Bounds(fa, aStrict, null, false)));
                if (ia + 1 <= ib - 1) parts.add(JsonSchemaRegex.magnitudes(ia + 1, ib - 1) + ANY_FRACTION);
                add(parts, Long.toString(ib), fraction(new Bounds(null, false, fb, bStrict)));
            }
        }
        if (parts.isEmpty()) return null;
        return parts.size() == 1 ? parts.getFirst() : "(?:" + String.join("|", parts) + ")";
    }

    private static void add(List<String> parts, String integer, String fraction) {
        if (fraction != null) parts.add(integer + fraction);
    }

    /** The digits after the point, without trailing zeros ("" for a whole number). */
    private static String fractionDigits(BigDecimal value) {
        BigDecimal fraction = value.subtract(value.setScale(0, RoundingMode.FLOOR)).stripTrailingZeros();
        if (fraction.signum() == 0) return "";
        String plain = fraction.toPlainString();  // "0.xyz"
        return plain.substring(plain.indexOf('.') + 1);
    }

    /**
     * What is left of the fraction's bounds after some of its digits: 0.g ≥ 0.low (> where strict) and
     * 0.g ≤ 0.high (<) for the digits g still to come; a null bound is met whatever follows.
     */
    private record Bounds(String low, boolean lowStrict, String high, boolean highStrict) {
        Bounds {
            if (low != null && low.isEmpty() && !lowStrict) low = null;  // ≥ 0 holds for any digits
            if (low == null) lowStrict = false;
            if (high == null) highStrict = false;
        }

        /** Whether no more digits (g empty, value 0) meets the bounds. */
        boolean endsHere() {
            return low == null && (high == null || !high.isEmpty() || !highStrict);
        }

        boolean unbounded() {
            return low == null && high == null;
        }

        /** The bounds after one more digit {@code d}, or null where no continuation can meet them. */
        Bounds after(int d) {
            String nextLow = null;
            if (low != null) {
                int l = low.isEmpty() ? 0 : low.charAt(0) - '0';
                if (d < l) return null;
                if (d == l) nextLow = low.isEmpty() ? "" : low.substring(1);
            }
            String nextHigh = null;
            if (high != null) {
                int h = high.isEmpty() ? 0 : high.charAt(0) - '0';
                if (d > h) return null;
                if (d == h) nextHigh = high.isEmpty() ? "" : high.substring(1);
            }
            return new Bounds(nextLow, lowStrict, nextHigh, highStrict);
        }
    }

    /** The fraction part (a point and digits, or nothing) within the bounds; null where there is none. */
    private static String fraction(Bounds bounds) {
        if (bounds.unbounded()) return ANY_FRACTION;
        String digits = digits(bounds, MAX_FRACTION_DIGITS);
        if (digits == null) return bounds.endsHere() ? "" : null;
        return bounds.endsHere() ? "(?:\\." + digits + ")?" : "\\." + digits;
    }

    /** One to {@code room} digits within the bounds; null where none are. */
    private static String digits(Bounds bounds, int room) {
        if (room == 0) return null;
        if (bounds.unbounded()) return "[0-9]{1," + room + "}";
        List<String> alternatives = new ArrayList<>();
        int d = 0;
        while (d <= 9) {
            Bounds next = bounds.after(d);
            // Digits leading to the same bounds share one class.
            int e = d;
            while (e < 9 && java.util.Objects.equals(bounds.after(e + 1), next)) e++;
            if (next != null) {
                String rest = digits(next, room - 1);
                String tail = rest == null ? (next.endsHere() ? "" : null) : next.endsHere() ? "(?:" + rest + ")?" : rest;
                if (tail != null) alternatives.add((d == e ? String.valueOf(d) : "[" + d + "-" + e + "]") + tail);
            }
            d = e + 1;
        }
        if (alternatives.isEmpty()) return null;
        return alternatives.size() == 1 ? alternatives.getFirst() : "(?:" + String.join("|", alternatives) + ")";
    }
}
