// A measurement before a build (issue 4, batch-1 decode): the o projection's weights copied into the
// SMs while decode attention runs. At batch 1, attention (paged_decode, 128 blocks in clusters of 16,
// 2.4 MB of keys and values) is bound by latency and leaves the memory idle for most of its ~9 µs,
// and the o projection after it (33.5 MB) cost about 10.6 µs a layer in the engine against 7.6 µs
// for its bytes (twenty-third session). gemv_rows loads only its first wave's first pieces before it
// waits on attention (17 MB in registers). gemv_rows_staged gives each block a run of rows: it asks
// the TMA (cp.async.bulk) to copy most of them into shared memory and loads the rest into
// registers, all before it waits, so that after attention ends only the products are left.
//
// Each layer has its own weights and its own key/value cache (far past L2 over LAYERS layers); the
// graph per layer is paged_decode (as decode_bench launches it at batch 1), the o variant, and the
// add + norm after it, as programmatic dependent launches. Printed: µs a layer for each form, the
// forms without the o projection (its marginal cost), and each staged form's outputs against gemv_rows'.
// Usage: o_staged [layers 16] [repeats 30] [context 577] [staged shared rows list, default "24,20,16"]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <string>
#include <vector>
#include <numeric>
#include <algorithm>
#include <cuda_runtime.h>

#include "attention.cu"
#include "linear.cu"
#include "norms.cu"

#include "bench.cuh"

constexpr int HIDDEN = 4096, HEADS = 32, KV_HEADS = 8, HEAD_DIM = 128, BLOCK = 16, SPAN = 1024, MAX_POSITIONS = 2048;

#ifndef STAGED_WARPS
#define STAGED_WARPS 8
#endif
// Blocks an SM the register budget allows (2: at most 128 registers a thread with 8 warps), so that a
// staged block and an attention block fit one SM together.
#ifndef STAGED_MIN_BLOCKS
#define STAGED_MIN_BLOCKS 2
#endif
// 16-byte pieces of a 4096-wide row a lane takes (every 32nd).
constexpr int LANE_PIECES = HIDDEN / 8 / 32;

__device__ __forceinline__ unsigned int smem_address(const void* p) {
    return (unsigned int) __cvta_generic_to_shared(p);
}

// out = W · x for one row x ([HIDDEN]); W [n, HIDDEN]. Block b takes rows [b·rowsPerBlock, ...): the
// first sharedRows of them copied into dynamic shared memory by the TMA, the next up to STAGED_WARPS
// into registers (a row a warp), both asked for before the wait on the kernel ahead.
extern "C" __global__ void __launch_bounds__(32 * STAGED_WARPS, STAGED_MIN_BLOCKS)
gemv_rows_staged(const act_t* w, const act_t* x, act_t* out, int n, int rowsPerBlock, int sharedRows) {
    extern __shared__ __align__(128) uint4 staged[];
    __shared__ __align__(8) unsigned long long arrived;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int first = blockIdx.x * rowsPerBlock;
    int rows = max(0, min(rowsPerBlock, n - first));
    int inShared = min(rows, sharedRows);
    constexpr int ROW_BYTES = HIDDEN * (int) sizeof(act_t);
    if (threadIdx.x == 0) {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_address(&arrived)));
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_address(&arrived)),
                     "r"(inShared * ROW_BYTES) : "memory");
        for (int r = 0; r < inShared; r++) {
            asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                         ::"r"(smem_address(staged + (size_t) r * (ROW_BYTES / 16))), "l"(w + (i64) (first + r) * HIDDEN),
                         "r"(ROW_BYTES), "r"(smem_address(&arrived)) : "memory");
        }
    }
    int own = inShared + warp;  // the row this warp holds in registers, if the block has it
    bool holds = own < rows;
    uint4 row[LANE_PIECES];
    if (holds) {
        const uint4* p = (const uint4*) (w + (i64) (first + own) * HIDDEN);
#pragma unroll
        for (int u = 0; u < LANE_PIECES; u++) row[u] = p[u * 32 + lane];
    }
    JV_DEPENDENT_PROLOGUE();
    __syncthreads();  // the barrier's initialisation, before any thread waits on it
    const uint4* xs = (const uint4*) x;
    auto dot = [&](auto piece) {
        float sum = 0.0f;
#pragma unroll
        for (int u = 0; u < LANE_PIECES; u++) {
            uint4 a = piece(u), b = xs[u * 32 + lane];
            const act_t* pa = (const act_t*) &a;
            const act_t* pb = (const act_t*) &b;
#pragma unroll
            for (int e = 0; e < 8; e++) sum += act_to_float(pa[e]) * act_to_float(pb[e]);
        }
        return warp_sum(sum);
    };
    if (holds) {
        float total = dot([&](int u) { return row[u]; });
        if (lane == 0) out[first + own] = float_to_act(total);
    }
    if (inShared > 0) {
        asm volatile("{\n .reg .pred done;\n WAIT_%=:\n mbarrier.try_wait.parity.shared::cta.b64 done, [%0], 0;\n"
                     " @!done bra WAIT_%=;\n}" ::"r"(smem_address(&arrived)) : "memory");
    }
    for (int r = warp; r < inShared; r += STAGED_WARPS) {
        const uint4* p = staged + (size_t) r * (ROW_BYTES / 16);
        float total = dot([&](int u) { return p[u * 32 + lane]; });
        if (lane == 0) out[first + r] = float_to_act(total);
    }
}

