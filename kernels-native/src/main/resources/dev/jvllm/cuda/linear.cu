// Matrix-vector products for one-token decode steps: out = W · x for one row x, where cuBLAS's
// general GEMM reads narrow weights (a few thousand rows) at a third to a half of the memory
// bandwidth. The host takes cuBLAS from two rows on. Reading W once at full bandwidth is the whole
// cost, so warps stream W's rows in 16-byte pieces, several pieces in flight per lane, and dot them
// with x (which stays in L1/L2: it is a few KB). Weights and x are act_t; sums in float32.
#include "common.cuh"

#define GEMV_WARPS 4
// Pieces a lane has in flight (both tunable at build time, jvllm.cuda.kernelDefines, for A/B runs).
#ifndef GEMV_UNROLL
#define GEMV_UNROLL 8
#endif
// Blocks an SM keeps resident: at most 64 registers a thread, so that a 4096-row product's warps
// (4224 on an H100) are all resident at once instead of leaving a partial second wave.
#ifndef GEMV_MIN_BLOCKS
#define GEMV_MIN_BLOCKS 8
#endif

// 1: each gemv warp asks for its first GEMV_UNROLL pieces of weights before it waits on the kernel
// ahead (first_weight_pieces, called ahead of JV_DEPENDENT_PROLOGUE). Weights never change during a
// forward pass, so under a programmatic dependent launch a product's first loads overlap the end
// of the kernel before it; without such a launch the wait returns at once. 0: after the wait.
#ifndef GEMV_PRELOAD
#define GEMV_PRELOAD 1
#endif

// One batch of a lane's pieces of a weight row: GEMV_UNROLL 16-byte pieces, every 32nd from `base`.
struct WeightPieces {
    uint4 piece[GEMV_UNROLL];
};

__device__ __forceinline__ WeightPieces weight_pieces(const act_t* weights, int pieces, int base, int lane) {
    constexpr int PIECE = 16 / sizeof(act_t);
    WeightPieces batch;
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; u++) {
        int p = base + u * 32 + lane;
        batch.piece[u] = p < pieces ? *(const uint4*) (weights + (i64) p * PIECE) : make_uint4(0, 0, 0, 0);
    }
    return batch;
}

// The first batch of a lane's share of a weight row ([k]), for lane_dot; the only memory a gemv
// kernel may read before JV_DEPENDENT_PROLOGUE (KernelSourcesTest knows the name).
__device__ __forceinline__ WeightPieces first_weight_pieces(const act_t* weights, int k, int lane) {
#if !GEMV_PRELOAD
    griddep_wait();
#endif
    return weight_pieces(weights, k / (16 / (int) sizeof(act_t)), 0, lane);
}

// Adds a batch's pieces dotted with x's matching pieces (which stay in L1/L2: x is a few KB) to sum.
__device__ __forceinline__ void add_batch_dot(float& sum, const WeightPieces& batch, const act_t* x, int pieces, int base,
                                              int lane) {
    constexpr int PIECE = 16 / sizeof(act_t);
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; u++) {
        int p = base + u * 32 + lane;
        if (p >= pieces) break;
        const act_t* wp = (const act_t*) &batch.piece[u];
        uint4 xs = *(const uint4*) (x + (i64) p * PIECE);
        const act_t* xp = (const act_t*) &xs;
#pragma unroll
        for (int e = 0; e < PIECE; e++) sum += act_to_float(wp[e]) * act_to_float(xp[e]);
    }
}

// One lane's share of the dot of a weight row ([k]) with x ([k]): the lane streams every 32nd
// 16-byte piece of the row, GEMV_UNROLL pieces in flight, the first batch already asked for
// (first_weight_pieces). k is a multiple of 8; rows are 16-byte aligned.
__device__ __forceinline__ float lane_dot(const act_t* weights, const act_t* x, int k, int lane, const WeightPieces& first) {
    int pieces = k / (16 / (int) sizeof(act_t));
    float sum = 0.0f;
    add_batch_dot(sum, first, x, pieces, 0, lane);
    for (int base = 32 * GEMV_UNROLL; base < pieces; base += 32 * GEMV_UNROLL) {
        add_batch_dot(sum, weight_pieces(weights, pieces, base, lane), x, pieces, base, lane);
    }
    return sum;
}

