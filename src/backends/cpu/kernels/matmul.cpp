// CPU kernels for MatrixMultiply and Einsum.
//
// MatrixMultiply (numpy matmul + TensorRT's TRANSPOSE/VECTOR operand ops): float32 goes to cpu::sgemm /
// sgemm_strided_batched. When B has no batch, A's batch folds into M (one big GEMM); otherwise batch dims
// are broadcast with a BroadcastPlan, one strided-batched call per run (stride 0 for a broadcast operand).
// Other dtypes (double, int32, int64) use a simple row-parallel loop nest. The fused epilogue (bias [N], residual,
// `activation`; ir/OPS.md) then runs over the output in place.
//
// Einsum: each operand becomes a strided view over unique labels (repeated labels = diagonals, summed
// strides; size-1 dims broadcast with stride 0). Labels used by nobody else are summed out first, then
// operands are contracted pairwise, left to right, as batched GEMMs [batch, M, K] x [batch, K, N]; an
// operand already laid out that way (or transposed) is used in place, otherwise copied once.
#include <algorithm>
#include <map>
#include <memory>
#include <type_traits>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"
#include "backends/cpu/kernels/fused_epilogue.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL
#include "ir/ops/einsum_equation.h"

namespace kiln::cpu {
namespace {

template <class T> inline T mac(T acc, T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(acc) + static_cast<U>(a) * static_cast<U>(b));
  } else {
    return acc + a * b;
  }
}

// C[b] = op(A[b]) op(B[b]) for b < batch with strides (elements; 0 broadcasts). Generic types.
template <class T>
void gemm_batched_naive(ThreadPool* pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A,
                        int64_t lda, int64_t sa, const T* B, int64_t ldb, int64_t sb, T* C, int64_t ldc, int64_t sc,
                        int64_t batch) {
  parallel_range(pool, batch * M, grain_for(N * K), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t b = t / M, m = t % M;
      const T* a = A + b * sa;
      const T* bm = B + b * sb;
      T* c = C + b * sc + m * ldc;
      std::fill(c, c + N, T(0));
      for (int64_t k = 0; k < K; ++k) {
        const T av = ta ? a[k * lda + m] : a[m * lda + k];
        if (tb) {
          for (int64_t n = 0; n < N; ++n) c[n] = mac(c[n], av, bm[n * ldb + k]);
        } else {
          const T* brow = bm + k * ldb;
          for (int64_t n = 0; n < N; ++n) c[n] = mac(c[n], av, brow[n]);
        }
      }
    }
  });
}

template <class T>
void gemm_batched(ThreadPool* pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
                  int64_t sa, const T* B, int64_t ldb, int64_t sb, T* C, int64_t ldc, int64_t sc, int64_t batch) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if (K == 0) {
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t m = 0; m < M; ++m) std::fill(C + b * sc + m * ldc, C + b * sc + m * ldc + N, T(0));
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (batch == 1) sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, pool);
    else sgemm_strided_batched(ta, tb, M, N, K, 1.0f, A, lda, sa, B, ldb, sb, 0.0f, C, ldc, sc, batch, pool);
  } else {
    gemm_batched_naive<T>(pool, ta, tb, M, N, K, A, lda, sa, B, ldb, sb, C, ldc, sc, batch);
  }
}

template <class F>
void dispatch_matmul_types(const KernelContext& ctx, DataType dt, F&& f) {
  switch (dt) {
    case DataType::kFLOAT: return f(float{});
    case DataType::kDOUBLE: return f(double{});
    case DataType::kINT32: return f(int32_t{});
    case DataType::kINT64: return f(int64_t{});
    default: ctx.fail(std::string("the CPU kernel does not support ") + dtype_name(dt) + " inputs");
  }
}

// ============================================ MatrixMultiply ==============================================

