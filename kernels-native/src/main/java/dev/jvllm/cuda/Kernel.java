package dev.jvllm.cuda;

import dev.jvllm.weights.DType;

/** The kernels of the {@code .cu} modules, by module and function name. */
enum Kernel {
    ADD("elementwise", "add"),
    ACTIVATION("elementwise", "activation"),
    GATED_ACTIVATION("elementwise", "gated_activation"),
    SCALE("elementwise", "scale"),
    SOFTCAP("elementwise", "softcap"),
    CLAMP("elementwise", "clamp_values"),
    ADD_BIAS_ROWS("elementwise", "add_bias_rows"),
    CONVERT_ELEMENTS("elementwise", "convert_elements"),
    SPLIT_COLUMNS("elementwise", "split_columns"),
    GATED_HALVES("elementwise", "gated_halves"),
    GEMV_ROWS("linear", "gemv_rows"),
    GEMV_ROWS3("linear", "gemv_rows3"),
    GEMV_GATED("linear", "gemv_gated"),
    GEMV_ROWS_ACTIVATED("linear", "gemv_rows_activated"),
    // The gemm_int4 kernels: (x rows a launch takes in mma tiles of 8, row tiles, x rows held, ring depth)
    // as quantized.cu's GEMM_INT4 lines make each, and the warps a block this side chooses.
    GEMM_INT4_2("quantized", "gemm_int4_2", 8, gemmInt4SharedBytes(1, 1, 2, 8, 8)),
    GEMM_INT4_8("quantized", "gemm_int4_8", 4, gemmInt4SharedBytes(1, 1, 8, 8, 4)),
    GEMM_INT4_16("quantized", "gemm_int4_16", 4, gemmInt4SharedBytes(2, 1, 16, 4, 4)),
    GEMM_INT4_GATED_2("quantized", "gemm_int4_gated_2", 4, gemmInt4SharedBytes(1, 2, 2, 8, 4)),
    GEMM_INT4_GATED_8("quantized", "gemm_int4_gated_8", 4, gemmInt4SharedBytes(1, 2, 8, 6, 4)),
    GEMM_INT4_GATED_16("quantized", "gemm_int4_gated_16", 4, gemmInt4SharedBytes(2, 2, 16, 4, 4)),
    // The gemm_int4_wide kernels: 8 warps a block, two row tiles a warp, x rows held, a ring of 4 stages.
    GEMM_INT4_WIDE_16("quantized", "gemm_int4_wide_16", 8, gemmInt4WideSharedBytes(2, 16, 4)),
    GEMM_INT4_WIDE_32("quantized", "gemm_int4_wide_32", 8, gemmInt4WideSharedBytes(2, 32, 4)),
    GEMM_INT4_WIDE_64("quantized", "gemm_int4_wide_64", 8, gemmInt4WideSharedBytes(2, 64, 4)),
    GEMM_INT4_WIDE_GATED_16("quantized", "gemm_int4_wide_gated_16", 8, gemmInt4WideSharedBytes(2, 16, 4)),
    GEMM_INT4_WIDE_GATED_32("quantized", "gemm_int4_wide_gated_32", 8, gemmInt4WideSharedBytes(2, 32, 4)),
    GEMM_INT4_WIDE_GATED_64("quantized", "gemm_int4_wide_gated_64", 8, gemmInt4WideSharedBytes(2, 64, 4)),
    GEMM_INT4_REDUCE("quantized", "gemm_int4_reduce", true),
    DEQUANTIZE_INT4("quantized", "dequantize_int4"),
    PERMUTE_COLUMNS("quantized", "permute_columns"),
    RMS_NORM("norms", "rms_norm"),
    ADD_RMS_NORM("norms", "add_rms_norm"),
    ADD_PARTS_RMS_NORM("norms", "add_parts_rms_norm"),
    LAYER_NORM("norms", "layer_norm"),
    ADD_LAYER_NORM("norms", "add_layer_norm"),
    GATHER_ROWS("gather", "gather_rows"),
    SCATTER_ADD_ROWS("gather", "scatter_add_rows"),
    HEADWISE_LINEAR("gather", "headwise_linear"),
    ARGMAX_ROWS("gather", "argmax_rows"),
    ARGMAX_COMBINE("gather", "argmax_combine"),
    TAKE_SAMPLED_TOKENS("gather", "take_sampled_tokens"),
    SAMPLE_ROWS("sampling", "sample_rows"),
    ROTARY("rotary", "rotary"),
    ROTARY_PAIR("rotary", "rotary_pair"),
    WRITE_KV_CACHE("attention", "write_kv_cache"),
    WRITE_LATENT_CACHE("attention", "write_latent_cache"),
    LATENT_ATTENTION("attention", "latent_attention"),
    ENCODER_ATTENTION("attention", "encoder_attention"),
    CROSS_ATTENTION("attention", "cross_attention"),
    ENCODER_ATTENTION_TILED_32("attention", "encoder_attention_tiled_32"),
    ENCODER_ATTENTION_TILED_64("attention", "encoder_attention_tiled_64"),
    ENCODER_ATTENTION_TILED_80("attention", "encoder_attention_tiled_80"),
    ENCODER_FLASH_32("attention", "encoder_flash_32", true),
    ENCODER_FLASH_64("attention", "encoder_flash_64", true),
    ENCODER_FLASH_80("attention", "encoder_flash_80", true),
    ENCODER_FLASH_128("attention", "encoder_flash_128", true),
    ENCODER_FLASH_64_RELATIVE("attention", "encoder_flash_64_relative", true),
    ENCODER_FLASH_128_RELATIVE("attention", "encoder_flash_128_relative", true),
    PAGED_ATTENTION("attention", "paged_attention"),
    PAGED_DECODE_64_G4("attention", "paged_decode_64_g4"),
    PAGED_DECODE_64_G8("attention", "paged_decode_64_g8"),
    PAGED_DECODE_80_G4("attention", "paged_decode_80_g4", true),
    PAGED_DECODE_80_G8("attention", "paged_decode_80_g8", true),
    PAGED_DECODE_96_G4("attention", "paged_decode_96_g4", true),
    PAGED_DECODE_96_G8("attention", "paged_decode_96_g8", true),
    PAGED_DECODE_128_G4("attention", "paged_decode_128_g4"),
    PAGED_DECODE_128_G8("attention", "paged_decode_128_g8"),
    PAGED_DECODE_64_G4_RELATIVE("attention", "paged_decode_64_g4_relative", true),
    PAGED_DECODE_128_G4_RELATIVE("attention", "paged_decode_128_g4_relative", true),
    PAGED_DECODE_256_G4("attention", "paged_decode_256_g4", true),
    PAGED_DECODE_256_G8("attention", "paged_decode_256_g8", true),
    FLASH_PREFILL_64("attention", "flash_prefill_64", true),
    FLASH_PREFILL_80("attention", "flash_prefill_80", true),
    FLASH_PREFILL_96("attention", "flash_prefill_96", true),
    FLASH_PREFILL_128("attention", "flash_prefill_128", true),
    /** Its key, value and query tiles as flash_prefill_tile&lt;256&gt; lays them out: 4 × 32 × 264 + 64 × 264 elements. */
    FLASH_PREFILL_256("attention", "flash_prefill_256", true, (4 * 32 * 264 + 64 * 264) * 2),
    MOE_ROUTE_SOFTMAX_TOPK("moe", "moe_route_softmax_topk"),
    MOE_GROUP_BY_EXPERT("moe", "moe_group_by_expert"),
    MOE_GATE_UP_ROWS("moe", "moe_gate_up_rows"),
    MOE_DOWN_ROWS("moe", "moe_down_rows"),
    MOE_GATE_UP_TILES("moe", "moe_gate_up_tiles", true),
    MOE_DOWN_TILES("moe", "moe_down_tiles", true),
    MOE_COMBINE("moe", "moe_combine"),
    ADD_SIGMOID_GATED_ROWS("moe", "add_sigmoid_gated_rows");

