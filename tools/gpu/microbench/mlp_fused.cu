// A measurement before a build (issue 4, batch-1 decode): a gated MLP's gate/up and down products in
// one launch, with no wait between them. Each block takes a run of intermediate rows: it computes
// their activation (SiLU(gate · x) · (up · x), rounded as gemv_gated rounds it), keeps it in shared
// memory and at once multiplies it by the matching columns of down, adding its partial sums of all
// output rows into a float32 buffer (red.global.add). The add + norm that follows reads that
// buffer, rounds it as the unfused down product would have been rounded, and zeroes it for the next
// layer. The grid is one block an SM: gate/up's tail and down's ramp disappear, since no block
// waits for another; the price is split-K's partial sums (4096 atomic adds a block).
//
// Baseline: CudaBackend's launches at batch 1 (the same kernels and grids; gemv rows in parts of at
// least GEMV_SHORTEST elements, the H200's 2048 by default) as programmatic dependent launches.
// Both run over LAYERS layers with their own weights (far past L2), as CUDA graphs, timed with
// events after warm-up; the fused form's outputs are checked against the baseline's.
// Usage: mlp_fused [layers, default 16] [repeats, default 20] [grid sizes, default "132,128,112"]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <string>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>

#include "linear.cu"
#include "norms.cu"

#include "bench.cuh"
#include "mlp_layer.cuh"

constexpr int HIDDEN = 4096, INTER = 14336;

#ifndef FUSED_WARPS
#define FUSED_WARPS 16
#endif
#ifndef FUSED_UNROLL
#define FUSED_UNROLL 8
#endif
// 1: two neighbouring output rows' partial sums added by one red.global.add.v2.f32.
#ifndef FUSED_PAIRED_RED
#define FUSED_PAIRED_RED 1
#endif
// 1: down comes transposed ([n, outRows]), so that a block's run of it is one contiguous stretch and
// each thread keeps 8 output rows' sums (outRows = 8 × the block's threads).
#ifndef FUSED_TRANSPOSED
#define FUSED_TRANSPOSED 0
#endif
// With FUSED_TRANSPOSED, 1: a block's rows are every grid-th 16-byte piece's rows instead of one run,
// so that the blocks read neighbouring rows at the same time (as gemv_gated's many small blocks do).
#ifndef FUSED_INTERLEAVED
#define FUSED_INTERLEAVED 0
#endif
// Diagnosis only (outputs then wrong): 1 leaves out the down half, 2 the gate/up half.
#ifndef FUSED_SKIP
#define FUSED_SKIP 0
#endif
// 1: a warp asks for a batch of gate's pieces and the matching batch of up's at once (twice the
// bytes in flight a warp), instead of gate's row and then up's.
#ifndef FUSED_TOGETHER
#define FUSED_TOGETHER 1
#endif
// Lanes that share one down row's run of columns: a block's run is at most this many 16-byte pieces.
constexpr int SEGMENT_LANES = 16;

