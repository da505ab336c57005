// CUDA kernels for Reduce (SUM, PROD, MAX, MIN, AVG, L1, L2, LOG_SUM, LOG_SUM_EXP, SUM_SQUARE over any set
// of axes, from the attribute or the run-time axes input) and ArgMinMax, matching
// src/backends/cpu/kernels/reduce.cpp.
//
// The input's dims are collapsed into alternating kept/reduced segments (size-1 dims dropped). Two kernels:
//  - rows: `tpr` threads (a warp, or the whole block for long rows) reduce the elements of one output,
//    reading them through a Walk of the reduced segments (one contiguous segment = plain coalesced rows),
//    combined with warp shuffles; covers every axis set;
//  - columns: one reduced segment followed by kept dims ([outer, R, inner], inner large): one thread per
//    output walks R with stride inner, so a warp reads consecutive addresses; with few outputs and long
//    columns, up to 8 threads share a column (k_reduce_cols_split).
// Accumulation is float32 for the float types; integers accumulate in their own type with wrapping, except
// L2, LOG_SUM and LOG_SUM_EXP, which use double (then truncate) as the CPU kernel does.
#include <cmath>
#include <limits>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/programmatic_launch.cuh"

namespace kiln::cuda::kern {
namespace {

enum RedOp : int {
  kSum = 0, kProd = 1, kMax = 2, kMin = 3, kAvg = 4, kL1 = 64, kL2 = 65, kLogSum = 66, kLogSumExp = 67,
  kSumSquare = 68
};
// How elements combine (a template parameter: it shapes the inner loop) ...
enum Combine : int { kCSum, kCProd, kCMax, kCMin, kCLse };
// ... and what happens to each element before and to the result after (run-time: cheap, uniform).
enum Map : int { kMapId, kMapAbs, kMapSquare };
enum Fin : int { kFinNone, kFinAvg, kFinSqrt, kFinLog };

template <class T, class A, int C> struct Red {
  static __device__ __forceinline__ A init() {
    if constexpr (C == kCProd) return A(1);
    else if constexpr (C == kCMax || C == kCLse) {
      if constexpr (std::is_integral_v<A>) return std::numeric_limits<A>::lowest();
      else return -std::numeric_limits<A>::infinity();
    } else if constexpr (C == kCMin) {
      if constexpr (std::is_integral_v<A>) return std::numeric_limits<A>::max();
      else return std::numeric_limits<A>::infinity();
    } else {
      return A(0);
    }
  }
  static __device__ __forceinline__ A load(T v) {
    if constexpr (kFloatLike<T>) return static_cast<A>(to_f(v));
    else return static_cast<A>(v);
  }
  static __device__ __forceinline__ A map(int m, A x) {
    if (m == kMapAbs) return x < A(0) ? wsub(A(0), x) : x;
    if (m == kMapSquare) return wmul(x, x);
    return x;
  }
  static __device__ __forceinline__ A comb(A a, A b) {
    if constexpr (C == kCProd) return wmul(a, b);
    else if constexpr (C == kCMax || C == kCLse) return b > a ? b : a;
    else if constexpr (C == kCMin) return b < a ? b : a;
    else return wadd(a, b);
  }
  static __device__ __forceinline__ T store(A v) {
    if constexpr (kFloatLike<T>) return from_f<T>(static_cast<float>(v));
    else return static_cast<T>(v);
  }
  static __device__ __forceinline__ T fin(int f, A a, int64_t count) {
    if (f == kFinAvg) {
      if constexpr (std::is_integral_v<A>) return count ? store(static_cast<A>(a / static_cast<A>(count))) : T(0);
      else return store(a / static_cast<A>(count));  // empty: 0/0 = NaN, as numpy
    }
    using F = std::conditional_t<std::is_integral_v<A>, double, A>;  // no integer overloads of sqrt/log
    if (f == kFinSqrt) return store(static_cast<A>(sqrt(static_cast<F>(a))));
    if (f == kFinLog) return store(static_cast<A>(log(static_cast<F>(a))));
    return store(a);
  }
  // The LOG_SUM_EXP shift: the row max, or 0 when it is not finite (an all -inf row stays -inf).
  static __device__ __forceinline__ A shift_of(A m) { return isfinite(static_cast<double>(m)) ? m : A(0); }
};

struct MinOp {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const { return b < a ? b : a; }
};
struct ProdOp {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const { return wmul(a, b); }
};

template <class A, int C> __device__ __forceinline__ A allreduce(A v, int tpr, A* smem) {
  if constexpr (C == kCProd) return row_allreduce(v, ProdOp{}, tpr, smem);
  else if constexpr (C == kCMax || C == kCLse) return row_allreduce(v, MaxOp{}, tpr, smem);
  else if constexpr (C == kCMin) return row_allreduce(v, MinOp{}, tpr, smem);
  else return row_allreduce(v, SumOp{}, tpr, smem);
}

// Rows: output o's elements are at kept.offset(o) + red.offset(r), r < n_red.
template <class T, class A, int C>
__global__ void k_reduce_rows(const T* __restrict__ x, T* __restrict__ y, int64_t n_out, int64_t n_red,
                              Walk<1> kept, Walk<1> red, int map, int fin, int tpr) {
  using R = Red<T, A, C>;
  __shared__ A smem[kThreads / 32];
  const int rpb = blockDim.x / tpr;  // rows per block
  const int lane = threadIdx.x % tpr;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * rpb + threadIdx.x / tpr; o < n_out;
       o += static_cast<int64_t>(gridDim.x) * rpb) {
    int64_t base;
    kept.offsets(o, &base);
    A shift = A(0);
    if constexpr (C == kCLse) {  // first pass: the row max
      A m = R::init();
      for (int64_t r = lane; r < n_red; r += tpr) {
        int64_t off;
        red.offsets(r, &off);
        m = R::comb(m, R::load(x[base + off]));
      }
      shift = R::shift_of(allreduce<A, kCMax>(m, tpr, smem));
    }
    A acc = C == kCLse ? A(0) : R::init();
    for (int64_t r = lane; r < n_red; r += tpr) {
      int64_t off;
      red.offsets(r, &off);
      const A v = R::load(x[base + off]);
      if constexpr (C == kCLse) acc += exp(v - shift);
      else acc = R::comb(acc, R::map(map, v));
    }
    if constexpr (C == kCLse) {
      acc = allreduce<A, kCSum>(acc, tpr, smem);
      if (lane == 0) y[o] = R::store(log(acc) + shift);
    } else {
      acc = allreduce<A, C>(acc, tpr, smem);
      if (lane == 0) y[o] = R::fin(fin, acc, n_red);
    }
  }
}

// Columns split along R: [outer, R, inner] with few outputs and long columns (ResNet's global average pool at
// batch 1: 2048 outputs of 49 rows). One thread per output walking all R rows made a chain of R dependent
// loads in one thread and only n / 256 blocks (8 blocks, 16 us on an H200 in the fourteenth session's kernel
// timeline); here a block is (cols, G): G threads share each column, thread g taking rows g, g + G, ..., and
// their partials are combined in g order (fixed: the result does not depend on timing). LOG_SUM_EXP keeps
// k_reduce_cols (its two passes would need the max across the G threads first).
template <class T, class A, int C>
__global__ void k_reduce_cols_split(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t n_red,
                                    int64_t inner, int map, int fin, bool allow_next) {
  using R = Red<T, A, C>;
  // The next kernel may start now where the executor says it waits for this one before it reads y (one of
  // Kiln's, launched programmatically: programmatic_launch.h). After ResNet-50's pool that is the classifier,
  // which loads its 4 MB of weights meanwhile.
  if (allow_next) allow_next_kernel_to_start();
  __shared__ A part[kThreads];
  const int cols = static_cast<int>(blockDim.x), g = static_cast<int>(threadIdx.y), G = static_cast<int>(blockDim.y);
  const int slot = g * cols + static_cast<int>(threadIdx.x);
  const int64_t n = outer * inner;
  // The loop bound is the same for the whole block: every thread reaches both barriers.
  for (int64_t t0 = static_cast<int64_t>(blockIdx.x) * cols; t0 < n; t0 += static_cast<int64_t>(gridDim.x) * cols) {
    const int64_t t = t0 + threadIdx.x;
    A acc = R::init();
    if (t < n) {
      const int64_t o = t / inner, i = t - o * inner;
      const T* p = x + o * n_red * inner + i;
#pragma unroll 4
      for (int64_t r = g; r < n_red; r += G) acc = R::comb(acc, R::map(map, R::load(p[r * inner])));
    }
    part[slot] = acc;
    __syncthreads();
    if (g == 0 && t < n) {
      for (int k = 1; k < G; ++k) acc = R::comb(acc, part[k * cols + threadIdx.x]);
      y[t] = R::fin(fin, acc, n_red);
    }
    __syncthreads();  // part is written again by the next tile
  }
}

// How many threads share a column in k_reduce_cols_split: enough for the grid to hold ~64K threads when the
// outputs alone do not, at least 4 rows a thread, at most 8 threads (1: the one-thread-a-column kernel).
int column_split(int64_t n_out, int64_t n_red) {
  int g = 1;
  while (g < 8 && 2 * g * 4 <= n_red && n_out * g < 65536) g *= 2;
  return g;
}

// Columns: [outer, R, inner], one thread per (o, i).
template <class T, class A, int C>
__global__ void k_reduce_cols(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t n_red,
                              int64_t inner, int map, int fin) {
  using R = Red<T, A, C>;
  const int64_t n = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += stride) {
    const int64_t o = t / inner, i = t - o * inner;
    const T* p = x + o * n_red * inner + i;
    if constexpr (C == kCLse) {
      A m = R::init();
      for (int64_t r = 0; r < n_red; ++r) m = R::comb(m, R::load(p[r * inner]));
      const A shift = R::shift_of(m);
      A s = A(0);
      for (int64_t r = 0; r < n_red; ++r) s += exp(R::load(p[r * inner]) - shift);
      y[t] = R::store(log(s) + shift);
    } else {
      A acc = R::init();
      for (int64_t r = 0; r < n_red; ++r) acc = R::comb(acc, R::map(map, R::load(p[r * inner])));
      y[t] = R::fin(fin, acc, n_red);
    }
  }
}

