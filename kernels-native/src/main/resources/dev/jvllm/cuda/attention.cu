// Attention over the paged KV cache: the cache write through the slot mapping, and causal
// attention for a flattened batch of prefill chunks and decode tokens; multi-head latent
// attention over a latent cache; and cache-free bidirectional attention for encoders.
#include "common.cuh"

#define MAX_HEAD_DIM 256
#define HEAD_DIM_PER_LANE (MAX_HEAD_DIM / 32)
#define ATTENTION_WARPS 4
#define MAX_LATENT_RANK 512
#define LATENT_PER_LANE (MAX_LATENT_RANK / 32)
#define MAX_LATENT_ROPE_DIM 128
#define LATENT_ROPE_PER_LANE (MAX_LATENT_ROPE_DIM / 32)

// keyCache[slots[t]] = k[t], valueCache[slots[t]] = v[t]; a negative slot means "do not cache".
// The host has checked every slot against the cache size. One block per token.
extern "C" __global__ void write_kv_cache(const act_t* k, const act_t* v, const int* slots, int numKvHeads,
                                          int headDim, int blockSize, act_t* keyCache, act_t* valueCache) {
    JV_DEPENDENT_PROLOGUE();
    int t = blockIdx.x;
    int slot = slots[t];
    if (slot < 0) return;
    int width = numKvHeads * headDim;
    const act_t* key = k + (i64) t * width;
    const act_t* value = v + (i64) t * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        i64 target = (i64) slot * width + i;  // kv_row_of_slot's, without dividing i by headDim
        keyCache[target] = key[i];
        valueCache[target] = value[i];
    }
}

// cache[slots[t]] = [latent[t] ; keyRope[t]]: multi-head latent attention's one row per token.
// A negative slot means "do not cache"; the host has checked the others. One block per token.
extern "C" __global__ void write_latent_cache(const act_t* latent, const act_t* keyRope, const int* slots, int rank,
                                              int ropeDim, act_t* cache) {
    JV_DEPENDENT_PROLOGUE();
    int t = blockIdx.x;
    int slot = slots[t];
    if (slot < 0) return;
    int width = rank + ropeDim;
    act_t* target = cache + (i64) slot * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        target[i] = i < rank ? latent[(i64) t * rank + i] : keyRope[(i64) t * ropeDim + (i - rank)];
    }
}

// ---- one block of four warps per (query token, head) ----------------------------------------
//
// The warps take every fourth key position, each keeps a running max, sum and weighted value
// (online softmax, Milakov & Gimelshein 2018), and the four partial results are merged at the
// end. The lanes of a warp split the head dimension: lane l holds features l, l + 32, ... in
// PER_LANE registers. Simple and correct for any mix of tokens; the kernels below that need speed
// have their own layouts.

// This lane's features of a row of dim ≤ 32·PER_LANE, as float (0 past dim).
template <int PER_LANE>
__device__ __forceinline__ void load_lane_features(float (&part)[PER_LANE], const act_t* row, int dim, int lane) {
#pragma unroll
    for (int c = 0; c < PER_LANE; c++) {
        int d = c * 32 + lane;
        part[c] = d < dim ? act_to_float(row[d]) : 0.0f;
    }
}

// This lane's share of query·key; warp_sum completes it.
template <int PER_LANE>
__device__ __forceinline__ float lane_dot(const float (&queryPart)[PER_LANE], const act_t* key, int dim, int lane) {
    float dot = 0.0f;
#pragma unroll
    for (int c = 0; c < PER_LANE; c++) {
        int d = c * 32 + lane;
        if (d < dim) dot += queryPart[c] * act_to_float(key[d]);
    }
    return dot;
}

// One warp's online softmax over the keys it has seen.
template <int PER_LANE>
struct WarpSoftmax {
    float max;
    float sum;
    float accumulator[PER_LANE];

    __device__ __forceinline__ void start() {
        max = -jv_infinity();
        sum = 0.0f;
#pragma unroll
        for (int c = 0; c < PER_LANE; c++) accumulator[c] = 0.0f;
    }

    __device__ __forceinline__ void add(float score, const act_t* value, int dim, int lane) {
        float newMax = fmaxf(max, score);
        float correction = expf(max - newMax);
        float weight = expf(score - newMax);
        sum = sum * correction + weight;
#pragma unroll
        for (int c = 0; c < PER_LANE; c++) {
            int d = c * 32 + lane;
            if (d < dim) accumulator[c] = accumulator[c] * correction + weight * act_to_float(value[d]);
        }
        max = newMax;
    }
};

// Merges the ATTENTION_WARPS warps' softmax states and writes the normalized output row of dim
// features. Warp 0 must have seen at least one key (the kernels give it the first), so that the
// overall max is finite.
template <int PER_LANE>
__device__ __forceinline__ void merge_warps_and_store(const WarpSoftmax<PER_LANE>& state, int dim, act_t* target) {
    __shared__ float warpMax[ATTENTION_WARPS];
    __shared__ float warpSum[ATTENTION_WARPS];
    __shared__ float warpAccumulator[ATTENTION_WARPS][32 * PER_LANE];
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    if (lane == 0) {
        warpMax[warp] = state.max;
        warpSum[warp] = state.sum;
    }
#pragma unroll
    for (int c = 0; c < PER_LANE; c++) {
        int d = c * 32 + lane;
        if (d < dim) warpAccumulator[warp][d] = state.accumulator[c];
    }
    __syncthreads();
    float overallMax = warpMax[0];
    for (int w = 1; w < ATTENTION_WARPS; w++) overallMax = fmaxf(overallMax, warpMax[w]);
    float total = 0.0f;
    float factors[ATTENTION_WARPS];
#pragma unroll
    for (int w = 0; w < ATTENTION_WARPS; w++) {
        factors[w] = expf(warpMax[w] - overallMax);
        total += warpSum[w] * factors[w];
    }
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float weighted = 0.0f;
#pragma unroll
        for (int w = 0; w < ATTENTION_WARPS; w++) weighted += warpAccumulator[w][d] * factors[w];
        target[d] = float_to_act(weighted / total);
    }
}

// A learned bias by relative position (T5), resolved per head: relativeBias[head · (2D + 1) + clamp(j − i, −D, D) + D]
// for key position j and query position i, D = biasDistance; 0 where relativeBias is null.
__device__ __forceinline__ float relative_bias(const float* relativeBias, int biasDistance, int head, int relative) {
    if (relativeBias == nullptr) return 0.0f;
    return relativeBias[head * (2 * biasDistance + 1) + max(-biasDistance, min(biasDistance, relative)) + biasDistance];
}

// Causal attention over the paged cache. Scores are scale·q·k, optionally soft-capped (Gemma 2),
// ALiBi-biased (Press et al. 2022) or given a learned relative bias (T5), in float32, matching the CPU kernel.
//
// Each (token, head) re-reads its context and the query heads of a KV group read it separately:
// it serves decode tokens the paged_decode kernels do not take, and every token in float32 mode;
// flash_prefill below takes the prompt chunks of 16-bit models. tokenList (or null for "block x
// is token x") names the token of each block.
extern "C" __global__ void __launch_bounds__(32 * ATTENTION_WARPS)
paged_attention(const act_t* q, act_t* out, const act_t* keyCache, const act_t* valueCache,
                const int* positions, const int* tokenSequences, const int* blockTables, int blockTableStride,
                int blockSize, int numHeads, int numKvHeads, int headDim, float scale, int slidingWindow,
                float logitSoftcap, const float* alibiSlopes, const int* tokenList, const float* relativeBias,
                int biasDistance) {
    JV_DEPENDENT_PROLOGUE();
    int t = tokenList == nullptr ? blockIdx.x : tokenList[blockIdx.x];
    int head = blockIdx.y;
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    int sequence = tokenSequences[t];
    int position = positions[t];
    int kvHead = head / (numHeads / numKvHeads);
    const int* blockTable = blockTables + (i64) sequence * blockTableStride;

    float queryPart[HEAD_DIM_PER_LANE];
    load_lane_features(queryPart, q + ((i64) t * numHeads + head) * headDim, headDim, lane);
    float slope = alibiSlopes == nullptr ? 0.0f : alibiSlopes[head];
    int firstKey = slidingWindow > 0 ? max(0, position - slidingWindow + 1) : 0;
    WarpSoftmax<HEAD_DIM_PER_LANE> softmax;
    softmax.start();
    for (int j = firstKey + warp; j <= position; j += ATTENTION_WARPS) {
        i64 offset = kv_row(blockTable[j / blockSize], j % blockSize, kvHead, numKvHeads, headDim, blockSize);
        float score = scale * warp_sum(lane_dot(queryPart, keyCache + offset, headDim, lane));
        if (logitSoftcap > 0.0f) score = logitSoftcap * tanhf(score / logitSoftcap);
        score += slope * (float) (j - position) + relative_bias(relativeBias, biasDistance, head, j - position);
        softmax.add(score, valueCache + offset, headDim, lane);
    }
    merge_warps_and_store(softmax, headDim, out + ((i64) t * numHeads + head) * headDim);
}

// Multi-head latent attention (DeepSeek-V2, arXiv:2405.04434) with the key and value
// up-projections absorbed: each cache row is [latent (rank) ; rotary key (ropeDim)], the score of
// key position j is scale·(qLatent·latent_j + qRope·keyRope_j), and the value is latent_j itself.
// Soft-capping, ALiBi and the sliding window apply as in paged_attention, as on the CPU.
extern "C" __global__ void __launch_bounds__(32 * ATTENTION_WARPS)
latent_attention(const act_t* qLatent, const act_t* qRope, act_t* out, const act_t* cache, const int* positions,
                 const int* tokenSequences, const int* blockTables, int blockTableStride, int blockSize,
                 int numHeads, int rank, int ropeDim, float scale, int slidingWindow, float logitSoftcap,
                 const float* alibiSlopes) {
    JV_DEPENDENT_PROLOGUE();
    int t = blockIdx.x;
    int head = blockIdx.y;
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    int position = positions[t];
    int slotWidth = rank + ropeDim;
    const int* blockTable = blockTables + (i64) tokenSequences[t] * blockTableStride;

    float latentQuery[LATENT_PER_LANE];
    float ropeQuery[LATENT_ROPE_PER_LANE];
    load_lane_features(latentQuery, qLatent + ((i64) t * numHeads + head) * rank, rank, lane);
    load_lane_features(ropeQuery, qRope + ((i64) t * numHeads + head) * ropeDim, ropeDim, lane);
    float slope = alibiSlopes == nullptr ? 0.0f : alibiSlopes[head];
    int firstKey = slidingWindow > 0 ? max(0, position - slidingWindow + 1) : 0;
    WarpSoftmax<LATENT_PER_LANE> softmax;
    softmax.start();
    for (int j = firstKey + warp; j <= position; j += ATTENTION_WARPS) {
        i64 slot = (i64) blockTable[j / blockSize] * blockSize + j % blockSize;
        const act_t* row = cache + slot * slotWidth;
        float dot = lane_dot(latentQuery, row, rank, lane) + lane_dot(ropeQuery, row + rank, ropeDim, lane);
        float score = scale * warp_sum(dot);
        if (logitSoftcap > 0.0f) score = logitSoftcap * tanhf(score / logitSoftcap);
        score += slope * (float) (j - position);
        softmax.add(score, row, rank, lane);
    }
    merge_warps_and_store(softmax, rank, out + ((i64) t * numHeads + head) * rank);
}

