// Element conversion between dtypes as the CPU Cast kernel does it (cast.cpp, ONNX Cast rules with the
// default attributes: saturate = 1, E8M0 rounding up), for kernels that store their result in another dtype
// and must give a Cast's bytes (Normalization's output_dtype).
#pragma once
#include <cstdint>

#include "backends/cpu/thread_pool.h"
#include "kiln/types.h"

namespace kiln::cpu {

// out[i] = Cast(in[i]) for i < n, split over `pool`; false (nothing written) when the pair has no conversion.
bool convert_elements(ThreadPool* pool, const void* in, DataType from, void* out, DataType to, int64_t n);

}  // namespace kiln::cpu
