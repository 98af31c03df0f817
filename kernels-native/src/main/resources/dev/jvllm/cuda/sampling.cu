// Sampling a token per row on the device, as the host's Sampler draws it for a row that needs no
// constraint, penalty or logprobs: the argmax at temperature 0; otherwise the weights
// exp((x - max) / temperature), min-p, top-k (ties with the k-th kept), top-p (vLLM's rule, ties
// ranked lower id first), then one draw with the uniform number the host gave the row (from the
// sequence's own generator), by cumulative weight in id order. Every reduction runs in a fixed
// order, so a row draws the same token on every run; sums are in double, as the host's are, and
// may differ from the host's sequential sums only in their last bits.
//
// A row is spread over a cluster of up to SAMPLE_CLUSTER blocks (compute capability 9.0 on, the
// launch's cluster width; one block before), each taking a slice of the vocabulary: their partial
// results meet through distributed shared memory, in rank order. One block a row left the other
// SMs idle while it drew: about 0.5 ms at batch 1 for a 128k vocabulary, where the step takes 5.8.
#include "common.cuh"

#define SAMPLE_THREADS 1024
#if JV_CLUSTERS
#define SAMPLE_CLUSTER 8
#else
#define SAMPLE_CLUSTER 1
#endif
#define RADIX_BUCKETS 1024

// A few values each block publishes (thread 0 writes them), and every block's, gathered in rank order.
struct ClusterValues {
    double d[4];
    int k[4];
};

// The block-shared state of one row's draw.
struct SampleScratch {
    double masses[32];
    int counts[32];
    float values[32];
    int columns[32];
    ClusterValues published;
    ClusterValues gathered[SAMPLE_CLUSTER];
    unsigned long long histogramMass[RADIX_BUCKETS];  // this block's
    unsigned int histogramCount[RADIX_BUCKETS];
    unsigned long long mass[RADIX_BUCKETS];           // the cluster's
    unsigned int count[RADIX_BUCKETS];
    unsigned long long above;
    int bucket;
    int keptTies;
    int chosen;
};

// Copies every block's published values into gathered (each block its own copy). Thread 0 wrote
// `published` before; every thread calls this.
__device__ __forceinline__ void cluster_gather(SampleScratch& s) {
    cluster_sync();
    if (threadIdx.x < cluster_size() * 8) {
        int q = threadIdx.x >> 3, j = threadIdx.x & 7;
        if (j < 4) s.gathered[q].d[j] = remote_load(&s.published.d[j], q);
        else s.gathered[q].k[j - 4] = remote_load(&s.published.k[j - 4], q);
    }
    cluster_sync();  // gathered is complete, and no block reads `published` any more
}

// ---- block reductions in a fixed order (warp trees, then the warps in order) --------------------

// The block's total of v (a warp tree, then the warps in order), to every thread.
template <typename T>
__device__ __forceinline__ T block_total(T v, T* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T total = 0;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) total += scratch[w];
    return total;
}

__device__ __forceinline__ void block_best(float& best, int& index, float* valueScratch, int* indexScratch) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        better_of(best, index, __shfl_down_sync(0xffffffffu, best, offset), __shfl_down_sync(0xffffffffu, index, offset));
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
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) better_of(best, index, valueScratch[w], indexScratch[w]);
}

// The best (value, column) over the cluster: each block's, then the blocks' in rank order.
__device__ __forceinline__ void cluster_best(float& best, int& index, SampleScratch& s) {
    block_best(best, index, s.values, s.columns);
    if (threadIdx.x == 0) {
        s.published.d[0] = best;
        s.published.k[0] = index;
    }
    cluster_gather(s);
    best = -jv_infinity();
    index = 0x7fffffff;
    for (int q = 0; q < cluster_size(); q++) better_of(best, index, (float) s.gathered[q].d[0], s.gathered[q].k[0]);
}

// Exclusive prefix of v over the block's threads in order, and the block's total, in a fixed order:
// a scan within each warp, then the warps' totals in order.
template <typename T>
__device__ __forceinline__ T block_exclusive(T v, T* scratch, T& total) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    T inclusive = v;
    for (int offset = 1; offset < 32; offset <<= 1) {
        T lower = __shfl_up_sync(0xffffffffu, inclusive, offset);
        if (lane >= offset) inclusive += lower;
    }
    T exclusive = __shfl_up_sync(0xffffffffu, inclusive, 1);
    if (lane == 0) exclusive = 0;
    __syncthreads();
    if (lane == 31) scratch[warp] = inclusive;
    __syncthreads();
    T before = 0;
    total = 0;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) {
        if (w == warp) before = total;
        total += scratch[w];
    }
    return before + exclusive;
}

