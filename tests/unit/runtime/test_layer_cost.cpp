// layer_cost: the profile's FLOP and byte counts. FusedAttention's FLOPs are the same whatever layout its
// tensors are stored in (head-major, token-major, packed q/k/v), and a packed input counts only its slot's
// bytes; a MatrixMultiply counts 2*M*N*K.
#include <gtest/gtest.h>

#include "ir/ops/fused_attention_format.h"
#include "runtime/layer_cost.h"

using namespace kiln;

namespace {

ir::TensorInfo info(Dims s, DataType dt = DataType::kHALF) { return ir::TensorInfo{true, dt, std::move(s), nullptr}; }

}  // namespace

TEST(LayerCost, AttentionFlopsDoNotDependOnTheLayout) {
  const int64_t B = 2, H = 12, S = 197, D = 64;
  const double flops = 2.0 * B * H * S * S * (D + D);
  ir::Graph g;
  ir::Node* heads = g.add_node("FusedAttention", "heads", {}, 1);
  const LayerCost a = layer_cost(*heads, {info({B, H, S, D}), info({B, H, S, D}), info({B, H, S, D})},
                                 {info({B, H, S, D})});
  EXPECT_DOUBLE_EQ(a.flops, flops);
  EXPECT_DOUBLE_EQ(a.bytes, 4.0 * B * H * S * D * 2);

  ir::Node* tokens = g.add_node("FusedAttention", "tokens", {}, 1);
  ir::AttentionFormat t;
  for (int i = 0; i < 3; ++i) t.layout[i] = ir::kAttnTokensMajor;
  t.out_layout = ir::kAttnTokensMajor;
  ir::set_attention_format(tokens->attrs, t);
  const LayerCost b = layer_cost(*tokens, {info({B, S, H, D}), info({B, S, H, D}), info({B, S, H, D})},
                                 {info({B, S, H, D})});
  EXPECT_DOUBLE_EQ(b.flops, flops);
  EXPECT_DOUBLE_EQ(b.bytes, a.bytes);

  ir::Node* packed = g.add_node("FusedAttention", "packed", {}, 1);
  ir::AttentionFormat p = t;
  for (int i = 0; i < 3; ++i) {
    p.layout[i] = ir::kAttnPacked;
    p.slot[i] = i;
  }
  ir::set_attention_format(packed->attrs, p);
  const ir::TensorInfo qkv = info({B, S, 3, H, D});
  const LayerCost c = layer_cost(*packed, {qkv, qkv, qkv}, {info({B, S, H, D})});
  EXPECT_DOUBLE_EQ(c.flops, flops);
  EXPECT_DOUBLE_EQ(c.bytes, a.bytes) << "each input reads its third of the packed tensor";
}

TEST(LayerCost, MatrixMultiplyCountsTwiceMNK) {
  ir::Graph g;
  ir::Node* mm = g.add_node("MatrixMultiply", "mm", {}, 1);
  const LayerCost c = layer_cost(*mm, {info({8, 16}), info({16, 4})}, {info({8, 4})});
  EXPECT_DOUBLE_EQ(c.flops, 2.0 * 8 * 4 * 16);
  EXPECT_DOUBLE_EQ(c.bytes, (8 * 16 + 16 * 4 + 8 * 4) * 2.0);
}

TEST(LayerCost, Conv1x1PairCountsBothConvolutionsAndY1Once) {
  // ResNet-50 layer1: x [N, H, W, 64] -> y1 256 channels (bias, residual) -> y2 64 channels (bias).
  const int64_t N = 2, H = 7, W = 5, C0 = 64, C1 = 256, C2 = 64, P = N * H * W;
  ir::Graph g;
  ir::Node* pair = g.add_node("Conv1x1Pair", "pair", {}, 2);
  const LayerCost c = layer_cost(*pair,
                                 {info({N, H, W, C0}), info({C1, 1, 1, C0}), info({C1}), info({N, H, W, C1}),
                                  info({C2, 1, 1, C1}), info({C2})},
                                 {info({N, H, W, C1}), info({N, H, W, C2})});
  EXPECT_DOUBLE_EQ(c.flops, 2.0 * P * C1 * C0 + 2.0 * P * C2 * C1);
  const double elements = P * C0 + C1 * C0 + C1 + P * C1 + C2 * C1 + C2 + P * C1 + P * C2;
  EXPECT_DOUBLE_EQ(c.bytes, elements * 2) << "x, w1, b1, r1, w2, b2, y1, y2: y1 is not read back";
  ir::Node* no_bias = g.add_node("Conv1x1Pair", "no_bias", {}, 2);
  const LayerCost d = layer_cost(*no_bias,
                                 {info({N, H, W, C0}), info({C1, 1, 1, C0}), ir::TensorInfo::absent(),
                                  ir::TensorInfo::absent(), info({C2, 1, 1, C1})},
                                 {info({N, H, W, C1}), info({N, H, W, C2})});
  EXPECT_DOUBLE_EQ(d.flops, c.flops);
  EXPECT_DOUBLE_EQ(d.bytes, (elements - C1 - P * C1 - C2) * 2);
}
