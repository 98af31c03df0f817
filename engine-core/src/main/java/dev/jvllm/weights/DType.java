package dev.jvllm.weights;

import java.util.Locale;
import java.util.Optional;

/** Element types of checkpoint tensors, named as safetensors names them. */
public enum DType {
    F64(8), F32(4), F16(2), BF16(2), F8_E4M3(1), F8_E5M2(1),
    I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** True for the floating-point types. */
    public boolean isFloating() {
        return ordinal() <= F8_E5M2.ordinal();
    }

    /**
     * The type a safetensors header names ("F32", "BF16", "F8_E4M3", ...), if known. The match is
     * exact, as in the reference reader, so that no file means one thing here and another there.
     */
    public static Optional<DType> fromSafetensorsName(String name) {
        for (DType type : values()) {
            if (type.name().equals(name)) {
                return Optional.of(type);
            }
        }
        return Optional.empty();
    }

    /** The type a {@code torch_dtype}/{@code dtype} field of config.json names ("bfloat16", "float32", ...). */
    public static Optional<DType> fromTorchName(String name) {
        return switch (name.toLowerCase(Locale.ROOT).replace("torch.", "")) {
            case "float32", "float", "fp32" -> Optional.of(F32);
            case "float16", "half", "fp16" -> Optional.of(F16);
            case "bfloat16", "bf16" -> Optional.of(BF16);
            case "float64", "double" -> Optional.of(F64);
            case "float8_e4m3fn", "float8_e4m3" -> Optional.of(F8_E4M3);
            case "float8_e5m2" -> Optional.of(F8_E5M2);
            default -> Optional.empty();
        };
    }
}
