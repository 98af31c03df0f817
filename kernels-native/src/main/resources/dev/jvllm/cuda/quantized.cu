// Products with 4-bit weights (GPTQ's and AWQ's, repacked at load as Int4Weight lays them out): W [n, k]
// in tiles of 16 rows × 64 packed inputs, each lane's 16 bytes of a tile four words, word j holding
// the lane's mma.sync m16n8k16 A fragment of k-step j as four pairs of nibbles (pair p in bits 4p and
// 4p + 16). The k-steps take a tile's inputs in Int4Weight's order, lane 4g + t's pairs at inputs
// 16t + 4j (+ 2 for p = 2, 3) and the one after, so that its B fragments of a tile are x's 16
// consecutive inputs from 16t on. Each element is (q - zero) × scale of its row's group (a multiple of
// 64 inputs), params holding (scale, zero) a (row, group) as float32, a row tile's 16 rows of a group
// together (128 bytes), group after group. Where the checkpoint's inputs were reordered (GPTQ's
// act-order) x comes permuted into the packed order (permute_columns).
//
// For up to 15 rows of x, gemm_int4_N reads W once at a quarter of a 16-bit weight's bytes: a block
// takes a row tile (two for the gated form), each warp a share of its k tiles streamed through a
// cp.async ring. A word becomes A fragments with one and-or a pair (the nibbles in the mantissa of 128
// or 1024: magic + q exactly); a second mma a k-step with -(magic + zero) as A takes magic and zero
// away exactly, and each group's float32 sums are multiplied by its scale when it ends. So the ALU
// work a weight is an and-or and a shift, and the tensor cores do the rest. From 16 to 128 rows
// gemm_int4_wide (below) shares x among a block's 256 rows; more take the weight dequantized for
// cuBLAS (dequantize_int4).
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

// Word w's four pairs as an A fragment's registers (rows g, g + 8, g, g + 8): the two nibbles of each
// in the low mantissa bits of the magic number, i.e. magic + q exactly (a shift and one and-or a pair).
__device__ __forceinline__ void level_pairs(unsigned int word, unsigned int (&a)[4]) {
    constexpr unsigned int MAGIC = INT4_MAGIC | (INT4_MAGIC << 16);
#pragma unroll
    for (int p = 0; p < 4; p++) {
        asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(a[p]) : "r"(word >> (4 * p)), "r"(0x000f000fu), "r"(MAGIC));
    }
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

// Where a warp's ring asks for a row tile's group (scale, zero) pairs: at its first k tile and at each
// that begins a group, a lane's 16-byte piece of the 128 bytes (next) if it copies one.
struct GroupParamsAsk {
    const uint4* next;
    int left, tilesPerGroup;
    bool due;

    __device__ __forceinline__ GroupParamsAsk(const uint4* first, int firstTile, int tilesPerGroup)
        : next(first), left(tilesPerGroup - firstTile % tilesPerGroup), tilesPerGroup(tilesPerGroup), due(true) {}

    // The ask (if due and the lane copies) for the next k tile, into target.
    __device__ __forceinline__ void ask(unsigned int target, bool copies) {
        if (due && copies) copy_async_16(target, next, 16);
        due = --left == 0;
        if (due) {
            next += 8;
            left = tilesPerGroup;
        }
    }
};

// c and the current group's sums at zero, before a warp's first tile.
template <int R, int NT>
__device__ __forceinline__ void zero_sums(float (&c)[R][NT][4], float (&sums)[R][NT][4]) {
#pragma unroll
    for (int r = 0; r < R; r++) {
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) c[r][nt][e] = sums[r][nt][e] = 0.0f;
        }
    }
}

// At a tile that begins a group (or a warp's first): the group before (if any) added into c times its
// scales and its sums zeroed; the new group's offsets from the slot's (scale, zero) pairs of the
// lane's rows g and g + 8.
template <int R, int NT>
__device__ __forceinline__ void begin_group(float (&c)[R][NT][4], float (&sums)[R][NT][4], GroupOffsets (&offsets)[R],
                                            const float2 (&params)[R][16], bool after, int g) {
#pragma unroll
    for (int r = 0; r < R; r++) {
        if (after) {
            add_scaled_group<NT>(c[r], sums[r], offsets[r]);
#pragma unroll
            for (int nt = 0; nt < NT; nt++) sums[r][nt][0] = sums[r][nt][1] = sums[r][nt][2] = sums[r][nt][3] = 0.0f;
        }
        offsets[r] = group_offsets(params[r][g], params[r][g + 8]);
    }
}

