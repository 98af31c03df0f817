// Matrix-vector products for decode steps: out[m] = W · x[m] for a few rows x (M ≤ GEMV_MAX_ROWS),
// where cuBLAS's general GEMM reads narrow weights (a few thousand rows) at a third to a half of
// the memory bandwidth. Reading W once at full bandwidth is the whole cost, so each warp streams
// one row of W in 16-byte pieces, several pieces in flight per lane, and dots it with every x row
// (which stays in L1/L2: it is a few KB). Weights and x are act_t; sums in float32.
#include "common.cuh"

#define GEMV_WARPS 4
#define GEMV_MAX_ROWS 8
#define GEMV_UNROLL 8

// W is [n, k] row-major, x is [m, k], out is [m, n]; k is a multiple of 8 and rows are 16-byte aligned.
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS)
gemv_rows(const act_t* w, const act_t* x, act_t* out, int m, int n, int k) {
    constexpr int PIECE = 16 / sizeof(act_t);
    int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= n) return;
    const act_t* weights = w + (i64) row * k;
    float sums[GEMV_MAX_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++) sums[r] = 0.0f;
    int pieces = k / PIECE;
    for (int base = 0; base < pieces; base += 32 * GEMV_UNROLL) {
        uint4 loaded[GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            int p = base + u * 32 + lane;
            loaded[u] = p < pieces ? *(const uint4*) (weights + (i64) p * PIECE) : make_uint4(0, 0, 0, 0);
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
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++) {
        if (r >= m) break;
        float total = warp_sum(sums[r]);
        if (lane == 0) out[(i64) r * n + row] = float_to_act(total);
    }
}
