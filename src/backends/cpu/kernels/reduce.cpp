// CPU kernels for the reductions and row-wise ops: Reduce, ArgMinMax, SoftMax, Normalization, TopK, CumSum.
//
// Each kernel views its input as [outer, R, inner] (R = the reduced/normalized extent). inner == 1 means
// contiguous rows, reduced with lane-split accumulators (vectorizable, and more accurate than one running
// sum); inner > 1 walks R rows of a contiguous inner block. Work is split over outer x inner blocks, or
// over pieces of R when there are too few rows to keep the pool busy.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"
#include "backends/cpu/kernels/convert.h"
#include "backends/cpu/kernels/vec_math.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

#pragma GCC diagnostic ignored "-Wpsabi"

namespace kiln::cpu {
namespace {

constexpr int64_t kInnerBlock = 512;  // inner elements per task in strided ([outer, R, inner]) loops

template <class F>
void dispatch_reduce_types(const KernelContext& ctx, DataType dt, F&& f) {
  switch (dt) {
    case DataType::kFLOAT: return f(float{});
    case DataType::kDOUBLE: return f(double{});
    case DataType::kINT32: return f(int32_t{});
    case DataType::kINT64: return f(int64_t{});
    case DataType::kINT8: return f(int8_t{});
    case DataType::kUINT8: return f(uint8_t{});
    case DataType::kINT16: return f(int16_t{});
    case DataType::kUINT16: return f(uint16_t{});
    case DataType::kUINT32: return f(uint32_t{});
    case DataType::kUINT64: return f(uint64_t{});
    default: ctx.fail(std::string("the CPU kernel does not support ") + dtype_name(dt) + " inputs");
  }
}

// ---------------------------------------------------------------------------------------------------------
// exp over a contiguous float/double block, in place (vectorized for float32).
struct VExpOp {
  template <class V> KILN_VM_INLINE V operator()(const V& x) const { return vm::exp<V>(x); }
};
KILN_TARGET_AVX512 void exp_inplace_avx512(float* p, int64_t n) { vm::map<vm::f16>(p, p, n, VExpOp{}); }
KILN_TARGET_AVX2 void exp_inplace_avx2(float* p, int64_t n) { vm::map<vm::f8>(p, p, n, VExpOp{}); }
void exp_inplace_base(float* p, int64_t n) { vm::map<vm::f4>(p, p, n, VExpOp{}); }
inline void exp_inplace(float* p, int64_t n) {
  switch (vm::isa()) {
    case vm::Isa::kAvx512: return exp_inplace_avx512(p, n);
    case vm::Isa::kAvx2: return exp_inplace_avx2(p, n);
    default: return exp_inplace_base(p, n);
  }
}
inline void exp_inplace(double* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = std::exp(p[i]);
}

// ================================================ Reduce ==================================================

enum RedOp : int64_t {
  kSum = 0, kProd = 1, kMax = 2, kMin = 3, kAvg = 4, kL1 = 64, kL2 = 65, kLogSum = 66, kLogSumExp = 67,
  kSumSquare = 68, kSumExpShifted = 1000  // internal: sum(exp(x - shift)), second pass of LOG_SUM_EXP
};

template <class T> inline T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) + static_cast<std::make_unsigned_t<T>>(b));
  else return a + b;
}
template <class T> inline T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    using W = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, U>;  // no int promotion overflow
    return static_cast<T>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b)));
  } else {
    return a * b;
  }
}

// A reduction: accumulator type A, identity, per-element map, combine, finalize.
template <class T, int64_t OP> struct Reducer {
  static constexpr bool kWide = std::is_integral_v<T> && (OP == kL2 || OP == kLogSum || OP == kSumExpShifted);
  using A = std::conditional_t<kWide, double, T>;
  static A init() {
    if constexpr (OP == kProd) return A(1);
    else if constexpr (OP == kMax) return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
    else if constexpr (OP == kMin) return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
    else return A(0);
  }
  static A map(T x, A shift) {
    if constexpr (OP == kL1) return x < T(0) ? A(-x) : A(x);
    else if constexpr (OP == kL2 || OP == kSumSquare) return wrap_mul(A(x), A(x));
    else if constexpr (OP == kSumExpShifted) return std::exp(A(x) - shift);
    else return A(x);
  }
  static A comb(A a, A b) {
    if constexpr (OP == kProd) return wrap_mul(a, b);
    else if constexpr (OP == kMax) return b > a ? b : a;
    else if constexpr (OP == kMin) return b < a ? b : a;
    else return wrap_add(a, b);
  }
  static T fin(A a, int64_t n, A shift) {
    if constexpr (OP == kAvg) {
      if constexpr (std::is_integral_v<A>) return n ? static_cast<T>(a / static_cast<A>(n)) : T(0);
      else return static_cast<T>(a / static_cast<A>(n));  // empty: 0/0 = NaN, as numpy
    }
    else if constexpr (OP == kL2) return static_cast<T>(std::sqrt(a));
    else if constexpr (OP == kLogSum) return static_cast<T>(std::log(a));
    else if constexpr (OP == kSumExpShifted) return static_cast<T>(std::log(a) + shift);
    else return static_cast<T>(a);
  }
};

// Wide accumulator for combining partial results: double for float32 (keeps long sums accurate).
template <class A> using WideOf = std::conditional_t<std::is_same_v<A, float>, double, A>;

