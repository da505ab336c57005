// The reference both Gather-with-addend kernel tests (CPU: backends/cpu/test_gather_addend_kernel.cpp; CUDA:
// backends/cuda/test_cuda_gather_addend.cpp) compare against bit for bit: Gather(table, ids) along axis 0 plus
// the addend broadcast over leading dims (element e adds addend element e mod its size, ir/gather_addend.h),
// each sum in float32 and rounded once to the dtype. A negative index counts from the end; one outside [-N, N)
// reads a zero row, so that output row is the addend's, as the CUDA kernel gives (the CPU kernel fails on such
// an index instead, so its test never passes one).
#pragma once
#include <cstdint>

#include "kiln/types.h"
#include "ir/host_tensor.h"

namespace kiln::gather_addend_test {

inline uint16_t low_bits(DataType dt, float v) { return dt == DataType::kHALF ? float_to_half(v) : float_to_bf16(v); }

inline HostTensor reference(const HostTensor& table, const HostTensor& ids, const HostTensor& addend) {
  const int64_t N = table.shape()[0], inner = table.numel() / N;
  Dims out = ids.shape();
  out.insert(out.end(), table.shape().begin() + 1, table.shape().end());
  HostTensor y(table.dtype(), out);
  for (int64_t r = 0; r < ids.numel(); ++r) {
    int64_t v = ids.get_i64(r);
    const bool bad = v < -N || v >= N;
    if (v < 0) v += N;
    for (int64_t k = 0; k < inner; ++k) {
      const int64_t e = r * inner + k;
      const float t = bad ? 0.0f : static_cast<float>(table.get_f64(v * inner + k));
      const float sum = t + static_cast<float>(addend.get_f64(e % addend.numel()));
      if (table.dtype() == DataType::kFLOAT) y.mutable_data<float>()[e] = sum;
      else y.mutable_data<uint16_t>()[e] = low_bits(table.dtype(), sum);
    }
  }
  return y;
}

}  // namespace kiln::gather_addend_test
