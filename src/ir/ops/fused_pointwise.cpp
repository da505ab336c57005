// Shape/type inference for FusedPointwise: a chain of pointwise ops fused by passes/fuse_pointwise into one
// node whose `program` (ir/pointwise_program.h) computes the output from the numpy-broadcast inputs.
// Contract: ir/OPS.md.
#include "ir/op_registry.h"
#include "ir/pointwise_program.h"

namespace kiln::ir {
namespace {

void infer_fused_pointwise(InferContext& ctx) {
  std::vector<DataType> dts;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) dts.push_back(ctx.in(i).dtype);
  pw::Program p;
  try {
    p = pw::Program::from_attrs(ctx.attrs());
    pw::validate(p, dts);
  } catch (const Error& e) {
    ctx.fail(e.what());
  }
  Dims s;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) s = broadcast_shapes(ctx, s, ctx.in(i).shape);
  const int64_t rank = ctx.attrs().i("rank", static_cast<int64_t>(s.size()));
  if (rank < static_cast<int64_t>(s.size()))
    ctx.fail("attribute 'rank' is " + std::to_string(rank) + " but the inputs broadcast to " + dims_str(s));
  s.insert(s.begin(), static_cast<size_t>(rank) - s.size(), 1);
  ctx.set_out(0, p.out_dtype(), std::move(s));
}

}  // namespace

KILN_REGISTER_OP(OpDef{"FusedPointwise", 0, -1, 1, &infer_fused_pointwise});

}  // namespace kiln::ir