// Reduces one contiguous row: 8 independent lanes (vectorizable) over blocks of kRowBlock elements, block
// results combined in double for float32, so long rows keep about float accuracy.
constexpr int64_t kRowBlock = 1024;
template <class R, class T>
inline typename R::A reduce_row(const T* x, int64_t n, typename R::A shift) {
  using A = typename R::A;
  using W = WideOf<A>;
  constexpr int L = 8;
  W total = static_cast<W>(R::init());
  for (int64_t b0 = 0; b0 < n || b0 == 0; b0 += kRowBlock) {
    const int64_t b1 = std::min(n, b0 + kRowBlock);
    A acc[L];
    for (int l = 0; l < L; ++l) acc[l] = R::init();
    int64_t i = b0;
    for (; i + L <= b1; i += L)
      for (int l = 0; l < L; ++l) acc[l] = R::comb(acc[l], R::map(x[i + l], shift));
    for (int l = 0; i < b1; ++i, ++l) acc[l] = R::comb(acc[l], R::map(x[i], shift));
    for (int w = L / 2; w >= 1; w /= 2)
      for (int l = 0; l < w; ++l) acc[l] = R::comb(acc[l], acc[l + w]);
    total = static_cast<W>(R::comb(total, static_cast<W>(acc[0])));
    if (n == 0) break;
  }
  return static_cast<A>(total);
}

// [outer, R, inner] view: out[o, i] = fin(reduce_r map(x[o, r, i])). `shift` (optional) holds one value per
// output element. `n_for_avg` is the element count AVG divides by.
template <class R, class T>
void reduce_view(ThreadPool* pool, const T* x, T* out, int64_t outer, int64_t red, int64_t inner,
                 const typename R::A* shift, int64_t n_for_avg) {
  using A = typename R::A;
  if (inner == 1) {
    const int threads = pool ? pool->num_threads() : 1;
    if (outer < 2 * threads && red >= 2 * kParallelGrainElems && threads > 1) {
      // Few long rows: split each row, combine the pieces.
      const int64_t pieces = std::min<int64_t>(4 * threads, red / kParallelGrainElems);
      std::vector<A> part(static_cast<size_t>(outer * pieces));
      parallel_range(pool, outer * pieces, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const int64_t o = t / pieces, p = t % pieces;
          const int64_t lo = red * p / pieces, hi = red * (p + 1) / pieces;
          part[t] = reduce_row<R>(x + o * red + lo, hi - lo, shift ? shift[o] : A(0));
        }
      });
      for (int64_t o = 0; o < outer; ++o) {
        A acc = R::init();
        for (int64_t p = 0; p < pieces; ++p) acc = R::comb(acc, part[o * pieces + p]);
        out[o] = R::fin(acc, n_for_avg, shift ? shift[o] : A(0));
      }
      return;
    }
    parallel_range(pool, outer, grain_for(red), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const A s = shift ? shift[o] : A(0);
        out[o] = R::fin(reduce_row<R>(x + o * red, red, s), n_for_avg, s);
      }
    });
    return;
  }
  const int64_t nb = (inner + kInnerBlock - 1) / kInnerBlock;
  parallel_range(pool, outer * nb, grain_for(red * std::min(inner, kInnerBlock)), [&](int64_t b, int64_t e) {
    using W = WideOf<A>;
    A acc[kInnerBlock];
    A sh[kInnerBlock];
    W tot[kInnerBlock];
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / nb, i0 = (t % nb) * kInnerBlock, len = std::min(inner - i0, kInnerBlock);
      for (int64_t i = 0; i < len; ++i) {
        tot[i] = static_cast<W>(R::init());
        sh[i] = shift ? shift[o * inner + i0 + i] : A(0);
      }
      for (int64_t r0 = 0; r0 < red; r0 += 256) {  // flush every 256 rows into the wide totals
        for (int64_t i = 0; i < len; ++i) acc[i] = R::init();
        for (int64_t r = r0; r < std::min(red, r0 + 256); ++r) {
          const T* xr = x + (o * red + r) * inner + i0;
          for (int64_t i = 0; i < len; ++i) acc[i] = R::comb(acc[i], R::map(xr[i], sh[i]));
        }
        for (int64_t i = 0; i < len; ++i) tot[i] = static_cast<W>(R::comb(tot[i], static_cast<W>(acc[i])));
      }
      T* orow = out + o * inner + i0;
      for (int64_t i = 0; i < len; ++i) orow[i] = R::fin(static_cast<A>(tot[i]), n_for_avg, sh[i]);
    }
  });
}