// The input seen as segments: alternating kept/reduced runs of dims (size-1 dims dropped).
struct Segments {
  Dims size, stride;  // element count and innermost input stride of each segment
  std::vector<bool> reduced;
};
Segments segments_of(const Dims& shape, const std::vector<bool>& red) {
  Segments s;
  const Dims st = contiguous_strides(shape);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!s.size.empty() && s.reduced.back() == red[d]) {
      s.size.back() *= shape[d];
      s.stride.back() = st[d];
    } else {
      s.size.push_back(shape[d]);
      s.stride.push_back(st[d]);
      s.reduced.push_back(red[d]);
    }
  }
  return s;
}

Walk<1> walk_of(const KernelContext& ctx, const Segments& s, bool reduced) {
  Dims dims;
  std::vector<Dims> strides(1);
  for (size_t i = 0; i < s.size.size(); ++i)
    if (s.reduced[i] == reduced) {
      dims.push_back(s.size[i]);
      strides[0].push_back(s.stride[i]);
    }
  return make_walk<1>(ctx, dims, strides);
}

template <class T, class A, int C>
void run_reduce(KernelContext& ctx, const Segments& seg, int64_t n_out, int64_t n_red, int map, int fin) {
  const TensorRef& x = ctx.in[0];
  T* y = ctx.out[0].as<T>();
  cudaStream_t s = ctx.stream();
  int nred = 0;
  for (bool r : seg.reduced) nred += r;
  // One reduced segment with kept dims after it: the column kernel when the inner extent fills warps.
  if (nred == 1 && !seg.reduced.empty() && !seg.reduced.back() && n_red > 0) {
    int64_t outer = 1, inner = 1;
    bool seen = false;
    for (size_t i = 0; i < seg.size.size(); ++i) {
      if (seg.reduced[i]) seen = true;
      else if (seen) inner *= seg.size[i];
      else outer *= seg.size[i];
    }
    if (inner >= 32 || n_out >= 8192) {
      const int g = C == kCLse ? 1 : column_split(n_out, n_red);
      if (g > 1) {
        const int cols = kThreads / g;
        const dim3 block(static_cast<unsigned>(cols), static_cast<unsigned>(g));
        k_reduce_cols_split<T, A, C><<<blocks_for((n_out + cols - 1) / cols, 1), block, 0, s>>>(
            x.as<T>(), y, outer, n_red, inner, map, fin, ctx.res.next_kernel_may_start);
        KILN_CUDA_LAUNCH_CHECK();
        return;
      }
      k_reduce_cols<T, A, C><<<blocks_for(n_out), kThreads, 0, s>>>(x.as<T>(), y, outer, n_red, inner, map, fin);
      KILN_CUDA_LAUNCH_CHECK();
      return;
    }
  }
  Walk<1> kept = walk_of(ctx, seg, false), red = walk_of(ctx, seg, true);
  const int tpr = threads_per_row(n_red);
  const int rpb = kThreads / tpr;
  k_reduce_rows<T, A, C><<<blocks_for((n_out + rpb - 1) / rpb, 1), kThreads, 0, s>>>(x.as<T>(), y, n_out, n_red, kept,
                                                                                       red, map, fin, tpr);
  KILN_CUDA_LAUNCH_CHECK();
}

