// Transposes on the GPU, the engine behind Shuffle: out = in with its dims permuted (out dim j = in dim
// perm[j]), for elements of 1, 2, 4 or 8 bytes. transpose.cu says how a kernel is chosen and how fast each is.
//
// This header stays free of device-only code so that host unit tests can include it (they check the fast
// division (fast_div.cuh) and the folding of a Shuffle into one transpose without a GPU).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "backends/cuda/kernel.h"
#include "backends/cuda/kernels/fast_div.cuh"

namespace kiln::cuda::kern {

// Enqueues out = transpose(in); fails naming the layer when perm is not a permutation of shape's dims, the
// element size is not 1, 2, 4 or 8, or more than kMaxDims dims remain after collapsing. Never synchronizes
// or allocates (CUDA-graph capturable). `in` and `out` must not overlap.
void launch_transpose(const KernelContext& ctx, const void* in, void* out, const Dims& shape,
                      const std::vector<int64_t>& perm, size_t elem_size);

// A Shuffle that transposes (p1), reshapes to `mid` and transposes again (p2), as one transpose of a view of
// x: *shape (x with dims split where the reshape needs it) permuted by *perm. False when the reshape mixes
// dims in a way no split expresses (e.g. [3, 2] -> [2, 3]) or the result has more than kMaxDims dims after
// collapsing; the caller then gathers element by element. p1 and p2 must be permutations (identity allowed).
bool fold_shuffle(const Dims& x, const std::vector<int64_t>& p1, const Dims& mid, const std::vector<int64_t>& p2,
                  Dims* shape, std::vector<int64_t>* perm);

// Whether perm holds each of 0..rank-1 exactly once.
bool is_permutation(const std::vector<int64_t>& perm, size_t rank);

// Tests only: use the 64-bit index kernels even where 32 bits suffice, so that they are covered without
// tensors of 2^31 elements. Not thread-safe; tests set it around one call and reset it.
void set_transpose_force_64bit_index(bool on);

}  // namespace kiln::cuda::kern
