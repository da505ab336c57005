// Shared pieces of Kiln's own CUDA kernels: element types and their float conversions, host-side dtype
// dispatch, N-d index math passed to kernels by value (up to kMaxDims dims), and block/warp reductions.
//
// Conventions every kernel file follows:
//  - float16/bfloat16 are loaded, computed in float32 and stored (accumulation is always float32);
//  - bool tensors hold one byte per element (0 or 1), like the CPU backend;
//  - element counts and offsets are int64 (tensors may exceed 2^31 elements);
//  - every launch is followed by KILN_CUDA_LAUNCH_CHECK(), and nothing synchronizes the stream.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda::kern {

constexpr int kMaxDims = 8;
constexpr int kThreads = 256;

using half = __half;
using bf16 = __nv_bfloat16;

// ------------------------------------------------------------------------------------------------------
// Element types.

template <class T> constexpr bool kLowFloat = std::is_same_v<T, half> || std::is_same_v<T, bf16>;
template <class T> constexpr bool kFloatLike = std::is_same_v<T, float> || kLowFloat<T>;

template <class T> __device__ __forceinline__ float to_f(T v) { return static_cast<float>(v); }
template <> __device__ __forceinline__ float to_f<half>(half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f<bf16>(bf16 v) { return __bfloat162float(v); }

template <class T> __device__ __forceinline__ T from_f(float v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ half from_f<half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16_rn(v); }

// The type a kernel computes in: float for the float types, the type itself for integers.
template <class T> using Compute = std::conditional_t<kFloatLike<T>, float, T>;
template <class T> __device__ __forceinline__ Compute<T> load_c(T v) {
  if constexpr (kFloatLike<T>) return to_f(v);
  else return v;
}
template <class T> __device__ __forceinline__ T store_c(Compute<T> v) {
  if constexpr (kFloatLike<T>) return from_f<T>(v);
  else return v;
}

// Wrapping integer arithmetic (signed overflow is undefined in C++; ONNX integer ops wrap).
template <class T> __device__ __forceinline__ T wadd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}
template <class T> __device__ __forceinline__ T wsub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
  } else {
    return a - b;
  }
}
template <class T> __device__ __forceinline__ T wmul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    using W = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, U>;  // no int promotion
    return static_cast<T>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b)));
  } else {
    return a * b;
  }
}

// Reads element i of a float-typed parameter tensor of any float dtype as float.
__device__ __forceinline__ float load_param(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case static_cast<int>(DataType::kHALF): return __half2float(static_cast<const half*>(p)[i]);
    case static_cast<int>(DataType::kBF16): return __bfloat162float(static_cast<const bf16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

// ------------------------------------------------------------------------------------------------------
// Host-side dtype dispatch: f(T{}) for the C++ type of dt, or false when dt is not in the set.

template <class F> bool dispatch_float(DataType dt, F&& f) {
  switch (dt) {
    case DataType::kFLOAT: f(float{}); return true;
    case DataType::kHALF: f(half{}); return true;
    case DataType::kBF16: f(bf16{}); return true;
    default: return false;
  }
}
// Float types plus int32/int64 (the reductions' set).
template <class F> bool dispatch_float_i32_i64(DataType dt, F&& f) {
  switch (dt) {
    case DataType::kINT32: f(int32_t{}); return true;
    case DataType::kINT64: f(int64_t{}); return true;
    default: return dispatch_float(dt, f);
  }
}
// Float types plus every integer type (not bool).
template <class F> bool dispatch_numeric(DataType dt, F&& f) {
  switch (dt) {
    case DataType::kINT8: f(int8_t{}); return true;
    case DataType::kUINT8: f(uint8_t{}); return true;
    default: return dispatch_float_i32_i64(dt, f);
  }
}
// Pure data movement: an unsigned type of the element size.
template <class F> bool dispatch_size(size_t bytes, F&& f) {
  switch (bytes) {
    case 1: f(uint8_t{}); return true;
    case 2: f(uint16_t{}); return true;
    case 4: f(uint32_t{}); return true;
    case 8: f(uint64_t{}); return true;
    default: return false;
  }
}

inline bool is_float_type(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }
inline bool is_gpu_type(DataType t) {
  switch (t) {
    case DataType::kFLOAT: case DataType::kHALF: case DataType::kBF16: case DataType::kINT8:
    case DataType::kUINT8: case DataType::kINT32: case DataType::kINT64: case DataType::kBOOL: return true;
    default: return false;
  }
}

// ------------------------------------------------------------------------------------------------------
// N-d index math. A `Walk<N>` maps a flat index of a row-major iteration space (dims) onto element
// offsets in N tensors (strides, 0 where a tensor is broadcast). Dims are collapsed on the host first
// (size-1 dims dropped, neighbours merged where every tensor stays contiguous across them), so the common
// cases need one or two divisions per element.

template <int N> struct Walk {
  int rank = 0;
  int64_t dims[kMaxDims];
  int64_t strides[N][kMaxDims];

  __device__ __forceinline__ void offsets(int64_t flat, int64_t* off) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = rank - 1; d > 0; --d) {
      const int64_t q = flat / dims[d];
      const int64_t i = flat - q * dims[d];
      flat = q;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
    if (rank > 0) {
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += flat * strides[k][0];
    }
  }
};

// Row-major strides of a shape.
inline Dims contiguous_strides(const Dims& d) {
  Dims s(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) s[i - 1] = s[i] * d[i];
  return s;
}

// Strides of `in` (right-aligned against `out`, numpy rules) with 0 on broadcast dims.
inline Dims broadcast_strides(const Dims& in, const Dims& out) {
  Dims s(out.size(), 0);
  int64_t acc = 1;
  for (size_t k = 0; k < in.size(); ++k) {
    const size_t di = in.size() - 1 - k, dout = out.size() - 1 - k;
    s[dout] = (in[di] == 1 && out[dout] != 1) ? 0 : acc;
    acc *= in[di];
  }
  return s;
}

// Collapses an iteration space (dims, per-tensor strides) and packs it into a Walk; throws naming the
// layer when more than kMaxDims dims remain.
template <int N>
Walk<N> make_walk(const KernelContext& ctx, const Dims& dims, const std::vector<Dims>& strides) {
  Dims cd;
  std::vector<Dims> cs(N);
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 1) continue;
    bool merge = !cd.empty();
    for (int k = 0; k < N && merge; ++k) merge = cs[k].back() == strides[k][d] * dims[d];
    if (merge) {
      cd.back() *= dims[d];
      for (int k = 0; k < N; ++k) cs[k].back() = strides[k][d];
    } else {
      cd.push_back(dims[d]);
      for (int k = 0; k < N; ++k) cs[k].push_back(strides[k][d]);
    }
  }
  if (cd.size() > static_cast<size_t>(kMaxDims))
    ctx.fail("the CUDA kernel handles at most " + std::to_string(kMaxDims) + " non-trivial dims, got " +
             std::to_string(cd.size()));
  Walk<N> w;
  w.rank = static_cast<int>(cd.size());
  for (int d = 0; d < w.rank; ++d) {
    w.dims[d] = cd[d];
    for (int k = 0; k < N; ++k) w.strides[k][d] = cs[k][d];
  }
  return w;
}