template <class T>
void matmul_typed(KernelContext& ctx) {
  const TensorRef& a = ctx.input(0);
  const TensorRef& b = ctx.input(1);
  const int64_t op_a = ctx.attrs().i("op_a", 0), op_b = ctx.attrs().i("op_b", 0);
  const int64_t ra = static_cast<int64_t>(a.shape.size()), rb = static_cast<int64_t>(b.shape.size());
  const bool a_vec = op_a == 2 || ra == 1, b_vec = op_b == 2 || rb == 1;
  bool ta = !a_vec && op_a == 1, tb = !b_vec && op_b == 1;
  int64_t M = 1, N = 1, K, lda, ldb;
  if (a_vec) {
    K = a.shape[ra - 1];
    lda = K;
  } else {
    M = ta ? a.shape[ra - 1] : a.shape[ra - 2];
    K = ta ? a.shape[ra - 2] : a.shape[ra - 1];
    lda = a.shape[ra - 1];
  }
  int64_t kb;
  if (b_vec) {  // a vector of K: B^T stored as 1 x K
    kb = b.shape[rb - 1];
    tb = true;
    ldb = kb;
  } else {
    kb = tb ? b.shape[rb - 1] : b.shape[rb - 2];
    N = tb ? b.shape[rb - 2] : b.shape[rb - 1];
    ldb = b.shape[rb - 1];
  }
  if (K != kb) ctx.fail("contraction dims differ: " + std::to_string(K) + " vs " + std::to_string(kb));
  Dims batch_a(a.shape.begin(), a.shape.end() - (a_vec ? 1 : 2));
  Dims batch_b(b.shape.begin(), b.shape.end() - (b_vec ? 1 : 2));
  const int64_t mat_a = M * K, mat_b = K * N, mat_c = M * N;
  const T* A = a.as<T>();
  const T* B = b.as<T>();
  T* C = ctx.out[0].as<T>();
  const int64_t vol_a = volume(batch_a), vol_b = volume(batch_b);
  if (ctx.out[0].numel() == 0) return;
  if (vol_b == 1 && !ta) {  // fold A's batch into M
    gemm_batched<T>(ctx.pool, false, tb, vol_a * M, N, K, A, lda, 0, B, ldb, 0, C, N, 0, 1);
    return;
  }
  const int64_t out_rank = static_cast<int64_t>(ctx.out[0].shape.size()) - (a_vec ? 0 : 1) - (b_vec ? 0 : 1);
  Dims batch_out(ctx.out[0].shape.begin(), ctx.out[0].shape.begin() + out_rank);
  const int64_t vol_out = volume(batch_out);
  if ((vol_a == vol_out || vol_a == 1) && (vol_b == vol_out || vol_b == 1)) {
    gemm_batched<T>(ctx.pool, ta, tb, M, N, K, A, lda, vol_a == 1 ? 0 : mat_a, B, ldb, vol_b == 1 ? 0 : mat_b, C, N,
                    mat_c, vol_out);
    return;
  }
  BroadcastPlan plan = make_broadcast_plan(batch_out, {&batch_a, &batch_b});
  for_each_run(plan, 0, plan.total, [&](int64_t pos, const int64_t* off, int64_t len) {
    gemm_batched<T>(ctx.pool, ta, tb, M, N, K, A + off[0] * mat_a, lda, plan.inner_stride[0] * mat_a,
                    B + off[1] * mat_b, ldb, plan.inner_stride[1] * mat_b, C + pos * mat_c, N, mat_c, len);
  });
}

// The fused epilogue: y = act(a@b + bias + residual), bias [N] along the output's last dim.
template <class T>
void matmul_epilogue(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  const T* bias = nullptr;
  int64_t n = 0;
  if (ctx.has_input(2)) {
    const TensorRef& b = ctx.in[2];
    n = y.shape.empty() ? 0 : y.shape.back();
    if (b.dtype != y.dtype || b.shape.size() != 1 || b.shape[0] != n)
      ctx.fail("the bias is " + std::string(dtype_name(b.dtype)) + " " + dims_str(b.shape) + ", expected " +
               dtype_name(y.dtype) + " [" + std::to_string(n) + "] (the output's last dim)");
    bias = b.as<T>();
  }
  apply_fused_epilogue<T>(ctx, y.as<T>(), y.numel(), bias, n, fused_residual<T>(ctx, 3));
}

