// CUDA kernels for the data-movement ops: Shuffle (transpose / reshape / transpose), Concatenation, Split,
// Slice (every mode), DynamicSlice, Expand, Tile and Pad. All are dtype-generic (elements of 1, 2, 4 or 8
// bytes). Semantics as src/backends/cpu/kernels/data_movement.cpp.
//
//  - Shuffle's transposes run in transpose.cu (collapsed dims; vector row copies when the last dim stays,
//    shared-memory tiles shaped to the two swapped extents when it moves); a reshape alone is one
//    cudaMemcpyAsync.
//  - Concatenation/Split copy [outer, bytes] blocks with the widest unit (up to 16 bytes) that divides
//    every width, offset and pointer.
//  - Slice, DynamicSlice, Expand, Tile and Pad are IndexMaps (index_map.cuh).
// Parameter tensors (starts, pads, repeats, ...) are read from their host copies.
#include <algorithm>

#include "backends/cuda/kernels/index_map.cuh"
#include "backends/cuda/kernels/transpose.cuh"
#include "ir/slice_range.h"

namespace kiln::cuda::kern {

// ============================================== IndexMap host side ========================================

namespace {
bool g_index_map_force_64bit = false;
}  // namespace

void set_index_map_force_64bit_index(bool on) { g_index_map_force_64bit = on; }

void launch_index_map(const KernelContext& ctx, const void* x, void* y, int64_t n, size_t es, const IndexMap& m) {
  if (n <= 0) return;
  if (m.rank > kMaxDims) ctx.fail("the CUDA kernel handles at most " + std::to_string(kMaxDims) + " dims");
  const IndexMap c = collapse_identity_axes(m);
  const bool narrow = !g_index_map_force_64bit && index_map_fits_int32(c, n);
  const bool ok = dispatch_size(es, [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x);
    T* ys = static_cast<T*>(y);
    if (narrow) k_index_map<T, int32_t><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(xs, ys, n, c);
    else k_index_map<T, int64_t><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(xs, ys, n, c);
    KILN_CUDA_LAUNCH_CHECK();
  });
  if (!ok) ctx.fail("unsupported element size " + std::to_string(es));
}

IndexMap identity_map(const KernelContext& ctx, const Dims& in_shape, const Dims& out_shape) {
  if (in_shape.size() != out_shape.size())
    ctx.fail("input " + dims_str(in_shape) + " and output " + dims_str(out_shape) + " ranks differ");
  if (out_shape.size() > static_cast<size_t>(kMaxDims))
    ctx.fail("the CUDA kernel handles at most " + std::to_string(kMaxDims) + " dims, got " + dims_str(out_shape));
  IndexMap m;
  m.rank = static_cast<int>(out_shape.size());
  const Dims st = contiguous_strides(in_shape);
  for (int d = 0; d < m.rank; ++d) {
    m.ax[d].out_dim = out_shape[d];
    m.ax[d].in_dim = in_shape[d];
    m.ax[d].in_stride = st[d];
  }
  return m;
}

std::vector<int64_t> host_ints(const KernelContext& ctx, size_t i) {
  const TensorRef& t = ctx.input(i);
  if (!t.host) ctx.fail("input " + std::to_string(i) + " must be known on the host (a constant or a shape computation)");
  try {
    return t.host_i64();
  } catch (const Error& e) {
    ctx.fail("input " + std::to_string(i) + ": " + e.what());
  }
}

uint64_t scalar_bits(const KernelContext& ctx, double v, DataType dt) {
  uint64_t b = 0;
  switch (dt) {
    case DataType::kFLOAT: { float f = static_cast<float>(v); std::memcpy(&b, &f, 4); break; }
    case DataType::kDOUBLE: std::memcpy(&b, &v, 8); break;
    case DataType::kHALF: { uint16_t h = float_to_half(static_cast<float>(v)); std::memcpy(&b, &h, 2); break; }
    case DataType::kBF16: { uint16_t h = float_to_bf16(static_cast<float>(v)); std::memcpy(&b, &h, 2); break; }
    case DataType::kINT8: { int8_t i = static_cast<int8_t>(v); std::memcpy(&b, &i, 1); break; }
    case DataType::kUINT8: { uint8_t i = static_cast<uint8_t>(v); std::memcpy(&b, &i, 1); break; }
    case DataType::kBOOL: b = v != 0; break;
    case DataType::kINT32: { int32_t i = static_cast<int32_t>(v); std::memcpy(&b, &i, 4); break; }
    case DataType::kINT64: { int64_t i = static_cast<int64_t>(v); std::memcpy(&b, &i, 8); break; }
    default: ctx.fail(std::string("cannot write a value of dtype ") + dtype_name(dt));
  }
  return b;
}

