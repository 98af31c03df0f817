// Shared by every kernel module. Self-contained (no CUDA headers) so that NVRTC compiles it
// without an include path; the element conversions use PTX instead of cuda_fp16.h/cuda_bf16.h.
#pragma once

// Element types, as CudaTensor.typeCode() numbers them.
#define JV_F32 0
#define JV_F16 1
#define JV_BF16 2

// Activation functions, as CudaBackend.activationCode() numbers them.
#define JV_SILU 0
#define JV_GELU 1
#define JV_GELU_TANH 2
#define JV_QUICK_GELU 3
#define JV_RELU 4

// Device-side errors, as DeviceErrors reads them back.
#define JV_ERROR_ROW_INDEX 1
#define JV_ERROR_POSITION 2

typedef long long i64;

// The paged KV cache's layout, slot-major: [slot][KV head][headDim], a token's heads together.
// Where the row of KV head kvHead at slot inBlock of cache block `block` starts, in elements.
__device__ __forceinline__ i64 kv_row(i64 block, int inBlock, int kvHead, int numKvHeads, int headDim, int blockSize) {
    return ((block * blockSize + inBlock) * numKvHeads + kvHead) * (i64) headDim;
}

// kv_row of a slot number (block · blockSize + slot of the block; slots are ints).
__device__ __forceinline__ i64 kv_row_of_slot(i64 slot, int kvHead, int numKvHeads, int headDim, int blockSize) {
    return (slot * numKvHeads + kvHead) * (i64) headDim;
}

// Programmatic dependent launch (sm_90 and later; CudaBackend's jvllm.cuda.programmaticLaunches,
// on by default): launched so, a kernel may start while the kernel before it in the stream is
// still running, and griddep_wait returns once that kernel has finished and its writes are
// visible. So every kernel begins with JV_DEPENDENT_PROLOGUE: it waits before it reads anything
// the pass writes, or writes anything, then lets its own successor be launched early. Only what
// the pass cannot change is read before it: the gemv kernels' first weight pieces (linear.cu), the
// gemm_int4 kernels' first ring slots of 4-bit words and scales (quantized.cu) and decode
// attention's first tile of keys cached in earlier steps (attention.cu). Without such a
// launch (or before sm_90) both are no-ops. KernelSourcesTest checks every kernel's wait.
__device__ __forceinline__ void griddep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void griddep_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

#define JV_DEPENDENT_PROLOGUE() \
    do {                        \
        griddep_wait();         \
        griddep_launch_dependents(); \
    } while (0)

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define JV_CLUSTERS 1
#else
#define JV_CLUSTERS 0
#endif

// ---- clusters (compute capability 9.0 on): rank, barrier, loads from another block's shared memory
// A launch without a cluster attribute runs every block as its own cluster of one. Before 9.0 the
// helpers are those of a lone block.

// The launch's cluster width (1 for a launch without clusters).
__device__ __forceinline__ int cluster_size() {
#if JV_CLUSTERS
    unsigned int size;
    asm("mov.u32 %0, %%cluster_nctarank;" : "=r"(size));  // constant: the compiler may reuse it
    return (int) size;
#else
    return 1;
#endif
}

__device__ __forceinline__ int cluster_rank() {
#if JV_CLUSTERS
    unsigned int rank;
    asm("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
    return (int) rank;
#else
    return 0;
#endif
}

// Every thread of every block of the cluster arrives before any goes on; shared-memory writes
// before it are seen by loads after it, in any block of the cluster.
__device__ __forceinline__ void cluster_sync() {
#if JV_CLUSTERS
    asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
#else
    __syncthreads();
#endif
}

#if JV_CLUSTERS
__device__ __forceinline__ unsigned int remote_address(const void* local, int rank) {
    unsigned int address = (unsigned int) __cvta_generic_to_shared(local), remote;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(address), "r"(rank));
    return remote;
}
#endif

// A 4- or 8-byte value at `local`'s place in the shared memory of block `rank` of the cluster.
template <typename T>
__device__ __forceinline__ T remote_load(const T* local, int rank) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "remote_load reads 4 or 8 bytes");
#if JV_CLUSTERS
    if constexpr (sizeof(T) == 8) {
        unsigned long long bits;
        asm volatile("ld.shared::cluster.b64 %0, [%1];" : "=l"(bits) : "r"(remote_address(local, rank)) : "memory");
        T v;
        memcpy(&v, &bits, 8);
        return v;
    } else {
        unsigned int bits;
        asm volatile("ld.shared::cluster.b32 %0, [%1];" : "=r"(bits) : "r"(remote_address(local, rank)) : "memory");
        T v;
        memcpy(&v, &bits, 4);
        return v;
    }
