// Elementwise kernels over activations (act_t, float32 arithmetic); every one tolerates out
// aliasing an input.
#include "common.cuh"

// Where the elements are whole_pieces (common.cuh) the kernels below load and store 16-byte pieces.
// Elementwise loads of two bytes ran them at a tenth to a third of the memory bandwidth (an H100,
// Llama-3-8B's 14336-wide MLP: 104 us at 256 tokens where 10 would do; an H200, a 7 501-row vision
// tower's bias additions and activations at a quarter).

// The piece whose element e is op(a's element e, b's element e, e), in float32, rounded to act_t.
template <class Op>
__device__ __forceinline__ uint4 map_piece(uint4 a, uint4 b, Op op) {
    constexpr int PIECE = 16 / sizeof(act_t);
    uint4 result;
    const act_t* x = (const act_t*) &a;
    const act_t* y = (const act_t*) &b;
    act_t* r = (act_t*) &result;
#pragma unroll
    for (int e = 0; e < PIECE; e++) r[e] = float_to_act(op(act_to_float(x[e]), act_to_float(y[e]), e));
    return result;
}

extern "C" __global__ void add(const act_t* a, const act_t* b, act_t* out, i64 n) {
    JV_DEPENDENT_PROLOGUE();
    constexpr int PIECE = 16 / sizeof(act_t);
    if (whole_pieces(n, a, b, out)) {
        GRID_STRIDE_LOOP(p, n / PIECE) {
            ((uint4*) out)[p] = map_piece(((const uint4*) a)[p], ((const uint4*) b)[p],
                                          [](float x, float y, int) { return x + y; });
        }
        return;
    }
    GRID_STRIDE_LOOP(i, n) {
        out[i] = float_to_act(act_to_float(a[i]) + act_to_float(b[i]));
    }
}

// fn(gate) * up over 16-byte pieces, which a gated MLP of more than one token runs on two
// cuBLAS outputs. Not map_piece: that converts each up element before fn runs, and the decode
// graph's gated_halves compiled otherwise then.
__device__ __forceinline__ uint4 gated_piece(int fn, uint4 gates, uint4 ups) {
    constexpr int PIECE = 16 / sizeof(act_t);
    uint4 result;
    const act_t* g = (const act_t*) &gates;
    const act_t* u = (const act_t*) &ups;
    act_t* r = (act_t*) &result;
#pragma unroll
    for (int e = 0; e < PIECE; e++) r[e] = float_to_act(apply_activation(fn, act_to_float(g[e])) * act_to_float(u[e]));
    return result;
}

// gated_piece over n elements: false (nothing done) unless they are whole_pieces.
__device__ __forceinline__ bool gated_pieces(int fn, const act_t* gate, const act_t* up, act_t* out, i64 n) {
    constexpr int PIECE = 16 / sizeof(act_t);
    if (!whole_pieces(n, gate, up, out)) return false;
    GRID_STRIDE_LOOP(p, n / PIECE) {
        ((uint4*) out)[p] = gated_piece(fn, ((const uint4*) gate)[p], ((const uint4*) up)[p]);
    }
    return true;
}

extern "C" __global__ void activation(int fn, const act_t* x, act_t* out, i64 n) {
    JV_DEPENDENT_PROLOGUE();
    constexpr int PIECE = 16 / sizeof(act_t);
    if (whole_pieces(n, x, out)) {
        GRID_STRIDE_LOOP(p, n / PIECE) {
            uint4 v = ((const uint4*) x)[p];
            ((uint4*) out)[p] = map_piece(v, v, [fn](float value, float, int) { return apply_activation(fn, value); });
        }
        return;
    }
    GRID_STRIDE_LOOP(i, n) {
        out[i] = float_to_act(apply_activation(fn, act_to_float(x[i])));
    }
}

extern "C" __global__ void gated_activation(int fn, const act_t* gate, const act_t* up, act_t* out, i64 n) {
    JV_DEPENDENT_PROLOGUE();
    if (gated_pieces(fn, gate, up, out, n)) return;
    GRID_STRIDE_LOOP(i, n) {
        out[i] = float_to_act(apply_activation(fn, act_to_float(gate[i])) * act_to_float(up[i]));
    }
}

