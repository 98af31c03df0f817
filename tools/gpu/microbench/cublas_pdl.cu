// A measurement before a build (issue 4, batch 64): cuBLAS launches its kernels itself, so none of
// them takes part in programmatic dependent launches, and every product at batch 64 starts only
// once the kernel ahead has finished and its own launch has gone through. A captured graph's edge
// can be made programmatic afterwards (cudaGraphAddDependencies with cudaGraphDependencyTypeProgrammatic),
// but that is safe only if the cuBLAS kernel itself waits (griddepcontrol.wait) before it reads
// its input. This program answers both questions for the products of a Llama-3-8B layer at 64 rows:
//   1. safety: a slow kernel writes the product's input (after spinning about 100 us), the edge into
//      the product is made programmatic, and the product's output is compared with the one from the
//      same graph with a plain edge. Equal: the cuBLAS kernel waits. Different: it read early.
//   2. gain: LAYERS layers of [small kernel -> q/k/v, small -> o, small -> gate/up, small -> down]
//      (the small kernels stand for the norms and attention, each waiting and then triggering as
//      jvllm's kernels do), timed as a graph with plain edges into the products and with
//      programmatic ones.
// Usage: cublas_pdl [layers, default 16] [repeats, default 20]. One JSON line each result.
// Answer on an H100 (CUDA 13, 2026-11-28, benchmarks/results session 14): the q/k/v and o products'
// kernels read their input early (outputs differed), so such edges are unsafe; the gain half then
// stopped at cudaGraphRemoveDependencies ("operation not supported") and was not pursued.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>
#include <cublas_v2.h>

#include "bench.cuh"
#include "blas_check.cuh"

constexpr int ROWS = 64, HIDDEN = 4096, INTER = 14336, QKV = 6144;

// out = in * 0.5 over n elements, after spinning `spin` clocks: stands for a norm or attention.
__global__ void small_kernel(const act_t* in, act_t* out, int n, long long spin) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
    if (spin > 0) {
        long long start = clock64();
        while (clock64() - start < spin) {
        }
    }
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        out[i] = float_to_act(act_to_float(in[i]) * 0.5f);
    }
}