// Token t's attention for one head over key rows [first, end) of k and v, unmasked, into its row of out; with a
// relative bias, key row j is at position j − first and the query at queryPosition.
__device__ __forceinline__ void attend_rows(const act_t* q, const act_t* k, const act_t* v, act_t* out, int t, int head,
                                            int first, int end, int numHeads, int numKvHeads, int headDim, float scale,
                                            float logitSoftcap, const float* relativeBias, int biasDistance,
                                            int queryPosition) {
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    i64 kvWidth = (i64) numKvHeads * headDim;
    int kvOffset = head / (numHeads / numKvHeads) * headDim;
    float queryPart[HEAD_DIM_PER_LANE];
    load_lane_features(queryPart, q + ((i64) t * numHeads + head) * headDim, headDim, lane);
    WarpSoftmax<HEAD_DIM_PER_LANE> softmax;
    softmax.start();
    for (int j = first + warp; j < end; j += ATTENTION_WARPS) {
        i64 offset = j * kvWidth + kvOffset;
        float score = scale * warp_sum(lane_dot(queryPart, k + offset, headDim, lane));
        if (logitSoftcap > 0.0f) score = logitSoftcap * tanhf(score / logitSoftcap);
        score += relative_bias(relativeBias, biasDistance, head, j - first - queryPosition);
        softmax.add(score, v + offset, headDim, lane);
    }
    merge_warps_and_store(softmax, headDim, out + ((i64) t * numHeads + head) * headDim);
}

// Bidirectional attention for encoders (BERT, XLM-RoBERTa): token t attends over the step's own
// keys and values of every token of its sequence, [sequenceStarts[s], sequenceStarts[s + 1]).
// Scores are scale·q·k, optionally soft-capped, as on the CPU.
extern "C" __global__ void __launch_bounds__(32 * ATTENTION_WARPS)
encoder_attention(const act_t* q, const act_t* k, const act_t* v, act_t* out, const int* tokenSequences,
                  const int* sequenceStarts, int numHeads, int numKvHeads, int headDim, float scale,
                  float logitSoftcap, const float* relativeBias, int biasDistance) {
    JV_DEPENDENT_PROLOGUE();
    int sequence = tokenSequences[blockIdx.x];
    int first = sequenceStarts[sequence];
    attend_rows(q, k, v, out, blockIdx.x, blockIdx.y, first, sequenceStarts[sequence + 1], numHeads, numKvHeads, headDim,
                scale, logitSoftcap, relativeBias, biasDistance, (int) blockIdx.x - first);
}

// Cross-attention (encoder-decoder models): token t of sequence s attends, unmasked, over key rows
// [ranges[2s], ranges[2s] + ranges[2s + 1]) of its encoder's keys and values (the host has checked
// that each range holds a row and lies within them).
extern "C" __global__ void __launch_bounds__(32 * ATTENTION_WARPS)
cross_attention(const act_t* q, const act_t* k, const act_t* v, act_t* out, const int* tokenSequences,
                const int* ranges, int numHeads, int numKvHeads, int headDim, float scale) {
    JV_DEPENDENT_PROLOGUE();
    int sequence = tokenSequences[blockIdx.x];
    int first = ranges[2 * sequence];
    attend_rows(q, k, v, out, blockIdx.x, blockIdx.y, first, first + ranges[2 * sequence + 1], numHeads, numKvHeads,
                headDim, scale, 0.0f, nullptr, 0, 0);
}

// encoder_attention by query tiles, for the head sizes below: a block takes ENCODER_QUERIES
// consecutive tokens and one head, each thread one token's query, running softmax and output in
// registers; the keys and values of the tiles' sequences pass through shared memory ENCODER_KEYS
// at a time, read once for the whole tile (encoder_attention reads them once a token, which on a
// CLIP tower's 577-token images took 1.1 ms a layer on an H200). A thread skips the keys outside
// its own sequence. Same scores and softmax as encoder_attention. The kernel has waited for the one
// ahead (JV_DEPENDENT_PROLOGUE) before calling it.
#define ENCODER_QUERIES 64
#define ENCODER_KEYS 32

template <int D>
__device__ __forceinline__ void encoder_attention_by_tiles(const act_t* q, const act_t* k, const act_t* v, act_t* out,
                                                           const int* tokenSequences, const int* sequenceStarts,
                                                           int tokens, int numHeads, int numKvHeads, float scale,
                                                           float logitSoftcap) {
    __shared__ float keys[ENCODER_KEYS][D];
    __shared__ float values[ENCODER_KEYS][D];
    int head = blockIdx.y;
    int firstToken = blockIdx.x * ENCODER_QUERIES;
    int lastToken = min(firstToken + ENCODER_QUERIES, tokens) - 1;
    int t = firstToken + threadIdx.x;
    bool active = t < tokens;
    i64 kvWidth = (i64) numKvHeads * D;
    int kvOffset = head / (numHeads / numKvHeads) * D;
    int from = sequenceStarts[tokenSequences[firstToken]];
    int to = sequenceStarts[tokenSequences[lastToken] + 1];
    int ownFrom = 0, ownTo = 0;
    float query[D], sums[D];
    float m = -jv_infinity(), total = 0.0f;
    if (active) {
        int sequence = tokenSequences[t];
        ownFrom = sequenceStarts[sequence];
        ownTo = sequenceStarts[sequence + 1];
        const act_t* row = q + ((i64) t * numHeads + head) * D;
#pragma unroll
        for (int d = 0; d < D; d++) {
            query[d] = act_to_float(row[d]);
            sums[d] = 0.0f;
        }
    }
    for (int base = from; base < to; base += ENCODER_KEYS) {
        int count = min(ENCODER_KEYS, to - base);
        __syncthreads();
        for (int i = threadIdx.x; i < ENCODER_KEYS * D; i += blockDim.x) {
            int j = i / D, d = i - j * D;
            float key = 0.0f, value = 0.0f;
            if (j < count) {
                i64 offset = (i64) (base + j) * kvWidth + kvOffset + d;
                key = act_to_float(k[offset]);
                value = act_to_float(v[offset]);
            }
            keys[j][d] = key;
            values[j][d] = value;
        }
        __syncthreads();
        if (!active) continue;
        for (int j = 0; j < count; j++) {
            int position = base + j;
            if (position < ownFrom || position >= ownTo) continue;
            float dot = 0.0f;
#pragma unroll
            for (int d = 0; d < D; d++) dot += query[d] * keys[j][d];
            float score = scale * dot;
            if (logitSoftcap > 0.0f) score = logitSoftcap * tanhf(score / logitSoftcap);
            float next = fmaxf(m, score);
            float correction = expf(m - next);
            float weight = expf(score - next);
            total = total * correction + weight;
#pragma unroll
            for (int d = 0; d < D; d++) sums[d] = sums[d] * correction + weight * values[j][d];
            m = next;
        }
    }
    if (active) {
        act_t* row = out + ((i64) t * numHeads + head) * D;
        float inverse = 1.0f / total;
#pragma unroll
        for (int d = 0; d < D; d++) row[d] = float_to_act(sums[d] * inverse);
    }
}

#define ENCODER_ATTENTION_TILED(D) \
    extern "C" __global__ void __launch_bounds__(ENCODER_QUERIES) encoder_attention_tiled_##D( \
            const act_t* q, const act_t* k, const act_t* v, act_t* out, const int* tokenSequences, \
            const int* sequenceStarts, int tokens, int numHeads, int numKvHeads, float scale, float logitSoftcap) { \
        JV_DEPENDENT_PROLOGUE(); \
        encoder_attention_by_tiles<D>(q, k, v, out, tokenSequences, sequenceStarts, tokens, numHeads, numKvHeads, \
                                      scale, logitSoftcap); \
    }
ENCODER_ATTENTION_TILED(32)
ENCODER_ATTENTION_TILED(64)
ENCODER_ATTENTION_TILED(80)

// ---- paged_decode: one query token per sequence, the query heads of a KV head together ------
//
// A block takes one token, one KV head with its group of query heads (GQA: the group reads each
// key and value once) and one partition of partitionSize (at most DECODE_PARTITION) key positions,
// so that a long context is spread over many blocks (flash-decoding; vLLM's paged attention v2);
// the host shortens the partitions when a batch has too few tokens to fill the GPU otherwise. Scores: each thread owns
// a key and reads its whole row (no shuffles), the group's queries broadcast from shared memory,
// and notes the key's cache slot. Softmax per head over the partition, then P·V: a thread takes
// one 16-byte piece of a value row, KEY_LANES keys are read at once, and their partial sums
// meet in shared memory. With one partition the block writes the output; with several it writes
// (max, sum, unnormalized output) per head and the last of them merges all (merge_parts_if_last).
#ifndef DECODE_WARPS
#define DECODE_WARPS 4
#endif
#define DECODE_PARTITION 256
// Key rows a thread group loads at once in the score loop, and value loads in flight per thread
// in the output loop; tunable at build time (KernelCompiler's jvllm.cuda.kernelDefines) for comparisons.
#ifndef DECODE_KEY_ROWS
#define DECODE_KEY_ROWS 1
#endif
// One H100, tok/s at batch 64 / 256 (offline s): value unroll 4 6 057 / 13 060 (5.29), 8 6 394 / 13 575
// (5.29); two key rows a round 6 053 / 12 581 (5.37), at most 64 registers 6 135 / 13 266 (5.34).
#ifndef DECODE_VALUE_UNROLL
#define DECODE_VALUE_UNROLL 8
#endif
// Threads that share a key row in the score loop, each taking every KEY_THREADS-th 16-byte piece, so
// that one load instruction reads KEY_THREADS adjacent pieces of each row: 2 fill a 32-byte sector
// (one thread a row used half of each sector per load, and L2 served every sector twice: ncu at
// batch 256, 21.6 of 32 bytes used, L2 hit rate 29%). Their partial dots meet by shuffles.
// Measured on one H100 (Llama-3-8B, tok/s at batch 64 / 256): 1 thread 5 554 / 12 274, 2 threads
// 5 859 / 12 469, 4 threads 6 253 / 12 912.
#ifndef DECODE_KEY_THREADS
#define DECODE_KEY_THREADS 4
#endif
// How paged_decode loads the cache's keys and values (each read once a step): 0 plain loads,
// 1 streaming (ld.global.cs: evict first), 2 without an L1 line (L1::no_allocate). One H100, tok/s
// at batch 64 / 256: plain 6 175 and 6 365 / 12 725 and 13 028, streaming 6 484 / 12 973, no L1
// line 6 329 / 13 731 (offline 5.36-5.38 s, 5.36, 5.31).
#ifndef DECODE_CACHE_LOADS
#define DECODE_CACHE_LOADS 2
#endif

