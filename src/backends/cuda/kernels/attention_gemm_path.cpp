#include "backends/cuda/kernels/attention_gemm_path.h"

#include <algorithm>
#include <cstdint>

#include "backends/cuda/cublaslt/lt_gemm.h"  // common_alignment
#include "backends/cuda/device.h"
#include "backends/cuda/kernels/attention_gemm_plan.h"
#include "backends/cuda/kernels/attention_lt_gemm.h"
#include "backends/cuda/kernels/attention_softmax.h"

namespace kiln::cuda::kern {

namespace {

uint64_t addr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }
uint64_t bytes(int64_t elements, size_t elem_size) { return static_cast<uint64_t>(elements) * elem_size; }

}  // namespace

size_t attention_chunk_target_bytes(const DeviceInfo& device) {
  return std::max<size_t>(4ull << 20, static_cast<size_t>(std::max(device.l2_bytes, 0)) / 2);
}

bool run_attention_gemm(KernelContext& ctx, const AttentionLayout& L, AttentionGemmState& st) {
  Resources& res = ctx.res;
  if (!res.cublaslt || !res.workspace) return false;
  const AttentionGemmPlan plan = plan_attention_gemm(
      L, res.workspace_bytes, attention_chunk_target_bytes(res.device ? *res.device : current_device()));
  if (!plan.use) return false;
  // The plan checks q, k and v; the output's slices need a uniform stride too. A tokens-major output [B, Sq, H, Dv]
  // has one only when B == 1 or H == 1 (its rows interleave the heads): else the direct kernels run.
  const int64_t o_stride = uniform_slice_stride(L.o_sb, L.o_sh, L.B, L.H);
  if (o_stride < 0) return false;

  const TensorRef& q = ctx.input(0);
  const TensorRef& k = ctx.input(1);
  const TensorRef& v = ctx.input(2);
  const TensorRef& out = ctx.out[0];
  const DataType dt = q.dtype;
  const size_t es = dtype_size(dt);
  const int64_t p_per_float = static_cast<int64_t>(sizeof(float) / es);  // P elements in one score's bytes
  auto* ws = static_cast<uint8_t*>(res.workspace);
  float* scores = reinterpret_cast<float*>(ws);
  void* lt_ws = ws + plan.lt_offset;
  const bool tf32 = dt == DataType::kFLOAT && ctx.attrs().i("allow_tf32", 0) != 0;
  // The matrices of slice 0 (a packed tensor's slot: its offset).
  const auto* qb = static_cast<const uint8_t*>(q.data) + bytes(L.q_off, es);
  const auto* kb = static_cast<const uint8_t*>(k.data) + bytes(L.k_off, es);
  const auto* vb = static_cast<const uint8_t*>(v.data) + bytes(L.v_off, es);

  // cuBLASLt is column-major: a row-major [r, c] matrix with leading dim ld is its column-major [c, r] one.
  // Row-major S[Sq, Sk] = Q K^T is column-major S^T[Sk, Sq] = op(K') Q', where Q' = Q^T is Q's memory read as
  // [D, Sq] and K' is K's memory: [D, Sk] for a row-major K[Sk, D], to be transposed, or [Sk, D] for
  // k_transposed's K^T[D, Sk], used as it is. The leading dims are the layout's row strides (D, or Sk for K^T,
  // when heads-major; H * D when tokens-major).
  LtBatchedShape sg;
  sg.trans_a = !L.k_transposed;
  sg.m = L.Sk;
  sg.n = L.Sq;
  sg.k = L.D;
  sg.lda = L.k_ss;
  sg.ldb = L.q_ss;
  sg.ldc = plan.ld_s;
  sg.stride_a = plan.k_stride;
  sg.stride_b = plan.q_stride;
  sg.stride_c = plan.slice_floats;
  sg.ab_dtype = dt;
  sg.c_dtype = DataType::kFLOAT;
  sg.tf32 = tf32;
  sg.align = common_alignment({addr(kb), addr(qb), addr(scores), bytes(plan.k_stride, es),
                               bytes(plan.q_stride, es), bytes(plan.slice_floats, sizeof(float))});
  sg.workspace_bytes = plan.lt_bytes;
  // Row-major O[Sq, Dv] = P V is column-major O^T[Dv, Sq] = V' P', V' = V's memory as [Dv, Sk] (ld: v's row
  // stride), P' = P's memory as [Sk, Sq] with P's leading dim (P sits over S: ld_s floats per row, see
  // attention_softmax.h); O's leading dim is the output's row stride.
  LtBatchedShape og;
  og.m = L.Dv;
  og.n = L.Sq;
  og.k = L.Sk;
  og.lda = L.v_ss;
  og.ldb = plan.ld_s * p_per_float;
  og.ldc = L.o_ss;
  og.stride_a = plan.v_stride;
  og.stride_b = plan.slice_floats * p_per_float;
  og.stride_c = o_stride;
  og.ab_dtype = dt;
  og.c_dtype = dt;
  og.tf32 = tf32;
  og.align = common_alignment({addr(vb), addr(scores), addr(out.data), bytes(plan.v_stride, es),
                               bytes(plan.slice_floats, sizeof(float)), bytes(o_stride, es)});
  og.workspace_bytes = plan.lt_bytes;

  // Both chunk sizes are prepared before anything is enqueued, so a refusal leaves the direct kernel a clean
  // stream.
  for (int64_t n : {plan.per_chunk, plan.chunk_slices(plan.chunks - 1)}) {
    sg.batch = og.batch = n;
    if (!st.scores.prepare(res.cublaslt, sg) || !st.output.prepare(res.cublaslt, og)) return false;
  }

  AttentionSoftmaxArgs sm;
  sm.scores = scores;
  sm.H = L.H;
  sm.Sq = L.Sq;
  sm.Sk = L.Sk;
  sm.ld_s = plan.ld_s;
  sm.slice_floats = plan.slice_floats;
  if (ctx.has_input(3)) {
    sm.mask = ctx.input(3).data;
    sm.mask_dtype = ctx.input(3).dtype;
    sm.m_sb = L.m_sb;
    sm.m_sh = L.m_sh;
    sm.m_si = L.m_si;
    sm.m_sj = L.m_sj;
  }
  sm.causal = ctx.attrs().i("causal", 0) != 0;
  const float scale = static_cast<float>(ctx.attrs().f("scale", 1.0));
  auto* ob = static_cast<uint8_t*>(out.data);
  cudaStream_t stream = ctx.stream();
  for (int64_t c = 0; c < plan.chunks; ++c) {
    const int64_t first = c * plan.per_chunk, n = plan.chunk_slices(c);
    sg.batch = og.batch = n;
    st.scores.run(res.cublaslt, sg, scale, kb + bytes(first * plan.k_stride, es), qb + bytes(first * plan.q_stride, es),
                  scores, lt_ws, stream);
    sm.slices = n;
    sm.first_slice = first;
    launch_attention_softmax(dt, sm, stream);
    st.output.run(res.cublaslt, og, 1.0f, vb + bytes(first * plan.v_stride, es), scores,
                  ob + bytes(first * o_stride, es), lt_ws, stream);
  }
  return true;
}

}  // namespace kiln::cuda::kern