template <class T>
void reduce_typed(KernelContext& ctx, int op, const Segments& seg, int64_t n_out, int64_t n_red) {
  using AF = Compute<T>;                                          // float, or the integer itself
  using AW = std::conditional_t<kFloatLike<T>, float, double>;    // integers' L2/LOG_SUM/LOG_SUM_EXP
  switch (op) {
    case kSum: return run_reduce<T, AF, kCSum>(ctx, seg, n_out, n_red, kMapId, kFinNone);
    case kAvg: return run_reduce<T, AF, kCSum>(ctx, seg, n_out, n_red, kMapId, kFinAvg);
    case kL1: return run_reduce<T, AF, kCSum>(ctx, seg, n_out, n_red, kMapAbs, kFinNone);
    case kSumSquare: return run_reduce<T, AF, kCSum>(ctx, seg, n_out, n_red, kMapSquare, kFinNone);
    case kL2: return run_reduce<T, AW, kCSum>(ctx, seg, n_out, n_red, kMapSquare, kFinSqrt);
    case kLogSum: return run_reduce<T, AW, kCSum>(ctx, seg, n_out, n_red, kMapId, kFinLog);
    case kProd: return run_reduce<T, AF, kCProd>(ctx, seg, n_out, n_red, kMapId, kFinNone);
    case kMax: return run_reduce<T, AF, kCMax>(ctx, seg, n_out, n_red, kMapId, kFinNone);
    case kMin: return run_reduce<T, AF, kCMin>(ctx, seg, n_out, n_red, kMapId, kFinNone);
    case kLogSumExp: return run_reduce<T, AW, kCLse>(ctx, seg, n_out, n_red, kMapId, kFinNone);
    default: ctx.fail("unknown reduce op " + std::to_string(op));
  }
}