// act = fn(gate · x) * (up · x) for this block's run of intermediate rows (whole 16-byte pieces of
// down's columns, at most SEGMENT_LANES of them), then sums[j] += down[j, run] · act[run] for every
// output row j. gate, up [n, k]; down [outRows, n]; sums [outRows] float32.
extern "C" __global__ void __launch_bounds__(32 * FUSED_WARPS, 1)
gemv_gated_down(const act_t* gate, const act_t* up, const act_t* down, const act_t* x, float* sums, int fn, int n, int k,
                int outRows) {
    constexpr int PIECE = 16 / sizeof(act_t);
    __shared__ float activated[SEGMENT_LANES * PIECE];
    int pieces = n / PIECE;
    int first = (int) ((i64) pieces * blockIdx.x / gridDim.x);
    int count = (int) ((i64) pieces * (blockIdx.x + 1) / gridDim.x) - first;
    int rows = count * PIECE, row0 = first * PIECE;
#if FUSED_TRANSPOSED && FUSED_INTERLEAVED
    // The block's r-th row, counted over all n; its pieces are blockIdx.x, + gridDim.x, ...
    count = (pieces - (int) blockIdx.x + (int) gridDim.x - 1) / (int) gridDim.x;
    rows = count * PIECE;
    auto global_row = [&](int r) { return ((r / PIECE) * (int) gridDim.x + (int) blockIdx.x) * PIECE + r % PIECE; };
#else
    auto global_row = [&](int r) { return row0 + r; };
#endif
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    WeightPieces firstGate;
    if (warp < rows) firstGate = first_weight_pieces(gate + (i64) global_row(warp) * k, k, lane);
    JV_DEPENDENT_PROLOGUE();
    for (int r = warp; r < rows && FUSED_SKIP != 2; r += FUSED_WARPS) {
        i64 at = (i64) global_row(r) * k;
#if FUSED_TOGETHER
        int rowPieces = k / PIECE;
        float g = 0.0f, u = 0.0f;
        for (int base = 0; base < rowPieces; base += 32 * GEMV_UNROLL) {
            WeightPieces gates = r == warp && base == 0 ? firstGate : weight_pieces(gate + at, rowPieces, base, lane);
            WeightPieces ups = weight_pieces(up + at, rowPieces, base, lane);
            add_batch_dot(g, gates, x, rowPieces, base, lane);
            add_batch_dot(u, ups, x, rowPieces, base, lane);
        }
#else
        float g = r == warp ? lane_dot(gate + at, x, k, lane, firstGate) : lane_dot(gate + at, x, k, lane);
        float u = lane_dot(up + at, x, k, lane);
#endif
        g = warp_sum(g);
        u = warp_sum(u);
        if (lane == 0) activated[r] = act_to_float(float_to_act(apply_activation(fn, g) * u));
    }

    if (FUSED_SKIP == 2 && threadIdx.x < rows) activated[threadIdx.x] = 0.001f * threadIdx.x;
    if (FUSED_SKIP == 1) {
        if (threadIdx.x < rows) sums[global_row(threadIdx.x) % outRows] = activated[threadIdx.x];
        return;
    }
#if FUSED_TRANSPOSED
    {
        // Each thread owns PIECE consecutive output rows; the block walks its run of down's rows.
        const act_t* run = down + threadIdx.x * PIECE;
        bool owns = threadIdx.x * PIECE < outRows;
        float acc[PIECE] = {};
        uint4 next[FUSED_UNROLL];
#pragma unroll
        for (int u = 0; u < FUSED_UNROLL; u++) {
            next[u] = owns && u < rows ? *(const uint4*) (run + (i64) global_row(u) * outRows) : make_uint4(0, 0, 0, 0);
        }
        __syncthreads();
        for (int r = 0; r < rows; r += FUSED_UNROLL) {
            uint4 current[FUSED_UNROLL];
#pragma unroll
            for (int u = 0; u < FUSED_UNROLL; u++) current[u] = next[u];
#pragma unroll
            for (int u = 0; u < FUSED_UNROLL; u++) {
                int following = r + FUSED_UNROLL + u;
                next[u] = owns && following < rows ? *(const uint4*) (run + (i64) global_row(following) * outRows)
                                                   : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int u = 0; u < FUSED_UNROLL; u++) {
                if (r + u >= rows) break;
                float scale = activated[r + u];
                const act_t* w = (const act_t*) &current[u];
#pragma unroll
                for (int e = 0; e < PIECE; e++) acc[e] += scale * act_to_float(w[e]);
            }
        }
        if (owns) {
#pragma unroll
            for (int q = 0; q < PIECE / 4; q++) {
                atomicAdd((float4*) (sums + threadIdx.x * PIECE + 4 * q),
                          make_float4(acc[4 * q], acc[4 * q + 1], acc[4 * q + 2], acc[4 * q + 3]));
            }
        }
        return;
    }
#endif
    // Down: a group of SEGMENT_LANES lanes takes one output row, each lane one piece of the run.
    int group = lane / SEGMENT_LANES, sub = lane % SEGMENT_LANES;
    bool active = sub < count;
    const act_t* columns = down + (i64) (first + sub) * PIECE;
    constexpr int ROWS_A_SLOT = FUSED_WARPS * 2;
    auto row_of = [&](int base, int u) { return base + u * ROWS_A_SLOT + warp * 2 + group; };
    uint4 next[FUSED_UNROLL];
#pragma unroll
    for (int u = 0; u < FUSED_UNROLL; u++) {
        int row = row_of(0, u);
        next[u] = active && row < outRows ? *(const uint4*) (columns + (i64) row * n) : make_uint4(0, 0, 0, 0);
    }
    __syncthreads();
    float a[PIECE];
#pragma unroll
    for (int e = 0; e < PIECE; e++) a[e] = active ? activated[sub * PIECE + e] : 0.0f;
    for (int base = 0; base < outRows; base += ROWS_A_SLOT * FUSED_UNROLL) {
        uint4 current[FUSED_UNROLL];
#pragma unroll
        for (int u = 0; u < FUSED_UNROLL; u++) current[u] = next[u];
        int following = base + ROWS_A_SLOT * FUSED_UNROLL;
#pragma unroll
        for (int u = 0; u < FUSED_UNROLL; u++) {
            int row = row_of(following, u);
            next[u] = active && row < outRows ? *(const uint4*) (columns + (i64) row * n) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < FUSED_UNROLL; u++) {
            const act_t* w = (const act_t*) &current[u];
            float d = 0.0f;
#pragma unroll
            for (int e = 0; e < PIECE; e++) d += a[e] * act_to_float(w[e]);
            d += __shfl_xor_sync(0xffffffffu, d, 8);
            d += __shfl_xor_sync(0xffffffffu, d, 4);
            d += __shfl_xor_sync(0xffffffffu, d, 2);
            d += __shfl_xor_sync(0xffffffffu, d, 1);
            int row = row_of(base, u);
#if FUSED_PAIRED_RED
            float second = __shfl_down_sync(0xffffffffu, d, SEGMENT_LANES);
            if (lane == 0 && row < outRows) {
                if (row + 1 < outRows) atomicAdd((float2*) (sums + row), make_float2(d, second));
                else atomicAdd(sums + row, d);
            }
#else
            if (sub == 0 && row < outRows) atomicAdd(sums + row, d);
#endif
        }
    }
}

