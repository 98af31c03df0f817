// What the microbenchmarks of a Llama-3-8B layer's products need (cublas_splitk.cu):
// the four products' shapes, their operands with `layers` copies of the weights (so that L2 holds
// none of them in a graph over the copies), cuBLAS's product as CudaBackend asks for it (the
// reference), the timing of a graph over the copies, the sum of partial products, and the
// comparison of an output with the reference. Built with JV_ACT_TYPE=2 (bf16).
#pragma once
#include <cstdio>
#include <cstring>
#include <vector>
#include <algorithm>
#include <cmath>
#include <cuda_runtime.h>
#include <cublas_v2.h>

#include "bench.cuh"
#include "blas_check.cuh"

struct Shape {
    const char* name;
    int n, k;
};

// o, the stacked q/k/v, down and the stacked gate/up: out[rows, n] = x[rows, k] · W[n, k]ᵀ.
constexpr Shape LAYER_SHAPES[] = {{"o", 4096, 4096}, {"qkv", 6144, 4096}, {"down", 4096, 14336}, {"gate_up", 28672, 4096}};

inline double host_float(act_t bits) {  // act_t is bf16's bits here
    unsigned int word = (unsigned int) bits << 16;
    float f;
    std::memcpy(&f, &word, 4);
    return f;
}

// out[i] = the sum over parts p (in order) of parts[p · n + i], rounded to act_t, for n elements.
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

// A cuBLAS handle on `stream` with a workspace of its own (64 MB).
inline cublasHandle_t blas_on(cudaStream_t stream) {
    cublasHandle_t blas;
    CHECK_BLAS(cublasCreate(&blas));
    CHECK_BLAS(cublasSetStream(blas, stream));
    void* workspace;
    CHECK(cudaMalloc(&workspace, 64ull << 20));
    CHECK_BLAS(cublasSetWorkspace(blas, workspace, 64ull << 20));
    return blas;
}

// One product shape's operands: `layers` copies of random weights, x, an output, and cuBLAS's
// output for the first copy (expected, on the host).
struct LayerProduct {
    const Shape& shape;
    int rows;
    cublasHandle_t blas;
    cudaStream_t stream;
    std::vector<act_t*> weights;
    act_t *x, *out, *reference;
    std::vector<act_t> expected;

    LayerProduct(const Shape& shape, int rows, int layers, cublasHandle_t blas, cudaStream_t stream)
        : shape(shape), rows(rows), blas(blas), stream(stream), weights(layers), expected((size_t) rows * shape.n) {
        for (int l = 0; l < layers; l++) {
            CHECK(cudaMalloc(&weights[l], weightElements() * sizeof(act_t)));
            fill_random<<<1024, 256>>>(weights[l], weightElements(), 11 + l, 0.05f);
        }
        CHECK(cudaMalloc(&x, (size_t) rows * shape.k * sizeof(act_t)));
        CHECK(cudaMalloc(&out, outElements() * sizeof(act_t)));
        CHECK(cudaMalloc(&reference, outElements() * sizeof(act_t)));
        fill_random<<<256, 256>>>(x, (long long) rows * shape.k, 7);
        CHECK(cudaDeviceSynchronize());
        cublas(weights[0], reference);
        CHECK(cudaStreamSynchronize(stream));
        CHECK(cudaMemcpy(expected.data(), reference, expected.size() * sizeof(act_t), cudaMemcpyDeviceToHost));
    }

    ~LayerProduct() {
        for (act_t* w : weights) CHECK(cudaFree(w));
        CHECK(cudaFree(x));
        CHECK(cudaFree(out));
        CHECK(cudaFree(reference));
    }

    long long weightElements() const { return (long long) shape.n * shape.k; }
    long long outElements() const { return (long long) rows * shape.n; }
    // Terabytes a second of one copy of the weights read in `us` microseconds.
    double tb_s(float us) const { return weightElements() * sizeof(act_t) / (us * 1e-6) / 1e12; }

    // Row-major target[rows, n] = x · Wᵀ through cublasGemmEx, as CudaBackend asks cuBLAS.
    void cublas(const act_t* w, act_t* target) const {
        float one = 1.0f, zero = 0.0f;
        CHECK_BLAS(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, shape.n, rows, shape.k, &one, w, CUDA_R_16BF, shape.k,
                                x, CUDA_R_16BF, shape.k, &zero, target, CUDA_R_16BF, shape.n, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
    }

    // Microseconds a layer of a CUDA graph over every copy, oneLayer(l) queuing layer l's work
    // (median of `repeats` launches after three).
    template <typename OneLayer>
    float graph_time(int repeats, OneLayer&& oneLayer) const {
        cudaGraph_t graph;
        cudaGraphExec_t exec;
        CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        for (int l = 0; l < (int) weights.size(); l++) oneLayer(l);
        CHECK(cudaStreamEndCapture(stream, &graph));
        CHECK(cudaGraphInstantiate(&exec, graph, 0));
        std::vector<float> times = event_times(stream, 3, repeats, [&] { CHECK(cudaGraphLaunch(exec, stream)); });
        CHECK(cudaGraphExecDestroy(exec));
        CHECK(cudaGraphDestroy(graph));
        return times[times.size() / 2] * 1e3f / weights.size();
    }

    // The largest difference of `out` (after the stream's work) from cuBLAS's output, and the largest output.
    std::pair<double, double> difference() const {
        std::vector<act_t> got(expected.size());
        CHECK(cudaStreamSynchronize(stream));
        CHECK(cudaMemcpy(got.data(), out, got.size() * sizeof(act_t), cudaMemcpyDeviceToHost));
        double largest = 0.0, scale = 0.0;
        for (size_t i = 0; i < got.size(); i++) {
            double e = host_float(expected[i]);
            largest = std::max(largest, std::fabs(host_float(got[i]) - e));
            scale = std::max(scale, std::fabs(e));
        }
        return {largest, scale};
    }
};
