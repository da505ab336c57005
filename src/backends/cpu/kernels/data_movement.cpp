// CPU kernels for the data-movement ops: Constant, Shuffle, Squeeze, Unsqueeze, Concatenation, Split,
// Slice, DynamicSlice, Gather, Shape, ConstantOfShape, Fill, Range, Expand, Tile, Pad.
//
// All of them are dtype-generic (they move elements of 1, 2, 4 or 8 bytes). Two engines do most of the work:
//  - transpose(): collapses unit dims and dims that stay adjacent, then either copies whole rows with
//    memcpy (the permutation keeps the last dim) or runs a tiled 2-D transpose of the two contiguous dims;
//  - copy_by_tables(): out[i0, .., ir] = in[off0[i0] + .. + offr[ir]] with per-axis element-offset tables,
//    where a negative entry writes a fill value. Slice (every mode), DynamicSlice, Expand, Tile and Pad are
//    just different tables.
// Both split the output over the thread pool when it is large. (Gather's fused addend is the one piece of
// arithmetic here: gather_addend.h.)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/gather_addend.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL
#include "ir/slice_range.h"
#include "ir/transpose_collapse.h"

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

constexpr int64_t kTaskBytes = 64 << 10;  // smallest amount of work worth a task

void parallel(ThreadPool* pool, int64_t n, int64_t bytes_per_item, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int64_t grain = std::max<int64_t>(1, kTaskBytes / std::max<int64_t>(1, bytes_per_item));
  if (!pool || n <= grain || pool->num_threads() <= 1) {
    fn(0, n);
    return;
  }
  pool->parallel_for(n, grain, fn);
}

// Calls f(T{}) with an unsigned type of the element size.
template <class F>
void with_elem(const KernelContext& ctx, size_t es, F&& f) {
  switch (es) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: ctx.fail("unsupported element size " + std::to_string(es));
  }
}

void copy_bytes(void* dst, const void* src, size_t n, ThreadPool* pool) {
  if (dst == src || n == 0) return;
  constexpr int64_t kChunk = 1 << 20;
  int64_t chunks = static_cast<int64_t>((n + kChunk - 1) / kChunk);
  parallel(pool, chunks, kChunk, [&](int64_t b, int64_t e) {
    size_t begin = static_cast<size_t>(b * kChunk), end = std::min(n, static_cast<size_t>(e * kChunk));
    std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, end - begin);
  });
}

// Writes `v` converted to dtype `dt` at dst.
void store_scalar(const KernelContext& ctx, double v, DataType dt, void* dst) {
  switch (dt) {
    case DataType::kFLOAT: { float f = static_cast<float>(v); std::memcpy(dst, &f, 4); break; }
    case DataType::kDOUBLE: std::memcpy(dst, &v, 8); break;
    case DataType::kHALF: { uint16_t h = float_to_half(static_cast<float>(v)); std::memcpy(dst, &h, 2); break; }
    case DataType::kBF16: { uint16_t h = float_to_bf16(static_cast<float>(v)); std::memcpy(dst, &h, 2); break; }
    case DataType::kINT8: { int8_t i = static_cast<int8_t>(v); std::memcpy(dst, &i, 1); break; }
    case DataType::kUINT8: { uint8_t i = static_cast<uint8_t>(v); std::memcpy(dst, &i, 1); break; }
    case DataType::kBOOL: { uint8_t i = v != 0; std::memcpy(dst, &i, 1); break; }
    case DataType::kINT32: { int32_t i = static_cast<int32_t>(v); std::memcpy(dst, &i, 4); break; }
    case DataType::kINT64: { int64_t i = static_cast<int64_t>(v); std::memcpy(dst, &i, 8); break; }
    default: ctx.fail(std::string("cannot write a value of dtype ") + dtype_name(dt));
  }
}

// One element of `src` (any dtype) as the bytes of dtype `dt` (exact when the dtypes match).
void scalar_as(const KernelContext& ctx, const TensorRef& src, DataType dt, void* dst) {
  if (src.numel() < 1) ctx.fail("the scalar value input is empty");
  if (src.dtype == dt) std::memcpy(dst, src.data, dtype_size(dt));
  else store_scalar(ctx, src.get_f64(0), dt, dst);
}