void matmul_kernel(KernelContext& ctx) {
  const TensorRef& a = ctx.input(0);
  if (a.dtype != ctx.input(1).dtype) ctx.fail("inputs must share a dtype");
  dispatch_matmul_types(ctx, a.dtype, [&](auto tag) {
    matmul_typed<decltype(tag)>(ctx);
    matmul_epilogue<decltype(tag)>(ctx);
  });
}

// ================================================= Einsum =================================================

template <class T>
struct LTensor {  // a labelled strided view
  std::vector<int> labels;  // unique
  Dims dims, strides;
  const T* data = nullptr;
  std::shared_ptr<std::vector<T>> own;  // storage when materialized

  int find(int label) const {
    auto it = std::find(labels.begin(), labels.end(), label);
    return it == labels.end() ? -1 : static_cast<int>(it - labels.begin());
  }
  int64_t numel() const { return volume(dims); }
};

// Contiguous copy with labels in `order` (a permutation of t.labels).
template <class T>
LTensor<T> materialize(ThreadPool* pool, const LTensor<T>& t, const std::vector<int>& order) {
  LTensor<T> r;
  r.labels = order;
  Dims src_strides;
  for (int l : order) {
    int k = t.find(l);
    r.dims.push_back(t.dims[k]);
    src_strides.push_back(t.strides[k]);
  }
  r.strides = contiguous_strides(r.dims);
  r.own = std::make_shared<std::vector<T>>(static_cast<size_t>(volume(r.dims)));
  strided_copy(pool, t.data, r.dims, src_strides, r.own->data());
  r.data = r.own->data();
  return r;
}

// True when t, read in label order `order`, is a contiguous row-major block.
template <class T>
bool contiguous_as(const LTensor<T>& t, const std::vector<int>& order) {
  int64_t expect = 1;
  for (size_t k = order.size(); k-- > 0;) {
    int i = t.find(order[k]);
    if (t.dims[i] != 1 && t.strides[i] != expect) return false;
    expect *= t.dims[i];
  }
  return true;
}

// Sums t over every label not in `keep`; result is contiguous with labels `keep` (in that order).
template <class T>
LTensor<T> sum_out(ThreadPool* pool, const LTensor<T>& t, const std::vector<int>& keep) {
  std::vector<int> order = keep;
  int64_t S = 1;
  for (size_t k = 0; k < t.labels.size(); ++k)
    if (std::find(keep.begin(), keep.end(), t.labels[k]) == keep.end()) {
      order.push_back(t.labels[k]);
      S *= t.dims[k];
    }
  LTensor<T> m = materialize(pool, t, order);
  LTensor<T> r;
  r.labels = keep;
  r.dims.assign(m.dims.begin(), m.dims.begin() + keep.size());
  r.strides = contiguous_strides(r.dims);
  const int64_t rows = volume(r.dims);
  r.own = std::make_shared<std::vector<T>>(static_cast<size_t>(rows));
  T* out = r.own->data();
  const T* src = m.data;
  parallel_range(pool, rows, grain_for(S), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T acc[8] = {};
      const T* row = src + i * S;
      int64_t j = 0;
      for (; j + 8 <= S; j += 8)
        for (int l = 0; l < 8; ++l) acc[l] = mac(acc[l], row[j + l], T(1));
      for (int l = 0; j < S; ++j, ++l) acc[l] = mac(acc[l], row[j], T(1));
      T s = 0;
      for (int l = 0; l < 8; ++l) s = mac(s, acc[l], T(1));
      out[i] = s;
    }
  });
  r.data = out;
  return r;
}

