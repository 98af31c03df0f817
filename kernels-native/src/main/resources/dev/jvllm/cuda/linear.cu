// Matrix-vector products for one-token decode steps: out = W · x for one row x, where cuBLAS's
// general GEMM reads narrow weights (a few thousand rows) at a third to a half of the memory
// bandwidth. The host takes cuBLAS from two rows on. Reading W once at full bandwidth is the whole
// cost, so warps stream W's rows in 16-byte pieces, several pieces in flight per lane, and dot them
// with x (which stays in L1/L2: it is a few KB). Weights and x are act_t; sums in float32.
#include "common.cuh"

#define GEMV_WARPS 4
#define GEMV_UNROLL 8
// Blocks an SM keeps resident: at most 64 registers a thread, so that a 4096-row product's warps
// (4224 on an H100) are all resident at once instead of leaving a partial second wave.
#define GEMV_MIN_BLOCKS 8

// A lane's batch of weight pieces of a row: every 32nd 16-byte piece from `base` on, GEMV_UNROLL
// of them (zeros past the row's `pieces`). Rows are 16-byte aligned.
__device__ __forceinline__ void load_pieces(uint4 (&loaded)[GEMV_UNROLL], const act_t* weights, int pieces, int base,
                                            int lane) {
    constexpr int PIECE = 16 / sizeof(act_t);
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; u++) {
        int p = base + u * 32 + lane;
        loaded[u] = p < pieces ? *(const uint4*) (weights + (i64) p * PIECE) : make_uint4(0, 0, 0, 0);
    }
}

// sum plus the dot of a batch of weight pieces (load_pieces) with the same pieces of x.
__device__ __forceinline__ float dot_pieces(const uint4 (&loaded)[GEMV_UNROLL], const act_t* x, int pieces, int base,
                                            int lane, float sum) {
    constexpr int PIECE = 16 / sizeof(act_t);
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; u++) {
        int p = base + u * 32 + lane;
        if (p >= pieces) break;
        const act_t* wp = (const act_t*) &loaded[u];
        uint4 xs = *(const uint4*) (x + (i64) p * PIECE);
        const act_t* xp = (const act_t*) &xs;
#pragma unroll
        for (int e = 0; e < PIECE; e++) sum += act_to_float(wp[e]) * act_to_float(xp[e]);
    }
    return sum;
}

// One lane's share of the dot of a weight row ([k]) with x ([k]): the lane streams every 32nd
// 16-byte piece of the row, GEMV_UNROLL pieces in flight. k is a multiple of 8.
__device__ __forceinline__ float lane_dot(const act_t* weights, const act_t* x, int k, int lane) {
    constexpr int PIECE = 16 / sizeof(act_t);
    int pieces = k / PIECE;
    float sum = 0.0f;
    for (int base = 0; base < pieces; base += 32 * GEMV_UNROLL) {
        uint4 loaded[GEMV_UNROLL];
        load_pieces(loaded, weights, pieces, base, lane);
        sum = dot_pieces(loaded, x, pieces, base, lane, sum);
    }
    return sum;
}