__device__ __forceinline__ uint4 load_cache_piece(const act_t* p) {
#if DECODE_CACHE_LOADS == 1
    uint4 r;
    asm volatile("ld.global.cs.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
#elif DECODE_CACHE_LOADS == 2
    uint4 r;
    asm volatile("ld.global.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
#else
    return *(const uint4*) p;
#endif
}

[[maybe_unused]] constexpr int VALUE_UNROLL = DECODE_VALUE_UNROLL;
// The tiled form of paged_decode's body for 16-bit types (DECODE_TILES 0: the scalar form, as for
// float32; CudaBackend's jvllm.cuda.decodeTiles=false sets it). Its registers are capped for four
// blocks an SM (128; 150 uncapped, three blocks): a warp waits on its tile's loads, so the number of
// warps resident is what keeps the memory busy.
#ifndef DECODE_TILES
#define DECODE_TILES 1
#endif
// 1: each warp of the tiled form asks for its first tile before the block's prologue (see there).
// One H100, tok/s at batch 64 / 256: 6 553 / 14 550 without, 6 627 / 14 844 with (offline 5.13 / 5.11 s).
#ifndef DECODE_EARLY_TILE
#define DECODE_EARLY_TILE 1
#endif
// 1: the tiled form's block that caches the token's own key and value puts them into the tile it
// read early (patch_decode_tile) rather than reading that tile again after writing them.
#ifndef DECODE_PATCH_OWN_TILE
#define DECODE_PATCH_OWN_TILE 1
#endif
#define DECODE_TILED (DECODE_TILES && JV_ACT_TYPE != JV_F32)
// 1: 80- and 96-wide heads take the tiled form too (80: DECODE_TAIL; 96: value pieces of 8 bytes), and
// 256-wide heads at two blocks an SM (234 registers: their tiles take 128 a thread); 0: the scalar form for them
// (KernelCompiler's jvllm.cuda.decodeTilesAllWidths=false sets it).
#ifndef DECODE_TILES_ALL_WIDTHS
#define DECODE_TILES_ALL_WIDTHS 1
#endif
#if DECODE_TILED && !defined(DECODE_MIN_BLOCKS)
#define DECODE_MIN_BLOCKS 4
#endif
#ifdef DECODE_MIN_BLOCKS
#define DECODE_BOUNDS __launch_bounds__(32 * DECODE_WARPS, DECODE_MIN_BLOCKS)
#else
#define DECODE_BOUNDS __launch_bounds__(32 * DECODE_WARPS)
#endif

// Folds N parts' maxes, sums and outputs (an empty part: -inf, 0, 0) into a running merge
// (m, total, weighted), rescaled to the new max; m starts at -inf, and some part must hold keys.
template <int N>
__device__ __forceinline__ void fold_parts(const float (&maxes)[N], const float (&sums)[N], const float (&outputs)[N],
                                           float& m, float& total, float& weighted) {
    float newMax = m;
#pragma unroll
    for (int p = 0; p < N; p++) newMax = fmaxf(newMax, maxes[p]);
    float rescale = expf(m - newMax);  // 0 on the first fold (m is -inf, newMax finite)
    total *= rescale;
    weighted *= rescale;
#pragma unroll
    for (int p = 0; p < N; p++) {
        float w = expf(maxes[p] - newMax);
        total += sums[p] * w;
        weighted += outputs[p] * w;
    }
    m = newMax;
}

// When a token's keys span several partitions, each of their blocks writes its part (max, sum,
// unnormalized output per head) and the block that finishes last of the `parts` from firstPart on
// for its (token, KV head) merges them into out and resets the counter to zero for the next
// launch: flash-decoding's reduction without a second launch.
template <int D>
__device__ __forceinline__ void merge_parts_if_last(const float* partials, act_t* out, unsigned int* counters, int t,
                                                    int tokenIndex, int kvHead, int numKvHeads, int numHeads, int firstHead,
                                                    int group, int partitions, int firstPart, int parts) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned int* counter = counters + (i64) tokenIndex * numKvHeads + kvHead;
        last = atomicAdd(counter, 1u) == (unsigned int) parts - 1;
        if (last) *counter = 0;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    const int stride = D + 2;
    // The other blocks' parts are read at L2 (ld.global.cg: past this SM's L1, which may hold none of
    // them). Each thread loads, for its dimension of a head, every part's max, sum and output in one
    // round (the maxes and sums again in each thread: they come from L2 with the rest), then merges
    // them: on an H100 at batch 1, 168.2 against 166.0 tok/s over five A/B pairs in two calls, against
    // the maxes and sums first, then the outputs.
    const float* tokenParts = partials + ((i64) tokenIndex * numHeads + firstHead) * partitions * stride;
    constexpr int MAX_PARTS = 16;
    for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
        int g = i / D, d = i % D;
        const float* head = tokenParts + (i64) g * partitions * stride;
        float m = -jv_infinity(), total = 0.0f, weighted = 0.0f;
        for (int first = firstPart; first < firstPart + parts; first += MAX_PARTS) {
            float maxes[MAX_PARTS], sums[MAX_PARTS], outputs[MAX_PARTS];
#pragma unroll
            for (int p = 0; p < MAX_PARTS; p++) {
                bool in = first + p < firstPart + parts;
                const float* part = head + (i64) (first + p) * stride;
                maxes[p] = in ? __ldcg(part) : -jv_infinity();
                sums[p] = in ? __ldcg(part + 1) : 0.0f;
                outputs[p] = in ? __ldcg(part + 2 + d) : 0.0f;
            }
            fold_parts(maxes, sums, outputs, m, total, weighted);
        }
        out[((i64) t * numHeads + firstHead + g) * D + d] = float_to_act(weighted / total);
    }
}

// The merge when a token's partitions all lie in one cluster of the launch (consecutive
// partitions, the launch's cluster width): each block left its max and sum per head in headMax and
// headSum and its unnormalized output in blockOutput (-inf, 0 and zeros for a partition without
// keys), and the blocks merge through distributed shared memory, each a share of the outputs, in
// rank order; no part goes through global memory, and no block waits on a counter. Every block of
// the cluster calls it.
constexpr int DECODE_MAX_CLUSTER = 16;

template <int D, int GROUP>
__device__ __forceinline__ void merge_cluster_parts(const float (&headMax)[GROUP], const float (&headSum)[GROUP],
                                                    const float (&blockOutput)[GROUP][D], act_t* out, int t,
                                                    int numHeads, int firstHead, int group) {
    cluster_sync();  // every block's part is in its shared memory
    int width = cluster_size(), rank = cluster_rank();
    int share = (group * D + width - 1) / width;
    for (int i = rank * share + threadIdx.x; i < min((rank + 1) * share, group * D); i += blockDim.x) {
        int g = i / D, d = i % D;
        float maxes[DECODE_MAX_CLUSTER], sums[DECODE_MAX_CLUSTER], outputs[DECODE_MAX_CLUSTER];
#pragma unroll
        for (int r = 0; r < DECODE_MAX_CLUSTER; r++) {
            bool in = r < width;
            maxes[r] = in ? remote_load(&headMax[g], r) : -jv_infinity();
            sums[r] = in ? remote_load(&headSum[g], r) : 0.0f;
            outputs[r] = in ? remote_load(&blockOutput[g][d], r) : 0.0f;
        }
        float m = -jv_infinity(), total = 0.0f, weighted = 0.0f;
        fold_parts(maxes, sums, outputs, m, total, weighted);
        out[((i64) t * numHeads + firstHead + g) * D + d] = float_to_act(weighted / total);
    }
    cluster_sync();  // no block leaves while another may still read its shared memory
}

// GROUP is the most query heads per KV head the build serves (4 or 8): it sizes the registers
// and shared memory, so the common group of 4 does not pay for 8.
// What a decode step may leave to paged_decode (the host's choice, for steps of one token per
// sequence): writing the step's keys and values into the cache (keys null: write_kv_cache did it)
// and the rotary embedding of the queries and those keys (cosSin null: none, or done already).
struct DecodeFusion {
    const act_t* keys;    // [T, numKvHeads * D], token rows kvStride elements apart
    const act_t* values;  // [T, numKvHeads * D], token rows kvStride elements apart
    const int* slots;     // [T], a negative slot: not cached
    const void* cosSin;   // as rotary.cu's
    int cosSinType;
    int rotaryDim;
    int neox;
    int maxPositions;
    const int* ropePositions;  // [T]
    int* error;
    i64 kvStride;  // numKvHeads * D, or more where the keys and values are columns of a wider product
};

// Element d of one head's row ([D]) as rotary.cu's rotate_token leaves it for this position.
__device__ __forceinline__ float rotated_element(const act_t* head, int d, const DecodeFusion& fusion, int position) {
    float x = act_to_float(head[d]);
    if (fusion.cosSin == nullptr || d >= fusion.rotaryDim || position < 0 || position >= fusion.maxPositions) return x;
    int half = fusion.rotaryDim / 2;
    bool first = fusion.neox ? d < half : (d & 1) == 0;
    int pair = fusion.neox ? (first ? d : d - half) : d >> 1;
    float partner = act_to_float(head[fusion.neox ? (first ? d + half : d - half) : d ^ 1]);
    i64 row = (i64) position * fusion.rotaryDim;
    float cosine = load_element(fusion.cosSin, fusion.cosSinType, row + pair);
    float sine = load_element(fusion.cosSin, fusion.cosSinType, row + half + pair);
    return first ? x * cosine - partner * sine : x * cosine + partner * sine;
}

// The pieces a lane of the tiled paged_decode loads its D/8 value elements of a key in: 16 bytes
// where D is a multiple of 64, else 8 (a 96-wide head's 12 elements: three).
// 80-wide heads (D % 64 == 16) in the tiled form: a key row is D / 32 steps of 32 elements in 16-byte
// pieces and a last step of 16 in 8-byte pieces; a lane takes 8 value elements of each 64 in a 16-byte
// piece and 2 of the last 16 in a 4-byte one (decode_value_dim), so that each load a key row is contiguous.
template <int D> constexpr bool DECODE_TAIL = D % 64 == 16;
template <bool SIXTEEN_BYTES> struct DecodeValuePieceOf { using type = uint4; };
template <> struct DecodeValuePieceOf<false> { using type = uint2; };
template <int D> using DecodeValuePiece = typename DecodeValuePieceOf<D % 64 == 0 || DECODE_TAIL<D>>::type;
// Value elements between a lane's consecutive pieces, and a lane row's first element.
template <int D> constexpr int DECODE_VALUE_STRIDE = DECODE_TAIL<D> ? 64 : (int) (sizeof(DecodeValuePiece<D>) / sizeof(act_t));
template <int D> constexpr int DECODE_ROW_ELEMENTS = DECODE_TAIL<D> ? 8 : D / 8;
template <int D> constexpr int DECODE_VALUE_PIECES = DECODE_TAIL<D> ? D / 64 : D / 8 / (int) (sizeof(DecodeValuePiece<D>) / sizeof(act_t));
// The first of the two value dimensions (of A rows row and row + 8) that m-tile mt of lane row `row` takes.
template <int D>
__device__ __forceinline__ int decode_value_dim(int row, int mt) {
    if constexpr (DECODE_TAIL<D>) {
        return mt == D / 16 - 1 ? D - 16 + 2 * row : 64 * (mt / 4) + 8 * row + 2 * (mt % 4);
    } else {
        return row * (D / 8) + 2 * mt;
    }
}

template <class Piece>
__device__ __forceinline__ Piece load_cache_value(const act_t* p);

