// A measurement before a build (issue 4, batch-1 decode): how much of a Llama-3-8B layer's MLP half
// would one persistent kernel save over jvllm's five launches? Runs on the GPU machine alone (no
// Java): tools/gpu/microbench/run.sh builds it with nvcc against the kernels' own sources.
//
// Baseline, per layer, exactly the launches CudaBackend makes at batch 1 (same kernels, same grids):
//   gemv_rows (o projection) -> add_rms_norm -> gemv_gated (gate/up, SiLU) -> gemv_rows (down) -> add_rms_norm
// Chain: one cooperative kernel, one block an SM, doing the same work in four phases separated by
// grid barriers; before each barrier a block asks L2 for the first bytes of its rows of the next
// phase's weight, so that the memory does not idle while the grid waits for its last block.
//
// Both run over LAYERS layers with their own weights (3.1 GB, far past L2), as CUDA graphs, timed
// with events after warm-up; the chain's outputs are checked against the baseline's.
// Usage: mlp_chain [prefetch KB a block, default 64] [layers, default 8] [repeats, default 20] [all|pdl]
// (pdl: each kernel alone, the five launches as programmatic dependent launches, and three
// programmatic launches with each norm done by the last block of the product before it)
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cuda_runtime.h>

#include "linear.cu"
#include "norms.cu"

#include "bench.cuh"
#include "mlp_layer.cuh"

constexpr int HIDDEN = 4096, INTER = 14336;
constexpr int CHAIN_WARPS = 32;
constexpr int PIECE = 16 / sizeof(act_t);  // elements a 16-byte piece

struct ChainArgs {
    const act_t* attn;      // [HIDDEN] attention output (the o projection's input)
    const act_t* wo;        // [HIDDEN, HIDDEN]
    act_t* residual;        // [HIDDEN], updated twice
    const act_t* norm2;     // [HIDDEN] post-attention norm weight
    const act_t* wg;        // [INTER, HIDDEN]
    const act_t* wu;        // [INTER, HIDDEN]
    act_t* act;             // [INTER] silu(gate) * up
    const act_t* wd;        // [HIDDEN, INTER]
    const act_t* normNext;  // [HIDDEN] the next layer's input norm weight
    act_t* hNext;           // [HIDDEN] its output
    float eps;
    unsigned int* barrier;  // [2]: arrivals, generation
    int prefetchBytes;      // a block asks L2 for this much of each of its next weight regions
};

// All blocks of the (co-resident, cooperative) grid meet here; writes before are visible after.
__device__ void grid_barrier(unsigned int* barrier) {
    __syncthreads();
    if (threadIdx.x == 0) {
        volatile unsigned int* generation = barrier + 1;
        unsigned int seen = *generation;
        __threadfence();
        if (atomicAdd(barrier, 1u) == gridDim.x - 1) {
            barrier[0] = 0;
            __threadfence();
            atomicAdd(barrier + 1, 1u);
        } else {
            while (*generation == seen) __nanosleep(20);
        }
        __threadfence();
    }
    __syncthreads();
}

__device__ void prefetch_l2(const void* p, long long bytes) {
    // lanes of warp 0, 16 KB a request
    if (threadIdx.x >= 32) return;
    for (long long at = (long long) threadIdx.x * 16384; at < bytes; at += 32 * 16384) {
        int n = (int) min(16384LL, bytes - at) & ~15;
        if (n > 0) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"((const char*) p + at), "r"(n));
    }
}

// Rows [first, first + count) of this block for n rows over the grid.
__device__ void block_rows(int n, int& first, int& count) {
    first = (int) ((long long) n * blockIdx.x / gridDim.x);
    count = (int) ((long long) n * (blockIdx.x + 1) / gridDim.x) - first;
}

// Sum of squares of v ([n] in shared memory) over the block, then 1/rms.
__device__ float inverse_rms(const act_t* v, int n, float eps) {
    float squares = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float f = act_to_float(v[i]);
        squares += f * f;
    }
    return 1.0f / sqrtf(block_sum(squares) / n + eps);
}

