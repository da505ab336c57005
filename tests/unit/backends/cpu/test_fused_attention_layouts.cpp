// FusedAttention's storage layouts on the CPU kernel (ir/ops/fused_attention_format.h): the same attention read
// from tokens-major [B, S, H, X], packed [B, S, N, H, X] and 3-D [S, N, X] tensors, and written tokens-major,
// must give what the heads-major node gives on the transposed tensors (the reference path the CUDA kernels are
// tested against). Shape inference of the layouts and its errors too.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/math_kernel_test_util.h"
#include "ir/op_registry.h"

using namespace kiln;
using mtest::rand_float;
using mtest::run1;

namespace {

HostTensor permute(const HostTensor& x, std::vector<int64_t> perm) {
  return run1("Shuffle", {&x}, [&](ir::Attrs& a) {
    a.set("first_transpose", perm);
    a.set("has_reshape", int64_t{0});
  });
}

// [B, H, S, X] heads-major -> [B, S, H, X] tokens-major (its own inverse).
HostTensor tokens_major(const HostTensor& x) { return permute(x, {0, 2, 1, 3}); }

// Tokens-major q, k, v packed side by side as [B, S, 3, H, X] in the order `slots` says (slots[t]: where t goes).
HostTensor pack(const HostTensor* qkv[3], const int64_t slots[3]) {
  const Dims& s = qkv[0]->shape();  // [B, H, S, X]
  const int64_t B = s[0], H = s[1], S = s[2], X = s[3];
  HostTensor p(qkv[0]->dtype(), {B, S, 3, H, X});
  const size_t es = dtype_size(p.dtype());
  for (int t = 0; t < 3; ++t) {
    const HostTensor tm = tokens_major(*qkv[t]);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < S; ++i)
        std::memcpy(static_cast<uint8_t*>(p.mutable_raw()) + (((b * S + i) * 3 + slots[t]) * H * X) * es,
                    static_cast<const uint8_t*>(tm.raw()) + ((b * S + i) * H * X) * es, static_cast<size_t>(H * X) * es);
  }
  return p;
}

struct Attn {
  double scale = 0.35;
  bool causal = false;
  bool k_transposed = false;
  int64_t layout[3] = {0, 0, 0}, slot[3] = {0, 0, 0}, out_layout = 0;
};

HostTensor attention(const std::vector<const HostTensor*>& in, const Attn& a) {
  return run1(
      "FusedAttention", in,
      [&](ir::Attrs& at) {
        at.set("scale", a.scale);
        at.set("causal", int64_t{a.causal ? 1 : 0});
        at.set("k_transposed", int64_t{a.k_transposed ? 1 : 0});
        const char* names[3] = {"q", "k", "v"};
        for (int t = 0; t < 3; ++t) {
          at.set(std::string(names[t]) + "_layout", a.layout[t]);
          at.set(std::string(names[t]) + "_slot", a.slot[t]);
        }
        at.set("out_layout", a.out_layout);
      },
      mtest::test_pool());
}

::testing::AssertionResult same(const HostTensor& got, const HostTensor& want, double rtol = 1e-6) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << dims_str(got.shape()) << " vs " << dims_str(want.shape());
  double maxref = 0;
  for (int64_t i = 0; i < want.numel(); ++i) maxref = std::max(maxref, std::fabs(want.get_f64(i)));
  return mtest::close(got, mtest::to_f64(want), 0, rtol * maxref);
}

}  // namespace

