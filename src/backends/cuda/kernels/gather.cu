// CUDA kernels for Gather (mode DEFAULT 0 = ONNX Gather, ELEMENT 1 = GatherElements, ND 2 = GatherND with
// `num_elementwise_dims` batch dims) and Scatter (mode ELEMENT 0 = ScatterElements, ND 1 = ScatterND, with
// reductions none/add/mul/max/min), as src/backends/cpu/kernels/{data_movement,scatter}.cpp. Indices are int32
// or int64; negative indices count from the end.
//
// Gather's fused addend (input 2) runs in gather_addend.cu.
//
// A kernel cannot fail, and must never read or write outside a buffer: an out-of-range index gathers zeros and
// scatters nothing. When the indices have a host copy (constants, shape computations) they are checked on
// the host first, so such models fail with a message as on the CPU.
//
// Scatter "none" keeps the CPU's "last update wins" for duplicate destinations: an update is written only
// when no later update targets the same place (ELEMENT: later positions along the axis; ND: later index
// tuples, checked for up to kNdDedupLimit tuples; beyond that duplicates give one of the updates, which ONNX
// leaves undefined anyway). Reductions use atomics, so float sums may round in a different order.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/gather_addend.h"
#include "backends/cuda/kernels/gather_rows.cuh"

namespace kiln::cuda::kern {
namespace {

constexpr int64_t kNdDedupLimit = 16384;

using gather_rows::Idx;
using gather_rows::kRowChunk;
using gather_rows::kRowsPerBlock;
using gather_rows::kRowUnroll;
using gather_rows::wrap_or_bad;

// Element strides and dims of up to kMaxDims dims.
struct Geo {
  int rank;
  int64_t dims[kMaxDims];     // iteration dims (the indices' shape)
  int64_t strides[kMaxDims];  // data strides
};

// ================================================= Gather ================================================

template <class T>
__global__ void k_gather_default(const T* __restrict__ x, T* __restrict__ y, Idx idx, int64_t n, int64_t nidx,
                                 int64_t inner, int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    const int64_t row = e / inner, k = e - row * inner;
    const int64_t o = row / nidx, j = row - o * nidx;
    const int64_t v = wrap_or_bad(idx[j], N);
    y[e] = v < 0 ? T(0) : x[(o * N + v) * inner + k];
  }
}

// The same Gather for rows of at least kMinRowBytes (embedding lookups: a [V, 768] table, [B, S] indices):
// output row r = o * nidx + j copies data row o * N + idx[j] of row_units units U, where U is the widest
// copy (16, 8, 4, 2 or 1 bytes) that the row size and both base pointers allow. k_gather_default spends two
// 64-bit divisions and a 2-byte copy per float16 element; here a warp copies 32 * kRowUnroll units of one
// row (blockDim (32, kRowsPerBlock): a block covers kRowsPerBlock rows; gridDim.x the chunks of a row;
// gridDim.y, grid-stride, the rows) and divides once per row. Out-of-range indices give zero rows, as there.
constexpr int kMinRowBytes = 64;

template <class U>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    k_gather_rows(const U* __restrict__ x, U* __restrict__ y, Idx idx, int64_t rows, int64_t nidx, int64_t N,
                  int64_t row_units) {
  const int64_t u0 = static_cast<int64_t>(blockIdx.x) * kRowChunk + threadIdx.x;
  const int64_t row_step = static_cast<int64_t>(gridDim.y) * kRowsPerBlock;
  for (int64_t r = static_cast<int64_t>(blockIdx.y) * kRowsPerBlock + threadIdx.y; r < rows; r += row_step) {
    const int64_t o = r / nidx, j = r - o * nidx;
    const int64_t v = wrap_or_bad(idx[j], N);  // the same index for the whole warp: one broadcast load
    U val[kRowUnroll];
#pragma unroll
    for (int k = 0; k < kRowUnroll; ++k) val[k] = U{};
    if (v >= 0) {
      const U* src = x + (o * N + v) * row_units;
#pragma unroll
      for (int k = 0; k < kRowUnroll; ++k)
        if (u0 + k * 32 < row_units) val[k] = src[u0 + k * 32];
    }
    U* dst = y + r * row_units;
#pragma unroll
    for (int k = 0; k < kRowUnroll; ++k)
      if (u0 + k * 32 < row_units) dst[u0 + k * 32] = val[k];
  }
}

// Launches k_gather_rows for data [outer, N, inner] of element size es when its rows are long enough;
// false (nothing launched) otherwise.
bool launch_gather_rows(cudaStream_t s, const void* x, void* y, const Idx& idx, int64_t outer, int64_t nidx,
                        int64_t N, int64_t inner, size_t es) {
  const int64_t row_bytes = inner * static_cast<int64_t>(es);
  if (row_bytes < kMinRowBytes) return false;
  int64_t unit = 16;
  while (row_bytes % unit || reinterpret_cast<uintptr_t>(x) % unit || reinterpret_cast<uintptr_t>(y) % unit) unit /= 2;
  const int64_t row_units = row_bytes / unit, rows = outer * nidx;
  const int64_t chunks = (row_units + kRowChunk - 1) / kRowChunk;
  if (chunks > 0x7fffffff) return false;
  const dim3 grid(static_cast<unsigned>(chunks),
                  static_cast<unsigned>(std::min<int64_t>((rows + kRowsPerBlock - 1) / kRowsPerBlock, 65535)));
  const dim3 block(32, kRowsPerBlock);
  auto go = [&](auto tag) {
    using U = decltype(tag);
    k_gather_rows<U><<<grid, block, 0, s>>>(static_cast<const U*>(x), static_cast<U*>(y), idx, rows, nidx, N, row_units);
    KILN_CUDA_LAUNCH_CHECK();
  };
  if (unit == 16) go(uint4{});
  else dispatch_size(static_cast<size_t>(unit), go);
  return true;
}

// GatherElements: out[e] = x[coords of e, with the axis coordinate replaced by idx[e]].
template <class T>
__global__ void k_gather_elements(const T* __restrict__ x, T* __restrict__ y, Idx idx, int64_t n, Geo g, int axis,
                                  int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    int64_t rem = e, off = 0;
    for (int d = g.rank - 1; d >= 0; --d) {
      const int64_t q = rem / g.dims[d];
      if (d != axis) off += (rem - q * g.dims[d]) * g.strides[d];
      rem = q;
    }
    const int64_t v = wrap_or_bad(idx[e], N);
    y[e] = v < 0 ? T(0) : x[off + v * g.strides[axis]];
  }
}