template <class T>
void reduce_dispatch(KernelContext& ctx, int64_t op, const T* x, T* out, int64_t outer, int64_t red, int64_t inner) {
  ThreadPool* p = ctx.pool;
  const int64_t n = red;
  switch (op) {
    case kSum: return reduce_view<Reducer<T, kSum>>(p, x, out, outer, red, inner, nullptr, n);
    case kProd: return reduce_view<Reducer<T, kProd>>(p, x, out, outer, red, inner, nullptr, n);
    case kMax: return reduce_view<Reducer<T, kMax>>(p, x, out, outer, red, inner, nullptr, n);
    case kMin: return reduce_view<Reducer<T, kMin>>(p, x, out, outer, red, inner, nullptr, n);
    case kAvg: return reduce_view<Reducer<T, kAvg>>(p, x, out, outer, red, inner, nullptr, n);
    case kL1: return reduce_view<Reducer<T, kL1>>(p, x, out, outer, red, inner, nullptr, n);
    case kL2: return reduce_view<Reducer<T, kL2>>(p, x, out, outer, red, inner, nullptr, n);
    case kLogSum: return reduce_view<Reducer<T, kLogSum>>(p, x, out, outer, red, inner, nullptr, n);
    case kSumSquare: return reduce_view<Reducer<T, kSumSquare>>(p, x, out, outer, red, inner, nullptr, n);
    case kLogSumExp: {
      // max first, then log(sum(exp(x - max))) + max; an all -inf row stays -inf.
      using A = typename Reducer<T, kSumExpShifted>::A;
      std::vector<T> m(static_cast<size_t>(outer * inner));
      reduce_view<Reducer<T, kMax>>(p, x, m.data(), outer, red, inner, nullptr, n);
      std::vector<A> shift(m.size());
      for (size_t i = 0; i < m.size(); ++i) shift[i] = std::isfinite(static_cast<double>(m[i])) ? A(m[i]) : A(0);
      return reduce_view<Reducer<T, kSumExpShifted>>(p, x, out, outer, red, inner, shift.data(), n);
    }
    default: ctx.fail("unknown reduce op " + std::to_string(op));
  }
}

// Collapses x's dims into alternating kept/reduced segments (size-1 dims dropped).
struct Segments {
  Dims size;
  std::vector<bool> reduced;
};
Segments segments_of(const Dims& shape, const std::vector<bool>& red) {
  Segments s;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!s.size.empty() && s.reduced.back() == red[d]) {
      s.size.back() *= shape[d];
    } else {
      s.size.push_back(shape[d]);
      s.reduced.push_back(red[d]);
    }
  }
  return s;
}

template <class T>
void reduce_typed(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int64_t op = ctx.attrs().i("op", 0);
  std::vector<bool> red(rank, false);
  // Run-time axes (input 1) override the attribute; with noop_with_empty_axes an empty list reduces nothing
  // (each element is then mapped and finalized alone: |x| for L1/L2, log(x) for LOG_SUM, ...).
  const bool runtime_axes = ctx.has_input(1);
  std::vector<int64_t> axes = runtime_axes ? ctx.in[1].to_i64() : ctx.attrs().ints("axes");
  if (axes.empty() && !(runtime_axes && ctx.attrs().i("noop_with_empty_axes", 0))) red.assign(rank, true);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank)
      ctx.fail("axis " + std::to_string(a) + " is out of range for the " + std::to_string(rank) + "-D input " +
               dims_str(x.shape));
    red[a < 0 ? a + rank : a] = true;
  }
  int64_t n_red = 1;
  for (int64_t d = 0; d < rank; ++d)
    if (red[d]) n_red *= x.shape[d];
  T* out = ctx.out[0].as<T>();
  const int64_t n_out = ctx.out[0].numel();
  if (n_out == 0) return;
  Segments seg = segments_of(x.shape, red);
  int nred = 0;
  for (bool r : seg.reduced) nred += r;
  if (nred <= 1) {
    int64_t outer = 1, r = 1, inner = 1;
    bool seen = false;
    for (size_t i = 0; i < seg.size.size(); ++i) {
      if (seg.reduced[i]) { r = seg.size[i]; seen = true; }
      else if (seen) inner *= seg.size[i];
      else outer *= seg.size[i];
    }
    if (n_red == 0) r = 0;
    return reduce_dispatch<T>(ctx, op, x.as<T>(), out, outer, r, inner);
  }
  // Several reduced segments: transpose to [kept..., reduced...] and reduce contiguous rows.
  Dims strides = contiguous_strides(x.shape), pdims, pstrides;
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t d = 0; d < rank; ++d)
      if (red[d] == (pass == 1)) {
        pdims.push_back(x.shape[d]);
        pstrides.push_back(strides[d]);
      }
  std::vector<T> tmp(static_cast<size_t>(x.numel()));
  strided_copy(ctx.pool, x.as<T>(), pdims, pstrides, tmp.data());
  reduce_dispatch<T>(ctx, op, tmp.data(), out, n_out, n_red, 1);
}

void reduce_kernel(KernelContext& ctx) {
  if (ctx.input(0).dtype == DataType::kBOOL) {
    // MAX/MIN of bools (any/all) on their 0/1 bytes; an empty MIN gives uint8's identity 255, i.e. true.
    reduce_typed<uint8_t>(ctx);
    uint8_t* y = ctx.out[0].as<uint8_t>();
    for (int64_t i = 0; i < ctx.out[0].numel(); ++i) y[i] = y[i] != 0;
    return;
  }
  dispatch_reduce_types(ctx, ctx.input(0).dtype, [&](auto tag) { reduce_typed<decltype(tag)>(ctx); });
}

// ============================================== ArgMinMax =================================================

template <class T, bool MAX, bool LAST>
inline bool better(T v, T best) {
  if constexpr (MAX) return LAST ? v >= best : v > best;
  else return LAST ? v <= best : v < best;
}

