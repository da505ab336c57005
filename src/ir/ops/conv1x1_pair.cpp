// Shape/type inference of Conv1x1Pair (ir/ops/conv1x1_pair.h, ir/OPS.md), and its halves as Convolution nodes.
// The checks name the input and the channel count that disagree: the pair is written by a pass, so a failure
// here means a pass or a hand-built node got an operand wrong, and the message must say which.
#include "ir/ops/conv1x1_pair.h"

#include <string>

#include "ir/op_registry.h"
#include "ir/ops/fused_epilogue.h"

namespace kiln::ir {
namespace {

const char* const kInputNames[] = {"x (input 0)",  "w1 (input 1)", "b1 (input 2)",
                                   "r1 (input 3)", "w2 (input 4)", "b2 (input 5)"};

std::string named(size_t i) { return kInputNames[i]; }

bool float_type(DataType t) {
  return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16 || t == DataType::kDOUBLE;
}

// A 4-D input, else a failure naming it and the layout it must have.
const TensorInfo& rank4(const InferContext& ctx, size_t i, const char* layout) {
  const TensorInfo& t = ctx.in(i);
  if (t.shape.size() != 4)
    ctx.fail(named(i) + " must be 4-D " + layout + ", got " + dims_str(t.shape));
  return t;
}

// Weights [K, 1, 1, C] (a channels-last 1x1 filter; unknown dims accepted).
const TensorInfo& weights_1x1(const InferContext& ctx, size_t i, const char* layout) {
  const TensorInfo& w = rank4(ctx, i, layout);
  if ((w.shape[1] >= 0 && w.shape[1] != 1) || (w.shape[2] >= 0 && w.shape[2] != 1))
    ctx.fail(named(i) + " must be 1x1 weights " + layout + ", got " + dims_str(w.shape));
  return w;
}

// Two channel counts that must agree (either may be unknown): the known one, or a failure saying both.
int64_t same_channels(const InferContext& ctx, int64_t known, const std::string& known_what, int64_t other,
                      const std::string& other_what) {
  if (known >= 0 && other >= 0 && known != other)
    ctx.fail(other_what + " is " + std::to_string(other) + ", but " + known_what + " is " + std::to_string(known));
  return known >= 0 ? known : other;
}

// A bias of `channels` elements (any shape of that volume, as Convolution's bias check takes).
void check_bias(const InferContext& ctx, size_t i, int64_t channels, const char* what) {
  if (!ctx.has_input(i)) return;
  const int64_t n = volume(ctx.in(i).shape);
  if (n >= 0 && channels >= 0 && n != channels)
    ctx.fail(named(i) + " has shape " + dims_str(ctx.in(i).shape) + " (" + std::to_string(n) +
             " elements), expected " + std::to_string(channels) + " (" + what + ")");
}

void check_activation(const InferContext& ctx, const char* attr) {
  const int64_t act = ctx.attrs().i(attr, -1);
  if (act != -1 && !known_activation_type(act))
    ctx.fail("unknown '" + std::string(attr) + "' " + std::to_string(act) +
             " (expected an ActivationType, or -1 for none)");
}

void infer_conv1x1_pair(InferContext& ctx) {
  // The op table can only say "at least 2 inputs": b1 and r1, before w2, may be absent.
  if (!ctx.has_input(kPairW2))
    ctx.fail("w2 (input 4), the second convolution's weights, is missing (inputs: x, w1, b1, r1, w2, b2)");
  const TensorInfo& x = rank4(ctx, kPairX, "[N, H, W, C0] (channels-last)");
  const TensorInfo& w1 = weights_1x1(ctx, kPairW1, "[C1, 1, 1, C0]");
  const TensorInfo& w2 = weights_1x1(ctx, kPairW2, "[C2, 1, 1, C1]");
  if (!float_type(x.dtype))
    ctx.fail(named(kPairX) + " is " + dtype_name(x.dtype) + "; the pair computes float32, float16, bfloat16 or double");
  for (size_t i = kPairW1; i <= kPairB2; ++i)
    if (ctx.has_input(i) && ctx.in(i).dtype != x.dtype)
      ctx.fail(named(i) + " is " + dtype_name(ctx.in(i).dtype) + ", expected x's " + dtype_name(x.dtype) +
               " (one dtype throughout)");

  same_channels(ctx, x.shape[3], "x's channel count C0 " + dims_str(x.shape), w1.shape[3],
                "w1's input channel count " + dims_str(w1.shape));
  // C1: w1's output channels, which w2 reads and b1 and r1 must match.
  int64_t c1 = same_channels(ctx, w1.shape[0], "w1's output channel count C1 " + dims_str(w1.shape), w2.shape[3],
                             "w2's input channel count " + dims_str(w2.shape));
  const std::string c1_what = "C1 (w1's output channels, w2's input channels)";
  check_bias(ctx, kPairB1, c1, "C1, w1's output channels");
  const int64_t c2 = w2.shape[0];
  check_bias(ctx, kPairB2, c2, "C2, w2's output channels");

  Dims y1{x.shape[0], x.shape[1], x.shape[2], c1};
  if (ctx.has_input(kPairR1)) {
    const TensorInfo& r1 = rank4(ctx, kPairR1, "[N, H, W, C1] (y1's shape)");
    c1 = same_channels(ctx, c1, c1_what, r1.shape[3], "r1's channel count " + dims_str(r1.shape));
    y1[3] = c1;
    for (size_t d = 0; d < 3; ++d)
      if (r1.shape[d] >= 0 && y1[d] >= 0 && r1.shape[d] != y1[d])
        ctx.fail(named(kPairR1) + " has shape " + dims_str(r1.shape) + ", expected y1's shape " + dims_str(y1));
  }
  check_activation(ctx, "activation");
  check_activation(ctx, "activation2");
  ctx.set_out(0, x.dtype, y1);
  ctx.set_out(1, x.dtype, Dims{x.shape[0], x.shape[1], x.shape[2], c2});
}

// Copies attribute `from` of `src` to `to` of `dst` when src has it (absent ones keep their defaults).
void copy_attr(const Attrs& src, const char* from, Attrs& dst, const char* to) {
  if (src.has(from)) dst.set_value(to, src.all().at(from));
}

}  // namespace

Node conv1x1_pair_part(const Node& pair, int which) {
  if (which != 0 && which != 1)
    throw Error("conv1x1_pair_part of '" + pair.name + "': which must be 0 (first) or 1 (second), got " +
                std::to_string(which));
  const bool first = which == 0;
  const Attrs& a = pair.attrs;
  Node c;
  c.op = "Convolution";
  c.name = a.s(first ? "first_name" : "second_name", "");
  if (c.name.empty()) c.name = pair.name + (first ? "/first" : "/second");
  Attrs& o = c.attrs;
  o.set("channels_last", int64_t{1});
  const size_t wi = first ? kPairW1 : kPairW2;
  const Value* w = wi < pair.inputs.size() ? pair.inputs[wi] : nullptr;
  if (w && w->shape.size() == 4 && w->shape[0] >= 0) o.set("num_output_maps", w->shape[0]);
  o.set("kernel", std::vector<int64_t>{1, 1});
  o.set("stride", std::vector<int64_t>{1, 1});
  o.set("dilation", std::vector<int64_t>{1, 1});
  o.set("pre_padding", std::vector<int64_t>{0, 0});
  o.set("post_padding", std::vector<int64_t>{0, 0});
  o.set("groups", int64_t{1});
  o.set("padding_mode", int64_t{0});
  copy_attr(a, first ? "activation" : "activation2", o, "activation");
  copy_attr(a, first ? "act_alpha" : "act2_alpha", o, "act_alpha");
  copy_attr(a, first ? "act_beta" : "act2_beta", o, "act_beta");
  copy_attr(a, first ? "first_fused" : "second_fused", o, "fused");
  copy_attr(a, "allow_tf32", o, "allow_tf32");
  c.precision = pair.precision;
  c.output_types.assign(1, static_cast<size_t>(which) < pair.output_types.size() ? pair.output_types[which]
                                                                                 : std::nullopt);
  return c;
}

// Inputs x, w1, b1, r1, w2, b2 (b2 may be left off; b1 and r1 absent as nullptr), outputs y1 and y2. The
// minimum is 2 because the table checks that its first `min` inputs are present: w2 is checked above.
KILN_REGISTER_OP(OpDef{"Conv1x1Pair", 2, 6, 2, &infer_conv1x1_pair});

}  // namespace kiln::ir
