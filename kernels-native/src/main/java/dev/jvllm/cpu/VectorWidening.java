package dev.jvllm.cpu;

import dev.jvllm.weights.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

import static dev.jvllm.cpu.VectorShapes.FLOATS;

/**
 * How a vector of weights of one checkpoint type is loaded and widened to float32: the one thing
 * in which the weight loops of the types differ. {@link #loops()} gives the type its own copy of
 * {@link VectorWeightLoops}.
 */
enum VectorWidening {

    /** Loaded as they are. */
    F32(DType.F32) {
        @Override
        FloatVector load(MemorySegment w, long byteOffset) {
            return FloatVector.fromMemorySegment(FLOATS, w, byteOffset, VectorShapes.LE);
        }
    },

    /**
     * A bfloat16 is the high half of a float32, so 16-bit lanes sign-extended to int lanes and
     * shifted left by 16 are the floats (the shift drops the sign extension).
     */
    BF16(DType.BF16) {
        @Override
        FloatVector load(MemorySegment w, long byteOffset) {
            return VectorShapes.halves(w, byteOffset).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        }

        @Override
        boolean widerTiles() {
            return true;
        }
    },

    /**
     * The Vector API has no half-float conversion, so the bits are rebuilt with integer operations
     * (exact for normals, subnormals, infinities and NaN). The half, sign-extended to 32 bits and
     * shifted left by 13, has its exponent and mantissa in float position and its sign in bit 31;
     * masking bits 28..30 leaves a float 2^-112 times the value, so one multiply rebases the
     * exponent (15 → 127) and normalizes subnormals. Exponent 31 (infinity, NaN) then gets the
     * all-ones float exponent.
     */
    F16(DType.F16) {
        @Override
        FloatVector load(MemorySegment w, long byteOffset) {
            IntVector half = VectorShapes.halves(w, byteOffset);
            FloatVector finite = half.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats()
                    .mul(0x1p112f);
            // (exponent bits + 0x0400) reaches 0x8000 only for exponent 31; moved to bit 31 and spread, all ones.
            IntVector infinityOrNaN = half.and(0x7C00).add(0x0400).lanewise(VectorOperators.LSHL, 16)
                    .lanewise(VectorOperators.ASHR, 31).and(0x7F800000);
            return finite.reinterpretAsInts().or(infinityOrNaN).reinterpretAsFloats();
        }

        /**
         * The conversion is long enough that more copies of it exceed C2's inlining budget
         * ({@code NodeCountInliningCutoff}); the loop then calls it and allocates a vector per element.
         */
        @Override
        boolean fewLoads() {
            return true;
        }
    };

    private final DType type;

    VectorWidening(DType type) {
        this.type = type;
    }

    DType type() {
        return type;
    }

    /** The float32 values of {@link VectorShapes#LANES} weights from {@code byteOffset}. */
    abstract FloatVector load(MemorySegment w, long byteOffset);

    /**
     * Whether the loops keep to two loads per iteration: {@code dot} and the two-token loop unrolled
     * twice, not four times, the eight-row and the four-row two-token loops one row at a time, and
     * three rows of four tokens as two two-row tiles.
     */
    boolean fewLoads() {
        return false;
    }

    /**
     * Whether tiles of three weight rows are offered (with AVX-512's registers, see
     * {@link VectorWeightLoops#threeRowTiles}): measured for BF16 only, the type of the LLM
     * checkpoints they were tuned on.
     */
    boolean widerTiles() {
        return false;
    }

    /**
     * This type's own copy of {@link VectorWeightLoops}: the class's bytes defined again as a
     * hidden class, with this widening as its class data (a constant to the JIT). HotSpot compiles
     * a method once for all its callers, so one loop shared by the types would see three loads at
     * one call site, stop inlining them and allocate a vector per element (measured 7x slower);
     * a shared loop inlined into small per-type methods is refused by C2's inlining limits (too
     * large, or already compiled on its own). A copy per type is compiled with only its own load.
     */
    WeightLoops loops() {
        try (InputStream in = VectorWeightLoops.class.getResourceAsStream("VectorWeightLoops.class")) {
            if (in == null) {
                throw new IllegalStateException("VectorWeightLoops.class is not readable as a resource");
            }
            MethodHandles.Lookup copy = MethodHandles.lookup().defineHiddenClassWithClassData(in.readAllBytes(), this, true);
            return (WeightLoops) copy.findConstructor(copy.lookupClass(), MethodType.methodType(void.class)).invoke();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("cannot define the " + this + " weight loops", e);
        }
    }
}
