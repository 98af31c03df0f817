// Products with 4-bit weights (GPTQ's and AWQ's, repacked at load as Int4Weight lays them out): row r
// of W [n, k] is k / 8 32-bit words, packed input 8w + j in bits 4j of word w; each run of
// groupSize packed inputs of a row shares a (scale, offset) pair, the element being q × scale + offset.
// Where the checkpoint's inputs were reordered (GPTQ's act-order), order[i] is the input at packed
// position i. For a few rows of x, warps stream W at a quarter of a 16-bit weight's bytes and dot it
// with x as gemv_rows does; for more rows the host dequantizes W into a scratch matrix for cuBLAS.
#include "common.cuh"

#define INT4_WARPS 4
// 16-byte pieces of weights (32 inputs each) a lane has in flight.
#ifndef INT4_UNROLL
#define INT4_UNROLL 4
#endif
// The most rows of x one launch of gemv_int4 takes (its sums are registers, one a row).
#define INT4_MAX_TOKENS 8

// q as a float: q in the low mantissa bits of 2^23, less 2^23 (exact for q < 2^23).
__device__ __forceinline__ float nibble(unsigned int word, int j) {
    return __uint_as_float(((word >> (4 * j)) & 0xfu) | 0x4b000000u) - 8388608.0f;
}

// Eight consecutive elements of x as floats (16-byte aligned).
__device__ __forceinline__ void load_eight(const act_t* x, float v[8]) {
#if JV_ACT_TYPE == JV_F32
    float4 a = *(const float4*) x, b = *(const float4*) (x + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
#else
    uint4 raw = *(const uint4*) x;
    unsigned int pairs[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        v[2 * i] = act_to_float((act_t) (pairs[i] & 0xffffu));
        v[2 * i + 1] = act_to_float((act_t) (pairs[i] >> 16));
    }
#endif
}

struct Int4Pieces {
    uint4 piece[INT4_UNROLL];
};

// A batch of a lane's pieces of its part of a weight row: INT4_UNROLL pieces, every 32nd from base.
__device__ __forceinline__ Int4Pieces int4_pieces(const unsigned int* row, int base, int end, int lane) {
    Int4Pieces batch;
#pragma unroll
    for (int u = 0; u < INT4_UNROLL; u++) {
        int p = base + u * 32 + lane;
        batch.piece[u] = p < end ? *(const uint4*) (row + 4 * (i64) p) : make_uint4(0, 0, 0, 0);
    }
    return batch;
}

// Adds word w of a row (inputs 8w .. 8w + 7 in packed order) dotted with each row of x to sums.
__device__ __forceinline__ void add_word(float* sums, unsigned int word, int w, float2 group, const act_t* x, int k,
                                         const int* order, int tokens) {
    float q[8];
#pragma unroll
    for (int j = 0; j < 8; j++) q[j] = nibble(word, j);
    int inputs[8];
    if (order != nullptr) {
        int4 a = *(const int4*) (order + 8 * w), b = *(const int4*) (order + 8 * w + 4);
        inputs[0] = a.x, inputs[1] = a.y, inputs[2] = a.z, inputs[3] = a.w;
        inputs[4] = b.x, inputs[5] = b.y, inputs[6] = b.z, inputs[7] = b.w;
    }
#pragma unroll
    for (int t = 0; t < INT4_MAX_TOKENS; t++) {
        if (t >= tokens) break;
        const act_t* xt = x + (i64) t * k;
        float v[8];
        if (order == nullptr) {
            load_eight(xt + 8 * w, v);
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] = act_to_float(xt[inputs[j]]);
        }
        float qx = 0.0f, sx = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            qx = fmaf(q[j], v[j], qx);
            sx += v[j];
        }
        sums[t] = fmaf(group.x, qx, fmaf(group.y, sx, sums[t]));
    }
}