template <>
__device__ __forceinline__ uint4 load_cache_value<uint4>(const act_t* p) {
    return load_cache_piece(p);
}

template <>
__device__ __forceinline__ unsigned int load_cache_value<unsigned int>(const act_t* p) {
#if DECODE_CACHE_LOADS == 1
    unsigned int r;
    asm volatile("ld.global.cs.u32 %0, [%1];" : "=r"(r) : "l"(p));
    return r;
#elif DECODE_CACHE_LOADS == 2
    unsigned int r;
    asm volatile("ld.global.L1::no_allocate.u32 %0, [%1];" : "=r"(r) : "l"(p));
    return r;
#else
    return *(const unsigned int*) p;
#endif
}

template <>
__device__ __forceinline__ uint2 load_cache_value<uint2>(const act_t* p) {
#if DECODE_CACHE_LOADS == 1
    uint2 r;
    asm volatile("ld.global.cs.v2.u32 {%0,%1}, [%2];" : "=r"(r.x), "=r"(r.y) : "l"(p));
    return r;
#elif DECODE_CACHE_LOADS == 2
    uint2 r;
    asm volatile("ld.global.L1::no_allocate.v2.u32 {%0,%1}, [%2];" : "=r"(r.x), "=r"(r.y) : "l"(p));
    return r;
#else
    return *(const uint2*) p;
#endif
}

// One warp's tile of 16 keys from `first` for the tiled paged_decode (keys past end are zeros):
// keys[r][i] = elements 32i + 8q .. 32i + 8q + 7 of key first + row + 8r, and values[k][p] = piece
// p of elements row·D/8 .. of the value rows of keys first + (2q, 2q + 1, 2q + 8, 2q + 9)[k], for
// lane (row, q). valueBase points at this lane's first value element of a cache row (kv_row 0). With
// DECODE_TAIL, keyTails[r] = elements D - 16 + 4q .. + 3 of key first + row + 8r and valueTails[k]
// elements D - 16 + 2·row, + 1 of the value rows, and values[k][p] elements 64p + 8·row .. + 7.
template <int D>
__device__ __forceinline__ void load_decode_tile(uint4 (&keys)[2][D / 32], DecodeValuePiece<D> (&values)[4][DECODE_VALUE_PIECES<D>],
                                                 uint2 (&keyTails)[2], unsigned int (&valueTails)[4],
                                                 const act_t* keyBase,
                                                 const act_t* valueBase, const int* blockTable, int blockSize,
                                                 int kvHead, int numKvHeads, int first, int end, int lane) {
    int row = lane >> 2, quad = lane & 3;
    // The slot a key lane finds for each of its keys, which the value lanes take from it by shuffles
    // (-1: past end).
    int keySlots[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int j = first + row + 8 * r;
        keySlots[r] = j < end ? blockTable[j / blockSize] * blockSize + j % blockSize : -1;
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        i64 at = kv_row_of_slot(keySlots[r], kvHead, numKvHeads, D, blockSize);
#pragma unroll
        for (int i = 0; i < D / 32; i++) {
            keys[r][i] = keySlots[r] >= 0 ? load_cache_piece(keyBase + at + 32 * i + 8 * quad) : make_uint4(0, 0, 0, 0);
        }
        if constexpr (DECODE_TAIL<D>) {
            keyTails[r] = keySlots[r] >= 0 ? load_cache_value<uint2>(keyBase + at + D - 16 + 4 * quad) : make_uint2(0, 0);
        }
    }
    // The keys 2q, 2q + 1, 2q + 8, 2q + 9 are those lanes 8q and 8q + 4 found.
    int valueSlots[4] = {__shfl_sync(0xffffffffu, keySlots[0], 8 * quad), __shfl_sync(0xffffffffu, keySlots[0], 8 * quad + 4),
                          __shfl_sync(0xffffffffu, keySlots[1], 8 * quad), __shfl_sync(0xffffffffu, keySlots[1], 8 * quad + 4)};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        i64 at = kv_row_of_slot(valueSlots[k], kvHead, numKvHeads, D, blockSize);
#pragma unroll
        for (int p = 0; p < DECODE_VALUE_PIECES<D>; p++) {
            values[k][p] = valueSlots[k] >= 0 ? load_cache_value<DecodeValuePiece<D>>(valueBase + at + p * DECODE_VALUE_STRIDE<D>)
                                              : DecodeValuePiece<D>{};
        }
        if constexpr (DECODE_TAIL<D>) {  // valueBase is the row's element 8·row; its tail pair is at D - 16 + 2·row
            valueTails[k] = valueSlots[k] >= 0 ? load_cache_value<unsigned int>(valueBase + at - 6 * row + D - 16) : 0u;
        }
    }
}

// Puts the token's own key and value (newKey, newValue: [D], as cached) into a tile that
// load_decode_tile read before they were cached, for lane (row, q) as it lays them out.
template <int D>
__device__ __forceinline__ void patch_decode_tile(uint4 (&keys)[2][D / 32], DecodeValuePiece<D> (&values)[4][DECODE_VALUE_PIECES<D>],
                                                  uint2 (&keyTails)[2], unsigned int (&valueTails)[4], const act_t* newKey,
                                                  const act_t* newValue, int first, int position, int lane) {
    int row = lane >> 2, quad = lane & 3;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (first + row + 8 * r != position) continue;
#pragma unroll
        for (int i = 0; i < D / 32; i++) keys[r][i] = *(const uint4*) (newKey + 32 * i + 8 * quad);
        if constexpr (DECODE_TAIL<D>) keyTails[r] = *(const uint2*) (newKey + D - 16 + 4 * quad);
    }
#pragma unroll
    for (int k = 0; k < 4; k++) {
        if (first + 2 * quad + (k & 1) + 8 * (k >> 1) != position) continue;
#pragma unroll
        for (int p = 0; p < DECODE_VALUE_PIECES<D>; p++) {
            values[k][p] = *(const DecodeValuePiece<D>*) (newValue + row * DECODE_ROW_ELEMENTS<D> + p * DECODE_VALUE_STRIDE<D>);
        }
        if constexpr (DECODE_TAIL<D>) valueTails[k] = *(const unsigned int*) (newValue + D - 16 + 2 * row);
    }
}

// RELATIVE: scores also get a learned bias by relative position (T5's decoder; relative_bias), in the
// _relative kernels only, so that the others are built as before.
template <int D, int GROUP, bool RELATIVE = false>
__device__ __forceinline__ void paged_decode_block(
        const act_t* q, act_t* out, act_t* keyCache, act_t* valueCache, const int* positions,
        const int* tokenSequences, const int* blockTables, int blockTableStride, int blockSize, int numHeads,
        int numKvHeads, float scale, int slidingWindow, float logitSoftcap, const float* alibiSlopes,
        const int* tokenList, float* partials, unsigned int* counters, int partitionSize, i64 qStride,
        const DecodeFusion& fusion, const float* relativeBias = nullptr, int biasDistance = 0) {
    constexpr int PIECE = 16 / sizeof(act_t);  // elements per 16-byte load
    constexpr int PIECES = D / PIECE;          // 16-byte pieces per row
    __shared__ float queries[GROUP][D];
    __shared__ float headMax[GROUP];
    __shared__ float headSum[GROUP];
    __shared__ float warpOutput[DECODE_WARPS][GROUP][D];
    // The cluster merge's part (merge_cluster_parts), written after the last read of the queries: where
    // the group's arrays would pass 48 KB of static shared memory (8 heads of 256), it takes their rows.
    constexpr bool OUTPUT_OVER_QUERIES = GROUP * D > 1024;
    __shared__ float blockOutputRows[OUTPUT_OVER_QUERIES ? 1 : GROUP][D];
    float (&blockOutput)[GROUP][D] = *reinterpret_cast<float (*)[GROUP][D]>(OUTPUT_OVER_QUERIES ? &queries[0][0] : &blockOutputRows[0][0]);

    // The grid is (tokens, KV heads, partitions). What the pass cannot change is read before the wait:
    // the pass's inputs, uploaded before it, and keys cached in earlier steps.
    // Before its wait it reads: tokenList, positions, tokenSequences
    int tokenIndex = blockIdx.x;
    int t = tokenList[tokenIndex];
    int kvHead = blockIdx.y;
    int partition = blockIdx.z;
    int partitions = gridDim.z;
    int group = numHeads / numKvHeads;
    int firstHead = kvHead * group;
    int position = positions[t];
    int firstKey = slidingWindow > 0 ? max(0, position - slidingWindow + 1) : 0;
    int base = partition * partitionSize;
    int begin = max(firstKey, base);
    int end = min(position + 1, base + partitionSize);
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    const int stride = D + 2;
    // The partitions that hold keys of this token: the grid has more where a graph serves every
    // context its block tables can hold (most of them, at the start of a long table), and those
    // return at once, neither writing a part nor counting towards the merge.
    int firstPart = firstKey / partitionSize;
    int lastPart = position / partitionSize;
    int parts = lastPart - firstPart + 1;
    int ropePosition = fusion.cosSin == nullptr ? 0 : fusion.ropePositions[t];
    // Where all of the token's parts lie in one cluster of the launch, they merge there, and that
    // cluster's blocks without keys of the token take part with an empty part; other clusters return.
    int clusterWidth = cluster_size();
    bool clusterMerge = parts > 1 && clusterWidth > 1 && firstPart / clusterWidth == lastPart / clusterWidth;
    bool live = partition >= firstPart && partition <= lastPart;
    if (clusterMerge ? partition / clusterWidth != lastPart / clusterWidth : !live) return;
    const int* blockTable = blockTables + (i64) tokenSequences[t] * blockTableStride;
    // The tiled form (tensor cores) where a key's row is whole 32-element pieces (D a multiple of 32, or
    // 80 with its DECODE_TAIL) and its tiles fit the registers (D up to 128 at four blocks an SM, 256 at
    // two), else the scalar one (every head in float32, whose build has no tiled form).
    [[maybe_unused]] constexpr bool TILED = DECODE_TILED && (D % 32 == 0 || DECODE_TAIL<D>)
            && (D == 64 || D == 128 || (D == 80 || D == 96 || D == 256) && DECODE_TILES_ALL_WIDTHS);
#if DECODE_TILED
    uint4 tileKeys[2][D / 32];
    DecodeValuePiece<D> tileValues[4][DECODE_VALUE_PIECES<D>];
    uint2 tileKeyTails[2];
    unsigned int tileValueTails[4];
    const act_t* keyBase = keyCache;
    const act_t* valueBase = valueCache + (lane >> 2) * DECODE_ROW_ELEMENTS<D>;
    // The warp's first tile is asked for before the queries are rotated and the new key cached, so
    // that those dependent reads overlap its loads, and before waiting for the kernel ahead: the
    // batch's inputs were uploaded before the pass, and the cache's keys before this token's were
    // written in earlier steps. The tile holding the token's own position gets its key and value below.
    if constexpr (TILED) {
    if (DECODE_EARLY_TILE && begin + 16 * warp < end) {
        load_decode_tile<D>(tileKeys, tileValues, tileKeyTails, tileValueTails, keyBase, valueBase, blockTable, blockSize,
                            kvHead, numKvHeads, begin + 16 * warp, end, lane);
    }
    }
#endif
    JV_DEPENDENT_PROLOGUE();
    if (fusion.cosSin != nullptr && (ropePosition < 0 || ropePosition >= fusion.maxPositions) && threadIdx.x == 0
        && kvHead == 0 && partition == lastPart) {
        report_error(fusion.error, JV_ERROR_POSITION, ropePosition, t, fusion.maxPositions);
    }
    for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
        int g = i / D;
        queries[g][i % D] = rotated_element(q + (i64) t * qStride + (i64) (firstHead + g) * D, i % D, fusion, ropePosition);
    }
    // The block whose partition holds this token's own position caches its key and value first.
    int newSlot = fusion.keys != nullptr && position >= begin && position < end ? fusion.slots[t] : -1;
    __shared__ __align__(16) act_t newKey[D];
    __shared__ __align__(16) act_t newValue[D];
    if (newSlot >= 0) {
        i64 row = (i64) t * fusion.kvStride + (i64) kvHead * D;
        i64 target = kv_row_of_slot(newSlot, kvHead, numKvHeads, D, blockSize);
        for (int d = threadIdx.x; d < D; d += blockDim.x) {
            act_t key = float_to_act(rotated_element(fusion.keys + row, d, fusion, ropePosition));
            act_t value = fusion.values[row + d];
            keyCache[target + d] = key;
            valueCache[target + d] = value;
            newKey[d] = key;
            newValue[d] = value;
        }
    }
    __syncthreads();