template <class T, bool MAX, bool LAST>
void argminmax_view(ThreadPool* pool, const T* x, int64_t* out, int64_t outer, int64_t red, int64_t inner) {
  if (inner == 1) {
    parallel_range(pool, outer, grain_for(red), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* row = x + o * red;
        T best = row[0];
        int64_t bi = 0;
        for (int64_t r = 1; r < red; ++r)
          if (better<T, MAX, LAST>(row[r], best)) {
            best = row[r];
            bi = r;
          }
        out[o] = bi;
      }
    });
    return;
  }
  const int64_t nb = (inner + kInnerBlock - 1) / kInnerBlock;
  parallel_range(pool, outer * nb, grain_for(red * std::min(inner, kInnerBlock)), [&](int64_t b, int64_t e) {
    T best[kInnerBlock];
    int64_t idx[kInnerBlock];
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / nb, i0 = (t % nb) * kInnerBlock, len = std::min(inner - i0, kInnerBlock);
      const T* base = x + o * red * inner + i0;
      for (int64_t i = 0; i < len; ++i) {
        best[i] = base[i];
        idx[i] = 0;
      }
      for (int64_t r = 1; r < red; ++r) {
        const T* xr = base + r * inner;
        for (int64_t i = 0; i < len; ++i) {
          const bool take = better<T, MAX, LAST>(xr[i], best[i]);
          best[i] = take ? xr[i] : best[i];
          idx[i] = take ? r : idx[i];
        }
      }
      std::copy(idx, idx + len, out + o * inner + i0);
    }
  });
}

void argminmax_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = ctx.attrs().i("axis", 0);
  if (axis < 0) axis += rank;
  const bool is_max = ctx.attrs().i("op", 0) == 0;
  const bool last = ctx.attrs().i("select_last_index", 0) != 0;
  const int64_t outer = prod_dims(x.shape, 0, axis), red = x.shape[axis];
  const int64_t inner = prod_dims(x.shape, axis + 1, rank);
  if (ctx.out[0].numel() == 0) return;
  if (red == 0) ctx.fail("ArgMinMax over an empty axis");
  int64_t* out = ctx.out[0].as<int64_t>();
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* xs = x.as<T>();
    if (is_max && last) argminmax_view<T, true, true>(ctx.pool, xs, out, outer, red, inner);
    else if (is_max) argminmax_view<T, true, false>(ctx.pool, xs, out, outer, red, inner);
    else if (last) argminmax_view<T, false, true>(ctx.pool, xs, out, outer, red, inner);
    else argminmax_view<T, false, false>(ctx.pool, xs, out, outer, red, inner);
  };
  switch (x.dtype) {
    case DataType::kFLOAT: return run(float{});
    case DataType::kDOUBLE: return run(double{});
    case DataType::kINT32: return run(int32_t{});
    case DataType::kINT64: return run(int64_t{});
    case DataType::kINT8: return run(int8_t{});
    case DataType::kUINT8: return run(uint8_t{});
    case DataType::kINT16: return run(int16_t{});
    case DataType::kUINT16: return run(uint16_t{});
    case DataType::kUINT32: return run(uint32_t{});
    case DataType::kUINT64: return run(uint64_t{});
    default: ctx.fail(std::string("the CPU kernel does not support ") + dtype_name(x.dtype) + " inputs");
  }
}

// =============================================== SoftMax ==================================================

// Contiguous float32 rows, one pass for max, one for exp+sum, one for the scale.
template <class V>
KILN_VM_INLINE void softmax_row_f32(const float* x, float* y, int64_t n, bool log) {
  constexpr int L = vm::lanes<V>;
  V vmax = vm::splat<V>(-std::numeric_limits<float>::infinity()), vmax2 = vmax;
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {  // two chains
    vmax = vm::max<V>(vmax, vm::load<V>(x + i));
    vmax2 = vm::max<V>(vmax2, vm::load<V>(x + i + L));
  }
  for (; i + L <= n; i += L) vmax = vm::max<V>(vmax, vm::load<V>(x + i));
  float m = vm::hmax<V>(vm::max<V>(vmax, vmax2));
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  if (!std::isfinite(m)) m = 0.0f;  // all -inf (or inf/NaN): let the arithmetic below produce NaN/0 as it may
  const V vm_ = vm::splat<V>(m);
  const int64_t nfull = n - n % L;
  double total = 0.0;  // block sums in double: long rows keep float accuracy
  for (i = 0; i < nfull;) {
    const int64_t end = std::min(nfull, i + 1024);
    V vsum = vm::splat<V>(0.0f), vsum2 = vsum;
    for (; i + 2 * L <= end; i += 2 * L) {  // two independent exp chains
      const V e = vm::exp<V>(vm::load<V>(x + i) - vm_);
      const V e2 = vm::exp<V>(vm::load<V>(x + i + L) - vm_);
      vsum += e;
      vsum2 += e2;
      if (!log) {
        vm::store<V>(y + i, e);
        vm::store<V>(y + i + L, e2);
      }
    }
    for (; i < end; i += L) {
      const V e = vm::exp<V>(vm::load<V>(x + i) - vm_);
      vsum += e;
      if (!log) vm::store<V>(y + i, e);
    }
    total += vm::hsum<V>(vsum + vsum2);
  }
  float s = static_cast<float>(total);
  if (i < n) {
    float buf[L] = {};
    for (int64_t k = i; k < n; ++k) buf[k - i] = x[k] - m;
    V e = vm::exp<V>(vm::load<V>(buf));
    double ts = total;
    for (int64_t k = i; k < n; ++k) {
      ts += e[k - i];
      if (!log) y[k] = e[k - i];
    }
    s = static_cast<float>(ts);
  }
  if (log) {
    const float c = m + std::log(s);
    for (int64_t k = 0; k < n; ++k) y[k] = x[k] - c;
  } else {
    const float inv = 1.0f / s;
    for (int64_t k = 0; k < n; ++k) y[k] *= inv;
  }
}
KILN_TARGET_AVX512 void softmax_rows_avx512(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) softmax_row_f32<vm::f16>(x + r * n, y + r * n, n, log);
}
KILN_TARGET_AVX2 void softmax_rows_avx2(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) softmax_row_f32<vm::f8>(x + r * n, y + r * n, n, log);
}
void softmax_rows_base(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) softmax_row_f32<vm::f4>(x + r * n, y + r * n, n, log);
}

