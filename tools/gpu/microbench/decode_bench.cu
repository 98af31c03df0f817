// paged_decode alone, as a Llama-3-8B decode step launches it (8 KV heads of 128, groups of 4, blocks
// of 16 slots, the fused rotation and cache write), timed with events, beside a plain read of the
// same number of bytes: so that decode-attention variants (attention.cu's defines, given to nvcc
// with -D) are compared in seconds, many in one device call, instead of a benchmark run each.
// Usage: decode_bench [batch 64] [context 577] [repeats 50] [shuffled blocks 1] [partition size, 0: the host's rule]
//                     [cluster width, 0 or default: the host's rule] [table span in positions, default 1024]
// Each timed run starts with L2 evicted (evict_l2), as in a decode step. Prints one JSON line per measure.
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <numeric>
#include <random>
#include <cmath>
#include <cuda_runtime.h>

#include "attention.cu"

#include "bench.cuh"

constexpr int HEADS = 32, KV_HEADS = 8, HEAD_DIM = 128, BLOCK = 16;

// Reads n 16-byte pieces once (as the attention reads its keys and values), so that its time is the
// card's read bandwidth for that many bytes in one launch.
__global__ void read_all(const uint4* p, long long n, unsigned int* sink) {
    unsigned int acc = 0;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        uint4 v;
        asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p + i));
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x9e3779b9u) *sink = acc;
}

