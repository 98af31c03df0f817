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

// The row's weights live in a slab of run x SAMPLE_THREADS slots, run = ceil(vocab / SAMPLE_THREADS):
// token c sits in slot (c % run) * SAMPLE_THREADS + c / run. Thread t's run of ids [t*run, (t+1)*run)
// is then column t, so the scans in id order (each thread walking its own run) read whole rows of
// the slab at a time, and the passes that need no order read it as float4s. Slots past the
// vocabulary hold 0, which no pass counts. (Strided scalar reads of a row in global memory left a
// block waiting on L2 latency: about 1 ms a row for a 128k vocabulary.)
__device__ __forceinline__ int sample_run(int vocab) { return (vocab + SAMPLE_THREADS - 1) / SAMPLE_THREADS; }

// For each of three thresholds, the count and the mass of the slab's weights at or above it, in one
// pass (each thread's sums in a fixed order, then the block's): a superset's sum is never smaller,
// so mass and count fall as the threshold rises.
__device__ void tally3(const float* w, int slots, const float (&t)[3], double (&mass)[3], int (&count)[3],
                       double* masses, int* counts) {
    const float4* w4 = reinterpret_cast<const float4*>(w);
    int n4 = slots >> 2;
    double m[3] = {0, 0, 0};
    int k[3] = {0, 0, 0};
#pragma unroll 4
    for (int i = threadIdx.x; i < n4; i += blockDim.x) {
        float4 v = w4[i];
        float xs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            double d = xs[e];
#pragma unroll
            for (int j = 0; j < 3; j++) {
                bool in = xs[e] >= t[j];
                m[j] += in ? d : 0.0;
                k[j] += in ? 1 : 0;
            }
        }
    }
#pragma unroll
    for (int j = 0; j < 3; j++) {
        mass[j] = block_sum(m[j], masses);
        count[j] = block_count(k[j], counts);
    }
}

// Count (byMass false) or mass (true) of the weights at or above one threshold.
__device__ __forceinline__ double at_least(const float* w, int slots, float threshold, bool byMass, double* masses,
                                           int* counts) {
    float t[3] = {threshold, threshold, threshold};
    double mass[3];
    int count[3];
    tally3(w, slots, t, mass, count, masses, counts);
    return byMass ? mass[0] : (double) count[0];
}

// The largest positive weight t (by bits: non-negative floats order as their bits do, and every
// weight is at most 1) with count (byMass false) or mass (true) of weights >= t at least `need`.
// Each pass tries three thresholds, so the interval shrinks fourfold a pass (15 passes, not 30).
__device__ __noinline__ float largest_threshold(const float* w, int slots, double need, bool byMass, int* counts, double* masses) {
    unsigned int lo = 1u, hi = 0x3f800001u;  // the smallest positive float qualifies; above 1, nothing does
    while (hi - lo > 1) {
        unsigned int span = hi - lo;
        unsigned int mids[3] = {lo + span / 4, lo + span / 2, hi - span / 4};
        float t[3];
#pragma unroll
        for (int j = 0; j < 3; j++) t[j] = __uint_as_float(mids[j]);
        double mass[3];
        int count[3];
        tally3(w, slots, t, mass, count, masses, counts);
        unsigned int newLo = lo, newHi = hi;
#pragma unroll
        for (int j = 0; j < 3; j++) {
            if (mids[j] <= lo || mids[j] >= hi) continue;
            double have = byMass ? mass[j] : (double) count[j];
            if (have >= need) newLo = max(newLo, mids[j]);
            else newHi = min(newHi, mids[j]);
        }
        lo = newLo;
        hi = max(newHi, newLo + 1);
    }
    return __uint_as_float(lo);
}

// A weight as a fixed-point mass, w * 2^44 truncated: integer sums are exact in any order (and a
// weight is at most 1, so 2^19 of them stay below 2^63).
#define FIXED_ONE 17592186044416.0
__device__ __forceinline__ unsigned long long fixed_mass(float x) { return (unsigned long long) ((double) x * FIXED_ONE); }

#define RADIX_BUCKETS 1024

struct RadixScratch {
    unsigned long long mass[RADIX_BUCKETS];
    unsigned int count[RADIX_BUCKETS];
    unsigned long long above;
    int bucket;
};

