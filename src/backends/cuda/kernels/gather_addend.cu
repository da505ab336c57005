// The fused-addend row kernel (gather_addend.h). Rows are copied as gather.cu's k_gather_rows copies them: a
// warp takes kRowChunk units of one row, a unit being the widest of 16, 8, 4 or 2 bytes that the row size and
// the data, addend and output addresses allow. Each unit of the gathered row and the same unit of the addend's
// row are unpacked into elements, summed in float32 and rounded once, as the ElementWise kernel computes the
// SUM this replaces, so the fused graph gives the unfused one's bits. Unlike k_gather_rows it takes rows of any
// length: the fusion is for embedding rows (hundreds of elements), and one kernel for every row keeps one path
// to test.
//
// Shapes that do not fit the row rule on their real dims (ir/gather_addend.h) take k_gather_addend_elements
// instead: a thread per output element, which finds its gathered element and its addend element through
// broadcast strides (a Walk) and sums them the same way. It is the rare path (the pass fuses where rows are
// likely), so it is written for being right, not for speed.
//
// An out-of-range index (possible only when the indices had no host copy to check) gathers a zero row, as
// gather.cu's kernels do, so that output row is the addend's row: what the unfused Gather and SUM give.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/gather_addend.h"
#include "backends/cuda/kernels/gather_rows.cuh"
#include "ir/gather_addend.h"

namespace kiln::cuda::kern {
namespace {

using gather_rows::Idx;
using gather_rows::kRowChunk;
using gather_rows::kRowsPerBlock;
using gather_rows::kRowUnroll;
using gather_rows::wrap_or_bad;

// a + b for the sizeof(U) / sizeof(T) elements of type T packed in each unit.
template <class T, class U> __device__ __forceinline__ U sum_unit(const U& a, const U& b) {
  static_assert(sizeof(U) % sizeof(T) == 0, "a unit holds whole elements");
  constexpr int kElems = sizeof(U) / sizeof(T);
  T ea[kElems], eb[kElems];
  memcpy(ea, &a, sizeof(U));
  memcpy(eb, &b, sizeof(U));
#pragma unroll
  for (int i = 0; i < kElems; ++i) ea[i] = from_f<T>(to_f(ea[i]) + to_f(eb[i]));
  U r;
  memcpy(&r, ea, sizeof(U));
  return r;
}

// Output row r = data row idx[r] + addend row (r mod addend_rows), row_units units U of elements T each.
// blockDim (32, kRowsPerBlock); gridDim.x: the chunks of a row; gridDim.y, grid-stride: the rows.
template <class T, class U>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    k_gather_rows_addend(const U* __restrict__ x, const U* __restrict__ addend, U* __restrict__ y, Idx idx,
                         int64_t rows, int64_t N, int64_t row_units, int64_t addend_rows) {
  const int64_t u0 = static_cast<int64_t>(blockIdx.x) * kRowChunk + threadIdx.x;
  const int64_t row_step = static_cast<int64_t>(gridDim.y) * kRowsPerBlock;
  for (int64_t r = static_cast<int64_t>(blockIdx.y) * kRowsPerBlock + threadIdx.y; r < rows; r += row_step) {
    const int64_t v = wrap_or_bad(idx[r], N);  // the same index for the whole warp: one broadcast load
    const U* add = addend + (r % addend_rows) * row_units;
    U got[kRowUnroll], plus[kRowUnroll];
#pragma unroll
    for (int k = 0; k < kRowUnroll; ++k) {
      got[k] = U{};
      plus[k] = U{};
      if (u0 + k * 32 < row_units) plus[k] = add[u0 + k * 32];
    }
    if (v >= 0) {
      const U* src = x + v * row_units;
#pragma unroll
      for (int k = 0; k < kRowUnroll; ++k)
        if (u0 + k * 32 < row_units) got[k] = src[u0 + k * 32];
    }
    U* dst = y + r * row_units;
#pragma unroll
    for (int k = 0; k < kRowUnroll; ++k)
      if (u0 + k * 32 < row_units) dst[u0 + k * 32] = sum_unit<T>(got[k], plus[k]);
  }
}

// y[e] = gathered[g] + addend[a], (g, a) = w.offsets(e); gathered element g is element g mod row_elems of
// data row idx[g / row_elems] (a zero for a bad index).
template <class T>
__global__ void k_gather_addend_elements(const T* __restrict__ x, const T* __restrict__ addend, T* __restrict__ y,
                                         Idx idx, int64_t n, int64_t N, int64_t row_elems, Walk<2> w) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    int64_t off[2];
    w.offsets(e, off);
    const int64_t row = off[0] / row_elems;
    const int64_t v = wrap_or_bad(idx[row], N);
    const float got = v >= 0 ? to_f(x[v * row_elems + (off[0] - row * row_elems)]) : 0.0f;
    y[e] = from_f<T>(got + to_f(addend[off[1]]));
  }
}

struct RowsProblem {
  const void* x;
  const void* addend;
  void* y;
  Idx idx;
  int64_t rows, N, row_bytes, addend_rows;
};

template <class T, class U> void launch(cudaStream_t s, const RowsProblem& p) {
  const int64_t row_units = p.row_bytes / static_cast<int64_t>(sizeof(U));
  const int64_t chunks = (row_units + kRowChunk - 1) / kRowChunk;
  const dim3 grid(static_cast<unsigned>(chunks),
                  static_cast<unsigned>(std::min<int64_t>((p.rows + kRowsPerBlock - 1) / kRowsPerBlock, 65535)));
  k_gather_rows_addend<T, U><<<grid, dim3(32, kRowsPerBlock), 0, s>>>(
      static_cast<const U*>(p.x), static_cast<const U*>(p.addend), static_cast<U*>(p.y), p.idx, p.rows, p.N,
      row_units, p.addend_rows);
  KILN_CUDA_LAUNCH_CHECK();
}

