// What the tests of Kiln's own convolution kernels (the narrow-input and split-K kernels) share: a Convolution
// node's inputs in the channels-last layout, and a run against the CPU that says whether the kernel under test
// was chosen meanwhile.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/cudnn/conv_graph_record.h"

namespace kiln::cudatest {

// x [N, H, W, C], w [K, kh, kw, C] (small: 0.05-0.3, so deep reductions stay well inside float16's range), then a
// bias [K] and a residual of y's shape where asked (the bias slot left empty for a residual alone), drawn in
// that order.
inline std::vector<HostTensor> conv_inputs(DataType dt, const Dims& x, int64_t k, int64_t kh, int64_t kw, const Dims& y,
                                           bool bias, bool residual) {
  std::vector<HostTensor> in;
  in.push_back(randf(x, dt));
  in.push_back(randf({k, kh, kw, x[3]}, dt, 0.05, 0.3));
  if (bias || residual) in.push_back(bias ? randf({k}, dt) : HostTensor());
  if (residual) in.push_back(randf(y, dt));
  return in;
}

// Runs a Convolution of `inputs` and `attrs` on the GPU against the CPU; *advanced: how much the counter `field`
// of conv_graph_counters (the kernel under test's choices) advanced meanwhile (one node, one shape: 0 or 1).
inline ::testing::AssertionResult check_conv_counting(const std::vector<HostTensor>& inputs,
                                                      const std::function<void(ir::Attrs&)>& attrs,
                                                      int64_t cuda::ConvGraphCounters::*field, int64_t* advanced) {
  Options opt;
  opt.library_handles = true;
  const int64_t before = cuda::conv_graph_counters().*field;
  ::testing::AssertionResult r = check_op("Convolution", inputs, attrs, opt);
  *advanced = cuda::conv_graph_counters().*field - before;
  return r;
}

}  // namespace kiln::cudatest
