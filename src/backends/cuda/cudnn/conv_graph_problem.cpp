#include "backends/cuda/cudnn/conv_graph_problem.h"

#include <algorithm>
#include <cstdio>

namespace kiln::cuda {

std::string ConvGraphEpilogue::str() const {
  std::string s = "conv";
  if (bias) s += "+bias";
  if (residual) s += "+residual";
  if (relu) s += "+relu";
  if (relu && relu_upper > 0) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "<=%g", static_cast<double>(relu_upper));
    s += buf;
  }
  return s;
}

int64_t address_alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  if (a == 0) return 16;
  const uintptr_t low = a & (~a + 1);  // the lowest set bit
  return static_cast<int64_t>(std::min<uintptr_t>(low, 16));
}

namespace {

// "[a,b,c]": the brackets keep neighbouring lists apart ([1,23][4] is not [12,3][4]).
std::string list(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

std::string conv_graph_problem_text(const ConvGraphProblem& p, const ConvGraphEpilogue& full, int64_t activation,
                                    uint64_t workspace_bytes) {
  std::string s = std::string(dtype_name(p.io_type)) + (p.allow_tf32 ? " tf32" : " no-tf32");
  s += " x" + list(p.x_dims) + list(p.x_strides) + " w" + list(p.w_dims) + list(p.w_strides);
  s += " y" + list(p.y_dims) + list(p.y_strides) + " bias" + list(p.bias_dims) + list(p.bias_strides);
  s += " pad" + list(p.pre_pad) + list(p.post_pad) + " stride" + list(p.stride) + " dilation" + list(p.dilation);
  s += " align" + list(std::vector<int64_t>(p.align, p.align + kGraphTensorCount));
  return s + " " + full.str() + " act" + std::to_string(activation) + " ws" + std::to_string(workspace_bytes);
}

}  // namespace kiln::cuda