#if DECODE_TILED
    if constexpr (TILED) {
    {
        static_assert(GROUP <= 8, "the group's heads are the A operand's first 8 rows");
        static_assert(D % 32 == 0 || DECODE_TAIL<D>, "a lane takes D / 8 value elements in 16-, 8- or 4-byte pieces");
        // Each warp takes tiles of 16 keys (tile i of the partition goes to warp i % DECODE_WARPS)
        // and keeps its own online softmax; a tile's keys and values are all loaded before its
        // first multiply, so a warp has 8 KB in flight. S = Q·Kᵀ: A = the group's queries (rows
        // 8-15 zero), B = 8 keys a column. The k index of each 16-element step is mapped so that
        // a lane loads whole 16-byte pieces: step 2i + h covers elements 32i + 8q + 4h + (0..3) for
        // quads q, as pairs (0, 1) at k 2q and (2, 3) at k 2q + 8. Oᵀ = Vᵀ·Pᵀ: A = Vᵀ (16 value
        // dimensions a row), B = Pᵀ straight from S's accumulator layout. Value row m of m-tile mt
        // is dimension (m % 8)·D/8 + 2·mt + m/8 (decode_value_dim; for 80: 8 of each 64, then 2 of the last
        // 16), so that a lane loads whole pieces of each of its four keys' value rows and pairs them by byte permutes.
        __shared__ float warpMax[DECODE_WARPS][GROUP];
        __shared__ float warpSum[DECODE_WARPS][GROUP];
        int row = lane >> 2, quad = lane & 3;
        // The A fragments of the queries, those of steps 2i and 2i + 1 for lane (row, quad) in
        // queryPieces[i][row][quad] (so that a quarter warp reads 128 contiguous bytes): read at
        // every tile rather than held, which keeps the kernel within 128 registers without spills.
        __shared__ uint4 queryPieces[D / 32][8][4];
        for (int x = threadIdx.x; x < D / 32 * 32; x += blockDim.x) {
            int i = x / 32, r = (x / 4) % 8, d = 32 * i + 8 * (x % 4);
            const float* query = queries[min(r, GROUP - 1)];
            unsigned int words[4] = {0u, 0u, 0u, 0u};
            if (r < group) {
#pragma unroll
                for (int w = 0; w < 4; w++) words[w] = pack_pair(float_to_act(query[d + 2 * w]), float_to_act(query[d + 2 * w + 1]));
            }
            queryPieces[i][r][x % 4] = make_uint4(words[0], words[1], words[2], words[3]);
        }
        // DECODE_TAIL: the last 16-element step's A fragments, elements D - 16 + 4q .. + 3 for lane (row, q).
        __shared__ uint2 queryTails[DECODE_TAIL<D> ? 8 : 1][4];
        if constexpr (DECODE_TAIL<D>) {
            if (threadIdx.x < 32) {
                int r = threadIdx.x / 4, d = D - 16 + 4 * (threadIdx.x % 4);
                const float* query = queries[min(r, GROUP - 1)];
                unsigned int words[2] = {0u, 0u};
                if (r < group) {
#pragma unroll
                    for (int w = 0; w < 2; w++) words[w] = pack_pair(float_to_act(query[d + 2 * w]), float_to_act(query[d + 2 * w + 1]));
                }
                queryTails[r][threadIdx.x % 4] = make_uint2(words[0], words[1]);
            }
        }
        __syncthreads();
        float slope = alibiSlopes != nullptr && row < group ? alibiSlopes[firstHead + row] : 0.0f;
        [[maybe_unused]] int biasHead = min(firstHead + row, numHeads - 1);  // rows past the group are padding
        float output[D / 16][4];
#pragma unroll
        for (int mt = 0; mt < D / 16; mt++) output[mt][0] = output[mt][1] = output[mt][2] = output[mt][3] = 0.0f;
        float runningMax = -jv_infinity();
        float runningSum = 0.0f;
        bool preloaded = DECODE_EARLY_TILE;
        for (int first = begin + 16 * warp; first < end; first += 16 * DECODE_WARPS) {
            bool ownTile = position >= first && position < first + 16;
            if (!preloaded || (ownTile && (newSlot < 0 || !DECODE_PATCH_OWN_TILE))) {
                load_decode_tile<D>(tileKeys, tileValues, tileKeyTails, tileValueTails, keyBase, valueBase, blockTable,
                                    blockSize, kvHead, numKvHeads, first, end, lane);
            } else if (ownTile) {
                patch_decode_tile<D>(tileKeys, tileValues, tileKeyTails, tileValueTails, newKey, newValue, first, position, lane);
            }
            preloaded = false;

            float dots[2][4];
#pragma unroll
            for (int n = 0; n < 2; n++) {
                dots[n][0] = dots[n][1] = dots[n][2] = dots[n][3] = 0.0f;
#pragma unroll
                for (int i = 0; i < D / 32; i++) {
                    uint4 query = queryPieces[i][row][quad];
                    unsigned int a0[4] = {query.x, 0u, query.y, 0u};
                    mma_16816(dots[n], a0, tileKeys[n][i].x, tileKeys[n][i].y);
                    unsigned int a1[4] = {query.z, 0u, query.w, 0u};
                    mma_16816(dots[n], a1, tileKeys[n][i].z, tileKeys[n][i].w);
                }
                if constexpr (DECODE_TAIL<D>) {
                    uint2 query = queryTails[row][quad];
                    unsigned int a[4] = {query.x, 0u, query.y, 0u};
                    mma_16816(dots[n], a, tileKeyTails[n].x, tileKeyTails[n].y);
                }
            }
            // dots[n][c]: head `row`, key first + 8n + 2q + c (c < 2; entries 2 and 3 are the zero rows).
            float tileMax = -jv_infinity();
#pragma unroll
            for (int n = 0; n < 2; n++) {
#pragma unroll
                for (int c = 0; c < 2; c++) {
                    int j = first + 8 * n + 2 * quad + c;
                    float s = scale * dots[n][c];
                    if (logitSoftcap > 0.0f) s = logitSoftcap * tanhf(s / logitSoftcap);
                    s += slope * (float) (j - position);
                    if constexpr (RELATIVE) s += relative_bias(relativeBias, biasDistance, biasHead, j - position);
                    dots[n][c] = j < end ? s : -jv_infinity();
                    tileMax = fmaxf(tileMax, dots[n][c]);
                }
            }
            float newMax = fmaxf(runningMax, quad_max(tileMax));  // finite: key `first` is in the tile
            float correction = fast_exp(runningMax - newMax);
            runningMax = newMax;
            unsigned int weights[2];
            float tileSum = 0.0f;
#pragma unroll
            for (int n = 0; n < 2; n++) {
                act_t p0 = float_to_act(fast_exp(dots[n][0] - newMax));
                act_t p1 = float_to_act(fast_exp(dots[n][1] - newMax));
                tileSum += act_to_float(p0) + act_to_float(p1);
                weights[n] = pack_pair(p0, p1);
            }
            runningSum = runningSum * correction + tileSum;
            // Output columns are heads 2q and 2q + 1, whose corrections lanes 8q and 8q + 4 hold.
            float correction0 = __shfl_sync(0xffffffffu, correction, 8 * quad);
            float correction1 = __shfl_sync(0xffffffffu, correction, 8 * quad + 4);
#pragma unroll
            for (int mt = 0; mt < D / 16; mt++) {
                constexpr int WORDS = sizeof(DecodeValuePiece<D>) / 4;  // 32-bit words a value piece holds
                // Key k's word of m-tile mt: its two value dimensions decode_value_dim(row, mt) and + 1.
                auto word = [&](int k) {
                    if constexpr (DECODE_TAIL<D>) {
                        if (mt == D / 16 - 1) return tileValueTails[k];
                    }
                    return ((const unsigned int*) &tileValues[k][mt / WORDS])[mt % WORDS];
                };
                unsigned int w0 = word(0), w1 = word(1), w2 = word(2), w3 = word(3);
                unsigned int a[4] = {__byte_perm(w0, w1, 0x5410), __byte_perm(w0, w1, 0x7632),
                                     __byte_perm(w2, w3, 0x5410), __byte_perm(w2, w3, 0x7632)};
                output[mt][0] *= correction0;
                output[mt][1] *= correction1;
                output[mt][2] *= correction0;
                output[mt][3] *= correction1;
                mma_16816(output[mt], a, weights[0], weights[1]);
            }
        }
        float rowSum = quad_sum(runningSum);
        if (quad == 0 && row < group) {
            warpMax[warp][row] = runningMax;
            warpSum[warp][row] = rowSum;
        }
        __syncthreads();
        auto blockMaxOf = [&](int h) {  // head h's max over the block's warps
            float blockMax = -jv_infinity();
#pragma unroll
            for (int w = 0; w < DECODE_WARPS; w++) blockMax = fmaxf(blockMax, warpMax[w][h]);
            return blockMax;
        };
        // Each warp's output rescaled to the block's max per head, in the layout the merge below reads.
        float factors[2];
#pragma unroll
        for (int c = 0; c < 2; c++) {
            int h = min(2 * quad + c, GROUP - 1);
            factors[c] = fast_exp(warpMax[warp][h] - blockMaxOf(h));
        }
#pragma unroll
        for (int mt = 0; mt < D / 16; mt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int h = 2 * quad + (e & 1);
                int d = decode_value_dim<D>(row, mt) + (e >> 1);
                if (h < group) warpOutput[warp][min(h, GROUP - 1)][(d % PIECE) * PIECES + d / PIECE] = output[mt][e] * factors[e & 1];
            }
        }
        if (threadIdx.x < group) {
            int h = threadIdx.x;
            float blockMax = blockMaxOf(h);
            float total = 0.0f;
            for (int w = 0; w < DECODE_WARPS; w++) total += warpSum[w][h] * fast_exp(warpMax[w][h] - blockMax);
            headMax[h] = blockMax;
            headSum[h] = total;
        }
    }
    } else