extern "C" __global__ void __launch_bounds__(32 * CHAIN_WARPS, 1) mlp_chain(ChainArgs a) {
    __shared__ __align__(16) act_t x[INTER];
    __shared__ float partials[2][128 * 4];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int first, count;

    // Phase A: o = Wo · attn for this block's rows; residual += o (rounded as add_rms_norm rounds).
    for (int i = threadIdx.x; i < HIDDEN / PIECE; i += blockDim.x) ((uint4*) x)[i] = ((const uint4*) a.attn)[i];
    __syncthreads();
    block_rows(HIDDEN, first, count);
    for (int r = warp; r < count; r += CHAIN_WARPS) {
        float dot = warp_sum(lane_dot(a.wo + (i64) (first + r) * HIDDEN, x, HIDDEN, lane));
        if (lane == 0) {
            int row = first + r;
            act_t o = float_to_act(dot);
            a.residual[row] = float_to_act(act_to_float(a.residual[row]) + act_to_float(o));
        }
    }
    int gFirst, gCount;
    block_rows(INTER, gFirst, gCount);
    prefetch_l2(a.wg + (i64) gFirst * HIDDEN, min((long long) a.prefetchBytes, (long long) gCount * HIDDEN * 2));
    prefetch_l2(a.wu + (i64) gFirst * HIDDEN, min((long long) a.prefetchBytes, (long long) gCount * HIDDEN * 2));
    grid_barrier(a.barrier);

    // Phase B: h = rms_norm(residual) · norm2 (each block the whole row), act = silu(g) · u for its rows.
    for (int i = threadIdx.x; i < HIDDEN; i += blockDim.x) x[i] = a.residual[i];
    __syncthreads();
    float inv = inverse_rms(x, HIDDEN, a.eps);
    for (int i = threadIdx.x; i < HIDDEN; i += blockDim.x) {
        x[i] = float_to_act(act_to_float(x[i]) * inv * act_to_float(a.norm2[i]));
    }
    __syncthreads();
    for (int r = warp; r < gCount; r += CHAIN_WARPS) {
        i64 at = (i64) (gFirst + r) * HIDDEN;
        float g = warp_sum(lane_dot(a.wg + at, x, HIDDEN, lane));
        float u = warp_sum(lane_dot(a.wu + at, x, HIDDEN, lane));
        if (lane == 0) a.act[gFirst + r] = float_to_act(apply_activation(JV_SILU, g) * u);
    }
    int dFirst, dCount;
    block_rows(HIDDEN, dFirst, dCount);
    prefetch_l2(a.wd + (i64) dFirst * INTER, min((long long) a.prefetchBytes, (long long) dCount * INTER * 2));
    grid_barrier(a.barrier);

    // Phase C: d = Wd · act for its rows, each row split over SPLIT warps; residual += d.
    constexpr int SPLIT = 4;
    for (int i = threadIdx.x; i < INTER / PIECE; i += blockDim.x) ((uint4*) x)[i] = ((const uint4*) a.act)[i];
    __syncthreads();
    constexpr int PART = INTER / PIECE / SPLIT;
    for (int job = warp; job < dCount * SPLIT; job += CHAIN_WARPS) {
        int r = job / SPLIT, part = job % SPLIT;
        float dot = warp_sum(lane_dot(a.wd + (i64) (dFirst + r) * INTER + part * PART * PIECE, x + part * PART * PIECE, PART * PIECE, lane));
        if (lane == 0) partials[0][job] = dot;
    }
    __syncthreads();
    for (int r = threadIdx.x; r < dCount; r += blockDim.x) {
        float dot = 0.0f;
        for (int part = 0; part < SPLIT; part++) dot += partials[0][r * SPLIT + part];
        int row = dFirst + r;
        a.residual[row] = float_to_act(act_to_float(a.residual[row]) + act_to_float(float_to_act(dot)));
    }
    grid_barrier(a.barrier);

    // Phase D: the next layer's input norm, each block writing its rows.
    for (int i = threadIdx.x; i < HIDDEN; i += blockDim.x) x[i] = a.residual[i];
    __syncthreads();
    inv = inverse_rms(x, HIDDEN, a.eps);
    for (int r = threadIdx.x; r < dCount; r += blockDim.x) {
        int row = dFirst + r;
        a.hNext[row] = float_to_act(act_to_float(x[row]) * inv * act_to_float(a.normNext[row]));
    }
}

// CudaBackend.gemvSplit with its default shortest part (jvllm.cuda.gemvShortestPart, 1024 since the
// sixteenth session; the results of earlier sessions were measured at 2048).
static int gemv_split(int width) {
    int split = 1;
    while (split < GEMV_WARPS && width / (2 * split) >= 1024 && width % (16 * split) == 0) split *= 2;
    return split;
}

static int gemv_blocks(int rows, int split) { return (rows + GEMV_WARPS / split - 1) / (GEMV_WARPS / split); }