// A warp's ring slot: its row tiles' words of one k tile, their 16 rows' (scale, zero) for the tile's
// group, and x's 64 inputs of that tile for the first XR tokens (rows of 64 + 8 elements, so that the
// lanes' 16-byte loads of their B fragments do not conflict).
template <int R, int XR>
struct Int4Slot {
    uint4 words[R][32];
    float2 params[R][16];
    act_t x[XR][64 + 8];
};

// Bytes of dynamic shared memory a block of `warps` warps takes: the ring, and after it is drained the
// warps' partial sums in the same memory. Kernel.java's gemmInt4SharedBytes computes the same.
template <int NT, int R, int XR, int D>
__host__ __device__ constexpr int gemm_int4_shared_bytes(int warps) {
    return warps * D * (int) sizeof(Int4Slot<R, XR>) > warps * R * 16 * (8 * NT + 1) * 4
               ? warps * D * (int) sizeof(Int4Slot<R, XR>)
               : warps * R * 16 * (8 * NT + 1) * 4;
}

// The block's R row tiles (R = 2: a gate tile and its up tile, n0 rows apart) times x ([tokens, k],
// tokens <= XR <= 8 NT). Each warp (blockDim.x / 32 of them) takes its share of the k tiles and streams
// them through a ring of D slots by cp.async: a tile's words, its group's scales and zeros and x's
// inputs of the tile all arrive D tiles ahead, so that no load waits inside the loop (the weights and
// scales are asked for before the wait on the kernel before, x after it). Per tile the warp turns each
// word into A fragments and runs NT mma a k-step and row tile; the block then adds the warps' sums.
// At one row of x the bytes are not the bound (ncu: DRAM a third busy), the loop's instructions and
// each warp's chain of dependent mma are: its addresses advance by additions (no division a tile).
template <int NT, int R, int XR, int D>
__device__ __forceinline__ void gemm_int4_tiles(const uint4* words, const float2* params, const act_t* x, int tokens, int k,
                                                int groupSize, const Int4Out& o) {
    using Slot = Int4Slot<R, XR>;
    constexpr unsigned int PARAMS_AT = R * 512, X_AT = R * 640;
    extern __shared__ __align__(16) uint4 int4Shared[];
    int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    Slot* ring = (Slot*) int4Shared + warp * D;
    unsigned int ringAddress = shared_address(ring);
    int kTiles = k / 64, groups = k / groupSize, tilesPerGroup = groupSize / 64;
    int first = warp * kTiles / warps, last = (warp + 1) * kTiles / warps;
    // What the warp asks for next, tile after tile: each row tile's words (row tile r: blockIdx.x, and
    // for the up half blockIdx.x + n0 / 16), its group's scales and zeros (below), and x's 16-byte
    // pieces (piece i: token i / 8's inputs 8 (i % 8) on; rows of tokens past the last are zeros, so
    // that their B columns add nothing).
    const uint4* askWords[R];
#pragma unroll
    for (int r = 0; r < R; r++) askWords[r] = words + ((blockIdx.x + (r == 0 ? 0 : o.n0 / 16)) * (i64) kTiles + first) * 32 + lane;
    // A group's (scale, zero) of a row tile's 16 rows are 128 bytes: lane l < 8 R copies piece l % 8 of
    // row tile l / 8's, with the warp's first tile and each tile that begins a group.
    int paramTile = lane / 8;
    GroupParamsAsk askParams(
        (const uint4*) (params + ((blockIdx.x + (paramTile == 0 ? 0 : o.n0 / 16)) * (i64) groups + first / tilesPerGroup) * 16) + lane % 8,
        first, tilesPerGroup);
    unsigned int paramsTarget = PARAMS_AT + lane * 16;
    constexpr int X_COPIES = (XR * 8 + 31) / 32;
    const act_t* askX[X_COPIES];
    unsigned int xTarget[X_COPIES];
    int xValid[X_COPIES];
#pragma unroll
    for (int q = 0; q < X_COPIES; q++) {
        int i = lane + 32 * q, token = i / 8;
        askX[q] = x + (i64) min(token, tokens - 1) * k + first * 64 + (i % 8) * 8;
        xTarget[q] = X_AT + token * (64 + 8) * (int) sizeof(act_t) + (i % 8) * 16;
        xValid[q] = token < tokens ? 16 : 0;
    }
    auto askWeights = [&](unsigned int slot) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            copy_async_16(slot + r * 512 + lane * 16, askWords[r], 16);
            askWords[r] += 32;
        }
        askParams.ask(slot + paramsTarget, paramTile < R);
    };
    auto askInputs = [&](unsigned int slot) {
#pragma unroll
        for (int q = 0; q < X_COPIES; q++) {
            if (XR * 8 % 32 == 0 || lane + 32 * q < XR * 8) copy_async_16(slot + xTarget[q], askX[q], xValid[q]);
            askX[q] += 64;
        }
    };
    // A group is committed for every slot, empty past the warp's last tile, so that D - 1 groups are
    // always in flight after the tile's own: the weights of the first D tiles, then their inputs.