template <class T>
void softmax_row_scalar(const T* x, T* y, int64_t n, bool log) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  if (!std::isfinite(m)) m = 0;
  T s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T e = std::exp(x[i] - m);
    s += e;
    if (!log) y[i] = e;
  }
  if (log) {
    const T c = m + std::log(s);
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] - c;
  } else {
    const T inv = T(1) / s;
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  }
}

// Strided softmax: [outer, R, inner], vectors along inner.
template <class T>
void softmax_strided(ThreadPool* pool, const T* x, T* y, int64_t outer, int64_t red, int64_t inner, bool log) {
  const int64_t nb = (inner + kInnerBlock - 1) / kInnerBlock;
  parallel_range(pool, outer * nb, grain_for(3 * red * std::min(inner, kInnerBlock)), [&](int64_t b, int64_t e) {
    T m[kInnerBlock], s[kInnerBlock];
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / nb, i0 = (t % nb) * kInnerBlock, len = std::min(inner - i0, kInnerBlock);
      const T* xb = x + o * red * inner + i0;
      T* yb = y + o * red * inner + i0;
      for (int64_t i = 0; i < len; ++i) {
        m[i] = -std::numeric_limits<T>::infinity();
        s[i] = 0;
      }
      for (int64_t r = 0; r < red; ++r)
        for (int64_t i = 0; i < len; ++i) m[i] = xb[r * inner + i] > m[i] ? xb[r * inner + i] : m[i];
      for (int64_t i = 0; i < len; ++i)
        if (!std::isfinite(m[i])) m[i] = 0;
      for (int64_t r = 0; r < red; ++r) {
        T* yr = yb + r * inner;
        for (int64_t i = 0; i < len; ++i) yr[i] = xb[r * inner + i] - m[i];
        exp_inplace(yr, len);
        for (int64_t i = 0; i < len; ++i) s[i] += yr[i];
      }
      if (log) {
        for (int64_t i = 0; i < len; ++i) m[i] += std::log(s[i]);
        for (int64_t r = 0; r < red; ++r)
          for (int64_t i = 0; i < len; ++i) yb[r * inner + i] = xb[r * inner + i] - m[i];
      } else {
        for (int64_t i = 0; i < len; ++i) s[i] = T(1) / s[i];
        for (int64_t r = 0; r < red; ++r)
          for (int64_t i = 0; i < len; ++i) yb[r * inner + i] *= s[i];
      }
    }
  });
}

void softmax_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < 0) axis += rank;
  const bool log = ctx.attrs().i("log", 0) != 0;
  const int64_t outer = prod_dims(x.shape, 0, axis), red = x.shape[axis];
  const int64_t inner = prod_dims(x.shape, axis + 1, rank);
  if (x.numel() == 0) return;
  if (x.dtype == DataType::kFLOAT) {
    const float* xs = x.as<float>();
    float* ys = ctx.out[0].as<float>();
    if (inner == 1) {
      parallel_range(ctx.pool, outer, grain_for(8 * red), [&](int64_t b, int64_t e) {
        switch (vm::isa()) {
          case vm::Isa::kAvx512: return softmax_rows_avx512(xs + b * red, ys + b * red, e - b, red, log);
          case vm::Isa::kAvx2: return softmax_rows_avx2(xs + b * red, ys + b * red, e - b, red, log);
          default: return softmax_rows_base(xs + b * red, ys + b * red, e - b, red, log);
        }
      });
    } else {
      softmax_strided<float>(ctx.pool, xs, ys, outer, red, inner, log);
    }
    return;
  }
  if (x.dtype == DataType::kDOUBLE) {
    const double* xs = x.as<double>();
    double* ys = ctx.out[0].as<double>();
    if (inner == 1) {
      parallel_range(ctx.pool, outer, grain_for(8 * red), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) softmax_row_scalar(xs + o * red, ys + o * red, red, log);
      });
    } else {
      softmax_strided<double>(ctx.pool, xs, ys, outer, red, inner, log);
    }
    return;
  }
  ctx.fail(std::string("SoftMax on ") + dtype_name(x.dtype) + " is not supported by the CPU kernel");
}

// ============================================ Normalization ===============================================

// A scale/bias tensor seen from a [rows, D] view of x: element (r, j) sits at row_off(r) + col_off[j].
template <class T>
struct ParamView {
  std::vector<T> data;  // converted to T
  Dims row_dims, row_strides;
  std::vector<int64_t> col_off;
  bool col_const = true, col_contig = true, row_const = true;

  int64_t row_off(int64_t r) const {
    int64_t off = 0;
    for (size_t d = row_dims.size(); d-- > 0 && r > 0;) {
      off += (r % row_dims[d]) * row_strides[d];
      r /= row_dims[d];
    }
    return off;
  }
};