// Reads an integer tensor (int32/int64 fast; any other integer dtype through get_i64).
Ints read_ints(const TensorRef& t) {
  Ints v(static_cast<size_t>(t.numel()));
  if (t.dtype == DataType::kINT64) std::memcpy(v.data(), t.data, v.size() * 8);
  else if (t.dtype == DataType::kINT32) std::copy(t.as<int32_t>(), t.as<int32_t>() + v.size(), v.begin());
  else v = t.to_i64();
  return v;
}

int64_t norm_axis(const KernelContext& ctx, int64_t axis, int64_t rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    ctx.fail("axis " + std::to_string(axis) + " is out of range for a " + std::to_string(rank) + "-D tensor");
  return a;
}

int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  int64_t p = 2 * (n - 1);
  i %= p;
  if (i < 0) i += p;
  return i < n ? i : p - i;
}
int64_t wrap_index(int64_t i, int64_t n) {
  i %= n;
  return i < 0 ? i + n : i;
}

// ---------------------------------------------------------------------------------------------------------
// out[i_0..i_{r-1}] = in[sum_d off[d][i_d]] (element offsets), or *fill where any off[d][i_d] < 0.
void copy_by_tables(const KernelContext& ctx, const void* in, void* out, const Dims& out_shape,
                    const std::vector<Ints>& off, size_t es, const void* fill) {
  int64_t total = volume(out_shape);
  if (total <= 0) return;
  size_t r = out_shape.size();
  if (r == 0) {
    std::memcpy(out, in, es);
    return;
  }
  int64_t W = out_shape[r - 1];
  int64_t rows = total / W;
  const Ints& last = off[r - 1];
  bool contiguous = last[0] >= 0;
  for (int64_t i = 1; i < W && contiguous; ++i) contiguous = last[i] == last[0] + i;
  with_elem(ctx, es, [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(in);
    T* dst = static_cast<T*>(out);
    T fv{};
    if (fill) std::memcpy(&fv, fill, es);
    parallel(ctx.pool, rows, W * static_cast<int64_t>(es), [&](int64_t b, int64_t e) {
      Ints idx(r - 1, 0);
      for (int64_t d = static_cast<int64_t>(r) - 2, rem = b; d >= 0; --d) {
        idx[d] = rem % out_shape[d];
        rem /= out_shape[d];
      }
      for (int64_t row = b; row < e; ++row) {
        int64_t base = 0;
        bool filled = false;
        for (size_t d = 0; d + 1 < r; ++d) {
          int64_t o = off[d][idx[d]];
          filled |= o < 0;
          base += o;
        }
        T* y = dst + row * W;
        if (filled) {
          std::fill(y, y + W, fv);
        } else if (contiguous) {
          std::memcpy(y, src + base + last[0], static_cast<size_t>(W) * es);
        } else {
          for (int64_t i = 0; i < W; ++i) {
            int64_t o = last[i];
            y[i] = o < 0 ? fv : src[base + o];
          }
        }
        for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; --d) {
          if (++idx[d] < out_shape[d]) break;
          idx[d] = 0;
        }
      }
    });
  });
}

// y[a * osa + b] = s[a + b * sb] for a < na, b < nb: one tile of a 2-D transpose. 4-byte elements go
// through 4x4 SSE register transposes (bit-exact shuffles); the rest, and the tile edges, are scalar.
template <class T>
void transpose_tile(const T* s, T* y, int64_t na, int64_t nb, int64_t sb, int64_t osa) {
  int64_t a4 = 0, b4 = 0;
#if defined(__SSE2__)
  if constexpr (sizeof(T) == 4) {
    a4 = na / 4 * 4;
    b4 = nb / 4 * 4;
    for (int64_t b = 0; b < b4; b += 4)
      for (int64_t a = 0; a < a4; a += 4) {
        const float* p = reinterpret_cast<const float*>(s + a + b * sb);
        __m128 r0 = _mm_loadu_ps(p), r1 = _mm_loadu_ps(p + sb), r2 = _mm_loadu_ps(p + 2 * sb),
               r3 = _mm_loadu_ps(p + 3 * sb);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        float* q = reinterpret_cast<float*>(y + a * osa + b);
        _mm_storeu_ps(q, r0);
        _mm_storeu_ps(q + osa, r1);
        _mm_storeu_ps(q + 2 * osa, r2);
        _mm_storeu_ps(q + 3 * osa, r3);
      }
  }
#endif
  for (int64_t a = 0; a < na; ++a) {
    const T* p = s + a;
    T* q = y + a * osa;
    for (int64_t b = a < a4 ? b4 : 0; b < nb; ++b) q[b] = p[b * sb];
  }
}

