// Products with 4-bit weights (GPTQ's and AWQ's, repacked at load as Int4Weight lays them out): W [n, k]
// in tiles of 16 rows × 64 packed inputs, each lane's 16 bytes of a tile four words, word j holding
// the lane's mma.sync m16n8k16 A fragment for inputs 16j .. 16j + 15 as four pairs of nibbles (pair p
// in bits 4p and 4p + 16). Each element is (q - zero) × scale of its row's group (a multiple of 64
// inputs), params holding (scale, zero) a (row, group) as float32. Where the checkpoint's inputs were
// reordered (GPTQ's act-order) x comes permuted into the packed order (permute_columns).
//
// For up to 32 rows of x, gemm_int4_N reads W once at a quarter of a 16-bit weight's bytes: a block
// takes a row tile (two for the gated form), each warp a share of its k tiles streamed through a
// cp.async ring. A word becomes A fragments with one and-or a pair (the nibbles in the mantissa of 128
// or 1024: magic + q exactly); a second mma a k-step with -(magic + zero) as A takes magic and zero
// away exactly, and each group's float32 sums are multiplied by its scale when it ends. So the ALU
// work a weight is an and-or and a shift, and the tensor cores do the rest. More rows of x take the
// weight dequantized for cuBLAS (dequantize_int4).
#include "common.cuh"

#if JV_ACT_TYPE != JV_F32
#if JV_ACT_TYPE == JV_BF16
// 128 + q is exact in bfloat16 for q < 128: a nibble in the low mantissa bits of 128.
#define INT4_MAGIC 0x4300u
#define INT4_MAGIC_VALUE 128.0f
#else
#define INT4_MAGIC 0x6400u
#define INT4_MAGIC_VALUE 1024.0f
#endif

// Pair p of a word as an A fragment register: the two nibbles in the low mantissa bits of the magic
// number, i.e. magic + q exactly (one and-or).
__device__ __forceinline__ unsigned int level_pair(unsigned int word, int p) {
    unsigned int levels;
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(levels) : "r"(word >> (4 * p)), "r"(0x000f000fu), "r"(INT4_MAGIC | (INT4_MAGIC << 16)));
    return levels;
}

// A row tile's group for the lane's two rows (g and g + 8): -(magic + zero) as fragment pairs, so
// that one more mma a k-step takes the zero and the magic away exactly, and the float scales that the
// group's sums are multiplied by when it ends.
struct GroupOffsets {
    unsigned int upper, lower;  // -(magic + zero) twice, rows g and g + 8
    float upperScale, lowerScale;
};

__device__ __forceinline__ GroupOffsets group_offsets(float2 upper, float2 lower) {
    act_t u = float_to_act(-(INT4_MAGIC_VALUE + upper.y)), l = float_to_act(-(INT4_MAGIC_VALUE + lower.y));
    return {pack_pair(u, u), pack_pair(l, l), upper.x, lower.x};
}

// Where a product's rows go: rows [0, n0) to out0 ([tokens, n0]), [n0, n0 + n1) to out1, the rest to
// out2 (a layer's q, k and v from one stacked weight); bias (may be null, its type code as for
// load_element) only where there is one output. With fn >= 0 the block's second row tile (rows n0
// further on) is an up projection: out0 = fn(gate) × up.
struct Int4Out {
    act_t* out0;
    act_t* out1;
    act_t* out2;
    int n0, n1, n2;
    const void* bias;
    int biasType;
    int fn;
};

__device__ __forceinline__ void int4_write(const Int4Out& o, int token, int row, float value) {
    if (row < o.n0) {
        if (o.bias != nullptr) value += load_element(o.bias, o.biasType, row);
        o.out0[(i64) token * o.n0 + row] = float_to_act(value);
    } else if (row < o.n0 + o.n1) {
        o.out1[(i64) token * o.n1 + row - o.n0] = float_to_act(value);
    } else {
        o.out2[(i64) token * o.n2 + row - o.n0 - o.n1] = float_to_act(value);
    }
}

// Adds a group's sums, scaled by its rows' scales (C fragment: elements 0, 1 of row g, 2, 3 of row g + 8), into c.
template <int NT>
__device__ __forceinline__ void add_scaled_group(float (&c)[NT][4], const float (&sums)[NT][4], const GroupOffsets& group) {
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
        c[nt][0] += group.upperScale * sums[nt][0];
        c[nt][1] += group.upperScale * sums[nt][1];
        c[nt][2] += group.lowerScale * sums[nt][2];
        c[nt][3] += group.lowerScale * sums[nt][3];
    }
}

