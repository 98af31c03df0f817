package dev.jvllm.cuda;

/** The kernels of the {@code .cu} modules, by module and function name. */
enum Kernel {
    ADD("elementwise", "add"),
    SILU_MUL("elementwise", "silu_mul"),
    ACTIVATION("elementwise", "activation"),
    GATED_ACTIVATION("elementwise", "gated_activation"),
    SCALE("elementwise", "scale"),
    SOFTCAP("elementwise", "softcap"),
    CLAMP("elementwise", "clamp_values"),
    ADD_BIAS_ROWS("elementwise", "add_bias_rows"),
    CONVERT_FLOAT("elementwise", "convert_float"),
    RMS_NORM("norms", "rms_norm"),
    LAYER_NORM("norms", "layer_norm"),
    GATHER_ROWS("gather", "gather_rows"),
    SCATTER_ADD_ROWS("gather", "scatter_add_rows"),
    HEADWISE_LINEAR("gather", "headwise_linear"),
    ROTARY("rotary", "rotary"),
    WRITE_KV_CACHE("attention", "write_kv_cache"),
    PAGED_ATTENTION("attention", "paged_attention");

    final String module;
    final String function;

    Kernel(String module, String function) {
        this.module = module;
        this.function = function;
    }
}