// ---------------------------------------------------------------------------------------------------------
// out = transpose(in) with out dim j = in dim perm[j].
void transpose(const KernelContext& ctx, const void* in, void* out, const Dims& shape, const Ints& perm, size_t es) {
  int64_t total = volume(shape);
  if (total <= 0) return;
  const ir::CollapsedTranspose c = ir::collapse_transpose(shape, perm);
  const size_t m = c.in_dims.size();
  if (m <= 1) {
    copy_bytes(out, in, static_cast<size_t>(total) * es, ctx.pool);
    return;
  }
  const Dims& id = c.in_dims;
  const Ints& p = c.perm;  // output dim j -> collapsed input dim
  Ints is = strides_of(id);
  Dims od(m);
  Ints isj(m);
  for (size_t j = 0; j < m; ++j) {
    od[j] = id[p[j]];
    isj[j] = is[p[j]];
  }
  Ints os = strides_of(od);
  with_elem(ctx, es, [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(in);
    T* dst = static_cast<T*>(out);
    if (p[m - 1] == static_cast<int64_t>(m) - 1) {
      // The last dim stays last: copy rows.
      int64_t W = od[m - 1], rows = total / W;
      parallel(ctx.pool, rows, W * static_cast<int64_t>(es), [&](int64_t b, int64_t e) {
        Ints idx(m - 1, 0);
        for (int64_t d = static_cast<int64_t>(m) - 2, rem = b; d >= 0; --d) {
          idx[d] = rem % od[d];
          rem /= od[d];
        }
        for (int64_t row = b; row < e; ++row) {
          int64_t so = 0;
          for (size_t d = 0; d + 1 < m; ++d) so += idx[d] * isj[d];
          std::memcpy(dst + row * W, src + so, static_cast<size_t>(W) * sizeof(T));
          for (int64_t d = static_cast<int64_t>(m) - 2; d >= 0; --d) {
            if (++idx[d] < od[d]) break;
            idx[d] = 0;
          }
        }
      });
      return;
    }
    // Tiled 2-D transpose of the output's last dim (B, input stride sb) and the input's last dim (output
    // position ja, A elements, output stride osa); the remaining dims are an outer loop.
    constexpr int64_t kTile = sizeof(T) >= 4 ? 32 : 64;
    size_t ja = 0;
    while (p[ja] != static_cast<int64_t>(m) - 1) ++ja;
    int64_t A = od[ja], B = od[m - 1], sb = isj[m - 1], osa = os[ja];
    Ints odims, oin, oout;
    for (size_t j = 0; j + 1 < m; ++j)
      if (j != ja) {
        odims.push_back(od[j]);
        oin.push_back(isj[j]);
        oout.push_back(os[j]);
      }
    int64_t outer = 1;
    for (int64_t v : odims) outer *= v;
    int64_t ta = (A + kTile - 1) / kTile;
    parallel(ctx.pool, outer * ta, kTile * B * static_cast<int64_t>(sizeof(T)), [&](int64_t ub, int64_t ue) {
      for (int64_t u = ub; u < ue; ++u) {
        int64_t o = u / ta, at = u % ta;
        int64_t ibase = 0, obase = 0;
        for (int64_t d = static_cast<int64_t>(odims.size()) - 1; d >= 0; --d) {
          int64_t c = o % odims[d];
          o /= odims[d];
          ibase += c * oin[d];
          obase += c * oout[d];
        }
        int64_t a0 = at * kTile, a1 = std::min(A, a0 + kTile);
        for (int64_t b0 = 0; b0 < B; b0 += kTile)
          transpose_tile(src + ibase + a0 + b0 * sb, dst + obase + a0 * osa + b0, a1 - a0, std::min(B, b0 + kTile) - b0,
                         sb, osa);
      }
    });
  });
}