    final String module;
    final String function;
    /** Built only where activations are 16-bit (tensor-core kernels). */
    final boolean sixteenBitOnly;
    /**
     * Bytes of dynamic shared memory each block takes (extern __shared__), 0 for none; above 48 KB
     * the function must be allowed them first ({@link KernelLauncher#supports}).
     */
    final int dynamicSharedBytes;
    /** Threads a block where the kernel's shared memory is laid out for them, else 0 (the caller's choice). */
    final int blockThreads;

    Kernel(String module, String function) {
        this(module, function, false);
    }

    Kernel(String module, String function, boolean sixteenBitOnly) {
        this(module, function, sixteenBitOnly, 0);
    }

    Kernel(String module, String function, boolean sixteenBitOnly, int dynamicSharedBytes) {
        this(module, function, sixteenBitOnly, dynamicSharedBytes, 0);
    }

    /** A tensor-core kernel of {@code warps} warps a block. */
    Kernel(String module, String function, int warps, int dynamicSharedBytes) {
        this(module, function, true, dynamicSharedBytes, 32 * warps);
    }

    private Kernel(String module, String function, boolean sixteenBitOnly, int dynamicSharedBytes, int blockThreads) {
        this.module = module;
        this.function = function;
        this.sixteenBitOnly = sixteenBitOnly;
        this.dynamicSharedBytes = dynamicSharedBytes;
        this.blockThreads = blockThreads;
    }

    /**
     * Shared memory of a gemm_int4 kernel (quantized.cu's gemm_int4_shared_bytes): a ring of
     * {@code ring} slots a warp, each a k tile's words (512 bytes a row tile), its rows' scales and
     * zeros (128) and x's 64 inputs for {@code xRows} tokens (144 bytes a row); then, in the same
     * memory, the warps' float sums of 16 rows by 8 tokens a tile plus one.
     */
    static int gemmInt4SharedBytes(int tokenTiles, int rowTiles, int xRows, int ring, int warps) {
        int slot = rowTiles * (512 + 128) + xRows * 144;
        return Math.max(warps * ring * slot, warps * rowTiles * 16 * (8 * tokenTiles + 1) * 4);
    }

    /**
     * Shared memory of a gemm_int4_wide kernel (quantized.cu's gemm_int4_wide_shared_bytes): {@code
     * ring} stages, each x's 64 inputs of a k tile for {@code xRows} tokens (144 bytes a row) and the
     * block's 8 warps' {@code rowTiles} row tiles' words (512 bytes each) and scales and zeros (128).
     */
    static int gemmInt4WideSharedBytes(int rowTiles, int xRows, int ring) {
        return ring * (xRows * 144 + 8 * rowTiles * (512 + 128));
    }

    boolean builtFor(DType activationType) {
        return !sixteenBitOnly || activationType != DType.F32;
    }
}