bool reduce_dtype_ok(DataType t) { return is_float_type(t) || t == DataType::kINT32 || t == DataType::kINT64; }

bool supports_reduce(const ir::Node&, const std::vector<ir::TensorInfo>& in) {
  return !in.empty() && reduce_dtype_ok(in[0].dtype);
}

// The axes input's values. The output shape depends on them, so the runtime's shape analysis has read them
// on the host (a constant, host-computed shape arithmetic, or a network input read as a shape tensor).
std::vector<int64_t> runtime_axes_of(const KernelContext& ctx) {
  const TensorRef& a = ctx.in[1];
  if (a.numel() == 0) return {};
  if (!a.host) ctx.fail("input 1 (axes) must be known on the host (it is computed on the device)");
  if (a.dtype != DataType::kINT32 && a.dtype != DataType::kINT64)
    ctx.fail(std::string("input 1 (axes) must be int32 or int64, got ") + dtype_name(a.dtype));
  return a.host_i64();
}

void reduce_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  if (!reduce_dtype_ok(x.dtype)) ctx.fail(std::string("Reduce on ") + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int op = static_cast<int>(ctx.attrs().i("op", 0));
  std::vector<bool> red(rank, false);
  // Run-time axes (input 1, ONNX opset 18) override the attribute; with noop_with_empty_axes an empty list
  // reduces nothing (each element is then mapped and finalized alone: |x| for L1, log(x) for LOG_SUM, ...).
  // As the CPU kernel.
  const bool runtime_axes = ctx.has_input(1);
  const std::vector<int64_t> axes = runtime_axes ? runtime_axes_of(ctx) : ctx.attrs().ints("axes");
  if (axes.empty() && !(runtime_axes && ctx.attrs().i("noop_with_empty_axes", 0))) red.assign(rank, true);
  for (int64_t a : axes) red[norm_axis(ctx, a, rank)] = true;
  int64_t n_red = 1;
  for (int64_t d = 0; d < rank; ++d)
    if (red[d]) n_red *= x.shape[d];
  const int64_t n_out = ctx.out[0].numel();
  if (n_out <= 0) return;
  Segments seg = segments_of(x.shape, red);
  if (n_red == 0) {  // an empty reduced axis: no elements to walk, the identity is the result
    seg.size.push_back(0);
    seg.stride.push_back(1);
    seg.reduced.push_back(true);
  }
  dispatch_float_i32_i64(x.dtype, [&](auto tag) { reduce_typed<decltype(tag)>(ctx, op, seg, n_out, n_red); });
}

// ============================================== ArgMinMax =================================================
// Values compare as float (float types) or int64 (integers); ties keep the first index (the last with
// select_last_index).

template <class T> using Key = std::conditional_t<kFloatLike<T>, float, int64_t>;

template <class K> struct ArgBest {
  bool is_max, last;
  // Whether (v, i) beats (bv, bi).
  __device__ __forceinline__ bool better(K v, int64_t i, K bv, int64_t bi) const {
    if (v == bv) return last ? i > bi : i < bi;
    return is_max ? v > bv : v < bv;
  }
};