// gemv_rows, then add_rms_norm's work in the grid's last block to finish: residual += out, and
// normed = residual / rms(residual) * weight (bf16 weight, no offset). The blocks count themselves
// out on `done` (zero between launches: the last block resets it), so that the norm needs no
// launch of its own and the next kernel's early weight loads overlap it (the "fused_norms" forms).
extern "C" __global__ void __launch_bounds__(32 * GEMV_WARPS, GEMV_MIN_BLOCKS)
gemv_rows_then_add_norm(const act_t* w, const act_t* x, act_t* out, int n, int k, int split, int prefetchBytes,
                        act_t* residual, const act_t* normWeight, float eps, act_t* normed, unsigned int* done) {
    RowPart part;
    bool valid;
    float dot = gemv_row_dot(w, x, n, k, split, prefetchBytes, part, valid);  // waits on the kernel ahead
    if (valid && writes_row(split)) out[part.row] = float_to_act(dot);
    __threadfence();
    __syncthreads();
    __shared__ bool last;
    if (threadIdx.x == 0) last = atomicAdd(done, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    float squares = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        act_t sum = float_to_act(act_to_float(residual[i]) + act_to_float(__ldcg(out + i)));
        residual[i] = sum;
        float v = act_to_float(sum);
        squares += v * v;
    }
    float inverseRms = 1.0f / sqrtf(block_sum(squares) / n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        normed[i] = float_to_act(act_to_float(residual[i]) * inverseRms * act_to_float(normWeight[i]));
    }
    if (threadIdx.x == 0) *done = 0;
}