bool is_identity(const Ints& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
void k_constant(KernelContext& ctx) {
  const HostTensor& v = ctx.attrs().tensor("value");
  if (v.nbytes() != ctx.out[0].nbytes()) ctx.fail("the constant's size does not match its output");
  copy_bytes(ctx.out[0].data, v.raw(), v.nbytes(), ctx.pool);
}

void k_copy(KernelContext& ctx) {  // Squeeze, Unsqueeze: same bytes, new shape
  const TensorRef& x = ctx.input(0);
  copy_bytes(ctx.out[0].data, x.data, x.nbytes(), ctx.pool);
}

void k_shuffle(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  size_t es = dtype_size(x.dtype);
  Ints p1 = ctx.attrs().ints("first_transpose"), p2 = ctx.attrs().ints("second_transpose");
  bool t1 = !is_identity(p1), t2 = !is_identity(p2);
  if (t1 && p1.size() != x.shape.size()) ctx.fail("first_transpose does not match the input rank");
  if (t2 && p2.size() != y.shape.size()) ctx.fail("second_transpose does not match the output rank");
  if (!t1 && !t2) {
    copy_bytes(y.data, x.data, x.nbytes(), ctx.pool);
    return;
  }
  // The reshaped (pre-second-transpose) shape: the output shape with the second permutation undone.
  Dims mid = y.shape;
  if (t2)
    for (size_t i = 0; i < p2.size(); ++i) mid[p2[i]] = y.shape[i];
  if (t1 && !t2) {
    transpose(ctx, x.data, y.data, x.shape, p1, es);
  } else if (!t1) {
    transpose(ctx, x.data, y.data, mid, p2, es);
  } else {
    HostTensor tmp(x.dtype, {x.numel()});
    transpose(ctx, x.data, tmp.mutable_raw(), x.shape, p1, es);
    transpose(ctx, tmp.raw(), y.data, mid, p2, es);
  }
}

void k_concat(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  int64_t r = static_cast<int64_t>(y.shape.size());
  int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), r);
  size_t es = dtype_size(y.dtype);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= y.shape[d];
  for (int64_t d = axis + 1; d < r; ++d) inner *= y.shape[d];
  int64_t row = y.shape[axis] * inner * static_cast<int64_t>(es);
  std::vector<std::pair<const char*, int64_t>> parts;  // data, bytes per outer row
  int64_t sum = 0;
  for (size_t k = 0; k < ctx.in.size(); ++k) {
    const TensorRef& t = ctx.input(k);
    int64_t n = t.shape[axis] * inner * static_cast<int64_t>(es);
    parts.push_back({static_cast<const char*>(t.data), n});
    sum += n;
  }
  if (sum != row) ctx.fail("the inputs do not add up to the output along the axis");
  char* dst = static_cast<char*>(y.data);
  if (outer == 1) {
    for (auto& [p, n] : parts) {
      copy_bytes(dst, p, static_cast<size_t>(n), ctx.pool);
      dst += n;
    }
    return;
  }
  parallel(ctx.pool, outer, row, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      char* d = dst + o * row;
      for (auto& [p, n] : parts) {
        std::memcpy(d, p + o * n, static_cast<size_t>(n));
        d += n;
      }
    }
  });
}

void k_split(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  int64_t r = static_cast<int64_t>(x.shape.size());
  int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), r);
  size_t es = dtype_size(x.dtype);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (int64_t d = axis + 1; d < r; ++d) inner *= x.shape[d];
  int64_t row = x.shape[axis] * inner * static_cast<int64_t>(es);
  std::vector<std::pair<char*, int64_t>> parts;
  int64_t sum = 0;
  for (auto& o : ctx.out) {
    int64_t n = o.shape[axis] * inner * static_cast<int64_t>(es);
    parts.push_back({static_cast<char*>(o.data), n});
    sum += n;
  }
  if (sum != row) ctx.fail("the outputs do not add up to the input along the axis");
  const char* src = static_cast<const char*>(x.data);
  parallel(ctx.pool, outer, row, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const char* s = src + o * row;
      for (auto& [p, n] : parts) {
        std::memcpy(p + o * n, s, static_cast<size_t>(n));
        s += n;
      }
    }
  });
}

