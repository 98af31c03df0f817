// paged_decode alone, as a Llama-3-8B decode step launches it (8 KV heads of 128, groups of 4, blocks
// of 16 slots, the fused rotation and cache write), timed with events, beside a plain read of the
// same number of bytes: so that decode-attention variants (attention.cu's defines, given to nvcc
// with -D) are compared in seconds, many in one device call, instead of a benchmark run each.
// Usage: decode_bench [batch 64] [context 577] [repeats 50] [shuffled blocks 1] [partition size, 0: the host's rule]
//                     [cluster width, 0 or default: the host's rule] [table span in positions, default 1024]
// Each timed run starts with L2 evicted (evict_l2), as in a decode step. Prints one JSON line per measure;
// at the host's partition rule also gather_read lines: paged_decode's loads alone, in other layouts.
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

// The loads of the tiled paged_decode alone: a block a (token, KV head) over the whole context, each
// of DECODE_WARPS warps taking every DECODE_WARPS-th tile of 16 keys and loading a tile's keys and
// values with the lanes' addresses of load_decode_tile (whole 16-byte pieces, 8 KB a tile), then
// folding them into one word: no queries, no products, no softmax. TILES tiles a warp are in flight
// at once (paged_decode: 1). HEAD_MAJOR reads a cache laid out [block][KV head][slot of the block][D]
// (each KV head's 16 keys of a block in 4 contiguous KB) instead of jvllm's [slot][KV head][D] (each
// key's 256 bytes 2 KB from the next); HEADS_FASTEST orders the grid KV heads first, so that the
// blocks running together read whole cache blocks. What this takes beside paged_decode's time says
// whether its loads, or what it does between them, hold it back.
template <bool HEAD_MAJOR, int TILES, bool HEADS_FASTEST>
__global__ void __launch_bounds__(32 * DECODE_WARPS) gather_read(const act_t* keys, const act_t* values, const int* tables,
                                                                 int tableStride, int context, unsigned int* sink) {
    int s = HEADS_FASTEST ? blockIdx.y : blockIdx.x;
    int head = HEADS_FASTEST ? blockIdx.x : blockIdx.y;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, row = lane >> 2, quad = lane & 3;
    const int* table = tables + (long long) s * tableStride;
    auto address = [&](int slot) -> long long {
        if (slot < 0) return -1;
        return HEAD_MAJOR ? ((long long) (slot / BLOCK) * KV_HEADS + head) * BLOCK * HEAD_DIM + (long long) (slot % BLOCK) * HEAD_DIM
                          : (long long) slot * KV_HEADS * HEAD_DIM + (long long) head * HEAD_DIM;
    };
    unsigned int acc = 0;
    for (int first = 16 * warp; first < context; first += 16 * DECODE_WARPS * TILES) {
        uint4 k[TILES][2][HEAD_DIM / 32], v[TILES][4][HEAD_DIM / 64];
#pragma unroll
        for (int tile = 0; tile < TILES; tile++) {
            int base = first + tile * 16 * DECODE_WARPS;
            long long keyAt[2];
#pragma unroll
            for (int r = 0; r < 2; r++) {
                int j = base + row + 8 * r;
                keyAt[r] = address(j < context ? table[j / BLOCK] * BLOCK + j % BLOCK : -1);
#pragma unroll
                for (int i = 0; i < HEAD_DIM / 32; i++)
                    k[tile][r][i] = keyAt[r] >= 0 ? load_cache_piece(keys + keyAt[r] + 32 * i + 8 * quad) : make_uint4(0, 0, 0, 0);
            }
            long long valueAt[4] = {__shfl_sync(0xffffffffu, keyAt[0], 8 * quad), __shfl_sync(0xffffffffu, keyAt[0], 8 * quad + 4),
                                    __shfl_sync(0xffffffffu, keyAt[1], 8 * quad), __shfl_sync(0xffffffffu, keyAt[1], 8 * quad + 4)};
#pragma unroll
            for (int x = 0; x < 4; x++) {
#pragma unroll
                for (int p = 0; p < HEAD_DIM / 64; p++)
                    v[tile][x][p] = valueAt[x] >= 0 ? load_cache_piece(values + valueAt[x] + row * (HEAD_DIM / 8) + p * 8)
                                                    : make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int tile = 0; tile < TILES; tile++) {
#pragma unroll
            for (int r = 0; r < 2; r++)
#pragma unroll
                for (int i = 0; i < HEAD_DIM / 32; i++) acc ^= k[tile][r][i].x ^ k[tile][r][i].y ^ k[tile][r][i].z ^ k[tile][r][i].w;
#pragma unroll
            for (int x = 0; x < 4; x++)
#pragma unroll
                for (int p = 0; p < HEAD_DIM / 64; p++) acc ^= v[tile][x][p].x ^ v[tile][x][p].y ^ v[tile][x][p].z ^ v[tile][x][p].w;
        }
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
                (const void*) dCosSin, (int) JV_F32, HEAD_DIM, 1, MAX_POSITIONS, (const int*) dPositions, dError,
                HEADS * HEAD_DIM, (int) slotWidth));
    };
    auto [decodeUs, decodeMin] = time(decode);
    // A plain read of as many bytes from the start of the caches (one launch, all SMs).
    long long pieces = (long long) (bytes / 16);
    pieces = std::min(pieces, 2 * cacheElements * (long long) sizeof(act_t) / 16);
    auto read = [&] { read_all<<<prop.multiProcessorCount * 8, 512>>>((const uint4*) keys, pieces, sink); };
    auto [readUs, readMin] = time(read);
    // paged_decode's loads alone (gather_read), in its layout and grid order and in others; the
    // head-major form reads the same cache as if laid out that way (the values are random either way).
    // Unused shared memory holds each to paged_decode's DECODE_MIN_BLOCKS blocks an SM, so that as many
    // loads are in flight as there.
    int blocksPerSm = DECODE_TILED ? DECODE_MIN_BLOCKS : 4;
    int holdBytes = (int) prop.sharedMemPerMultiprocessor / blocksPerSm - 2048;
    auto gather = [&](auto kernel, bool headsFastest, const char* layout, int tiles) {
        CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, holdBytes));
        dim3 grid = headsFastest ? dim3(KV_HEADS, batch) : dim3(batch, KV_HEADS);
        auto [us, min] = time([&] { kernel<<<grid, 32 * DECODE_WARPS, holdBytes>>>(keys, values, dTables, tableStride, context, sink); });
        std::printf("{\"what\":\"gather_read\",\"device\":\"%s\",\"batch\":%d,\"context\":%d,\"layout\":\"%s\","
                    "\"grid\":\"%s\",\"tiles_in_flight\":%d,\"shuffled\":%s,\"us\":%.2f,\"min_us\":%.2f,\"tb_s\":%.3f}\n",
                    prop.name, batch, context, layout, headsFastest ? "heads first" : "tokens first", tiles,
                    shuffled ? "true" : "false", us, min, bytes / (us * 1e-6) / 1e12);
    };
    if (partitions == 1 || partitionOverride == 0) {
        gather(gather_read<false, 1, false>, false, "slot-major", 1);
        gather(gather_read<false, 2, false>, false, "slot-major", 2);
        gather(gather_read<false, 1, true>, true, "slot-major", 1);
        gather(gather_read<true, 1, false>, false, "head-major", 1);
        gather(gather_read<true, 2, false>, false, "head-major", 2);
        gather(gather_read<true, 1, true>, true, "head-major", 1);
    }
    int error = 0;
    CHECK(cudaMemcpy(&error, dError, 4, cudaMemcpyDeviceToHost));
    std::printf("{\"what\":\"paged_decode\",\"device\":\"%s\",\"batch\":%d,\"context\":%d,\"partition\":%d,\"partitions\":%d,\"cluster\":%d,\"span\":%d,"
                "\"shuffled\":%s,\"us\":%.2f,\"min_us\":%.2f,\"tb_s\":%.3f,\"plain_read_us\":%.2f,\"plain_read_tb_s\":%.3f,"
                "\"error_flag\":%d}\n",
                prop.name, batch, context, size, partitions, cluster, SPAN, shuffled ? "true" : "false", decodeUs, decodeMin,
                bytes / (decodeUs * 1e-6) / 1e12, readUs, pieces * 16.0 / (readUs * 1e-6) / 1e12, error);
    return 0;
}