// GatherND: item u (of B*M) copies the slice at batch u / M and the k indexed coordinates.
template <class T>
__global__ void k_gather_nd(const T* __restrict__ x, T* __restrict__ y, Idx idx, int64_t n, int64_t slice, int64_t M,
                            int64_t batch_stride, int k, Geo g) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    const int64_t u = e / slice, c = e - u * slice;
    int64_t off = (u / M) * batch_stride;
    bool bad = false;
    for (int j = 0; j < k; ++j) {
      const int64_t v = wrap_or_bad(idx[u * k + j], g.dims[j]);
      bad |= v < 0;
      off += v * g.strides[j];
    }
    y[e] = bad ? T(0) : x[off + c];
  }
}

// Host check of the indices, when they have a host copy: the CPU kernel's error for out-of-range values.
void check_indices(const KernelContext& ctx, const TensorRef& idx, const std::vector<int64_t>& bounds,
                   const std::vector<int64_t>& axes_of) {
  if (!idx.host) return;
  const std::vector<int64_t> v = idx.host_i64();
  const size_t period = bounds.size();
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t n = bounds[i % period];
    if (wrap_or_bad(v[i], n) < 0)
      ctx.fail("index " + std::to_string(v[i]) + " (at indices element " + std::to_string(i) +
               ") is out of range for axis " + std::to_string(axes_of[i % period]) + " of size " + std::to_string(n));
  }
}

bool index_type_ok(DataType t) { return t == DataType::kINT32 || t == DataType::kINT64; }

