// The reference both Gather-with-addend kernel tests (CPU: backends/cpu/test_gather_addend_kernel.cpp; CUDA:
// backends/cuda/test_cuda_gather_addend.cpp) compare against bit for bit: Gather(table, ids) along axis 0 plus
// the addend, both broadcast numpy's way onto the output (either may be the one broadcast), each sum in float32
// and rounded once to the dtype. It walks the broadcast by output coordinates, not by the kernels' row rule, so
// it checks both of their paths (ir/gather_addend.h). A negative index counts from the end; one outside
// [-N, N) reads a zero row, so that output row is the addend's, as the CUDA kernel gives (the CPU kernel fails
// on such an index instead, so its test never passes one).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kiln/types.h"
#include "ir/host_tensor.h"

namespace kiln::gather_addend_test {

inline uint16_t low_bits(DataType dt, float v) { return dt == DataType::kHALF ? float_to_half(v) : float_to_bf16(v); }

// Offset in a row-major tensor of `shape` of the output coordinate `at` (right-aligned, numpy broadcast).
inline int64_t offset_of(const Dims& shape, const Dims& at) {
  int64_t off = 0, stride = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    const size_t d = shape.size() - 1 - k, o = at.size() - 1 - k;
    if (shape[d] != 1) off += at[o] * stride;
    stride *= shape[d];
  }
  return off;
}

inline HostTensor reference(const HostTensor& table, const HostTensor& ids, const HostTensor& addend) {
  const int64_t N = table.shape()[0], inner = table.numel() / N;
  Dims gathered = ids.shape();
  gathered.insert(gathered.end(), table.shape().begin() + 1, table.shape().end());
  const Dims& a = addend.shape();
  const size_t rank = std::max(gathered.size(), a.size());
  Dims out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t dg = i < rank - gathered.size() ? 1 : gathered[i - (rank - gathered.size())];
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    out[i] = dg == 1 ? da : dg;
  }
  HostTensor y(table.dtype(), out);
  Dims at(rank, 0);
  for (int64_t e = 0; e < y.numel(); ++e) {
    int64_t rem = e;
    for (size_t d = rank; d-- > 0;) {
      at[d] = rem % out[d];
      rem /= out[d];
    }
    const int64_t g = offset_of(gathered, at), r = g / inner;
    int64_t v = ids.get_i64(r);
    const bool bad = v < -N || v >= N;
    if (v < 0) v += N;
    const float t = bad ? 0.0f : static_cast<float>(table.get_f64(v * inner + g % inner));
    const float sum = t + static_cast<float>(addend.get_f64(offset_of(a, at)));
    if (table.dtype() == DataType::kFLOAT) y.mutable_data<float>()[e] = sum;
    else y.mutable_data<uint16_t>()[e] = low_bits(table.dtype(), sum);
  }
  return y;
}

// Shapes that miss the row rule on their real dims (ir/gather_addend.h), for both kernels' element paths, with
// rows of `width` elements: the gathered side broadcast (its batch or sequence is 1 where the addend's is not),
// broadcasts across or inside a row, a scalar.
struct ElementCase {
  Dims ids, addend;
};
inline std::vector<ElementCase> element_path_cases(int64_t width) {
  return {{{1, 7}, {3, 7, width}}, {{3, 1}, {3, 7, width}}, {{2, 1}, {1, 5, width}}, {{3, 7}, {3, 1, width}},
          {{3, 7}, {7, 1}},        {{3, 7}, {1}},           {{3, 7}, {}},            {{1}, {4, 6, 1}}};
}

}  // namespace kiln::gather_addend_test