bool host_scalar_bits(const KernelContext& ctx, size_t i, DataType dt, uint64_t* bits) {
  const TensorRef& t = ctx.input(i);
  if (t.numel() < 1) ctx.fail("input " + std::to_string(i) + " (a scalar value) is empty");
  if (!t.host) return false;
  if (t.dtype == dt) {
    *bits = 0;
    std::memcpy(bits, t.host, dtype_size(dt));
    return true;
  }
  double v;
  switch (t.dtype) {
    case DataType::kFLOAT: v = static_cast<const float*>(t.host)[0]; break;
    case DataType::kDOUBLE: v = static_cast<const double*>(t.host)[0]; break;
    case DataType::kHALF: v = half_to_float(static_cast<const uint16_t*>(t.host)[0]); break;
    case DataType::kBF16: v = bf16_to_float(static_cast<const uint16_t*>(t.host)[0]); break;
    default: v = static_cast<double>(t.host_i64()[0]); break;
  }
  *bits = scalar_bits(ctx, v, dt);
  return true;
}

namespace {

// The fill value of input i into m (host copy converted, or the device value when the dtypes match).
void set_fill(const KernelContext& ctx, size_t i, DataType dt, IndexMap& m) {
  if (host_scalar_bits(ctx, i, dt, &m.fill_bits)) return;
  if (ctx.in[i].dtype != dt)
    ctx.fail("the fill value (input " + std::to_string(i) + ") has dtype " + dtype_name(ctx.in[i].dtype) +
             " and no host copy; expected " + dtype_name(dt));
  m.fill_ptr = ctx.in[i].data;
}

// ================================================= Shuffle ===============================================

// Two transposes around a reshape that no single transpose expresses (fold_shuffle said no): output flat ->
// (walk a) flat index of the reshaped middle tensor, which is the flat index of transpose1(x) -> (walk b)
// offset in x.
template <class T>
__global__ void k_gather_walk2(const T* __restrict__ x, T* __restrict__ y, int64_t n, Walk<1> a, Walk<1> b) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t mid, off;
    a.offsets(i, &mid);
    b.offsets(mid, &off);
    y[i] = x[off];
  }
}

bool is_identity(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

// Any dtype of up to 8 bytes, up to kMaxDims dims (the index maps' limit).
bool supports_any_size(const ir::Node&, const std::vector<ir::TensorInfo>& in) {
  return !in.empty() && dtype_size(in[0].dtype) <= 8 && in[0].shape.size() <= static_cast<size_t>(kMaxDims);
}

void shuffle_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const size_t es = dtype_size(x.dtype);
  const std::vector<int64_t> p1 = ctx.attrs().ints("first_transpose"), p2 = ctx.attrs().ints("second_transpose");
  const bool t1 = !is_identity(p1), t2 = !is_identity(p2);
  if (t1 && !is_permutation(p1, x.shape.size()))
    ctx.fail("first_transpose " + dims_str(p1) + " is not a permutation of the input's " +
             std::to_string(x.shape.size()) + " dims");
  if (t2 && !is_permutation(p2, y.shape.size()))
    ctx.fail("second_transpose " + dims_str(p2) + " is not a permutation of the output's " +
             std::to_string(y.shape.size()) + " dims");
  if (x.numel() != y.numel()) ctx.fail("input and output sizes differ");
  if (!t1 && !t2) {
    if (x.data != y.data && x.nbytes())
      KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
    return;
  }
  // The reshaped (pre-second-transpose) shape: the output shape with the second permutation undone.
  Dims mid = y.shape;
  if (t2)
    for (size_t i = 0; i < p2.size(); ++i) mid[p2[i]] = y.shape[i];
  // A transpose then a reshape writes the transpose's bytes; a reshape then a transpose transposes the
  // reshaped view.
  if (t1 && !t2) return launch_transpose(ctx, x.data, y.data, x.shape, p1, es);
  if (!t1) return launch_transpose(ctx, x.data, y.data, mid, p2, es);
  const int64_t n = y.numel();
  if (n <= 0) return;
  // Both: one transpose of a view of x when the reshape only splits and merges dims, else one gather
  // through the two index maps.
  Dims folded_shape;
  std::vector<int64_t> folded_perm;
  if (fold_shuffle(x.shape, p1, mid, p2, &folded_shape, &folded_perm))
    return launch_transpose(ctx, x.data, y.data, folded_shape, folded_perm, es);
  const Dims ms = contiguous_strides(mid), xs = contiguous_strides(x.shape);
  Dims sa(y.shape.size()), t1dims(x.shape.size()), sb(x.shape.size());
  for (size_t j = 0; j < y.shape.size(); ++j) sa[j] = ms[p2[j]];
  for (size_t j = 0; j < x.shape.size(); ++j) {
    t1dims[j] = x.shape[p1[j]];
    sb[j] = xs[p1[j]];
  }
  const Walk<1> wa = make_walk<1>(ctx, y.shape, {sa}), wb = make_walk<1>(ctx, t1dims, {sb});
  dispatch_size(es, [&](auto tag) {
    using T = decltype(tag);
    k_gather_walk2<T><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(x.as<T>(), y.as<T>(), n, wa, wb);
    KILN_CUDA_LAUNCH_CHECK();
  });
}