#endif
    {
    // The scalar form keeps a partition's scores and key slots in shared memory.
    // Value pieces a key takes lanes for: PIECES rounded up to a power of two (a 96-wide head's 12 take
    // 16 lanes, 4 idle; an 80-wide head's 10, 6 idle), so that a key's lanes never straddle a warp and the fold below pairs them.
    constexpr int LANE_PIECES = PIECES <= 8 ? 8 : PIECES <= 16 ? 16 : 32;
    static_assert(PIECES <= 32, "a key's value pieces fit in a warp");
    constexpr int KEY_LANES = 32 * DECODE_WARPS / LANE_PIECES;
    __shared__ float scores[GROUP][DECODE_PARTITION];
    __shared__ int slots[DECODE_PARTITION];
    // An 80-wide row's 10 pieces split over 2 threads, not 4.
    constexpr int KEY_THREADS = PIECES % DECODE_KEY_THREADS == 0 ? DECODE_KEY_THREADS : 2;
    constexpr int SHARE = PIECES / KEY_THREADS;  // 16-byte pieces of a key row per thread
    constexpr int ROWS = DECODE_KEY_ROWS;
    static_assert(PIECES % KEY_THREADS == 0 && 32 % KEY_THREADS == 0, "key threads must divide a row and a warp");
    int share = threadIdx.x % KEY_THREADS;
    int rowStride = blockDim.x / KEY_THREADS;
    // Every thread runs the same number of rounds (the shuffles need the whole warp); rows past end
    // are zeros. A round loads all of its ROWS rows' pieces before the first multiply.
    for (int round = begin; round < end; round += ROWS * rowStride) {
        uint4 loaded[ROWS][SHARE];
        int js[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            int j = round + r * rowStride + threadIdx.x / KEY_THREADS;
            js[r] = j;
            const act_t* key = keyCache;
            if (j < end) {
                int slot = blockTable[j / blockSize] * blockSize + j % blockSize;
                if (share == 0) slots[j - base] = slot;
                key = keyCache + kv_row_of_slot(slot, kvHead, numKvHeads, D, blockSize);
            }
#pragma unroll
            for (int i = 0; i < SHARE; i++) {
                loaded[r][i] = j < end ? load_cache_piece(key + (i * KEY_THREADS + share) * PIECE) : make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            float dots[GROUP];
#pragma unroll
            for (int g = 0; g < GROUP; g++) dots[g] = 0.0f;
#pragma unroll
            for (int i = 0; i < SHARE; i++) {
                const act_t* piece = (const act_t*) &loaded[r][i];
                int c = (i * KEY_THREADS + share) * PIECE;
#pragma unroll
                for (int e = 0; e < PIECE; e++) {
                    float k = act_to_float(piece[e]);
#pragma unroll
                    for (int g = 0; g < GROUP; g++) {
                        if (g < group) dots[g] += queries[g][c + e] * k;
                    }
                }
            }
#pragma unroll
            for (int g = 0; g < GROUP; g++) {
                for (int offset = 1; offset < KEY_THREADS; offset <<= 1) {
                    dots[g] += __shfl_xor_sync(0xffffffffu, dots[g], offset);
                }
            }
            int j = js[r];
            if (j >= end || share != 0) continue;
#pragma unroll
            for (int g = 0; g < GROUP; g++) {
                if (g >= group) break;
                float s = scale * dots[g];
                if (logitSoftcap > 0.0f) s = logitSoftcap * tanhf(s / logitSoftcap);
                if (alibiSlopes != nullptr) s += alibiSlopes[firstHead + g] * (float) (j - position);
                if constexpr (RELATIVE) s += relative_bias(relativeBias, biasDistance, firstHead + g, j - position);
                scores[g][j - base] = s;
            }
        }
    }
    __syncthreads();

    for (int g = warp; g < group; g += DECODE_WARPS) {
        float m = -jv_infinity();
        for (int j = begin + lane; j < end; j += 32) m = fmaxf(m, scores[g][j - base]);
        m = warp_max(m);
        float sum = 0.0f;
        for (int j = begin + lane; j < end; j += 32) {
            float p = expf(scores[g][j - base] - m);
            scores[g][j - base] = p;
            sum += p;
        }
        sum = warp_sum(sum);
        if (lane == 0) {
            headMax[g] = m;
            headSum[g] = sum;
        }
    }
    __syncthreads();

    int piece = threadIdx.x % LANE_PIECES;
    int keyLane = threadIdx.x / LANE_PIECES;
    float accumulator[GROUP][PIECE];
#pragma unroll
    for (int g = 0; g < GROUP; g++) {
#pragma unroll
        for (int e = 0; e < PIECE; e++) accumulator[g][e] = 0.0f;
    }
#pragma unroll (VALUE_UNROLL)
    for (int j = begin + keyLane; piece < PIECES && j < end; j += KEY_LANES) {
        act_t v[PIECE];
        *(uint4*) v = load_cache_piece(valueCache + kv_row_of_slot(slots[j - base], kvHead, numKvHeads, D, blockSize)
                                       + piece * PIECE);
#pragma unroll
        for (int g = 0; g < GROUP; g++) {
            if (g >= group) break;
            float p = scores[g][j - base];
#pragma unroll
            for (int e = 0; e < PIECE; e++) accumulator[g][e] += p * act_to_float(v[e]);
        }
    }
    // The key lanes of a warp hold partial sums of the same pieces: fold them, then one per warp writes.
#pragma unroll
    for (int g = 0; g < GROUP; g++) {
        if (g >= group) break;
#pragma unroll
        for (int e = 0; e < PIECE; e++) {
            float v = accumulator[g][e];
            for (int offset = LANE_PIECES; offset < 32; offset <<= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
            // Stored piece-minor, so that the lanes' stores of one e fall in different banks.
            if (lane < PIECES) warpOutput[warp][g][e * PIECES + piece] = v;  // lanes below PIECES: piece == lane
        }
    }
    }
    __syncthreads();

    for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
        int g = i / D, d = i % D;
        float total = 0.0f;
#pragma unroll
        for (int w = 0; w < DECODE_WARPS; w++) total += warpOutput[w][g][(d % PIECE) * PIECES + d / PIECE];
        if (parts == 1) {
            out[((i64) t * numHeads + firstHead + g) * D + d] = float_to_act(total / headSum[g]);
        } else if (clusterMerge) {
            blockOutput[g][d] = live ? total : 0.0f;
        } else {
            float* part = partials + (((i64) tokenIndex * numHeads + firstHead + g) * partitions + partition) * stride;
            if (d == 0) {
                part[0] = headMax[g];
                part[1] = headSum[g];
            }
            part[2 + d] = total;
        }
    }
    if (clusterMerge) {
        if (!live && threadIdx.x < group) {
            headMax[threadIdx.x] = -jv_infinity();
            headSum[threadIdx.x] = 0.0f;
        }
        merge_cluster_parts<D, GROUP>(headMax, headSum, blockOutput, out, t, numHeads, firstHead, group);
    } else if (parts > 1) {
        merge_parts_if_last<D>(partials, out, counters, t, tokenIndex, kvHead, numKvHeads, numHeads, firstHead, group,
                               partitions, firstPart, parts);
    }
}

// The kernels' shared parameter list; the _relative ones add the bias table and its distance
// (AttentionParams.RelativeBias) at the end.
#define JV_NO_EXTRA
#define JV_RELATIVE_PARAMS , const float* relativeBias, int biasDistance
#define JV_RELATIVE_ARGS , relativeBias, biasDistance
#define PAGED_DECODE(D, GROUP) PAGED_DECODE_BOUNDED(D, GROUP, DECODE_BOUNDS)
#define PAGED_DECODE_BOUNDED(D, GROUP, LAUNCH_BOUNDS) \
    PAGED_DECODE_KERNEL(paged_decode_##D##_g##GROUP, D, GROUP, LAUNCH_BOUNDS, false, JV_NO_EXTRA, JV_NO_EXTRA)
#define PAGED_DECODE_RELATIVE(D, GROUP) \
    PAGED_DECODE_KERNEL(paged_decode_##D##_g##GROUP##_relative, D, GROUP, DECODE_BOUNDS, true, JV_RELATIVE_PARAMS, \
                        JV_RELATIVE_ARGS)
#define PAGED_DECODE_KERNEL(paged_decode_name, D, GROUP, LAUNCH_BOUNDS, RELATIVE, EXTRA_PARAMS, EXTRA_ARGS)     \
    extern "C" __global__ void LAUNCH_BOUNDS paged_decode_name(                                                  \
            const act_t* q, act_t* out, act_t* keyCache, act_t* valueCache, const int* positions,                \
            const int* tokenSequences, const int* blockTables, int blockTableStride, int blockSize,             \
            int numHeads, int numKvHeads, float scale, int slidingWindow, float logitSoftcap,                    \
            const float* alibiSlopes, const int* tokenList, float* partials, unsigned int* counters,               \
            int partitionSize, const act_t* newKeys, const act_t* newValues, const int* newSlots,                \
            const void* cosSin, int cosSinType, int rotaryDim, int neox, int maxPositions,                       \
            const int* ropePositions, int* error, int qStride, int kvStride EXTRA_PARAMS) {                      \
        /* JV_DEPENDENT_PROLOGUE in paged_decode_block, after the reads of what the pass cannot change */     \
        DecodeFusion fusion = {newKeys, newValues, newSlots, cosSin, cosSinType, rotaryDim, neox, maxPositions,   \
                               ropePositions, error, kvStride};                                                   \
        paged_decode_block<D, GROUP, RELATIVE>(q, out, keyCache, valueCache, positions, tokenSequences,           \
                              blockTables, blockTableStride, blockSize, numHeads, numKvHeads, scale,             \
                              slidingWindow, logitSoftcap, alibiSlopes, tokenList, partials, counters,            \
                              partitionSize, qStride, fusion EXTRA_ARGS);                                         \
    }
PAGED_DECODE(64, 4)
PAGED_DECODE(64, 8)
PAGED_DECODE(128, 4)
PAGED_DECODE(128, 8)
// Float32 attention takes the generic kernel, so these are built for 16 bits only (a 256-wide row's 64
// float32 pieces would not fit a warp).
#if JV_ACT_TYPE != JV_F32
// T5's decoder (64-wide heads in every T5 and Flan-T5 size): its relative position bias in the scores.
PAGED_DECODE_RELATIVE(64, 4)
PAGED_DECODE_RELATIVE(128, 4)
PAGED_DECODE(80, 4)  // Phi-2, GPT-NeoX models of 80-wide heads
PAGED_DECODE(80, 8)
PAGED_DECODE(96, 4)  // Phi-3-mini, Phi-3-Vision
PAGED_DECODE(96, 8)
// Gemma's heads; groups of 8 (Gemma-2B) in the tiled form only (46 KB of static shared memory; the
// scalar form's would take 49 KB).
#if DECODE_TILED && DECODE_TILES_ALL_WIDTHS
PAGED_DECODE_BOUNDED(256, 4, __launch_bounds__(32 * DECODE_WARPS, 2))
PAGED_DECODE_BOUNDED(256, 8, __launch_bounds__(32 * DECODE_WARPS, 2))
#else
PAGED_DECODE(256, 4)
#endif
#endif

#if JV_ACT_TYPE != JV_F32
// ---- flash_prefill: causal attention of prompt chunks on tensor cores ----------------------
//
// FlashAttention-2 (Dao 2023) over the paged cache. A block of four warps takes a tile of up to
// 64 consecutive query tokens of one sequence and one head; each warp owns 16 of the tokens. Key
// and value tiles of FLASH_KEYS positions are gathered from the cache pages into shared memory;
// S = Q·Kᵀ and O += P·V run as mma.sync m16n8k16 (16-bit inputs, float32 sums), and the online
// softmax works on the accumulator registers in place, using the PTX ISA's fragment layouts:
// lane = 4·group + quad; a row-major A fragment holds rows (group, group+8) × columns
// (2·quad, 2·quad+1, 2·quad+8, 2·quad+9); a column-major B fragment holds rows (2·quad, 2·quad+1,
// 2·quad+8, 2·quad+9) of column group; a C fragment holds rows (group, group+8) × columns
// (2·quad, 2·quad+1). The key and value B fragments come from shared memory by ldmatrix, four
// 8×8 matrices an instruction (transposed for the values): with 16- and 32-bit loads it took three
// shared-memory loads per tensor-core instruction (an H100, 8 × 512-token prefill: 40.5k -> 41.1k tok/s).
#define FLASH_WARPS 4
// Three blocks an SM (at most 170 registers a thread): ldmatrix's fragments took 176 otherwise, two blocks.
#ifndef FLASH_MIN_BLOCKS
#define FLASH_MIN_BLOCKS 3
#endif
#define FLASH_ROWS_PER_WARP 16
#define FLASH_QUERIES (FLASH_WARPS * FLASH_ROWS_PER_WARP)
#define FLASH_KEYS 32

// Four 8×8 matrices of 16-bit elements from shared memory: lanes 8i..8i+7 give the addresses of
// matrix i's rows (16-byte aligned), and each lane receives, for matrix i in r[i], the elements
// (row lane/4, columns 2·(lane%4) and +1); transposed, (rows 2·(lane%4) and +1, column lane/4).
__device__ __forceinline__ void load_matrices(unsigned int* r, const act_t* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(row)) : "memory");
}

