// The 4-bit products alone (quantized.cu), as CudaBackend launches them, on a Llama-3-8B layer's
// shapes in groups of 128: q/k/v stacked (6144 x 4096), o (4096 x 4096), gate/up stacked and gated
// (2 x 14336 x 4096) and down (4096 x 14336), at several rows of x. Below 16 rows gemm_int4_N (one
// launch); from 16, gemm_int4_wide in launches of up to 64 rows with k cut into slices as
// CudaBackend.int4WideProduct cuts it (and gemm_int4_reduce after a sliced launch). The words and
// scales are random (their values do not change the time); L2 is evicted before each timed run, as a
// decode step's weights are long gone from L2 when the next step reads them. Printed: one JSON line a
// product and row count, the median and minimum µs of `repeats` runs, the weight's bytes over the
// median (GB/s) and the mma work over it (TFLOP/s of the product's 2 T N K).
// Usage: int4_bench [repeats 30] [rows list, default "1,2,8,16,32,64"]
// Build once for each -D set (INT4_VARIANTS in run.sh) to compare kernel forms in one call.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <cuda_runtime.h>

#include "quantized.cu"

#include "bench.cuh"

namespace {

constexpr int GROUP = 128;

struct Shape {
    const char* name;
    int rows;  // of the stacked weight (gated: gate rows + up rows)
    int k;
    bool gated;
};

// The wide kernels' shared memory (two row tiles a warp, a ring of 4, as quantized.cu's GEMM_INT4_WIDE lines make them).
int wide_shared_bytes(int xr) {
    return xr <= 16 ? gemm_int4_wide_shared_bytes<2, 16, 4>() : xr <= 32 ? gemm_int4_wide_shared_bytes<2, 32, 4>()
                                                                     : gemm_int4_wide_shared_bytes<2, 64, 4>();
}

using SmallKernel = void (*)(const uint4*, const float2*, const act_t*, int, int, int, act_t*, act_t*, act_t*, int, int, int,
                             const void*, int, int);
using WideKernel = void (*)(const uint4*, const float2*, const act_t*, int, int, int, float*, act_t*, act_t*, act_t*, int, int, int,
                            const void*, int, int);

struct Small {
    SmallKernel kernel;
    int warps, sharedBytes;
};

// CudaBackend.int4Kernel and Kernel's entries: (tokens tiles, row tiles, x rows, ring) and warps.
Small small_for(int tokens, bool gated) {
    if (tokens <= 2) {
        return gated ? Small{gemm_int4_gated_2, 4, gemm_int4_shared_bytes<1, 2, 2, 8>(4)} : Small{gemm_int4_2, 8, gemm_int4_shared_bytes<1, 1, 2, 8>(8)};
    }
    if (tokens <= 8) {
        return gated ? Small{gemm_int4_gated_8, 4, gemm_int4_shared_bytes<1, 2, 8, 6>(4)} : Small{gemm_int4_8, 4, gemm_int4_shared_bytes<1, 1, 8, 8>(4)};
    }
    return gated ? Small{gemm_int4_gated_16, 4, gemm_int4_shared_bytes<2, 2, 16, 4>(4)} : Small{gemm_int4_16, 4, gemm_int4_shared_bytes<2, 1, 16, 4>(4)};
}

WideKernel wide_for(int count, bool gated) {
    if (count <= 16) return gated ? gemm_int4_wide_gated_16 : gemm_int4_wide_16;
    if (count <= 32) return gated ? gemm_int4_wide_gated_32 : gemm_int4_wide_32;
    return gated ? gemm_int4_wide_gated_64 : gemm_int4_wide_64;
}

template <typename Kernel>
void allow_shared(Kernel kernel, int bytes) {
    CHECK(cudaFuncSetAttribute((const void*) kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

__global__ void fill_words(unsigned int* p, long long n, unsigned int seed) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        unsigned int h = (unsigned int) i * 2654435761u ^ seed;
        h ^= h >> 15; h *= 2246822519u; h ^= h >> 13;
        p[i] = h;
    }
}

__global__ void fill_params(float2* p, long long n) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        p[i] = make_float2(0.01f + 0.001f * (i % 7), (float) (i % 16));
    }
}

}  // namespace