// ============================================ Concatenation / Split ======================================

// dst[r * dpitch + c] = src[r * spitch + c] for c < width bytes, r < rows, in units of U.
template <class U>
__global__ void k_copy_rows(const U* __restrict__ src, int64_t spitch, U* __restrict__ dst, int64_t dpitch,
                            int64_t width, int64_t rows) {
  const int64_t n = width * rows;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t r = i / width, c = i - r * width;
    dst[r * dpitch + c] = src[r * spitch + c];
  }
}

// Copies rows of `width` bytes with the widest unit dividing every size and address.
void copy_rows(const KernelContext& ctx, const void* src, int64_t spitch, void* dst, int64_t dpitch, int64_t width,
               int64_t rows) {
  if (width <= 0 || rows <= 0) return;
  uint64_t g = static_cast<uint64_t>(width) | static_cast<uint64_t>(spitch) | static_cast<uint64_t>(dpitch) |
               reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst);
  int unit = 16;
  while (unit > 1 && (g % unit) != 0) unit /= 2;
  auto go = [&](auto tag) {
    using U = decltype(tag);
    const int64_t w = width / unit, n = w * rows;
    k_copy_rows<U><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(static_cast<const U*>(src), spitch / unit,
                                                                  static_cast<U*>(dst), dpitch / unit, w, rows);
    KILN_CUDA_LAUNCH_CHECK();
  };
  switch (unit) {
    case 16: go(uint4{}); break;
    case 8: go(uint2{}); break;
    case 4: go(uint32_t{}); break;
    case 2: go(uint16_t{}); break;
    default: go(uint8_t{}); break;
  }
}

void concat_kernel(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  const int64_t r = static_cast<int64_t>(y.shape.size());
  const int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), r);
  const int64_t es = static_cast<int64_t>(dtype_size(y.dtype));
  const int64_t outer = prod(y.shape, 0, axis), inner = prod(y.shape, axis + 1, r);
  const int64_t row = y.shape[axis] * inner * es;
  int64_t off = 0;
  for (size_t k = 0; k < ctx.in.size(); ++k) {
    const TensorRef& t = ctx.input(k);
    if (t.dtype != y.dtype) ctx.fail("input " + std::to_string(k) + " has dtype " + dtype_name(t.dtype));
    if (t.shape.size() != y.shape.size()) ctx.fail("input " + std::to_string(k) + " has the wrong rank");
    const int64_t w = t.shape[axis] * inner * es;
    if (off + w > row) ctx.fail("the inputs do not add up to the output along the axis");
    copy_rows(ctx, t.data, w, static_cast<char*>(y.data) + off, row, w, outer);
    off += w;
  }
  if (off != row) ctx.fail("the inputs do not add up to the output along the axis");
}