// TensorRT slice: out[i] = x[start + i*stride] per axis; the mode decides out-of-range reads.
void k_slice(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  size_t r = x.shape.size();
  int64_t mode = ctx.attrs().i("mode", 0);
  Ints start = ctx.has_input(1) ? read_ints(ctx.in[1]) : ctx.attrs().ints("start", Ints(r, 0));
  Ints stride = ctx.has_input(3) ? read_ints(ctx.in[3]) : ctx.attrs().ints("stride", Ints(r, 1));
  if (start.size() != r || stride.size() != r || y.shape.size() != r)
    ctx.fail("start/stride/size must have one value per input dim (" + std::to_string(r) + ")");
  size_t es = dtype_size(x.dtype);
  uint64_t fill = 0;
  if (mode == 3 && ctx.has_input(4)) scalar_as(ctx, ctx.in[4], x.dtype, &fill);
  Ints xs = strides_of(x.shape);
  std::vector<Ints> tabs(r);
  for (size_t d = 0; d < r; ++d) {
    int64_t n = x.shape[d];
    tabs[d].resize(static_cast<size_t>(y.shape[d]));
    for (int64_t i = 0; i < y.shape[d]; ++i) {
      int64_t idx = start[d] + i * stride[d];
      if (idx < 0 || idx >= n) {
        if (mode == 0)
          ctx.fail("index " + std::to_string(idx) + " on axis " + std::to_string(d) + " is outside [0, " +
                   std::to_string(n) + ") (mode STRICT_BOUNDS)");
        if (n == 0 && mode != 3) ctx.fail("cannot slice the empty axis " + std::to_string(d) + " in this mode");
        if (mode == 1) idx = wrap_index(idx, n);
        else if (mode == 2) idx = std::clamp<int64_t>(idx, 0, n - 1);
        else if (mode == 3) idx = -1;
        else idx = reflect_index(idx, n);
      }
      tabs[d][i] = idx < 0 ? -1 : idx * xs[d];
    }
  }
  copy_by_tables(ctx, x.data, y.data, y.shape, tabs, es, &fill);
}

// ONNX Slice.
void k_dynamic_slice(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  int64_t r = static_cast<int64_t>(x.shape.size());
  Ints starts = read_ints(ctx.input(1)), ends = read_ints(ctx.input(2));
  size_t n = starts.size();
  Ints axes, steps;
  if (ctx.has_input(3)) axes = read_ints(ctx.in[3]);
  else for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  steps = ctx.has_input(4) ? read_ints(ctx.in[4]) : Ints(n, 1);
  if (ends.size() != n || axes.size() != n || steps.size() != n)
    ctx.fail("starts, ends, axes and steps must have the same length");
  Ints begin(r, 0), step(r, 1);
  for (size_t i = 0; i < n; ++i) {
    int64_t ax = norm_axis(ctx, axes[i], r);
    const int64_t st = steps[i];
    if (st == 0) ctx.fail("slice step on axis " + std::to_string(ax) + " is 0");
    const ir::SliceRange sr = ir::onnx_slice_range(x.shape[ax], starts[i], ends[i], st);
    if (sr.length != y.shape[ax])
      ctx.fail("axis " + std::to_string(ax) + " slices to " + std::to_string(sr.length) +
               " elements, the output has " + std::to_string(y.shape[ax]));
    begin[ax] = sr.start;
    step[ax] = st;
  }
  Ints xs = strides_of(x.shape);
  std::vector<Ints> tabs(r);
  for (int64_t d = 0; d < r; ++d) {
    tabs[d].resize(static_cast<size_t>(y.shape[d]));
    for (int64_t i = 0; i < y.shape[d]; ++i) tabs[d][i] = (begin[d] + i * step[d]) * xs[d];
  }
  copy_by_tables(ctx, x.data, y.data, y.shape, tabs, dtype_size(x.dtype), nullptr);
}

// ---------------------------------------------------------------------------------------------------------
int64_t checked_index(const KernelContext& ctx, int64_t i, int64_t n, int64_t axis) {
  if (i < -n || i >= n)
    ctx.fail("index " + std::to_string(i) + " is out of range for axis " + std::to_string(axis) + " of size " +
             std::to_string(n));
  return i < 0 ? i + n : i;
}

