// Row gathers: the embedding lookup and the selection of the rows whose logits are wanted.
#include "common.cuh"

// out[r] = source[indices[r]] widened to float32; one block per output row.
extern "C" __global__ void gather_rows(const void* source, int sourceType, int sourceRows, int cols,
                                       const int* indices, float* out, int* error) {
    int r = blockIdx.x;
    int index = indices[r];
    float* target = out + (i64) r * cols;
    if (index < 0 || index >= sourceRows) {
        if (threadIdx.x == 0) report_error(error, JV_ERROR_ROW_INDEX, index, r, sourceRows);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) target[c] = 0.0f;
        return;
    }
    i64 first = (i64) index * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        target[c] = load_element(source, sourceType, first + c);
    }
}
