#include "backends/cuda/cudnn/conv_gemm_path.h"
#include "backends/cuda/conv_epilogue_inputs.h"


namespace kiln::cuda {

namespace {

constexpr int64_t kActRelu = 0;  // ActivationType::kRELU, the only activation a cuBLASLt epilogue shares with Kiln

uint64_t address(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

// Every address the GEMM reads or writes (absent ones count as aligned): x (cuBLASLt's B), w (its A), y (D),
// the residual (C) and the bias (the epilogue's vector, whose alignment cuBLASLt also reads).
int64_t operand_alignment(const KernelContext& ctx) {
  return common_alignment({address(ctx.in[0].data), address(ctx.in[1].data), address(ctx.out[0].data),
                           address(ctx.has_input(2) ? ctx.in[2].data : nullptr),
                           address(ctx.has_input(3) ? ctx.in[3].data : nullptr)});
}

bool refuse(std::string* why, const std::string& reason) {
  *why = reason;
  return false;
}

bool all_equal(const std::vector<int>& v, int value) {
  for (int x : v)
    if (x != value) return false;
  return true;
}

}  // namespace

bool ConvWindow::unit() const { return all_equal(pad, 0) && all_equal(stride, 1) && all_equal(dilation, 1); }

bool conv_gemm_shape(const KernelContext& ctx, const ConvWindow& window, GemmShape* s, std::string* why) {
  const ir::Attrs& a = ctx.attrs();
  if (a.i("channels_last", 0) == 0) return refuse(why, "not channels-last");
  if (a.i("groups", 1) != 1) return refuse(why, "grouped");
  if (ctx.in.size() < 2 || !ctx.has_input(0) || !ctx.has_input(1) || ctx.out.size() != 1)
    return refuse(why, "no x and w");
  const TensorRef &x = ctx.in[0], &w = ctx.in[1], &y = ctx.out[0];
  if (x.shape.size() != 4 || w.shape.size() != 4 || y.shape.size() != 4) return refuse(why, "not 2-D");
  // Channels-last: x [N, H, W, C], w [K, kh, kw, C], y [N, OH, OW, K].
  const int64_t n = x.shape[0], h = x.shape[1], wd = x.shape[2], c = x.shape[3], k = w.shape[0];
  if (w.shape[1] != 1 || w.shape[2] != 1) return refuse(why, "kernel not 1x1");
  if (window.pad.size() != 2 || !all_equal(window.pad, 0)) return refuse(why, "padded");
  if (window.stride.size() != 2 || !all_equal(window.stride, 1)) return refuse(why, "strided");
  if (window.dilation.size() != 2 || !all_equal(window.dilation, 1)) return refuse(why, "dilated");
  if (w.shape[3] != c || y.shape != Dims{n, h, wd, k}) return refuse(why, "shapes not x [N,H,W,C] w [K,1,1,C] y [N,H,W,K]");
  const DataType t = x.dtype;
  if (t != DataType::kHALF && t != DataType::kBF16 && t != DataType::kFLOAT) return refuse(why, "dtype");
  if (w.dtype != t || y.dtype != t) return refuse(why, "mixed dtypes");
  const int64_t act = a.i("activation", -1);
  if (act != -1 && act != kActRelu) return refuse(why, "activation " + std::to_string(act) + " (not a cuBLASLt epilogue)");
  const bool bias = ctx.has_input(2), relu = act == kActRelu;
  if (const char* wrong = conv_epilogue_inputs_refusal(ctx, t, k)) return refuse(why, wrong);

  // Row-major D[m, n] = A[m, k] * op(B) (lt_gemm.h): A = x as [N*H*W, C] (row stride C); B = w stored
  // [K, C] row-major (row stride C), transposed to [C, K]; D = y as [N*H*W, K] (row stride K). The bias
  // epilogue runs along D's last dim (K, the output channel) and the residual is C with D's layout.
  GemmShape g;
  g.trans_a = false;
  g.trans_b = true;
  g.m = n * h * wd;
  g.n = k;
  g.k = c;
  g.lda = c;
  g.ldb = c;
  g.ldc = k;
  g.batch = 1;
  g.dtype = t;
  g.allow_tf32 = t == DataType::kFLOAT && a.i("allow_tf32", 0) != 0;  // else full float32 products
  g.epilogue = bias ? (relu ? Epilogue::kBiasRelu : Epilogue::kBias) : (relu ? Epilogue::kRelu : Epilogue::kNone);
  g.align = operand_alignment(ctx);
  *s = g;
  return true;
}

bool conv_gemm_aligned(const KernelContext& ctx, const GemmShape& s) { return operand_alignment(ctx) >= s.align; }

bool run_conv_gemm(KernelContext& ctx, LtGemm& gemm, const GemmShape& s, std::string* why) {
  const void* bias = ctx.has_input(2) ? ctx.in[2].data : nullptr;
  const void* residual = ctx.has_input(3) ? ctx.in[3].data : nullptr;
  try {
    // D = y, C = the residual (beta 1; it may be y itself), else y with beta 0 (not read).
    gemm.run(ctx.res, s, ctx.in[0].data, ctx.in[1].data, ctx.out[0].data, bias, 1.f, residual ? 1.f : 0.f, residual);
  } catch (const Error& e) {  // no algorithm for this epilogue and shape, or cuBLASLt refused the call
    cudaGetLastError();       // nothing cuBLASLt left behind may be blamed on the next kernel
    *why = e.what();
    return false;
  }
  return true;
}

}  // namespace kiln::cuda