void k_gather(KernelContext& ctx) {
  const TensorRef& data = ctx.input(0);
  const TensorRef& indices = ctx.input(1);
  TensorRef& y = ctx.out[0];
  int64_t r = static_cast<int64_t>(data.shape.size());
  int64_t mode = ctx.attrs().i("mode", 0);
  size_t es = dtype_size(data.dtype);
  Ints ix = read_ints(indices);
  Ints ds = strides_of(data.shape);
  const char* src = static_cast<const char*>(data.data);
  char* dst = static_cast<char*>(y.data);
  if (ctx.has_input(2) && mode != 0) ctx.fail("an addend (input 2) needs rows gathered along axis 0 in DEFAULT mode");
  if (mode == 0) {
    int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), r);
    int64_t N = data.shape[axis], inner = ds[axis], outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= data.shape[d];
    std::optional<GatherAddend> addend;  // the fused addend (ir/OPS.md); its checks refuse other axes
    std::vector<char> scratch;           // the gathered rows, when the addend is added by elements
    if (ctx.has_input(2)) {
      Dims gathered = indices.shape;
      gathered.insert(gathered.end(), data.shape.begin() + 1, data.shape.end());
      addend.emplace(ctx, data, gathered, y);
      if (!addend->by_rows()) {
        scratch.resize(static_cast<size_t>(volume(gathered)) * es);
        dst = scratch.data();
      }
    }
    for (auto& v : ix) v = checked_index(ctx, v, N, axis);
    int64_t nidx = static_cast<int64_t>(ix.size());
    size_t row = static_cast<size_t>(inner) * es;
    const bool rows_add = addend && addend->by_rows();
    parallel(ctx.pool, outer * nidx, static_cast<int64_t>(row), [&](int64_t b, int64_t e) {
      for (int64_t u = b; u < e; ++u) {
        int64_t o = u / nidx, j = u % nidx;
        std::memcpy(dst + u * row, src + (o * N + ix[j]) * row, row);
        if (rows_add) addend->add_to(dst + u * row, u);
      }
    });
    if (addend && !addend->by_rows()) addend->add_broadcast(scratch.data(), y, ctx.pool);
  } else if (mode == 1) {
    int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), r);
    const Dims& is = indices.shape;
    int64_t W = r ? is[r - 1] : 1, total = indices.numel();
    if (total == 0) return;
    int64_t rows = total / W, N = data.shape[axis];
    with_elem(ctx, es, [&](auto tag) {
      using T = decltype(tag);
      const T* s = reinterpret_cast<const T*>(src);
      T* out = reinterpret_cast<T*>(dst);
      parallel(ctx.pool, rows, W * static_cast<int64_t>(es), [&](int64_t b, int64_t e) {
        for (int64_t row = b; row < e; ++row) {
          int64_t base = 0, rem = row;
          for (int64_t d = r - 2; d >= 0; --d) {
            int64_t c = rem % is[d];
            rem /= is[d];
            if (d != axis) base += c * ds[d];
          }
          for (int64_t i = 0; i < W; ++i) {
            int64_t k = row * W + i;
            int64_t v = checked_index(ctx, ix[k], N, axis);
            int64_t off = base + v * ds[axis] + (axis == r - 1 ? 0 : i);
            out[k] = s[off];
          }
        }
      });
    });
  } else if (mode == 2) {
    int64_t b = ctx.attrs().i("num_elementwise_dims", 0);
    const Dims& is = indices.shape;
    int64_t q = static_cast<int64_t>(is.size()), k = is[q - 1];
    int64_t B = 1, M = 1;
    for (int64_t d = 0; d < b; ++d) B *= is[d];
    for (int64_t d = b; d < q - 1; ++d) M *= is[d];
    int64_t slice = 1;
    for (int64_t d = b + k; d < r; ++d) slice *= data.shape[d];
    int64_t batch_stride = b > 0 ? ds[b - 1] : 0;
    size_t row = static_cast<size_t>(slice) * es;
    parallel(ctx.pool, B * M, static_cast<int64_t>(row), [&](int64_t ub, int64_t ue) {
      for (int64_t u = ub; u < ue; ++u) {
        int64_t bi = u / M;
        int64_t off = bi * batch_stride;
        for (int64_t j = 0; j < k; ++j) off += checked_index(ctx, ix[u * k + j], data.shape[b + j], b + j) * ds[b + j];
        std::memcpy(dst + u * row, src + off * static_cast<int64_t>(es), row);
      }
    });
  } else {
    ctx.fail("unknown gather mode " + std::to_string(mode));
  }
}

// ---------------------------------------------------------------------------------------------------------
void k_shape(KernelContext& ctx) {
  const Dims& s = ctx.input(0).shape;
  int64_t r = static_cast<int64_t>(s.size());
  int64_t b = ctx.attrs().i("start", 0), e = ctx.attrs().i("end", r);
  if (b < 0) b += r;
  if (e < 0) e += r;
  b = std::clamp<int64_t>(b, 0, r);
  e = std::clamp<int64_t>(e, 0, r);
  int64_t* y = ctx.out[0].as<int64_t>();
  for (int64_t i = b; i < e; ++i) y[i - b] = s[i];
}

