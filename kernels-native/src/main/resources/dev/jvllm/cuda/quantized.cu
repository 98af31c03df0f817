// Products with 4-bit weights (GPTQ's and AWQ's, repacked at load as Int4Weight lays them out): W [n, k]
// in tiles of 16 rows × 64 packed inputs, each lane's 16 bytes of a tile four words, word j holding
// the lane's mma.sync m16n8k16 A fragment for inputs 16j .. 16j + 15 as four pairs of nibbles (pair p
// in bits 4p and 4p + 16). Each element is (q - zero) × scale of its row's group (a multiple of 64
// inputs), params holding (scale, zero) a (row, group) as float32. Where the checkpoint's inputs were
// reordered (GPTQ's act-order) x comes permuted into the packed order (permute_columns).
//
// For up to 32 rows of x, gemm_int4_N reads W once at a quarter of a 16-bit weight's bytes: a block of
// four warps takes a row tile, each warp a quarter of its k, turns each word into A fragments on the
// fly (a nibble pair ORed into the mantissa of 128 or 1024, less 128 or 1024 + zero, times the scale:
// the same rounding as a weight decoded at load), and multiplies by x on tensor cores. More rows of x
// take the weight dequantized for cuBLAS (dequantize_int4).
#include "common.cuh"

#define INT4_WARPS 4
// Tiles a warp has in flight (and as many more being asked for).
#ifndef INT4_UNROLL
#define INT4_UNROLL 4
#endif

#if JV_ACT_TYPE != JV_F32
#if JV_ACT_TYPE == JV_BF16
// 128 + q is exact in bfloat16 for q < 128: a nibble in the low mantissa bits of 128.
#define INT4_MAGIC 0x4300u
#define INT4_MAGIC_VALUE 128.0f
#else
#define INT4_MAGIC 0x6400u
#define INT4_MAGIC_VALUE 1024.0f
#endif

__device__ __forceinline__ unsigned int sub_pairs(unsigned int a, unsigned int b) {
    unsigned int d;
#if JV_ACT_TYPE == JV_BF16
    asm("sub.rn.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
#else
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
#endif
    return d;
}

__device__ __forceinline__ unsigned int mul_pairs(unsigned int a, unsigned int b) {
    unsigned int d;
#if JV_ACT_TYPE == JV_BF16
    asm("mul.rn.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
#else
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
#endif
    return d;
}

// A row's group as two fragment-register operands: (magic + zero) twice and the scale twice.
struct GroupPairs {
    unsigned int zero;
    unsigned int scale;
};

__device__ __forceinline__ GroupPairs group_pairs(float2 group) {
    act_t zero = float_to_act(INT4_MAGIC_VALUE + group.y), scale = float_to_act(group.x);
    return {pack_pair(zero, zero), pack_pair(scale, scale)};
}

// Pair p of a word as an A fragment register: the nibbles in the mantissas of magic, less magic + zero, times scale.
__device__ __forceinline__ unsigned int weight_pair(unsigned int word, int p, GroupPairs group) {
    unsigned int levels = ((word >> (4 * p)) & 0x000f000fu) | (INT4_MAGIC | (INT4_MAGIC << 16));
    return mul_pairs(sub_pairs(levels, group.zero), group.scale);
}

// out[t, r] (+ bias_r) = W_r · x_t for the block's row tile and every row x_t of x ([tokens, k],
// tokens <= 8 NT). Each warp sums its quarter of the k tiles; the block adds the quarters.
template <int NT>
__device__ __forceinline__ void gemm_int4_tile(const uint4* words, const float2* params, const act_t* x, int tokens,
                                               act_t* out, int outStride, const void* bias, int biasType, int k,
                                               int groupSize) {
    __shared__ float partials[INT4_WARPS][16][8 * NT + 1];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int kTiles = k / 64, groups = k / groupSize, tilesPerGroup = groupSize / 64;
    int first = warp * kTiles / INT4_WARPS, last = (warp + 1) * kTiles / INT4_WARPS;
    const uint4* tiles = words + (i64) blockIdx.x * kTiles * 32 + lane;
    const float2* rowParams = params + ((i64) blockIdx.x * 16 + g) * groups;
    uint4 batch[INT4_UNROLL];
#pragma unroll
    for (int u = 0; u < INT4_UNROLL; u++) {
        if (first + u < last) batch[u] = tiles[(i64) (first + u) * 32];
    }
    JV_DEPENDENT_PROLOGUE();
    float c[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; nt++) c[nt][0] = c[nt][1] = c[nt][2] = c[nt][3] = 0.0f;
    int group = -1;
    GroupPairs upper = {0, 0}, lower = {0, 0};
    for (int base = first; base < last; base += INT4_UNROLL) {
        uint4 next[INT4_UNROLL];
#pragma unroll
        for (int u = 0; u < INT4_UNROLL; u++) {
            if (base + INT4_UNROLL + u < last) next[u] = tiles[(i64) (base + INT4_UNROLL + u) * 32];
        }
#pragma unroll
        for (int u = 0; u < INT4_UNROLL; u++) {
            int kt = base + u;
            if (kt >= last) break;
            if (kt / tilesPerGroup != group) {
                group = kt / tilesPerGroup;
                upper = group_pairs(rowParams[group]);
                lower = group_pairs(rowParams[group + 8 * groups]);
            }
            unsigned int four[4] = {batch[u].x, batch[u].y, batch[u].z, batch[u].w};
#pragma unroll
            for (int j = 0; j < 4; j++) {
                unsigned int a[4] = {weight_pair(four[j], 0, upper), weight_pair(four[j], 1, lower),
                                     weight_pair(four[j], 2, upper), weight_pair(four[j], 3, lower)};
                int input = kt * 64 + 16 * j + 2 * t;
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
                    int token = nt * 8 + g;
                    const act_t* row = x + (i64) token * k + input;
                    unsigned int b0 = token < tokens ? load_pair(row) : 0u;
                    unsigned int b1 = token < tokens ? load_pair(row + 8) : 0u;
                    mma_16816(c[nt], a, b0, b1);
                }
            }
        }
#pragma unroll
        for (int u = 0; u < INT4_UNROLL; u++) batch[u] = next[u];
    }
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
        partials[warp][g][nt * 8 + 2 * t] = c[nt][0];
        partials[warp][g][nt * 8 + 2 * t + 1] = c[nt][1];
        partials[warp][g + 8][nt * 8 + 2 * t] = c[nt][2];
        partials[warp][g + 8][nt * 8 + 2 * t + 1] = c[nt][3];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < 16 * tokens; i += blockDim.x) {
        int r = i % 16, token = i / 16;
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < INT4_WARPS; w++) sum += partials[w][r][token];
        int row = blockIdx.x * 16 + r;
        out[(i64) token * outStride + row] = float_to_act(sum + (bias == nullptr ? 0.0f : load_element(bias, biasType, row)));
    }
}