__device__ __forceinline__ float lane_dot(const act_t* weights, const act_t* x, int k, int lane) {
    return lane_dot(weights, x, k, lane, first_weight_pieces(weights, k, lane));
}

// The part of a weight row a warp dots: a block takes GEMV_WARPS / split rows, and `split`
// consecutive warps share a row, each a split-th of its k (a multiple of 8). Splitting keeps a
// warp's serial chain of loads short for long rows and makes more, smaller pieces of work, so
// that the last wave of a product leaves fewer SMs idle.
struct RowPart {
    int row;     // of the block's rows, counted over the whole grid
    int offset;  // of the warp's part within the row
    int width;   // of the part
};

__device__ __forceinline__ RowPart row_part(int k, int split) {
    int warp = threadIdx.x >> 5;
    int width = k / split;
    return {(int) blockIdx.x * (GEMV_WARPS / split) + warp / split, (warp % split) * width, width};
}

// The whole dots of each of the block's rows from its warps' partial dots (two at once, for a gated
// pair), in lane 0 of the row's first warp. Every thread of the block calls it (it synchronizes).
__device__ __forceinline__ void row_totals(float& a, float& b, int split) {
    __shared__ float2 partials[GEMV_WARPS];
    int warp = threadIdx.x >> 5;
    a = warp_sum(a);
    b = warp_sum(b);
    if (split == 1) return;
    if ((threadIdx.x & 31) == 0) partials[warp] = make_float2(a, b);
    __syncthreads();
    a = 0.0f;
    b = 0.0f;
    for (int i = warp - warp % split; i < warp - warp % split + split; i++) {
        a += partials[i].x;
        b += partials[i].y;
    }
}

// Asks L2 for the first prefetchBytes of the warp's part of a weight row ([width]), one bulk
// request from lane 0. Called before JV_DEPENDENT_PROLOGUE: weights never change during a forward
// pass, so under a programmatic dependent launch the product starts streaming its weights while
// the kernel ahead of it (often a short, latency-bound one) is still running. A prefetch reads no
// data into the kernel and so cannot race; the host passes 0 when launches are not programmatic.
__device__ __forceinline__ void prefetch_row_part(const act_t* part, int width, int prefetchBytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    int bytes = min(width * (int) sizeof(act_t), prefetchBytes) & ~15;
    if ((threadIdx.x & 31) == 0 && bytes > 0) {
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(part), "r"(bytes) : "memory");
    }
#endif
}

__device__ __forceinline__ bool writes_row(int split) {
    return (threadIdx.x & 31) == 0 && (threadIdx.x >> 5) % split == 0;
}

// The whole dot of the warp's row of W ([n, k] row-major) with x ([k]), in the lane that
// writes_row picks; the warp's part and whether its row exists come back for the write. The first
// weights are asked for before the wait on the kernel ahead; every thread of the block calls it.
__device__ __forceinline__ float gemv_row_dot(const act_t* w, const act_t* x, int n, int k, int split, int prefetchBytes,
                                              RowPart& part, bool& valid) {
    part = row_part(k, split);
    valid = part.row < n;
    const act_t* weights = w + (i64) part.row * k + part.offset;
    int lane = threadIdx.x & 31;
    WeightPieces first;
    if (valid) {
        prefetch_row_part(weights, part.width, prefetchBytes);
        first = first_weight_pieces(weights, part.width, lane);
    }
    JV_DEPENDENT_PROLOGUE();
    float dot = valid ? lane_dot(weights, x + part.offset, part.width, lane, first) : 0.0f;
    float unused = 0.0f;
    row_totals(dot, unused, split);
    return dot;
}