int main(int argc, char** argv) {
    int batch = argc > 1 ? std::atoi(argv[1]) : 64;
    int context = argc > 2 ? std::atoi(argv[2]) : 577;
    int repeats = argc > 3 ? std::atoi(argv[3]) : 50;
    bool shuffled = argc > 4 ? std::atoi(argv[4]) != 0 : true;
    int partitionOverride = argc > 5 ? std::atoi(argv[5]) : 0;
    // The positions a sequence's block table holds: a captured graph's table width (a power of two
    // of blocks, CapturedDecode.tableEntries), which the host's partition rule splits.
    const int SPAN = argc > 7 ? std::atoi(argv[7]) : 1024;
    const int MAX_POSITIONS = std::max(2048, SPAN);
    if (context > SPAN) { std::fprintf(stderr, "context %d is above the table span %d\n", context, SPAN); return 1; }
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    int tableStride = SPAN / BLOCK;
    int blocksPerSequence = (context + BLOCK - 1) / BLOCK;
    int numBlocks = batch * tableStride;
    long long slotWidth = (long long) KV_HEADS * HEAD_DIM;
    long long cacheElements = (long long) numBlocks * BLOCK * slotWidth;

    // Block tables: each sequence's blocks taken from a shuffled (or an in-order) pool.
    std::vector<int> pool(numBlocks);
    std::iota(pool.begin(), pool.end(), 0);
    if (shuffled) std::shuffle(pool.begin(), pool.end(), std::mt19937(7));
    std::vector<int> tables((size_t) batch * tableStride, 0), positions(batch), sequences(batch), tokens(batch), slots(batch);
    for (int s = 0; s < batch; s++) {
        for (int b = 0; b < blocksPerSequence; b++) tables[(size_t) s * tableStride + b] = pool[(size_t) s * tableStride + b];
        positions[s] = context - 1;
        sequences[s] = s;
        tokens[s] = s;
        int p = positions[s];
        slots[s] = tables[(size_t) s * tableStride + p / BLOCK] * BLOCK + p % BLOCK;
    }
    // The rotation table as rotary.cu reads it: float32 rows of cos then sin, per position.
    std::vector<float> cosSin((size_t) MAX_POSITIONS * HEAD_DIM);
    for (int p = 0; p < MAX_POSITIONS; p++) {
        for (int i = 0; i < HEAD_DIM / 2; i++) {
            double angle = p * std::pow(500000.0, -2.0 * i / HEAD_DIM);
            cosSin[(size_t) p * HEAD_DIM + i] = (float) std::cos(angle);
            cosSin[(size_t) p * HEAD_DIM + HEAD_DIM / 2 + i] = (float) std::sin(angle);
        }
    }
    auto upload = [](const void* host, size_t bytes) { void* d; CHECK(cudaMalloc(&d, bytes)); CHECK(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice)); return d; };
    act_t *keys, *values, *q, *out, *newKeys, *newValues;
    CHECK(cudaMalloc(&keys, 2 * cacheElements * sizeof(act_t)));  // keys, then values: one plain read spans both
    values = keys + cacheElements;
    CHECK(cudaMalloc(&q, (size_t) batch * HEADS * HEAD_DIM * sizeof(act_t)));
    CHECK(cudaMalloc(&out, (size_t) batch * HEADS * HEAD_DIM * sizeof(act_t)));
    CHECK(cudaMalloc(&newKeys, (size_t) batch * slotWidth * sizeof(act_t)));
    CHECK(cudaMalloc(&newValues, (size_t) batch * slotWidth * sizeof(act_t)));
    fill_random<<<2048, 256>>>(keys, cacheElements, 1);
    fill_random<<<2048, 256>>>(values, cacheElements, 2);
    fill_random<<<256, 256>>>(q, (long long) batch * HEADS * HEAD_DIM, 3);
    fill_random<<<256, 256>>>(newKeys, (long long) batch * slotWidth, 4);
    fill_random<<<256, 256>>>(newValues, (long long) batch * slotWidth, 5);
    int* dTables = (int*) upload(tables.data(), tables.size() * 4);
    int* dPositions = (int*) upload(positions.data(), batch * 4);
    int* dSequences = (int*) upload(sequences.data(), batch * 4);
    int* dTokens = (int*) upload(tokens.data(), batch * 4);
    int* dSlots = (int*) upload(slots.data(), batch * 4);
    float* dCosSin = (float*) upload(cosSin.data(), cosSin.size() * 4);
    int* dError;
    CHECK(cudaMalloc(&dError, 64));
    CHECK(cudaMemset(dError, 0, 64));
    unsigned int* sink;
    CHECK(cudaMalloc(&sink, 4));

    // The host's partition choice (CudaBackend.decodePartitionSize, tiled form): where each (token,
    // KV head) pair's cluster of 16 fits on the SMs, a span in 16 partitions of up to 512 positions
    // (beyond 8192, 32 or more of 512-1024: fewPairsPartitionSize); otherwise halved from 1024
    // while the grid has fewer than 2 blocks an SM.
    auto ceilingPowerOfTwo = [](int n) { int p = 1; while (p < n) p *= 2; return p; };
    int size = 1024;
    if ((long long) batch * KV_HEADS * 16 <= prop.multiProcessorCount) {
        size = ceilingPowerOfTwo((SPAN + 15) / 16);
        if (size > 512) size = std::max(512, ceilingPowerOfTwo((SPAN + 31) / 32));
        size = std::min(std::max(size, 64), 1024);
    } else {
        while (size > 64 && (long long) batch * KV_HEADS * ((SPAN + size - 1) / size) < 2LL * prop.multiProcessorCount) size /= 2;
    }
    if (partitionOverride > 0) size = partitionOverride;  // e.g. 304 at context 577: two near-equal parts a (token, head)
    int partitions = (SPAN + size - 1) / size;
    // The host's cluster rule (CudaBackend.decodeCluster): consecutive partitions of a token in one
    // cluster, up to 16, where every (token, KV head) pair's cluster fits on the SMs at once and a
    // span's partitions fit one cluster.
    bool large = cudaFuncSetAttribute(paged_decode_128_g4, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess;
    int cluster = 1;
    if (partitions > 1 && partitions <= (large ? 16 : 8)) {
        cluster = 2;
        while (cluster < partitions && cluster < (large ? 16 : 8)) cluster *= 2;
        if ((long long) batch * KV_HEADS * cluster > prop.multiProcessorCount) cluster = 1;
    }
    if (argc > 6 && std::atoi(argv[6]) > 0) cluster = std::atoi(argv[6]);  // 1: the merge through global memory
    partitions = (partitions + cluster - 1) / cluster * cluster;
    float* partials;
    unsigned int* counters;
    CHECK(cudaMalloc(&partials, (size_t) batch * HEADS * partitions * (HEAD_DIM + 2) * sizeof(float)));
    CHECK(cudaMalloc(&counters, (size_t) batch * KV_HEADS * sizeof(unsigned int)));
    CHECK(cudaMemset(counters, 0, (size_t) batch * KV_HEADS * sizeof(unsigned int)));
    CHECK(cudaDeviceSynchronize());

    auto time = [&](auto&& launch) {
        std::vector<float> times = event_times(0, 5, repeats, launch, [] { evict_l2(); });
        CHECK(cudaGetLastError());
        return std::make_pair(times[times.size() / 2] * 1e3f, times[0] * 1e3f);
    };
    double bytes = (double) batch * context * KV_HEADS * HEAD_DIM * sizeof(act_t) * 2;
    auto decode = [&] {
        cudaLaunchConfig_t config = {};
        config.gridDim = dim3(batch, KV_HEADS, partitions);
        config.blockDim = dim3(32 * DECODE_WARPS);
        cudaLaunchAttribute attribute;
        attribute.id = cudaLaunchAttributeClusterDimension;
        attribute.val.clusterDim.x = 1;
        attribute.val.clusterDim.y = 1;
        attribute.val.clusterDim.z = cluster;
        config.attrs = &attribute;
        config.numAttrs = 1;
        CHECK(cudaLaunchKernelEx(&config, paged_decode_128_g4,
                (const act_t*) q, out, keys, values, (const int*) dPositions, (const int*) dSequences, (const int*) dTables,
                tableStride, BLOCK, HEADS, KV_HEADS, 0.08838834764f, 0, 0.0f, (const float*) nullptr, (const int*) dTokens,
                partials, counters, size, (const act_t*) newKeys, (const act_t*) newValues, (const int*) dSlots,
                (const void*) dCosSin, (int) JV_F32, HEAD_DIM, 1, MAX_POSITIONS, (const int*) dPositions, dError));
    };
    auto [decodeUs, decodeMin] = time(decode);
    // A plain read of as many bytes from the start of the caches (one launch, all SMs).
    long long pieces = (long long) (bytes / 16);
    pieces = std::min(pieces, 2 * cacheElements * (long long) sizeof(act_t) / 16);
    auto read = [&] { read_all<<<prop.multiProcessorCount * 8, 512>>>((const uint4*) keys, pieces, sink); };
    auto [readUs, readMin] = time(read);
    int error = 0;
    CHECK(cudaMemcpy(&error, dError, 4, cudaMemcpyDeviceToHost));
    std::printf("{\"what\":\"paged_decode\",\"device\":\"%s\",\"batch\":%d,\"context\":%d,\"partition\":%d,\"partitions\":%d,\"cluster\":%d,\"span\":%d,"
                "\"shuffled\":%s,\"us\":%.2f,\"min_us\":%.2f,\"tb_s\":%.3f,\"plain_read_us\":%.2f,\"plain_read_tb_s\":%.3f,"
                "\"error_flag\":%d}\n",
                prop.name, batch, context, size, partitions, cluster, SPAN, shuffled ? "true" : "false", decodeUs, decodeMin,
                bytes / (decodeUs * 1e-6) / 1e12, readUs, pieces * 16.0 / (readUs * 1e-6) / 1e12, error);
    return 0;
}
