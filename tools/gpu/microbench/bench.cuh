// What the microbenchmarks share: the check of every CUDA runtime call (the file, line, call and
// error, then exit), and seeded random activations for their buffers.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#include <algorithm>
#include <vector>
#include <string>
#include "common.cuh"

#define CHECK(call)                                                                                    \
    do {                                                                                               \
        cudaError_t e = (call);                                                                        \
        if (e != cudaSuccess) {                                                                        \
            std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e)); \
            std::exit(1);                                                                              \
        }                                                                                              \
    } while (0)

// p[i] = a hash of i and seed spread over [-scale, scale), for n elements.
__global__ void fill_random(act_t* p, long long n, unsigned int seed, float scale = 1.0f) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        unsigned int h = (unsigned int) i * 2654435761u ^ seed;
        h ^= h >> 15; h *= 2246822519u; h ^= h >> 13;
        p[i] = float_to_act(((h & 0xFFFF) / 32768.0f - 1.0f) * scale);
    }
}

// Milliseconds of device time of `run` (work it queues on `stream`) over `repeats` runs, each
// between two events, after `warmups` untimed runs; sorted, so the median is at size() / 2 and
// the minimum at 0.
// `before` runs ahead of each timed run, outside the events (e.g. evicting L2).
template <typename Run, typename Before>
std::vector<float> event_times(cudaStream_t stream, int warmups, int repeats, Run&& run, Before&& before) {
    for (int i = 0; i < warmups; i++) run();
    cudaEvent_t start, stop;
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    std::vector<float> times;
    for (int i = 0; i < repeats; i++) {
        before();
        CHECK(cudaEventRecord(start, stream));
        run();
        CHECK(cudaEventRecord(stop, stream));
        CHECK(cudaEventSynchronize(stop));
        float ms;
        CHECK(cudaEventElapsedTime(&ms, start, stop));
        times.push_back(ms);
    }
    CHECK(cudaEventDestroy(start));
    CHECK(cudaEventDestroy(stop));
    std::sort(times.begin(), times.end());
    return times;
}

template <typename Run>
std::vector<float> event_times(cudaStream_t stream, int warmups, int repeats, Run&& run) {
    return event_times(stream, warmups, repeats, run, [] {});
}

// Writes 128 MB, so that L2 (50 MB on an H100) holds none of what ran before: each decode step's
// weights pass through L2 between one layer's attention and the next step's.
inline void evict_l2(cudaStream_t stream = 0) {
    static void* scratch = nullptr;
    constexpr size_t BYTES = 128u << 20;
    if (scratch == nullptr) CHECK(cudaMalloc(&scratch, BYTES));
    CHECK(cudaMemsetAsync(scratch, 0, BYTES, stream));
}

// Launches kernel<<<grid, block>>>(args...) on stream, as a programmatic dependent launch where
// `programmatic` (it may start while the kernel before it ends, as CudaBackend launches by default).
template <typename Kernel, typename... Args>
void launch_kernel(cudaStream_t stream, bool programmatic, Kernel kernel, int grid, int block, Args... args) {
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(grid);
    config.blockDim = dim3(block);
    config.stream = stream;
    cudaLaunchAttribute attribute;
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    config.attrs = &attribute;
    config.numAttrs = programmatic ? 1 : 0;
    CHECK(cudaLaunchKernelEx(&config, kernel, args...));
}

// The integers of a comma-separated list ("132,128,112").
inline std::vector<int> int_list(const std::string& text) {
    std::vector<int> values;
    for (size_t at = 0; at < text.size();) {
        size_t comma = text.find(',', at);
        if (comma == std::string::npos) comma = text.size();
        values.push_back(std::atoi(text.substr(at, comma - at).c_str()));
        at = comma + 1;
    }
    return values;
}