// `wdims`: the working dims of x; `pshape`: the param's dims aligned to wdims; split: first stat dim.
template <class T>
ParamView<T> make_param_view(const TensorRef& t, const Dims& wdims, const Dims& pshape, size_t split) {
  ParamView<T> v;
  v.data.resize(static_cast<size_t>(t.numel()));
  if (t.dtype == DataType::kFLOAT) std::copy(t.as<float>(), t.as<float>() + t.numel(), v.data.begin());
  else if (t.dtype == DataType::kDOUBLE) std::copy(t.as<double>(), t.as<double>() + t.numel(), v.data.begin());
  else for (int64_t i = 0; i < t.numel(); ++i) v.data[i] = static_cast<T>(t.get_f64(i));
  Dims st(wdims.size(), 0);
  int64_t acc = 1;
  for (size_t d = wdims.size(); d-- > 0;) {
    st[d] = pshape[d] == 1 ? 0 : acc;
    acc *= pshape[d];
  }
  for (size_t d = 0; d < split; ++d) {
    v.row_dims.push_back(wdims[d]);
    v.row_strides.push_back(st[d]);
    if (st[d] != 0 && wdims[d] != 1) v.row_const = false;
  }
  Dims cdims(wdims.begin() + split, wdims.end()), cst(st.begin() + split, st.end());
  const int64_t D = volume(cdims);
  v.col_off.resize(static_cast<size_t>(D));
  std::vector<int64_t> idx(cdims.size(), 0);
  int64_t off = 0;
  for (int64_t j = 0; j < D; ++j) {
    v.col_off[j] = off;
    if (off != 0) v.col_const = false;
    if (off != j) v.col_contig = false;
    for (size_t d = cdims.size(); d-- > 0;) {
      ++idx[d];
      off += cst[d];
      if (idx[d] < cdims[d]) break;
      off -= idx[d] * cst[d];
      idx[d] = 0;
    }
  }
  return v;
}

// Sum of f(x[i]) over a contiguous row: 8 lanes per block of 1024, block sums in double.
template <class T, class F>
inline double row_sum(const T* x, int64_t n, F f) {
  constexpr int L = 8;
  double total = 0;
  for (int64_t b0 = 0; b0 < n; b0 += 1024) {
    const int64_t b1 = std::min(n, b0 + 1024);
    T acc[L] = {};
    int64_t i = b0;
    for (; i + L <= b1; i += L)
      for (int l = 0; l < L; ++l) acc[l] += f(x[i + l]);
    for (int l = 0; i < b1; ++i, ++l) acc[l] += f(x[i]);
    T s = 0;
    for (int l = 0; l < L; ++l) s += acc[l];
    total += static_cast<double>(s);
  }
  return total;
}

// Mean and 1/sqrt(var + eps) of a contiguous row (two passes over data in cache).
template <class T>
inline void row_stats(const T* x, int64_t n, double eps, T* mean_out, T* rstd_out) {
  const T mean = static_cast<T>(row_sum(x, n, [](T v) { return v; }) / static_cast<double>(n));
  const double var = row_sum(x, n, [mean](T v) { return (v - mean) * (v - mean); }) / static_cast<double>(n);
  *mean_out = mean;
  *rstd_out = static_cast<T>(1.0 / std::sqrt(var + eps));
}

template <class T>
void normalize_rows(ThreadPool* pool, const T* x, T* y, int64_t rows, int64_t D, double eps,
                    const ParamView<T>& sc, const ParamView<T>& bi) {
  const bool s_vec = !sc.col_const, b_vec = !bi.col_const;
  const bool need_gather = (s_vec && !sc.col_contig) || (b_vec && !bi.col_contig);
  parallel_range(pool, rows, grain_for(3 * D), [&](int64_t b, int64_t e) {
    std::vector<T> sbuf, bbuf;
    if (need_gather) {
      sbuf.resize(static_cast<size_t>(D));
      bbuf.resize(static_cast<size_t>(D));
    }
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * D;
      T* yr = y + r * D;
      T mean, rstd;
      row_stats(xr, D, eps, &mean, &rstd);
      const T* sp = sc.data.data() + sc.row_off(r);
      const T* bp = bi.data.data() + bi.row_off(r);
      if (s_vec && !sc.col_contig) {
        for (int64_t j = 0; j < D; ++j) sbuf[j] = sp[sc.col_off[j]];
        sp = sbuf.data();
      }
      if (b_vec && !bi.col_contig) {
        for (int64_t j = 0; j < D; ++j) bbuf[j] = bp[bi.col_off[j]];
        bp = bbuf.data();
      }
      if (s_vec && b_vec) {
        for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - mean) * rstd * sp[j] + bp[j];
      } else if (s_vec) {
        const T b0 = *bp;
        for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - mean) * rstd * sp[j] + b0;
      } else if (b_vec) {
        const T a = rstd * *sp;
        for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - mean) * a + bp[j];
      } else {
        const T a = rstd * *sp, c = *bp - mean * a;
        for (int64_t j = 0; j < D; ++j) yr[j] = xr[j] * a + c;
      }
    }
  });
}

