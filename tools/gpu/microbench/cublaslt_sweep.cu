// A measurement before a build (issue 4, batches 64 and 256): does any cuBLASLt configuration run a
// Llama-3-8B layer's decode products faster than what jvllm runs now? TunedProducts times up to 16
// algorithms of cuBLASLt's heuristic (decode graphs of up to 128 rows) and cublasGemmEx's default
// serves the rest. Here every algorithm id cuBLASLt has for bf16 products with float32 sums is
// tried with each of its tiles, stages and splits of K (1, 2, 4; each reduction
// scheme it offers), where cublasLtMatmulAlgoCheck accepts the combination, and timed.
// Each product runs over LAYERS copies of its weights in turn (no weights found in L2), timed with
// events around the whole round (median of 3 rounds after one), reported a copy.
// Usage: cublaslt_sweep [rows list, default "64,256"] [layers, default 8] [max configurations a shape, default 6000]
// [max a algorithm id, default 800]; the heuristic's ids are swept first.
// One JSON line per (shape, rows): cublasGemmEx's default, the heuristic's first and best of 16,
// the sweep's best with its configuration and its output's largest difference from the default's;
// then the sweep's next four.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include <algorithm>
#include <cublasLt.h>

#include "layer_products.cuh"


// The configuration's cluster shape: uint16_t, a cublasLtClusterShape_t (no capability lists them).
constexpr int CLUSTER_CONFIG = CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID;

struct Config {
    int algo;
    uint32_t tile, stages, reduction;
    uint16_t cluster;
    int32_t splitK;
    cublasLtMatmulAlgo_t handle;
    float us;
};

template <typename T>
static std::vector<T> cap_list(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoCapAttributes_t attribute, T none) {
    size_t bytes = 0;
    if (cublasLtMatmulAlgoCapGetAttribute(&algo, attribute, nullptr, 0, &bytes) != CUBLAS_STATUS_SUCCESS || bytes == 0) {
        return {none};
    }
    std::vector<T> values(bytes / sizeof(T));
    CHECK_BLAS(cublasLtMatmulAlgoCapGetAttribute(&algo, attribute, values.data(), bytes, &bytes));
    if (values.empty()) values.push_back(none);
    return values;
}

template <typename T>
static T cap_value(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoCapAttributes_t attribute) {
    T value{};
    size_t bytes = 0;
    if (cublasLtMatmulAlgoCapGetAttribute(&algo, attribute, &value, sizeof(value), &bytes) != CUBLAS_STATUS_SUCCESS) return T{};
    return value;
}