#define GEMM_INT4(NAME, NT)                                                                                         \
    extern "C" __global__ void __launch_bounds__(32 * INT4_WARPS)                                                   \
    NAME(const uint4* words, const float2* params, const act_t* x, int tokens, act_t* out, int outStride,          \
         const void* bias, int biasType, int k, int groupSize) {                                                    \
        /* JV_DEPENDENT_PROLOGUE in gemm_int4_tile */                                                              \
        gemm_int4_tile<NT>(words, params, x, tokens, out, outStride, bias, biasType, k, groupSize);               \
    }

GEMM_INT4(gemm_int4_8, 1)
GEMM_INT4(gemm_int4_16, 2)
GEMM_INT4(gemm_int4_32, 4)
#endif

// W as act_t [n, k] in the checkpoint's input order: a thread a lane's 16 bytes of a tile, striding over the grid.
extern "C" __global__ void dequantize_int4(const uint4* words, const float2* params, const int* order, act_t* out,
                                           int n, int k, int groupSize) {
    JV_DEPENDENT_PROLOGUE();
    int kTiles = k / 64, groups = k / groupSize;
    i64 total = (i64) n / 16 * kTiles * 32;
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64) gridDim.x * blockDim.x) {
        int lane = (int) (i % 32), g = lane >> 2, t = lane & 3;
        i64 tile = i / 32;
        i64 rowTile = tile / kTiles;
        int kt = (int) (tile % kTiles);
        uint4 piece = words[i];
        unsigned int four[4] = {piece.x, piece.y, piece.z, piece.w};
#pragma unroll
        for (int half = 0; half < 2; half++) {
            i64 row = rowTile * 16 + g + 8 * half;
            float2 group = params[row * groups + kt * 64 / groupSize];
            act_t* target = out + row * k;
#pragma unroll
            for (int j = 0; j < 4; j++) {
#pragma unroll
                for (int p = half; p < 4; p += 2) {
                    int input = kt * 64 + 16 * j + 2 * t + 8 * (p / 2);
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        float level = (float) ((four[j] >> (4 * p + 16 * e)) & 0xfu);
                        act_t value = float_to_act((level - group.y) * group.x);
                        target[order == nullptr ? input + e : order[input + e]] = value;
                    }
                }
            }
        }
    }
}

// out[r, i] = x[r, order[i]]: rows of x ([rows, k]) in a weight's packed input order.
extern "C" __global__ void permute_columns(const act_t* x, const int* order, act_t* out, int rows, int k) {
    JV_DEPENDENT_PROLOGUE();
    GRID_STRIDE_LOOP(i, (i64) rows * k) {
        i64 r = i / k;
        out[i] = x[r * k + order[i % k]];
    }
}
