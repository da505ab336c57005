// CUDA C++ source for a FusedPointwise node (ir/pointwise_program.h), compiled at run time with NVRTC
// (nvrtc_module.h). The source needs no header: float16/bfloat16 conversions are inline PTX and bit
// manipulation, the math functions are NVRTC's built-ins, integer types are plain C types. That keeps it
// independent of where (or whether) the toolkit's include directory is installed on the machine that runs it.
//
// One kernel per specialization: the program, the inputs' dtypes, how each input is indexed, the rank of the
// iteration space of the strided inputs, and whether offsets fit in 32 bits. Signature:
//   extern "C" __global__ void <entry>(const S0* in0, ..., OUT* out, long long n, int vec[, KilnGeo geo])
// `vec` (only honoured when no input is strided) selects 4 elements per thread with aligned vector
// loads/stores; the host sets it when every flat pointer is aligned. `geo` holds the collapsed dims
// (geo_size() int64 values: rank dims, then rank strides per strided input, in input order).
#pragma once
#include <string>
#include <vector>

#include "ir/pointwise_program.h"

namespace kiln::cuda {

enum class InputKind : int {
  kFlat = 0,     // the output's shape: element i
  kScalar = 1,   // one element, read once
  kStrided = 2,  // broadcast: offsets from the collapsed dims and this input's strides
};

struct PointwiseSpec {
  ir::pw::Program program;
  std::vector<DataType> input_dtypes;
  std::vector<InputKind> kinds;
  int rank = 0;          // dims of the collapsed iteration space (used when an input is strided)
  bool index32 = false;  // every index and offset fits in int32

  int num_strided() const;
  int geo_size() const { return num_strided() ? rank * (1 + num_strided()) : 0; }
  // Vector alignment (bytes) the host must check for `vec`, per dtype.
  static int vec_alignment(DataType dt);
};

// Fills spec.kinds, spec.rank and spec.index32 for inputs of `in_shapes` numpy-broadcast onto `out` (n > 0
// elements), and the kernel's `geo` argument: the iteration space with size-1 dims dropped and neighbours
// merged where every strided input stays contiguous across them. Throws kiln::Error naming the input whose
// shape does not broadcast.
void plan_layout(PointwiseSpec& spec, const std::vector<Dims>& in_shapes, const Dims& out, std::vector<int64_t>* geo);

// The kernel's source. Throws kiln::Error when the program is invalid for the input dtypes.
std::string pointwise_source(const PointwiseSpec& spec, const std::string& entry);

}  // namespace kiln::cuda
