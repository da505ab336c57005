// Shape/type inference for MatrixMultiply and Einsum. Contract: ir/OPS.md.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "ir/ops/einsum_equation.h"
#include "ir/ops/fused_epilogue.h"

namespace kiln::ir {
namespace {

bool matmul_dtype_ok(DataType t) {
  return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16 || t == DataType::kDOUBLE ||
         t == DataType::kINT32 || t == DataType::kINT64;
}

// MatrixMultiply: numpy matmul with TensorRT's per-operand MatrixOperation (NONE 0, TRANSPOSE 1, VECTOR 2).
void infer_matmul(InferContext& ctx) {
  const TensorInfo& a = ctx.in(0);
  const TensorInfo& b = ctx.in(1);
  if (a.dtype != b.dtype)
    ctx.fail(std::string("inputs must share a dtype, got ") + dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
  if (!matmul_dtype_ok(a.dtype))
    ctx.fail(std::string("inputs must be float32, float16, bfloat16, float64, int32 or int64, got ") +
             dtype_name(a.dtype));
  const int64_t op_a = ctx.attrs().i("op_a", 0), op_b = ctx.attrs().i("op_b", 0);
  for (int64_t op : {op_a, op_b})
    if (op < 0 || op > 2)
      ctx.fail("attributes 'op_a'/'op_b' must be NONE 0, TRANSPOSE 1 or VECTOR 2, got " + std::to_string(op));
  const int64_t ra = static_cast<int64_t>(a.shape.size()), rb = static_cast<int64_t>(b.shape.size());
  if (ra == 0 || rb == 0)
    ctx.fail("inputs must have rank >= 1, got shapes " + dims_str(a.shape) + " and " + dims_str(b.shape));
  if (op_a == 1 && ra < 2) ctx.fail("op_a TRANSPOSE needs input 0 of rank >= 2, got " + dims_str(a.shape));
  if (op_b == 1 && rb < 2) ctx.fail("op_b TRANSPOSE needs input 1 of rank >= 2, got " + dims_str(b.shape));
  const bool a_vec = op_a == 2 || ra == 1;
  const bool b_vec = op_b == 2 || rb == 1;
  Dims batch_a(a.shape.begin(), a.shape.end() - (a_vec ? 1 : 2));
  Dims batch_b(b.shape.begin(), b.shape.end() - (b_vec ? 1 : 2));
  int64_t m = 1, ka, kb, n = 1;
  if (a_vec) {
    ka = a.shape[ra - 1];
  } else {
    m = op_a == 1 ? a.shape[ra - 1] : a.shape[ra - 2];
    ka = op_a == 1 ? a.shape[ra - 2] : a.shape[ra - 1];
  }
  if (b_vec) {
    kb = b.shape[rb - 1];
  } else {
    kb = op_b == 1 ? b.shape[rb - 1] : b.shape[rb - 2];
    n = op_b == 1 ? b.shape[rb - 2] : b.shape[rb - 1];
  }
  if (ka >= 0 && kb >= 0 && ka != kb)
    ctx.fail("contraction dims differ: input 0 " + dims_str(a.shape) + " gives K = " + std::to_string(ka) +
             ", input 1 " + dims_str(b.shape) + " gives K = " + std::to_string(kb) +
             " (op_a = " + std::to_string(op_a) + ", op_b = " + std::to_string(op_b) + ")");
  Dims out = broadcast_shapes(ctx, batch_a, batch_b);
  if (!a_vec) out.push_back(m);
  if (!b_vec) out.push_back(n);
  // Fused epilogue: bias [N] along the output's last dim (B must be a matrix), residual of the output's shape.
  if (ctx.has_input(2)) {
    const TensorInfo& bias = ctx.in(2);
    if (b_vec) ctx.fail("a fused bias (input 2) needs a matrix B (the output has no N dim), got B " + dims_str(b.shape));
    if (bias.dtype != a.dtype)
      ctx.fail(std::string("the bias (input 2) is ") + dtype_name(bias.dtype) + ", expected the inputs' " +
               dtype_name(a.dtype));
    if (bias.shape.size() != 1 || (bias.shape[0] >= 0 && n >= 0 && bias.shape[0] != n))
      ctx.fail("the bias (input 2) has shape " + dims_str(bias.shape) + ", expected [" + std::to_string(n) + "] (N)");
  }
  check_fused_epilogue(ctx, 3, a.dtype, out);
  ctx.set_out(0, a.dtype, std::move(out));
}

void infer_einsum(InferContext& ctx) {
  if (!ctx.attrs().has("equation")) ctx.fail("attribute 'equation' is required");
  const std::string eq = ctx.attrs().s("equation", "");
  std::vector<size_t> ranks;
  std::vector<Dims> shapes;
  const DataType dt = ctx.in(0).dtype;
  if (!matmul_dtype_ok(dt))
    ctx.fail(std::string("inputs must be float32, float16, bfloat16, float64, int32 or int64, got ") +
             dtype_name(dt));
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const TensorInfo& t = ctx.in(i);
    if (t.dtype != dt)
      ctx.fail("all inputs must share a dtype: input 0 is " + std::string(dtype_name(dt)) + ", input " +
               std::to_string(i) + " is " + dtype_name(t.dtype));
    ranks.push_back(t.shape.size());
    shapes.push_back(t.shape);
  }
  EinsumSpec spec;
  std::string err = parse_einsum(eq, ranks, &spec);
  if (!err.empty()) ctx.fail(err);
  std::map<int, int64_t> sizes;
  err = einsum_label_sizes(spec, shapes, &sizes);
  if (!err.empty()) ctx.fail("equation '" + eq + "': " + err);
  Dims out;
  for (int label : spec.output) out.push_back(sizes.at(label));
  ctx.set_out(0, dt, std::move(out));
}

}  // namespace

KILN_REGISTER_OP(OpDef{"MatrixMultiply", 2, 4, 1, &infer_matmul});  // inputs 2, 3: fused bias, residual
KILN_REGISTER_OP(OpDef{"Einsum", 1, -1, 1, &infer_einsum});

}  // namespace kiln::ir