// The dots of the warp's row of W with each row of x ([tokens, k]), whole in every lane of the row's
// first warp; part and valid as for the write. The first pieces are asked for before the wait on the
// kernel ahead (weights never change during a pass). Every thread of the block calls it.
__device__ __forceinline__ void int4_row_dots(const unsigned int* words, const float2* params, const int* order,
                                              const act_t* x, int tokens, int n, int k, int groupSize, int split,
                                              float* sums, int& row, bool& valid) {
    __shared__ float partials[INT4_WARPS][INT4_MAX_TOKENS];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    row = blockIdx.x * (INT4_WARPS / split) + warp / split;
    valid = row < n;
    int pieces = k / 32, part = warp % split;
    int start = part * pieces / split, end = (part + 1) * pieces / split;
    const unsigned int* weights = words + (i64) row * (k / 8);
    const float2* groups = params + (i64) row * (k / groupSize);
    Int4Pieces batch;
    if (valid) batch = int4_pieces(weights, start, end, lane);
    JV_DEPENDENT_PROLOGUE();
#pragma unroll
    for (int t = 0; t < INT4_MAX_TOKENS; t++) sums[t] = 0.0f;
    if (valid) {
        for (int base = start; base < end; base += 32 * INT4_UNROLL) {
            if (base != start) batch = int4_pieces(weights, base, end, lane);
#pragma unroll
            for (int u = 0; u < INT4_UNROLL; u++) {
                int p = base + u * 32 + lane;
                if (p >= end) break;
                uint4 piece = batch.piece[u];
                unsigned int four[4] = {piece.x, piece.y, piece.z, piece.w};
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    int w = 4 * p + c;
                    add_word(sums, four[c], w, groups[8 * w / groupSize], x, k, order, tokens);
                }
            }
        }
    }
#pragma unroll
    for (int t = 0; t < INT4_MAX_TOKENS; t++) {
        if (t < tokens) sums[t] = warp_sum(sums[t]);
    }
    if (split == 1) return;
    if (lane == 0) {
#pragma unroll
        for (int t = 0; t < INT4_MAX_TOKENS; t++) partials[warp][t] = sums[t];
    }
    __syncthreads();
    int first = warp - part;
#pragma unroll
    for (int t = 0; t < INT4_MAX_TOKENS; t++) {
        float total = 0.0f;
        for (int i = first; i < first + split; i++) total += partials[i][t];
        sums[t] = total;
    }
}

// out[t, r] = W_r · x_t (+ bias_r) for the rows x_t of x ([tokens, k], tokens <= INT4_MAX_TOKENS),
// out [tokens, outStride]; bias may be null (its type code as for load_element). `split` warps share
// a row, each a split-th of its 32-input pieces.
extern "C" __global__ void __launch_bounds__(32 * INT4_WARPS)
gemv_int4(const unsigned int* words, const float2* params, const int* order, const act_t* x, int tokens, act_t* out,
          int outStride, const void* bias, int biasType, int n, int k, int groupSize, int split) {
    // JV_DEPENDENT_PROLOGUE in int4_row_dots
    float sums[INT4_MAX_TOKENS];
    int row;
    bool valid;
    int4_row_dots(words, params, order, x, tokens, n, k, groupSize, split, sums, row, valid);
    if (!valid || (threadIdx.x & 31) != 0 || (threadIdx.x >> 5) % split != 0) return;
    float b = bias == nullptr ? 0.0f : load_element(bias, biasType, row);
#pragma unroll
    for (int t = 0; t < INT4_MAX_TOKENS; t++) {
        if (t < tokens) out[(i64) t * outStride + row] = float_to_act(sums[t] + b);
    }
}

// W as act_t [n, k] (the checkpoint's input order): a thread a word, striding over the grid.
extern "C" __global__ void dequantize_int4(const unsigned int* words, const float2* params, const int* order, act_t* out,
                                           int n, int k, int groupSize) {
    JV_DEPENDENT_PROLOGUE();
    i64 total = (i64) n * (k / 8);
    for (i64 w = (i64) blockIdx.x * blockDim.x + threadIdx.x; w < total; w += (i64) gridDim.x * blockDim.x) {
        i64 row = w / (k / 8);
        int column = (int) (w % (k / 8)) * 8;
        unsigned int word = words[w];
        float2 group = params[row * (k / groupSize) + column / groupSize];
        act_t* target = out + row * k;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            act_t value = float_to_act(fmaf(nibble(word, j), group.x, group.y));
            target[order == nullptr ? column + j : order[column + j]] = value;
        }
    }
}