// A block's slice of the row's weights lives in a slab of run x SAMPLE_THREADS slots, run =
// ceil(slice / SAMPLE_THREADS): the slice's token i sits in slot (i % run) * SAMPLE_THREADS + i / run.
// Thread t's run of ids is then column t, so the scans in id order (each thread walking its own run)
// read whole rows of the slab at a time, and the passes that need no order read it as float4s.
// Slots past the vocabulary hold 0, which no pass counts. (Strided scalar reads of a row in global
// memory left a block waiting on L2 latency: about 1 ms a row for a 128k vocabulary.)
__device__ __forceinline__ int sample_slice(int vocab, int clusters) { return (vocab + clusters - 1) / clusters; }
__device__ __forceinline__ int sample_run(int vocab, int clusters) {
    return (sample_slice(vocab, clusters) + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
}

// For each of three thresholds, the count and the mass of the row's weights at or above it, in one
// pass (each thread's sums in a fixed order, then the block's, then the cluster's in rank order): a
// superset's sum is never smaller, so mass and count fall as the threshold rises.
__device__ __noinline__ void tally3(const float* w, int slots, const float (&t)[3], double (&mass)[3], int (&count)[3],
                       SampleScratch& s) {
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
        m[j] = block_total(m[j], s.masses);
        k[j] = block_total(k[j], s.counts);
    }
    if (threadIdx.x == 0) {
        for (int j = 0; j < 3; j++) {
            s.published.d[j] = m[j];
            s.published.k[j] = k[j];
        }
    }
    cluster_gather(s);
    for (int j = 0; j < 3; j++) {
        mass[j] = 0;
        count[j] = 0;
        for (int q = 0; q < cluster_size(); q++) {
            mass[j] += s.gathered[q].d[j];
            count[j] += s.gathered[q].k[j];
        }
    }
}

// Count (byMass false) or mass (true) of the weights at or above one threshold.
__device__ __forceinline__ double at_least(const float* w, int slots, float threshold, bool byMass, SampleScratch& s) {
    float t[3] = {threshold, threshold, threshold};
    double mass[3];
    int count[3];
    tally3(w, slots, t, mass, count, s);
    return byMass ? mass[0] : (double) count[0];
}