bool supports_gather(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  const int64_t mode = node.attrs.i("mode", 0);
  const bool addend = in.size() == 3 && in[2].present;
  return (in.size() == 2 || addend) && dtype_size(in[0].dtype) <= 8 && index_type_ok(in[1].dtype) && mode >= 0 &&
         mode <= 2 && in[0].shape.size() <= static_cast<size_t>(kMaxDims) &&
         in[1].shape.size() <= static_cast<size_t>(kMaxDims) && (!addend || supports_gather_addend(node, in));
}

void gather_kernel(KernelContext& ctx) {
  const TensorRef& data = ctx.input(0);
  const TensorRef& indices = ctx.input(1);
  TensorRef& y = ctx.out[0];
  if (!index_type_ok(indices.dtype)) ctx.fail(std::string("indices must be int32 or int64, got ") + dtype_name(indices.dtype));
  const int64_t r = static_cast<int64_t>(data.shape.size());
  const int64_t mode = ctx.attrs().i("mode", 0);
  const Idx idx{indices.data, indices.dtype == DataType::kINT64};
  const Dims ds = contiguous_strides(data.shape);
  const int64_t n = y.numel();
  cudaStream_t s = ctx.stream();
  if (r > kMaxDims || indices.shape.size() > static_cast<size_t>(kMaxDims))
    ctx.fail("the CUDA kernel handles at most " + std::to_string(kMaxDims) + " dims");
  auto launch = [&](auto&& body) {
    if (!dispatch_size(dtype_size(data.dtype), body)) ctx.fail(std::string("unsupported dtype ") + dtype_name(data.dtype));
  };
  if (ctx.has_input(2) && mode != 0) ctx.fail("an addend (input 2) needs DEFAULT mode");
  if (mode == 0) {
    const int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), r);
    const int64_t N = data.shape[axis], inner = prod(data.shape, axis + 1, r), nidx = indices.numel();
    check_indices(ctx, indices, {N}, {axis});
    if (ctx.has_input(2)) {  // the fused addend (ir/OPS.md): a kernel of its own, gather_addend.cu
      gather_rows_with_addend(ctx, axis);
      return;
    }
    if (n <= 0) return;
    const size_t es = dtype_size(data.dtype);
    const bool plain_size = es == 1 || es == 2 || es == 4 || es == 8;  // else `launch` below names the dtype
    if (plain_size && launch_gather_rows(s, data.data, y.data, idx, prod(data.shape, 0, axis), nidx, N, inner, es))
      return;
    launch([&](auto tag) {
      using T = decltype(tag);
      k_gather_default<T><<<blocks_for(n), kThreads, 0, s>>>(data.as<T>(), y.as<T>(), idx, n, nidx, inner, N);
      KILN_CUDA_LAUNCH_CHECK();
    });
  } else if (mode == 1) {
    const int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), r);
    if (static_cast<int64_t>(indices.shape.size()) != r) ctx.fail("indices must have the data's rank");
    check_indices(ctx, indices, {data.shape[axis]}, {axis});
    if (n <= 0) return;
    Geo g{static_cast<int>(r), {}, {}};
    for (int64_t d = 0; d < r; ++d) {
      g.dims[d] = indices.shape[d];
      g.strides[d] = ds[d];
    }
    launch([&](auto tag) {
      using T = decltype(tag);
      k_gather_elements<T><<<blocks_for(n), kThreads, 0, s>>>(data.as<T>(), y.as<T>(), idx, n, g, static_cast<int>(axis),
                                                              data.shape[axis]);
      KILN_CUDA_LAUNCH_CHECK();
    });
  } else if (mode == 2) {
    const int64_t b = ctx.attrs().i("num_elementwise_dims", 0);
    const Dims& is = indices.shape;
    const int64_t q = static_cast<int64_t>(is.size());
    if (q < 1) ctx.fail("GatherND indices must have rank >= 1");
    const int64_t k = is[q - 1];
    if (b < 0 || b + k > r || b > q - 1) ctx.fail("GatherND index depth and batch dims do not fit the data");
    int64_t M = 1;
    for (int64_t d = b; d < q - 1; ++d) M *= is[d];
    const int64_t slice = prod(data.shape, b + k, r);
    const int64_t batch_stride = b > 0 ? ds[b - 1] : 0;
    Geo g{static_cast<int>(k), {}, {}};
    std::vector<int64_t> bounds, axes_of;
    for (int64_t j = 0; j < k; ++j) {
      g.dims[j] = data.shape[b + j];
      g.strides[j] = ds[b + j];
      bounds.push_back(data.shape[b + j]);
      axes_of.push_back(b + j);
    }
    if (k > 0) check_indices(ctx, indices, bounds, axes_of);
    if (n <= 0) return;
    if (slice <= 0) return;
    launch([&](auto tag) {
      using T = decltype(tag);
      k_gather_nd<T><<<blocks_for(n), kThreads, 0, s>>>(data.as<T>(), y.as<T>(), idx, n, slice, std::max<int64_t>(M, 1),
                                                        batch_stride, static_cast<int>(k), g);
      KILN_CUDA_LAUNCH_CHECK();
    });
  } else {
    ctx.fail("unknown gather mode " + std::to_string(mode));
  }
}