// Computes y in T (x's dtype) into ys.
template <class T>
void normalization_typed(KernelContext& ctx, T* ys) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& scale = ctx.input(1);
  const TensorRef& bias = ctx.input(2);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const double eps = ctx.attrs().f("epsilon", 1e-5);
  const int64_t groups = ctx.attrs().i("num_groups", 1);
  std::vector<bool> stat(rank, false);
  for (int64_t a : ctx.attrs().ints("axes")) stat[a < 0 ? a + rank : a] = true;
  auto aligned = [&](const Dims& s) {
    Dims p(rank, 1);
    for (size_t k = 0; k < s.size(); ++k) p[rank - s.size() + k] = s[k];
    return p;
  };
  Dims wdims = x.shape, ps = aligned(scale.shape), pb = aligned(bias.shape);
  std::vector<bool> wstat = stat;
  if (groups > 1) {  // split channels [C] into [G, C/G]; statistics per group
    const int64_t c = x.shape[1];
    if (c % groups) ctx.fail("channel count is not divisible by num_groups");
    auto split = [&](Dims d) {
      Dims o{d[0]};
      if (d[1] == 1) o.insert(o.end(), {1, 1});
      else o.insert(o.end(), {groups, c / groups});
      o.insert(o.end(), d.begin() + 2, d.end());
      return o;
    };
    wdims = split(x.shape);
    ps = split(ps);
    pb = split(pb);
    wstat.assign(rank + 1, false);
    wstat[0] = stat[0];
    wstat[1] = stat[1];
    wstat[2] = true;
    for (int64_t d = 2; d < rank; ++d) wstat[d + 1] = stat[d];
  }
  // Statistics dims must form a suffix (ignoring size-1 dims) for the row path.
  const size_t wr = wdims.size();
  size_t split = wr;
  while (split > 0 && (wstat[split - 1] || wdims[split - 1] == 1)) --split;
  bool suffix = true;
  for (size_t d = 0; d < split; ++d)
    if (wstat[d] && wdims[d] != 1) suffix = false;
  const T* xs = x.as<T>();
  if (x.numel() == 0) return;
  if (suffix) {
    const int64_t D = prod_dims(wdims, split, wr), rows = prod_dims(wdims, 0, split);
    ParamView<T> sv = make_param_view<T>(scale, wdims, ps, split), bv = make_param_view<T>(bias, wdims, pb, split);
    return normalize_rows<T>(ctx.pool, xs, ys, rows, D, eps, sv, bv);
  }
  // General layout: transpose to [kept..., stat...], normalize rows, transpose back, then scale and bias.
  Dims strides = contiguous_strides(wdims), pdims, pstr, kept_dims, stat_dims;
  std::vector<size_t> order;
  for (int pass = 0; pass < 2; ++pass)
    for (size_t d = 0; d < wr; ++d)
      if (wstat[d] == (pass == 1)) {
        order.push_back(d);
        pdims.push_back(wdims[d]);
        pstr.push_back(strides[d]);
      }
  const int64_t total = x.numel();
  std::vector<T> a(static_cast<size_t>(total)), b(static_cast<size_t>(total));
  strided_copy(ctx.pool, xs, pdims, pstr, a.data());
  int64_t D = 1;
  for (size_t d = 0; d < wr; ++d)
    if (wstat[d]) D *= wdims[d];
  ParamView<T> one, zero;
  one.data = {T(1)};
  zero.data = {T(0)};
  one.col_off = zero.col_off = {0};
  normalize_rows<T>(ctx.pool, a.data(), b.data(), total / D, D, eps, one, zero);
  // Back to x's layout: output dim d lives at position pos[d] of the permuted buffer.
  Dims pst = contiguous_strides(pdims), back(wr);
  for (size_t k = 0; k < wr; ++k) back[order[k]] = pst[k];
  strided_copy(ctx.pool, b.data(), wdims, back, ys);
  // y = y * scale + bias with broadcasting (in x's own dims).
  ParamView<T> sv = make_param_view<T>(scale, x.shape, aligned(scale.shape), 0);
  ParamView<T> bv = make_param_view<T>(bias, x.shape, aligned(bias.shape), 0);
  parallel_range(ctx.pool, total, kParallelGrainElems, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) ys[i] = ys[i] * sv.data[sv.col_off[i]] + bv.data[bv.col_off[i]];
  });
}

// y in x's dtype T, stored in the output's dtype (output_dtype, passes/fold_normalization_cast): directly when
// they are the same, else through a T buffer converted as the Cast kernel converts (convert.h), so the result
// is the op followed by a Cast, byte for byte.
template <class T>
void normalization_into_output(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  const DataType xt = ctx.input(0).dtype;
  if (y.dtype == xt) return normalization_typed<T>(ctx, y.as<T>());
  std::vector<T> tmp(static_cast<size_t>(y.numel()));
  normalization_typed<T>(ctx, tmp.data());
  if (!convert_elements(ctx.pool, tmp.data(), xt, y.data, y.dtype, y.numel()))
    ctx.fail(std::string("Normalization cannot store its output as ") + dtype_name(y.dtype));
}

void normalization_kernel(KernelContext& ctx) {
  const DataType dt = ctx.input(0).dtype;
  if (dt == DataType::kFLOAT) return normalization_into_output<float>(ctx);
  if (dt == DataType::kDOUBLE) return normalization_into_output<double>(ctx);
  ctx.fail(std::string("Normalization on ") + dtype_name(dt) + " is not supported by the CPU kernel");
}

// ================================================= TopK ===================================================

