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

#include "layer_products.cuh"

int main(int argc, char** argv) {
    int rows = argc > 1 ? std::atoi(argv[1]) : 64;
    int layers = argc > 2 ? std::atoi(argv[2]) : 8;
    int repeats = argc > 3 ? std::atoi(argv[3]) : 20;
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cublasHandle_t blas = blas_on(stream);

    for (const Shape& shape : LAYER_SHAPES) {
        LayerProduct p(shape, rows, layers, blas, stream);
        void* parts;
        CHECK(cudaMalloc(&parts, 8ull * rows * shape.n * sizeof(float)));
        float one = 1.0f, zero = 0.0f;
        for (int split : {1, 2, 4, 8}) {
            for (int wide : {1, 0}) {  // partials in float32, then in bf16
                if (split == 1 && !wide) continue;
                if (shape.k % (split * 8) != 0) continue;
                int slice = shape.k / split;
                long long outElements = p.outElements();
                auto splitProduct = [&](const act_t* w) {
                    // Slice s: W[:, s*slice ..] and x[:, s*slice ..] (same leading dimensions), into part s.
                    CHECK_BLAS(cublasGemmStridedBatchedEx(
                            blas, CUBLAS_OP_T, CUBLAS_OP_N, shape.n, rows, slice, &one, w, CUDA_R_16BF, shape.k, slice,
                            p.x, CUDA_R_16BF, shape.k, slice, &zero, parts, wide ? CUDA_R_32F : CUDA_R_16BF, shape.n,
                            outElements, split, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
                };
                auto sum = [&] {
                    int blocks = (int) std::min<long long>((outElements + 255) / 256, prop.multiProcessorCount * 8);
                    if (wide) {
                        sum_parts<float><<<blocks, 256, 0, stream>>>((const float*) parts, split, outElements, p.out);
                    } else {
                        sum_parts<act_t><<<blocks, 256, 0, stream>>>((const act_t*) parts, split, outElements, p.out);
                    }
                    CHECK(cudaGetLastError());
                };
                // One layer's product through copy l, its partials summed or not.
                auto layer = [&](int l, bool withSum) {
                    if (split == 1) {
                        p.cublas(p.weights[l], p.out);
                    } else {
                        splitProduct(p.weights[l]);
                        if (withSum) sum();
                    }
                };
                float alone = p.graph_time(repeats, [&](int l) { layer(l, false); });
                float withSum = split == 1 ? alone : p.graph_time(repeats, [&](int l) { layer(l, true); });
                layer(0, true);  // the output of the first copy's product, against the plain one's
                auto [largest, scale] = p.difference();
                std::printf("{\"what\":\"cublas_splitk\",\"device\":\"%s\",\"product\":\"%s\",\"rows\":%d,\"n\":%d,\"k\":%d,"
                            "\"split\":%d,\"partials\":\"%s\",\"us\":%.2f,\"us_with_sum\":%.2f,\"tb_s\":%.3f,"
                            "\"max_difference\":%.3g,\"largest_output\":%.3g}\n",
                            prop.name, shape.name, rows, shape.n, shape.k, split, split == 1 ? "none" : wide ? "f32" : "bf16",
                            alone, withSum, p.tb_s(withSum), largest, scale);
                std::fflush(stdout);
            }
        }
        CHECK(cudaFree(parts));
    }
    CHECK_BLAS(cublasDestroy(blas));
    return 0;
}
