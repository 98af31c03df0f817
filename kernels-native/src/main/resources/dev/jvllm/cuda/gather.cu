// Row gathers: the embedding lookup and the selection of the rows whose logits are wanted.
#include "common.cuh"

// out[r] = source[indices[r]] in the activation type; one block per output row.
extern "C" __global__ void gather_rows(const void* source, int sourceType, int sourceRows, int cols,
                                       const int* indices, act_t* out, int* error) {
    JV_DEPENDENT_PROLOGUE();
    int r = blockIdx.x;
    int index = indices[r];
    act_t* target = out + (i64) r * cols;
    if (index < 0 || index >= sourceRows) {
        if (threadIdx.x == 0) report_error(error, JV_ERROR_ROW_INDEX, index, r, sourceRows);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) target[c] = float_to_act(0.0f);
        return;
    }
    i64 first = (i64) index * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        target[c] = float_to_act(load_element(source, sourceType, first + c));
    }
}

// out[rows[i]] += weights[i] * source[i]: the combine step of a mixture of experts; one block per
// source row. Atomic, since several source rows may name the same out row.
extern "C" __global__ void scatter_add_rows(const act_t* source, const int* rows, const void* weights,
                                            int weightType, int outRows, int cols, act_t* out, int* error) {
    JV_DEPENDENT_PROLOGUE();
    int i = blockIdx.x;
    int row = rows[i];
    if (row < 0 || row >= outRows) {
        if (threadIdx.x == 0) report_error(error, JV_ERROR_ROW_INDEX, row, i, outRows);
        return;
    }
    float w = load_element(weights, weightType, i);
    const act_t* from = source + (i64) i * cols;
    act_t* to = out + (i64) row * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        atomic_add_act(to + c, w * act_to_float(from[c]));
    }
}

// out[t, h] = weight_h . x[t, h] with a different [outPerHead, in] matrix per head; one block per
// (token, head), a thread per output feature. Plain and correct, not fast: MLA's absorbed
// projections are small next to the expert matmuls.
extern "C" __global__ void headwise_linear(const act_t* x, const void* weight, int weightType, int heads, int in,
                                           int outPerHead, act_t* out) {
    JV_DEPENDENT_PROLOGUE();
    int t = blockIdx.x;
    int h = blockIdx.y;
    const act_t* xs = x + (i64) t * heads * in + (i64) h * in;
    act_t* ys = out + (i64) t * heads * outPerHead + (i64) h * outPerHead;
    for (int o = threadIdx.x; o < outPerHead; o += blockDim.x) {
        i64 row = ((i64) h * outPerHead + o) * in;
        float sum = 0.0f;
        for (int i = 0; i < in; i++) sum += load_element(weight, weightType, row + i) * act_to_float(xs[i]);
        ys[o] = float_to_act(sum);
    }
}

// out[r] = the column of row r's largest value: the first on ties, NaN never chosen, 0 when no
// value is above -inf (the CPU sampler's argmax). One block per row.
extern "C" __global__ void argmax_rows(const act_t* x, int cols, int* out) {
    JV_DEPENDENT_PROLOGUE();
    const int none = 0x7fffffff;
    const act_t* row = x + (i64) blockIdx.x * cols;
    float best = -jv_infinity();
    int index = none;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = act_to_float(row[c]);
        if (v > best) {
            best = v;
            index = c;
        }
    }
    __shared__ float warpBest[32];
    __shared__ int warpIndex[32];
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;
    for (int round = 0; round < 2; round++) {
        for (int offset = 16; offset > 0; offset >>= 1) {
            float otherBest = __shfl_xor_sync(0xffffffffu, best, offset);
            int otherIndex = __shfl_xor_sync(0xffffffffu, index, offset);
            if (otherBest > best || (otherBest == best && otherIndex < index)) {
                best = otherBest;
                index = otherIndex;
            }
        }
        if (round == 1) break;
        if (lane == 0) {
            warpBest[warp] = best;
            warpIndex[warp] = index;
        }
        __syncthreads();
        int warps = blockDim.x >> 5;
        best = lane < warps ? warpBest[lane] : -jv_infinity();
        index = lane < warps ? warpIndex[lane] : none;
    }
    if (threadIdx.x == 0) out[blockIdx.x] = index == none ? 0 : index;
}
