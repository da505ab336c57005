// RotaryEmbedding (opset 23) onto IR RotaryEmbedding.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

Values import_rotary(ImportContext& ctx) {
  ir::Attrs at;
  at.set("interleaved", ctx.attr_i("interleaved", 0) != 0);
  at.set("rotary_dim", ctx.attr_i("rotary_embedding_dim", 0));
  at.set("num_heads", ctx.attr_i("num_heads", 0));
  std::vector<ir::Value*> ins = {ctx.required_input(0), ctx.required_input(1), ctx.required_input(2)};
  if (ctx.has_input(3)) ins.push_back(ctx.input(3));
  return {ctx.add1("RotaryEmbedding", std::move(ins), std::move(at))};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "RotaryEmbedding", import_rotary);

}  // namespace kiln::onnx