template <class T, class I>
void topk_typed(KernelContext& ctx, int64_t axis, bool largest) {
  const TensorRef& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int64_t outer = prod_dims(x.shape, 0, axis), red = x.shape[axis];
  const int64_t inner = prod_dims(x.shape, axis + 1, rank);
  const int64_t k = ctx.out[0].shape[axis];
  if (k > red) ctx.fail("k = " + std::to_string(k) + " exceeds the axis size " + std::to_string(red));
  const T* xs = x.as<T>();
  T* vals = ctx.out[0].as<T>();
  I* idxs = ctx.out[1].as<I>();
  if (k == 0 || outer * inner == 0) return;
  // Order: NaN first when largest (last when smallest), then by value, ties by smaller index.
  auto before = [largest](const std::pair<T, int64_t>& a, const std::pair<T, int64_t>& b) {
    if constexpr (std::is_floating_point_v<T>) {
      const bool an = a.first != a.first, bn = b.first != b.first;
      if (an || bn) {
        if (an && bn) return a.second < b.second;
        return largest ? an : bn;
      }
    }
    if (a.first != b.first) return largest ? a.first > b.first : a.first < b.first;
    return a.second < b.second;
  };
  parallel_range(ctx.pool, outer * inner, grain_for(red * 4), [&](int64_t b, int64_t e) {
    std::vector<std::pair<T, int64_t>> buf(static_cast<size_t>(red));
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / inner, i = t % inner;
      const T* base = xs + o * red * inner + i;
      for (int64_t r = 0; r < red; ++r) buf[r] = {base[r * inner], r};
      if (k < red) std::partial_sort(buf.begin(), buf.begin() + k, buf.end(), before);
      else std::sort(buf.begin(), buf.end(), before);
      T* vo = vals + o * k * inner + i;
      I* io = idxs + o * k * inner + i;
      for (int64_t r = 0; r < k; ++r) {
        vo[r * inner] = buf[r].first;
        io[r * inner] = static_cast<I>(buf[r].second);
      }
    }
  });
}

void topk_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < 0) axis += rank;
  const bool largest = ctx.attrs().i("op", 0) == 0;
  const bool i32 = ctx.out[1].dtype == DataType::kINT32;
  dispatch_reduce_types(ctx, x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (i32) topk_typed<T, int32_t>(ctx, axis, largest);
    else topk_typed<T, int64_t>(ctx, axis, largest);
  });
}

// ================================================ CumSum ==================================================
// Running sums (or, with attr `product`, running products) along an axis.

template <class T, bool PROD>
void cumsum_typed(KernelContext& ctx, int64_t axis, bool exclusive, bool reverse) {
  const TensorRef& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int64_t outer = prod_dims(x.shape, 0, axis), red = x.shape[axis];
  const int64_t inner = prod_dims(x.shape, axis + 1, rank);
  const T* xs = x.as<T>();
  T* ys = ctx.out[0].as<T>();
  if (x.numel() == 0) return;
  const int64_t nb = (inner + kInnerBlock - 1) / kInnerBlock;
  parallel_range(ctx.pool, outer * nb, grain_for(red * std::min(inner, kInnerBlock)), [&](int64_t b, int64_t e) {
    T acc[kInnerBlock];
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / nb, i0 = (t % nb) * kInnerBlock, len = std::min(inner - i0, kInnerBlock);
      for (int64_t i = 0; i < len; ++i) acc[i] = PROD ? T(1) : T(0);
      auto step = [](T a, T v) {
        if constexpr (PROD) return wrap_mul(a, v);
        else return wrap_add(a, v);
      };
      for (int64_t s = 0; s < red; ++s) {
        const int64_t r = reverse ? red - 1 - s : s;
        const T* xr = xs + (o * red + r) * inner + i0;
        T* yr = ys + (o * red + r) * inner + i0;
        if (exclusive) {
          for (int64_t i = 0; i < len; ++i) {
            yr[i] = acc[i];
            acc[i] = step(acc[i], xr[i]);
          }
        } else {
          for (int64_t i = 0; i < len; ++i) {
            acc[i] = step(acc[i], xr[i]);
            yr[i] = acc[i];
          }
        }
      }
    }
  });
}

void cumsum_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = ctx.has_input(1) ? ctx.in[1].get_i64(0) : ctx.attrs().i("axis", 0);
  if (axis < -rank || axis >= rank)
    ctx.fail("axis " + std::to_string(axis) + " is out of range for a " + std::to_string(rank) + "-D tensor");
  if (axis < 0) axis += rank;
  const bool exclusive = ctx.attrs().i("exclusive", 0) != 0, reverse = ctx.attrs().i("reverse", 0) != 0;
  const bool product = ctx.attrs().i("product", 0) != 0;
  dispatch_reduce_types(ctx, x.dtype, [&](auto tag) {
    if (product) cumsum_typed<decltype(tag), true>(ctx, axis, exclusive, reverse);
    else cumsum_typed<decltype(tag), false>(ctx, axis, exclusive, reverse);
  });
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("Reduce", &reduce_kernel);
KILN_REGISTER_CPU_KERNEL("ArgMinMax", &argminmax_kernel);
KILN_REGISTER_CPU_KERNEL("SoftMax", &softmax_kernel);
KILN_REGISTER_CPU_KERNEL("Normalization", &normalization_kernel);
KILN_REGISTER_CPU_KERNEL("TopK", &topk_kernel);
KILN_REGISTER_CPU_KERNEL("CumSum", &cumsum_kernel);

}  // namespace kiln::cpu