// The block's R row tiles (R = 2: a gate tile and its up tile, n0 rows apart) times x ([tokens, k],
// tokens <= 8 NT). Each of the W warps takes a W-th of the k tiles. Its lanes copy their 16 bytes of
// the next D tiles of each row tile into a shared-memory ring (cp.async: many tiles in flight without
// holding registers); per tile it stages x's 64 inputs of every token in its slab (whole 128-byte rows,
// so that each B fragment is one conflict-free shared load), turns each word into A fragments, and runs
// NT mma a k-step and row tile; the block then adds the warps' sums.
template <int NT, int W, int R, int D>
__device__ __forceinline__ void gemm_int4_tiles(const uint4* words, const float2* params, const act_t* x, int tokens, int k,
                                                int groupSize, const Int4Out& o) {
    __shared__ __align__(16) uint4 ring[W][D][R][32];
    __shared__ __align__(16) act_t slabs[W][8 * NT][64 + 8];
    __shared__ float partials[W][R][16][8 * NT + 1];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int kTiles = k / 64, groups = k / groupSize, tilesPerGroup = groupSize / 64;
    int first = warp * kTiles / W, last = (warp + 1) * kTiles / W;
    // Row tile r of the block: blockIdx.x, and for the up half blockIdx.x + n0 / 16.
    const uint4* tiles[R];
    const float2* rowParams[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        i64 rowTile = blockIdx.x + (r == 0 ? 0 : o.n0 / 16);
        tiles[r] = words + rowTile * kTiles * 32 + lane;
        rowParams[r] = params + (rowTile * 16 + g) * groups;
    }
    // The first D tiles asked for before the wait: weights never change during a pass. A group is
    // committed for every slot, empty past the warp's last tile, so that the count of groups in flight
    // is always D - 1 after a wait.
#pragma unroll
    for (int s = 0; s < D; s++) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (first + s < last) copy_async(&ring[warp][s][r][lane], tiles[r] + (i64) (first + s) * 32, true);
        }
        copy_async_commit();
    }
    JV_DEPENDENT_PROLOGUE();
    float c[R][NT][4];
#pragma unroll
    for (int r = 0; r < R; r++) {
#pragma unroll
        for (int nt = 0; nt < NT; nt++) c[r][nt][0] = c[r][nt][1] = c[r][nt][2] = c[r][nt][3] = 0.0f;
    }
    // The sums of the current group, (q - zero) · x exactly as far as float32 goes, added into c times
    // the group's scales when it ends.
    float sums[R][NT][4];
#pragma unroll
    for (int r = 0; r < R; r++) {
#pragma unroll
        for (int nt = 0; nt < NT; nt++) sums[r][nt][0] = sums[r][nt][1] = sums[r][nt][2] = sums[r][nt][3] = 0.0f;
    }
    int group = first / tilesPerGroup, left = tilesPerGroup - first % tilesPerGroup;
    GroupOffsets offsets[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        offsets[r] = first < last ? group_offsets(rowParams[r][group], rowParams[r][group + 8 * groups]) : GroupOffsets{0, 0, 0.0f, 0.0f};
    }
    act_t (*slab)[64 + 8] = slabs[warp];
    // Rows of tokens past the last are never written: zeros, so that their B columns add nothing.
    for (int i = lane; i < 8 * NT * (64 + 8) / 8; i += 32) {
        int token = i / 9, piece = i % 9;
        if (token >= tokens) *(uint4*) &slab[token][piece * 8] = make_uint4(0, 0, 0, 0);
    }
    // x's pieces of the next tile, asked for a tile ahead: a lane takes pieces lane, lane + 32, ...
    // of the tile's tokens × 8 16-byte pieces.
    constexpr int X_PIECES = 2 * NT;
    uint4 xNext[X_PIECES];