static int gemv_split(int width, int shortest) {
    int split = 1;
    while (split < GEMV_WARPS && width / (2 * split) >= shortest && width % (16 * split) == 0) split *= 2;
    return split;
}

struct LayerState {
    act_t *wo, *keys, *values, *norm;
};

int main(int argc, char** argv) {
    int layers = argc > 1 ? std::atoi(argv[1]) : 16;
    int repeats = argc > 2 ? std::atoi(argv[2]) : 30;
    int context = argc > 3 ? std::atoi(argv[3]) : 577;
    std::vector<int> sharedRowsList = int_list(argc > 4 ? argv[4] : "24,20,16");
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    int sms = prop.multiProcessorCount;
    int shortest = prop.memoryBusWidth >= 6144 ? 2048 : 1024;  // CudaBackend: halves on the 4+ TB/s cards
    int tableStride = SPAN / BLOCK;
    long long slotWidth = (long long) KV_HEADS * HEAD_DIM;
    long long cacheElements = (long long) tableStride * BLOCK * slotWidth;
    std::vector<int> table(tableStride);
    std::iota(table.begin(), table.end(), 0);
    int position = context - 1;
    int slot = table[position / BLOCK] * BLOCK + position % BLOCK;
    std::vector<float> cosSin((size_t) MAX_POSITIONS * HEAD_DIM);
    for (int p = 0; p < MAX_POSITIONS; p++) {
        for (int i = 0; i < HEAD_DIM / 2; i++) {
            double angle = p * std::pow(500000.0, -2.0 * i / HEAD_DIM);
            cosSin[(size_t) p * HEAD_DIM + i] = (float) std::cos(angle);
            cosSin[(size_t) p * HEAD_DIM + HEAD_DIM / 2 + i] = (float) std::sin(angle);
        }
    }
    auto upload = [](const void* host, size_t bytes) { void* d; CHECK(cudaMalloc(&d, bytes)); CHECK(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice)); return d; };
    int zero = 0;
    int* dTable = (int*) upload(table.data(), table.size() * 4);
    int* dPosition = (int*) upload(&position, 4);
    int* dZero = (int*) upload(&zero, 4);
    int* dSlot = (int*) upload(&slot, 4);
    float* dCosSin = (float*) upload(cosSin.data(), cosSin.size() * 4);
    int* dError;
    CHECK(cudaMalloc(&dError, 64));
    CHECK(cudaMemset(dError, 0, 64));

    std::vector<LayerState> states(layers);
    for (int l = 0; l < layers; l++) {
        LayerState& s = states[l];
        CHECK(cudaMalloc(&s.wo, (size_t) HIDDEN * HIDDEN * sizeof(act_t)));
        CHECK(cudaMalloc(&s.keys, 2 * cacheElements * sizeof(act_t)));
        s.values = s.keys + cacheElements;
        CHECK(cudaMalloc(&s.norm, HIDDEN * sizeof(act_t)));
        fill_random<<<1024, 256>>>(s.wo, (long long) HIDDEN * HIDDEN, 11 + l, 0.02f);
        fill_random<<<1024, 256>>>(s.keys, 2 * cacheElements, 100 + l);
        fill_random<<<16, 256>>>(s.norm, HIDDEN, 53 + l, 1.0f);
    }
    act_t *q, *attn, *o, *residual, *residual0, *h, *newKeys, *newValues;
    CHECK(cudaMalloc(&q, HEADS * HEAD_DIM * sizeof(act_t)));
    CHECK(cudaMalloc(&attn, HIDDEN * sizeof(act_t)));
    CHECK(cudaMalloc(&o, HIDDEN * sizeof(act_t)));
    CHECK(cudaMalloc(&residual, HIDDEN * sizeof(act_t)));
    CHECK(cudaMalloc(&residual0, HIDDEN * sizeof(act_t)));
    CHECK(cudaMalloc(&h, HIDDEN * sizeof(act_t)));
    CHECK(cudaMalloc(&newKeys, slotWidth * sizeof(act_t)));
    CHECK(cudaMalloc(&newValues, slotWidth * sizeof(act_t)));
    fill_random<<<16, 256>>>(q, HEADS * HEAD_DIM, 3);
    fill_random<<<16, 256>>>(newKeys, slotWidth, 4);
    fill_random<<<16, 256>>>(newValues, slotWidth, 5);
    fill_random<<<16, 256>>>(residual0, HIDDEN, 9);
    CHECK(cudaMemcpy(residual, residual0, HIDDEN * sizeof(act_t), cudaMemcpyDeviceToDevice));

    // Batch 1's partition and cluster (decode_bench's host rules at a span of 1024): 16 partitions of 64 in one cluster.
    int partitionSize = 64, partitions = SPAN / partitionSize, cluster = 16;
    if (cudaFuncSetAttribute(paged_decode_128_g4, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) cluster = 8;
    (void) cudaGetLastError();
    float* partials;
    unsigned int* counters;
    CHECK(cudaMalloc(&partials, (size_t) HEADS * partitions * (HEAD_DIM + 2) * sizeof(float)));
    CHECK(cudaMalloc(&counters, KV_HEADS * sizeof(unsigned int)));
    CHECK(cudaMemset(counters, 0, KV_HEADS * sizeof(unsigned int)));
    cudaFuncAttributes decodeAttributes, stagedAttributes;
    CHECK(cudaFuncGetAttributes(&decodeAttributes, paged_decode_128_g4));
    CHECK(cudaDeviceSynchronize());

    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    auto attention = [&](const LayerState& s) {
        cudaLaunchConfig_t config = {};
        config.gridDim = dim3(1, KV_HEADS, partitions);
        config.blockDim = dim3(32 * DECODE_WARPS);
        config.stream = stream;
        cudaLaunchAttribute attributes[2];
        attributes[0].id = cudaLaunchAttributeClusterDimension;
        attributes[0].val.clusterDim.x = 1;
        attributes[0].val.clusterDim.y = 1;
        attributes[0].val.clusterDim.z = cluster;
        attributes[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attributes[1].val.programmaticStreamSerializationAllowed = 1;
        config.attrs = attributes;
        config.numAttrs = 2;
        CHECK(cudaLaunchKernelEx(&config, paged_decode_128_g4,
                (const act_t*) q, attn, s.keys, s.values, (const int*) dPosition, (const int*) dZero, (const int*) dTable,
                tableStride, BLOCK, HEADS, KV_HEADS, 0.08838834764f, 0, 0.0f, (const float*) nullptr, (const int*) dZero,
                partials, counters, partitionSize, (const act_t*) newKeys, (const act_t*) newValues, (const int*) dSlot,
                (const void*) dCosSin, (int) JV_F32, HEAD_DIM, 1, MAX_POSITIONS, (const int*) dPosition, dError,
                HEADS * HEAD_DIM, (int) slotWidth));
    };
    const float eps = 1e-5f;
    auto norm_after = [&](const LayerState& s) {
        launch_kernel(stream, true, add_rms_norm, 1, 512, residual, (const act_t*) o, (const void*) s.norm, (int) JV_BF16, eps, 0.0f,
                      h, HIDDEN);
    };
    const int split = gemv_split(HIDDEN, shortest);
    bool oProgrammatic = true;  // false: the o projection waits for attention's end (a plain stream edge)
    auto o_gemv = [&](const LayerState& s) {
        int rowsPerBlock = GEMV_WARPS / split;
        launch_kernel(stream, oProgrammatic, gemv_rows, (HIDDEN + rowsPerBlock - 1) / rowsPerBlock, 32 * GEMV_WARPS, (const act_t*) s.wo,
                      (const act_t*) attn, o, HIDDEN, HIDDEN, split, 0);
    };
    int sharedRows = 0, stagedBlocks = 0;
    auto o_staged = [&](const LayerState& s) {
        int rowsPerBlock = (HIDDEN + stagedBlocks - 1) / stagedBlocks;
        cudaLaunchConfig_t config = {};
        config.gridDim = dim3(stagedBlocks);
        config.blockDim = dim3(32 * STAGED_WARPS);
        config.dynamicSmemBytes = (size_t) sharedRows * HIDDEN * sizeof(act_t);
        config.stream = stream;
        cudaLaunchAttribute attribute;
        attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attribute.val.programmaticStreamSerializationAllowed = 1;
        config.attrs = &attribute;
        config.numAttrs = oProgrammatic ? 1 : 0;
        CHECK(cudaLaunchKernelEx(&config, gemv_rows_staged, (const act_t*) s.wo, (const act_t*) attn, o, HIDDEN, rowsPerBlock, sharedRows));
    };
    CHECK(cudaFuncGetAttributes(&stagedAttributes, gemv_rows_staged));
    CHECK(cudaFuncSetAttribute(gemv_rows_staged, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int) (prop.sharedMemPerBlockOptin - stagedAttributes.sharedSizeBytes)));
    std::printf("{\"what\":\"device\",\"name\":\"%s\",\"sms\":%d,\"split\":%d,\"decode_static_smem\":%zu,\"decode_registers\":%d,"
                "\"staged_static_smem\":%zu,\"staged_registers\":%d,\"staged_spill_bytes\":%zu,\"smem_per_sm\":%zu,\"smem_optin\":%zu,"
                "\"cluster\":%d,\"staged_warps\":%d}\n", prop.name, sms, split, decodeAttributes.sharedSizeBytes, decodeAttributes.numRegs,
                stagedAttributes.sharedSizeBytes, stagedAttributes.numRegs, stagedAttributes.localSizeBytes,
                prop.sharedMemPerMultiprocessor, prop.sharedMemPerBlockOptin, cluster, STAGED_WARPS);

    // The staged forms' shapes: rows a block = shared rows + one a warp; blocks = rows / that, at most one an SM.
    struct Shape { int sharedRows, blocks; };
    std::vector<Shape> shapes;
    for (int rows : sharedRowsList) {
        int perBlock = rows + STAGED_WARPS;
        shapes.push_back({rows, (HIDDEN + perBlock - 1) / perBlock});
    }

    // Correctness: the o output of each staged shape against gemv_rows' on layer 0.
    auto widen = [](unsigned short b) { unsigned int u = (unsigned int) b << 16; float f; std::memcpy(&f, &u, 4); return f; };
    std::vector<unsigned short> base(HIDDEN), other(HIDDEN);
    attention(states[0]);
    o_gemv(states[0]);
    CHECK(cudaMemcpyAsync(base.data(), o, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
    CHECK(cudaStreamSynchronize(stream));
    for (Shape shape : shapes) {
        sharedRows = shape.sharedRows;
        stagedBlocks = shape.blocks;
        CHECK(cudaMemsetAsync(o, 0, HIDDEN * 2, stream));
        attention(states[0]);
        o_staged(states[0]);
        CHECK(cudaMemcpyAsync(other.data(), o, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
        CHECK(cudaStreamSynchronize(stream));
        double worst = 0, scale = 0;
        int differing = 0;
        for (int i = 0; i < HIDDEN; i++) {
            worst = std::max(worst, (double) std::fabs(widen(base[i]) - widen(other[i])));
            scale = std::max(scale, (double) std::fabs(widen(base[i])));
            differing += base[i] != other[i];
        }
        std::printf("{\"what\":\"check\",\"shared_rows\":%d,\"blocks\":%d,\"max_abs_diff\":%.5g,\"scale\":%.5g,\"differing\":%d}\n",
                    shape.sharedRows, shape.blocks, worst, scale, differing);
    }

    auto time_graph = [&](auto&& body, const std::string& name) {
        cudaGraphExec_t exec = nullptr;
        cudaGraph_t graph = nullptr;
        CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        body();
        CHECK(cudaStreamEndCapture(stream, &graph));
        CHECK(cudaGraphInstantiate(&exec, graph, 0));
        CHECK(cudaGraphDestroy(graph));
        std::vector<float> times = event_times(stream, 3, repeats, [&] { CHECK(cudaGraphLaunch(exec, stream)); });
        std::printf("{\"what\":\"o_staged\",\"form\":\"%s\",\"layers\":%d,\"context\":%d,\"us_per_layer\":%.2f,\"min_us_per_layer\":%.2f}\n",
                    name.c_str(), layers, context, times[times.size() / 2] * 1e3 / layers, times[0] * 1e3 / layers);
        CHECK(cudaGraphExecDestroy(exec));
    };
    auto over_layers = [&](auto&& one) { return [&] { for (int l = 0; l < layers; l++) one(states[l]); }; };
    // Attention merged through global memory (no cluster) instead: whether the o projection's blocks
    // start during a cluster launch's run.
    int clusterDefault = cluster;
    for (int width : {1, 4}) {
        cluster = width;
        std::string tag = "_cluster" + std::to_string(width);
        time_graph(over_layers([&](const LayerState& s) { attention(s); o_gemv(s); norm_after(s); }), "attention_gemv_rows_norm" + tag);
        time_graph(over_layers([&](const LayerState& s) { attention(s); norm_after(s); }), "attention_norm_no_o" + tag);
        for (Shape shape : shapes) {
            sharedRows = shape.sharedRows;
            stagedBlocks = shape.blocks;
            std::string shapeTag = "_shared" + std::to_string(shape.sharedRows) + "_blocks" + std::to_string(shape.blocks);
            time_graph(over_layers([&](const LayerState& s) { attention(s); o_staged(s); norm_after(s); }),
                       "attention_staged_norm" + shapeTag + tag);
        }
    }
    cluster = clusterDefault;
    time_graph(over_layers([&](const LayerState& s) { norm_after(s); }), "norm_alone");
    // The o projection as a plain launch after attention: what the programmatic launch gains there.
    for (int width : {16, 1}) {
        cluster = width;
        oProgrammatic = false;
        std::string tag = "_cluster" + std::to_string(width) + "_plain_o";
        time_graph(over_layers([&](const LayerState& s) { attention(s); o_gemv(s); norm_after(s); }), "attention_gemv_rows_norm" + tag);
        sharedRows = shapes[0].sharedRows;
        stagedBlocks = shapes[0].blocks;
        time_graph(over_layers([&](const LayerState& s) { attention(s); o_staged(s); norm_after(s); }),
                   "attention_staged_norm_shared" + std::to_string(sharedRows) + tag);
        oProgrammatic = true;
    }
    cluster = clusterDefault;
    for (int round = 0; round < 2; round++) {
        time_graph(over_layers([&](const LayerState& s) { attention(s); o_gemv(s); norm_after(s); }), "attention_gemv_rows_norm");
        time_graph(over_layers([&](const LayerState& s) { attention(s); norm_after(s); }), "attention_norm_no_o");
        time_graph(over_layers([&](const LayerState& s) { o_gemv(s); norm_after(s); }), "gemv_rows_norm_no_attention");
        for (Shape shape : shapes) {
            sharedRows = shape.sharedRows;
            stagedBlocks = shape.blocks;
            std::string tag = "_shared" + std::to_string(shape.sharedRows) + "_blocks" + std::to_string(shape.blocks);
            time_graph(over_layers([&](const LayerState& s) { attention(s); o_staged(s); norm_after(s); }), "attention_staged_norm" + tag);
            time_graph(over_layers([&](const LayerState& s) { o_staged(s); norm_after(s); }), "staged_norm_no_attention" + tag);
        }
    }
    CHECK(cudaGetLastError());
    return 0;
}