// The widest unit (16, 8, 4 or 2 bytes, never below the element size) that divides the row and to which every
// address is aligned; 0 when not even the element size fits.
int64_t unit_bytes(const RowsProblem& p, size_t es) {
  auto fits = [&](int64_t u) {
    return p.row_bytes % u == 0 && aligned_to(p.x, u) && aligned_to(p.addend, u) && aligned_to(p.y, u);
  };
  for (int64_t u = 16; u >= static_cast<int64_t>(es); u /= 2)
    if (fits(u)) return u;
  return 0;
}

template <class T> void launch_in_units(cudaStream_t s, const RowsProblem& p, int64_t unit) {
  if (unit == 16) return launch<T, uint4>(s, p);
  if (unit == 8) return launch<T, uint2>(s, p);
  if constexpr (sizeof(T) <= 4)
    if (unit == 4) return launch<T, uint32_t>(s, p);
  if constexpr (sizeof(T) <= 2)
    if (unit == 2) return launch<T, uint16_t>(s, p);
}

Dims gathered_shape(const Dims& data, const Dims& indices) {
  Dims out = indices;
  out.insert(out.end(), data.begin() + 1, data.end());
  return out;
}

// The element path: y = gathered + addend, either side broadcast onto y's shape.
void launch_elements(KernelContext& ctx, const Dims& gathered) {
  const TensorRef& data = ctx.input(0);
  const TensorRef& indices = ctx.input(1);
  const TensorRef& addend = ctx.input(2);
  TensorRef& y = ctx.out[0];
  const Walk<2> w = broadcast_walk<2>(ctx, y.shape, {&gathered, &addend.shape});
  const int64_t n = y.numel();
  const Idx idx{indices.data, indices.dtype == DataType::kINT64};
  const int64_t row_elems = prod(data.shape, 1, data.shape.size());
  dispatch_float(data.dtype, [&](auto tag) {
    using T = decltype(tag);
    k_gather_addend_elements<T><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(
        data.as<T>(), addend.as<T>(), y.as<T>(), idx, n, data.shape[0], row_elems, w);
    KILN_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

bool supports_gather_addend(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  if (in.size() != 3 || !in[2].present) return false;
  const ir::TensorInfo& data = in[0];
  const ir::TensorInfo& addend = in[2];
  const int64_t r = static_cast<int64_t>(data.shape.size());
  const int64_t axis = node.attrs.i("axis", 0);
  if (node.attrs.i("mode", 0) != 0 || r == 0 || (axis != 0 && axis != -r)) return false;
  if (!is_float_type(data.dtype) || addend.dtype != data.dtype) return false;
  // Any numpy broadcast of the addend and the gathered rows (unknown dims may be anything): the element path
  // takes what the row path does not.
  const Dims gathered = gathered_shape(data.shape, in[1].shape);
  if (std::max(addend.shape.size(), gathered.size()) > static_cast<size_t>(kMaxDims)) return false;
  return ir::first_broadcast_conflict(addend.shape, gathered) < 0;
}

void gather_rows_with_addend(KernelContext& ctx, int64_t axis) {
  const TensorRef& data = ctx.input(0);
  const TensorRef& indices = ctx.input(1);
  const TensorRef& addend = ctx.input(2);
  TensorRef& y = ctx.out[0];
  if (axis != 0) ctx.fail("an addend (input 2) needs rows gathered along axis 0, got axis " + std::to_string(axis));
  if (!is_float_type(data.dtype) || addend.dtype != data.dtype)
    ctx.fail(std::string("an addend (input 2) needs float32, float16 or bfloat16 data and addend of one dtype, got ") +
             dtype_name(data.dtype) + " and " + dtype_name(addend.dtype));
  const Dims gathered = gathered_shape(data.shape, indices.shape);
  Dims out;
  if (!ir::broadcast_known(gathered, addend.shape, &out) || out != y.shape)
    ctx.fail("the addend (input 2) " + dims_str(addend.shape) + " and the gathered rows " + dims_str(gathered) +
             " do not broadcast to the output " + dims_str(y.shape));
  if (y.numel() <= 0) return;
  if (y.shape != gathered || !ir::gather_addend_fits(addend.shape, y.shape, data.shape.size() - 1))
    return launch_elements(ctx, gathered);
  const size_t es = dtype_size(data.dtype);
  const int64_t inner = prod(data.shape, 1, data.shape.size());  // > 0: the output is not empty
  RowsProblem p{data.data, addend.data, y.data, Idx{indices.data, indices.dtype == DataType::kINT64},
                indices.numel(), data.shape[0], inner * static_cast<int64_t>(es), addend.numel() / inner};
  const int64_t unit = unit_bytes(p, es);
  if (unit == 0) ctx.fail("the data, addend or output address is not aligned to its element size");
  if ((p.row_bytes / unit + kRowChunk - 1) / kRowChunk > 0x7fffffff) ctx.fail("rows too long for the grid");
  dispatch_float(data.dtype, [&](auto tag) { launch_in_units<decltype(tag)>(ctx.stream(), p, unit); });
}

}  // namespace kiln::cuda::kern