#pragma unroll
    for (int s = 0; s < D; s++) {
        if (first + s < last) askWeights(ringAddress + s * sizeof(Slot));
        copy_async_commit();
    }
    JV_DEPENDENT_PROLOGUE();
#pragma unroll
    for (int s = 0; s < D; s++) {
        if (first + s < last) askInputs(ringAddress + s * sizeof(Slot));
        copy_async_commit();
    }
    float c[R][NT][4];
    // The sums of the current group, (q - zero) · x exactly as far as float32 goes, added into c times
    // the group's scales when it ends.
    float sums[R][NT][4];
    zero_sums<R, NT>(c, sums);
    GroupOffsets offsets[R];
    int left = 0;  // tiles of the current group still to come
    for (int kt = first, slot = 0; kt < last; kt++, slot = slot == D - 1 ? 0 : slot + 1) {
        copy_async_wait<D - 1>();
        __syncwarp();
        const Slot& tile = ring[slot];
        if (left == 0) {
            begin_group<R, NT>(c, sums, offsets, tile.params, kt != first, g);
            left = kt == first ? tilesPerGroup - first % tilesPerGroup : tilesPerGroup;
        }
        left--;
        uint4 w[R];
#pragma unroll
        for (int r = 0; r < R; r++) w[r] = tile.words[r][lane];
        // The B fragments of the tile's four k-steps: token (nt, g)'s inputs 16t .. 16t + 15, two loads.
        uint4 inputs[NT][2];
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            bool held = nt * 8 + g < XR;  // constant false past the rows held: zeros
#pragma unroll
            for (int half = 0; half < 2; half++) {
                inputs[nt][half] = held ? *(const uint4*) &tile.x[min(nt * 8 + g, XR - 1)][16 * t + 8 * half] : make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            unsigned int b[NT][2];
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                const uint4& two = inputs[nt][j / 2];
                b[nt][0] = j % 2 == 0 ? two.x : two.z;
                b[nt][1] = j % 2 == 0 ? two.y : two.w;
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                unsigned int word = j == 0 ? w[r].x : j == 1 ? w[r].y : j == 2 ? w[r].z : w[r].w;
                unsigned int a[4];
                level_pairs(word, a);
                unsigned int zero[4] = {offsets[r].upper, offsets[r].lower, offsets[r].upper, offsets[r].lower};
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
                    mma_16816(sums[r][nt], a, b[nt][0], b[nt][1]);
                    mma_16816(sums[r][nt], zero, b[nt][0], b[nt][1]);
                }
            }
        }
        // Every lane has read the slot: refill it with the tile D ahead.
        __syncwarp();
        if (kt + D < last) {
            unsigned int target = ringAddress + slot * sizeof(Slot);
            askWeights(target);
            askInputs(target);
        }
        copy_async_commit();
    }
    if (first < last) {
#pragma unroll
        for (int r = 0; r < R; r++) add_scaled_group<NT>(c[r], sums[r], offsets[r]);
    }
    // The ring is drained (only empty groups are left in flight) before its memory takes the partial sums.
    copy_async_wait<0>();
    __syncthreads();
    float* partials = (float*) int4Shared;  // [warps][R][16][8 NT + 1]
    constexpr int STRIDE = 8 * NT + 1;