// ================================================= Scatter ===============================================

enum Reduction : int { kNone = 0, kAdd = 1, kMul = 2, kMaxR = 3, kMinR = 4 };

// Atomic read-modify-write of one element through compare-and-swap on its bits (2, 4 or 8 bytes).
template <class T, class F> __device__ void atomic_apply(T* p, F f) {
  if constexpr (sizeof(T) == 2) {
    unsigned short* a = reinterpret_cast<unsigned short*>(p);
    unsigned short old = *a, assumed;
    do {
      assumed = old;
      T cur;
      memcpy(&cur, &assumed, 2);
      const T nv = f(cur);
      unsigned short bits;
      memcpy(&bits, &nv, 2);
      old = atomicCAS(a, assumed, bits);
    } while (old != assumed);
  } else if constexpr (sizeof(T) == 4) {
    unsigned int* a = reinterpret_cast<unsigned int*>(p);
    unsigned int old = *a, assumed;
    do {
      assumed = old;
      T cur;
      memcpy(&cur, &assumed, 4);
      const T nv = f(cur);
      unsigned int bits;
      memcpy(&bits, &nv, 4);
      old = atomicCAS(a, assumed, bits);
    } while (old != assumed);
  } else {
    unsigned long long* a = reinterpret_cast<unsigned long long*>(p);
    unsigned long long old = *a, assumed;
    do {
      assumed = old;
      T cur;
      memcpy(&cur, &assumed, 8);
      const T nv = f(cur);
      unsigned long long bits;
      memcpy(&bits, &nv, 8);
      old = atomicCAS(a, assumed, bits);
    } while (old != assumed);
  }
}

template <class T> struct Combine {
  int red;
  T s;
  __device__ __forceinline__ T operator()(T o) const {
    const Compute<T> a = load_c(o), b = load_c(s);
    switch (red) {
      case kAdd: return store_c<T>(wadd(a, b));
      case kMul: return store_c<T>(wmul(a, b));
      case kMaxR: return store_c<T>(a < b ? b : a);  // std::max(o, s)
      default: return store_c<T>(b < a ? b : a);     // std::min(o, s)
    }
  }
};

// The dtypes reductions support; the kernels instantiated for plain copies (by element size) never reduce.
template <class T>
constexpr bool kReducible = kFloatLike<T> || std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>;

template <class T> __device__ __forceinline__ void reduce_into(T* p, T s, int red) {
  if constexpr (std::is_same_v<T, float>) {
    if (red == kAdd) { atomicAdd(p, s); return; }
  } else if constexpr (std::is_same_v<T, int32_t>) {
    if (red == kAdd) { atomicAdd(p, s); return; }
    if (red == kMaxR) { atomicMax(p, s); return; }
    if (red == kMinR) { atomicMin(p, s); return; }
  } else if constexpr (std::is_same_v<T, int64_t>) {
    if (red == kAdd) {  // two's complement: unsigned addition wraps the same way
      atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(s));
      return;
    }
    if (red == kMaxR) { atomicMax(reinterpret_cast<long long*>(p), static_cast<long long>(s)); return; }
    if (red == kMinR) { atomicMin(reinterpret_cast<long long*>(p), static_cast<long long>(s)); return; }
  }
  atomic_apply(p, Combine<T>{red, s});
}