// x += round(sums), out = rms_norm(x) · weight, sums = 0: the add + norm after gemv_gated_down, the
// sum rounded to act_t as the unfused down product writes it. One block; cols whole pieces, one a thread.
extern "C" __global__ void add_sums_rms_norm(act_t* x, float* sums, const act_t* weight, float eps, act_t* out, int cols) {
    constexpr int PIECE = 16 / sizeof(act_t);
    JV_DEPENDENT_PROLOGUE();
    int at = threadIdx.x * PIECE;
    bool mine = at < cols;
    float values[PIECE];
    float squares = 0.0f;
    if (mine) {
        uint4 raw = *(const uint4*) (x + at);
        const act_t* xs = (const act_t*) &raw;
        float4* partial = (float4*) (sums + at);
        float s[PIECE];
#pragma unroll
        for (int q = 0; q < PIECE / 4; q++) {
            float4 f = partial[q];
            s[4 * q] = f.x, s[4 * q + 1] = f.y, s[4 * q + 2] = f.z, s[4 * q + 3] = f.w;
            partial[q] = make_float4(0, 0, 0, 0);
        }
        act_t summed[PIECE];
#pragma unroll
        for (int e = 0; e < PIECE; e++) {
            summed[e] = float_to_act(act_to_float(xs[e]) + act_to_float(float_to_act(s[e])));
            values[e] = act_to_float(summed[e]);
            squares += values[e] * values[e];
        }
        *(uint4*) (x + at) = *(const uint4*) summed;
    }
    float inverseRms = 1.0f / sqrtf(block_sum(squares) / cols + eps);
    if (mine) {
        act_t normed[PIECE];
#pragma unroll
        for (int e = 0; e < PIECE; e++) normed[e] = float_to_act(values[e] * inverseRms * act_to_float(weight[at + e]));
        *(uint4*) (out + at) = *(const uint4*) normed;
    }
}