template <class T>
__global__ void k_argminmax_rows(const T* __restrict__ x, int64_t* __restrict__ y, int64_t n_out, int64_t n_red,
                                 ArgBest<Key<T>> cmp, int tpr) {
  using K = Key<T>;
  __shared__ K sv[kThreads / 32];
  __shared__ int64_t si[kThreads / 32];
  const int rpb = blockDim.x / tpr;
  const int lane = threadIdx.x % tpr;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * rpb + threadIdx.x / tpr; o < n_out;
       o += static_cast<int64_t>(gridDim.x) * rpb) {
    const T* row = x + o * n_red;
    K bv = static_cast<K>(load_c(row[0]));
    int64_t bi = lane < n_red ? lane : 0;
    if (lane < n_red) bv = static_cast<K>(load_c(row[lane]));
    for (int64_t r = lane + tpr; r < n_red; r += tpr) {
      const K v = static_cast<K>(load_c(row[r]));
      if (cmp.better(v, r, bv, bi)) { bv = v; bi = r; }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      const K v = __shfl_xor_sync(0xffffffffu, bv, off);
      const int64_t i = __shfl_xor_sync(0xffffffffu, bi, off);
      if (cmp.better(v, i, bv, bi)) { bv = v; bi = i; }
    }
    if (tpr > 32) {  // whole-block rows: combine the warps' winners
      __syncthreads();
      if ((threadIdx.x & 31) == 0) {
        sv[threadIdx.x >> 5] = bv;
        si[threadIdx.x >> 5] = bi;
      }
      __syncthreads();
      bv = sv[0];
      bi = si[0];
      for (int w = 1; w < (tpr >> 5); ++w)
        if (cmp.better(sv[w], si[w], bv, bi)) { bv = sv[w]; bi = si[w]; }
    }
    if (lane == 0) y[o] = bi;
  }
}

template <class T>
__global__ void k_argminmax_cols(const T* __restrict__ x, int64_t* __restrict__ y, int64_t outer, int64_t n_red,
                                 int64_t inner, ArgBest<Key<T>> cmp) {
  using K = Key<T>;
  const int64_t n = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += stride) {
    const int64_t o = t / inner, i = t - o * inner;
    const T* p = x + o * n_red * inner + i;
    K bv = static_cast<K>(load_c(p[0]));
    int64_t bi = 0;
    for (int64_t r = 1; r < n_red; ++r) {
      const K v = static_cast<K>(load_c(p[r * inner]));
      if (cmp.better(v, r, bv, bi)) { bv = v; bi = r; }
    }
    y[t] = bi;
  }
}

bool argminmax_dtype_ok(DataType t) {
  return is_float_type(t) || t == DataType::kINT8 || t == DataType::kUINT8 || t == DataType::kINT32 ||
         t == DataType::kINT64;
}

bool supports_argminmax(const ir::Node&, const std::vector<ir::TensorInfo>& in) {
  return !in.empty() && argminmax_dtype_ok(in[0].dtype);
}

void argminmax_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  if (!argminmax_dtype_ok(x.dtype))
    ctx.fail(std::string("ArgMinMax on ") + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", 0), rank);
  const bool is_max = ctx.attrs().i("op", 0) == 0;
  const bool last = ctx.attrs().i("select_last_index", 0) != 0;
  const int64_t outer = prod(x.shape, 0, axis), n_red = x.shape[axis], inner = prod(x.shape, axis + 1, rank);
  if (ctx.out[0].numel() == 0) return;
  if (n_red == 0) ctx.fail("ArgMinMax over an empty axis");
  int64_t* y = ctx.out[0].as<int64_t>();
  cudaStream_t s = ctx.stream();
  dispatch_numeric(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    ArgBest<Key<T>> cmp{is_max, last};
    if (inner == 1) {
      const int tpr = threads_per_row(n_red);
      const int rpb = kThreads / tpr;
      k_argminmax_rows<T><<<blocks_for((outer + rpb - 1) / rpb, 1), kThreads, 0, s>>>(x.as<T>(), y, outer, n_red, cmp, tpr);
    } else {
      k_argminmax_cols<T><<<blocks_for(outer * inner), kThreads, 0, s>>>(x.as<T>(), y, outer, n_red, inner, cmp);
    }
    KILN_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Reduce", &reduce_kernel, &supports_reduce);
KILN_REGISTER_CUDA_KERNEL("ArgMinMax", &argminmax_kernel, &supports_argminmax);

}  // namespace kiln::cuda::kern
