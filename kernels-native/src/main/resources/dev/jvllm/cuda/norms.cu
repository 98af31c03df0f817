// Row-wise normalizations: one block per row, float32 activations, weights of any floating type.
#include "common.cuh"

// out = x / sqrt(mean(x²) + eps) * (weight + weightOffset)   (Zhang & Sennrich 2019; Gemma's offset of 1)
extern "C" __global__ void rms_norm(const float* x, const void* weight, int weightType, float eps,
                                    float weightOffset, float* out, int cols) {
    const float* row = x + (i64) blockIdx.x * cols;
    float* target = out + (i64) blockIdx.x * cols;
    float squares = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        squares += row[i] * row[i];
    }
    float inverseRms = 1.0f / sqrtf(block_sum(squares) / cols + eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        target[i] = row[i] * inverseRms * (load_element(weight, weightType, i) + weightOffset);
    }
}

// out = (x - mean) / sqrt(var + eps) * weight (+ bias); two passes over the row for a stable variance.
extern "C" __global__ void layer_norm(const float* x, const void* weight, int weightType, const void* bias,
                                      int biasType, float eps, float* out, int cols) {
    const float* row = x + (i64) blockIdx.x * cols;
    float* target = out + (i64) blockIdx.x * cols;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        sum += row[i];
    }
    float mean = block_sum(sum) / cols;
    float squares = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float d = row[i] - mean;
        squares += d * d;
    }
    float inverseStd = 1.0f / sqrtf(block_sum(squares) / cols + eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float v = (row[i] - mean) * inverseStd * load_element(weight, weightType, i);
        target[i] = bias == nullptr ? v : v + load_element(bias, biasType, i);
    }
}
