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
// loads in flight. sum_parts (layer_products.cuh) adds the slices' partials into the bf16 output.
// Timed as cublas_splitk.cu times cuBLAS (a CUDA graph over `layers` copies of the weights, so L2
// holds none of them), beside cublasGemmEx in the same harness, and checked against it.
// Usage: skinny_gemm [rows, default 64] [layers, default 8] [repeats, default 20]. One JSON line per
// (product, slices): us (product alone), us_with_sum, tb_s (weights over us_with_sum), cublas_us,
// max_difference against cuBLAS.
#include <cstdio>
#include <cstdlib>

#include "layer_products.cuh"

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
    cublasHandle_t blas = blas_on(stream);
    size_t sharedBytes = (size_t) M_TILES * 16 * STRIDE * sizeof(act_t);
    CHECK(cudaFuncSetAttribute(skinny_gemm<M_TILES, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) sharedBytes));
    CHECK(cudaFuncSetAttribute(skinny_gemm<M_TILES, 4>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) sharedBytes));

    for (const Shape& shape : LAYER_SHAPES) {
        LayerProduct p(shape, rows, layers, blas, stream);
        float* partials;
        CHECK(cudaMalloc(&partials, 32ull * rows * shape.n * sizeof(float)));
        float cublasUs = p.graph_time(repeats, [&](int l) { p.cublas(p.weights[l], p.out); });
        long long count = p.outElements();
        int sumBlocks = (int) std::min<long long>((count + 255) / 256, prop.multiProcessorCount * 8);
        for (int nt : {4, 2})  // 8-column tiles a warp: 128 or 64 output columns a block
        for (int slices : {1, 2, 4, 7, 8, 14, 16}) {
            if (shape.k % (slices * 32) != 0 || shape.n % (WARPS * nt * 8) != 0) continue;
            dim3 grid(shape.n / (WARPS * nt * 8), slices);
            if (grid.x * slices > 8 * prop.multiProcessorCount || grid.x * slices < prop.multiProcessorCount / 2) continue;
            auto product = [&](const act_t* w) {
                if (nt == 4) {
                    skinny_gemm<M_TILES, 4><<<grid, 32 * WARPS, sharedBytes, stream>>>(p.x, w, partials, rows, shape.n, shape.k, slices);
                } else {
                    skinny_gemm<M_TILES, 2><<<grid, 32 * WARPS, sharedBytes, stream>>>(p.x, w, partials, rows, shape.n, shape.k, slices);
                }
                CHECK(cudaGetLastError());
            };
            auto sum = [&] {
                sum_parts<float><<<sumBlocks, 256, 0, stream>>>(partials, slices, count, p.out);
                CHECK(cudaGetLastError());
            };
            float alone = p.graph_time(repeats, [&](int l) { product(p.weights[l]); });
            float withSum = p.graph_time(repeats, [&](int l) { product(p.weights[l]); sum(); });
            product(p.weights[0]);
            sum();
            auto [largest, scale] = p.difference();
            std::printf("{\"what\":\"skinny_gemm\",\"device\":\"%s\",\"product\":\"%s\",\"rows\":%d,\"n\":%d,\"k\":%d,"
                        "\"columns_per_block\":%d,\"slices\":%d,\"blocks\":%d,\"us\":%.2f,\"us_with_sum\":%.2f,\"tb_s\":%.3f,\"cublas_us\":%.2f,"
                        "\"cublas_tb_s\":%.3f,\"max_difference\":%.3g,\"largest_output\":%.3g}\n",
                        prop.name, shape.name, rows, shape.n, shape.k, WARPS * nt * 8, slices, grid.x * slices, alone, withSum,
                        p.tb_s(withSum), cublasUs, p.tb_s(cublasUs), largest, scale);
            std::fflush(stdout);
        }
        CHECK(cudaFree(partials));
    }
    CHECK_BLAS(cublasDestroy(blas));
    return 0;
}