// The bits of the largest weight t whose count (byMass false) or fixed-point mass of weights >= t
// reaches `need`, ten bits a level from the top: a histogram of the next bits of the weights that
// share the bits decided so far, then the highest bucket that, with the buckets above it, reaches
// need. Three passes where the threshold search takes fifteen. Exact for counts (integers); for
// masses a candidate the caller checks with the double sums of tally3, since the fixed-point masses
// round differently.
__device__ __noinline__ unsigned int radix_threshold(const float* w, int slots, double need, bool byMass, RadixScratch& scratch) {
    const float4* w4 = reinterpret_cast<const float4*>(w);
    int n4 = slots >> 2;
    int lane = threadIdx.x & 31;
    unsigned int prefix = 0;
    unsigned long long above = 0;
    for (int shift = 20; shift >= 0; shift -= 10) {
        for (int b = threadIdx.x; b < RADIX_BUCKETS; b += blockDim.x) {
            scratch.mass[b] = 0;
            scratch.count[b] = 0;
        }
        __syncthreads();
        unsigned int decided = prefix >> (shift + 10);  // all weights at most 1 have bit 30 clear
#pragma unroll 2
        for (int i = threadIdx.x; i < n4; i += blockDim.x) {
            float4 v = w4[i];
            float xs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                unsigned int bits = __float_as_uint(xs[e]);
                bool candidate = xs[e] > 0.0f && (bits >> (shift + 10)) == decided;
                int bucket = candidate ? (int) ((bits >> shift) & (RADIX_BUCKETS - 1)) : -1;
                // Lanes with the same bucket add their count once (a flat row puts most in a few buckets).
                unsigned int peers = __match_any_sync(0xffffffffu, bucket);
                if (candidate) {
                    if (lane == __ffs(peers) - 1) atomicAdd(&scratch.count[bucket], (unsigned int) __popc(peers));
                    if (byMass) atomicAdd(&scratch.mass[bucket], fixed_mass(xs[e]));
                }
            }
        }
        __syncthreads();
        if (threadIdx.x < 32) {
            // Each lane sums 32 buckets; the lanes' sums from the top down; the highest lane that
            // reaches need walks its buckets down.
            unsigned long long laneSum = 0;
            for (int k = 0; k < 32; k++) {
                int b = lane * 32 + k;
                laneSum += byMass ? scratch.mass[b] : scratch.count[b];
            }
            unsigned long long fromHere = laneSum;  // this lane's buckets and every higher lane's
            for (int offset = 1; offset < 32; offset <<= 1) {
                unsigned long long higher = __shfl_down_sync(0xffffffffu, fromHere, offset);
                if (lane + offset < 32) fromHere += higher;
            }
            double scale = byMass ? 1.0 / FIXED_ONE : 1.0;
            unsigned int reaching = __ballot_sync(0xffffffffu, (double) (above + fromHere) * scale >= need);
            int chosenLane = reaching != 0 ? 31 - __clz(reaching) : 0;
            if (lane == chosenLane) {
                unsigned long long run = above + fromHere - laneSum;
                int b = lane * 32 + 31;
                for (; b > lane * 32; b--) {
                    unsigned long long here = byMass ? scratch.mass[b] : scratch.count[b];
                    if ((double) (run + here) * scale >= need) break;
                    run += here;
                }
                scratch.bucket = b;
                scratch.above = run;
            }
        }
        __syncthreads();
        prefix |= (unsigned int) scratch.bucket << shift;
        above = scratch.above;
        __syncthreads();
    }
    return prefix;
}

// Exclusive prefix of v over the block's threads in order, and the block's total (any order: integers).
__device__ __forceinline__ int block_exclusive_count(int v, int* scratch, int& total) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int inclusive = v;
    for (int offset = 1; offset < 32; offset <<= 1) {
        int lower = __shfl_up_sync(0xffffffffu, inclusive, offset);
        if (lane >= offset) inclusive += lower;
    }
    __syncthreads();
    if (lane == 31) scratch[warp] = inclusive;
    __syncthreads();
    int before = 0;
    total = 0;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) {
        if (w == warp) before = total;
        total += scratch[w];
    }
    return before + inclusive - v;
}

// The same for doubles, in a fixed order: a scan within each warp, then the warps' totals in order.
__device__ __forceinline__ double block_exclusive_sum(double v, double* scratch, double& total) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    double inclusive = v;
    for (int offset = 1; offset < 32; offset <<= 1) {
        double lower = __shfl_up_sync(0xffffffffu, inclusive, offset);
        if (lane >= offset) inclusive += lower;
    }
    double exclusive = __shfl_up_sync(0xffffffffu, inclusive, 1);
    if (lane == 0) exclusive = 0;
    __syncthreads();
    if (lane == 31) scratch[warp] = inclusive;
    __syncthreads();
    double before = 0;
    total = 0;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) {
        if (w == warp) before = total;
        total += scratch[w];
    }
    return before + exclusive;
}

// Zeroes the slab's weights below `threshold` (any order).
__device__ __forceinline__ void drop_below(float* w, int slots, float threshold) {
    float4* w4 = reinterpret_cast<float4*>(w);
    int n4 = slots >> 2;
#pragma unroll 4
    for (int i = threadIdx.x; i < n4; i += blockDim.x) {
        float4 v = w4[i];
        v.x = v.x < threshold ? 0.0f : v.x;
        v.y = v.y < threshold ? 0.0f : v.y;
        v.z = v.z < threshold ? 0.0f : v.z;
        v.w = v.w < threshold ? 0.0f : v.w;
        w4[i] = v;
    }
    __syncthreads();
}

