// Row-wise normalizations: one block per row, activations of act_t summed in float32, weights of
// any floating type.
#include "common.cuh"

// out = x / sqrt(mean(x²) + eps) * (weight + weightOffset)   (Zhang & Sennrich 2019; Gemma's offset of 1)
extern "C" __global__ void rms_norm(const act_t* x, const void* weight, int weightType, float eps,
                                    float weightOffset, act_t* out, int cols) {
    JV_DEPENDENT_PROLOGUE();
    const act_t* row = x + (i64) blockIdx.x * cols;
    act_t* target = out + (i64) blockIdx.x * cols;
    float squares = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float v = act_to_float(row[i]);
        squares += v * v;
    }
    float inverseRms = 1.0f / sqrtf(block_sum(squares) / cols + eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        target[i] = float_to_act(act_to_float(row[i]) * inverseRms * (load_element(weight, weightType, i) + weightOffset));
    }
}

// x += delta, then out = rms_norm(x): a pre-norm layer's residual add and the next norm in one pass.
// The sum is rounded to act_t before it is squared, as the two kernels apart would.
extern "C" __global__ void add_rms_norm(act_t* x, const act_t* delta, const void* weight, int weightType, float eps,
                                        float weightOffset, act_t* out, int cols) {
    JV_DEPENDENT_PROLOGUE();
    act_t* row = x + (i64) blockIdx.x * cols;
    const act_t* added = delta + (i64) blockIdx.x * cols;
    act_t* target = out + (i64) blockIdx.x * cols;
    float squares = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        act_t sum = float_to_act(act_to_float(row[i]) + act_to_float(added[i]));
        row[i] = sum;
        float v = act_to_float(sum);
        squares += v * v;
    }
    float inverseRms = 1.0f / sqrtf(block_sum(squares) / cols + eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        target[i] = float_to_act(act_to_float(row[i]) * inverseRms * (load_element(weight, weightType, i) + weightOffset));
    }
}

// out = (x - mean) / sqrt(var + eps) * weight (+ bias); two passes over the row for a stable variance.
extern "C" __global__ void layer_norm(const act_t* x, const void* weight, int weightType, const void* bias,
                                      int biasType, float eps, act_t* out, int cols) {
    JV_DEPENDENT_PROLOGUE();
    const act_t* row = x + (i64) blockIdx.x * cols;
    act_t* target = out + (i64) blockIdx.x * cols;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        sum += act_to_float(row[i]);
    }
    float mean = block_sum(sum) / cols;
    float squares = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float d = act_to_float(row[i]) - mean;
        squares += d * d;
    }
    float inverseStd = 1.0f / sqrtf(block_sum(squares) / cols + eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float v = (act_to_float(row[i]) - mean) * inverseStd * load_element(weight, weightType, i);
        target[i] = float_to_act(bias == nullptr ? v : v + load_element(bias, biasType, i));
    }
}