// A broadcast of inputs onto `out` (numpy rules); inputs' shapes are right-aligned.
template <int N>
Walk<N> broadcast_walk(const KernelContext& ctx, const Dims& out, const std::vector<const Dims*>& ins) {
  std::vector<Dims> st;
  for (const Dims* in : ins) {
    if (in->size() > out.size()) ctx.fail("an input has a higher rank than the output " + dims_str(out));
    st.push_back(broadcast_strides(*in, out));
  }
  return make_walk<N>(ctx, out, st);
}

// Product of d[from, to).
inline int64_t prod(const Dims& d, size_t from, size_t to) {
  int64_t v = 1;
  for (size_t i = from; i < to && i < d.size(); ++i) v *= d[i];
  return v;
}

inline int64_t norm_axis(const KernelContext& ctx, int64_t axis, int64_t rank, const char* what = "axis") {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    ctx.fail(std::string(what) + " " + std::to_string(axis) + " is out of range for a " + std::to_string(rank) +
             "-D tensor");
  return a;
}

// Launch geometry: 256 threads, a grid-stride loop covers what the capped grid does not.
inline unsigned blocks_for(int64_t n, int threads = kThreads) { return grid_for(n, threads); }

// An aligned bundle of V elements for vector loads/stores.
template <class T, int V> struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

// ------------------------------------------------------------------------------------------------------
// Reductions across the `tpr` threads that share a row (tpr is 32 or a multiple of 32 up to blockDim.x;
// the rows of a block are consecutive groups of tpr threads). `smem` holds one slot per warp of the block.
// Every thread of the row gets the result.

template <class A, class Op> __device__ __forceinline__ A warp_allreduce(A v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <class A, class Op>
__device__ __forceinline__ A row_allreduce(A v, Op op, int tpr, A* smem) {
  v = warp_allreduce(v, op);
  if (tpr <= 32) return v;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wpr = tpr >> 5;             // warps per row
  const int first = (warp / wpr) * wpr;  // the row's first warp
  __syncthreads();                       // smem may still be read by a previous call
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  A r = smem[first];
  for (int w = 1; w < wpr; ++w) r = op(r, smem[first + w]);
  return r;
}

struct SumOp {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const { return wadd(a, b); }
};
struct MaxOp {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const { return b > a ? b : a; }
};

// Threads per row for a row-wise kernel over rows of n elements: a warp for short rows, the block for long.
inline int threads_per_row(int64_t n) { return n >= 1024 ? kThreads : 32; }

}  // namespace kiln::cuda::kern