// Contracts a and b over their shared labels not in `keep`. When the result's label order equals
// `direct_labels`, it is written straight into `direct` (the op's output) instead of a temporary.
template <class T>
LTensor<T> contract_pair(ThreadPool* pool, LTensor<T> a, LTensor<T> b, const std::vector<int>& keep,
                         T* direct = nullptr, const std::vector<int>* direct_labels = nullptr) {
  auto in = [](const std::vector<int>& v, int l) { return std::find(v.begin(), v.end(), l) != v.end(); };
  // Labels only one side has and nobody needs later are summed first.
  auto presum = [&](LTensor<T>& x, const LTensor<T>& other) {
    std::vector<int> k;
    for (int l : x.labels)
      if (in(keep, l) || other.find(l) >= 0) k.push_back(l);
    if (k.size() != x.labels.size()) x = sum_out(pool, x, k);
  };
  presum(a, b);
  presum(b, a);
  std::vector<int> batch, ml, nl, kl;
  for (int l : a.labels) {
    if (b.find(l) >= 0) (in(keep, l) ? batch : kl).push_back(l);
    else ml.push_back(l);
  }
  for (int l : b.labels)
    if (a.find(l) < 0) nl.push_back(l);
  auto size_of = [&](int l) {
    int i = a.find(l);
    int64_t da = i >= 0 ? a.dims[i] : 1;
    int j = b.find(l);
    int64_t db = j >= 0 ? b.dims[j] : 1;
    return std::max(da, db);
  };
  // Broadcast size-1 batch/contraction dims of one side against the other: stride 0, full size.
  for (auto* x : {&a, &b})
    for (size_t k = 0; k < x->labels.size(); ++k) {
      int64_t full = size_of(x->labels[k]);
      if (x->dims[k] == 1 && full != 1) {
        x->dims[k] = full;
        x->strides[k] = 0;
      }
    }
  int64_t nb = 1, M = 1, N = 1, K = 1;
  for (int l : batch) nb *= size_of(l);
  for (int l : ml) M *= size_of(l);
  for (int l : nl) N *= size_of(l);
  for (int l : kl) K *= size_of(l);
  auto cat = [](std::vector<int> x, const std::vector<int>& y, const std::vector<int>& z) {
    x.insert(x.end(), y.begin(), y.end());
    x.insert(x.end(), z.begin(), z.end());
    return x;
  };
  bool ta = false, tb = false;
  const std::vector<int> a_mk = cat(batch, ml, kl), a_km = cat(batch, kl, ml);
  const std::vector<int> b_kn = cat(batch, kl, nl), b_nk = cat(batch, nl, kl);
  if (!contiguous_as(a, a_mk)) {
    if (contiguous_as(a, a_km)) ta = true;
    else a = materialize(pool, a, a_mk);
  }
  if (!contiguous_as(b, b_kn)) {
    if (contiguous_as(b, b_nk)) tb = true;
    else b = materialize(pool, b, b_kn);
  }
  LTensor<T> c;
  c.labels = cat(batch, ml, nl);
  for (int l : c.labels) c.dims.push_back(size_of(l));
  c.strides = contiguous_strides(c.dims);
  T* cbuf = direct;
  if (!direct || !direct_labels || *direct_labels != c.labels) {
    c.own = std::make_shared<std::vector<T>>(static_cast<size_t>(volume(c.dims)));
    cbuf = c.own->data();
  }
  c.data = cbuf;
  gemm_batched<T>(pool, ta, tb, M, N, K, a.data, ta ? M : K, M * K, b.data, tb ? K : N, K * N, cbuf, N, M * N, nb);
  return c;
}

