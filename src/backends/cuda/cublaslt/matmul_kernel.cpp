// MatrixMultiply on the GPU through cuBLASLt: numpy matmul semantics with TensorRT's TRANSPOSE/VECTOR
// operand ops, as the CPU kernel (src/backends/cpu/kernels/matmul.cpp). Batches become one strided-batched
// call when each operand's batch is either the output's or broadcast whole; other broadcasts loop over the
// outer batch index (one call per distinct operand pair). float32 uses TF32 tensor cores when the builder
// allowed it (node attribute `allow_tf32`); float16/bfloat16 accumulate in float32.
#include "backends/cuda/cublaslt/lt_gemm.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

namespace {


bool matmul_supports(const ir::Node& n, const std::vector<ir::TensorInfo>& in) {
  if (in.size() < 2 || !in[0].present || !in[1].present || in[0].dtype != in[1].dtype) return false;
  DataType t = in[0].dtype;
  return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16;
}

void matmul_kernel(KernelContext& ctx) {
  const TensorRef& a = ctx.input(0);
  const TensorRef& b = ctx.input(1);
  TensorRef& c = ctx.out[0];
  if (c.numel() == 0) return;
  const int64_t op_a = ctx.attrs().i("op_a", 0), op_b = ctx.attrs().i("op_b", 0);
  const int64_t ra = static_cast<int64_t>(a.shape.size()), rb = static_cast<int64_t>(b.shape.size());
  const bool a_vec = op_a == 2 || ra == 1, b_vec = op_b == 2 || rb == 1;
  GemmShape s;
  s.dtype = a.dtype;
  s.allow_tf32 = ctx.attrs().i("allow_tf32", 0) != 0;
  s.trans_a = !a_vec && op_a == 1;
  s.trans_b = !b_vec && op_b == 1;
  int64_t M = 1, N = 1, K, kb;
  if (a_vec) {
    K = a.shape[ra - 1];
    s.lda = K;
  } else {
    M = s.trans_a ? a.shape[ra - 1] : a.shape[ra - 2];
    K = s.trans_a ? a.shape[ra - 2] : a.shape[ra - 1];
    s.lda = a.shape[ra - 1];
  }
  if (b_vec) {  // a vector of K is B^T stored 1 x K
    kb = b.shape[rb - 1];
    s.trans_b = true;
    s.ldb = kb;
  } else {
    kb = s.trans_b ? b.shape[rb - 1] : b.shape[rb - 2];
    N = s.trans_b ? b.shape[rb - 2] : b.shape[rb - 1];
    s.ldb = b.shape[rb - 1];
  }
  if (K != kb) ctx.fail("contraction dims differ: " + std::to_string(K) + " vs " + std::to_string(kb));
  s.m = M;
  s.n = N;
  s.k = K;
  s.ldc = N;
  LtGemm& gemm = node_state<LtGemm>(ctx);  // every call of this node has one shape
  const size_t es = dtype_size(a.dtype);
  if (K == 0) ctx.fail("contraction dimension is 0");
  Dims batch_a(a.shape.begin(), a.shape.end() - (a_vec ? 1 : 2));
  Dims batch_b(b.shape.begin(), b.shape.end() - (b_vec ? 1 : 2));
  const int64_t vol_a = volume(batch_a), vol_b = volume(batch_b);
  const int64_t out_rank = static_cast<int64_t>(c.shape.size()) - (a_vec ? 0 : 1) - (b_vec ? 0 : 1);
  Dims batch_out(c.shape.begin(), c.shape.begin() + out_rank);
  const int64_t vol_out = volume(batch_out);
  if (vol_b == 1 && !s.trans_a && vol_a > 1) {  // fold A's batch into M: one large GEMM
    s.m = vol_a * M;
    gemm.run(ctx.res, s, a.data, b.data, c.data);
    return;
  }
  if ((vol_a == vol_out || vol_a == 1) && (vol_b == vol_out || vol_b == 1)) {
    s.batch = vol_out;
    s.stride_a = vol_a == 1 ? 0 : M * K;
    s.stride_b = vol_b == 1 ? 0 : K * N;
    s.stride_c = M * N;
    gemm.run(ctx.res, s, a.data, b.data, c.data);
    return;
  }
  // General broadcast: walk the output batch index, mapping it to each operand's batch index.
  const size_t rank = batch_out.size();
  auto operand_index = [&](const Dims& bd, int64_t flat) {
    int64_t idx = 0, stride = 1;
    for (size_t d = 0; d < rank; ++d) {
      size_t od = rank - 1 - d;
      int64_t coord = flat % batch_out[od];
      flat /= batch_out[od];
      if (d < bd.size()) {
        size_t bdim = bd.size() - 1 - d;
        if (bd[bdim] != 1) idx += coord * stride;
        stride *= bd[bdim];
      }
    }
    return idx;
  };
  for (int64_t i = 0; i < vol_out; ++i) {
    const auto* pa = static_cast<const uint8_t*>(a.data) + operand_index(batch_a, i) * M * K * es;
    const auto* pb = static_cast<const uint8_t*>(b.data) + operand_index(batch_b, i) * K * N * es;
    auto* pc = static_cast<uint8_t*>(c.data) + i * M * N * es;
    gemm.run(ctx.res, s, pa, pb, pc);
  }
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("MatrixMultiply", &matmul_kernel, &matmul_supports);

}  // namespace kiln::cuda