static int gemvShortest = 2048;

// CudaBackend.gemvSplit.
static int gemv_split(int width) {
    int split = 1;
    while (split < GEMV_WARPS && width / (2 * split) >= gemvShortest && width % (16 * split) == 0) split *= 2;
    return split;
}

static int gemv_blocks(int rows, int split) { return (rows + GEMV_WARPS / split - 1) / (GEMV_WARPS / split); }

__global__ void transpose(const act_t* in, act_t* out, int rows, int cols) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < (long long) rows * cols;
         i += (long long) gridDim.x * blockDim.x) {
        long long r = i / cols, c = i % cols;
        out[c * rows + r] = in[i];
    }
}

int main(int argc, char** argv) {
    int layers = argc > 1 ? std::atoi(argv[1]) : 16;
    int repeats = argc > 2 ? std::atoi(argv[2]) : 20;
    std::string gridList = argc > 3 ? argv[3] : "132,128,112";
    if (const char* s = std::getenv("GEMV_SHORTEST")) gemvShortest = std::atoi(s);
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    auto alloc = alloc_act;
    std::vector<Layer> weights(layers);
    for (int l = 0; l < layers; l++) {
        weights[l] = random_layer(l, HIDDEN, INTER);
        if (FUSED_TRANSPOSED) {
            weights[l].wdT = alloc((long long) HIDDEN * INTER);
            transpose<<<1024, 256>>>(weights[l].wd, weights[l].wdT, HIDDEN, INTER);
        }
    }
    act_t *attn = alloc(HIDDEN), *residual0 = alloc(HIDDEN), *residual = alloc(HIDDEN), *h = alloc(HIDDEN),
          *o = alloc(HIDDEN), *act = alloc(INTER), *d = alloc(HIDDEN), *hNext = alloc(HIDDEN);
    fill_random<<<16, 256>>>(attn, HIDDEN, 7, 1.0f);
    fill_random<<<16, 256>>>(residual0, HIDDEN, 9, 1.0f);
    float* sums;
    CHECK(cudaMalloc(&sums, HIDDEN * sizeof(float)));
    CHECK(cudaMemset(sums, 0, HIDDEN * sizeof(float)));
    CHECK(cudaDeviceSynchronize());
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    const float eps = 1e-5f;

    auto launch = [&](auto kernel, int grid, int block, auto... args) {
        launch_kernel(stream, true, kernel, grid, block, args...);
    };
    const int s1 = gemv_split(HIDDEN), s2 = gemv_split(INTER);
    int fusedGrid = 132;
    auto o_projection = [&](const Layer& w) {
        launch(gemv_rows, gemv_blocks(HIDDEN, s1), 32 * GEMV_WARPS, (const act_t*) w.wo, (const act_t*) attn, o, HIDDEN,
               HIDDEN, s1, 0);
    };
    auto norm_after = [&](act_t* delta, const act_t* weight, act_t* out) {
        launch(add_rms_norm, 1, 512, residual, (const act_t*) delta, (const void*) weight, (int) JV_BF16, eps, 0.0f, out,
               HIDDEN);
    };
    auto unfused_mlp = [&](const Layer& w) {
        launch(gemv_gated, gemv_blocks(INTER, s1), 32 * GEMV_WARPS, (const act_t*) w.wg, (const act_t*) w.wu,
               (const act_t*) h, act, (int) JV_SILU, INTER, HIDDEN, s1, 0);
        launch(gemv_rows, gemv_blocks(HIDDEN, s2), 32 * GEMV_WARPS, (const act_t*) w.wd, (const act_t*) act, d, HIDDEN,
               INTER, s2, 0);
        norm_after(d, w.normNext, hNext);
    };
    auto fused_mlp = [&](const Layer& w) {
        launch(gemv_gated_down, fusedGrid, 32 * FUSED_WARPS, (const act_t*) w.wg, (const act_t*) w.wu,
               (const act_t*) (FUSED_TRANSPOSED ? w.wdT : w.wd), (const act_t*) h, sums, (int) JV_SILU, INTER, HIDDEN, HIDDEN);
        launch(add_sums_rms_norm, 1, 512, residual, sums, (const act_t*) w.normNext, eps, hNext, HIDDEN);
    };
    auto attention_half = [&](const Layer& w) {
        o_projection(w);
        norm_after(o, w.norm2, h);
    };

    std::vector<int> grids = int_list(gridList);
    std::printf("{\"what\":\"device\",\"name\":\"%s\",\"sms\":%d,\"gemv_shortest\":%d,\"fused_warps\":%d,\"fused_unroll\":%d,"
                "\"paired_red\":%d,\"transposed\":%d,\"skip\":%d,\"together\":%d,\"interleaved\":%d}\n", prop.name, prop.multiProcessorCount, gemvShortest,
                FUSED_WARPS, FUSED_UNROLL, FUSED_PAIRED_RED, FUSED_TRANSPOSED, FUSED_SKIP, FUSED_TOGETHER, FUSED_INTERLEAVED);

    // Correctness: one layer each way from the same residual.
    auto widen = [](unsigned short b) { unsigned int u = (unsigned int) b << 16; float f; std::memcpy(&f, &u, 4); return f; };
    std::vector<unsigned short> base(HIDDEN), baseH(HIDDEN), other(HIDDEN), otherH(HIDDEN);
    auto one_layer = [&](auto&& body, std::vector<unsigned short>& r, std::vector<unsigned short>& n) {
        CHECK(cudaMemcpyAsync(residual, residual0, HIDDEN * sizeof(act_t), cudaMemcpyDeviceToDevice, stream));
        attention_half(weights[0]);
        body(weights[0]);
        CHECK(cudaMemcpyAsync(r.data(), residual, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
        CHECK(cudaMemcpyAsync(n.data(), hNext, HIDDEN * 2, cudaMemcpyDeviceToHost, stream));
        CHECK(cudaStreamSynchronize(stream));
    };
    one_layer(unfused_mlp, base, baseH);
    for (int g : grids) {
        fusedGrid = g;
        one_layer(fused_mlp, other, otherH);
        double worst = 0, worstH = 0, scale = 0;
        int differing = 0;
        for (int i = 0; i < HIDDEN; i++) {
            worst = std::max(worst, (double) std::fabs(widen(base[i]) - widen(other[i])));
            worstH = std::max(worstH, (double) std::fabs(widen(baseH[i]) - widen(otherH[i])));
            scale = std::max(scale, (double) std::fabs(widen(base[i])));
            differing += base[i] != other[i];
        }
        std::printf("{\"what\":\"check\",\"grid\":%d,\"max_abs_diff_residual\":%.5g,\"max_abs_diff_next_norm\":%.5g,"
                    "\"residual_scale\":%.5g,\"residual_elements_differing\":%d}\n", g, worst, worstH, scale, differing);
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
        double perLayerUs = times[times.size() / 2] * 1e3 / layers;
        std::printf("{\"what\":\"mlp_fused\",\"form\":\"%s\",\"layers\":%d,\"us_per_layer\":%.2f,\"min_us_per_layer\":%.2f}\n",
                    name.c_str(), layers, perLayerUs, times[0] * 1e3 / layers);
        CHECK(cudaGraphExecDestroy(exec));
    };
    auto each = [&](auto&& one) { return [&] { for (int l = 0; l < layers; l++) one(weights[l]); }; };
    auto whole = [&](auto&& mlp) { return [&] { for (int l = 0; l < layers; l++) { attention_half(weights[l]); mlp(weights[l]); } }; };
    for (int round = 0; round < 2; round++) {
        time_graph(each(unfused_mlp), "mlp_unfused_3_launches");
        time_graph(whole(unfused_mlp), "half_layer_unfused_5_launches");
        for (int g : grids) {
            fusedGrid = g;
            time_graph(each(fused_mlp), "mlp_fused_2_launches_grid" + std::to_string(g));
            time_graph(whole(fused_mlp), "half_layer_fused_4_launches_grid" + std::to_string(g));
        }
    }
    CHECK(cudaGetLastError());
    return 0;
}