// The largest positive weight t (by bits: non-negative floats order as their bits do, and every
// weight is at most 1) with count (byMass false) or mass (true) of weights >= t at least `need`.
// Each pass tries three thresholds, so the interval shrinks fourfold a pass (15 passes, not 30).
__device__ __noinline__ float largest_threshold(const float* w, int slots, double need, bool byMass, SampleScratch& s) {
    unsigned int lo = 1u, hi = 0x3f800001u;  // the smallest positive float qualifies; above 1, nothing does
    while (hi - lo > 1) {
        unsigned int span = hi - lo;
        unsigned int mids[3] = {lo + span / 4, lo + span / 2, hi - span / 4};
        float t[3];
#pragma unroll
        for (int j = 0; j < 3; j++) t[j] = __uint_as_float(mids[j]);
        double mass[3];
        int count[3];
        tally3(w, slots, t, mass, count, s);
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

// The bits of the largest weight t whose count (byMass false) or fixed-point mass of weights >= t
// reaches `need`, ten bits a level from the top: a histogram of the next bits of the weights that
// share the bits decided so far (each block's, then the cluster's), then the highest bucket that,
// with the buckets above it, reaches need. Three passes where the threshold search takes fifteen.
// Exact for counts (integers); for masses a candidate the caller checks with the double sums of
// tally3, since the fixed-point masses round differently.
__device__ __noinline__ unsigned int radix_threshold(const float* w, int slots, double need, bool byMass,
                                                     SampleScratch& s) {
    const float4* w4 = reinterpret_cast<const float4*>(w);
    int n4 = slots >> 2;
    int lane = threadIdx.x & 31;
    unsigned int prefix = 0;
    unsigned long long above = 0;
    for (int shift = 20; shift >= 0; shift -= 10) {
        for (int b = threadIdx.x; b < RADIX_BUCKETS; b += blockDim.x) {
            s.histogramMass[b] = 0;
            s.histogramCount[b] = 0;
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
                    if (lane == __ffs(peers) - 1) atomicAdd(&s.histogramCount[bucket], (unsigned int) __popc(peers));
                    if (byMass) atomicAdd(&s.histogramMass[bucket], fixed_mass(xs[e]));
                }
            }
        }
        cluster_sync();
        for (int b = threadIdx.x; b < RADIX_BUCKETS; b += blockDim.x) {
            unsigned long long m = 0;
            unsigned int c = 0;
            for (int q = 0; q < cluster_size(); q++) {
                if (byMass) m += remote_load(&s.histogramMass[b], q);
                c += remote_load(&s.histogramCount[b], q);
            }
            s.mass[b] = m;
            s.count[b] = c;
        }
        cluster_sync();  // the cluster's histogram is complete, and no block reads this block's any more
        if (threadIdx.x < 32) {
            // Each lane sums 32 buckets; the lanes' sums from the top down; the highest lane that
            // reaches need walks its buckets down.
            unsigned long long laneSum = 0;
            for (int k = 0; k < 32; k++) {
                int b = lane * 32 + k;
                laneSum += byMass ? s.mass[b] : s.count[b];
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
                    unsigned long long here = byMass ? s.mass[b] : s.count[b];
                    if ((double) (run + here) * scale >= need) break;
                    run += here;
                }
                s.bucket = b;
                s.above = run;
            }
        }
        __syncthreads();
        prefix |= (unsigned int) s.bucket << shift;
        above = s.above;
        __syncthreads();
    }
    return prefix;
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
// cluster of blocks of SAMPLE_THREADS a row (the launch's cluster width, at most SAMPLE_CLUSTER;
// the grid has that many blocks a row); per row its temperature (0: the argmax), top-k (0: off),
// top-p (1: off), min-p (0: off) and uniform number in [0, 1). weights is scratch of a slab per
// block (sample_run(vocab, clusters) * SAMPLE_THREADS floats).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_rows(const act_t* logits, int vocab, int firstRow, const float* temperatures, const int* topKs,
            const double* topPs, const float* minPs, const double* uniforms, float* weights, int* out) {
    JV_DEPENDENT_PROLOGUE();
    __shared__ SampleScratch s;
    int rank = cluster_rank(), clusters = cluster_size();
    int r = firstRow + blockIdx.x / clusters;
    const act_t* x = logits + (i64) r * vocab;
    int slice = sample_slice(vocab, clusters), run = sample_run(vocab, clusters), slots = run * SAMPLE_THREADS;
    int sliceBegin = rank * slice, sliceEnd = min(vocab, sliceBegin + slice);
    float* w = weights + (i64) blockIdx.x * slots;
    float temperature = temperatures[r];

    float best = -jv_infinity();
    int bestColumn = 0x7fffffff;
#pragma unroll 8
    for (int c = sliceBegin + threadIdx.x; c < sliceEnd; c += blockDim.x) better_of(best, bestColumn, act_to_float(x[c]), c);
    cluster_best(best, bestColumn, s);
    if (temperature == 0.0f || best == -jv_infinity() || best == jv_infinity()) {
        // Greedy, or nothing finite to weigh (the host's sampler takes the argmax then too).
        if (rank == 0 && threadIdx.x == 0) out[r] = bestColumn == 0x7fffffff ? 0 : bestColumn;
        return;
    }
    // This thread's run of ids, and its column of the slab.
    int begin = sliceBegin + (int) threadIdx.x * run;
    float* mine = w + threadIdx.x;
    float rowMax = best, minP = minPs[r];
    for (int j = 0; j < run; j++) {
        int c = begin + j;
        float e = 0.0f;
        if (c < sliceEnd) {
            e = (float) exp((double) ((act_to_float(x[c]) - rowMax) / temperature));
            if (!(e > 0.0f) || e < minP) e = 0.0f;
        }
        mine[j * SAMPLE_THREADS] = e;
    }
    __syncthreads();

    int topK = topKs[r];
    if (topK > 0 && at_least(w, slots, __uint_as_float(1u), false, s) > topK) {
        drop_below(w, slots, __uint_as_float(radix_threshold(w, slots, (double) topK, false, s)));
    }

    double topP = topPs[r];
    if (topP < 1.0) {
        double total = at_least(w, slots, __uint_as_float(1u), true, s);
        if (total > 0) {
            double target = topP * total;
            // The last survivor's weight; all heavier tokens survive, and of the tokens that weigh
            // exactly that, the first ones by id while the mass ranked above them is below target.
            // The radix search's candidate, checked with double sums: mass at or above it reaches
            // target and mass above it does not (else the search by doubles, fourfold a pass).
            float boundary = __uint_as_float(radix_threshold(w, slots, target, true, s));
            float t[3] = {__uint_as_float(__float_as_uint(boundary) + 1u), boundary, boundary};
            double mass[3];
            int count[3];
            tally3(w, slots, t, mass, count, s);
            if (!(boundary > 0.0f && mass[1] >= target && mass[0] < target)) {
                boundary = largest_threshold(w, slots, target, true, s);
                t[0] = __uint_as_float(__float_as_uint(boundary) + 1u);
                t[1] = t[2] = boundary;
                tally3(w, slots, t, mass, count, s);
            }
            double above = mass[0];
            int ties = count[1] - count[0];
            if (threadIdx.x == 0) {
                int kept = 0;
                double m = above;
                while (kept < ties && m < target) {
                    m += boundary;
                    kept++;
                }
                s.keptTies = kept;
            }
            // Ranks of the ties in id order: each thread's count over its run, a scan over the
            // block, and the ties of the blocks before this one.
            int tiesHere = 0;
            for (int j = 0; j < run; j++) tiesHere += mine[j * SAMPLE_THREADS] == boundary ? 1 : 0;
            int tiesInBlock;
            int tieRank = block_exclusive(tiesHere, s.counts, tiesInBlock);
            if (threadIdx.x == 0) s.published.k[0] = tiesInBlock;
            cluster_gather(s);
            for (int q = 0; q < rank; q++) tieRank += s.gathered[q].k[0];
            int keptTies = s.keptTies;
            for (int j = 0; j < run; j++) {
                float v = mine[j * SAMPLE_THREADS];
                if (v < boundary) {
                    mine[j * SAMPLE_THREADS] = 0.0f;
                } else if (v == boundary) {
                    if (tieRank >= keptTies) mine[j * SAMPLE_THREADS] = 0.0f;
                    tieRank++;
                }
            }
            __syncthreads();
        }
    }

    // The draw: the first token, by id, whose cumulative weight passes uniform * total.
    double sum = 0;
    int last = -1;
    for (int j = 0; j < run; j++) {
        float v = mine[j * SAMPLE_THREADS];
        if (v > 0.0f) {
            sum += v;
            last = begin + j;
        }
    }
    if (threadIdx.x == 0) s.chosen = 0x7fffffff;
    double blockTotal;
    double before = block_exclusive(sum, s.masses, blockTotal);
    if (threadIdx.x == 0) s.published.d[0] = blockTotal;
    cluster_gather(s);
    double blocksBefore = 0, total = 0;
    for (int q = 0; q < clusters; q++) {
        if (q == rank) blocksBefore = total;
        total += s.gathered[q].d[0];
    }
    before = blocksBefore + before;
    double target = uniforms[r] * total;
    if (before + sum > target && sum > 0) {
        double cumulative = 0;
        for (int j = 0; j < run; j++) {
            float v = mine[j * SAMPLE_THREADS];
            if (v > 0.0f) {
                cumulative += v;
                if (before + cumulative > target) {
                    atomicMin(&s.chosen, begin + j);
                    break;
                }
            }
        }
    }
    // Rounding left the target unreached: the last token with weight, as the host's draw.
    float lastValue = last >= 0 ? (float) last : -jv_infinity();
    int lastColumn = last;
    block_best(lastValue, lastColumn, s.values, s.columns);  // its syncs also publish s.chosen
    if (threadIdx.x == 0) {
        s.published.k[0] = s.chosen;
        s.published.k[1] = lastColumn;
    }
    cluster_gather(s);
    int chosen = 0x7fffffff, lastInRow = -1;
    for (int q = 0; q < clusters; q++) {
        chosen = min(chosen, s.gathered[q].k[0]);
        lastInRow = max(lastInRow, s.gathered[q].k[1]);
    }
    if (rank == 0 && threadIdx.x == 0) out[r] = chosen != 0x7fffffff ? chosen : (lastInRow < 0 ? bestColumn : lastInRow);
}