int main(int argc, char** argv) {
    int prefetchKb = argc > 1 ? std::atoi(argv[1]) : 64;
    int layers = argc > 2 ? std::atoi(argv[2]) : 8;
    int repeats = argc > 3 ? std::atoi(argv[3]) : 20;
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    int sms = prop.multiProcessorCount;
    int perSm = 0;
    CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, mlp_chain, 32 * CHAIN_WARPS, 0));
    if (perSm < 1) { std::fprintf(stderr, "mlp_chain does not fit an SM\n"); return 1; }
    auto alloc = alloc_act;
    std::vector<Layer> weights(layers);
    for (int l = 0; l < layers; l++) {
        weights[l] = random_layer(l, HIDDEN, INTER);
    }
    act_t *attn = alloc(HIDDEN), *residual0 = alloc(HIDDEN), *residual = alloc(HIDDEN), *h = alloc(HIDDEN),
          *o = alloc(HIDDEN), *act = alloc(INTER), *d = alloc(HIDDEN), *hNext = alloc(HIDDEN);
    fill_random<<<16, 256>>>(attn, HIDDEN, 7, 1.0f);
    fill_random<<<16, 256>>>(residual0, HIDDEN, 9, 1.0f);
    unsigned int* barrier;
    CHECK(cudaMalloc(&barrier, 2 * sizeof(unsigned int)));
    CHECK(cudaMemset(barrier, 0, 2 * sizeof(unsigned int)));
    CHECK(cudaDeviceSynchronize());
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    const float eps = 1e-5f;

    // programmatic: launched as CudaBackend does with jvllm.cuda.programmaticLaunches (each kernel
    // may start while the one before it ends); gemvPrefetch: the gemv kernels' prefetchBytes.
    bool programmatic = false;
    int gemvPrefetch = 0;
    auto launch = [&](auto kernel, int grid, int block, auto... args) {
        launch_kernel(stream, programmatic, kernel, grid, block, args...);
    };
    const int s1 = gemv_split(HIDDEN), s2 = gemv_split(INTER);
    auto o_projection = [&](const Layer& w) {
        launch(gemv_rows, gemv_blocks(HIDDEN, s1), 32 * GEMV_WARPS, (const act_t*) w.wo, (const act_t*) attn, o, HIDDEN,
               HIDDEN, s1, gemvPrefetch);
    };
    auto norm_after = [&](act_t* delta, const act_t* weight, act_t* out) {
        launch(add_rms_norm, 1, 512, residual, (const act_t*) delta, (const void*) weight, (int) JV_BF16, eps, 0.0f, out,
               HIDDEN);
    };
    auto gate_up = [&](const Layer& w) {
        launch(gemv_gated, gemv_blocks(INTER, s1), 32 * GEMV_WARPS, (const act_t*) w.wg, (const act_t*) w.wu,
               (const act_t*) h, act, (int) JV_SILU, INTER, HIDDEN, s1, gemvPrefetch);
    };
    auto down = [&](const Layer& w) {
        launch(gemv_rows, gemv_blocks(HIDDEN, s2), 32 * GEMV_WARPS, (const act_t*) w.wd, (const act_t*) act, d, HIDDEN,
               INTER, s2, gemvPrefetch);
    };
    unsigned int* doneCounters;
    CHECK(cudaMalloc(&doneCounters, 2 * sizeof(unsigned int)));
    CHECK(cudaMemset(doneCounters, 0, 2 * sizeof(unsigned int)));
    // The same layer in three launches: o with the post-attention norm in its last block, gate/up,
    // and down with the next layer's input norm in its last block.
    auto fused_norms_layer = [&](const Layer& w) {
        launch(gemv_rows_then_add_norm, gemv_blocks(HIDDEN, s1), 32 * GEMV_WARPS, (const act_t*) w.wo,
               (const act_t*) attn, o, HIDDEN, HIDDEN, s1, gemvPrefetch, residual, (const act_t*) w.norm2, eps, h,
               doneCounters);
        gate_up(w);
        launch(gemv_rows_then_add_norm, gemv_blocks(HIDDEN, s2), 32 * GEMV_WARPS, (const act_t*) w.wd,
               (const act_t*) act, d, HIDDEN, INTER, s2, gemvPrefetch, residual, (const act_t*) w.normNext, eps, hNext,
               doneCounters + 1);
    };
    auto baseline_layer = [&](const Layer& w) {
        o_projection(w);
        norm_after(o, w.norm2, h);
        gate_up(w);
        down(w);
        norm_after(d, w.normNext, hNext);
    };
    auto chain_layer = [&](const Layer& w, bool cooperative) {
        ChainArgs args{attn, w.wo, residual, w.norm2, w.wg, w.wu, act, w.wd, w.normNext, hNext, eps, barrier,
                       prefetchKb * 1024};
        cudaLaunchConfig_t config = {};
        config.gridDim = dim3(sms);
        config.blockDim = dim3(32 * CHAIN_WARPS);
        config.stream = stream;
        cudaLaunchAttribute attribute;
        attribute.id = cudaLaunchAttributeCooperative;
        attribute.val.cooperative = cooperative ? 1 : 0;
        config.attrs = &attribute;
        config.numAttrs = 1;
        CHECK(cudaLaunchKernelEx(&config, mlp_chain, args));
    };

    // Correctness: one layer each way from the same residual.
    std::vector<unsigned short> base(HIDDEN), chain(HIDDEN), baseH(HIDDEN), chainH(HIDDEN);
    CHECK(cudaMemcpyAsync(residual, residual0, HIDDEN * sizeof(act_t), cudaMemcpyDeviceToDevice, stream));
    baseline_layer(weights[0]);
    CHECK(cudaMemcpyAsync(base.data(), residual, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
    CHECK(cudaMemcpyAsync(baseH.data(), hNext, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
    CHECK(cudaMemcpyAsync(residual, residual0, HIDDEN * sizeof(act_t), cudaMemcpyDeviceToDevice, stream));
    chain_layer(weights[0], true);
    CHECK(cudaMemcpyAsync(chain.data(), residual, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
    CHECK(cudaMemcpyAsync(chainH.data(), hNext, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
    CHECK(cudaStreamSynchronize(stream));
    auto widen = [](unsigned short b) { unsigned int u = (unsigned int) b << 16; float f; std::memcpy(&f, &u, 4); return f; };
    double worst = 0, worstH = 0, scale = 0;
    for (int i = 0; i < HIDDEN; i++) {
        worst = std::max(worst, (double) std::fabs(widen(base[i]) - widen(chain[i])));
        worstH = std::max(worstH, (double) std::fabs(widen(baseH[i]) - widen(chainH[i])));
        scale = std::max(scale, (double) std::fabs(widen(base[i])));
    }
    std::printf("{\"what\":\"check\",\"max_abs_diff_residual\":%.5g,\"max_abs_diff_next_norm\":%.5g,\"residual_scale\":%.5g}\n",
                worst, worstH, scale);

    {
        std::vector<unsigned short> fused(HIDDEN), fusedH(HIDDEN);
        CHECK(cudaMemcpyAsync(residual, residual0, HIDDEN * sizeof(act_t), cudaMemcpyDeviceToDevice, stream));
        fused_norms_layer(weights[0]);
        CHECK(cudaMemcpyAsync(fused.data(), residual, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
        CHECK(cudaMemcpyAsync(fusedH.data(), hNext, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
        CHECK(cudaStreamSynchronize(stream));
        double worstF = 0, worstFH = 0;
        for (int i = 0; i < HIDDEN; i++) {
            worstF = std::max(worstF, (double) std::fabs(widen(base[i]) - widen(fused[i])));
            worstFH = std::max(worstFH, (double) std::fabs(widen(baseH[i]) - widen(fusedH[i])));
        }
        std::printf("{\"what\":\"check_fused_norms\",\"max_abs_diff_residual\":%.5g,\"max_abs_diff_next_norm\":%.5g}\n",
                    worstF, worstFH);
    }

    auto time_graph = [&](auto&& body, const char* name, bool capture) {
        cudaGraphExec_t exec = nullptr;
        if (capture) {
            cudaGraph_t graph = nullptr;
            CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
            body();
            cudaError_t ended = cudaStreamEndCapture(stream, &graph);
            cudaError_t made = ended == cudaSuccess ? cudaGraphInstantiate(&exec, graph, 0) : ended;
            if (graph) cudaGraphDestroy(graph);
            if (made != cudaSuccess) {
                std::printf("{\"what\":\"capture_failed\",\"form\":\"%s\",\"error\":\"%s\"}\n", name, cudaGetErrorString(made));
                cudaGetLastError();
                return;
            }
        }
        auto run = [&] { if (exec) CHECK(cudaGraphLaunch(exec, stream)); else body(); };
        std::vector<float> times = event_times(stream, 3, repeats, run);
        double perLayerUs = times[times.size() / 2] * 1e3 / layers;
        double bytes = 2.0 * ((double) HIDDEN * HIDDEN + 2.0 * INTER * HIDDEN + (double) HIDDEN * INTER);
        std::printf("{\"what\":\"mlp_half\",\"form\":\"%s\",\"graph\":%s,\"prefetch_kb\":%d,\"layers\":%d,\"us_per_layer\":%.2f,"
                    "\"min_us_per_layer\":%.2f,\"weight_tb_s\":%.3f}\n",
                    name, capture ? "true" : "false", prefetchKb, layers, perLayerUs, times[0] * 1e3 / layers,
                    bytes / (perLayerUs * 1e-6) / 1e12);
        if (exec) CHECK(cudaGraphExecDestroy(exec));
    };
    auto baseline_all = [&] { for (int l = 0; l < layers; l++) baseline_layer(weights[l]); };
    auto chain_all = [&] { for (int l = 0; l < layers; l++) chain_layer(weights[l], true); };
    std::printf("{\"what\":\"device\",\"name\":\"%s\",\"sms\":%d,\"chain_blocks_per_sm\":%d}\n", prop.name, sms, perSm);
    const char* only = argc > 4 ? argv[4] : "all";
    if (std::strcmp(only, "pdl") == 0) {
        // Each kernel alone over the layers (what one launch costs inside a graph), then the five
        // launches as programmatic launches, the gemv kernels' L2 prefetch off and at 4 KB a warp.
        auto each = [&](auto&& one) { return [&] { for (int l = 0; l < layers; l++) one(weights[l]); }; };
        time_graph(each(o_projection), "o_only", true);
        time_graph(each([&](const Layer& w) { norm_after(o, w.norm2, h); }), "norm_only", true);
        time_graph(each(gate_up), "gate_up_only", true);
        time_graph(each(down), "down_only", true);
        time_graph(baseline_all, "baseline_5_launches", true);
        programmatic = true;
        time_graph(baseline_all, "programmatic_5_launches", true);
        time_graph(each(fused_norms_layer), "programmatic_3_launches_fused_norms", true);
        time_graph(baseline_all, "programmatic_5_launches", true);
        time_graph(each(fused_norms_layer), "programmatic_3_launches_fused_norms", true);
        gemvPrefetch = 4096;
        time_graph(baseline_all, "programmatic_5_launches_l2_4kb", true);
        programmatic = false;
        gemvPrefetch = 0;
        time_graph(baseline_all, "baseline_5_launches", true);
        CHECK(cudaGetLastError());
        return 0;
    }
    time_graph(baseline_all, "baseline_5_launches", true);
    time_graph(chain_all, "chain_cooperative", true);
    time_graph(baseline_all, "baseline_5_launches", false);
    time_graph(chain_all, "chain_cooperative", false);
    CHECK(cudaGetLastError());
    return 0;
}
