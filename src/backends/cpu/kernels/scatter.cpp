// CPU kernel for Scatter: ONNX ScatterElements (mode ELEMENT 0) and ScatterND (mode ND 1) with the
// reductions none/add/mul/max/min. The output starts as a copy of the data; then every update element is
// applied, in order, at the destination its index selects. "none" is dtype-generic (element copies);
// reductions support float32, double, int32 and int64.
#include <algorithm>
#include <cstring>
#include <string>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

using Ints = std::vector<int64_t>;

Ints strides_of(const Dims& d) {
  Ints s(d.size());
  int64_t acc = 1;
  for (size_t i = d.size(); i-- > 0;) {
    s[i] = acc;
    acc *= d[i];
  }
  return s;
}

int64_t index_at(const TensorRef& t, int64_t i) {
  return t.dtype == DataType::kINT64 ? t.as<int64_t>()[i] : static_cast<int64_t>(t.as<int32_t>()[i]);
}

int64_t wrap_checked(const KernelContext& ctx, int64_t v, int64_t n, int64_t axis, int64_t pos) {
  int64_t w = v < 0 ? v + n : v;
  if (w < 0 || w >= n)
    ctx.fail("index " + std::to_string(v) + " (at indices element " + std::to_string(pos) + ") is out of range [" +
             std::to_string(-n) + ", " + std::to_string(n - 1) + "] for axis " + std::to_string(axis) +
             " of size " + std::to_string(n));
  return w;
}

// dst[u] = element offset in the output for update element u; `block` = elements per update item
// (1 for ELEMENT mode; the slice size for ND mode, whose updates are contiguous blocks).
void destinations(const KernelContext& ctx, Ints& dst, int64_t& block) {
  const TensorRef& data = ctx.input(0);
  const TensorRef& idx = ctx.input(1);
  const TensorRef& upd = ctx.input(2);
  int64_t r = static_cast<int64_t>(data.shape.size());
  Ints ds = strides_of(data.shape);
  int64_t mode = ctx.attrs().i("mode", 0);
  if (mode == 0) {
    int64_t axis = ctx.attrs().i("axis", 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) ctx.fail("axis " + std::to_string(ctx.attrs().i("axis", 0)) + " is out of range");
    block = 1;
    int64_t n = idx.numel();
    if (upd.numel() != n) ctx.fail("updates and indices differ in size");
    dst.resize(static_cast<size_t>(n));
    Ints pos(static_cast<size_t>(r), 0);
    for (int64_t u = 0; u < n; ++u) {
      int64_t off = 0;
      for (int64_t d = 0; d < r; ++d) {
        int64_t c = d == axis ? wrap_checked(ctx, index_at(idx, u), data.shape[d], d, u) : pos[d];
        off += c * ds[d];
      }
      dst[u] = off;
      for (int64_t d = r; d-- > 0;) {
        if (++pos[d] < idx.shape[d]) break;
        pos[d] = 0;
      }
    }
  } else {
    int64_t q = static_cast<int64_t>(idx.shape.size());
    int64_t k = idx.shape[q - 1];
    block = 1;
    for (int64_t d = k; d < r; ++d) block *= data.shape[d];
    int64_t n = k == 0 ? idx.numel() : idx.numel() / k;
    if (k == 0) {
      n = 1;
      for (int64_t d = 0; d < q - 1; ++d) n *= idx.shape[d];
    }
    if (upd.numel() != n * block) ctx.fail("updates size does not match the indices and data");
    dst.resize(static_cast<size_t>(n));
    for (int64_t u = 0; u < n; ++u) {
      int64_t off = 0;
      for (int64_t j = 0; j < k; ++j)
        off += wrap_checked(ctx, index_at(idx, u * k + j), data.shape[j], j, u * k + j) * ds[j];
      dst[u] = off;
    }
  }
}

template <class T>
void apply_reduction(const KernelContext& ctx, const std::string& red, const Ints& dst, int64_t block, T* out,
                     const T* upd) {
  for (size_t u = 0; u < dst.size(); ++u) {
    T* o = out + dst[u];
    const T* s = upd + static_cast<int64_t>(u) * block;
    if (red == "add") for (int64_t e = 0; e < block; ++e) o[e] = static_cast<T>(o[e] + s[e]);
    else if (red == "mul") for (int64_t e = 0; e < block; ++e) o[e] = static_cast<T>(o[e] * s[e]);
    else if (red == "max") for (int64_t e = 0; e < block; ++e) o[e] = std::max(o[e], s[e]);
    else if (red == "min") for (int64_t e = 0; e < block; ++e) o[e] = std::min(o[e], s[e]);
    else ctx.fail("unknown reduction '" + red + "'");
  }
}

void k_scatter(KernelContext& ctx) {
  const TensorRef& data = ctx.input(0);
  const TensorRef& upd = ctx.input(2);
  TensorRef& y = ctx.out[0];
  if (data.numel() > 0) std::memcpy(y.data, data.data, data.nbytes());
  Ints dst;
  int64_t block = 1;
  destinations(ctx, dst, block);
  std::string red = ctx.attrs().s("reduction", "none");
  size_t es = dtype_size(data.dtype);
  if (red == "none") {
    for (size_t u = 0; u < dst.size(); ++u)
      std::memcpy(static_cast<char*>(y.data) + dst[u] * es,
                  static_cast<const char*>(upd.data) + static_cast<int64_t>(u) * block * es,
                  static_cast<size_t>(block) * es);
    return;
  }
  switch (data.dtype) {
    case DataType::kFLOAT: apply_reduction<float>(ctx, red, dst, block, y.as<float>(), upd.as<float>()); break;
    case DataType::kDOUBLE: apply_reduction<double>(ctx, red, dst, block, y.as<double>(), upd.as<double>()); break;
    case DataType::kINT32: apply_reduction<int32_t>(ctx, red, dst, block, y.as<int32_t>(), upd.as<int32_t>()); break;
    case DataType::kINT64: apply_reduction<int64_t>(ctx, red, dst, block, y.as<int64_t>(), upd.as<int64_t>()); break;
    default: ctx.fail(std::string("reduction '") + red + "' does not support dtype " + dtype_name(data.dtype));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("Scatter", &k_scatter);

}  // namespace kiln::cpu
