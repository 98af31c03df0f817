// Row-wise normalizations: one block per row, activations of act_t summed in float32, weights of
// any floating type.
#include "common.cuh"

// The form of rms_norm and add_rms_norm for rows of whole 16-byte pieces, at most one piece a
// thread (the host sizes the block so): each thread keeps its piece in registers between the sum
// of squares and the scaling, and loads its weights before the block's sum, so that a decode
// step's norm waits on memory once rather than three times. False (nothing done) when the row
// does not fit; the decision is the same in every thread of the block.
// With PARTS, delta is `parts` slices sliceStride elements apart (a product split over slices of
// K), summed in float32 and rounded to act_t, as the product unsplit would have been written.
template <bool ADD, bool PARTS = false>
__device__ __forceinline__ bool norm_row_in_registers(act_t* x, const act_t* delta, const void* weight, int weightType,
                                                      float eps, float weightOffset, act_t* out, int cols,
                                                      int parts = 1, i64 sliceStride = 0) {
    constexpr int PIECE = 16 / sizeof(act_t);
    act_t* row = x + (i64) blockIdx.x * cols;
    act_t* target = out + (i64) blockIdx.x * cols;
    const act_t* added = ADD ? delta + (i64) blockIdx.x * cols : nullptr;
    if (cols % PIECE != 0 || cols > PIECE * (int) blockDim.x || ((i64) row & 15) != 0 || ((i64) target & 15) != 0
        || (ADD && ((i64) added & 15) != 0)) {
        return false;
    }
    int first = threadIdx.x * PIECE;
    bool mine = first < cols;
    float scales[PIECE], values[PIECE];
    float squares = 0.0f;
    if (mine) {
#pragma unroll
        for (int e = 0; e < PIECE; e++) scales[e] = load_element(weight, weightType, first + e) + weightOffset;
        uint4 raw = *(const uint4*) (row + first);
        act_t* elements = (act_t*) &raw;
        if (ADD) {
            uint4 rawDelta = *(const uint4*) (added + first);
            const act_t* deltas = (const act_t*) &rawDelta;
            float summed[PIECE];
#pragma unroll
            for (int e = 0; e < PIECE; e++) summed[e] = act_to_float(deltas[e]);
            if (PARTS) {
                for (int p = 1; p < parts; p++) {
                    uint4 rawPart = *(const uint4*) (added + p * sliceStride + first);
                    const act_t* part = (const act_t*) &rawPart;
#pragma unroll
                    for (int e = 0; e < PIECE; e++) summed[e] += act_to_float(part[e]);
                }
#pragma unroll
                for (int e = 0; e < PIECE; e++) summed[e] = act_to_float(float_to_act(summed[e]));
            }
#pragma unroll
            for (int e = 0; e < PIECE; e++) elements[e] = float_to_act(act_to_float(elements[e]) + summed[e]);
            *(uint4*) (row + first) = raw;
        }
#pragma unroll
        for (int e = 0; e < PIECE; e++) {
            values[e] = act_to_float(elements[e]);
            squares += values[e] * values[e];
        }
    }
    float inverseRms = 1.0f / sqrtf(block_sum(squares) / cols + eps);
    if (mine) {
        uint4 result;
        act_t* results = (act_t*) &result;
#pragma unroll
        for (int e = 0; e < PIECE; e++) results[e] = float_to_act(values[e] * inverseRms * scales[e]);
        *(uint4*) (target + first) = result;
    }
    return true;
}