// Two such matrices (lanes 0-15's addresses); the other lanes' are not read.
__device__ __forceinline__ void load_two_matrices(unsigned int* r, const act_t* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(shared_address(row)) : "memory");
}

__device__ __forceinline__ void load_matrices_transposed(unsigned int* r, const act_t* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(row)) : "memory");
}

// ENCODER: the bidirectional form for encoders (encoder_flash): each token attends to every token of its
// own sequence (sequenceStarts), whose keys and values are rows of k and v ([tokens, numKvHeads · D],
// keyCache and valueCache) rather than cache pages; block x takes tokens 64x.. of the batch, which may
// straddle sequences (each row masks the keys outside its own). Positions, block tables, tiles, the
// window and ALiBi are not read.
// RELATIVE (encoder form only): scores also get a learned bias by the distance from the query to the key
// within their sequence, both ways (T5's encoder; relative_bias), in the _relative kernels only.
template <int D, bool ENCODER = false, bool RELATIVE = false>
__device__ __forceinline__ void flash_prefill_tile(
        const act_t* q, act_t* out, const act_t* keyCache, const act_t* valueCache, const int* positions,
        const int* tokenSequences, const int* blockTables, int blockTableStride, int blockSize, int numHeads,
        int numKvHeads, float scale, int slidingWindow, float logitSoftcap, const float* alibiSlopes,
        const int* tiles, const int* sequenceStarts = nullptr, int tokens = 0, const float* relativeBias = nullptr,
        int biasDistance = 0) {
    static_assert(ENCODER || !RELATIVE, "a relative bias only in the encoder form");
    constexpr int STRIDE = D + 8;  // padding spreads a tile's rows over the shared-memory banks
    constexpr int TILE_ELEMENTS = FLASH_KEYS * STRIDE;
    constexpr int STEPS = D / 16;  // k steps of a query-key product
    static_assert(D % 16 == 0, "a head is whole steps of the tensor-core product");
    // Wide heads (256) keep the tile's queries in shared memory and read their A fragments at each key
    // tile: the output's accumulators alone take D / 2 registers a thread. Their tiles (99 KB with the
    // queries) are dynamic shared memory, which the host sizes (Kernel.FLASH_PREFILL_256).
    constexpr bool QUERY_TILE = D > 128;
    // Two buffers each of keys and values: the next tile is copied in (cp.async) while this one is computed on.
    act_t (*keyTiles)[TILE_ELEMENTS];
    act_t (*valueTiles)[TILE_ELEMENTS];
    [[maybe_unused]] act_t* queryTile = nullptr;
    if constexpr (QUERY_TILE) {
        extern __shared__ __align__(16) act_t flashTiles[];
        keyTiles = reinterpret_cast<act_t (*)[TILE_ELEMENTS]>(flashTiles);
        valueTiles = keyTiles + 2;
        queryTile = flashTiles + 4 * TILE_ELEMENTS;
    } else {
        __shared__ __align__(16) act_t keyTileArray[2][TILE_ELEMENTS];
        __shared__ __align__(16) act_t valueTileArray[2][TILE_ELEMENTS];
        keyTiles = keyTileArray;
        valueTiles = valueTileArray;
    }

    int firstToken = ENCODER ? blockIdx.x * FLASH_QUERIES : tiles[2 * blockIdx.x];
    int tileTokens = ENCODER ? min(FLASH_QUERIES, tokens - firstToken) : tiles[2 * blockIdx.x + 1];
    int head = blockIdx.y;
    int kvHead = head / (numHeads / numKvHeads);
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    int group = lane >> 2;
    int quad = lane & 3;
    // The keys the tile reads: from firstKey (below) to lastPosition, the latest key of its last row.
    [[maybe_unused]] const int* blockTable = nullptr;
    [[maybe_unused]] int firstPosition = 0;
    int lastPosition;
    if constexpr (ENCODER) {
        lastPosition = sequenceStarts[tokenSequences[firstToken + tileTokens - 1] + 1] - 1;
    } else {
        blockTable = blockTables + (i64) tokenSequences[firstToken] * blockTableStride;
        firstPosition = positions[firstToken];
        lastPosition = positions[firstToken + tileTokens - 1];
    }
    float slope = ENCODER || alibiSlopes == nullptr ? 0.0f : alibiSlopes[head];

    // The two query rows of this lane; rows past the tile repeat its last token and are not written.
    int row0 = warp * FLASH_ROWS_PER_WARP + group;
    int row1 = row0 + 8;
    int token0 = firstToken + min(row0, tileTokens - 1);
    int token1 = firstToken + min(row1, tileTokens - 1);
    // Causal: a row sees keys up to its position. Encoder: keys [from, to) of its own sequence.
    int position0, position1;
    [[maybe_unused]] int from0 = 0, from1 = 0;
    if constexpr (ENCODER) {
        from0 = sequenceStarts[tokenSequences[token0]];
        from1 = sequenceStarts[tokenSequences[token1]];
        position0 = sequenceStarts[tokenSequences[token0] + 1] - 1;
        position1 = sequenceStarts[tokenSequences[token1] + 1] - 1;
    } else {
        position0 = positions[token0];
        position1 = positions[token1];
    }

    unsigned int queryFragments[QUERY_TILE ? 1 : STEPS][4];
    if constexpr (QUERY_TILE) {
        // Row r of the tile is token firstToken + min(r, tileTokens - 1); its copies join the first key tile's group.
        for (int i = threadIdx.x; i < FLASH_QUERIES * (D / 8); i += 32 * FLASH_WARPS) {
            int r = i / (D / 8), piece = i % (D / 8);
            const act_t* row = q + ((i64) (firstToken + min(r, tileTokens - 1)) * numHeads + head) * D;
            copy_async(queryTile + r * STRIDE + piece * 8, row + piece * 8, true);
        }
    } else {
        const act_t* query0 = q + ((i64) token0 * numHeads + head) * D;
        const act_t* query1 = q + ((i64) token1 * numHeads + head) * D;
#pragma unroll
        for (int c = 0; c < STEPS; c++) {
            int d = c * 16 + 2 * quad;
            queryFragments[c][0] = load_pair(query0 + d);
            queryFragments[c][1] = load_pair(query1 + d);
            queryFragments[c][2] = load_pair(query0 + d + 8);
            queryFragments[c][3] = load_pair(query1 + d + 8);
        }
    }

    float output[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) output[n][0] = output[n][1] = output[n][2] = output[n][3] = 0.0f;
    float max0 = -jv_infinity(), max1 = -jv_infinity();
    float sum0 = 0.0f, sum1 = 0.0f;

    int firstKey = ENCODER ? sequenceStarts[tokenSequences[firstToken]]
                           : slidingWindow > 0 ? max(0, firstPosition - slidingWindow + 1) : 0;
    // Starts copying the tile of keys and values from keyStart into buffer `buffer`; rows past
    // lastPosition are zeros.
    // Each thread takes one key row (so one block-table lookup a tile) and every ROW_THREADS-th
    // 16-byte piece of it, so that a warp's copies of one instruction cover whole runs of its rows.
    auto fetch_tile = [&](int keyStart, int buffer) {
        constexpr int CHUNKS = D / 8;  // 16-byte pieces per row
        constexpr int ROW_THREADS = 32 * FLASH_WARPS / FLASH_KEYS;
        static_assert(32 * FLASH_WARPS % FLASH_KEYS == 0, "a tile's rows split evenly");
        int r = threadIdx.x / ROW_THREADS;
        int j = keyStart + r;
        bool valid = j <= lastPosition;
        i64 rowOffset = 0;
        if constexpr (ENCODER) {
            if (valid) rowOffset = ((i64) j * numKvHeads + kvHead) * D;
        } else {
            if (valid) rowOffset = kv_row(blockTable[j / blockSize], j % blockSize, kvHead, numKvHeads, D, blockSize);
        }
#pragma unroll
        for (int k = 0; k < (CHUNKS + ROW_THREADS - 1) / ROW_THREADS; k++) {
            int piece = threadIdx.x % ROW_THREADS + k * ROW_THREADS;
            if (CHUNKS % ROW_THREADS != 0 && piece >= CHUNKS) break;  // an 80-wide row's 10 pieces
            i64 offset = valid ? rowOffset + piece * 8 : 0;
            copy_async(keyTiles[buffer] + r * STRIDE + piece * 8, keyCache + offset, valid);
            copy_async(valueTiles[buffer] + r * STRIDE + piece * 8, valueCache + offset, valid);
        }
        copy_async_commit();
    };
    fetch_tile(firstKey, 0);
    for (int keyStart = firstKey, buffer = 0; keyStart <= lastPosition; keyStart += FLASH_KEYS, buffer ^= 1) {
        // The other buffer was last read in the previous round, which ended with a barrier.
        if (keyStart + FLASH_KEYS <= lastPosition) {
            fetch_tile(keyStart + FLASH_KEYS, buffer ^ 1);
            copy_async_wait<1>();
        } else {
            copy_async_wait<0>();
        }
        __syncthreads();
        const act_t* keys = keyTiles[buffer];
        const act_t* values = valueTiles[buffer];

        float scores[FLASH_KEYS / 8][4];
        if constexpr (QUERY_TILE) {
#pragma unroll
            for (int n = 0; n < FLASH_KEYS / 8; n++) scores[n][0] = scores[n][1] = scores[n][2] = scores[n][3] = 0.0f;
            // A matrices: rows warp·16.. and +8 by dims c·16 and c·16+8, the A fragment of step c.
            const act_t* queryRow = queryTile + (warp * FLASH_ROWS_PER_WARP + (lane & 15)) * STRIDE + (lane >> 4) * 8;
#pragma unroll
            for (int c = 0; c < STEPS; c += 2) {
                unsigned int a0[4], a1[4];
                load_matrices(a0, queryRow + c * 16);
                load_matrices(a1, queryRow + (c + 1) * 16);
#pragma unroll
                for (int n = 0; n < FLASH_KEYS / 8; n++) {
                    unsigned int b[4];
                    load_matrices(b, keys + (n * 8 + (lane & 7)) * STRIDE + (lane >> 3) * 8 + c * 16);
                    mma_16816(scores[n], a0, b[0], b[1]);
                    mma_16816(scores[n], a1, b[2], b[3]);
                }
            }
        } else {
#pragma unroll
            for (int n = 0; n < FLASH_KEYS / 8; n++) {
                scores[n][0] = scores[n][1] = scores[n][2] = scores[n][3] = 0.0f;
                // Matrices: keys n·8.. by dims c·16, c·16+8, (c+1)·16, (c+1)·16+8: B fragments of steps c and c+1.
                const act_t* keyRow = keys + (n * 8 + (lane & 7)) * STRIDE + (lane >> 3) * 8;
#pragma unroll
                for (int c = 0; c + 1 < STEPS; c += 2) {
                    unsigned int b[4];
                    load_matrices(b, keyRow + c * 16);
                    mma_16816(scores[n], queryFragments[c], b[0], b[1]);
                    mma_16816(scores[n], queryFragments[c + 1], b[2], b[3]);
                }
                if constexpr (STEPS % 2 != 0) {  // an 80-wide head's fifth step: two matrices (lanes 0-15's rows)
                    unsigned int b[2];
                    load_two_matrices(b, keyRow + (STEPS - 1) * 16);
                    mma_16816(scores[n], queryFragments[STEPS - 1], b[0], b[1]);
                }
            }
        }

        float tileMax0 = -jv_infinity(), tileMax1 = -jv_infinity();
        // A tile wholly at or before both of this lane's rows (and no sliding window) hides no key; for an
        // encoder, one wholly within both rows' sequences.
        bool masked = ENCODER ? keyStart < max(from0, from1) || keyStart + FLASH_KEYS - 1 > min(position0, position1)
                              : slidingWindow > 0 || keyStart + FLASH_KEYS - 1 > min(position0, position1);
#pragma unroll
        for (int n = 0; n < FLASH_KEYS / 8; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float s = scale * scores[n][e];
                if (logitSoftcap > 0.0f) s = logitSoftcap * tanhf(s / logitSoftcap);
                if constexpr (RELATIVE) {
                    // Key and query as batch rows of one sequence: their difference is the distance within it.
                    int key = keyStart + n * 8 + 2 * quad + (e & 1);
                    s += relative_bias(relativeBias, biasDistance, head, key - (e < 2 ? token0 : token1));
                }
                if (masked || slope != 0.0f) {
                    int key = keyStart + n * 8 + 2 * quad + (e & 1);
                    int position = e < 2 ? position0 : position1;
                    s += slope * (float) (key - position);
                    bool visible = ENCODER ? key >= (e < 2 ? from0 : from1) && key <= position
                                           : key <= position && (slidingWindow <= 0 || key > position - slidingWindow);
                    if (masked && !visible) s = -jv_infinity();
                }
                scores[n][e] = s;
                if (e < 2) tileMax0 = fmaxf(tileMax0, s); else tileMax1 = fmaxf(tileMax1, s);
            }
        }
        float newMax0 = fmaxf(max0, quad_max(tileMax0));
        float newMax1 = fmaxf(max1, quad_max(tileMax1));
        // A row that has seen no visible key yet keeps a max of -inf: exponentiate against 0 so
        // that its weights are 0, not NaN.
        float base0 = newMax0 == -jv_infinity() ? 0.0f : newMax0;
        float base1 = newMax1 == -jv_infinity() ? 0.0f : newMax1;
        // ex2.approx (fast_exp): the weights are rounded to 16 bits for P·V anyway, and the accurate
        // expf was a dozen instructions for each of a round's 18 exponentials a lane.
        float correction0 = fast_exp(max0 - base0);
        float correction1 = fast_exp(max1 - base1);
        max0 = newMax0;
        max1 = newMax1;
        sum0 *= correction0;
        sum1 *= correction1;
        // Once the rows' maxima settle, most rounds change no row's: the warp then skips the rescale.
        if (__any_sync(0xffffffffu, correction0 != 1.0f || correction1 != 1.0f)) {
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                output[n][0] *= correction0;
                output[n][1] *= correction0;
                output[n][2] *= correction1;
                output[n][3] *= correction1;
            }
        }
        unsigned int weights[FLASH_KEYS / 16][4];
