// Scatter kernel (ONNX ScatterElements / ScatterND with reductions) against a naive reference written here,
// on random inputs: every reduction, negative indices, every axis, int32 and int64 indices, several dtypes.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <cstring>
#include <random>
#include <string>

#include "backends/cpu/eval.h"
#include "ir/graph.h"

namespace kiln {
namespace {

using Ints = std::vector<int64_t>;

std::mt19937_64& rng() {
  static std::mt19937_64 r(4321);
  return r;
}
int64_t rand_int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng()); }

double get(const HostTensor& t, int64_t i) {
  switch (t.dtype()) {
    case DataType::kFLOAT: return t.data<float>()[i];
    case DataType::kDOUBLE: return t.data<double>()[i];
    case DataType::kINT32: return t.data<int32_t>()[i];
    case DataType::kINT64: return static_cast<double>(t.data<int64_t>()[i]);
    default: ADD_FAILURE() << "bad dtype"; return 0;
  }
}
void put(HostTensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case DataType::kFLOAT: t.mutable_data<float>()[i] = static_cast<float>(v); break;
    case DataType::kDOUBLE: t.mutable_data<double>()[i] = v; break;
    case DataType::kINT32: t.mutable_data<int32_t>()[i] = static_cast<int32_t>(v); break;
    case DataType::kINT64: t.mutable_data<int64_t>()[i] = static_cast<int64_t>(v); break;
    default: ADD_FAILURE() << "bad dtype";
  }
}

// Random values: small integers for integer dtypes (so products stay exact), floats in [-2, 2].
HostTensor random_tensor(DataType dt, const Dims& shape) {
  HostTensor t(dt, shape);
  if (dt == DataType::kFLOAT || dt == DataType::kDOUBLE || dt == DataType::kINT32 || dt == DataType::kINT64) {
    bool is_float = dt == DataType::kFLOAT || dt == DataType::kDOUBLE;
    for (int64_t i = 0; i < t.numel(); ++i)
      put(t, i, is_float ? static_cast<float>(std::uniform_real_distribution<double>(-2, 2)(rng()))
                         : static_cast<double>(rand_int(-3, 3)));
  } else {
    auto* p = static_cast<uint8_t*>(t.mutable_raw());
    for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(rand_int(0, 255));
    if (dt == DataType::kBOOL)
      for (size_t i = 0; i < t.nbytes(); ++i) p[i] &= 1;
  }
  return t;
}

HostTensor index_tensor(const Ints& v, const Dims& shape, DataType dt) {
  HostTensor t(dt, shape);
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == DataType::kINT64) t.mutable_data<int64_t>()[i] = v[i];
    else t.mutable_data<int32_t>()[i] = static_cast<int32_t>(v[i]);
  }
  return t;
}

Ints strides_of(const Dims& d) {
  Ints s(d.size());
  int64_t acc = 1;
  for (size_t i = d.size(); i-- > 0;) {
    s[i] = acc;
    acc *= d[i];
  }
  return s;
}
Ints unravel(int64_t i, const Dims& d) {
  Ints idx(d.size());
  for (size_t k = d.size(); k-- > 0;) {
    idx[k] = i % d[k];
    i /= d[k];
  }
  return idx;
}

// Applies update element `u` (element offset in updates) to out element `o` with the reduction.
void ref_apply(HostTensor& out, int64_t o, const HostTensor& upd, int64_t u, const std::string& red) {
  if (red == "none") {
    size_t es = dtype_size(out.dtype());
    std::memcpy(static_cast<char*>(out.mutable_raw()) + o * es, static_cast<const char*>(upd.raw()) + u * es, es);
    return;
  }
  if (out.dtype() == DataType::kFLOAT) {
    float a = out.data<float>()[o], b = upd.data<float>()[u];
    float r = red == "add" ? a + b : red == "mul" ? a * b : red == "max" ? std::max(a, b) : std::min(a, b);
    out.mutable_data<float>()[o] = r;
    return;
  }
  double a = get(out, o), b = get(upd, u);
  double r = red == "add" ? a + b : red == "mul" ? a * b : red == "max" ? std::max(a, b) : std::min(a, b);
  put(out, o, r);
}

HostTensor copy_of(const HostTensor& t) {
  HostTensor c(t.dtype(), t.shape());
  if (t.nbytes()) std::memcpy(c.mutable_raw(), t.raw(), t.nbytes());
  return c;
}