#pragma unroll
    for (int r = 0; r < R; r++) {
        float* mine = partials + (warp * R + r) * 16 * STRIDE;
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            mine[g * STRIDE + nt * 8 + 2 * t] = c[r][nt][0];
            mine[g * STRIDE + nt * 8 + 2 * t + 1] = c[r][nt][1];
            mine[(g + 8) * STRIDE + nt * 8 + 2 * t] = c[r][nt][2];
            mine[(g + 8) * STRIDE + nt * 8 + 2 * t + 1] = c[r][nt][3];
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < 16 * tokens; i += blockDim.x) {
        int row = i % 16, token = i / 16;
        float total[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            total[r] = 0.0f;
            for (int w = 0; w < warps; w++) total[r] += partials[((w * R + r) * 16 + row) * STRIDE + token];
        }
        float value = R == 2 ? apply_activation(o.fn, total[0]) * total[R - 1] : total[0];
        int4_write(o, token, blockIdx.x * 16 + row, value);
    }
}

// A launch of gemm_int4_tiles: NAME over tokens <= XR (x rows held, at most 8 NT), R row tiles (R = 2:
// gated) and a ring of D tiles a warp; the warps a block and so the dynamic shared memory
// (gemm_int4_shared_bytes) are the launch's, Kernel.java's entry of NAME. A launch given less shared
// memory than its warps need, or more rows of x than it holds, stops on a trap rather than read
// another block's memory or leave rows out.
#define GEMM_INT4(NAME, NT, R, XR, D)                                                                                  \
    extern "C" __global__ void __launch_bounds__(256)                                                               \
    NAME(const uint4* words, const float2* params, const act_t* x, int tokens, int k, int groupSize, act_t* out0,  \
         act_t* out1, act_t* out2, int n0, int n1, int n2, const void* bias, int biasType, int fn) {               \
        /* JV_DEPENDENT_PROLOGUE in gemm_int4_tiles */                                                             \
        unsigned int sharedBytes;                                                                                   \
        asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(sharedBytes));                                               \
        if (sharedBytes < (unsigned int) gemm_int4_shared_bytes<NT, R, XR, D>(blockDim.x >> 5) || tokens > XR) __trap(); \
        Int4Out o = {out0, out1, out2, n0, n1, n2, bias, biasType, fn};                                             \
        gemm_int4_tiles<NT, R, XR, D>(words, params, x, tokens, k, groupSize, o);                                     \
    }

GEMM_INT4(gemm_int4_2, 1, 1, 2, 8)
GEMM_INT4(gemm_int4_8, 1, 1, 8, 8)
GEMM_INT4(gemm_int4_16, 2, 1, 16, 4)
GEMM_INT4(gemm_int4_gated_2, 1, 2, 2, 8)
GEMM_INT4(gemm_int4_gated_8, 1, 2, 8, 6)
GEMM_INT4(gemm_int4_gated_16, 2, 2, 16, 4)

// ---- Up to 64 rows of x a launch (16 to 128 a product): a block's x tile shared by its warps ----
//
// gemm_int4_tiles reads x once a block of 16 rows (32 gated), so at 64 rows of x its blocks read x
// from L2 many times the 4-bit weight's bytes, and its second mma a k-step for the zero doubles the
// tensor cores' work. Here a block of WIDE_WARPS warps takes 8 R row tiles (gated: 8 gate tiles and
// their up tiles) over one slice of k (blockIdx.y of gridDim.y): each k tile's x inputs come once into
// a stage the warps share, each warp's words and scales beside them, D - 1 stages ahead. A word's
// levels minus the group's zero become the A fragment in the 16-bit type exactly (q - zero is a small
// integer), so one mma a k-step and token tile. With one slice the block writes its outputs; with more
// each slice writes float32 sums into partials ([slice][token][row of the weight]) and
// gemm_int4_reduce adds them and writes the outputs.
constexpr int WIDE_WARPS = 8;  // GEMM_INT4_WIDE's launch bounds (256 threads) say the same

