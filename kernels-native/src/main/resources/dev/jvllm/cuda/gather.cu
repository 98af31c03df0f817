// Row gathers: the embedding lookup and the selection of the rows whose logits are wanted.
#include "common.cuh"

// out[r] = source[indices[r]] widened to float32; one block per output row.
extern "C" __global__ void gather_rows(const void* source, int sourceType, int sourceRows, int cols,
                                       const int* indices, float* out, int* error) {
    int r = blockIdx.x;
    int index = indices[r];
    float* target = out + (i64) r * cols;
    if (index < 0 || index >= sourceRows) {
        if (threadIdx.x == 0) report_error(error, JV_ERROR_ROW_INDEX, index, r, sourceRows);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) target[c] = 0.0f;
        return;
    }
    i64 first = (i64) index * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        target[c] = load_element(source, sourceType, first + c);
    }
}

// out[rows[i]] += weights[i] * source[i]: the combine step of a mixture of experts; one block per
// source row. Atomic, since several source rows may name the same out row.
extern "C" __global__ void scatter_add_rows(const float* source, const int* rows, const void* weights,
                                            int weightType, int outRows, int cols, float* out, int* error) {
    int i = blockIdx.x;
    int row = rows[i];
    if (row < 0 || row >= outRows) {
        if (threadIdx.x == 0) report_error(error, JV_ERROR_ROW_INDEX, row, i, outRows);
        return;
    }
    float w = load_element(weights, weightType, i);
    const float* from = source + (i64) i * cols;
    float* to = out + (i64) row * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        atomicAdd(to + c, w * from[c]);
    }
}

// out[t, h] = weight_h . x[t, h] with a different [outPerHead, in] matrix per head; one block per
// (token, head), a thread per output feature. Plain and correct, not fast: MLA's absorbed
// projections are small next to the expert matmuls.
extern "C" __global__ void headwise_linear(const float* x, const void* weight, int weightType, int heads, int in,
                                           int outPerHead, float* out) {
    int t = blockIdx.x;
    int h = blockIdx.y;
    const float* xs = x + (i64) t * heads * in + (i64) h * in;
    float* ys = out + (i64) t * heads * outPerHead + (i64) h * outPerHead;
    for (int o = threadIdx.x; o < outPerHead; o += blockDim.x) {
        i64 row = ((i64) h * outPerHead + o) * in;
        float sum = 0.0f;
        for (int i = 0; i < in; i++) sum += load_element(weight, weightType, row + i) * xs[i];
        ys[o] = sum;
    }
}
