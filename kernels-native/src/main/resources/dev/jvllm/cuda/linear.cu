// Matrix-vector products for one-token decode steps: out[m] = W · x[m] for m ≤ GEMV_MAX_ROWS rows x,
// where cuBLAS's general GEMM reads narrow weights (a few thousand rows) at a third to a half of
// the memory bandwidth. GEMV_MAX_ROWS is 1: the host takes cuBLAS from two rows on, and each
// further row costs registers that one row needs for loads in flight. Reading W once at full bandwidth is the whole cost, so each warp streams
// one row of W in 16-byte pieces, several pieces in flight per lane, and dots it with every x row
// (which stays in L1/L2: it is a few KB). Weights and x are act_t; sums in float32.
#include "common.cuh"

#define GEMV_WARPS 4
#define GEMV_MAX_ROWS 1
#define GEMV_UNROLL 8

// The first GEMV_UNROLL of this lane's 16-byte pieces of a weight row ([k]): loaded before
// griddep_wait, while the kernel before this one finishes, since no kernel writes weights (the
// host launches the kernel after a weight conversion without an early start).
__device__ __forceinline__ void prefetch_row(const act_t* weights, int k, int lane, uint4 first[GEMV_UNROLL]) {
    constexpr int PIECE = 16 / sizeof(act_t);
    int pieces = k / PIECE;
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; u++) {
        int p = u * 32 + lane;
        first[u] = p < pieces ? *(const uint4*) (weights + (i64) p * PIECE) : make_uint4(0, 0, 0, 0);
    }
}

// One lane's share of the dots of W's row `weights` ([k]) with the m rows of x ([m, k]): the lane
// streams every 32nd 16-byte piece of the row, its first GEMV_UNROLL pieces already in `first`.
// k is a multiple of 8; rows are 16-byte aligned.
__device__ __forceinline__ void row_dots(const act_t* weights, const uint4 first[GEMV_UNROLL], const act_t* x, int m,
                                         int k, int lane, float sums[GEMV_MAX_ROWS]) {
    constexpr int PIECE = 16 / sizeof(act_t);
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++) sums[r] = 0.0f;
    int pieces = k / PIECE;
    for (int base = 0; base < pieces; base += 32 * GEMV_UNROLL) {
        uint4 loaded[GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            int p = base + u * 32 + lane;
            if (base == 0) {
                loaded[u] = first[u];
            } else {
                loaded[u] = p < pieces ? *(const uint4*) (weights + (i64) p * PIECE) : make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            int p = base + u * 32 + lane;
            if (p >= pieces) break;
            const act_t* wp = (const act_t*) &loaded[u];
            float wf[PIECE];
#pragma unroll
            for (int e = 0; e < PIECE; e++) wf[e] = act_to_float(wp[e]);
#pragma unroll
            for (int r = 0; r < GEMV_MAX_ROWS; r++) {
                if (r >= m) break;
                uint4 xs = *(const uint4*) (x + (i64) r * k + (i64) p * PIECE);
                const act_t* xp = (const act_t*) &xs;
#pragma unroll
                for (int e = 0; e < PIECE; e++) sums[r] += wf[e] * act_to_float(xp[e]);
            }
        }
    }
}

// W is [n, k] row-major, x is [m, k], out is [m, n]; k is a multiple of 8 and rows are 16-byte aligned.
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS)
gemv_rows(const act_t* w, const act_t* x, act_t* out, int m, int n, int k) {
    int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= n) return;
    uint4 first[GEMV_UNROLL];
    prefetch_row(w + (i64) row * k, k, lane, first);
    JV_DEPENDENT_PROLOGUE();
    float sums[GEMV_MAX_ROWS];
    row_dots(w + (i64) row * k, first, x, m, k, lane, sums);
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++) {
        if (r >= m) break;
        float total = warp_sum(sums[r]);
        if (lane == 0) out[(i64) r * n + row] = float_to_act(total);
    }
}