#else
    return *local;
#endif
}

// The activation (and KV cache) element type, fixed per compiled module: KernelCompiler builds
// every module once per type the backend computes in, with -DJV_ACT_TYPE=JV_F32/JV_BF16/JV_F16.
// Kernels keep float32 registers and sums whatever the storage type.
#ifndef JV_ACT_TYPE
#define JV_ACT_TYPE JV_F32
#endif
#if JV_ACT_TYPE == JV_F32
typedef float act_t;
#else
typedef unsigned short act_t;
#endif

__device__ __forceinline__ float jv_infinity() {
    return __int_as_float(0x7f800000);
}

__device__ __forceinline__ float bf16_to_float(unsigned short bits) {
    return __uint_as_float(((unsigned int) bits) << 16);
}

__device__ __forceinline__ float f16_to_float(unsigned short bits) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(bits));
    return f;
}

// Round to nearest even, as PyTorch converts; NaN stays a quiet NaN.
__device__ __forceinline__ unsigned short float_to_bf16(float f) {
    unsigned int bits = __float_as_uint(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        return (unsigned short) ((bits >> 16) | 0x40);
    }
    return (unsigned short) ((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ unsigned short float_to_f16(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

// Element i of a tensor of any floating type, widened to float.
__device__ __forceinline__ float load_element(const void* data, int type, i64 i) {
    switch (type) {
        case JV_F16: return f16_to_float(((const unsigned short*) data)[i]);
        case JV_BF16: return bf16_to_float(((const unsigned short*) data)[i]);
        default: return ((const float*) data)[i];
    }
}

__device__ __forceinline__ void store_element(void* data, int type, i64 i, float value) {
    switch (type) {
        case JV_F16: ((unsigned short*) data)[i] = float_to_f16(value); break;
        case JV_BF16: ((unsigned short*) data)[i] = float_to_bf16(value); break;
        default: ((float*) data)[i] = value;
    }
}

__device__ __forceinline__ float act_to_float(act_t v) {
#if JV_ACT_TYPE == JV_BF16
    return bf16_to_float(v);
#elif JV_ACT_TYPE == JV_F16
    return f16_to_float(v);
#else
    return v;
#endif
}

__device__ __forceinline__ act_t float_to_act(float v) {
#if JV_ACT_TYPE == JV_BF16
    return float_to_bf16(v);
#elif JV_ACT_TYPE == JV_F16
    return float_to_f16(v);
#else
    return v;
#endif
}

// Adds v to a stored activation atomically (a 16-bit element through a compare-and-swap of its
// aligned 32-bit word).
__device__ __forceinline__ void atomic_add_act(act_t* target, float v) {
#if JV_ACT_TYPE == JV_F32
    atomicAdd(target, v);
#else
    unsigned int* word = (unsigned int*) ((unsigned long long) target & ~3ull);
    int shift = ((unsigned long long) target & 2ull) ? 16 : 0;
    unsigned int old = *word, assumed;
    do {
        assumed = old;
        act_t current = (act_t) ((assumed >> shift) & 0xffffu);
        unsigned int updated = float_to_act(act_to_float(current) + v);
        unsigned int replaced = (assumed & ~(0xffffu << shift)) | (updated << shift);
        old = atomicCAS(word, assumed, replaced);
    } while (old != assumed);
#endif
}

// The activation functions by code (JV_SILU ...).
// e^x and 1/x to about 2^-22 relative (PTX's approximate forms; beyond 16-bit precision).
__device__ __forceinline__ float fast_exp(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x * 1.4426950408889634f));
    return y;
}

__device__ __forceinline__ float fast_reciprocal(float x) {
    float y;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Whether n elements from each pointer are whole 16-byte pieces, each pointer 16-byte aligned.
__device__ __forceinline__ bool whole_pieces(i64 n, const void* a, const void* b = nullptr, const void* c = nullptr) {
    return n % (16 / sizeof(act_t)) == 0 && (((i64) a | (i64) b | (i64) c) & 15) == 0;
}

__device__ __forceinline__ float apply_activation(int fn, float x) {
    switch (fn) {
        // For 16-bit activations a fast exponential and reciprocal (a division of IEEE accuracy
        // is a multi-instruction sequence with a slow path when x is far below zero and the
        // denominator overflows); 1/inf is 0, so silu(-inf-ish) stays 0.
        // The tanh approximation of GELU is x·sigmoid(2u) for u = √(2/π)·(x + 0.044715·x³), as
        // 0.5·(1 + tanh u) = 1 / (1 + e^(-2u)); with the fast exponential it costs what SiLU does.
#if JV_ACT_TYPE == JV_F32
        case JV_SILU: return x / (1.0f + expf(-x));
        case JV_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
        case JV_QUICK_GELU: return x / (1.0f + expf(-1.702f * x));
#else
        case JV_SILU: return x * fast_reciprocal(1.0f + fast_exp(-x));
        case JV_GELU_TANH: return x * fast_reciprocal(1.0f + fast_exp(-1.5957691216057308f * (x + 0.044715f * x * x * x)));
        case JV_QUICK_GELU: return x * fast_reciprocal(1.0f + fast_exp(-1.702f * x));
#endif
        case JV_GELU: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
        default: return fmaxf(x, 0.0f);
    }
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    }
    return v;
}

// Max (or sum) over a group of four lanes (4g .. 4g + 3): an mma fragment's row group (below).
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Keeps the better of two (value, column) candidates: the larger value, the first column on ties
// (a NaN never wins: comparisons with it are false).
__device__ __forceinline__ void better_of(float& best, int& index, float otherBest, int otherIndex) {
    if (otherBest > best || (otherBest == best && otherIndex < index)) {
        best = otherBest;
        index = otherIndex;
    }
}

// Sum over the block, returned to every thread; blockDim.x must be a multiple of 32.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();  // partial may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    int warps = blockDim.x >> 5;
    float total = lane < warps ? partial[lane] : 0.0f;
    return warp_sum(total);
}

// Records the first out-of-range index a launch met; the host reads it at its next sync point.
__device__ __forceinline__ void report_error(int* error, int kind, int value, int at, int limit) {
    if (atomicCAS(error, 0, kind) == 0) {
        error[1] = value;
        error[2] = at;
        error[3] = limit;
    }
}

__device__ __forceinline__ unsigned int shared_address(const void* p) {
    unsigned int address;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(p));
    return address;
}