#pragma unroll
    for (int q = 0; q < X_PIECES; q++) {
        int i = lane + 32 * q, token = i / 8;
        if (token < tokens && first < last) xNext[q] = *(const uint4*) (x + (i64) token * k + first * 64 + (i % 8) * 8);
    }
    for (int kt = first, slot = 0; kt < last; kt++, slot = slot == D - 1 ? 0 : slot + 1) {
        if (left == 0) {
#pragma unroll
            for (int r = 0; r < R; r++) {
                add_scaled_group<NT>(c[r], sums[r], offsets[r]);
#pragma unroll
                for (int nt = 0; nt < NT; nt++) sums[r][nt][0] = sums[r][nt][1] = sums[r][nt][2] = sums[r][nt][3] = 0.0f;
                offsets[r] = group_offsets(rowParams[r][group + 1], rowParams[r][group + 1 + 8 * groups]);
            }
            group++;
            left = tilesPerGroup;
        }
        left--;
        __syncwarp();
#pragma unroll
        for (int q = 0; q < X_PIECES; q++) {
            int i = lane + 32 * q, token = i / 8;
            if (token < tokens) *(uint4*) &slab[token][(i % 8) * 8] = xNext[q];
        }
        if (kt + 1 < last) {
#pragma unroll
            for (int q = 0; q < X_PIECES; q++) {
                int i = lane + 32 * q, token = i / 8;
                if (token < tokens) xNext[q] = *(const uint4*) (x + (i64) token * k + (kt + 1) * 64 + (i % 8) * 8);
            }
        }
        copy_async_wait<D - 1>();
        __syncwarp();
        uint4 tile[R];
#pragma unroll
        for (int r = 0; r < R; r++) tile[r] = ring[warp][slot][r][lane];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            unsigned int b[NT][2];
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                b[nt][0] = *(const unsigned int*) &slab[nt * 8 + g][16 * j + 2 * t];
                b[nt][1] = *(const unsigned int*) &slab[nt * 8 + g][16 * j + 2 * t + 8];
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                unsigned int word = j == 0 ? tile[r].x : j == 1 ? tile[r].y : j == 2 ? tile[r].z : tile[r].w;
                unsigned int a[4] = {level_pair(word, 0), level_pair(word, 1), level_pair(word, 2), level_pair(word, 3)};
                unsigned int zero[4] = {offsets[r].upper, offsets[r].lower, offsets[r].upper, offsets[r].lower};
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
                    mma_16816(sums[r][nt], a, b[nt][0], b[nt][1]);
                    mma_16816(sums[r][nt], zero, b[nt][0], b[nt][1]);
                }
            }
        }
        // The slot's words are in registers and used: refill it with the tile D ahead.
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (kt + D < last) copy_async(&ring[warp][slot][r][lane], tiles[r] + (i64) (kt + D) * 32, true);
        }
        copy_async_commit();
    }
#pragma unroll
    for (int r = 0; r < R; r++) add_scaled_group<NT>(c[r], sums[r], offsets[r]);
#pragma unroll
    for (int r = 0; r < R; r++) {
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            partials[warp][r][g][nt * 8 + 2 * t] = c[r][nt][0];
            partials[warp][r][g][nt * 8 + 2 * t + 1] = c[r][nt][1];
            partials[warp][r][g + 8][nt * 8 + 2 * t] = c[r][nt][2];
            partials[warp][r][g + 8][nt * 8 + 2 * t + 1] = c[r][nt][3];
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < 16 * tokens; i += blockDim.x) {
        int row = i % 16, token = i / 16;
        float sums[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            sums[r] = 0.0f;
#pragma unroll
            for (int w = 0; w < W; w++) sums[r] += partials[w][r][row][token];
        }
        float value = R == 2 ? apply_activation(o.fn, sums[0]) * sums[R - 1] : sums[0];
        int4_write(o, token, blockIdx.x * 16 + row, value);
    }
}

// A launch of gemm_int4_tiles: NAME over tokens <= 8 NT with W warps a block, R row tiles (R = 2:
// gated) and a ring of D tiles a warp (the three kept within 48 KB of static shared memory).
#define GEMM_INT4(NAME, NT, W, R, D)                                                                                   \
    extern "C" __global__ void __launch_bounds__(32 * W)                                                            \
    NAME(const uint4* words, const float2* params, const act_t* x, int tokens, int k, int groupSize, act_t* out0,  \
         act_t* out1, act_t* out2, int n0, int n1, int n2, const void* bias, int biasType, int fn) {               \
        /* JV_DEPENDENT_PROLOGUE in gemm_int4_tiles */                                                             \
        Int4Out o = {out0, out1, out2, n0, n1, n2, bias, biasType, fn};                                             \
        gemm_int4_tiles<NT, W, R, D>(words, params, x, tokens, k, groupSize, o);                                      \
    }

GEMM_INT4(gemm_int4_8, 1, 8, 1, 8)
GEMM_INT4(gemm_int4_16, 2, 4, 1, 8)
GEMM_INT4(gemm_int4_32, 4, 4, 1, 8)
GEMM_INT4(gemm_int4_gated_8, 1, 4, 2, 8)
GEMM_INT4(gemm_int4_gated_16, 2, 4, 2, 6)
GEMM_INT4(gemm_int4_gated_32, 4, 4, 2, 2)
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
                    act_t low = float_to_act(((float) ((four[j] >> (4 * p)) & 0xfu) - group.y) * group.x);
                    act_t high = float_to_act(((float) ((four[j] >> (4 * p + 16)) & 0xfu) - group.y) * group.x);
                    if (order != nullptr) {
                        target[order[input]] = low;
                        target[order[input + 1]] = high;
                    } else {
#if JV_ACT_TYPE == JV_F32
                        *(float2*) (target + input) = make_float2(low, high);
#else
                        *(unsigned int*) (target + input) = pack_pair(low, high);
#endif
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