extern "C" __global__ void scale(const act_t* x, float factor, act_t* out, i64 n) {
    JV_DEPENDENT_PROLOGUE();
    GRID_STRIDE_LOOP(i, n) {
        out[i] = float_to_act(act_to_float(x[i]) * factor);
    }
}

// Gemma 2's logit soft-capping: cap * tanh(x / cap).
extern "C" __global__ void softcap(const act_t* x, float cap, act_t* out, i64 n) {
    JV_DEPENDENT_PROLOGUE();
    GRID_STRIDE_LOOP(i, n) {
        out[i] = float_to_act(cap * tanhf(act_to_float(x[i]) / cap));
    }
}

extern "C" __global__ void clamp_values(const act_t* x, float limit, act_t* out, i64 n) {
    JV_DEPENDENT_PROLOGUE();
    GRID_STRIDE_LOOP(i, n) {
        out[i] = float_to_act(fminf(fmaxf(act_to_float(x[i]), -limit), limit));
    }
}

// out[r, c] += bias[c] for a [rows, cols] matrix: the bias of a linear layer after its GEMM.
extern "C" __global__ void add_bias_rows(act_t* out, const void* bias, int biasType, int cols, i64 n) {
    JV_DEPENDENT_PROLOGUE();
    constexpr int PIECE = 16 / sizeof(act_t);
    if (whole_pieces(cols, out)) {
        int rowPieces = cols / PIECE;
        GRID_STRIDE_LOOP(p, n / PIECE) {
            int c = (int) (p % rowPieces) * PIECE;
            uint4 v = ((const uint4*) out)[p];
            ((uint4*) out)[p] = map_piece(v, v, [=](float value, float, int e) {
                return value + load_element(bias, biasType, c + e);
            });
        }
        return;
    }
    GRID_STRIDE_LOOP(i, n) {
        out[i] = float_to_act(act_to_float(out[i]) + load_element(bias, biasType, i % cols));
    }
}

// Converts n elements between floating types: weights to the compute type as they are uploaded.
extern "C" __global__ void convert_elements(const void* x, int inType, void* out, int outType, i64 n) {
    JV_DEPENDENT_PROLOGUE();
    GRID_STRIDE_LOOP(i, n) {
        store_element(out, outType, i, load_element(x, inType, i));
    }
}

// The columns of a stacked product ([tokens, n0 + n1 + n2], one cuBLAS call over row blocks of
// one weight) back into each projection's output ([tokens, n_i]). Every width is a whole number of
// 16-byte pieces and every row 16-byte aligned (the host checks); one piece a thread.
extern "C" __global__ void split_columns(const act_t* stacked, i64 tokens, act_t* out0, int n0, act_t* out1, int n1,
                                         act_t* out2, int n2) {
    JV_DEPENDENT_PROLOGUE();
    constexpr int PIECE = 16 / sizeof(act_t);
    int width = n0 + n1 + n2;
    int rowPieces = width / PIECE;
    GRID_STRIDE_LOOP(p, tokens * rowPieces) {
        i64 t = p / rowPieces;
        int c = (int) (p % rowPieces) * PIECE;
        uint4 piece = *(const uint4*) (stacked + t * width + c);
        if (c < n0) {
            *(uint4*) (out0 + t * n0 + c) = piece;
        } else if (c < n0 + n1) {
            *(uint4*) (out1 + t * n1 + c - n0) = piece;
        } else {
            *(uint4*) (out2 + t * n2 + c - n0 - n1) = piece;
        }
    }
}

// A gated MLP's first half from one stacked product of [gate; up] ([tokens, 2n]):
// out[t, c] = fn(stacked[t, c]) * stacked[t, n + c]. n is whole 16-byte pieces and the rows
// aligned (the host checks); one piece a thread.
extern "C" __global__ void gated_halves(int fn, const act_t* stacked, i64 tokens, int n, act_t* out) {
    JV_DEPENDENT_PROLOGUE();
    constexpr int PIECE = 16 / sizeof(act_t);
    int rowPieces = n / PIECE;
    GRID_STRIDE_LOOP(p, tokens * rowPieces) {
        i64 t = p / rowPieces;
        int c = (int) (p % rowPieces) * PIECE;
        const act_t* row = stacked + t * 2 * n;
        *(uint4*) (out + t * n + c) = gated_piece(fn, *(const uint4*) (row + c), *(const uint4*) (row + n + c));
    }
}