void split_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  const int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), r);
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype));
  const int64_t outer = prod(x.shape, 0, axis), inner = prod(x.shape, axis + 1, r);
  const int64_t row = x.shape[axis] * inner * es;
  int64_t off = 0;
  for (auto& o : ctx.out) {
    if (o.shape.size() != x.shape.size()) ctx.fail("an output has the wrong rank");
    const int64_t w = o.shape[axis] * inner * es;
    if (off + w > row) ctx.fail("the outputs do not add up to the input along the axis");
    copy_rows(ctx, static_cast<const char*>(x.data) + off, row, o.data, w, w, outer);
    off += w;
  }
  if (off != row) ctx.fail("the outputs do not add up to the input along the axis");
}

// ============================================== Slice family =============================================

// TensorRT slice: out[i] = x[start + i*stride] per axis; the mode decides out-of-range reads.
void slice_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const size_t r = x.shape.size();
  const int64_t mode = ctx.attrs().i("mode", 0);
  if (mode < 0 || mode > 4) ctx.fail("unknown slice mode " + std::to_string(mode));
  const std::vector<int64_t> start = ctx.has_input(1) ? host_ints(ctx, 1) : ctx.attrs().ints("start", std::vector<int64_t>(r, 0));
  const std::vector<int64_t> stride = ctx.has_input(3) ? host_ints(ctx, 3) : ctx.attrs().ints("stride", std::vector<int64_t>(r, 1));
  if (start.size() != r || stride.size() != r || y.shape.size() != r)
    ctx.fail("start/stride/size must have one value per input dim (" + std::to_string(r) + ")");
  IndexMap m = identity_map(ctx, x.shape, y.shape);
  for (size_t d = 0; d < r; ++d) {
    const int64_t n = x.shape[d], len = y.shape[d];
    if (len <= 0) continue;
    const int64_t first = start[d], last = start[d] + (len - 1) * stride[d];
    const bool inside = std::min(first, last) >= 0 && std::max(first, last) < n;
    if (!inside && mode == 0)
      ctx.fail("indices " + std::to_string(first) + ".." + std::to_string(last) + " on axis " + std::to_string(d) +
               " leave [0, " + std::to_string(n) + ") (mode STRICT_BOUNDS)");
    if (!inside && n == 0 && mode != 3) ctx.fail("cannot slice the empty axis " + std::to_string(d) + " in this mode");
    m.ax[d].start = start[d];
    m.ax[d].step = stride[d];
    m.ax[d].mode = inside ? kAxisAffine : static_cast<int>(mode);  // modes 1-4 match AxisMode
  }
  if (mode == 3 && ctx.has_input(4)) set_fill(ctx, 4, x.dtype, m);
  launch_index_map(ctx, x.data, y.data, y.numel(), dtype_size(x.dtype), m);
}

// ONNX Slice.
void dynamic_slice_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const int64_t r = static_cast<int64_t>(x.shape.size());
  const std::vector<int64_t> starts = host_ints(ctx, 1), ends = host_ints(ctx, 2);
  const size_t n = starts.size();
  std::vector<int64_t> axes, steps;
  if (ctx.has_input(3)) axes = host_ints(ctx, 3);
  else for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  steps = ctx.has_input(4) ? host_ints(ctx, 4) : std::vector<int64_t>(n, 1);
  if (ends.size() != n || axes.size() != n || steps.size() != n)
    ctx.fail("starts, ends, axes and steps must have the same length");
  IndexMap m = identity_map(ctx, x.shape, y.shape);
  for (size_t i = 0; i < n; ++i) {
    const int64_t ax = norm_axis(ctx, axes[i], r);
    const int64_t st = steps[i];
    if (st == 0) ctx.fail("slice step on axis " + std::to_string(ax) + " is 0");
    const ir::SliceRange sr = ir::onnx_slice_range(x.shape[ax], starts[i], ends[i], st);
    if (sr.length != y.shape[ax])
      ctx.fail("axis " + std::to_string(ax) + " slices to " + std::to_string(sr.length) +
               " elements, the output has " + std::to_string(y.shape[ax]));
    m.ax[ax].start = sr.start;
    m.ax[ax].step = st;
  }
  launch_index_map(ctx, x.data, y.data, y.numel(), dtype_size(x.dtype), m);
}