HostTensor ref_scatter_elements(const HostTensor& data, const HostTensor& idx, const HostTensor& upd, int64_t axis,
                                const std::string& red) {
  HostTensor out = copy_of(data);
  int64_t r = static_cast<int64_t>(data.shape().size());
  if (axis < 0) axis += r;
  Ints ds = strides_of(data.shape());
  for (int64_t u = 0; u < idx.numel(); ++u) {
    Ints pos = unravel(u, idx.shape());
    int64_t v = idx.dtype() == DataType::kINT64 ? idx.data<int64_t>()[u] : idx.data<int32_t>()[u];
    if (v < 0) v += data.shape()[axis];
    pos[axis] = v;
    int64_t o = 0;
    for (int64_t d = 0; d < r; ++d) o += pos[d] * ds[d];
    ref_apply(out, o, upd, u, red);
  }
  return out;
}

HostTensor ref_scatter_nd(const HostTensor& data, const HostTensor& idx, const HostTensor& upd, const std::string& red) {
  HostTensor out = copy_of(data);
  int64_t k = idx.shape().back();
  Ints ds = strides_of(data.shape());
  int64_t block = 1;
  for (size_t d = static_cast<size_t>(k); d < data.shape().size(); ++d) block *= data.shape()[d];
  int64_t n = block ? upd.numel() / block : 0;
  for (int64_t t = 0; t < n; ++t) {
    int64_t base = 0;
    for (int64_t j = 0; j < k; ++j) {
      int64_t v = idx.dtype() == DataType::kINT64 ? idx.data<int64_t>()[t * k + j] : idx.data<int32_t>()[t * k + j];
      if (v < 0) v += data.shape()[j];
      base += v * ds[j];
    }
    for (int64_t e = 0; e < block; ++e) ref_apply(out, base + e, upd, t * block + e, red);
  }
  return out;
}

void expect_same(const HostTensor& got, const HostTensor& want, const std::string& what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(dims_str(got.shape()), dims_str(want.shape())) << what;
  size_t es = dtype_size(got.dtype());
  for (int64_t i = 0; i < got.numel(); ++i)
    if (std::memcmp(static_cast<const char*>(got.raw()) + i * es, static_cast<const char*>(want.raw()) + i * es, es)) {
      ADD_FAILURE() << what << ": element " << i << " differs";
      return;
    }
}

std::vector<HostTensor> run_scatter(const HostTensor& data, const HostTensor& idx, const HostTensor& upd,
                                    int64_t mode, int64_t axis, const std::string& red) {
  ir::Graph g;
  std::vector<ir::Value*> vals = {g.add_input("data", data.dtype(), data.shape()),
                                  g.add_input("indices", idx.dtype(), idx.shape()),
                                  g.add_input("updates", upd.dtype(), upd.shape())};
  ir::Node* n = g.add_node("Scatter", "scatter", vals, 1);
  n->attrs.set("mode", mode);
  n->attrs.set("axis", axis);
  n->attrs.set("reduction", red);
  return cpu::eval_node(*n, {&data, &idx, &upd});
}

Dims random_shape(int64_t rank, int64_t lo, int64_t hi) {
  Dims d;
  for (int64_t i = 0; i < rank; ++i) d.push_back(rand_int(lo, hi));
  return d;
}

const char* kReductions[] = {"none", "add", "mul", "max", "min"};
const DataType kReduceDtypes[] = {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT32, DataType::kINT64};
const DataType kCopyDtypes[] = {DataType::kINT8, DataType::kHALF, DataType::kBOOL, DataType::kUINT8};

void check_elements(DataType dt, const std::string& red, int64_t rank, int64_t axis, DataType idt) {
  Dims ds = random_shape(rank, 1, 5);
  int64_t ax = axis < 0 ? axis + rank : axis;
  Dims is = ds;
  for (int64_t d = 0; d < rank; ++d) is[d] = d == ax ? rand_int(1, 6) : rand_int(1, ds[d]);
  int64_t cnt = 1;
  for (int64_t v : is) cnt *= v;
  Ints iv;
  for (int64_t i = 0; i < cnt; ++i) iv.push_back(rand_int(-ds[ax], ds[ax] - 1));
  HostTensor data = random_tensor(dt, ds), upd = random_tensor(dt, is), idx = index_tensor(iv, is, idt);
  std::string what = std::string("ELEMENT ") + dtype_name(dt) + " " + red + " data " + dims_str(ds) + " indices " +
                     dims_str(is) + " axis " + std::to_string(axis);
  auto got = run_scatter(data, idx, upd, 0, axis, red);
  ASSERT_EQ(got.size(), 1u) << what;
  expect_same(got[0], ref_scatter_elements(data, idx, upd, axis, red), what);
}