template <class T>
void einsum_typed(KernelContext& ctx, const ir::EinsumSpec& spec) {
  const size_t n = ctx.in.size();
  std::vector<LTensor<T>> ops(n);
  for (size_t i = 0; i < n; ++i) {
    const TensorRef& t = ctx.in[i];
    Dims st = contiguous_strides(t.shape);
    LTensor<T>& v = ops[i];
    v.data = t.as<T>();
    for (size_t k = 0; k < spec.inputs[i].size(); ++k) {
      const int l = spec.inputs[i][k];
      const int64_t s = t.shape[k] == 1 ? 0 : st[k];
      int j = v.find(l);
      if (j < 0) {
        v.labels.push_back(l);
        v.dims.push_back(t.shape[k]);
        v.strides.push_back(s);
      } else {  // repeated label: diagonal
        if (v.dims[j] != t.shape[k] && v.dims[j] != 1 && t.shape[k] != 1)
          ctx.fail("repeated label with sizes " + std::to_string(v.dims[j]) + " and " + std::to_string(t.shape[k]));
        v.dims[j] = std::max(v.dims[j], t.shape[k]);
        v.strides[j] += s;
      }
    }
  }
  // Labels still needed after operand i: those in the output or in a later operand.
  auto needed_after = [&](size_t i) {
    std::vector<int> keep = spec.output;
    for (size_t j = i + 1; j < n; ++j)
      for (int l : ops[j].labels)
        if (std::find(keep.begin(), keep.end(), l) == keep.end()) keep.push_back(l);
    return keep;
  };
  auto restrict_to = [](const LTensor<T>& t, const std::vector<int>& keep) {
    std::vector<int> k;
    for (int l : t.labels)
      if (std::find(keep.begin(), keep.end(), l) != keep.end()) k.push_back(l);
    return k;
  };
  LTensor<T> cur = ops[0];
  {
    std::vector<int> k = restrict_to(cur, needed_after(0));
    if (k.size() != cur.labels.size()) cur = sum_out(ctx.pool, cur, k);
  }
  T* out = ctx.out[0].as<T>();
  for (size_t i = 1; i < n; ++i)
    cur = contract_pair(ctx.pool, cur, ops[i], needed_after(i), i + 1 == n ? out : nullptr, &spec.output);
  if (cur.data == out) return;  // the last GEMM wrote the output in place
  // Output labels absent from cur can only be size-1 broadcast leftovers; cur must cover the output.
  std::vector<int> k = restrict_to(cur, spec.output);
  if (k.size() != cur.labels.size()) cur = sum_out(ctx.pool, cur, k);
  Dims out_strides;
  for (int l : spec.output) {
    int j = cur.find(l);
    if (j < 0) ctx.fail("internal: output label lost during contraction");
    out_strides.push_back(cur.dims[j] == 1 ? 0 : cur.strides[j]);
  }
  strided_copy(ctx.pool, cur.data, ctx.out[0].shape, out_strides, out);
}

void einsum_kernel(KernelContext& ctx) {
  const std::string eq = ctx.attrs().s("equation", "");
  std::vector<size_t> ranks;
  std::vector<Dims> shapes;
  for (auto& t : ctx.in) {
    if (!t.present) ctx.fail("Einsum inputs may not be omitted");
    ranks.push_back(t.shape.size());
    shapes.push_back(t.shape);
  }
  ir::EinsumSpec spec;
  std::string err = ir::parse_einsum(eq, ranks, &spec);
  if (!err.empty()) ctx.fail(err);
  std::map<int, int64_t> sizes;
  err = ir::einsum_label_sizes(spec, shapes, &sizes);
  if (!err.empty()) ctx.fail(err);
  const DataType dt = ctx.in[0].dtype;
  for (auto& t : ctx.in)
    if (t.dtype != dt) ctx.fail("all inputs must share a dtype");
  if (ctx.out[0].numel() == 0) return;
  dispatch_matmul_types(ctx, dt, [&](auto tag) { einsum_typed<decltype(tag)>(ctx, spec); });
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("MatrixMultiply", &matmul_kernel);
KILN_REGISTER_CPU_KERNEL("Einsum", &einsum_kernel);

}  // namespace kiln::cpu
