// A measurement before a build (issue 4, batch 64): cuBLAS reads a Llama-3-8B layer's narrow
// weights at 64 rows at 1.6-1.8 TB/s (q/k/v, o) and 2.2-2.5 TB/s (down, gate/up) of the H100's
// ~3.0, and its heuristic offers no split of K for them (tenth and thirteenth sessions). This
// program asks whether splitting K by hand pays: the product as `split` strided-batched products
// over slices of K (cublasGemmStridedBatchedEx, so `split` times the thread blocks), each writing
// its partial sums, then `sum_parts` adding the partials in slice order into the act_t output.
// Partials in float32 or in bf16 (half the extra traffic, one more rounding per slice).
// Each product runs LAYERS times in a CUDA graph, each time over another copy of its weights, so
// that no weights are found in L2; the time reported is a graph's over LAYERS (median of repeats).
// Usage: cublas_splitk [rows, default 64] [layers, default 8] [repeats, default 20]. One JSON line
// per (product, split, partial type): us (product alone), us_with_sum, tb_s (weights over
// us_with_sum), and max_difference against the plain product's output.
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

// out[i] = the sum over parts p (in order) of parts[p * n + i], for n = rows x columns elements.
template <typename P>
__global__ void sum_parts(const P* parts, int split, long long n, act_t* out) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float total = 0.0f;
        for (int p = 0; p < split; p++) {
            if constexpr (sizeof(P) == 4) {
                total += parts[p * n + i];
            } else {
                total += act_to_float(parts[p * n + i]);
            }
        }
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
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cublasHandle_t blas;
    CHECK_BLAS(cublasCreate(&blas));
    CHECK_BLAS(cublasSetStream(blas, stream));
    void* workspace;
    size_t workspaceBytes = 64ull << 20;
    CHECK(cudaMalloc(&workspace, workspaceBytes));
    CHECK_BLAS(cublasSetWorkspace(blas, workspace, workspaceBytes));

    const Shape shapes[] = {{"o", 4096, 4096}, {"qkv", 6144, 4096}, {"down", 4096, 14336}, {"gate_up", 28672, 4096}};
    for (const Shape& shape : shapes) {
        long long weightElements = (long long) shape.n * shape.k;
        std::vector<act_t*> weights(layers);
        for (int l = 0; l < layers; l++) {
            CHECK(cudaMalloc(&weights[l], weightElements * sizeof(act_t)));
            fill_random<<<1024, 256>>>(weights[l], weightElements, 11 + l, 0.05f);
        }
        act_t *x, *out, *reference;
        CHECK(cudaMalloc(&x, (size_t) rows * shape.k * sizeof(act_t)));
        CHECK(cudaMalloc(&out, (size_t) rows * shape.n * sizeof(act_t)));
        CHECK(cudaMalloc(&reference, (size_t) rows * shape.n * sizeof(act_t)));
        fill_random<<<256, 256>>>(x, (long long) rows * shape.k, 7);
        void* parts;
        CHECK(cudaMalloc(&parts, 8ull * rows * shape.n * sizeof(float)));
        CHECK(cudaDeviceSynchronize());

        float one = 1.0f, zero = 0.0f;
        // Row-major out[rows, n] = x[rows, k] . W[n, k]^T, as CudaBackend asks cuBLAS.
        auto plain = [&](const act_t* w, act_t* target) {
            CHECK_BLAS(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, shape.n, rows, shape.k, &one, w, CUDA_R_16BF, shape.k,
                                    x, CUDA_R_16BF, shape.k, &zero, target, CUDA_R_16BF, shape.n, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
        };
        plain(weights[0], reference);
        std::vector<act_t> expected((size_t) rows * shape.n), got((size_t) rows * shape.n);
        CHECK(cudaStreamSynchronize(stream));
        CHECK(cudaMemcpy(expected.data(), reference, expected.size() * sizeof(act_t), cudaMemcpyDeviceToHost));

        for (int split : {1, 2, 4, 8}) {
            for (int wide : {1, 0}) {  // partials in float32, then in bf16
                if (split == 1 && !wide) continue;
                if (shape.k % (split * 8) != 0) continue;
                int slice = shape.k / split;
                long long outElements = (long long) rows * shape.n;
                auto splitProduct = [&](const act_t* w) {
                    // Slice p: W[:, p*slice ..] and x[:, p*slice ..] (same leading dimensions), into part p.
                    CHECK_BLAS(cublasGemmStridedBatchedEx(
                            blas, CUBLAS_OP_T, CUBLAS_OP_N, shape.n, rows, slice, &one, w, CUDA_R_16BF, shape.k, slice,
                            x, CUDA_R_16BF, shape.k, slice, &zero, parts, wide ? CUDA_R_32F : CUDA_R_16BF, shape.n,
                            outElements, split, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
                };
                auto sum = [&] {
                    int blocks = (int) std::min<long long>((outElements + 255) / 256, prop.multiProcessorCount * 8);
                    if (wide) {
                        sum_parts<float><<<blocks, 256, 0, stream>>>((const float*) parts, split, outElements, out);
                    } else {
                        sum_parts<act_t><<<blocks, 256, 0, stream>>>((const act_t*) parts, split, outElements, out);
                    }
                    CHECK(cudaGetLastError());
                };
                auto graphTime = [&](bool withSum) {
                    cudaGraph_t graph;
                    cudaGraphExec_t exec;
                    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
                    for (int l = 0; l < layers; l++) {
                        if (split == 1) {
                            plain(weights[l], out);
                        } else {
                            splitProduct(weights[l]);
                            if (withSum) sum();
                        }
                    }
                    CHECK(cudaStreamEndCapture(stream, &graph));
                    CHECK(cudaGraphInstantiate(&exec, graph, 0));
                    std::vector<float> times = event_times(stream, 3, repeats, [&] { CHECK(cudaGraphLaunch(exec, stream)); });
                    CHECK(cudaGraphExecDestroy(exec));
                    CHECK(cudaGraphDestroy(graph));
                    return times[times.size() / 2] * 1e3f / layers;
                };
                float alone = graphTime(false);
                float withSum = split == 1 ? alone : graphTime(true);
                // The output of weights[0]'s product, against the plain one's.
                if (split == 1) {
                    plain(weights[0], out);
                } else {
                    splitProduct(weights[0]);
                    sum();
                }
                CHECK(cudaStreamSynchronize(stream));
                CHECK(cudaMemcpy(got.data(), out, got.size() * sizeof(act_t), cudaMemcpyDeviceToHost));
                double largest = 0.0, scale = 0.0;
                for (size_t i = 0; i < got.size(); i++) {
                    double e = host_float(expected[i]);
                    largest = std::max(largest, std::fabs(host_float(got[i]) - e));
                    scale = std::max(scale, std::fabs(e));
                }
                double bytes = (double) weightElements * sizeof(act_t);
                std::printf("{\"what\":\"cublas_splitk\",\"device\":\"%s\",\"product\":\"%s\",\"rows\":%d,\"n\":%d,\"k\":%d,"
                            "\"split\":%d,\"partials\":\"%s\",\"us\":%.2f,\"us_with_sum\":%.2f,\"tb_s\":%.3f,"
                            "\"max_difference\":%.3g,\"largest_output\":%.3g}\n",
                            prop.name, shape.name, rows, shape.n, shape.k, split, split == 1 ? "none" : wide ? "f32" : "bf16",
                            alone, withSum, bytes / (withSum * 1e-6) / 1e12, largest, scale);
                std::fflush(stdout);
            }
        }
        for (act_t* w : weights) CHECK(cudaFree(w));
        CHECK(cudaFree(x));
        CHECK(cudaFree(out));
        CHECK(cudaFree(reference));
        CHECK(cudaFree(parts));
    }
    CHECK_BLAS(cublasDestroy(blas));
    return 0;
}