// ScatterElements: update u lands at its own coordinates with the axis one replaced by idx[u].
template <class T>
__global__ void k_scatter_elements(T* __restrict__ y, const T* __restrict__ upd, Idx idx, int64_t n, Geo g, int axis,
                                   int64_t N, int red) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t istride = 1;  // the indices' stride along the axis
  for (int d = g.rank - 1; d > axis; --d) istride *= g.dims[d];
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < n; u += stride) {
    int64_t rem = u, off = 0, pos = 0;
    for (int d = g.rank - 1; d >= 0; --d) {
      const int64_t q = rem / g.dims[d], c = rem - q * g.dims[d];
      if (d != axis) off += c * g.strides[d];
      else pos = c;
      rem = q;
    }
    const int64_t v = wrap_or_bad(idx[u], N);
    if (v < 0) continue;
    T* dst = y + off + v * g.strides[axis];
    if (red == kNone) {
      bool last = true;  // no later update along the axis writes here
      for (int64_t p = pos + 1; p < g.dims[axis] && last; ++p) last = wrap_or_bad(idx[u + (p - pos) * istride], N) != v;
      if (last) *dst = upd[u];
    } else if constexpr (kReducible<T>) {
      reduce_into(dst, upd[u], red);
    }
  }
}

struct NdGeo {
  int k;
  int64_t dims[kMaxDims], strides[kMaxDims];
};

__device__ __forceinline__ int64_t nd_offset(const Idx& idx, int64_t u, const NdGeo& g) {
  int64_t off = 0;
  for (int j = 0; j < g.k; ++j) {
    const int64_t v = wrap_or_bad(idx[u * g.k + j], g.dims[j]);
    if (v < 0) return -1;
    off += v * g.strides[j];
  }
  return off;
}

// ScatterND: one block per update item (grid-stride); the block checks whether a later item has the same
// destination ("none" only), then its threads copy or reduce the item's `block` elements.
template <class T>
__global__ void k_scatter_nd(T* __restrict__ y, const T* __restrict__ upd, Idx idx, int64_t items, int64_t block,
                             NdGeo g, int red, bool dedup) {
  for (int64_t u = blockIdx.x; u < items; u += gridDim.x) {
    const int64_t off = nd_offset(idx, u, g);
    if (off < 0) continue;  // uniform across the block
    int shadowed = 0;
    if (red == kNone && dedup)
      for (int64_t w = u + 1 + threadIdx.x; w < items && !shadowed; w += blockDim.x) shadowed = nd_offset(idx, w, g) == off;
    if (__syncthreads_or(shadowed)) continue;
    for (int64_t c = threadIdx.x; c < block; c += blockDim.x) {
      if (red == kNone) y[off + c] = upd[u * block + c];
      else if constexpr (kReducible<T>) reduce_into(y + off + c, upd[u * block + c], red);
    }
  }
}

int reduction_of(const KernelContext* ctx, const std::string& s) {
  if (s == "none") return kNone;
  if (s == "add") return kAdd;
  if (s == "mul") return kMul;
  if (s == "max") return kMaxR;
  if (s == "min") return kMinR;
  if (ctx) ctx->fail("unknown reduction '" + s + "'");
  return -1;
}

bool reduction_dtype_ok(DataType t) { return is_float_type(t) || t == DataType::kINT32 || t == DataType::kINT64; }

bool supports_scatter(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  if (in.size() != 3 || !index_type_ok(in[1].dtype) || dtype_size(in[0].dtype) > 8) return false;
  if (in[0].shape.size() > static_cast<size_t>(kMaxDims)) return false;
  const int red = reduction_of(nullptr, node.attrs.s("reduction", "none"));
  if (red < 0) return false;
  return red == kNone || reduction_dtype_ok(in[0].dtype);
}