void expand_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const int64_t R = static_cast<int64_t>(y.shape.size()), rx = static_cast<int64_t>(x.shape.size());
  if (rx > R) ctx.fail("cannot expand " + dims_str(x.shape) + " to the lower rank " + dims_str(y.shape));
  if (R > kMaxDims) ctx.fail("the CUDA kernel handles at most " + std::to_string(kMaxDims) + " dims");
  const Dims xs = contiguous_strides(x.shape);
  IndexMap m;
  m.rank = static_cast<int>(R);
  for (int64_t d = 0; d < R; ++d) {
    const int64_t xd = d - (R - rx);
    const int64_t n = xd >= 0 ? x.shape[xd] : 1;
    if (n != 1 && n != y.shape[d]) ctx.fail("cannot expand " + dims_str(x.shape) + " to " + dims_str(y.shape));
    m.ax[d].out_dim = y.shape[d];
    m.ax[d].in_dim = n;
    m.ax[d].in_stride = xd >= 0 ? xs[xd] : 0;
    m.ax[d].step = n == 1 ? 0 : 1;
  }
  launch_index_map(ctx, x.data, y.data, y.numel(), dtype_size(x.dtype), m);
}

void tile_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  IndexMap m = identity_map(ctx, x.shape, y.shape);
  for (size_t d = 0; d < x.shape.size(); ++d) {
    if (x.shape[d] == 0 && y.shape[d] != 0) ctx.fail("cannot tile the empty axis " + std::to_string(d));
    m.ax[d].mode = kAxisTile;
  }
  launch_index_map(ctx, x.data, y.data, y.numel(), dtype_size(x.dtype), m);
}

void pad_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const int64_t r = static_cast<int64_t>(x.shape.size());
  const std::string mode = ctx.attrs().s("mode", "constant");
  int axis_mode;
  if (mode == "constant") axis_mode = kAxisFill;
  else if (mode == "reflect") axis_mode = kAxisReflect;
  else if (mode == "edge") axis_mode = kAxisClamp;
  else if (mode == "wrap") axis_mode = kAxisWrap;
  else ctx.fail("unknown pad mode '" + mode + "'");
  std::vector<int64_t> axes;
  if (ctx.has_input(3)) axes = host_ints(ctx, 3);
  else for (int64_t d = 0; d < r; ++d) axes.push_back(d);
  const std::vector<int64_t> pads =
      ctx.has_input(1) ? host_ints(ctx, 1) : ctx.attrs().ints("pads", std::vector<int64_t>(2 * axes.size(), 0));
  const size_t n = axes.size();
  if (pads.size() != 2 * n) ctx.fail("expected " + std::to_string(2 * n) + " pads, got " + std::to_string(pads.size()));
  IndexMap m = identity_map(ctx, x.shape, y.shape);
  for (size_t i = 0; i < n; ++i) m.ax[norm_axis(ctx, axes[i], r)].start = -pads[i];
  for (int64_t d = 0; d < r; ++d) {
    const int64_t first = m.ax[d].start, last = first + y.shape[d] - 1;
    const bool inside = y.shape[d] == 0 || (first >= 0 && last < x.shape[d]);
    if (!inside && x.shape[d] == 0 && axis_mode != kAxisFill)
      ctx.fail("cannot pad the empty axis " + std::to_string(d) + " in mode '" + mode + "'");
    m.ax[d].mode = inside ? kAxisAffine : axis_mode;
  }
  if (ctx.has_input(2) && ctx.in[2].numel() == 1) set_fill(ctx, 2, x.dtype, m);
  else m.fill_bits = scalar_bits(ctx, ctx.attrs().f("value", 0.0), x.dtype);
  launch_index_map(ctx, x.data, y.data, y.numel(), dtype_size(x.dtype), m);
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Shuffle", &shuffle_kernel, &supports_any_size);
KILN_REGISTER_CUDA_KERNEL("Concatenation", &concat_kernel, &supports_any_size);
KILN_REGISTER_CUDA_KERNEL("Split", &split_kernel, &supports_any_size);
KILN_REGISTER_CUDA_KERNEL("Slice", &slice_kernel, &supports_any_size);
KILN_REGISTER_CUDA_KERNEL("DynamicSlice", &dynamic_slice_kernel, &supports_any_size);
KILN_REGISTER_CUDA_KERNEL("Expand", &expand_kernel, &supports_any_size);
KILN_REGISTER_CUDA_KERNEL("Tile", &tile_kernel, &supports_any_size);
KILN_REGISTER_CUDA_KERNEL("Pad", &pad_kernel, &supports_any_size);

}  // namespace kiln::cuda::kern
