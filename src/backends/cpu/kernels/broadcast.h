// Numpy broadcasting for the CPU kernels, plus the small parallel-loop helpers they share.
//
// A BroadcastPlan describes how the flattened output of an n-ary broadcasting op maps onto its inputs.
// Output dims of size 1 are dropped and adjacent dims merged wherever every input stays contiguous across
// them, so the common cases collapse to very few dims:
//   equal shapes             -> one dim, every input stride 1
//   scalar operand           -> one dim, that input stride 0
//   trailing vector ([.., C] + [C])        -> [rows, C], the vector has row stride 0, inner stride 1
//   per channel ([N,C,H,W] + [1,C,1,1])    -> [N, C, H*W], the channel input has inner stride 0
// The innermost collapsed dim is walked by tight loops (inner stride 0 or 1 per input, so -O3 vectorizes
// them); the outer dims by an odometer, once per run.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "backends/cpu/thread_pool.h"
#include "kiln/types.h"

namespace kiln::cpu {

// Work units (about one simple element op each) a parallel chunk should cover at least, so that the pool's
// dispatch cost (tens of microseconds on a many-core VM) stays negligible.
constexpr int64_t kParallelGrainElems = 1 << 16;

// Items per chunk when each item costs about `cost` elements of work.
inline int64_t grain_for(int64_t cost, int64_t target = kParallelGrainElems) {
  return std::max<int64_t>(1, target / std::max<int64_t>(1, cost));
}

// fn(begin, end) over [0, n) on the pool, or inline when there is one chunk's worth of work, no pool,
// or the caller already runs inside a parallel region.
template <class Fn>
void parallel_range(ThreadPool* pool, int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (!pool || n <= grain || pool->num_threads() <= 1 || in_parallel_region()) {
    fn(int64_t{0}, n);
    return;
  }
  pool->parallel_for(n, grain, fn);
}

struct BroadcastPlan {
  static constexpr int kMaxInputs = 4;
  int num_inputs = 0;
  Dims dims;                                          // collapsed output dims, never empty
  std::array<Dims, kMaxInputs> strides;               // per input and collapsed dim; 0 = broadcast
  std::array<int64_t, kMaxInputs> inner_stride{};     // strides[i].back(): 0 or 1
  int64_t inner = 1;                                  // dims.back()
  int64_t rows = 1;                                   // product of the other collapsed dims
  int64_t total = 1;                                  // rows * inner

  // Offsets of the first element of row r in each input.
  void row_offsets(int64_t r, int64_t* off) const {
    for (int i = 0; i < num_inputs; ++i) off[i] = 0;
    for (int d = static_cast<int>(dims.size()) - 2; d >= 0 && r > 0; --d) {
      const int64_t idx = r % dims[d];
      r /= dims[d];
      for (int i = 0; i < num_inputs; ++i) off[i] += idx * strides[i][d];
    }
  }
};

// Plans the broadcast of `ins` (right-aligned, numpy rules) onto `out`. The caller has checked that the
// shapes broadcast; every input dim is either 1 or the output's.
inline BroadcastPlan make_broadcast_plan(const Dims& out, std::initializer_list<const Dims*> ins) {
  BroadcastPlan p;
  p.num_inputs = static_cast<int>(ins.size());
  const size_t r = out.size();
  // Full-rank strides per input (0 where broadcast).
  std::vector<Dims> st;
  for (const Dims* in : ins) {
    Dims s(r, 0);
    int64_t acc = 1;
    for (size_t k = 0; k < in->size(); ++k) {
      const size_t d_in = in->size() - 1 - k;
      const size_t d_out = r - 1 - k;
      const int64_t dim = (*in)[d_in];
      s[d_out] = (dim == 1 && out[d_out] != 1) ? 0 : acc;
      acc *= dim;
    }
    st.push_back(std::move(s));
  }
  // Drop size-1 output dims, then merge neighbours that stay contiguous for every input.
  Dims dims;
  std::vector<Dims> cs(p.num_inputs);
  for (size_t d = 0; d < r; ++d) {
    if (out[d] == 1) continue;
    bool merge = !dims.empty();
    for (int i = 0; i < p.num_inputs && merge; ++i) merge = cs[i].back() == st[i][d] * out[d];
    if (merge) {
      dims.back() *= out[d];
      for (int i = 0; i < p.num_inputs; ++i) cs[i].back() = st[i][d];
    } else {
      dims.push_back(out[d]);
      for (int i = 0; i < p.num_inputs; ++i) cs[i].push_back(st[i][d]);
    }
  }
  if (dims.empty()) {  // scalar output (or all dims 1)
    dims.push_back(1);
    for (int i = 0; i < p.num_inputs; ++i) cs[i].push_back(1);
  }
  for (int64_t d : out)
    if (d == 0) dims.assign(1, 0);  // empty output: nothing to visit
  if (dims.size() == 1 && dims[0] == 0)
    for (int i = 0; i < p.num_inputs; ++i) cs[i].assign(1, 1);
  p.dims = std::move(dims);
  for (int i = 0; i < p.num_inputs; ++i) {
    p.strides[i] = std::move(cs[i]);
    p.inner_stride[i] = p.strides[i].back();
  }
  p.inner = p.dims.back();
  p.rows = 1;
  for (size_t d = 0; d + 1 < p.dims.size(); ++d) p.rows *= p.dims[d];
  p.total = p.rows * p.inner;
  return p;
}

// Visits the flattened output range [begin, end) as runs that stay inside one row:
// fn(out_offset, const int64_t* in_offsets, len); within a run input i advances by inner_stride[i].
template <class Fn>
void for_each_run(const BroadcastPlan& p, int64_t begin, int64_t end, Fn&& fn) {
  if (begin >= end) return;
  const int nd = static_cast<int>(p.dims.size());
  const int ni = p.num_inputs;
  int64_t row = begin / p.inner, col = begin % p.inner;
  // Odometer over the outer dims.
  std::array<int64_t, BroadcastPlan::kMaxInputs> base{}, off{};
  std::vector<int64_t> idx(std::max(nd - 1, 0), 0);
  {
    int64_t r = row;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = r % p.dims[d];
      r /= p.dims[d];
      for (int i = 0; i < ni; ++i) base[i] += idx[d] * p.strides[i][d];
    }
  }
  int64_t pos = begin;
  while (pos < end) {
    const int64_t len = std::min(p.inner - col, end - pos);
    for (int i = 0; i < ni; ++i) off[i] = base[i] + col * p.inner_stride[i];
    fn(pos, off.data(), len);
    pos += len;
    col = 0;
    if (pos >= end) break;
    for (int d = nd - 2; d >= 0; --d) {  // next row
      ++idx[d];
      for (int i = 0; i < ni; ++i) base[i] += p.strides[i][d];
      if (idx[d] < p.dims[d]) break;
      for (int i = 0; i < ni; ++i) base[i] -= idx[d] * p.strides[i][d];
      idx[d] = 0;
    }
  }
}