int main(int argc, char** argv) {
    std::string rowList = argc > 1 ? argv[1] : "64,256";
    int layers = argc > 2 ? std::atoi(argv[2]) : 8;
    int maxConfigs = argc > 3 ? std::atoi(argv[3]) : 6000;
    int maxPerId = argc > 4 ? std::atoi(argv[4]) : 800;
    std::vector<int> rowCounts = int_list(rowList);
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cublasHandle_t blas = blas_on(stream);
    cublasLtHandle_t lt;
    CHECK_BLAS(cublasLtCreate(&lt));
    const size_t workspaceBytes = 64ull << 20;
    void* workspace;
    CHECK(cudaMalloc(&workspace, workspaceBytes));
    std::printf("{\"what\":\"device\",\"name\":\"%s\",\"cublaslt_version\":%zu}\n", prop.name, cublasLtGetVersion());

    int ids[512];
    int idCount = 0;
    CHECK_BLAS(cublasLtMatmulAlgoGetIds(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF,
                                      512, ids, &idCount));

    for (int rows : rowCounts) {
        for (const Shape& shape : LAYER_SHAPES) {
            LayerProduct p(shape, rows, layers, blas, stream);
            cublasLtMatmulDesc_t op;
            CHECK_BLAS(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
            cublasOperation_t transA = CUBLAS_OP_T, transB = CUBLAS_OP_N;
            CHECK_BLAS(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &transA, sizeof(transA)));
            CHECK_BLAS(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &transB, sizeof(transB)));
            cublasLtMatrixLayout_t a, b, d;
            CHECK_BLAS(cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, shape.k, shape.n, shape.k));
            CHECK_BLAS(cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, shape.k, rows, shape.k));
            CHECK_BLAS(cublasLtMatrixLayoutCreate(&d, CUDA_R_16BF, shape.n, rows, shape.n));
            float one = 1.0f, zero = 0.0f;

            auto run_lt = [&](const cublasLtMatmulAlgo_t& algo, const act_t* w, act_t* out) {
                return cublasLtMatmul(lt, op, &one, w, a, p.x, b, &zero, out, d, out, d, &algo, workspace, workspaceBytes, stream);
            };
            // Microseconds a copy over a round of every copy (median of 3 after 1); negative if a launch failed.
            auto round_time = [&](auto&& product) -> float {
                cudaEvent_t start, stop;
                CHECK(cudaEventCreate(&start));
                CHECK(cudaEventCreate(&stop));
                std::vector<float> times;
                for (int r = 0; r < 4; r++) {
                    CHECK(cudaEventRecord(start, stream));
                    for (int l = 0; l < layers; l++) {
                        if (!product(l)) {
                            CHECK(cudaStreamSynchronize(stream));
                            return -1.0f;
                        }
                    }
                    CHECK(cudaEventRecord(stop, stream));
                    CHECK(cudaEventSynchronize(stop));
                    float ms;
                    CHECK(cudaEventElapsedTime(&ms, start, stop));
                    if (r > 0) times.push_back(ms * 1e3f / layers);
                }
                CHECK(cudaEventDestroy(start));
                CHECK(cudaEventDestroy(stop));
                std::sort(times.begin(), times.end());
                return times[1];
            };

            float gemmEx = round_time([&](int l) { p.cublas(p.weights[l], p.out); return true; });

            cublasLtMatmulPreference_t preference;
            CHECK_BLAS(cublasLtMatmulPreferenceCreate(&preference));
            CHECK_BLAS(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
                                                          sizeof(workspaceBytes)));
            cublasLtMatmulHeuristicResult_t heuristic[16];
            int heuristicCount = 0;
            CHECK_BLAS(cublasLtMatmulAlgoGetHeuristic(lt, op, a, b, d, d, preference, 16, heuristic, &heuristicCount));
            float heuristicFirst = -1, heuristicBest = -1;
            for (int h = 0; h < heuristicCount; h++) {
                float us = round_time([&](int l) { return run_lt(heuristic[h].algo, p.weights[l], p.out) == CUBLAS_STATUS_SUCCESS; });
                if (h == 0) heuristicFirst = us;
                if (us > 0 && (heuristicBest < 0 || us < heuristicBest)) heuristicBest = us;
            }

            // The heuristic's algorithm ids first (its own configurations described), then the others.
            std::vector<int> order;
            std::string heuristicConfigs;
            for (int h = 0; h < heuristicCount; h++) {
                int32_t id = -1, splitK = -1;
                uint32_t tile = 0, stage = 0, reduction = 0;
                uint16_t cluster = 0;
                size_t written;
                cublasLtMatmulAlgoConfigGetAttribute(&heuristic[h].algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof(id), &written);
                cublasLtMatmulAlgoConfigGetAttribute(&heuristic[h].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile), &written);
                cublasLtMatmulAlgoConfigGetAttribute(&heuristic[h].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stage, sizeof(stage), &written);
                cublasLtMatmulAlgoConfigGetAttribute(&heuristic[h].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitK, sizeof(splitK), &written);
                cublasLtMatmulAlgoConfigGetAttribute(&heuristic[h].algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &reduction,
                                                     sizeof(reduction), &written);
                cublasLtMatmulAlgoConfigGetAttribute(&heuristic[h].algo, (cublasLtMatmulAlgoConfigAttributes_t) CLUSTER_CONFIG,
                                                     &cluster, sizeof(cluster), &written);
                char text[160];
                std::snprintf(text, sizeof text, "%s{\"algo\":%d,\"tile\":%u,\"stages\":%u,\"cluster\":%u,\"split_k\":%d,\"reduction\":%u}",
                              h ? "," : "", id, tile, stage, (unsigned) cluster, splitK, reduction);
                heuristicConfigs += text;
                if (std::find(order.begin(), order.end(), id) == order.end()) order.push_back(id);
            }
            for (int i = 0; i < idCount; i++) {
                if (std::find(order.begin(), order.end(), ids[i]) == order.end()) order.push_back(ids[i]);
            }
            std::vector<Config> configs;
            int tried = 0;
            for (int id : order) {
                if (tried >= maxConfigs) break;
                cublasLtMatmulAlgo_t algo;
                if (cublasLtMatmulAlgoInit(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF,
                                           id, &algo) != CUBLAS_STATUS_SUCCESS) {
                    continue;
                }
                int idTried = 0;
                std::vector<uint32_t> tiles = cap_list<uint32_t>(algo, CUBLASLT_ALGO_CAP_TILE_IDS, CUBLASLT_MATMUL_TILE_UNDEFINED);
                std::vector<uint32_t> stages = cap_list<uint32_t>(algo, CUBLASLT_ALGO_CAP_STAGES_IDS, CUBLASLT_MATMUL_STAGES_UNDEFINED);
                // No cluster shapes are listed by this cuBLASLt's capabilities; the configuration attribute is
                // tried with the shapes of a 1-, 2- and 4-wide cluster along N and M (0: its own choice).
                std::vector<uint16_t> clusters = {0, 2, 3, 4, 5};
                int splitSupport = cap_value<int32_t>(algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT);
                uint32_t reductionMask = cap_value<uint32_t>(algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK);
                std::vector<std::pair<int32_t, uint32_t>> splits = {{1, CUBLASLT_REDUCTION_SCHEME_NONE}};
                if (splitSupport) {
                    for (int32_t s : {2, 4}) {
                        for (uint32_t scheme : {CUBLASLT_REDUCTION_SCHEME_INPLACE, CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE,
                                                CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE}) {
                            if (reductionMask & scheme) splits.push_back({s, scheme});
                        }
                    }
                }
                for (uint32_t tile : tiles) {
                    for (uint32_t stage : stages) {
                        for (uint16_t cluster : clusters) {
                            for (auto [splitK, scheme] : splits) {
                                if (++tried > maxConfigs || ++idTried > maxPerId) break;
                                cublasLtMatmulAlgo_t c = algo;
                                cublasLtMatmulAlgoConfigSetAttribute(&c, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile));
                                cublasLtMatmulAlgoConfigSetAttribute(&c, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stage, sizeof(stage));
                                if (cluster != 0
                                    && cublasLtMatmulAlgoConfigSetAttribute(&c, (cublasLtMatmulAlgoConfigAttributes_t) CLUSTER_CONFIG,
                                                                            &cluster, sizeof(cluster)) != CUBLAS_STATUS_SUCCESS) {
                                    continue;
                                }
                                cublasLtMatmulAlgoConfigSetAttribute(&c, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitK, sizeof(splitK));
                                cublasLtMatmulAlgoConfigSetAttribute(&c, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme));
                                cublasLtMatmulHeuristicResult_t check;
                                if (cublasLtMatmulAlgoCheck(lt, op, a, b, d, d, &c, &check) != CUBLAS_STATUS_SUCCESS) continue;
                                if (check.workspaceSize > workspaceBytes) continue;
                                float us = round_time([&](int l) { return run_lt(c, p.weights[l], p.out) == CUBLAS_STATUS_SUCCESS; });
                                if (us > 0) configs.push_back({id, tile, stage, scheme, cluster, splitK, c, us});
                            }
                        }
                    }
                }
            }
            cudaGetLastError();
            std::sort(configs.begin(), configs.end(), [](const Config& x, const Config& y) { return x.us < y.us; });
            double difference = -1;
            if (!configs.empty()) {
                CHECK_BLAS(run_lt(configs[0].handle, p.weights[0], p.out));
                CHECK(cudaStreamSynchronize(stream));
                std::vector<act_t> got(p.expected.size());
                CHECK(cudaMemcpy(got.data(), p.out, got.size() * sizeof(act_t), cudaMemcpyDeviceToHost));
                difference = 0;
                for (size_t i = 0; i < got.size(); i++) {
                    difference = std::max(difference, std::fabs(host_float(got[i]) - host_float(p.expected[i])));
                }
            }
            auto describe = [](const Config& c) {
                char text[160];
                std::snprintf(text, sizeof text, "{\"algo\":%d,\"tile\":%u,\"stages\":%u,\"cluster\":%u,\"split_k\":%d,\"reduction\":%u,\"us\":%.2f}",
                              c.algo, c.tile, c.stages, (unsigned) c.cluster, c.splitK, c.reduction, c.us);
                return std::string(text);
            };
            std::string next;
            for (size_t i = 1; i < configs.size() && i < 5; i++) next += (i > 1 ? "," : "") + describe(configs[i]);
            std::printf("{\"what\":\"cublaslt_sweep\",\"shape\":\"%s\",\"rows\":%d,\"n\":%d,\"k\":%d,\"gemm_ex_us\":%.2f,"
                        "\"heuristic_first_us\":%.2f,\"heuristic_best_of_%d_us\":%.2f,\"configurations_tried\":%d,"
                        "\"configurations_run\":%zu,\"heuristic\":[%s],\"best\":%s,\"best_max_difference\":%.4g,\"next\":[%s],\"weight_tb_s_best\":%.3f}\n",
                        shape.name, rows, shape.n, shape.k, gemmEx, heuristicFirst, heuristicCount, heuristicBest, tried,
                        configs.size(), heuristicConfigs.c_str(), configs.empty() ? "null" : describe(configs[0]).c_str(), difference, next.c_str(),
                        configs.empty() ? 0.0 : p.tb_s(configs[0].us));
            std::fflush(stdout);
            cublasLtMatmulPreferenceDestroy(preference);
            cublasLtMatrixLayoutDestroy(a);
            cublasLtMatrixLayoutDestroy(b);
            cublasLtMatrixLayoutDestroy(d);
            cublasLtMatmulDescDestroy(op);
        }
    }
    return 0;
}