// As gemv_rows for long rows (the down projection's 14336): a block per row, each of its warps
// dotting one GEMV_WARPS-th of it, so that a warp's serial chain of loads stays as short as for
// the 4096-wide rows. k is a multiple of 8 * GEMV_WARPS.
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS)
gemv_long_rows(const act_t* w, const act_t* x, act_t* out, int n, int k) {
    __shared__ float warpSums[GEMV_WARPS];
    int row = blockIdx.x;
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    int part = k / GEMV_WARPS;
    const act_t* weights = w + (i64) row * k + (i64) warp * part;
    uint4 first[GEMV_UNROLL];
    prefetch_row(weights, part, lane, first);
    JV_DEPENDENT_PROLOGUE();
    float sums[GEMV_MAX_ROWS];
    row_dots(weights, first, x + (i64) warp * part, 1, part, lane, sums);
    float total = warp_sum(sums[0]);
    if (lane == 0) warpSums[warp] = total;
    __syncthreads();
    if (threadIdx.x == 0) {
        float sum = 0.0f;
#pragma unroll
        for (int i = 0; i < GEMV_WARPS; i++) sum += warpSums[i];
        out[row] = float_to_act(sum);
    }
}

// Up to three products of one x in one launch (a layer's Q, K and V): out_i = x · W_iᵀ (+ b_i),
// W_i [n_i, k]; the grid covers n0 + n1 + n2 rows in that order. A bias may be null (its type code
// as for load_element).
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS)
gemv_rows3(const act_t* w0, const act_t* w1, const act_t* w2, const void* b0, const void* b1, const void* b2,
           int biasType0, int biasType1, int biasType2, act_t* out0, act_t* out1, act_t* out2,
           int n0, int n1, int n2, const act_t* x, int m, int k) {
    int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    const act_t* w = w0;
    const void* bias = b0;
    int biasType = biasType0;
    act_t* out = out0;
    int n = n0;
    if (row >= n0) {
        row -= n0;
        w = w1, bias = b1, biasType = biasType1, out = out1, n = n1;
        if (row >= n1) {
            row -= n1;
            w = w2, bias = b2, biasType = biasType2, out = out2, n = n2;
            if (row >= n2) return;
        }
    }
    uint4 first[GEMV_UNROLL];
    prefetch_row(w + (i64) row * k, k, lane, first);
    JV_DEPENDENT_PROLOGUE();
    float sums[GEMV_MAX_ROWS];
    row_dots(w + (i64) row * k, first, x, m, k, lane, sums);
    float shift = bias == nullptr ? 0.0f : load_element(bias, biasType, row);
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++) {
        if (r >= m) break;
        float total = warp_sum(sums[r]);
        if (lane == 0) out[(i64) r * n + row] = float_to_act(total + shift);
    }
}

// A gated MLP's first half in one launch: out[r, j] = fn(gate_j · x_r) * (up_j · x_r), gate and up
// [n, k]; each warp reads gate row j, then up row j.
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS)
gemv_gated(const act_t* gate, const act_t* up, const act_t* x, act_t* out, int fn, int m, int n, int k) {
    int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= n) return;
    uint4 first[GEMV_UNROLL];
    prefetch_row(gate + (i64) row * k, k, lane, first);
    JV_DEPENDENT_PROLOGUE();
    float gateSums[GEMV_MAX_ROWS], upSums[GEMV_MAX_ROWS];
    row_dots(gate + (i64) row * k, first, x, m, k, lane, gateSums);
    prefetch_row(up + (i64) row * k, k, lane, first);
    row_dots(up + (i64) row * k, first, x, m, k, lane, upSums);
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++) {
        if (r >= m) break;
        float g = warp_sum(gateSums[r]);
        float u = warp_sum(upSums[r]);
        if (lane == 0) out[(i64) r * n + row] = float_to_act(apply_activation(fn, g) * u);
    }
}