void fill_with(const KernelContext& ctx, TensorRef& y, const void* value) {
  with_elem(ctx, dtype_size(y.dtype), [&](auto tag) {
    using T = decltype(tag);
    T v;
    std::memcpy(&v, value, sizeof(T));
    T* p = y.as<T>();
    parallel(ctx.pool, y.numel(), sizeof(T), [&](int64_t b, int64_t e) { std::fill(p + b, p + e, v); });
  });
}

void k_constant_of_shape(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  uint64_t v = 0;
  if (ctx.attrs().has("value")) {
    const HostTensor& t = ctx.attrs().tensor("value");
    if (t.numel() != 1 || t.dtype() != y.dtype) ctx.fail("the 'value' attribute must be one element of the output dtype");
    std::memcpy(&v, t.raw(), dtype_size(y.dtype));
  }
  fill_with(ctx, y, &v);
}

void k_fill(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  int64_t op = ctx.attrs().i("op", 0);
  double alpha = ctx.has_input(1) ? ctx.in[1].get_f64(0) : ctx.attrs().f("alpha", 0.0);
  std::vector<double> beta;
  if (ctx.has_input(2)) {
    for (int64_t i = 0; i < ctx.in[2].numel(); ++i) beta.push_back(ctx.in[2].get_f64(i));
  } else {
    beta = ctx.attrs().floats("beta", {1.0});
  }
  size_t es = dtype_size(y.dtype);
  char* dst = static_cast<char*>(y.data);
  int64_t n = y.numel();
  if (op == 0) {
    size_t r = y.shape.size();
    if (r > 0 && beta.size() != r)
      ctx.fail("LINSPACE needs one beta per output dim (" + std::to_string(r) + "), got " + std::to_string(beta.size()));
    Ints idx(r, 0);
    for (int64_t i = 0; i < n; ++i) {
      double v = alpha;
      for (size_t d = 0; d < r; ++d) v += beta[d] * static_cast<double>(idx[d]);
      store_scalar(ctx, v, y.dtype, dst + i * static_cast<int64_t>(es));
      for (int64_t d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
        if (++idx[d] < y.shape[d]) break;
        idx[d] = 0;
      }
    }
  } else {
    double b0 = beta.empty() ? 1.0 : beta[0];
    std::mt19937_64 rng(static_cast<uint64_t>(ctx.attrs().i("seed", 0)));
    std::uniform_real_distribution<double> uni(alpha, b0);
    std::normal_distribution<double> nor(alpha, b0);
    for (int64_t i = 0; i < n; ++i)
      store_scalar(ctx, op == 1 ? uni(rng) : nor(rng), y.dtype, dst + i * static_cast<int64_t>(es));
  }
}

template <class T>
void range_typed(const KernelContext& ctx, TensorRef& y) {
  T start = *ctx.input(0).as<T>(), delta = *ctx.input(2).as<T>();
  T* p = y.as<T>();
  for (int64_t i = 0; i < y.numel(); ++i) p[i] = static_cast<T>(start + static_cast<T>(i) * delta);
}

void k_range(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  switch (y.dtype) {
    case DataType::kFLOAT: range_typed<float>(ctx, y); break;
    case DataType::kDOUBLE: range_typed<double>(ctx, y); break;
    case DataType::kINT32: range_typed<int32_t>(ctx, y); break;
    case DataType::kINT64: range_typed<int64_t>(ctx, y); break;
    default: ctx.fail(std::string("unsupported dtype ") + dtype_name(y.dtype));
  }
}

// ---------------------------------------------------------------------------------------------------------
void k_expand(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  int64_t R = static_cast<int64_t>(y.shape.size()), rx = static_cast<int64_t>(x.shape.size());
  Ints xs = strides_of(x.shape);
  std::vector<Ints> tabs(R);
  for (int64_t d = 0; d < R; ++d) {
    int64_t xd = d - (R - rx);
    int64_t n = xd >= 0 ? x.shape[xd] : 1;
    if (n != 1 && n != y.shape[d]) ctx.fail("cannot expand " + dims_str(x.shape) + " to " + dims_str(y.shape));
    tabs[d].resize(static_cast<size_t>(y.shape[d]));
    for (int64_t i = 0; i < y.shape[d]; ++i) tabs[d][i] = n == 1 ? 0 : i * xs[xd];
  }
  copy_by_tables(ctx, x.data, y.data, y.shape, tabs, dtype_size(x.dtype), nullptr);
}