// Runs for_each_run over the whole output, split across the pool.
template <class Fn>
void broadcast_parallel(ThreadPool* pool, const BroadcastPlan& p, int64_t grain_elems, Fn&& fn) {
  parallel_range(pool, p.total, grain_elems, [&](int64_t b, int64_t e) { for_each_run(p, b, e, fn); });
}

// Product of d[from, to): the outer/axis/inner sizes of [outer, axis, inner] views.
inline int64_t prod_dims(const Dims& d, size_t from, size_t to) {
  int64_t v = 1;
  for (size_t i = from; i < to && i < d.size(); ++i) v *= d[i];
  return v;
}

// Contiguous strides (in elements) of a row-major shape.
inline Dims contiguous_strides(const Dims& d) {
  Dims s(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) s[i - 1] = s[i] * d[i];
  return s;
}

// dst (contiguous, shape `dims`) = the strided view of src with element strides `strides` (0 repeats an
// element). Used for transposes (permuted strides), diagonals (summed strides) and expansions.
template <class T>
void strided_copy(ThreadPool* pool, const T* src, const Dims& dims, const Dims& strides, T* dst) {
  // Collapse: drop size-1 dims, merge neighbours contiguous in src.
  Dims cd, cs;
  int64_t total = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    total *= dims[d];
    if (dims[d] == 1) continue;
    if (!cd.empty() && cs.back() == strides[d] * dims[d]) {
      cd.back() *= dims[d];
      cs.back() = strides[d];
    } else {
      cd.push_back(dims[d]);
      cs.push_back(strides[d]);
    }
  }
  if (total == 0) return;
  if (cd.empty()) {
    *dst = *src;
    return;
  }
  const int nd = static_cast<int>(cd.size());
  const int64_t inner = cd.back(), is = cs.back();
  const int64_t rows = total / inner;
  parallel_range(pool, rows, grain_for(inner), [&](int64_t b, int64_t e) {
    std::vector<int64_t> idx(nd, 0);
    int64_t off = 0, r = b;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = r % cd[d];
      r /= cd[d];
      off += idx[d] * cs[d];
    }
    for (int64_t row = b; row < e; ++row) {
      const T* s = src + off;
      T* o = dst + row * inner;
      if (is == 1) std::copy(s, s + inner, o);
      else if (is == 0) std::fill(o, o + inner, *s);
      else for (int64_t i = 0; i < inner; ++i) o[i] = s[i * is];
      for (int d = nd - 2; d >= 0; --d) {
        ++idx[d];
        off += cs[d];
        if (idx[d] < cd[d]) break;
        off -= idx[d] * cs[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace kiln::cpu