// lane_dot with the first batch of pieces already loaded (load_pieces from 0), so that a kernel
// can start its weight stream before work the dot waits for; the same sums in the same order.
__device__ __forceinline__ float lane_dot_from(const uint4 (&first)[GEMV_UNROLL], const act_t* weights, const act_t* x,
                                               int k, int lane) {
    constexpr int PIECE = 16 / sizeof(act_t);
    int pieces = k / PIECE;
    float sum = dot_pieces(first, x, pieces, 0, lane, 0.0f);
    for (int base = 32 * GEMV_UNROLL; base < pieces; base += 32 * GEMV_UNROLL) {
        uint4 loaded[GEMV_UNROLL];
        load_pieces(loaded, weights, pieces, base, lane);
        sum = dot_pieces(loaded, x, pieces, base, lane, sum);
    }
    return sum;
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

// out = W · x for one row x ([k]): W is [n, k] row-major, out [n].
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
gemv_rows(const act_t* w, const act_t* x, act_t* out, int n, int k, int split, int prefetchBytes) {
    RowPart part = row_part(k, split);
    bool valid = part.row < n;
    if (valid) prefetch_row_part(w + (i64) part.row * k + part.offset, part.width, prefetchBytes);
    JV_DEPENDENT_PROLOGUE();
    float dot = valid ? lane_dot(w + (i64) part.row * k + part.offset, x + part.offset, part.width, threadIdx.x & 31) : 0.0f;
    float unused = 0.0f;
    row_totals(dot, unused, split);
    if (valid && writes_row(split)) out[part.row] = float_to_act(dot);
}

// The product a row of gemv_rows3's grid falls in (n0 rows of the first, then n1, then n2), its
// weights, bias and output, and the row within it; not valid past the last.
struct Projection {
    const act_t* w;
    const void* bias;
    int biasType;
    act_t* out;
    int row;
    bool valid;
};

__device__ __forceinline__ Projection projection_of(int row, const act_t* w0, const act_t* w1, const act_t* w2,
                                                    const void* b0, const void* b1, const void* b2, int biasType0,
                                                    int biasType1, int biasType2, act_t* out0, act_t* out1,
                                                    act_t* out2, int n0, int n1, int n2) {
    Projection p = {w0, b0, biasType0, out0, row, true};
    if (p.row >= n0) {
        p.row -= n0;
        p.w = w1, p.bias = b1, p.biasType = biasType1, p.out = out1;
        if (p.row >= n1) {
            p.row -= n1;
            p.w = w2, p.bias = b2, p.biasType = biasType2, p.out = out2;
            p.valid = p.row < n2;
        }
    }
    return p;
}

// Writes a row's whole dot (row_totals) plus its bias, from the lane that holds it.
__device__ __forceinline__ void write_projection(const Projection& p, float dot, int split) {
    if (p.valid && writes_row(split)) {
        p.out[p.row] = float_to_act(dot + (p.bias == nullptr ? 0.0f : load_element(p.bias, p.biasType, p.row)));
    }
}

// Up to three products of one x in one launch (a layer's Q, K and V): out_i = W_i · x (+ b_i),
// W_i [n_i, k]; the grid covers n0 + n1 + n2 rows in that order. A bias may be null (its type code
// as for load_element).
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
gemv_rows3(const act_t* w0, const act_t* w1, const act_t* w2, const void* b0, const void* b1, const void* b2,
           int biasType0, int biasType1, int biasType2, act_t* out0, act_t* out1, act_t* out2,
           int n0, int n1, int n2, const act_t* x, int k, int split, int prefetchBytes) {
    RowPart part = row_part(k, split);
    Projection p = projection_of(part.row, w0, w1, w2, b0, b1, b2, biasType0, biasType1, biasType2, out0, out1, out2,
                                 n0, n1, n2);
    if (p.valid) prefetch_row_part(p.w + (i64) p.row * k + part.offset, part.width, prefetchBytes);
    JV_DEPENDENT_PROLOGUE();
    float dot = p.valid ? lane_dot(p.w + (i64) p.row * k + part.offset, x + part.offset, part.width, threadIdx.x & 31)
                        : 0.0f;
    float unused = 0.0f;
    row_totals(dot, unused, split);
    write_projection(p, dot, split);
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
    if (valid) {
        prefetch_row_part(gate + at, part.width, prefetchBytes);
        prefetch_row_part(up + at, part.width, prefetchBytes);
    }
    JV_DEPENDENT_PROLOGUE();
    float g = valid ? lane_dot(gate + at, x + part.offset, part.width, lane) : 0.0f;
    float u = valid ? lane_dot(up + at, x + part.offset, part.width, lane) : 0.0f;
    row_totals(g, u, split);
    if (valid && writes_row(split)) out[part.row] = float_to_act(apply_activation(fn, g) * u);
}

// ---- a pre-norm layer's RMSNorm and residual add inside its one-row products ------------------
// A decode step at one token spent a kernel on each RMSNorm (add_rms_norm: a few microseconds,
// all latency) between the products. Here the products that read the norm compute it themselves
// (rms_norm_gemv_rows3, rms_norm_gemv_gated), each block for itself while its first weights load,
// and the products that end a branch add into the residual stream (gemv_rows_add).

// The RMSNorm of one row x ([k]) into the block's dynamic shared memory (k act_t, sized by the
// host), returned; block 0 also writes it to `normed`. Every value is the one rms_norm writes:
// the same rounding, and the sum of squares reduced in its order. rms_norm's block (norms.cu's
// norm_row_in_registers, which the host's row of at most 1024 16-byte pieces takes) gives each
// thread one piece and sums its warps, then their sums; each warp of this block plays every
// GEMV_WARPS-th of those warps, its threads taking the same pieces (thread t: t, t + blockDim.x,
// ...) in both loops. Every thread calls it (it synchronizes). x and normed are 16-byte aligned.
__device__ __forceinline__ const act_t* rms_norm_to_shared(const act_t* x, const void* weight, int weightType,
                                                           float eps, float weightOffset, act_t* normed, int k) {
    constexpr int PIECE = 16 / sizeof(act_t);
    extern __shared__ uint4 normalized[];
    __shared__ float warpSums[32];
    int lane = threadIdx.x & 31;
    int pieces = k / PIECE;
    int warps = max((pieces + 31) / 32, 1);  // rms_norm's: its block is rowThreads(pieces) wide
    for (int w = threadIdx.x >> 5; w < warps; w += GEMV_WARPS) {
        int p = w * 32 + lane;
        float squares = 0.0f;
        if (p < pieces) {
            uint4 raw = *(const uint4*) (x + (i64) p * PIECE);
            normalized[p] = raw;
            const act_t* elements = (const act_t*) &raw;
#pragma unroll
            for (int e = 0; e < PIECE; e++) {
                float v = act_to_float(elements[e]);
                squares += v * v;
            }
        }
        squares = warp_sum(squares);
        if (lane == 0) warpSums[w] = squares;
    }
    __syncthreads();
    float inverseRms = 1.0f / sqrtf(warp_sum(lane < warps ? warpSums[lane] : 0.0f) / k + eps);
    for (int p = threadIdx.x; p < pieces; p += blockDim.x) {
        uint4 raw = normalized[p];
        act_t* elements = (act_t*) &raw;
#pragma unroll
        for (int e = 0; e < PIECE; e++) {
            float scale = load_element(weight, weightType, (i64) p * PIECE + e) + weightOffset;
            elements[e] = float_to_act(act_to_float(elements[e]) * inverseRms * scale);
        }
        normalized[p] = raw;
        if (blockIdx.x == 0) *(uint4*) (normed + (i64) p * PIECE) = raw;
    }
    __syncthreads();
    return (const act_t*) normalized;
}

// gemv_rows3 of normed = rms_norm(x) (weight + weightOffset, eps), computed by every block for
// itself after its warps have asked for their first weights, so that the norm's latency hides
// under the weight stream; normed is written too. Dynamic shared memory: k act_t.
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
rms_norm_gemv_rows3(const act_t* w0, const act_t* w1, const act_t* w2, const void* b0, const void* b1, const void* b2,
                    int biasType0, int biasType1, int biasType2, act_t* out0, act_t* out1, act_t* out2,
                    int n0, int n1, int n2, const act_t* x, const void* normWeight, int normWeightType, float eps,
                    float weightOffset, act_t* normed, int k, int split, int prefetchBytes) {
    constexpr int PIECE = 16 / sizeof(act_t);
    RowPart part = row_part(k, split);
    Projection p = projection_of(part.row, w0, w1, w2, b0, b1, b2, biasType0, biasType1, biasType2, out0, out1, out2,
                                 n0, n1, n2);
    const act_t* w = p.w + (i64) p.row * k + part.offset;
    if (p.valid) prefetch_row_part(w, part.width, prefetchBytes);
    JV_DEPENDENT_PROLOGUE();
    int lane = threadIdx.x & 31;
    uint4 first[GEMV_UNROLL];
    load_pieces(first, w, p.valid ? part.width / PIECE : 0, 0, lane);
    const act_t* normalized = rms_norm_to_shared(x, normWeight, normWeightType, eps, weightOffset, normed, k);
    float dot = p.valid ? lane_dot_from(first, w, normalized + part.offset, part.width, lane) : 0.0f;
    float unused = 0.0f;
    row_totals(dot, unused, split);
    write_projection(p, dot, split);
}

// gemv_gated of normed = rms_norm(x), as rms_norm_gemv_rows3 computes it (the gate's first weights
// asked for before the norm). Dynamic shared memory: k act_t.
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
rms_norm_gemv_gated(const act_t* gate, const act_t* up, const act_t* x, const void* normWeight, int normWeightType,
                    float eps, float weightOffset, act_t* normed, act_t* out, int fn, int n, int k, int split,
                    int prefetchBytes) {
    constexpr int PIECE = 16 / sizeof(act_t);
    RowPart part = row_part(k, split);
    bool valid = part.row < n;
    int lane = threadIdx.x & 31;
    i64 at = (i64) part.row * k + part.offset;
    if (valid) {
        prefetch_row_part(gate + at, part.width, prefetchBytes);
        prefetch_row_part(up + at, part.width, prefetchBytes);
    }
    JV_DEPENDENT_PROLOGUE();
    uint4 first[GEMV_UNROLL];
    load_pieces(first, gate + at, valid ? part.width / PIECE : 0, 0, lane);
    const act_t* normalized = rms_norm_to_shared(x, normWeight, normWeightType, eps, weightOffset, normed, k);
    float g = valid ? lane_dot_from(first, gate + at, normalized + part.offset, part.width, lane) : 0.0f;
    float u = valid ? lane_dot(up + at, normalized + part.offset, part.width, lane) : 0.0f;
    row_totals(g, u, split);
    if (valid && writes_row(split)) out[part.row] = float_to_act(apply_activation(fn, g) * u);
}

// residual += W · x for one row x ([k]; W [n, k], residual [n]): a branch's last product joining
// the residual stream. Each dot is rounded to act_t, then added as the add kernels add
// (act(residual + act(dot))). residual must not overlap x.
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
gemv_rows_add(const act_t* w, const act_t* x, act_t* residual, int n, int k, int split, int prefetchBytes) {
    RowPart part = row_part(k, split);
    bool valid = part.row < n;
    if (valid) prefetch_row_part(w + (i64) part.row * k + part.offset, part.width, prefetchBytes);
    JV_DEPENDENT_PROLOGUE();
    float dot = valid ? lane_dot(w + (i64) part.row * k + part.offset, x + part.offset, part.width, threadIdx.x & 31) : 0.0f;
    float unused = 0.0f;
    row_totals(dot, unused, split);
    if (valid && writes_row(split)) {
        residual[part.row] = float_to_act(act_to_float(residual[part.row]) + act_to_float(float_to_act(dot)));
    }
}
