// FusedAttention test cases shared by the CUDA attention tests (the op's kernel as registered, the GEMM path,
// the flash kernel): shapes, masks, attributes, tolerances, and an environment override for one scope
// (KILN_ATTENTION forces a path).
#pragma once
#ifdef KILN_WITH_CUDA
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/cuda_op_harness.h"

namespace kiln::cudatest {

struct AttentionCase {
  Dims q, k, v;
  Dims mask;  // empty: no mask
  bool causal = false;
  bool k_transposed = false;
  double scale = 0;        // 0: 1/sqrt(D)
  int neg_inf_row = -1;    // >= 0: that query row of the mask is all `masked_value` (the mask must have full Sq, Sk)
  float masked_value = -std::numeric_limits<float>::infinity();
};

inline std::string describe(const AttentionCase& c) {
  return "q " + dims_str(c.q) + " k " + dims_str(c.k) + " v " + dims_str(c.v) + " mask " + dims_str(c.mask) +
         (c.causal ? " causal" : "") + (c.k_transposed ? " k_transposed" : "");
}

// Relative to max |reference|. Every path rounds P to float16/bfloat16 before P V.
inline double attention_tol(DataType dt, bool tf32 = false) {
  switch (dt) {
    case DataType::kFLOAT: return tf32 ? 5e-3 : 1e-4;
    case DataType::kHALF: return 5e-3;
    default: return 3e-2;
  }
}

inline HostTensor attention_mask(const AttentionCase& c, DataType dt) {
  HostTensor m = randf(c.mask, dt, 0.1, 2.0);
  if (c.neg_inf_row < 0) return m;
  const int64_t sk = c.mask.back(), sq = c.mask[c.mask.size() - 2];
  for (int64_t o = 0; o < volume(c.mask) / (sq * sk); ++o)
    for (int64_t j = 0; j < sk; ++j) {
      const int64_t idx = (o * sq + c.neg_inf_row) * sk + j;
      if (dt == DataType::kFLOAT) m.mutable_data<float>()[idx] = c.masked_value;
      else if (dt == DataType::kHALF) m.mutable_data<uint16_t>()[idx] = float_to_half(c.masked_value);
      else m.mutable_data<uint16_t>()[idx] = float_to_bf16(c.masked_value);
    }
  return m;
}

inline std::vector<HostTensor> attention_inputs(const AttentionCase& c, DataType dt, DataType mask_dt) {
  std::vector<HostTensor> in = {randf(c.q, dt), randf(c.k, dt), randf(c.v, dt)};
  if (!c.mask.empty()) in.push_back(attention_mask(c, mask_dt));
  return in;
}

inline void set_attention_attrs(ir::Attrs& a, const AttentionCase& c, bool tf32 = false) {
  a.set("scale", c.scale != 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.q.back())));
  a.set("causal", int64_t{c.causal ? 1 : 0});
  a.set("k_transposed", int64_t{c.k_transposed ? 1 : 0});
  if (tf32) a.set("allow_tf32", int64_t{1});
}

// Sets an environment variable (nullptr: unsets it) for one scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = std::string(old);
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace kiln::cudatest

#endif  // KILN_WITH_CUDA
