// Sampling a token per row on the device, as the host's Sampler draws it for a row that needs no
// constraint, penalty or logprobs: the argmax at temperature 0; otherwise the weights
// exp((x - max) / temperature), min-p, top-k (ties with the k-th kept), top-p (vLLM's rule, ties
// ranked lower id first), then one draw with the uniform number the host gave the row (from the
// sequence's own generator), by cumulative weight in id order. Every reduction runs in a fixed
// order, so a row draws the same token on every run; sums are in double, as the host's are, and
// may differ from the host's sequential sums only in their last bits.
#include "common.cuh"

#define SAMPLE_THREADS 1024

// ---- block reductions in a fixed order (warp trees, then the warps in order) --------------------

__device__ __forceinline__ double block_sum(double v, double* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) total += scratch[w];
    return total;
}

__device__ __forceinline__ int block_count(int v, int* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    int total = 0;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) total += scratch[w];
    return total;
}

// The larger value, the lower column on ties (a NaN never wins: comparisons with it are false).
__device__ __forceinline__ void keep_better(float& best, int& index, float value, int column) {
    if (value > best || (value == best && column < index)) {
        best = value;
        index = column;
    }
}

__device__ __forceinline__ void block_best(float& best, int& index, float* valueScratch, int* indexScratch) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        keep_better(best, index, __shfl_down_sync(0xffffffffu, best, offset), __shfl_down_sync(0xffffffffu, index, offset));
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) {
        valueScratch[warp] = best;
        indexScratch[warp] = index;
    }
    __syncthreads();
    best = -jv_infinity();
    index = 0x7fffffff;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) keep_better(best, index, valueScratch[w], indexScratch[w]);
}

// Tokens (count) or mass of the row's weights at or above `threshold`.
__device__ __forceinline__ int count_at_least(const float* w, int vocab, float threshold, int* scratch) {
    int n = 0;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) n += w[c] >= threshold ? 1 : 0;
    return block_count(n, scratch);
}

__device__ __forceinline__ double mass_at_least(const float* w, int vocab, float threshold, double* scratch) {
    double m = 0;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
        float x = w[c];
        if (x >= threshold) m += x;
    }
    return block_sum(m, scratch);
}

// The largest positive weight t (by bits: non-negative floats order as their bits do, and every
// weight is at most 1) with count (byMass false) or mass (true) of weights >= t at least `need`.
__device__ float largest_threshold(const float* w, int vocab, double need, bool byMass, int* counts, double* masses) {
    unsigned int lo = 1u, hi = 0x3f800001u;  // the smallest positive float qualifies; above 1, nothing does
    while (hi - lo > 1) {
        unsigned int mid = lo + (hi - lo) / 2;
        float t = __uint_as_float(mid);
        double have = byMass ? mass_at_least(w, vocab, t, masses) : (double) count_at_least(w, vocab, t, counts);
        if (have >= need) lo = mid;
        else hi = mid;
    }
    return __uint_as_float(lo);
}