void k_tile(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  size_t r = x.shape.size();
  Ints xs = strides_of(x.shape);
  std::vector<Ints> tabs(r);
  for (size_t d = 0; d < r; ++d) {
    tabs[d].resize(static_cast<size_t>(y.shape[d]));
    for (int64_t i = 0; i < y.shape[d]; ++i) tabs[d][i] = (i % x.shape[d]) * xs[d];
  }
  copy_by_tables(ctx, x.data, y.data, y.shape, tabs, dtype_size(x.dtype), nullptr);
}

void k_pad(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  int64_t r = static_cast<int64_t>(x.shape.size());
  std::string mode = ctx.attrs().s("mode", "constant");
  Ints axes;
  if (ctx.has_input(3)) axes = read_ints(ctx.in[3]);
  else for (int64_t d = 0; d < r; ++d) axes.push_back(d);
  Ints pads = ctx.has_input(1) ? read_ints(ctx.in[1]) : ctx.attrs().ints("pads", Ints(2 * axes.size(), 0));
  size_t n = axes.size();
  if (pads.size() != 2 * n) ctx.fail("expected " + std::to_string(2 * n) + " pads, got " + std::to_string(pads.size()));
  Ints begin(r, 0);
  for (size_t i = 0; i < n; ++i) begin[norm_axis(ctx, axes[i], r)] = pads[i];
  uint64_t fill = 0;
  if (ctx.has_input(2) && ctx.in[2].numel() == 1) scalar_as(ctx, ctx.in[2], x.dtype, &fill);
  else store_scalar(ctx, ctx.attrs().f("value", 0.0), x.dtype, &fill);
  Ints xs = strides_of(x.shape);
  std::vector<Ints> tabs(r);
  for (int64_t d = 0; d < r; ++d) {
    int64_t dim = x.shape[d];
    tabs[d].resize(static_cast<size_t>(y.shape[d]));
    for (int64_t i = 0; i < y.shape[d]; ++i) {
      int64_t idx = i - begin[d];
      if (idx < 0 || idx >= dim) {
        if (mode == "constant") idx = -1;
        else if (dim == 0) ctx.fail("cannot pad the empty axis " + std::to_string(d) + " in mode '" + mode + "'");
        else if (mode == "reflect") idx = reflect_index(idx, dim);
        else if (mode == "edge") idx = std::clamp<int64_t>(idx, 0, dim - 1);
        else if (mode == "wrap") idx = wrap_index(idx, dim);
        else ctx.fail("unknown pad mode '" + mode + "'");
      }
      tabs[d][i] = idx < 0 ? -1 : idx * xs[d];
    }
  }
  copy_by_tables(ctx, x.data, y.data, y.shape, tabs, dtype_size(x.dtype), &fill);
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("Constant", &k_constant);
KILN_REGISTER_CPU_KERNEL("Shuffle", &k_shuffle);
KILN_REGISTER_CPU_KERNEL("Squeeze", &k_copy);
KILN_REGISTER_CPU_KERNEL("Unsqueeze", &k_copy);
KILN_REGISTER_CPU_KERNEL("Concatenation", &k_concat);
KILN_REGISTER_CPU_KERNEL("Split", &k_split);
KILN_REGISTER_CPU_KERNEL("Slice", &k_slice);
KILN_REGISTER_CPU_KERNEL("DynamicSlice", &k_dynamic_slice);
KILN_REGISTER_CPU_KERNEL("Gather", &k_gather);
KILN_REGISTER_CPU_KERNEL("Shape", &k_shape);
KILN_REGISTER_CPU_KERNEL("ConstantOfShape", &k_constant_of_shape);
KILN_REGISTER_CPU_KERNEL("Fill", &k_fill);
KILN_REGISTER_CPU_KERNEL("Range", &k_range);
KILN_REGISTER_CPU_KERNEL("Expand", &k_expand);
KILN_REGISTER_CPU_KERNEL("Tile", &k_tile);
KILN_REGISTER_CPU_KERNEL("Pad", &k_pad);

}  // namespace kiln::cpu
