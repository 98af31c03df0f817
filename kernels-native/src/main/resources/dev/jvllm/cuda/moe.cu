// Mixture-of-experts layers without the host: softmax top-k routing, grouping the token choices
// by expert, the routed SwiGLU experts as grouped products over all experts at once, and the
// per-token combine. Every grid is sized from host-known numbers (tokens T, experts E, choices
// per token k, widths H and I); blocks of an expert that no token chose exit at once, so a layer
// is a fixed sequence of launches (CUDA-graph capturable) whatever the routing.
//
// Token t's j-th choice is choice c = t·k + j; the grouped kernels write its intermediate row and
// its expert's output row at c, so each result is computed by one warp (or one tile row) in a
// fixed order wherever the grouping put it, and moe_combine sums a token's k rows in the order of
// j: results are reproducible without float atomics. Expert weights come as device tables of E
// row-major act_t pointers (gate and up [I, H], down [H, I]).
#include "common.cuh"

#define MOE_MAX_EXPERTS 256
#define MOE_WARPS 4
// Rows of the grouped matrix-vector kernels dotted with one read of a weight row.
#define MOE_ROWS 8

// ---- routing -------------------------------------------------------------------------------

// One warp per token: the topK largest logits (the first on ties; softmax keeps the order) and
// their softmax probabilities over all E experts, divided by their sum when normalize.
extern "C" __global__ void __launch_bounds__(32)
moe_route_softmax_topk(const act_t* logits, int numExperts, int topK, int normalize, int* experts, act_t* weights) {
    JV_DEPENDENT_PROLOGUE();
    constexpr int PER_LANE = MOE_MAX_EXPERTS / 32;
    const int none = 0x7fffffff;
    int t = blockIdx.x;
    int lane = threadIdx.x;
    const act_t* row = logits + (i64) t * numExperts;
    float values[PER_LANE];
    float max = -jv_infinity();
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) {
        int e = lane + 32 * i;
        values[i] = e < numExperts ? act_to_float(row[e]) : -jv_infinity();
        max = fmaxf(max, values[i]);
    }
    max = warp_max(max);
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) {
        if (lane + 32 * i < numExperts) total += expf(values[i] - max);
    }
    total = warp_sum(total);
    float mine = 0.0f, chosenSum = 0.0f;
    for (int j = 0; j < topK; j++) {
        float best = -jv_infinity();
        int index = none;
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) {
            if (values[i] > best) {
                best = values[i];
                index = lane + 32 * i;
            }
        }
        for (int offset = 16; offset > 0; offset >>= 1) {
            float otherBest = __shfl_xor_sync(0xffffffffu, best, offset);
            int otherIndex = __shfl_xor_sync(0xffffffffu, index, offset);
            if (otherBest > best || (otherBest == best && otherIndex < index)) {
                best = otherBest;
                index = otherIndex;
            }
        }
        if (index == none) index = 0;  // no logit above -inf: ExpertRouter's argmax gives the first expert
        float probability = expf(best - max) / total;
        chosenSum += probability;
        if (lane == j) mine = probability;
        if (lane == 0) experts[(i64) t * topK + j] = index;
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) {
            if (lane + 32 * i == index) values[i] = -jv_infinity();
        }
    }
    if (lane < topK) {
        weights[(i64) t * topK + lane] = float_to_act(normalize ? mine / (chosenSum + 1e-20f) : mine);
    }
}