// One token per row of logits ([rows, vocab]) into out[row], for the rows firstRow onwards, one
// block of SAMPLE_THREADS a row; per row its temperature (0: the argmax), top-k (0: off), top-p
// (1: off), min-p (0: off) and uniform number in [0, 1). weights is scratch of a row per block.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_rows(const act_t* logits, int vocab, int firstRow, const float* temperatures, const int* topKs,
            const double* topPs, const float* minPs, const double* uniforms, float* weights, int* out) {
    JV_DEPENDENT_PROLOGUE();
    __shared__ double masses[32];
    __shared__ int counts[32];
    __shared__ float values[32];
    __shared__ int columns[32];
    int r = firstRow + blockIdx.x;
    const act_t* x = logits + (i64) r * vocab;
    float* w = weights + (i64) blockIdx.x * vocab;
    float temperature = temperatures[r];

    float best = -jv_infinity();
    int bestColumn = 0x7fffffff;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) keep_better(best, bestColumn, act_to_float(x[c]), c);
    block_best(best, bestColumn, values, columns);
    if (temperature == 0.0f || best == -jv_infinity() || best == jv_infinity()) {
        // Greedy, or nothing finite to weigh (the host's sampler takes the argmax then too).
        if (threadIdx.x == 0) out[r] = bestColumn == 0x7fffffff ? 0 : bestColumn;
        return;
    }
    float max = best;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
        float e = (float) exp((double) ((act_to_float(x[c]) - max) / temperature));
        w[c] = e > 0.0f ? e : 0.0f;
    }
    __syncthreads();

    float minP = minPs[r];
    if (minP > 0.0f) {
        for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
            if (w[c] < minP) w[c] = 0.0f;
        }
        __syncthreads();
    }

    int topK = topKs[r];
    if (topK > 0 && count_at_least(w, vocab, __uint_as_float(1u), counts) > topK) {
        float kth = largest_threshold(w, vocab, (double) topK, false, counts, masses);
        for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
            if (w[c] < kth) w[c] = 0.0f;
        }
        __syncthreads();
    }

    double topP = topPs[r];
    // Each thread owns a contiguous run of the row, for the scans in id order below.
    int run = (vocab + (int) blockDim.x - 1) / (int) blockDim.x;
    int begin = min(vocab, (int) threadIdx.x * run), end = min(vocab, begin + run);
    if (topP < 1.0) {
        double total = mass_at_least(w, vocab, __uint_as_float(1u), masses);
        if (total > 0) {
            double target = topP * total;
            // The last survivor's weight; all heavier tokens survive, and of the tokens that weigh
            // exactly that, the first ones by id while the mass ranked above them is below target.
            float boundary = largest_threshold(w, vocab, target, true, counts, masses);
            double above = mass_at_least(w, vocab, __uint_as_float(__float_as_uint(boundary) + 1u), masses);
            int ties = count_at_least(w, vocab, boundary, counts)
                       - count_at_least(w, vocab, __uint_as_float(__float_as_uint(boundary) + 1u), counts);
            __shared__ int keptTies;
            if (threadIdx.x == 0) {
                int kept = 0;
                double mass = above;
                while (kept < ties && mass < target) {
                    mass += boundary;
                    kept++;
                }
                keptTies = kept;
            }
            // Ranks of the ties in id order: each thread's count over its run, then a scan.
            int mine = 0;
            for (int c = begin; c < end; c++) mine += w[c] == boundary ? 1 : 0;
            __shared__ int tiesBefore[SAMPLE_THREADS];
            tiesBefore[threadIdx.x] = mine;
            __syncthreads();
            int rank = 0;
            for (int t = 0; t < (int) threadIdx.x; t++) rank += tiesBefore[t];
            __syncthreads();
            for (int c = begin; c < end; c++) {
                float v = w[c];
                if (v < boundary) {
                    w[c] = 0.0f;
                } else if (v == boundary) {
                    if (rank >= keptTies) w[c] = 0.0f;
                    rank++;
                }
            }
            __syncthreads();
        }
    }

    // The draw: the first token, by id, whose cumulative weight passes uniform * total.
    __shared__ double runSums[SAMPLE_THREADS];
    __shared__ int chosen;
    double sum = 0;
    int last = -1;
    for (int c = begin; c < end; c++) {
        if (w[c] > 0.0f) {
            sum += w[c];
            last = c;
        }
    }
    runSums[threadIdx.x] = sum;
    if (threadIdx.x == 0) chosen = 0x7fffffff;
    __syncthreads();
    double before = 0, total = 0;
    for (int t = 0; t < (int) blockDim.x; t++) {
        if (t == (int) threadIdx.x) before = total;
        total += runSums[t];
    }
    double target = uniforms[r] * total;
    if (before + sum > target && sum > 0) {
        double cumulative = 0;
        for (int c = begin; c < end; c++) {
            if (w[c] > 0.0f) {
                cumulative += w[c];
                if (before + cumulative > target) {
                    atomicMin(&chosen, c);
                    break;
                }
            }
        }
    }
    // Rounding left the target unreached: the last token with weight, as the host's draw.
    float lastValue = last >= 0 ? (float) last : -jv_infinity();
    int lastColumn = last;
    block_best(lastValue, lastColumn, values, columns);
    __syncthreads();
    if (threadIdx.x == 0) out[r] = chosen != 0x7fffffff ? chosen : (lastColumn < 0 ? bestColumn : lastColumn);
}
