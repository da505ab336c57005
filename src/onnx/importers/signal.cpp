// Signal-processing ops: DFT (opset 17: `axis` attribute; opset 20: `axis` input, default -2), STFT,
// HannWindow / HammingWindow / BlackmanWindow (IR Window) and MelWeightMatrix. Length-like parameters stay
// inputs of the IR ops, so shapes follow their values when known at build time.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

kiln::DataType output_dtype(ImportContext& ctx) {
  const int64_t raw = ctx.attr_i("output_datatype", 1);  // TensorProto.FLOAT
  std::optional<kiln::DataType> dt = to_kiln_dtype(static_cast<int32_t>(raw));
  if (!dt || (*dt != kiln::DataType::kFLOAT && *dt != kiln::DataType::kDOUBLE))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE,
             ctx.op_type() + ": output_datatype " + std::to_string(raw) + " is not supported (float or double)");
  return *dt;
}

Values import_dft(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Attrs at;
  at.set("inverse", ctx.attr_i("inverse", 0) != 0);
  at.set("onesided", ctx.attr_i("onesided", 0) != 0);
  std::vector<ir::Value*> ins = {x, ctx.input(1)};
  if (ctx.opset() >= 20) {
    at.set("axis", int64_t{-2});
    if (ir::Value* axis = ctx.input(2)) {
      std::optional<std::vector<int64_t>> known = ctx.ints_of(axis, "DFT axis");
      if (known && known->size() == 1) at.set("axis", (*known)[0]);
      else ins.push_back(axis);  // read at run time
    }
  } else {
    at.set("axis", ctx.attr_i("axis", 1));
  }
  while (!ins.empty() && ins.back() == nullptr) ins.pop_back();
  return {ctx.add1("DFT", std::move(ins), std::move(at))};
}

Values import_stft(ImportContext& ctx) {
  ir::Attrs at;
  at.set("onesided", ctx.attr_i("onesided", 1) != 0);
  std::vector<ir::Value*> ins = {ctx.required_input(0), ctx.required_input(1), ctx.input(2), ctx.input(3)};
  while (ins.back() == nullptr) ins.pop_back();
  return {ctx.add1("STFT", std::move(ins), std::move(at))};
}

template <int64_t Type>
Values import_window(ImportContext& ctx) {
  ir::Attrs at;
  at.set("type", Type);
  at.set("periodic", ctx.attr_i("periodic", 1) != 0);
  at.set("dtype", static_cast<int64_t>(output_dtype(ctx)));
  return {ctx.add1("Window", {ctx.required_input(0)}, std::move(at))};
}

Values import_mel_weight_matrix(ImportContext& ctx) {
  ir::Attrs at;
  at.set("dtype", static_cast<int64_t>(output_dtype(ctx)));
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < 5; ++i) ins.push_back(ctx.required_input(i));
  return {ctx.add1("MelWeightMatrix", std::move(ins), std::move(at))};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "DFT", import_dft);
KILN_REGISTER_IMPORTER("", "STFT", import_stft);
KILN_REGISTER_IMPORTER("", "HannWindow", import_window<0>);
KILN_REGISTER_IMPORTER("", "HammingWindow", import_window<1>);
KILN_REGISTER_IMPORTER("", "BlackmanWindow", import_window<2>);
KILN_REGISTER_IMPORTER("", "MelWeightMatrix", import_mel_weight_matrix);

}  // namespace kiln::onnx