// 16 bytes from global to a shared-memory address without passing through registers (cp.async,
// sm_80+), of which `valid` are read and the rest filled with zeros.
__device__ __forceinline__ void copy_async_16(unsigned int target, const void* source, int valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(target), "l"(source), "r"(valid) : "memory");
}

// copy_async_16 to a shared-memory pointer; valid false fills the 16 bytes with zeros and reads nothing.
__device__ __forceinline__ void copy_async(void* target, const void* source, bool valid) {
    copy_async_16(shared_address(target), source, valid ? 16 : 0);
}

__device__ __forceinline__ void copy_async_commit() {
    asm volatile("cp.async.commit_group;" ::: "memory");
}

// Waits until at most `pending` of this thread's committed copy groups are still in flight.
template <int pending>
__device__ __forceinline__ void copy_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(pending) : "memory");
}

#define GRID_STRIDE_LOOP(i, n) \
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64) blockDim.x * gridDim.x)

#if JV_ACT_TYPE != JV_F32
// D += A·B on tensor cores for 16-bit activations: mma.sync m16n8k16, A row-major, B column-major,
// float32 sums (PTX ISA fragment layouts: lane = 4·group + quad; an A fragment holds rows
// (group, group+8) × columns (2·quad, 2·quad+1, 2·quad+8, 2·quad+9), a B fragment rows (2·quad,
// 2·quad+1, 2·quad+8, 2·quad+9) of column group, a C fragment rows (group, group+8) × columns
// (2·quad, 2·quad+1)).
__device__ __forceinline__ void mma_16816(float* c, const unsigned int* a, unsigned int b0, unsigned int b1) {
#if JV_ACT_TYPE == JV_BF16
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

__device__ __forceinline__ unsigned int load_pair(const act_t* p) {
    return *(const unsigned int*) p;
}

// Two 16-bit values as one 32-bit fragment register, the lower index in the lower half.
__device__ __forceinline__ unsigned int pack_pair(act_t low, act_t high) {
    return (unsigned int) low | ((unsigned int) high << 16);
}
#endif