// out [ROWS, n] = x [ROWS, k] . w [n, k]^T, as CudaBackend asks cuBLAS (row-major, weights [n, k]).
static void product(cublasHandle_t blas, const act_t* x, const act_t* w, act_t* out, int n, int k) {
    float one = 1.0f, zero = 0.0f;
    CHECK_BLAS(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, ROWS, k, &one, w, CUDA_R_16BF, k, x, CUDA_R_16BF, k,
                            &zero, out, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

static void launch_small(const act_t* in, act_t* out, int n, long long spin, cudaStream_t stream) {
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(132);
    config.blockDim = dim3(256);
    config.stream = stream;
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attribute;
    config.numAttrs = 1;
    CHECK(cudaLaunchKernelEx(&config, small_kernel, in, out, n, spin));
}

static bool is_kernel(cudaGraphNode_t node) {
    cudaGraphNodeType type;
    CHECK(cudaGraphNodeGetType(node, &type));
    return type == cudaGraphNodeTypeKernel;
}

// Whether a kernel node runs small_kernel. The runtime cannot describe cuBLAS's nodes (launched
// from its own modules through the driver: cudaErrorInvalidDeviceFunction), so a failure means no.
static bool is_small(cudaGraphNode_t node) {
    cudaKernelNodeParams params;
    if (cudaGraphKernelNodeGetParams(node, &params) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return params.func == (void*) small_kernel;
}

// Makes every plain edge between two kernel nodes whose source is one of `sources` programmatic;
// returns how many.
static int make_programmatic(cudaGraph_t graph, const std::vector<cudaGraphNode_t>& sources, bool verbose) {
    size_t count = 0;
    CHECK(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &count));
    std::vector<cudaGraphNode_t> from(count), to(count);
    std::vector<cudaGraphEdgeData> data(count);
    CHECK(cudaGraphGetEdges(graph, from.data(), to.data(), data.data(), &count));
    int changed = 0;
    for (size_t i = 0; i < count; i++) {
        if (data[i].type != cudaGraphDependencyTypeDefault) continue;
        if (std::find(sources.begin(), sources.end(), from[i]) == sources.end()) continue;
        if (!is_kernel(from[i]) || !is_kernel(to[i])) {
            if (verbose) std::fprintf(stderr, "edge to a non-kernel node left plain\n");
            continue;
        }
        if (verbose) std::fprintf(stderr, "programmatic edge into a %s kernel\n", is_small(to[i]) ? "small" : "cuBLAS");
        CHECK(cudaGraphRemoveDependencies(graph, &from[i], &to[i], &data[i], 1));
        cudaGraphEdgeData programmatic = {};
        programmatic.type = cudaGraphDependencyTypeProgrammatic;
        programmatic.from_port = cudaGraphKernelNodePortProgrammatic;
        CHECK(cudaGraphAddDependencies(graph, &from[i], &to[i], &programmatic, 1));
        changed++;
    }
    return changed;
}

// The graph's kernel nodes.
static std::vector<cudaGraphNode_t> kernel_nodes(cudaGraph_t graph) {
    size_t count = 0;
    CHECK(cudaGraphGetNodes(graph, nullptr, &count));
    std::vector<cudaGraphNode_t> nodes(count);
    CHECK(cudaGraphGetNodes(graph, nodes.data(), &count));
    std::vector<cudaGraphNode_t> fresh;
    for (cudaGraphNode_t node : nodes) {
        if (is_kernel(node)) fresh.push_back(node);
    }
    return fresh;
}

static act_t* device_buffer(long long n, unsigned int seed) {
    act_t* p;
    CHECK(cudaMalloc(&p, n * sizeof(act_t)));
    fill_random<<<1024, 256>>>(p, n, seed, 0.05f);
    CHECK(cudaGetLastError());
    return p;
}

// 1. Does the product wait for the slow writer of its input when the edge is programmatic?
static void safety(cudaStream_t stream, cublasHandle_t blas, int n, int k) {
    act_t* source = device_buffer((long long) ROWS * k, 7);
    act_t* x = device_buffer((long long) ROWS * k, 8);
    act_t* w = device_buffer((long long) n * k, 9);
    act_t* out = device_buffer((long long) ROWS * n, 10);
    std::vector<unsigned short> expected(ROWS * n), seen(ROWS * n);
    for (int programmatic = 0; programmatic < 2; programmatic++) {
        cudaGraph_t graph;
        CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        CHECK(cudaMemsetAsync(x, 0, (size_t) ROWS * k * sizeof(act_t), stream));
        CHECK(cudaMemsetAsync(out, 0, (size_t) ROWS * n * sizeof(act_t), stream));
        launch_small(source, x, ROWS * k, 200000, stream);
        product(blas, x, w, out, n, k);
        CHECK(cudaStreamEndCapture(stream, &graph));
        std::vector<cudaGraphNode_t> kernels = kernel_nodes(graph);
        // The writer is the only small_kernel node.
        std::vector<cudaGraphNode_t> writers;
        for (cudaGraphNode_t node : kernels) {
            if (is_small(node)) writers.push_back(node);
        }
        int changed = programmatic ? make_programmatic(graph, writers, true) : 0;
        cudaGraphExec_t exec;
        CHECK(cudaGraphInstantiate(&exec, graph, 0));
        CHECK(cudaGraphLaunch(exec, stream));
        CHECK(cudaStreamSynchronize(stream));
        CHECK(cudaMemcpy(programmatic ? seen.data() : expected.data(), out, (size_t) ROWS * n * sizeof(act_t),
                         cudaMemcpyDeviceToHost));
        if (programmatic) {
            int differ = 0;
            for (int i = 0; i < ROWS * n; i++) differ += seen[i] != expected[i];
            bool zeros = true;
            for (int i = 0; i < ROWS * n; i++) zeros &= expected[i] == 0;
            std::printf("{\"what\": \"cublas_pdl_safety\", \"n\": %d, \"k\": %d, \"kernels\": %zu, "
                        "\"programmatic_edges\": %d, \"outputs_differing\": %d, \"of\": %d, \"expected_all_zero\": %s}\n",
                        n, k, kernels.size(), changed, differ, ROWS * n, zeros ? "true" : "false");
        }
        CHECK(cudaGraphExecDestroy(exec));
        CHECK(cudaGraphDestroy(graph));
    }
    CHECK(cudaFree(source));
    CHECK(cudaFree(x));
    CHECK(cudaFree(w));
    CHECK(cudaFree(out));
}

struct Layer {
    act_t *qkv, *o, *gateUp, *down;
};

// 2. LAYERS layers of small kernels and products, plain edges against programmatic ones.
static void gain(cudaStream_t stream, cublasHandle_t blas, int layers, int repeats) {
    std::vector<Layer> weights(layers);
    for (int l = 0; l < layers; l++) {
        weights[l].qkv = device_buffer((long long) QKV * HIDDEN, 100 + 4 * l);
        weights[l].o = device_buffer((long long) HIDDEN * HIDDEN, 101 + 4 * l);
        weights[l].gateUp = device_buffer((long long) 2 * INTER * HIDDEN, 102 + 4 * l);
        weights[l].down = device_buffer((long long) HIDDEN * INTER, 103 + 4 * l);
    }
    act_t* stream0 = device_buffer((long long) ROWS * INTER * 2, 1);
    act_t* a = device_buffer((long long) ROWS * INTER * 2, 2);
    act_t* b = device_buffer((long long) ROWS * INTER * 2, 3);
    CHECK(cudaDeviceSynchronize());
    for (long long spin : {0LL, 4000LL}) {
        for (int programmatic = 0; programmatic < 2; programmatic++) {
            cudaGraph_t graph;
            CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
            for (int l = 0; l < layers; l++) {
                launch_small(stream0, a, ROWS * HIDDEN, spin, stream);
                product(blas, a, weights[l].qkv, b, QKV, HIDDEN);
                launch_small(b, a, ROWS * HIDDEN, spin, stream);
                product(blas, a, weights[l].o, b, HIDDEN, HIDDEN);
                launch_small(b, a, ROWS * HIDDEN, spin, stream);
                product(blas, a, weights[l].gateUp, b, 2 * INTER, HIDDEN);
                launch_small(b, a, ROWS * INTER, spin, stream);
                product(blas, a, weights[l].down, b, HIDDEN, INTER);
            }
            CHECK(cudaStreamEndCapture(stream, &graph));
            std::vector<cudaGraphNode_t> kernels = kernel_nodes(graph);
            std::vector<cudaGraphNode_t> smalls;
            for (cudaGraphNode_t node : kernels) {
                if (is_small(node)) smalls.push_back(node);
            }
            int changed = programmatic ? make_programmatic(graph, smalls, false) : 0;
            cudaGraphExec_t exec;
            CHECK(cudaGraphInstantiate(&exec, graph, 0));
            std::vector<float> times = event_times(stream, 3, repeats, [&] { CHECK(cudaGraphLaunch(exec, stream)); });
            std::printf("{\"what\": \"cublas_pdl_gain\", \"layers\": %d, \"small_spin_clocks\": %lld, \"programmatic\": %d, "
                        "\"edges_changed\": %d, \"kernels\": %zu, \"median_us_per_layer\": %.2f, \"min_us_per_layer\": %.2f}\n",
                        layers, spin, programmatic, changed, kernels.size(), 1e3 * times[times.size() / 2] / layers,
                        1e3 * times[0] / layers);
            CHECK(cudaGraphExecDestroy(exec));
            CHECK(cudaGraphDestroy(graph));
        }
    }
}

int main(int argc, char** argv) {
    int layers = argc > 1 ? std::atoi(argv[1]) : 16;
    int repeats = argc > 2 ? std::atoi(argv[2]) : 20;
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cublasHandle_t blas;
    CHECK_BLAS(cublasCreate(&blas));
    CHECK_BLAS(cublasSetStream(blas, stream));
    safety(stream, blas, QKV, HIDDEN);
    safety(stream, blas, HIDDEN, HIDDEN);
    safety(stream, blas, 2 * INTER, HIDDEN);
    safety(stream, blas, HIDDEN, INTER);
    gain(stream, blas, layers, repeats);
    CHECK_BLAS(cublasDestroy(blas));
    return 0;
}