template <int R, int XR>
struct Int4WideStage {
    act_t x[XR][64 + 8];
    uint4 words[WIDE_WARPS][R][32];
    float2 params[WIDE_WARPS][R][16];
};

// Kernel.java's gemmInt4WideSharedBytes computes the same.
template <int R, int XR, int D>
__host__ __device__ constexpr int gemm_int4_wide_shared_bytes() {
    return D * (int) sizeof(Int4WideStage<R, XR>);
}

// (magic + q) pairs plus -(magic + zero): q - zero, exact in the 16-bit type.
__device__ __forceinline__ unsigned int minus_zero(unsigned int levels, unsigned int negativeOffset) {
    unsigned int d;
#if JV_ACT_TYPE == JV_BF16
    asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(levels), "r"(0x3f803f80u), "r"(negativeOffset));
#else
    asm("add.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(levels), "r"(negativeOffset));
#endif
    return d;
}

template <int NT, int R, bool GATED, int D>
__device__ __forceinline__ void gemm_int4_wide_tiles(const uint4* words, const float2* params, const act_t* x, int tokens, int k,
                                                     int groupSize, float* partials, const Int4Out& o) {
    constexpr int XR = 8 * NT;
    using Stage = Int4WideStage<R, XR>;
    constexpr unsigned int WORDS_AT = XR * (64 + 8) * sizeof(act_t), PARAMS_AT = WORDS_AT + WIDE_WARPS * R * 512;
    extern __shared__ __align__(16) uint4 int4Shared[];
    const Stage* ring = (const Stage*) int4Shared;
    unsigned int ringAddress = shared_address(int4Shared);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int kTiles = k / 64, groups = k / groupSize, tilesPerGroup = groupSize / 64;
    int first = blockIdx.y * kTiles / gridDim.y, last = (blockIdx.y + 1) * kTiles / gridDim.y;
    // The warp's row tiles: gated, gate tile `unit` and its up tile rowTiles further on; else R
    // consecutive tiles from R unit. Tiles past the weight's last are computed on the last one's words
    // (no branch in the loop) and not written.
    int rowTiles = (GATED ? o.n0 : o.n0 + o.n1 + o.n2) / 16;
    int unit = blockIdx.x * WIDE_WARPS + warp;
    auto ownTile = [&](int r) { return GATED ? unit : unit * R + r; };
    auto tileOf = [&](int r) {
        int own = min(ownTile(r), rowTiles - 1);
        return GATED && r > 0 ? own + rowTiles : own;
    };
    const uint4* askWords[R];
#pragma unroll
    for (int r = 0; r < R; r++) askWords[r] = words + (tileOf(r) * (i64) kTiles + first) * 32 + lane;
    // Lane l < 8 R copies 16-byte piece l % 8 of row tile l / 8's (scale, zero) pairs of a group.
    int paramTile = min(lane / 8, R - 1);
    GroupParamsAsk askParams((const uint4*) (params + (tileOf(paramTile) * (i64) groups + first / tilesPerGroup) * 16) + lane % 8,
                             first, tilesPerGroup);
    unsigned int paramsTarget = PARAMS_AT + (warp * R * 16) * sizeof(float2) + lane * 16;
    constexpr int X_PIECES = XR * 8, X_COPIES = (X_PIECES + WIDE_WARPS * 32 - 1) / (WIDE_WARPS * 32);
    const act_t* askX[X_COPIES];
    unsigned int xTarget[X_COPIES];
    int xValid[X_COPIES];
#pragma unroll
    for (int q = 0; q < X_COPIES; q++) {
        int i = threadIdx.x + WIDE_WARPS * 32 * q, token = i / 8;
        askX[q] = x + (i64) min(token, tokens - 1) * k + first * 64 + (i % 8) * 8;
        xTarget[q] = token * (64 + 8) * (int) sizeof(act_t) + (i % 8) * 16;
        xValid[q] = token < tokens ? 16 : 0;
    }
    auto askWeights = [&](unsigned int stage) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            copy_async_16(stage + WORDS_AT + ((warp * R + r) * 32 + lane) * 16, askWords[r], 16);
            askWords[r] += 32;
        }
        askParams.ask(stage + paramsTarget, lane < 8 * R);
    };
    auto askInputs = [&](unsigned int stage) {
#pragma unroll
        for (int q = 0; q < X_COPIES; q++) {
            if (X_PIECES % (WIDE_WARPS * 32) == 0 || threadIdx.x + WIDE_WARPS * 32 * q < X_PIECES) {
                copy_async_16(stage + xTarget[q], askX[q], xValid[q]);
            }
            askX[q] += 64;
        }
    };
    // D - 1 stages ahead: their weights before the wait on the kernel before, then their inputs; one
    // group committed a stage (empty past the slice's last tile) keeps the count of groups in flight.