// One token per row of logits ([rows, vocab]) into out[row], for the rows firstRow onwards, one
// block of SAMPLE_THREADS a row; per row its temperature (0: the argmax), top-k (0: off), top-p
// (1: off), min-p (0: off) and uniform number in [0, 1). weights is scratch of a slab per block
// (sample_run(vocab) * SAMPLE_THREADS floats).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_rows(const act_t* logits, int vocab, int firstRow, const float* temperatures, const int* topKs,
            const double* topPs, const float* minPs, const double* uniforms, float* weights, int* out) {
    JV_DEPENDENT_PROLOGUE();
    __shared__ double masses[32];
    __shared__ int counts[32];
    __shared__ float values[32];
    __shared__ int columns[32];
    __shared__ RadixScratch radix;
    int r = firstRow + blockIdx.x;
    const act_t* x = logits + (i64) r * vocab;
    int run = sample_run(vocab), slots = run * SAMPLE_THREADS;
    float* w = weights + (i64) blockIdx.x * slots;
    float temperature = temperatures[r];

    float best = -jv_infinity();
    int bestColumn = 0x7fffffff;
#pragma unroll 8
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) keep_better(best, bestColumn, act_to_float(x[c]), c);
    block_best(best, bestColumn, values, columns);
    if (temperature == 0.0f || best == -jv_infinity() || best == jv_infinity()) {
        // Greedy, or nothing finite to weigh (the host's sampler takes the argmax then too).
        if (threadIdx.x == 0) out[r] = bestColumn == 0x7fffffff ? 0 : bestColumn;
        return;
    }
    // This thread's run of ids, and its column of the slab.
    int begin = (int) threadIdx.x * run;
    float* mine = w + threadIdx.x;
    float max = best, minP = minPs[r];
    for (int j = 0; j < run; j++) {
        int c = begin + j;
        float e = 0.0f;
        if (c < vocab) {
            e = (float) exp((double) ((act_to_float(x[c]) - max) / temperature));
            if (!(e > 0.0f) || e < minP) e = 0.0f;
        }
        mine[j * SAMPLE_THREADS] = e;
    }
    __syncthreads();

    int topK = topKs[r];
    if (topK > 0 && at_least(w, slots, __uint_as_float(1u), false, masses, counts) > topK) {
        drop_below(w, slots, __uint_as_float(radix_threshold(w, slots, (double) topK, false, radix)));
    }

    double topP = topPs[r];
    if (topP < 1.0) {
        double total = at_least(w, slots, __uint_as_float(1u), true, masses, counts);
        if (total > 0) {
            double target = topP * total;
            // The last survivor's weight; all heavier tokens survive, and of the tokens that weigh
            // exactly that, the first ones by id while the mass ranked above them is below target.
            // The radix search's candidate, checked with double sums: mass at or above it reaches
            // target and mass above it does not (else the search by doubles, fourfold a pass).
            float boundary = __uint_as_float(radix_threshold(w, slots, target, true, radix));
            float t[3] = {__uint_as_float(__float_as_uint(boundary) + 1u), boundary, boundary};
            double mass[3];
            int count[3];
            tally3(w, slots, t, mass, count, masses, counts);
            if (!(boundary > 0.0f && mass[1] >= target && mass[0] < target)) {
                boundary = largest_threshold(w, slots, target, true, counts, masses);
                t[0] = __uint_as_float(__float_as_uint(boundary) + 1u);
                t[1] = t[2] = boundary;
                tally3(w, slots, t, mass, count, masses, counts);
            }
            double above = mass[0];
            int ties = count[1] - count[0];
            __shared__ int keptTies;
            if (threadIdx.x == 0) {
                int kept = 0;
                double m = above;
                while (kept < ties && m < target) {
                    m += boundary;
                    kept++;
                }
                keptTies = kept;
            }
            // Ranks of the ties in id order: each thread's count over its run, then a scan.
            int tiesHere = 0;
            for (int j = 0; j < run; j++) tiesHere += mine[j * SAMPLE_THREADS] == boundary ? 1 : 0;
            int tiesInRow;
            int rank = block_exclusive_count(tiesHere, counts, tiesInRow);
            for (int j = 0; j < run; j++) {
                float v = mine[j * SAMPLE_THREADS];
                if (v < boundary) {
                    mine[j * SAMPLE_THREADS] = 0.0f;
                } else if (v == boundary) {
                    if (rank >= keptTies) mine[j * SAMPLE_THREADS] = 0.0f;
                    rank++;
                }
            }
            __syncthreads();
        }
    }

    // The draw: the first token, by id, whose cumulative weight passes uniform * total.
    __shared__ int chosen;
    double sum = 0;
    int last = -1;
    for (int j = 0; j < run; j++) {
        float v = mine[j * SAMPLE_THREADS];
        if (v > 0.0f) {
            sum += v;
            last = begin + j;
        }
    }
    if (threadIdx.x == 0) chosen = 0x7fffffff;
    double total;
    double before = block_exclusive_sum(sum, masses, total);
    double target = uniforms[r] * total;
    if (before + sum > target && sum > 0) {
        double cumulative = 0;
        for (int j = 0; j < run; j++) {
            float v = mine[j * SAMPLE_THREADS];
            if (v > 0.0f) {
                cumulative += v;
                if (before + cumulative > target) {
                    atomicMin(&chosen, begin + j);
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