// BERT's case: q, k, v and the output tokens-major, a padding mask, Sq != Sk and Dv != D.
TEST(FusedAttentionLayouts, TokensMajorMatchesHeadsMajor) {
  const int64_t B = 2, H = 3, Sq = 5, Sk = 7, D = 8, Dv = 6;
  const HostTensor q = rand_float({B, H, Sq, D}), k = rand_float({B, H, Sk, D}), v = rand_float({B, H, Sk, Dv});
  const HostTensor m = rand_float({B, 1, 1, Sk});
  const HostTensor ref = attention({&q, &k, &v, &m}, Attn{});
  const HostTensor qt = tokens_major(q), kt = tokens_major(k), vt = tokens_major(v);
  Attn a;
  a.layout[0] = a.layout[1] = a.layout[2] = 1;
  a.out_layout = 1;
  const HostTensor got = attention({&qt, &kt, &vt, &m}, a);
  EXPECT_EQ(got.shape(), (Dims{B, Sq, H, Dv}));
  EXPECT_TRUE(same(got, tokens_major(ref)));
  // Tokens-major inputs, heads-major output; and the reverse.
  a.out_layout = 0;
  EXPECT_TRUE(same(attention({&qt, &kt, &vt, &m}, a), ref));
  Attn o;
  o.out_layout = 1;
  EXPECT_TRUE(same(attention({&q, &k, &v, &m}, o), tokens_major(ref)));
}

// Mixed: q tokens-major, k heads-major as K^T, v tokens-major; causal with more keys than queries.
TEST(FusedAttentionLayouts, MixedWithTransposedKeysAndCausal) {
  const int64_t B = 1, H = 2, Sq = 6, Sk = 9, D = 4;
  const HostTensor q = rand_float({B, H, Sq, D}), k = rand_float({B, H, Sk, D}), v = rand_float({B, H, Sk, D});
  Attn base;
  base.causal = true;
  const HostTensor ref = attention({&q, &k, &v}, base);
  const HostTensor qt = tokens_major(q), kT = permute(k, {0, 1, 3, 2}), vt = tokens_major(v);
  Attn a = base;
  a.k_transposed = true;
  a.layout[0] = a.layout[2] = 1;
  EXPECT_TRUE(same(attention({&qt, &kT, &vt}, a), ref));
}

// ViT's packed qkv: one [B, S, 3, H, D] tensor feeds all three (slots in another order than q, k, v), in
// float32 and float16 (the packed tensor is converted to float32 once for all three).
TEST(FusedAttentionLayouts, PackedSlotsMatchHeadsMajor) {
  const int64_t B = 2, H = 3, S = 10, D = 8;
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF}) {
    SCOPED_TRACE(dtype_name(dt));
    const HostTensor q = rand_float({B, H, S, D}, dt), k = rand_float({B, H, S, D}, dt), v = rand_float({B, H, S, D}, dt);
    const HostTensor ref = attention({&q, &k, &v}, Attn{});
    const HostTensor* qkv[3] = {&q, &k, &v};
    const int64_t slots[3] = {1, 2, 0};
    const HostTensor p = pack(qkv, slots);
    Attn a;
    for (int t = 0; t < 3; ++t) {
      a.layout[t] = 2;
      a.slot[t] = slots[t];
    }
    a.out_layout = 1;
    const HostTensor got = attention({&p, &p, &p}, a);
    EXPECT_EQ(got.dtype(), dt);
    EXPECT_TRUE(same(got, tokens_major(ref), dt == DataType::kFLOAT ? 1e-6 : 1e-3));
  }
}

// nn.MultiheadAttention as torch 2.11 exports it: sequence-first tokens [S, B, H, X] (layout 3) and its in_proj
// output packed sequence-first [S, B, 3, H, X] (layout 4), written sequence-first [S, B, H, X] (out 3).
TEST(FusedAttentionLayouts, SequenceFirstMatchesHeadsMajor) {
  const int64_t B = 2, H = 3, S = 9, D = 8;
  const HostTensor q = rand_float({B, H, S, D}), k = rand_float({B, H, S, D}), v = rand_float({B, H, S, D});
  const HostTensor m = rand_float({B, 1, 1, S});
  const HostTensor ref = attention({&q, &k, &v, &m}, Attn{});
  const std::vector<int64_t> to_seq_first = {2, 0, 1, 3};  // [B, H, S, X] -> [S, B, H, X]
  const HostTensor qs = permute(q, to_seq_first), ks = permute(k, to_seq_first), vs = permute(v, to_seq_first);
  Attn a;
  a.layout[0] = a.layout[1] = a.layout[2] = 3;
  a.out_layout = 3;
  HostTensor got = attention({&qs, &ks, &vs, &m}, a);
  EXPECT_EQ(got.shape(), (Dims{S, B, H, D}));
  EXPECT_TRUE(same(got, permute(ref, to_seq_first)));
  // Packed: the batch-first packing [B, S, 3, H, X], moved to [S, B, 3, H, X].
  const HostTensor* qkv[3] = {&q, &k, &v};
  const int64_t slots[3] = {2, 0, 1};
  const HostTensor p = permute(pack(qkv, slots), {1, 0, 2, 3, 4});
  Attn pa;
  for (int t = 0; t < 3; ++t) {
    pa.layout[t] = 4;
    pa.slot[t] = slots[t];
  }
  pa.out_layout = 3;
  EXPECT_TRUE(same(attention({&p, &p, &p, &m}, pa), permute(ref, to_seq_first)));
  pa.out_layout = 1;  // and written batch-first tokens-major
  EXPECT_TRUE(same(attention({&p, &p, &p, &m}, pa), tokens_major(ref)));
}