#pragma unroll
        for (int n = 0; n < FLASH_KEYS / 8; n++) {
            float p0 = fast_exp(scores[n][0] - base0), p1 = fast_exp(scores[n][1] - base0);
            float p2 = fast_exp(scores[n][2] - base1), p3 = fast_exp(scores[n][3] - base1);
            sum0 += p0 + p1;
            sum1 += p2 + p3;
            // Keys 0-7 of a 16-key step are A columns 2·quad.., keys 8-15 columns 2·quad+8..
            weights[n / 2][(n & 1) * 2 + 0] = pack_pair(float_to_act(p0), float_to_act(p1));
            weights[n / 2][(n & 1) * 2 + 1] = pack_pair(float_to_act(p2), float_to_act(p3));
        }
        // Matrices, transposed: keys step·16.. and step·16+8.. by dims n·8.., then by (n+1)·8..:
        // B fragments of output columns n and n+1.
        const act_t* valueRow = values + ((lane & 8) + (lane & 7)) * STRIDE + (lane >> 4) * 8;
#pragma unroll
        for (int n = 0; n < D / 8; n += 2) {
#pragma unroll
            for (int step = 0; step < FLASH_KEYS / 16; step++) {
                unsigned int b[4];
                load_matrices_transposed(b, valueRow + step * 16 * STRIDE + n * 8);
                mma_16816(output[n], weights[step], b[0], b[1]);
                mma_16816(output[n + 1], weights[step], b[2], b[3]);
            }
        }
        __syncthreads();  // this buffer is no longer read: the next round but one refills it
    }

    float total0 = quad_sum(sum0);
    float total1 = quad_sum(sum1);
    act_t* target0 = out + ((i64) token0 * numHeads + head) * D;
    act_t* target1 = out + ((i64) token1 * numHeads + head) * D;
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        int d = n * 8 + 2 * quad;
        if (row0 < tileTokens) {
            *(unsigned int*) (target0 + d) = pack_pair(float_to_act(output[n][0] / total0),
                                                       float_to_act(output[n][1] / total0));
        }
        if (row1 < tileTokens) {
            *(unsigned int*) (target1 + d) = pack_pair(float_to_act(output[n][2] / total1),
                                                       float_to_act(output[n][3] / total1));
        }
    }
}

#define FLASH_PREFILL(D, MIN_BLOCKS)                                                                            \
    extern "C" __global__ void __launch_bounds__(32 * FLASH_WARPS, MIN_BLOCKS) flash_prefill_##D(                \
            const act_t* q, act_t* out, const act_t* keyCache, const act_t* valueCache, const int* positions,    \
            const int* tokenSequences, const int* blockTables, int blockTableStride, int blockSize,             \
            int numHeads, int numKvHeads, float scale, int slidingWindow, float logitSoftcap,                    \
            const float* alibiSlopes, const int* tiles) {                                                         \
        JV_DEPENDENT_PROLOGUE();                                                                                \
        flash_prefill_tile<D>(q, out, keyCache, valueCache, positions, tokenSequences, blockTables,              \
                              blockTableStride, blockSize, numHeads, numKvHeads, scale, slidingWindow,           \
                              logitSoftcap, alibiSlopes, tiles);                                                 \
    }
FLASH_PREFILL(64, FLASH_MIN_BLOCKS)
FLASH_PREFILL(80, FLASH_MIN_BLOCKS)  // Phi-2, GPT-NeoX models of 80-wide heads
FLASH_PREFILL(96, FLASH_MIN_BLOCKS)
FLASH_PREFILL(128, FLASH_MIN_BLOCKS)
// Gemma's heads: two blocks an SM, each with 99 KB of shared memory (its 128 output registers a thread
// leave no room for a third).
FLASH_PREFILL(256, 2)

// Bidirectional attention within each sequence of an encoder pass (vision towers, BERT-style
// embedding models) on tensor cores: flash_prefill_tile's ENCODER form.
#define ENCODER_FLASH(D)                                                                                        \
    extern "C" __global__ void __launch_bounds__(32 * FLASH_WARPS, FLASH_MIN_BLOCKS) encoder_flash_##D(          \
            const act_t* q, const act_t* k, const act_t* v, act_t* out, const int* tokenSequences,                \
            const int* sequenceStarts, int tokens, int numHeads, int numKvHeads, float scale, float logitSoftcap) { \
        JV_DEPENDENT_PROLOGUE();                                                                                \
        flash_prefill_tile<D, true>(q, out, k, v, nullptr, tokenSequences, nullptr, 0, 0, numHeads, numKvHeads,  \
                                    scale, 0, logitSoftcap, nullptr, nullptr, sequenceStarts, tokens);            \
    }
ENCODER_FLASH(32)
ENCODER_FLASH(64)
ENCODER_FLASH(80)
ENCODER_FLASH(128)
// T5's encoder (64-wide heads in every size; 128 for the largest): its relative position bias in the scores.
#define ENCODER_FLASH_RELATIVE(D)                                                                               \
    extern "C" __global__ void __launch_bounds__(32 * FLASH_WARPS, FLASH_MIN_BLOCKS) encoder_flash_##D##_relative( \
            const act_t* q, const act_t* k, const act_t* v, act_t* out, const int* tokenSequences,                \
            const int* sequenceStarts, int tokens, int numHeads, int numKvHeads, float scale, float logitSoftcap,  \
            const float* relativeBias, int biasDistance) {                                                         \
        JV_DEPENDENT_PROLOGUE();                                                                                \
        flash_prefill_tile<D, true, true>(q, out, k, v, nullptr, tokenSequences, nullptr, 0, 0, numHeads,        \
                                          numKvHeads, scale, 0, logitSoftcap, nullptr, nullptr, sequenceStarts,   \
                                          tokens, relativeBias, biasDistance);                                    \
    }
ENCODER_FLASH_RELATIVE(64)
ENCODER_FLASH_RELATIVE(128)
#endif
