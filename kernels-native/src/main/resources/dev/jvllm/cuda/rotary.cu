// Rotary position embedding (RoFormer, arXiv:2104.09864), in place, one block per token.
#include "common.cuh"

// Whether rotate_token takes the pairs of a token a 16-byte piece at a time: NeoX-style pairs
// (i, i + half) with half and the head size whole pieces and the token's row 16-byte aligned.
// The host sizes the block the same way (CudaBackend.rotaryThreads).
__device__ __forceinline__ bool rotates_in_pieces(const act_t* token, int headDim, int half, int neox) {
    constexpr int PIECE = 16 / sizeof(act_t);
    return neox && half % PIECE == 0 && headDim % PIECE == 0 && ((i64) token & 15) == 0;
}

// Rotates the first rotaryDim features of each head of token t of x by the angle of positions[t].
// cosSin is [maxPositions, rotaryDim]: rotaryDim/2 cosines then rotaryDim/2 sines per row.
// neox: pairs (i, i + rotaryDim/2) as GPT-NeoX and Llama; otherwise adjacent pairs (2i, 2i+1) as GPT-J.
__device__ __forceinline__ void rotate_token(act_t* x, int t, int heads, int headDim, int rotaryDim, int neox,
                                             const void* cosSin, int cosSinType, int maxPositions,
                                             const int* positions, int* error) {
    int position = positions[t];
    if (position < 0 || position >= maxPositions) {
        if (threadIdx.x == 0) report_error(error, JV_ERROR_POSITION, position, t, maxPositions);
        return;
    }
    int half = rotaryDim / 2;
    act_t* token = x + (i64) t * heads * headDim;
    i64 tableRow = (i64) position * rotaryDim;
    if (rotates_in_pieces(token, headDim, half, neox)) {
        // A thread takes PIECE consecutive pairs of one head: a 16-byte piece from each half.
        constexpr int PIECE = 16 / sizeof(act_t);
        int pieces = half / PIECE;
        for (int p = threadIdx.x; p < heads * pieces; p += blockDim.x) {
            act_t* a = token + (p / pieces) * headDim + (p % pieces) * PIECE;
            act_t* b = a + half;
            uint4 firsts = *(const uint4*) a, seconds = *(const uint4*) b;
            act_t* x1 = (act_t*) &firsts;
            act_t* x2 = (act_t*) &seconds;
            int i = (p % pieces) * PIECE;
#pragma unroll
            for (int e = 0; e < PIECE; e++) {
                float cosine = load_element(cosSin, cosSinType, tableRow + i + e);
                float sine = load_element(cosSin, cosSinType, tableRow + half + i + e);
                float v1 = act_to_float(x1[e]), v2 = act_to_float(x2[e]);
                x1[e] = float_to_act(v1 * cosine - v2 * sine);
                x2[e] = float_to_act(v2 * cosine + v1 * sine);
            }
            *(uint4*) a = firsts;
            *(uint4*) b = seconds;
        }
        return;
    }
    int pairStride = neox ? 1 : 2;
    int partnerOffset = neox ? half : 1;
    for (int p = threadIdx.x; p < heads * half; p += blockDim.x) {
        int head = p / half;
        int i = p % half;
        float cosine = load_element(cosSin, cosSinType, tableRow + i);
        float sine = load_element(cosSin, cosSinType, tableRow + half + i);
        act_t* a = token + head * headDim + i * pairStride;
        act_t* b = a + partnerOffset;
        float x1 = act_to_float(*a);
        float x2 = act_to_float(*b);
        *a = float_to_act(x1 * cosine - x2 * sine);
        *b = float_to_act(x2 * cosine + x1 * sine);
    }
}

// One block per token of x ([T, heads * headDim]), in place.
extern "C" __global__ void rotary(act_t* x, int heads, int headDim, int rotaryDim, int neox,
                                  const void* cosSin, int cosSinType, int maxPositions,
                                  const int* positions, int* error) {
    JV_DEPENDENT_PROLOGUE();
    rotate_token(x, blockIdx.x, heads, headDim, rotaryDim, neox, cosSin, cosSinType, maxPositions, positions, error);
}

// A layer's queries (blockIdx.y 0, qHeads heads) and keys (blockIdx.y 1, kHeads heads) in one launch.
extern "C" __global__ void rotary_pair(act_t* q, int qHeads, act_t* k, int kHeads, int headDim, int rotaryDim,
                                       int neox, const void* cosSin, int cosSinType, int maxPositions,
                                       const int* positions, int* error) {
    JV_DEPENDENT_PROLOGUE();
    bool keys = blockIdx.y == 1;
    rotate_token(keys ? k : q, blockIdx.x, keys ? kHeads : qHeads, headDim, rotaryDim, neox, cosSin, cosSinType,
                 maxPositions, positions, error);
}
