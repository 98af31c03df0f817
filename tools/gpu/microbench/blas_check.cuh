// The check of every cuBLAS call of the microbenchmarks that use it (the file, line, call and
// status, then exit), as bench.cuh's CHECK does for the CUDA runtime.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cublas_v2.h>

#define CHECK_BLAS(call)                                                                             \
    do {                                                                                             \
        cublasStatus_t s = (call);                                                                   \
        if (s != CUBLAS_STATUS_SUCCESS) {                                                            \
            std::fprintf(stderr, "%s:%d %s: cuBLAS status %d\n", __FILE__, __LINE__, #call, (int) s); \
            std::exit(1);                                                                            \
        }                                                                                            \
    } while (0)
