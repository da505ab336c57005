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
