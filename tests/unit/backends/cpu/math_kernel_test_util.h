// Helpers for the math/reduce/matmul kernel tests: random tensors (never all zero), running one op through
// cpu::eval_node, numpy-style index helpers for the naive references, and a comparison where NaN never
// passes.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backends/cpu/eval.h"
#include "backends/cpu/thread_pool.h"
#include "ir/graph.h"

namespace kiln::mtest {

inline std::mt19937_64& rng() {
  static std::mt19937_64 r(0x6b696c6e);
  return r;
}

inline double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng()); }
inline int64_t rand_int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng()); }

// Writes double v into element i of t (any dtype).
inline void set_elem(HostTensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case DataType::kFLOAT: t.mutable_data<float>()[i] = static_cast<float>(v); break;
    case DataType::kDOUBLE: t.mutable_data<double>()[i] = v; break;
    case DataType::kHALF: t.mutable_data<uint16_t>()[i] = float_to_half(static_cast<float>(v)); break;
    case DataType::kBF16: t.mutable_data<uint16_t>()[i] = float_to_bf16(static_cast<float>(v)); break;
    case DataType::kINT8: t.mutable_data<int8_t>()[i] = static_cast<int8_t>(v); break;
    case DataType::kUINT8: t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
    case DataType::kINT32: t.mutable_data<int32_t>()[i] = static_cast<int32_t>(v); break;
    case DataType::kINT64: t.mutable_data<int64_t>()[i] = static_cast<int64_t>(v); break;
    case DataType::kBOOL: t.mutable_data<uint8_t>()[i] = v != 0; break;
    default: throw Error("set_elem: unsupported dtype");
  }
}

// Random floats with |x| in [lo, hi] and a random sign (never zero when lo > 0); `positive` drops the sign.
inline HostTensor rand_float(Dims shape, DataType dt = DataType::kFLOAT, double lo = 0.1, double hi = 2.0,
                             bool positive = false) {
  HostTensor t(dt, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = uniform(lo, hi);
    if (!positive && rand_int(0, 1)) v = -v;
    set_elem(t, i, v);
  }
  return t;
}

// float32 values where a conversion to float16 or bfloat16 can go wrong, every third element: ties to even at
// float16's and bfloat16's last bit, float16 subnormals and underflow, overflow to infinity, signed zeros,
// infinities, a NaN, a float32 subnormal; the rest random over float16's range.
inline HostTensor conversion_hard_values(const Dims& shape) {
  HostTensor x = rand_float(shape, DataType::kFLOAT, 1e-3, 7e4);
  const float special[] = {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f,
                           0x1p-24f, 0x1p-25f, 0x1.8p-25f, 3e-8f, 6e-5f, 65504.0f, 65520.0f, 1e30f, -0.0f,
                           0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(), 1e-40f, -3.3e38f};
  float* p = x.mutable_data<float>();
  for (int64_t i = 0; i < x.numel(); ++i)
    if (i % 3 == 0) p[i] = special[(i / 3) % (sizeof special / sizeof special[0])];
  return x;
}

// Random integers in [lo, hi]; zeros are replaced by 1 when nonzero is set.
inline HostTensor rand_ints(Dims shape, DataType dt, int64_t lo, int64_t hi, bool nonzero = false) {
  HostTensor t(dt, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t v = rand_int(lo, hi);
    if (nonzero && v == 0) v = 1;
    set_elem(t, i, static_cast<double>(v));
  }
  return t;
}

inline HostTensor rand_bool(Dims shape) { return rand_ints(std::move(shape), DataType::kBOOL, 0, 1); }

inline std::vector<double> to_f64(const HostTensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.get_f64(i);
  return v;
}

inline HostTensor scalar_of(DataType dt, double v, Dims shape = {}) {
  HostTensor t(dt, shape);
  for (int64_t i = 0; i < t.numel(); ++i) set_elem(t, i, v);
  return t;
}