void check_nd(DataType dt, const std::string& red, int64_t rank, int64_t k, int64_t qbatch, DataType idt) {
  Dims ds = random_shape(rank, 1, 4);
  Dims is = random_shape(qbatch, 1, 4);
  is.push_back(k);
  Dims us(is.begin(), is.end() - 1);
  us.insert(us.end(), ds.begin() + k, ds.end());
  int64_t tuples = 1;
  for (size_t d = 0; d + 1 < is.size(); ++d) tuples *= is[d];
  Ints iv;
  for (int64_t t = 0; t < tuples; ++t)
    for (int64_t j = 0; j < k; ++j) iv.push_back(rand_int(-ds[j], ds[j] - 1));
  HostTensor data = random_tensor(dt, ds), upd = random_tensor(dt, us), idx = index_tensor(iv, is, idt);
  std::string what = std::string("ND ") + dtype_name(dt) + " " + red + " data " + dims_str(ds) + " indices " +
                     dims_str(is);
  auto got = run_scatter(data, idx, upd, 1, 0, red);
  ASSERT_EQ(got.size(), 1u) << what;
  expect_same(got[0], ref_scatter_nd(data, idx, upd, red), what);
}

TEST(ScatterKernel, ElementsAllReductionsAxesAndDtypes) {
  for (DataType dt : kReduceDtypes)
    for (const char* red : kReductions)
      for (int64_t rank = 1; rank <= 4; ++rank)
        for (int64_t axis = -rank; axis < rank; ++axis)
          for (int rep = 0; rep < 3; ++rep)
            check_elements(dt, red, rank, axis, rep % 2 ? DataType::kINT32 : DataType::kINT64);
}

TEST(ScatterKernel, ElementsCopyAnyDtype) {
  for (DataType dt : kCopyDtypes)
    for (int64_t rank = 1; rank <= 3; ++rank)
      for (int64_t axis = -rank; axis < rank; ++axis) check_elements(dt, "none", rank, axis, DataType::kINT64);
}

TEST(ScatterKernel, NdAllReductionsAndDtypes) {
  for (DataType dt : kReduceDtypes)
    for (const char* red : kReductions)
      for (int64_t rank = 1; rank <= 4; ++rank)
        for (int64_t k = 1; k <= rank; ++k)
          for (int64_t qb = 0; qb <= 2; ++qb)
            check_nd(dt, red, rank, k, qb, qb % 2 ? DataType::kINT32 : DataType::kINT64);
  for (DataType dt : kCopyDtypes) check_nd(dt, "none", 3, 2, 1, DataType::kINT64);
}

TEST(ScatterKernel, NdFixedExample) {
  // ONNX ScatterND example 2: data [4,4,4], indices [[0],[2]], updates [2,4,4].
  HostTensor data = random_tensor(DataType::kFLOAT, {4, 4, 4});
  HostTensor upd = random_tensor(DataType::kFLOAT, {2, 4, 4});
  HostTensor idx = index_tensor({0, -2}, {2, 1}, DataType::kINT64);
  auto got = run_scatter(data, idx, upd, 1, 0, "none");
  for (int64_t e = 0; e < 16; ++e) {
    EXPECT_EQ(got[0].data<float>()[e], upd.data<float>()[e]);
    EXPECT_EQ(got[0].data<float>()[16 + e], data.data<float>()[16 + e]);
    EXPECT_EQ(got[0].data<float>()[32 + e], upd.data<float>()[16 + e]);
  }
}

void expect_fails_with(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ScatterKernel, OutOfRangeIndicesFail) {
  HostTensor data = random_tensor(DataType::kFLOAT, {3, 4});
  HostTensor upd = random_tensor(DataType::kFLOAT, {1, 2});
  expect_fails_with([&] { run_scatter(data, index_tensor({1, 4}, {1, 2}, DataType::kINT64), upd, 0, 1, "none"); },
                    "out of range");
  expect_fails_with([&] { run_scatter(data, index_tensor({0, -5}, {1, 2}, DataType::kINT32), upd, 0, -1, "add"); },
                    "out of range");
  HostTensor upd2 = random_tensor(DataType::kFLOAT, {1, 4});
  expect_fails_with([&] { run_scatter(data, index_tensor({3}, {1, 1}, DataType::kINT64), upd2, 1, 0, "none"); },
                    "out of range");
}

TEST(ScatterKernel, InferenceRejectsBadShapes) {
  HostTensor data = random_tensor(DataType::kFLOAT, {3, 4});
  HostTensor upd = random_tensor(DataType::kFLOAT, {2, 2});
  expect_fails_with([&] { run_scatter(data, index_tensor({0, 1}, {1, 2}, DataType::kINT64), upd, 0, 0, "none"); },
                    "shape of the indices");
  expect_fails_with([&] { run_scatter(data, index_tensor({0, 1}, {1, 2}, DataType::kINT64),
                                      random_tensor(DataType::kFLOAT, {1, 2}), 0, 0, "sum"); },
                    "unknown reduction");
}

}  // namespace
}  // namespace kiln
