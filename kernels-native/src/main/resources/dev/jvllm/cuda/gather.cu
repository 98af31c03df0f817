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

#define ARGMAX_NONE 0x7fffffff

// The largest value of row[begin, end) and its column, in thread 0 of the block: the first on ties,
// NaN never chosen, column ARGMAX_NONE when no value is above -inf.
__device__ __forceinline__ void block_argmax(const act_t* row, int begin, int end, float& best, int& index) {
    best = -jv_infinity();
    index = ARGMAX_NONE;
    for (int c = begin + threadIdx.x; c < end; c += blockDim.x) {
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
            better_of(best, index, __shfl_xor_sync(0xffffffffu, best, offset), __shfl_xor_sync(0xffffffffu, index, offset));
        }
        if (round == 1) break;
        if (lane == 0) {
            warpBest[warp] = best;
            warpIndex[warp] = index;
        }
        __syncthreads();
        int warps = blockDim.x >> 5;
        best = lane < warps ? warpBest[lane] : -jv_infinity();
        index = lane < warps ? warpIndex[lane] : ARGMAX_NONE;
    }
}

// out[r] = the column of row r's largest value: the first on ties, NaN never chosen, 0 when no
// value is above -inf (the CPU sampler's argmax). Block (r, s) takes the s-th of `slices` equal
// column ranges; with one slice it writes out[r], otherwise its candidate for argmax_combine.
extern "C" __global__ void argmax_rows(const act_t* x, int cols, int slices, float* sliceBest, int* sliceIndex,
                                       int* out) {
    JV_DEPENDENT_PROLOGUE();
    int width = (cols + slices - 1) / slices;
    int begin = blockIdx.y * width;
    int end = min(cols, begin + width);
    float best;
    int index;
    block_argmax(x + (i64) blockIdx.x * cols, begin, end, best, index);
    if (threadIdx.x != 0) return;
    if (slices == 1) {
        out[blockIdx.x] = index == ARGMAX_NONE ? 0 : index;
    } else {
        sliceBest[blockIdx.x * slices + blockIdx.y] = best;
        sliceIndex[blockIdx.x * slices + blockIdx.y] = index;
    }
}

// The argmax of each row from its slices' candidates (argmax_rows): a warp per row.
extern "C" __global__ void argmax_combine(const float* sliceBest, const int* sliceIndex, int slices, int* out) {
    JV_DEPENDENT_PROLOGUE();
    float best = -jv_infinity();
    int index = ARGMAX_NONE;
    for (int s = threadIdx.x; s < slices; s += 32) {
        better_of(best, index, sliceBest[blockIdx.x * slices + s], sliceIndex[blockIdx.x * slices + s]);
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        better_of(best, index, __shfl_xor_sync(0xffffffffu, best, offset), __shfl_xor_sync(0xffffffffu, index, offset));
    }
    if (threadIdx.x == 0) out[blockIdx.x] = index == ARGMAX_NONE ? 0 : index;
}

// ids[t] = sampled[rows[t]] where 0 <= rows[t] < capacity: a decode step's token ids taken from the
// argmax of the step before it while that is still on the device (the engine's async scheduling).
extern "C" __global__ void take_sampled_tokens(int* ids, const int* rows, const int* sampled, int capacity, int n) {
    JV_DEPENDENT_PROLOGUE();
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n && rows[t] >= 0 && rows[t] < capacity) ids[t] = sampled[rows[t]];
}