// One block: counts the choices of each expert, writes starts[e] (E + 1 entries: expert e's
// choices are order[starts[e] .. starts[e+1])) and the choices grouped by expert. Within an
// expert the order is that of the atomics, which no result depends on. An expert id outside
// [0, E) is reported and its choice left out (moe_combine skips it too).
extern "C" __global__ void moe_group_by_expert(const int* experts, int choices, int numExperts, int* starts,
                                               int* order, int* error) {
    JV_DEPENDENT_PROLOGUE();
    __shared__ int next[MOE_MAX_EXPERTS + 1];
    for (int e = threadIdx.x; e <= numExperts; e += blockDim.x) next[e] = 0;
    __syncthreads();
    for (int c = threadIdx.x; c < choices; c += blockDim.x) {
        int e = experts[c];
        if (e < 0 || e >= numExperts) {
            report_error(error, JV_ERROR_ROW_INDEX, e, c, numExperts);
        } else {
            atomicAdd(&next[e], 1);
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int running = 0;
        for (int e = 0; e < numExperts; e++) {
            int count = next[e];
            starts[e] = running;
            next[e] = running;
            running += count;
        }
        starts[numExperts] = running;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < choices; c += blockDim.x) {
        int e = experts[c];
        if (e >= 0 && e < numExperts) order[atomicAdd(&next[e], 1)] = c;
    }
}

// ---- grouped matrix-vector products (decode; any activation type) ------------------------

// 16 bytes of act_t widened to float.
__device__ __forceinline__ void load_piece(const act_t* p, float (&out)[16 / sizeof(act_t)]) {
    uint4 raw = *(const uint4*) p;
    const act_t* elements = (const act_t*) &raw;
#pragma unroll
    for (int i = 0; i < 16 / (int) sizeof(act_t); i++) out[i] = act_to_float(elements[i]);
}

// sums[m][r] = w[m] · rows[r] over width elements for r < count, summed over the warp (lane 0's
// result is the total). VECTOR: width is a multiple of 16 bytes and every row 16-byte aligned;
// each lane then streams 16-byte pieces, several in flight, else single elements.
template <bool VECTOR, int MATS>
__device__ __forceinline__ void warp_dot_rows(const act_t* const (&w)[MATS], const act_t* const (&rows)[MOE_ROWS],
                                              int count, int width, int lane, float (&sums)[MATS][MOE_ROWS]) {
#pragma unroll
    for (int m = 0; m < MATS; m++) {
#pragma unroll
        for (int r = 0; r < MOE_ROWS; r++) sums[m][r] = 0.0f;
    }
    if (VECTOR) {
        constexpr int PIECE = 16 / sizeof(act_t);
        constexpr int UNROLL = 8 / MATS;
        int pieces = width / PIECE;
        for (int base = 0; base < pieces; base += 32 * UNROLL) {
            float wf[UNROLL][MATS][PIECE];
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                int p = base + u * 32 + lane;
#pragma unroll
                for (int m = 0; m < MATS; m++) {
                    if (p < pieces) {
                        load_piece(w[m] + (i64) p * PIECE, wf[u][m]);
                    } else {
#pragma unroll
                        for (int e = 0; e < PIECE; e++) wf[u][m][e] = 0.0f;
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                int p = base + u * 32 + lane;
                if (p >= pieces) break;
#pragma unroll
                for (int r = 0; r < MOE_ROWS; r++) {
                    if (r >= count) break;
                    float xf[PIECE];
                    load_piece(rows[r] + (i64) p * PIECE, xf);
#pragma unroll
                    for (int m = 0; m < MATS; m++) {
#pragma unroll
                        for (int e = 0; e < PIECE; e++) sums[m][r] += wf[u][m][e] * xf[e];
                    }
                }
            }
        }
    } else {
        for (int i = lane; i < width; i += 32) {
            float wf[MATS];
#pragma unroll
            for (int m = 0; m < MATS; m++) wf[m] = act_to_float(w[m][i]);
#pragma unroll
            for (int r = 0; r < MOE_ROWS; r++) {
                if (r >= count) break;
                float x = act_to_float(rows[r][i]);
#pragma unroll
                for (int m = 0; m < MATS; m++) sums[m][r] += wf[m] * x;
            }
        }
    }
#pragma unroll
    for (int m = 0; m < MATS; m++) {
#pragma unroll
        for (int r = 0; r < MOE_ROWS; r++) sums[m][r] = warp_sum(sums[m][r]);
    }
}

// activated[c, i] = silu(gate_e[i] · x[t]) · (up_e[i] · x[t]) for every choice c of token t of
// expert e = blockIdx.y; a warp per intermediate row i reads the expert's two weight rows once per
// MOE_ROWS choices. Grid (ceil(I / MOE_WARPS), E).
template <bool VECTOR>
__device__ __forceinline__ void gate_up_rows(const act_t* x, const i64* gates, const i64* ups, const int* starts,
                                             const int* order, int topK, int hidden, int intermediate,
                                             act_t* activated) {
    int e = blockIdx.y;
    int first = starts[e], count = starts[e + 1] - first;
    int i = blockIdx.x * MOE_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (count == 0 || i >= intermediate) return;
    const act_t* w[2] = {(const act_t*) gates[e] + (i64) i * hidden, (const act_t*) ups[e] + (i64) i * hidden};
    for (int done = 0; done < count; done += MOE_ROWS) {
        int n = min(MOE_ROWS, count - done);
        const act_t* rows[MOE_ROWS];
        int choice[MOE_ROWS];
#pragma unroll
        for (int r = 0; r < MOE_ROWS; r++) {
            choice[r] = r < n ? order[first + done + r] : 0;
            rows[r] = x + (i64) (choice[r] / topK) * hidden;
        }
        float sums[2][MOE_ROWS];
        warp_dot_rows<VECTOR, 2>(w, rows, n, hidden, lane, sums);
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < MOE_ROWS; r++) {
                if (r >= n) break;
                float g = sums[0][r];
                activated[(i64) choice[r] * intermediate + i] = float_to_act(g / (1.0f + expf(-g)) * sums[1][r]);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(32 * MOE_WARPS)
moe_gate_up_rows(const act_t* x, const i64* gates, const i64* ups, const int* starts, const int* order, int topK,
                 int hidden, int intermediate, int vectorized, act_t* activated) {
    JV_DEPENDENT_PROLOGUE();
    if (vectorized) {
        gate_up_rows<true>(x, gates, ups, starts, order, topK, hidden, intermediate, activated);
    } else {
        gate_up_rows<false>(x, gates, ups, starts, order, topK, hidden, intermediate, activated);
    }
}

// results[c, h] = down_e[h] · activated[c] for every choice c of expert e = blockIdx.y; a warp per
// output feature h. Grid (ceil(H / MOE_WARPS), E).
template <bool VECTOR>
__device__ __forceinline__ void down_rows(const act_t* activated, const i64* downs, const int* starts,
                                          const int* order, int hidden, int intermediate, act_t* results) {
    int e = blockIdx.y;
    int first = starts[e], count = starts[e + 1] - first;
    int h = blockIdx.x * MOE_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (count == 0 || h >= hidden) return;
    const act_t* w[1] = {(const act_t*) downs[e] + (i64) h * intermediate};
    for (int done = 0; done < count; done += MOE_ROWS) {
        int n = min(MOE_ROWS, count - done);
        const act_t* rows[MOE_ROWS];
        int choice[MOE_ROWS];
#pragma unroll
        for (int r = 0; r < MOE_ROWS; r++) {
            choice[r] = r < n ? order[first + done + r] : 0;
            rows[r] = activated + (i64) choice[r] * intermediate;
        }
        float sums[1][MOE_ROWS];
        warp_dot_rows<VECTOR, 1>(w, rows, n, intermediate, lane, sums);
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < MOE_ROWS; r++) {
                if (r >= n) break;
                results[(i64) choice[r] * hidden + h] = float_to_act(sums[0][r]);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(32 * MOE_WARPS)
moe_down_rows(const act_t* activated, const i64* downs, const int* starts, const int* order, int hidden,
              int intermediate, int vectorized, act_t* results) {
    JV_DEPENDENT_PROLOGUE();
    if (vectorized) {
        down_rows<true>(activated, downs, starts, order, hidden, intermediate, results);
    } else {
        down_rows<false>(activated, downs, starts, order, hidden, intermediate, results);
    }
}

// ---- combine -------------------------------------------------------------------------------

// out[t] = Σ_j weights[t, j] · results[t·k + j] in the order of j; one block per token.
extern "C" __global__ void moe_combine(const act_t* results, const int* experts, const void* weights, int weightType,
                                       int numExperts, int topK, int hidden, act_t* out) {
    JV_DEPENDENT_PROLOGUE();
    int t = blockIdx.x;
    for (int h = threadIdx.x; h < hidden; h += blockDim.x) {
        float sum = 0.0f;
        for (int j = 0; j < topK; j++) {
            i64 c = (i64) t * topK + j;
            int e = experts[c];
            if (e < 0 || e >= numExperts) continue;
            sum += load_element(weights, weightType, c) * act_to_float(results[c * hidden + h]);
        }
        out[(i64) t * hidden + h] = float_to_act(sum);
    }
}

// out[t] += sigmoid(gate[t]) · source[t]: Qwen-MoE's gated shared expert; one block per row.
extern "C" __global__ void add_sigmoid_gated_rows(const act_t* source, const act_t* gate, int cols, act_t* out) {
    JV_DEPENDENT_PROLOGUE();
    i64 first = (i64) blockIdx.x * cols;
    float scale = 1.0f / (1.0f + expf(-act_to_float(gate[blockIdx.x])));
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        out[first + c] = float_to_act(act_to_float(out[first + c]) + scale * act_to_float(source[first + c]));
    }
}

#if JV_ACT_TYPE != JV_F32
// ---- grouped tile products on tensor cores (prefill) -------------------------------------
//
// output[c, n] = A[c] · W_e[n] for the choices c of expert e, as mma.sync m16n8k16 over tiles of
// MOE_TILE_ROWS choices × MOE_TILE_COLS output features: a block of four warps, each warp 16 of
// the tile's rows. blockIdx.x = e · tilesPerExpert + tile, and a block takes the expert's row
// tiles tile, tile + tilesPerExpert, ...: tilesPerExpert = ceil(T / 64) covers an expert chosen
// by every token (a token picks an expert at most once), and blocks past the expert's rows exit.
// GATED: two weight sets (gate and up) and output silu(gate) · up. Row lengths K are multiples of
// 8 and rows 16-byte aligned (the host checks), so tiles load in 16-byte pieces.
#define MOE_TILE_ROWS 64
#define MOE_TILE_COLS 64
#define MOE_TILE_DEPTH 32
#define MOE_TILE_STRIDE (MOE_TILE_DEPTH + 8)  // padding spreads a tile's rows over the banks

template <bool GATED>
__device__ __forceinline__ void grouped_tile(const act_t* input, int inputDivisor, const i64* firstWeights,
                                             const i64* secondWeights, const int* starts, const int* order,
                                             int tilesPerExpert, int depth, int width, act_t* output) {
    constexpr int MATS = GATED ? 2 : 1;
    constexpr int PIECES = MOE_TILE_DEPTH / 8;
    __shared__ __align__(16) act_t a[MOE_TILE_ROWS * MOE_TILE_STRIDE];
    __shared__ __align__(16) act_t b[MATS * MOE_TILE_COLS * MOE_TILE_STRIDE];
    __shared__ const act_t* rowInput[MOE_TILE_ROWS];
    __shared__ int rowChoice[MOE_TILE_ROWS];
    int e = blockIdx.x / tilesPerExpert;
    int first = starts[e], count = starts[e + 1] - first;
    int colBase = blockIdx.y * MOE_TILE_COLS;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int group = lane >> 2, quad = lane & 3;
    const act_t* firstMatrix = (const act_t*) firstWeights[e];
    const act_t* secondMatrix = GATED ? (const act_t*) secondWeights[e] : firstMatrix;

    for (int rowBase = (blockIdx.x % tilesPerExpert) * MOE_TILE_ROWS; rowBase < count;
         rowBase += tilesPerExpert * MOE_TILE_ROWS) {
        __syncthreads();  // the previous tile's row lists are no longer read
        if (threadIdx.x < MOE_TILE_ROWS) {
            int r = rowBase + threadIdx.x;
            int c = r < count ? order[first + r] : -1;
            rowChoice[threadIdx.x] = c;
            rowInput[threadIdx.x] = c < 0 ? nullptr : input + (i64) (c / inputDivisor) * depth;
        }
        float acc[MATS][MOE_TILE_COLS / 8][4];
#pragma unroll
        for (int m = 0; m < MATS; m++) {
#pragma unroll
            for (int n = 0; n < MOE_TILE_COLS / 8; n++) acc[m][n][0] = acc[m][n][1] = acc[m][n][2] = acc[m][n][3] = 0.0f;
        }
        for (int k0 = 0; k0 < depth; k0 += MOE_TILE_DEPTH) {
            __syncthreads();  // the row lists are written, the previous slice is no longer read
            for (int i = threadIdx.x; i < MOE_TILE_ROWS * PIECES; i += blockDim.x) {
                int r = i / PIECES, k = k0 + (i % PIECES) * 8;
                const act_t* from = rowInput[r];
                uint4 v = from != nullptr && k < depth ? *(const uint4*) (from + k) : make_uint4(0, 0, 0, 0);
                *(uint4*) (a + r * MOE_TILE_STRIDE + (i % PIECES) * 8) = v;
            }
            for (int i = threadIdx.x; i < MATS * MOE_TILE_COLS * PIECES; i += blockDim.x) {
                int m = i / (MOE_TILE_COLS * PIECES);
                int r = (i / PIECES) % MOE_TILE_COLS, k = k0 + (i % PIECES) * 8;
                int col = colBase + r;
                uint4 v = col < width && k < depth ? *(const uint4*) ((m == 0 ? firstMatrix : secondMatrix) + (i64) col * depth + k)
                                                   : make_uint4(0, 0, 0, 0);
                *(uint4*) (b + (m * MOE_TILE_COLS + r) * MOE_TILE_STRIDE + (i % PIECES) * 8) = v;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < MOE_TILE_DEPTH; kk += 16) {
                const act_t* aRow = a + (warp * 16 + group) * MOE_TILE_STRIDE + kk + 2 * quad;
                unsigned int fragment[4] = {load_pair(aRow), load_pair(aRow + 8 * MOE_TILE_STRIDE), load_pair(aRow + 8),
                                            load_pair(aRow + 8 * MOE_TILE_STRIDE + 8)};
#pragma unroll
                for (int m = 0; m < MATS; m++) {
#pragma unroll
                    for (int n = 0; n < MOE_TILE_COLS / 8; n++) {
                        const act_t* bRow = b + (m * MOE_TILE_COLS + n * 8 + group) * MOE_TILE_STRIDE + kk + 2 * quad;
                        mma_16816(acc[m][n], fragment, load_pair(bRow), load_pair(bRow + 8));
                    }
                }
            }
        }
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int c = rowChoice[warp * 16 + group + 8 * half];
            if (c < 0) continue;
#pragma unroll
            for (int n = 0; n < MOE_TILE_COLS / 8; n++) {
#pragma unroll
                for (int p = 0; p < 2; p++) {
                    int col = colBase + n * 8 + 2 * quad + p;
                    if (col >= width) continue;
                    float v = acc[0][n][2 * half + p];
                    if (GATED) v = v / (1.0f + expf(-v)) * acc[MATS - 1][n][2 * half + p];
                    output[(i64) c * width + col] = float_to_act(v);
                }
            }
        }
    }
}

// activated[c] = silu(gate_e · x[c / topK]) ⊙ (up_e · x[c / topK]). Grid (E · tilesPerExpert, ceil(I / 64)).
extern "C" __global__ void __launch_bounds__(32 * MOE_WARPS)
moe_gate_up_tiles(const act_t* x, const i64* gates, const i64* ups, const int* starts, const int* order, int topK,
                  int tilesPerExpert, int hidden, int intermediate, act_t* activated) {
    JV_DEPENDENT_PROLOGUE();
    grouped_tile<true>(x, topK, gates, ups, starts, order, tilesPerExpert, hidden, intermediate, activated);
}

// results[c] = down_e · activated[c]. Grid (E · tilesPerExpert, ceil(H / 64)).
extern "C" __global__ void __launch_bounds__(32 * MOE_WARPS)
moe_down_tiles(const act_t* activated, const i64* downs, const int* starts, const int* order, int tilesPerExpert,
               int hidden, int intermediate, act_t* results) {
    JV_DEPENDENT_PROLOGUE();
    grouped_tile<false>(activated, 1, downs, nullptr, starts, order, tilesPerExpert, intermediate, hidden, results);
}
#endif
