// Elementwise kernels over float32 activations; every one tolerates out aliasing an input.
#include "common.cuh"

__device__ __forceinline__ float apply_activation(int fn, float x) {
    switch (fn) {
        case JV_SILU: return x / (1.0f + expf(-x));
        case JV_GELU: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
        case JV_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
        case JV_QUICK_GELU: return x / (1.0f + expf(-1.702f * x));
        default: return fmaxf(x, 0.0f);
    }
}

extern "C" __global__ void add(const float* a, const float* b, float* out, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        out[i] = a[i] + b[i];
    }
}

extern "C" __global__ void silu_mul(const float* gate, const float* up, float* out, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

extern "C" __global__ void activation(int fn, const float* x, float* out, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        out[i] = apply_activation(fn, x[i]);
    }
}

extern "C" __global__ void gated_activation(int fn, const float* gate, const float* up, float* out, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        out[i] = apply_activation(fn, gate[i]) * up[i];
    }
}

extern "C" __global__ void scale(const float* x, float factor, float* out, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        out[i] = x[i] * factor;
    }
}

// Gemma 2's logit soft-capping: cap * tanh(x / cap).
extern "C" __global__ void softcap(const float* x, float cap, float* out, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        out[i] = cap * tanhf(x[i] / cap);
    }
}

extern "C" __global__ void clamp_values(const float* x, float limit, float* out, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        out[i] = fminf(fmaxf(x[i], -limit), limit);
    }
}

// out[r, c] += bias[c] for a [rows, cols] matrix: the bias of a linear layer after its GEMM.
extern "C" __global__ void add_bias_rows(float* out, const void* bias, int biasType, int cols, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        out[i] += load_element(bias, biasType, i % cols);
    }
}

// Rounds float32 activations to a narrower type, so cuBLAS can take them with 16-bit weights.
extern "C" __global__ void convert_float(const float* x, void* out, int outType, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        store_element(out, outType, i, x[i]);
    }
}