// out = W · x for one row x ([k]): W is [n, k] row-major, out [n].
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
gemv_rows(const act_t* w, const act_t* x, act_t* out, int n, int k, int split, int prefetchBytes) {
    // JV_DEPENDENT_PROLOGUE in gemv_row_dot
    RowPart part;
    bool valid;
    float dot = gemv_row_dot(w, x, n, k, split, prefetchBytes, part, valid);
    if (valid && writes_row(split)) out[part.row] = float_to_act(dot);
}

// Up to three products of one x in one launch (a layer's Q, K and V): out_i = W_i · x (+ b_i),
// W_i [n_i, k]; the grid covers n0 + n1 + n2 rows in that order. A bias may be null (its type code
// as for load_element).
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
gemv_rows3(const act_t* w0, const act_t* w1, const act_t* w2, const void* b0, const void* b1, const void* b2,
           int biasType0, int biasType1, int biasType2, act_t* out0, act_t* out1, act_t* out2,
           int n0, int n1, int n2, const act_t* x, int k, int split, int prefetchBytes) {
    RowPart part = row_part(k, split);
    int row = part.row;
    const act_t* w = w0;
    const void* bias = b0;
    int biasType = biasType0;
    act_t* out = out0;
    bool valid = true;
    if (row >= n0) {
        row -= n0;
        w = w1, bias = b1, biasType = biasType1, out = out1;
        if (row >= n1) {
            row -= n1;
            w = w2, bias = b2, biasType = biasType2, out = out2;
            valid = row < n2;
        }
    }
    const act_t* weights = w + (i64) row * k + part.offset;
    int lane = threadIdx.x & 31;
    WeightPieces first;
    if (valid) {
        prefetch_row_part(weights, part.width, prefetchBytes);
        first = first_weight_pieces(weights, part.width, lane);
    }
    JV_DEPENDENT_PROLOGUE();
    float dot = valid ? lane_dot(weights, x + part.offset, part.width, lane, first) : 0.0f;
    float unused = 0.0f;
    row_totals(dot, unused, split);
    if (valid && writes_row(split)) {
        out[row] = float_to_act(dot + (bias == nullptr ? 0.0f : load_element(bias, biasType, row)));
    }
}

// A gated MLP's first half for one row x in one launch: out[j] = fn(gate_j · x) * (up_j · x), gate
// and up [n, k]; each warp reads its part of gate row j, then of up row j.
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
gemv_gated(const act_t* gate, const act_t* up, const act_t* x, act_t* out, int fn, int n, int k, int split,
           int prefetchBytes) {
    RowPart part = row_part(k, split);
    bool valid = part.row < n;
    int lane = threadIdx.x & 31;
    i64 at = (i64) part.row * k + part.offset;
    WeightPieces firstGate;
    if (valid) {
        prefetch_row_part(gate + at, part.width, prefetchBytes);
        prefetch_row_part(up + at, part.width, prefetchBytes);
        firstGate = first_weight_pieces(gate + at, part.width, lane);
    }
    JV_DEPENDENT_PROLOGUE();
    float g = valid ? lane_dot(gate + at, x + part.offset, part.width, lane, firstGate) : 0.0f;
    float u = valid ? lane_dot(up + at, x + part.offset, part.width, lane) : 0.0f;
    row_totals(g, u, split);
    if (valid && writes_row(split)) out[part.row] = float_to_act(apply_activation(fn, g) * u);
}

// out = fn(W · x (+ bias)) for one row x: a linear layer and its activation in one launch (a non-gated
// feed-forward's first product: GPT-2, OPT, BLOOM, BART), rounded once; bias may be null (its type
// code as for load_element), fn as apply_activation numbers it.
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
gemv_rows_activated(const act_t* w, const void* bias, int biasType, const act_t* x, act_t* out, int fn, int n, int k,
                    int split, int prefetchBytes) {
    // JV_DEPENDENT_PROLOGUE in gemv_row_dot
    RowPart part;
    bool valid;
    float dot = gemv_row_dot(w, x, n, k, split, prefetchBytes, part, valid);
    if (valid && writes_row(split)) {
        float value = dot + (bias == nullptr ? 0.0f : load_element(bias, biasType, part.row));
        out[part.row] = float_to_act(apply_activation(fn, value));
    }
}