// out = x / sqrt(mean(x²) + eps) * (weight + weightOffset)   (Zhang & Sennrich 2019; Gemma's offset of 1)
extern "C" __global__ void rms_norm(const act_t* x, const void* weight, int weightType, float eps,
                                    float weightOffset, act_t* out, int cols) {
    JV_DEPENDENT_PROLOGUE();
    if (norm_row_in_registers<false>(const_cast<act_t*>(x), nullptr, weight, weightType, eps, weightOffset, out, cols)) {
        return;
    }
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
    if (norm_row_in_registers<true>(x, delta, weight, weightType, eps, weightOffset, out, cols)) {
        return;
    }
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

// add_rms_norm where delta is a product split over slices of K: x += the sum of `count` slices
// ([T, cols] each, sliceStride elements apart), rounded to act_t, then out = rms_norm(x). Register
// form only: CudaBackend.linearAddRmsNorm launches it only for rows that fit it (whole 16-byte
// pieces, one a thread, aligned) and composes the plain kernels otherwise.
extern "C" __global__ void add_parts_rms_norm(act_t* x, const act_t* parts, int count, long long sliceStride,
                                              const void* weight, int weightType, float eps, float weightOffset,
                                              act_t* out, int cols) {
    JV_DEPENDENT_PROLOGUE();
    norm_row_in_registers<true, true>(x, parts, weight, weightType, eps, weightOffset, out, cols, count, (i64) sliceStride);
}

// out = (x - mean) / sqrt(var + eps) * weight (+ bias); two passes over the row for a stable variance.
// Where a row is at most one 16-byte piece a thread (the host launches cols / PIECE threads, rounded up
// to a warp), each thread loads its piece once and keeps it for both passes and the output; otherwise
// the row is read three times an element at a time. With ADD, x += delta first (the sum rounded to act_t,
// written back, as add and layer_norm apart would); delta may be out itself: every element of delta is
// read before the block's first sum and every one of out written after its last.
template <bool ADD>
__device__ __forceinline__ void layer_norm_row(act_t* x, const act_t* delta, const void* weight, int weightType,
                                               const void* bias, int biasType, float eps, act_t* out, int cols) {
    act_t* row = x + (i64) blockIdx.x * cols;
    const act_t* added = ADD ? delta + (i64) blockIdx.x * cols : nullptr;
    act_t* target = out + (i64) blockIdx.x * cols;
    constexpr int PIECE = 16 / sizeof(act_t);
    if (cols / PIECE <= (int) blockDim.x && whole_pieces(cols, x, out, added)) {
        bool mine = (int) threadIdx.x < cols / PIECE;
        int c = threadIdx.x * PIECE;
        uint4 piece = mine ? ((const uint4*) row)[threadIdx.x] : make_uint4(0, 0, 0, 0);
        act_t* values = (act_t*) &piece;
        if (ADD && mine) {
            uint4 addend = ((const uint4*) added)[threadIdx.x];
            const act_t* deltas = (const act_t*) &addend;
#pragma unroll
            for (int e = 0; e < PIECE; e++) values[e] = float_to_act(act_to_float(values[e]) + act_to_float(deltas[e]));
            ((uint4*) row)[threadIdx.x] = piece;
        }
        float sum = 0.0f;
#pragma unroll
        for (int e = 0; e < PIECE; e++) sum += act_to_float(values[e]);
        float mean = block_sum(sum) / cols;
        float squares = 0.0f;
        if (mine) {
#pragma unroll
            for (int e = 0; e < PIECE; e++) {
                float d = act_to_float(values[e]) - mean;
                squares += d * d;
            }
        }
        float inverseStd = 1.0f / sqrtf(block_sum(squares) / cols + eps);
        if (!mine) return;
        uint4 result;
#pragma unroll
        for (int e = 0; e < PIECE; e++) {
            float v = (act_to_float(values[e]) - mean) * inverseStd * load_element(weight, weightType, c + e);
            ((act_t*) &result)[e] = float_to_act(bias == nullptr ? v : v + load_element(bias, biasType, c + e));
        }
        ((uint4*) target)[threadIdx.x] = result;
        return;
    }
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        if (ADD) row[i] = float_to_act(act_to_float(row[i]) + act_to_float(added[i]));
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

extern "C" __global__ void layer_norm(const act_t* x, const void* weight, int weightType, const void* bias,
                                      int biasType, float eps, act_t* out, int cols) {
    JV_DEPENDENT_PROLOGUE();
    layer_norm_row<false>(const_cast<act_t*>(x), nullptr, weight, weightType, bias, biasType, eps, out, cols);
}

// x += delta, then out = layer_norm(x): a post-norm layer's residual add and its norm in one pass (BART's
// decoder); out may be delta.
extern "C" __global__ void add_layer_norm(act_t* x, const act_t* delta, const void* weight, int weightType,
                                          const void* bias, int biasType, float eps, act_t* out, int cols) {
    JV_DEPENDENT_PROLOGUE();
    layer_norm_row<true>(x, delta, weight, weightType, bias, biasType, eps, out, cols);
}