#pragma unroll
    for (int s = 0; s < D - 1; s++) {
        if (first + s < last) askWeights(ringAddress + s * sizeof(Stage));
        copy_async_commit();
    }
    JV_DEPENDENT_PROLOGUE();
#pragma unroll
    for (int s = 0; s < D - 1; s++) {
        if (first + s < last) askInputs(ringAddress + s * sizeof(Stage));
        copy_async_commit();
    }
    float c[R][NT][4], sums[R][NT][4];
    zero_sums<R, NT>(c, sums);
    GroupOffsets offsets[R];
    int left = 0;
    for (int kt = first, slot = 0; kt < last; kt++, slot = slot == D - 1 ? 0 : slot + 1) {
        copy_async_wait<D - 2>();
        __syncthreads();
        // Every thread has finished the stage read one tile ago: it takes the tile D - 1 ahead.
        if (kt + D - 1 < last) {
            unsigned int refill = ringAddress + (slot == 0 ? D - 1 : slot - 1) * sizeof(Stage);
            askWeights(refill);
            askInputs(refill);
        }
        copy_async_commit();
        const Stage& stage = ring[slot];
        if (left == 0) {
            begin_group<R, NT>(c, sums, offsets, stage.params[warp], kt != first, g);
            left = kt == first ? tilesPerGroup - first % tilesPerGroup : tilesPerGroup;
        }
        left--;
        unsigned int a[R][4][4];
#pragma unroll
        for (int r = 0; r < R; r++) {
            uint4 w = stage.words[warp][r][lane];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                level_pairs(j == 0 ? w.x : j == 1 ? w.y : j == 2 ? w.z : w.w, a[r][j]);
#pragma unroll
                for (int p = 0; p < 4; p++) a[r][j][p] = minus_zero(a[r][j][p], p % 2 == 0 ? offsets[r].upper : offsets[r].lower);
            }
        }
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            // Token nt·8 + g's inputs 16t .. 16t + 15 of the tile: the B fragments of its four k-steps.
            uint4 inputs[2];
#pragma unroll
            for (int half = 0; half < 2; half++) inputs[half] = *(const uint4*) &stage.x[nt * 8 + g][16 * t + 8 * half];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const uint4& two = inputs[j / 2];
                unsigned int b0 = j % 2 == 0 ? two.x : two.z, b1 = j % 2 == 0 ? two.y : two.w;
#pragma unroll
                for (int r = 0; r < R; r++) mma_16816(sums[r][nt], a[r][j], b0, b1);
            }
        }
    }
    if (first < last) {
#pragma unroll
        for (int r = 0; r < R; r++) add_scaled_group<NT>(c[r], sums[r], offsets[r]);
    }
    int rowsAll = 16 * (GATED ? 2 * rowTiles : rowTiles);
    float* part = partials == nullptr ? nullptr : partials + (i64) blockIdx.y * tokens * rowsAll;
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int token = nt * 8 + 2 * t + (e & 1), inTile = g + (e >= 2 ? 8 : 0);
            if (token >= tokens) continue;
            if (part == nullptr && GATED) {
                if (ownTile(0) < rowTiles) int4_write(o, token, tileOf(0) * 16 + inTile, apply_activation(o.fn, c[0][nt][e]) * c[R - 1][nt][e]);
                continue;
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (ownTile(r) >= rowTiles) continue;
                if (part == nullptr) {
                    int4_write(o, token, tileOf(r) * 16 + inTile, c[r][nt][e]);
                } else {
                    part[(i64) token * rowsAll + tileOf(r) * 16 + inTile] = c[r][nt][e];
                }
            }
        }
    }
}