// nn.MultiheadAttention's 3-D [S, N, X] tokens-major, with a 3-D mask over the scores [N, Sq, Sk].
TEST(FusedAttentionLayouts, ThreeDimensionalTokensMajor) {
  const int64_t N = 4, Sq = 5, Sk = 6, D = 8;
  const HostTensor q = rand_float({N, Sq, D}), k = rand_float({N, Sk, D}), v = rand_float({N, Sk, D});
  const HostTensor m = rand_float({N, Sq, Sk});
  const HostTensor ref = attention({&q, &k, &v, &m}, Attn{});
  const HostTensor qt = permute(q, {1, 0, 2}), kt = permute(k, {1, 0, 2}), vt = permute(v, {1, 0, 2});
  Attn a;
  a.layout[0] = a.layout[1] = a.layout[2] = 1;
  a.out_layout = 1;
  const HostTensor got = attention({&qt, &kt, &vt, &m}, a);
  EXPECT_EQ(got.shape(), (Dims{Sq, N, D}));
  EXPECT_TRUE(same(got, permute(ref, {1, 0, 2})));
}

// Broadcast batch and heads read through tokens-major strides: k, v with one head [B, S, 1, D] shared by every
// query head, q with one batch [1, S, H, D] against two.
TEST(FusedAttentionLayouts, BroadcastDimsInTokensMajor) {
  const int64_t B = 2, H = 3, S = 7, D = 4;
  const HostTensor q = rand_float({1, H, S, D}), k = rand_float({B, 1, S, D}), v = rand_float({B, 1, S, D});
  const HostTensor ref = attention({&q, &k, &v}, Attn{});
  ASSERT_EQ(ref.shape(), (Dims{B, H, S, D}));
  const HostTensor qt = tokens_major(q), kt = tokens_major(k), vt = tokens_major(v);
  Attn a;
  a.layout[0] = a.layout[1] = a.layout[2] = 1;
  a.out_layout = 1;
  EXPECT_TRUE(same(attention({&qt, &kt, &vt}, a), tokens_major(ref)));
}

