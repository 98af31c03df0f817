// A Llama-3-8B layer's o projection and MLP weights with seeded random values, for the microbenchmarks
// of the MLP half at batch 1 (mlp_chain.cu, mlp_fused.cu): each layer its own copy, so that a graph over
// the layers finds none of them in L2.
#pragma once
#include "bench.cuh"

struct Layer {
    act_t *wo, *wg, *wu, *wd, *norm2, *normNext;
    act_t* wdT;  // down transposed ([inter, hidden]), where a benchmark asks for it; else null
};

inline act_t* alloc_act(long long elements) {
    act_t* p;
    CHECK(cudaMalloc(&p, elements * sizeof(act_t)));
    return p;
}

// Layer l's weights: o [hidden, hidden], gate and up [inter, hidden], down [hidden, inter] (scale 0.02),
// the two norms' weights [hidden] (scale 1).
inline Layer random_layer(int l, int hidden, int inter) {
    Layer w{};
    w.wo = alloc_act((long long) hidden * hidden);
    w.wg = alloc_act((long long) inter * hidden);
    w.wu = alloc_act((long long) inter * hidden);
    w.wd = alloc_act((long long) hidden * inter);
    w.norm2 = alloc_act(hidden);
    w.normNext = alloc_act(hidden);
    fill_random<<<1024, 256>>>(w.wo, (long long) hidden * hidden, 11 + l, 0.02f);
    fill_random<<<1024, 256>>>(w.wg, (long long) inter * hidden, 23 + l, 0.02f);
    fill_random<<<1024, 256>>>(w.wu, (long long) inter * hidden, 37 + l, 0.02f);
    fill_random<<<1024, 256>>>(w.wd, (long long) hidden * inter, 41 + l, 0.02f);
    fill_random<<<16, 256>>>(w.norm2, hidden, 53 + l, 1.0f);
    fill_random<<<16, 256>>>(w.normNext, hidden, 59 + l, 1.0f);
    return w;
}