// A launch of gemm_int4_wide_tiles: NAME over tokens <= 8 NT, blocks of WIDE_WARPS warps, each warp
// R row tiles (gated: a gate tile and its up tile), a ring of D stages, at least BLOCKS blocks an SM
// (CudaBackend's int4WideWaves aims at two for 16 rows); the grid's y the slices of k, partials null
// where there is one. Too little shared memory, more rows of x than it holds or another
// block size stop on a trap.
#define GEMM_INT4_WIDE(NAME, NT, R, GATED, D, BLOCKS)                                                                 \
    extern "C" __global__ void __launch_bounds__(256, BLOCKS)                                                       \
    NAME(const uint4* words, const float2* params, const act_t* x, int tokens, int k, int groupSize, float* partials, \
         act_t* out0, act_t* out1, act_t* out2, int n0, int n1, int n2, const void* bias, int biasType, int fn) {    \
        /* JV_DEPENDENT_PROLOGUE in gemm_int4_wide_tiles */                                                        \
        unsigned int sharedBytes;                                                                                   \
        asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(sharedBytes));                                               \
        if (sharedBytes < (unsigned int) gemm_int4_wide_shared_bytes<R, 8 * NT, D>() || tokens > 8 * NT              \
            || blockDim.x != WIDE_WARPS * 32 || (gridDim.y > 1 && partials == nullptr)) __trap();                       \
        Int4Out o = {out0, out1, out2, n0, n1, n2, bias, biasType, fn};                                             \
        gemm_int4_wide_tiles<NT, R, GATED, D>(words, params, x, tokens, k, groupSize, partials, o);                 \
    }

GEMM_INT4_WIDE(gemm_int4_wide_16, 2, 2, false, 4, 2)
GEMM_INT4_WIDE(gemm_int4_wide_32, 4, 2, false, 4, 1)
GEMM_INT4_WIDE(gemm_int4_wide_64, 8, 2, false, 4, 1)
GEMM_INT4_WIDE(gemm_int4_wide_gated_16, 2, 2, true, 4, 2)
GEMM_INT4_WIDE(gemm_int4_wide_gated_32, 4, 2, true, 4, 1)
GEMM_INT4_WIDE(gemm_int4_wide_gated_64, 8, 2, true, 4, 1)

// The outputs of a gemm_int4_wide launch over several slices of k: each (token, row) the sum of its
// slices' partials (gated, fn(gate) × up from the gate row and its up row n0 further on), written as
// gemm_int4_tiles writes it.
extern "C" __global__ void gemm_int4_reduce(const float* partials, int slices, int tokens, act_t* out0, act_t* out1, act_t* out2,
                                            int n0, int n1, int n2, const void* bias, int biasType, int fn) {
    JV_DEPENDENT_PROLOGUE();
    Int4Out o = {out0, out1, out2, n0, n1, n2, bias, biasType, fn};
    bool gated = fn >= 0;
    int rows = gated ? n0 : n0 + n1 + n2, rowsAll = gated ? 2 * n0 : rows;
    GRID_STRIDE_LOOP(i, (i64) tokens * rows) {
        int token = (int) (i / rows), row = (int) (i % rows);
        float total = 0.0f, up = 0.0f;
        for (int s = 0; s < slices; s++) {
            const float* sums = partials + ((i64) s * tokens + token) * rowsAll;
            total += sums[row];
            if (gated) up += sums[n0 + row];
        }
        int4_write(o, token, row, gated ? apply_activation(fn, total) * up : total);
    }
}
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
            float2 group = params[(rowTile * groups + kt * 64 / groupSize) * 16 + g + 8 * half];
            act_t* target = out + row * k;
#pragma unroll
            for (int j = 0; j < 4; j++) {
#pragma unroll
                for (int p = half; p < 4; p += 2) {
                    int input = kt * 64 + 16 * t + 4 * j + 2 * (p / 2);
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