// Runs one `op` node on the inputs (nullptr = omitted optional input) and returns its outputs.
inline std::vector<HostTensor> run_op(const std::string& op, const std::vector<const HostTensor*>& ins,
                                      const std::function<void(ir::Attrs&)>& attrs = {}, int num_outputs = 1,
                                      cpu::ThreadPool* pool = nullptr) {
  ir::Graph g;
  std::vector<ir::Value*> vals;
  for (size_t i = 0; i < ins.size(); ++i)
    vals.push_back(ins[i] ? g.add_input("in" + std::to_string(i), ins[i]->dtype(), ins[i]->shape()) : nullptr);
  ir::Node* n = g.add_node(op, "node", vals, num_outputs);
  if (attrs) attrs(n->attrs);
  return cpu::eval_node(*n, ins, pool);
}

inline HostTensor run1(const std::string& op, const std::vector<const HostTensor*>& ins,
                       const std::function<void(ir::Attrs&)>& attrs = {}, cpu::ThreadPool* pool = nullptr) {
  return run_op(op, ins, attrs, 1, pool).at(0);
}

// Row-major strides and numpy-broadcast offset of output index `flat` (of shape out) into a tensor of
// shape in (right-aligned, size-1 dims broadcast).
inline std::vector<int64_t> strides_of(const Dims& d) {
  std::vector<int64_t> s(d.size());
  int64_t acc = 1;
  for (size_t i = d.size(); i-- > 0;) {
    s[i] = acc;
    acc *= d[i];
  }
  return s;
}
inline std::vector<int64_t> unravel(int64_t flat, const Dims& d) {
  std::vector<int64_t> idx(d.size());
  for (size_t i = d.size(); i-- > 0;) {
    idx[i] = flat % d[i];
    flat /= d[i];
  }
  return idx;
}
inline int64_t bcast_offset(const std::vector<int64_t>& out_idx, const Dims& in) {
  const size_t off = out_idx.size() - in.size();
  int64_t o = 0, acc = 1;
  for (size_t k = in.size(); k-- > 0;) {
    const int64_t i = in[k] == 1 ? 0 : out_idx[off + k];
    o += i * acc;
    acc *= in[k];
  }
  return o;
}
inline Dims bcast_shape(const Dims& a, const Dims& b) {
  const size_t r = std::max(a.size(), b.size());
  Dims o(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    o[i] = da == 1 ? db : da;
  }
  return o;
}

// Every element within atol + rtol*|ref|; NaN in either never passes (unless both NaN and nan_ok).
inline ::testing::AssertionResult close(const HostTensor& got, const std::vector<double>& ref, double rtol,
                                        double atol, bool nan_ok = false) {
  if (got.numel() != static_cast<int64_t>(ref.size()))
    return ::testing::AssertionFailure() << "size " << got.numel() << " vs reference " << ref.size();
  int bad = 0;
  std::ostringstream msg;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.get_f64(i), r = ref[i];
    bool ok;
    if (std::isnan(g) || std::isnan(r)) ok = nan_ok && std::isnan(g) && std::isnan(r);
    else ok = g == r || std::fabs(g - r) <= atol + rtol * std::fabs(r);
    if (!ok) {
      if (bad < 5) msg << " [" << i << "] got " << g << " want " << r << ";";
      ++bad;
    }
  }
  if (bad) return ::testing::AssertionFailure() << bad << " of " << got.numel() << " elements differ:" << msg.str();
  return ::testing::AssertionSuccess();
}

// Default tolerance per dtype.
inline double rtol_for(DataType dt) {
  switch (dt) {
    case DataType::kFLOAT: return 1e-5;
    case DataType::kDOUBLE: return 1e-12;
    case DataType::kHALF:
    case DataType::kBF16: return 1e-2;
    default: return 0;
  }
}

// A small pool so that the parallel paths run even on one-core machines.
inline cpu::ThreadPool* test_pool() {
  static cpu::ThreadPool p(4);
  return &p;
}

}  // namespace kiln::mtest
