#include "runtime/layer_cost.h"

#include <algorithm>

#include "backends/fused_attention_layout.h"
#include "ir/ops/fused_attention_format.h"

namespace kiln {

namespace {

double numel(const ir::TensorInfo& t) { return t.present ? static_cast<double>(volume(t.shape)) : 0.0; }

// The contraction length of a MatrixMultiply: a's last dim, or its second-to-last when transposed.
double contraction(const ir::Node& n, const ir::TensorInfo& a) {
  const Dims& s = a.shape;
  if (s.empty()) return 1;
  bool vec = n.attrs.i("op_a", 0) == 2 || s.size() == 1;
  if (!vec && n.attrs.i("op_a", 0) == 1) return static_cast<double>(s[s.size() - 2]);
  return static_cast<double>(s.back());
}

}  // namespace

LayerCost layer_cost(const ir::Node& n, const std::vector<ir::TensorInfo>& in, const std::vector<ir::TensorInfo>& out) {
  LayerCost c;
  for (const auto& t : in)
    if (t.present) c.bytes += numel(t) * static_cast<double>(dtype_size(t.dtype));
  for (const auto& t : out)
    if (t.present) c.bytes += numel(t) * static_cast<double>(dtype_size(t.dtype));
  double y = out.empty() ? 0.0 : numel(out[0]);
  if (n.op == "MatrixMultiply" && !in.empty() && in[0].present) {
    c.flops = 2.0 * y * contraction(n, in[0]);
  } else if ((n.op == "Convolution" || n.op == "Deconvolution") && in.size() > 1 && in[1].present &&
             in[1].shape.size() >= 2) {
    // Per output element: (input channels per group) x (kernel window) multiply-adds. The weight is
    // [K, C/g, k...] for Convolution; Deconvolution's [C, K/g, k...] counts per input element instead.
    double window = 1;
    for (size_t i = 2; i < in[1].shape.size(); ++i) window *= static_cast<double>(in[1].shape[i]);
    if (n.op == "Convolution") c.flops = 2.0 * y * static_cast<double>(in[1].shape[1]) * window;
    else c.flops = 2.0 * numel(in[0]) * static_cast<double>(in[1].shape[1]) * window;
  } else if (n.op == "Conv1x1Pair" && in.size() > 4 && in[1].present && in[4].present && out.size() == 2 &&
             in[1].shape.size() == 4 && in[4].shape.size() == 4) {
    // Both 1x1 convolutions: C0 multiply-adds per y1 element, C1 per y2 element (w1 [C1, 1, 1, C0], w2
    // [C2, 1, 1, C1]). Bytes as counted above: x, w1, b1, r1, w2, b2, y1 and y2 once each; y1 is not read back.
    c.flops = 2.0 * y * static_cast<double>(in[1].shape[3]) + 2.0 * numel(out[1]) * static_cast<double>(in[4].shape[3]);
  } else if (n.op == "FusedAttention" && in.size() >= 3 && in[0].present && in[1].present && in[2].present) {
    // Scores B*H x Sq x Sk x D, then B*H x Sq x Sk x Dv, whatever layout q, k, v and the output are in.
    AttentionLayout L;
    if (attention_layout(in[0].shape, in[1].shape, in[2].shape, nullptr, n.attrs, &L).empty()) {
      c.flops = 2.0 * static_cast<double>(L.B * L.H) * static_cast<double>(L.Sq) * static_cast<double>(L.Sk) *
                static_cast<double>(L.D + L.Dv);
      // q, k and v packed in one tensor each read only their slot of it.
      const ir::AttentionFormat f = ir::attention_format(n.attrs);
      for (int i = 0; i < 3; ++i)
        if (ir::attention_layout_packed(f.layout[i])) {
          ir::AttentionAxes ax;
          if (!ir::attention_axes(f.layout[i], in[i].shape.size(), &ax).empty() || ax.slot < 0) continue;
          const double whole = numel(in[i]) * static_cast<double>(dtype_size(in[i].dtype));
          c.bytes -= whole - whole / static_cast<double>(std::max<int64_t>(in[i].shape[ax.slot], 1));
        }
    }
  } else {
    c.flops = y;  // pointwise-like: about one operation per output element
  }
  return c;
}

LayerTiming layer_timing(const ir::Node& n, const std::vector<ir::TensorInfo>& in,
                         const std::vector<ir::TensorInfo>& out) {
  LayerCost c = layer_cost(n, in, out);
  LayerTiming t;
  t.name = n.name;
  t.op = n.op;
  t.flops = c.flops;
  t.bytes = c.bytes;
  return t;
}

}  // namespace kiln
