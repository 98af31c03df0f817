// A question before a build (issue 4, batch 64 on an H200): can a product kernel of our own read a
// Llama-3-8B layer's weights at 64 rows faster than cuBLAS (gate/up 3.84 TB/s, down 3.35, q/k/v
// 3.07, o 2.87 of about 4.2), which would also let the gated activation, the residual add and
// programmatic launches be folded into it?
//
// skinny_gemm: out[rows, n] = x[rows, k] · W[n, k]ᵀ, bf16 in, float32 partial sums out, for rows
// up to 16·M_TILES. A block of four warps takes 32·NT output columns and one of `slices` slices of
// k; the slice's x goes through shared memory 512 columns at a time, and each warp streams its NT·8
// weight rows from DRAM straight into mma.sync B fragments (16 bytes a lane: the k index of each
// 16-wide step is permuted alike in A and B, as paged_decode's tiles do), UNROLL 32-wide steps of
// loads in flight. sum_slices adds the slices' partials into the bf16 output.
// Timed as cublas_splitk.cu times cuBLAS (a CUDA graph over `layers` copies of the weights, so L2
// holds none of them), beside cublasGemmEx in the same harness, and checked against it.
// Usage: skinny_gemm [rows, default 64] [layers, default 8] [repeats, default 20]. One JSON line per
// (product, slices): us (product alone), us_with_sum, tb_s (weights over us_with_sum), cublas_us,
// max_difference against cuBLAS.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
#include <cmath>
#include <cuda_runtime.h>
#include <cublas_v2.h>

#include "bench.cuh"
#include "blas_check.cuh"

constexpr int WARPS = 4;
constexpr int CHUNK = 512;       // x columns a block holds in shared memory at once
constexpr int PAD = 32;          // a row's padding: rows 1088 bytes apart, so 16-byte reads of two rows miss each other's banks
constexpr int STRIDE = CHUNK + PAD;
constexpr int UNROLL = 4;        // 32-wide steps whose weight loads are in flight together

__device__ __forceinline__ uint4 load_streaming(const act_t* p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}

__device__ __forceinline__ unsigned int word(const uint4& v, int i) {
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

template <int M_TILES, int NT>
__global__ void __launch_bounds__(32 * WARPS, 3) skinny_gemm(const act_t* x, const act_t* w, float* partials, int rows,
                                                           int n, int k, int slices) {
    extern __shared__ uint4 shared[];
    act_t* xs = (act_t*) shared;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    int n0 = (blockIdx.x * WARPS + warp) * NT * 8;
    int sliceLength = k / slices;
    int kBegin = blockIdx.y * sliceLength, kEnd = kBegin + sliceLength;
    float acc[M_TILES][NT][4];
#pragma unroll
    for (int mt = 0; mt < M_TILES; mt++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[mt][t][0] = acc[mt][t][1] = acc[mt][t][2] = acc[mt][t][3] = 0.0f;
    const act_t* weightRows[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) weightRows[t] = w + (i64) (n0 + 8 * t + g) * k + 8 * q;

    for (int c0 = kBegin; c0 < kEnd; c0 += CHUNK) {
        int length = min(CHUNK, kEnd - c0);
        int pieces = length / 8;
        __syncthreads();  // the previous chunk's reads are done
        for (int i = threadIdx.x; i < M_TILES * 16 * pieces; i += blockDim.x) {
            int r = i / pieces, p = i % pieces;
            uint4 v = r < rows ? *(const uint4*) (x + (i64) r * k + c0 + 8 * p) : make_uint4(0, 0, 0, 0);
            *(uint4*) (xs + r * STRIDE + 8 * p) = v;
        }
        __syncthreads();
        for (int s0 = 0; s0 < length; s0 += 32 * UNROLL) {
            uint4 weights[UNROLL][NT];
#pragma unroll
            for (int u = 0; u < UNROLL; u++)
#pragma unroll
                for (int t = 0; t < NT; t++)
                    weights[u][t] = s0 + 32 * u < length ? load_streaming(weightRows[t] + c0 + s0 + 32 * u)
                                                          : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                int kk = s0 + 32 * u;
                if (kk >= length) break;
#pragma unroll
                for (int mt = 0; mt < M_TILES; mt++) {
                    uint4 low = *(const uint4*) (xs + (mt * 16 + g) * STRIDE + kk + 8 * q);
                    uint4 high = *(const uint4*) (xs + (mt * 16 + g + 8) * STRIDE + kk + 8 * q);
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        unsigned int a[4] = {word(low, 2 * h), word(high, 2 * h), word(low, 2 * h + 1), word(high, 2 * h + 1)};
#pragma unroll
                        for (int t = 0; t < NT; t++) mma_16816(acc[mt][t], a, word(weights[u][t], 2 * h), word(weights[u][t], 2 * h + 1));
                    }
                }
            }
        }
    }
    float* part = partials + (i64) blockIdx.y * rows * n;
#pragma unroll
    for (int mt = 0; mt < M_TILES; mt++)
#pragma unroll
        for (int t = 0; t < NT; t++) {
            int row = mt * 16 + g, column = n0 + 8 * t + 2 * q;
            if (row < rows) *(float2*) (part + (i64) row * n + column) = make_float2(acc[mt][t][0], acc[mt][t][1]);
            if (row + 8 < rows) *(float2*) (part + (i64) (row + 8) * n + column) = make_float2(acc[mt][t][2], acc[mt][t][3]);
        }
}