TEST(FusedAttentionLayouts, InferenceOfLayouts) {
  ir::Graph g;
  auto info = [](const Dims& d) { return ir::TensorInfo{true, DataType::kHALF, d, nullptr}; };
  auto infer = [&](const std::vector<Dims>& shapes, const std::function<void(ir::Attrs&)>& set) {
    std::vector<ir::Value*> vals;
    std::vector<ir::TensorInfo> infos;
    for (const Dims& d : shapes) {
      vals.push_back(g.add_input(g.unique_name("x"), DataType::kHALF, d));
      infos.push_back(info(d));
    }
    ir::Node* n = g.add_node("FusedAttention", g.unique_name("fa"), vals, 1);
    set(n->attrs);
    return ir::infer_node(*n, infos).at(0).shape;
  };
  auto tokens = [](ir::Attrs& a) {
    for (const char* l : {"q_layout", "k_layout", "v_layout", "out_layout"}) a.set(l, int64_t{1});
  };
  // Tokens-major [B, S, H, D] in and out, with unknown batch and sequence dims.
  EXPECT_EQ(infer({{-1, -1, 12, 64}, {-1, -1, 12, 64}, {-1, -1, 12, 64}, {-1, 1, 1, -1}}, tokens), (Dims{-1, -1, 12, 64}));
  EXPECT_EQ(infer({{2, 5, 12, 64}, {2, 7, 12, 64}, {2, 7, 12, 32}}, tokens), (Dims{2, 5, 12, 32}));
  // Packed [B, S, 3, H, D] for all three, output heads-major or tokens-major.
  auto packed = [](int64_t out) {
    return [out](ir::Attrs& a) {
      for (const char* l : {"q_layout", "k_layout", "v_layout"}) a.set(l, int64_t{2});
      a.set("k_slot", int64_t{1});
      a.set("v_slot", int64_t{2});
      a.set("out_layout", out);
    };
  };
  const Dims p = {2, 197, 3, 12, 64};
  EXPECT_EQ(infer({p, p, p}, packed(0)), (Dims{2, 12, 197, 64}));
  EXPECT_EQ(infer({p, p, p}, packed(1)), (Dims{2, 197, 12, 64}));
  // 3-D tokens-major [S, N, D].
  EXPECT_EQ(infer({{9, 6, 8}, {9, 6, 8}, {9, 6, 8}}, tokens), (Dims{9, 6, 8}));
  // Sequence-first packed [S, B, 3, H, D] (a dynamic batch) -> sequence-first [S, B, H, D].
  auto seq_first = [](ir::Attrs& a) {
    for (const char* l : {"q_layout", "k_layout", "v_layout"}) a.set(l, int64_t{4});
    a.set("v_slot", int64_t{2});
    a.set("out_layout", int64_t{3});
  };
  const Dims sp = {197, -1, 3, 12, 64};
  EXPECT_EQ(infer({sp, sp, sp}, seq_first), (Dims{197, -1, 12, 64}));

  auto fails = [&](const std::vector<Dims>& shapes, const std::function<void(ir::Attrs&)>& set, const std::string& what) {
    try {
      infer(shapes, set);
      ADD_FAILURE() << "no error, expected one naming " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  const Dims t = {2, 5, 4, 8};
  fails({p, p, p}, [](ir::Attrs& a) {
    for (const char* l : {"q_layout", "k_layout", "v_layout"}) a.set(l, int64_t{2});
    a.set("q_slot", int64_t{3});
  }, "q_slot 3");
  fails({t, t, t}, [](ir::Attrs& a) { a.set("v_slot", int64_t{1}); }, "v_slot applies to a packed v");
  fails({t, t, t}, [](ir::Attrs& a) {
    a.set("k_layout", int64_t{1});
    a.set("k_transposed", int64_t{1});
  }, "k_transposed needs a heads-major k");
  fails({t, {2, 5, 8}, t}, [](ir::Attrs&) {}, "mix 3-D and 4-D");
  fails({t, t, t}, [](ir::Attrs& a) { a.set("out_layout", int64_t{2}); }, "out_layout must be 0");
  fails({t, t, t}, [](ir::Attrs& a) { a.set("q_layout", int64_t{7}); }, "unknown layout 7");
  fails({p, t, t}, [](ir::Attrs& a) { a.set("q_layout", int64_t{1}); }, "tokens-major tensor (layout 1)");
  fails({t, t, {2, 5, 8}}, [](ir::Attrs& a) { a.set("v_layout", int64_t{3}); }, "sequence-first tokens-major tensor (layout 3)");
  fails({{5, 6, 8}, {5, 6, 8}, {5, 6, 8}}, [](ir::Attrs& a) { a.set("out_layout", int64_t{3}); }, "needs the 4-D forms");
  fails({p, p, p}, [](ir::Attrs& a) {
    for (const char* l : {"q_layout", "k_layout", "v_layout"}) a.set(l, int64_t{4});
    a.set("k_slot", int64_t{5});
  }, "k_slot 5");
  // Tokens-major k [B, S, H, D] against q's head count.
  fails({t, {2, 5, 3, 8}, t}, tokens, "broadcast");
}