int main(int argc, char** argv) {
    int repeats = argc > 1 ? std::atoi(argv[1]) : 30;
    std::vector<int> rowCounts;
    {
        std::string list = argc > 2 ? argv[2] : "1,2,8,16,32,64";
        size_t at = 0;
        while (at < list.size()) {
            size_t comma = list.find(',', at);
            rowCounts.push_back(std::atoi(list.substr(at, comma - at).c_str()));
            at = comma == std::string::npos ? list.size() : comma + 1;
        }
    }
    int device = 0, sms = 0;
    CHECK(cudaGetDevice(&device));
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    const Shape shapes[] = {{"qkv", 6144, 4096, false}, {"o", 4096, 4096, false}, {"gate_up", 2 * 14336, 4096, true},
                            {"down", 4096, 14336, false}};
    for (int t = 2; t <= 16; t *= 2) {
        Small s = small_for(t == 4 ? 8 : t, false), g = small_for(t == 4 ? 8 : t, true);
        allow_shared(s.kernel, s.sharedBytes);
        allow_shared(g.kernel, g.sharedBytes);
    }
    for (int xr = 16; xr <= 64; xr *= 2) {
        allow_shared(wide_for(xr, false), wide_shared_bytes(xr));
        allow_shared(wide_for(xr, true), wide_shared_bytes(xr));
    }
    cudaStream_t stream;
    CHECK(cudaStreamCreate(&stream));
    int maxRows = *std::max_element(rowCounts.begin(), rowCounts.end());
    for (const Shape& shape : shapes) {
        long long wordCount = (long long) shape.rows * shape.k / 8;
        long long paramCount = (long long) shape.rows * (shape.k / GROUP);
        unsigned int* words;
        float2* params;
        act_t *x, *out;
        float* partials;
        CHECK(cudaMalloc(&words, wordCount * 4));
        CHECK(cudaMalloc(&params, paramCount * sizeof(float2)));
        CHECK(cudaMalloc(&x, (size_t) maxRows * shape.k * sizeof(act_t)));
        CHECK(cudaMalloc(&out, (size_t) maxRows * shape.rows * sizeof(act_t)));
        CHECK(cudaMalloc(&partials, (size_t) 64 * maxRows * shape.rows * sizeof(float)));
        fill_words<<<1024, 256, 0, stream>>>(words, wordCount, 7);
        fill_params<<<1024, 256, 0, stream>>>(params, paramCount);
        fill_random<<<1024, 256, 0, stream>>>(x, (long long) maxRows * shape.k, 11);
        CHECK(cudaGetLastError());
        int n0 = shape.gated ? shape.rows / 2 : shape.rows, fn = shape.gated ? JV_SILU : -1;
        for (int tokens : rowCounts) {
            int launches = 0, slicesUsed = 1;
            auto run = [&] {
                if (tokens < 16) {
                    Small s = small_for(tokens, shape.gated);
                    int tiles = n0 / 16;
                    s.kernel<<<tiles, s.warps * 32, s.sharedBytes, stream>>>((const uint4*) words, params, x, tokens, shape.k, GROUP, out,
                                                                           nullptr, nullptr, n0, 0, 0, nullptr, 0, fn);
                    launches = 1;
                    return;
                }
                int tiles = shape.rows / 16;
                int rowBlocks = shape.gated ? (tiles / 2 + 7) / 8 : (tiles + 15) / 16;
                launches = 0;
                for (int start = 0; start < tokens; start += 64) {
                    int count = std::min(64, tokens - start);
                    float waves = count <= 16 ? 2.0f : 1.0f;
                    int slices = std::max(1, std::min((int) (waves * sms / rowBlocks), std::max(1, shape.k / 64 / 4)));
                    slicesUsed = slices;
                    int xr = count <= 16 ? 16 : count <= 32 ? 32 : 64;
                    wide_for(count, shape.gated)<<<dim3(rowBlocks, slices), 256, wide_shared_bytes(xr), stream>>>(
                        (const uint4*) words, params, x + (size_t) start * shape.k, count, shape.k, GROUP, slices > 1 ? partials : nullptr,
                        out + (size_t) start * n0, nullptr, nullptr, n0, 0, 0, nullptr, 0, fn);
                    launches++;
                    if (slices > 1) {
                        int outRows = n0;
                        long long n = (long long) count * outRows;
                        gemm_int4_reduce<<<(int) std::min<long long>((n + 255) / 256, 65535), 256, 0, stream>>>(
                            partials, slices, count, out + (size_t) start * n0, nullptr, nullptr, n0, 0, 0, nullptr, 0, fn);
                        launches++;
                    }
                }
            };
            run();
            CHECK(cudaStreamSynchronize(stream));
            CHECK(cudaGetLastError());
            std::vector<float> ms = event_times(stream, 3, repeats, run, [&] { evict_l2(stream); });
            double median = ms[ms.size() / 2], weightBytes = (double) wordCount * 4 + (double) paramCount * sizeof(float2);
            std::printf("{\"bench\": \"int4\", \"product\": \"%s\", \"n\": %d, \"k\": %d, \"rows_of_x\": %d, \"launches\": %d, "
                        "\"slices\": %d, \"median_us\": %.2f, \"min_us\": %.2f, \"weight_gb_s\": %.0f, \"tflop_s\": %.1f}\n",
                        shape.name, shape.rows, shape.k, tokens, launches, slicesUsed, median * 1e3, ms[0] * 1e3,
                        weightBytes / (median * 1e-3) / 1e9, 2.0 * tokens * shape.rows * shape.k / (median * 1e-3) / 1e12);
        }
        CHECK(cudaFree(words));
        CHECK(cudaFree(params));
        CHECK(cudaFree(x));
        CHECK(cudaFree(out));
        CHECK(cudaFree(partials));
    }
    return 0;
}