// out[i] = the sum over slices s (in order) of partials[s · count + i], rounded to act_t.
__global__ void sum_slices(const float* partials, int slices, long long count, act_t* out) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < count; i += (long long) gridDim.x * blockDim.x) {
        float total = 0.0f;
        for (int s = 0; s < slices; s++) total += partials[s * count + i];
        out[i] = float_to_act(total);
    }
}

static double host_float(act_t bits) {  // act_t is bf16's bits here (built with JV_ACT_TYPE=2)
    unsigned int word = (unsigned int) bits << 16;
    float f;
    std::memcpy(&f, &word, 4);
    return f;
}

struct Shape {
    const char* name;
    int n, k;
};

int main(int argc, char** argv) {
    int rows = argc > 1 ? std::atoi(argv[1]) : 64;
    int layers = argc > 2 ? std::atoi(argv[2]) : 8;
    int repeats = argc > 3 ? std::atoi(argv[3]) : 20;
    constexpr int M_TILES = 4;
    if (rows < 1 || rows > 16 * M_TILES) { std::fprintf(stderr, "rows must be 1-%d\n", 16 * M_TILES); return 1; }
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cublasHandle_t blas;
    CHECK_BLAS(cublasCreate(&blas));
    CHECK_BLAS(cublasSetStream(blas, stream));
    void* workspace;
    CHECK(cudaMalloc(&workspace, 64ull << 20));
    CHECK_BLAS(cublasSetWorkspace(blas, workspace, 64ull << 20));
    size_t sharedBytes = (size_t) M_TILES * 16 * STRIDE * sizeof(act_t);
    CHECK(cudaFuncSetAttribute(skinny_gemm<M_TILES, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) sharedBytes));
    CHECK(cudaFuncSetAttribute(skinny_gemm<M_TILES, 4>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) sharedBytes));

    const Shape shapes[] = {{"o", 4096, 4096}, {"qkv", 6144, 4096}, {"down", 4096, 14336}, {"gate_up", 28672, 4096}};
    for (const Shape& shape : shapes) {
        long long weightElements = (long long) shape.n * shape.k;
        std::vector<act_t*> weights(layers);
        for (int l = 0; l < layers; l++) {
            CHECK(cudaMalloc(&weights[l], weightElements * sizeof(act_t)));
            fill_random<<<1024, 256>>>(weights[l], weightElements, 11 + l, 0.05f);
        }
        act_t *x, *out, *reference;
        float* partials;
        CHECK(cudaMalloc(&x, (size_t) rows * shape.k * sizeof(act_t)));
        CHECK(cudaMalloc(&out, (size_t) rows * shape.n * sizeof(act_t)));
        CHECK(cudaMalloc(&reference, (size_t) rows * shape.n * sizeof(act_t)));
        CHECK(cudaMalloc(&partials, 32ull * rows * shape.n * sizeof(float)));
        fill_random<<<256, 256>>>(x, (long long) rows * shape.k, 7);
        CHECK(cudaDeviceSynchronize());
        float one = 1.0f, zero = 0.0f;
        auto cublasProduct = [&](const act_t* w, act_t* target) {
            CHECK_BLAS(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, shape.n, rows, shape.k, &one, w, CUDA_R_16BF, shape.k,
                                    x, CUDA_R_16BF, shape.k, &zero, target, CUDA_R_16BF, shape.n, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
        };
        // A graph of `layers` runs of `one(l)`, timed per run (median of repeats).
        auto graphTime = [&](auto&& oneLayer) {
            cudaGraph_t graph;
            cudaGraphExec_t exec;
            CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
            for (int l = 0; l < layers; l++) oneLayer(l);
            CHECK(cudaStreamEndCapture(stream, &graph));
            CHECK(cudaGraphInstantiate(&exec, graph, 0));
            std::vector<float> times = event_times(stream, 3, repeats, [&] { CHECK(cudaGraphLaunch(exec, stream)); });
            CHECK(cudaGraphExecDestroy(exec));
            CHECK(cudaGraphDestroy(graph));
            return times[times.size() / 2] * 1e3f / layers;
        };
        float cublasUs = graphTime([&](int l) { cublasProduct(weights[l], out); });
        cublasProduct(weights[0], reference);
        std::vector<act_t> expected((size_t) rows * shape.n), got((size_t) rows * shape.n);
        CHECK(cudaStreamSynchronize(stream));
        CHECK(cudaMemcpy(expected.data(), reference, expected.size() * sizeof(act_t), cudaMemcpyDeviceToHost));
        long long count = (long long) rows * shape.n;
        int sumBlocks = (int) std::min<long long>((count + 255) / 256, prop.multiProcessorCount * 8);
        for (int nt : {4, 2})  // 8-column tiles a warp: 128 or 64 output columns a block
        for (int slices : {1, 2, 4, 7, 8, 14, 16}) {
            if (shape.k % (slices * 32) != 0 || shape.n % (WARPS * nt * 8) != 0) continue;
            dim3 grid(shape.n / (WARPS * nt * 8), slices);
            if (grid.x * slices > 8 * prop.multiProcessorCount || grid.x * slices < prop.multiProcessorCount / 2) continue;
            auto product = [&](const act_t* w) {
                if (nt == 4) {
                    skinny_gemm<M_TILES, 4><<<grid, 32 * WARPS, sharedBytes, stream>>>(x, w, partials, rows, shape.n, shape.k, slices);
                } else {
                    skinny_gemm<M_TILES, 2><<<grid, 32 * WARPS, sharedBytes, stream>>>(x, w, partials, rows, shape.n, shape.k, slices);
                }
                CHECK(cudaGetLastError());
            };
            auto sum = [&] {
                sum_slices<<<sumBlocks, 256, 0, stream>>>(partials, slices, count, out);
                CHECK(cudaGetLastError());
            };
            float alone = graphTime([&](int l) { product(weights[l]); });
            float withSum = graphTime([&](int l) { product(weights[l]); sum(); });
            product(weights[0]);
            sum();
            CHECK(cudaStreamSynchronize(stream));
            CHECK(cudaMemcpy(got.data(), out, got.size() * sizeof(act_t), cudaMemcpyDeviceToHost));
            double largest = 0.0, scale = 0.0;
            for (size_t i = 0; i < got.size(); i++) {
                double e = host_float(expected[i]);
                largest = std::max(largest, std::fabs(host_float(got[i]) - e));
                scale = std::max(scale, std::fabs(e));
            }
            double bytes = (double) weightElements * sizeof(act_t);
            std::printf("{\"what\":\"skinny_gemm\",\"device\":\"%s\",\"product\":\"%s\",\"rows\":%d,\"n\":%d,\"k\":%d,"
                        "\"columns_per_block\":%d,\"slices\":%d,\"blocks\":%d,\"us\":%.2f,\"us_with_sum\":%.2f,\"tb_s\":%.3f,\"cublas_us\":%.2f,"
                        "\"cublas_tb_s\":%.3f,\"max_difference\":%.3g,\"largest_output\":%.3g}\n",
                        prop.name, shape.name, rows, shape.n, shape.k, WARPS * nt * 8, slices, grid.x * slices, alone, withSum,
                        bytes / (withSum * 1e-6) / 1e12, cublasUs, bytes / (cublasUs * 1e-6) / 1e12, largest, scale);
            std::fflush(stdout);
        }
        for (act_t* w : weights) CHECK(cudaFree(w));
        CHECK(cudaFree(x));
        CHECK(cudaFree(out));
        CHECK(cudaFree(reference));
        CHECK(cudaFree(partials));
    }
    CHECK_BLAS(cublasDestroy(blas));
    return 0;
}
