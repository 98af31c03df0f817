// Attention over the paged KV cache: the cache write through the slot mapping, and causal
// attention for a flattened batch of prefill chunks and decode tokens.
#include "common.cuh"

#define MAX_HEAD_DIM 256
#define HEAD_DIM_PER_LANE (MAX_HEAD_DIM / 32)
#define ATTENTION_WARPS 4

// keyCache[slots[t]] = k[t], valueCache[slots[t]] = v[t]; a negative slot means "do not cache".
// The host has checked every slot against the cache size. One block per token.
extern "C" __global__ void write_kv_cache(const float* k, const float* v, const int* slots, int width,
                                          float* keyCache, float* valueCache) {
    int t = blockIdx.x;
    int slot = slots[t];
    if (slot < 0) return;
    const float* key = k + (i64) t * width;
    const float* value = v + (i64) t * width;
    float* keyTarget = keyCache + (i64) slot * width;
    float* valueTarget = valueCache + (i64) slot * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        keyTarget[i] = key[i];
        valueTarget[i] = value[i];
    }
}

// One block of four warps per (query token, head): the warps take every fourth key position of
// the token's window, each keeps a running max, sum and weighted value (online softmax, Milakov &
// Gimelshein 2018), and the four partial results are merged at the end. The lanes of a warp split
// the head dimension. Scores are scale·q·k, optionally soft-capped (Gemma 2) and ALiBi-biased
// (Press et al. 2022), in float32, matching the CPU kernel.
//
// Correct for any mix of prefill and decode, but each (token, head) re-reads its context and the
// query heads of a KV group read it separately: flash-style tiles on tensor cores for prefill and
// a context split for long decodes are the way to speed.
extern "C" __global__ void __launch_bounds__(32 * ATTENTION_WARPS)
paged_attention(const float* q, float* out, const float* keyCache, const float* valueCache,
                const int* positions, const int* tokenSequences, const int* blockTables, int blockTableStride,
                int blockSize, int numHeads, int numKvHeads, int headDim, float scale, int slidingWindow,
                float logitSoftcap, const float* alibiSlopes) {
    int t = blockIdx.x;
    int head = blockIdx.y;
    int warp = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    int sequence = tokenSequences[t];
    int position = positions[t];
    int kvHead = head / (numHeads / numKvHeads);
    int slotWidth = numKvHeads * headDim;
    const int* blockTable = blockTables + (i64) sequence * blockTableStride;
    const float* query = q + ((i64) t * numHeads + head) * headDim;

    float queryPart[HEAD_DIM_PER_LANE];
    float accumulator[HEAD_DIM_PER_LANE];
#pragma unroll
    for (int c = 0; c < HEAD_DIM_PER_LANE; c++) {
        int d = c * 32 + lane;
        queryPart[c] = d < headDim ? query[d] : 0.0f;
        accumulator[c] = 0.0f;
    }
    float slope = alibiSlopes == nullptr ? 0.0f : alibiSlopes[head];
    int firstKey = slidingWindow > 0 ? max(0, position - slidingWindow + 1) : 0;
    float runningMax = -jv_infinity();
    float runningSum = 0.0f;
    for (int j = firstKey + warp; j <= position; j += ATTENTION_WARPS) {
        i64 slot = (i64) blockTable[j / blockSize] * blockSize + j % blockSize;
        i64 offset = slot * slotWidth + (i64) kvHead * headDim;
        const float* key = keyCache + offset;
        const float* value = valueCache + offset;
        float dot = 0.0f;
#pragma unroll
        for (int c = 0; c < HEAD_DIM_PER_LANE; c++) {
            int d = c * 32 + lane;
            if (d < headDim) dot += queryPart[c] * key[d];
        }
        float score = scale * warp_sum(dot);
        if (logitSoftcap > 0.0f) score = logitSoftcap * tanhf(score / logitSoftcap);
        score += slope * (float) (j - position);
        float newMax = fmaxf(runningMax, score);
        float correction = expf(runningMax - newMax);
        float weight = expf(score - newMax);
        runningSum = runningSum * correction + weight;
#pragma unroll
        for (int c = 0; c < HEAD_DIM_PER_LANE; c++) {
            int d = c * 32 + lane;
            if (d < headDim) accumulator[c] = accumulator[c] * correction + weight * value[d];
        }
        runningMax = newMax;
    }

    __shared__ float warpMax[ATTENTION_WARPS];
    __shared__ float warpSum[ATTENTION_WARPS];
    __shared__ float warpAccumulator[ATTENTION_WARPS][MAX_HEAD_DIM];
    if (lane == 0) {
        warpMax[warp] = runningMax;
        warpSum[warp] = runningSum;
    }
#pragma unroll
    for (int c = 0; c < HEAD_DIM_PER_LANE; c++) {
        int d = c * 32 + lane;
        if (d < headDim) warpAccumulator[warp][d] = accumulator[c];
    }
    __syncthreads();
    // Warp 0 always saw the token's own position, so the overall max is finite.
    float overallMax = warpMax[0];
    for (int w = 1; w < ATTENTION_WARPS; w++) overallMax = fmaxf(overallMax, warpMax[w]);
    float total = 0.0f;
    float factors[ATTENTION_WARPS];
#pragma unroll
    for (int w = 0; w < ATTENTION_WARPS; w++) {
        factors[w] = expf(warpMax[w] - overallMax);
        total += warpSum[w] * factors[w];
    }
    float* target = out + ((i64) t * numHeads + head) * headDim;
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
        float weighted = 0.0f;
#pragma unroll
        for (int w = 0; w < ATTENTION_WARPS; w++) weighted += warpAccumulator[w][d] * factors[w];
        target[d] = weighted / total;
    }
}