void scatter_kernel(KernelContext& ctx) {
  const TensorRef& data = ctx.input(0);
  const TensorRef& indices = ctx.input(1);
  const TensorRef& upd = ctx.input(2);
  TensorRef& y = ctx.out[0];
  if (!index_type_ok(indices.dtype)) ctx.fail(std::string("indices must be int32 or int64, got ") + dtype_name(indices.dtype));
  if (upd.dtype != data.dtype) ctx.fail("updates must have the data's dtype");
  const int red = reduction_of(&ctx, ctx.attrs().s("reduction", "none"));
  if (red != kNone && !reduction_dtype_ok(data.dtype))
    ctx.fail(std::string("reduction '") + ctx.attrs().s("reduction", "none") + "' does not support dtype " + dtype_name(data.dtype));
  const int64_t r = static_cast<int64_t>(data.shape.size());
  if (r > kMaxDims) ctx.fail("the CUDA kernel handles at most " + std::to_string(kMaxDims) + " dims");
  const Dims ds = contiguous_strides(data.shape);
  const Idx idx{indices.data, indices.dtype == DataType::kINT64};
  cudaStream_t s = ctx.stream();
  if (y.data != data.data && data.nbytes())
    KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, data.data, data.nbytes(), cudaMemcpyDeviceToDevice, s));
  auto launch = [&](auto&& body) {
    const bool ok = red == kNone ? dispatch_size(dtype_size(data.dtype), body) : dispatch_float_i32_i64(data.dtype, body);
    if (!ok) ctx.fail(std::string("unsupported dtype ") + dtype_name(data.dtype));
  };
  const int64_t mode = ctx.attrs().i("mode", 0);
  if (mode == 0) {
    const int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), r);
    const int64_t n = indices.numel();
    if (upd.numel() != n) ctx.fail("updates and indices differ in size");
    if (static_cast<int64_t>(indices.shape.size()) != r) ctx.fail("indices must have the data's rank");
    check_indices(ctx, indices, {data.shape[axis]}, {axis});
    if (n <= 0) return;
    Geo g{static_cast<int>(r), {}, {}};
    for (int64_t d = 0; d < r; ++d) {
      g.dims[d] = indices.shape[d];
      g.strides[d] = ds[d];
    }
    launch([&](auto tag) {
      using T = decltype(tag);
      k_scatter_elements<T><<<blocks_for(n), kThreads, 0, s>>>(y.as<T>(), upd.as<T>(), idx, n, g, static_cast<int>(axis),
                                                               data.shape[axis], red);
      KILN_CUDA_LAUNCH_CHECK();
    });
  } else if (mode == 1) {
    const int64_t q = static_cast<int64_t>(indices.shape.size());
    if (q < 1) ctx.fail("ScatterND indices must have rank >= 1");
    const int64_t k = indices.shape[q - 1];
    if (k > r) ctx.fail("ScatterND index depth exceeds the data rank");
    const int64_t block = prod(data.shape, k, r);
    const int64_t items = prod(indices.shape, 0, q - 1);
    if (upd.numel() != items * block) ctx.fail("updates size does not match the indices and data");
    NdGeo g{static_cast<int>(k), {}, {}};
    std::vector<int64_t> bounds, axes_of;
    for (int64_t j = 0; j < k; ++j) {
      g.dims[j] = data.shape[j];
      g.strides[j] = ds[j];
      bounds.push_back(data.shape[j]);
      axes_of.push_back(j);
    }
    if (k > 0) check_indices(ctx, indices, bounds, axes_of);
    if (items <= 0 || block <= 0) return;
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(items, 65535LL * 16));
    launch([&](auto tag) {
      using T = decltype(tag);
      k_scatter_nd<T><<<grid, kThreads, 0, s>>>(y.as<T>(), upd.as<T>(), idx, items, block, g, red,
                                                items <= kNdDedupLimit);
      KILN_CUDA_LAUNCH_CHECK();
    });
  } else {
    ctx.fail("unknown scatter mode " + std::to_string(mode));
  }
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Gather", &gather_kernel, &supports_gather);
KILN_REGISTER_CUDA_KERNEL("Scatter", &scatter_kernel, &supports_scatter);

}  // namespace kiln::cuda::kern
