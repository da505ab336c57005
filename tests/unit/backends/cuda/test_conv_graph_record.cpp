// The cuDNN graph path's timing-cache record (backends/cuda/cudnn/conv_graph_record.h) and key text
// (conv_graph_problem.h): pure text, no GPU needed. A record must read back as exactly the choice written,
// anything else must be refused (a misread record would build the wrong plan), and every field of the
// problem must reach the key (a missing one would let two problems share a record).
#ifdef KILN_WITH_CUDA
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "backends/cuda/cudnn/conv_graph_problem.h"
#include "backends/cuda/cudnn/conv_graph_record.h"

namespace kiln::cuda {
namespace {

TEST(ConvGraphRecord, ChoicesRoundTrip) {
  ConvGraphChoice legacy;
  EXPECT_EQ(encode_conv_graph_choice(legacy), "legacy");
  ConvGraphChoice full;
  full.graph = true;
  full.full_epilogue = true;
  full.engine_config = conv_graph_engine_config(12, std::vector<std::pair<int64_t, int64_t>>{{14, 4}, {2, 3}});
  ConvGraphChoice bare = full;
  bare.full_epilogue = false;
  bare.engine_config = conv_graph_engine_config(0, std::nullopt);
  ConvGraphChoice second = full;  // the second configuration of one identity in the heuristic's list
  second.engine_config = conv_graph_engine_config(41, std::vector<std::pair<int64_t, int64_t>>{}) + " #2";
  ConvGraphChoice depthwise;
  depthwise.depthwise = true;
  EXPECT_EQ(encode_conv_graph_choice(depthwise), "depthwise");
  ConvGraphChoice gemm;
  gemm.gemm = true;
  EXPECT_EQ(encode_conv_graph_choice(gemm), "gemm");
  ConvGraphChoice narrow;
  narrow.narrow = true;
  EXPECT_EQ(encode_conv_graph_choice(narrow), "narrow");
  for (const ConvGraphChoice& c : {legacy, full, bare, second, depthwise, gemm, narrow}) {
    const std::string text = encode_conv_graph_choice(c);
    const std::optional<ConvGraphChoice> back = decode_conv_graph_choice(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(back->depthwise, c.depthwise) << text;
    EXPECT_EQ(back->gemm, c.gemm) << text;
    EXPECT_EQ(back->narrow, c.narrow) << text;
    EXPECT_EQ(back->splitk, 0) << text;
    EXPECT_EQ(back->graph, c.graph) << text;
    EXPECT_EQ(back->full_epilogue, c.full_epilogue) << text;
    EXPECT_EQ(back->engine_config, c.engine_config) << text;
  }
  EXPECT_EQ(encode_conv_graph_choice(full), "graph full engine 12 knobs 2=3,14=4");
  EXPECT_EQ(encode_conv_graph_choice(bare), "graph bare engine 0 knobs unknown");
  EXPECT_EQ(encode_conv_graph_choice(second), "graph full engine 41 knobs none #2");
}

// Kiln's split-K kernel, with its split count in the text: "splitk <S>" reads back as that count and nothing
// else.
TEST(ConvGraphRecord, SplitKRoundTrips) {
  for (int s : {1, 2, 4, 8}) {
    ConvGraphChoice c;
    c.splitk = s;
    const std::string text = encode_conv_graph_choice(c);
    EXPECT_EQ(text, "splitk " + std::to_string(s));
    const std::optional<ConvGraphChoice> back = decode_conv_graph_choice(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(back->splitk, s) << text;
    EXPECT_FALSE(back->depthwise) << text;
    EXPECT_FALSE(back->gemm) << text;
    EXPECT_FALSE(back->narrow) << text;
    EXPECT_FALSE(back->graph) << text;
    EXPECT_FALSE(back->full_epilogue) << text;
    EXPECT_TRUE(back->engine_config.empty()) << text;
    EXPECT_EQ(encode_conv_graph_choice(*back), text) << "re-encoded";
  }
}

// Records written before the GEMM path, the narrow kernel and the split-K kernel existed read back as what
// they said, none of them as any of those; and the GEMM path's and the narrow kernel's records (written before
// the split-K kernel) are not split-K choices.
TEST(ConvGraphRecord, OlderRecordsStillDecode) {
  struct Old {
    const char* text;
    bool depthwise, graph, full;
  };
  for (const Old& o : {Old{"legacy", false, false, false}, Old{"depthwise", true, false, false},
                       Old{"graph full engine 12 knobs 2=3,14=4", false, true, true},
                       Old{"graph bare engine 0 knobs unknown", false, true, false}}) {
    const std::optional<ConvGraphChoice> c = decode_conv_graph_choice(o.text);
    ASSERT_TRUE(c.has_value()) << o.text;
    EXPECT_FALSE(c->gemm) << o.text;
    EXPECT_FALSE(c->narrow) << o.text;
    EXPECT_EQ(c->splitk, 0) << o.text;
    EXPECT_EQ(c->depthwise, o.depthwise) << o.text;
    EXPECT_EQ(c->graph, o.graph) << o.text;
    EXPECT_EQ(c->full_epilogue, o.full) << o.text;
    EXPECT_EQ(encode_conv_graph_choice(*c), o.text) << "re-encoded";
  }
  for (const char* text : {"gemm", "narrow"}) {
    const std::optional<ConvGraphChoice> c = decode_conv_graph_choice(text);
    ASSERT_TRUE(c.has_value()) << text;
    EXPECT_EQ(c->splitk, 0) << text;
    EXPECT_EQ(encode_conv_graph_choice(*c), text) << "re-encoded";
  }
}

TEST(ConvGraphRecord, RefusesOtherText) {
  for (const char* text : {"", "Legacy", "legacy ", "depthwise ", "Depthwise", " legacy", "graph", "graph full", "graph full ", "graph bare engine ",
                           "Gemm", "gemm ", " gemm", "GEMM", "narrow ", "Narrow", "narrow mma", "gemm full", "gemm engine 1 knobs none", "cublaslt",
                           "graph half engine 1 knobs none", "graph full 12", "graph  full engine 1 knobs none",
                           "graphfull engine 1 knobs none",
                           // The split count: one or two digits, no sign, no leading zero, one space before.
                           "splitk", "splitk ", "splitk 0", "splitk 08", "splitk -1", "splitk x", "Splitk 2",
                           "splitk  2", "splitk 2 ", "splitk 123", "splitk2", " splitk 2", "splitk +2"})
    EXPECT_FALSE(decode_conv_graph_choice(text).has_value()) << "'" << text << "'";
  // cudnnFind's binary records (another key kind) are not graph choices either.
  EXPECT_FALSE(decode_conv_graph_choice(std::string("\x01\x00\x00\x00\x00\x00\x00\x00", 8)).has_value());
}

TEST(ConvGraphRecord, EngineConfigText) {
  EXPECT_EQ(conv_graph_engine_config(7, std::vector<std::pair<int64_t, int64_t>>{}), "engine 7 knobs none");
  EXPECT_EQ(conv_graph_engine_config(7, std::nullopt), "engine 7 knobs unknown");
  // Sorted by knob type, so the order cuDNN reports them in does not matter.
  EXPECT_EQ(conv_graph_engine_config(3, std::vector<std::pair<int64_t, int64_t>>{{40, 1}, {2, -1}, {14, 0}}),
            "engine 3 knobs 2=-1,14=0,40=1");
  EXPECT_NE(conv_graph_engine_config(3, std::vector<std::pair<int64_t, int64_t>>{{2, 1}}),
            conv_graph_engine_config(3, std::vector<std::pair<int64_t, int64_t>>{{2, 2}}));
  EXPECT_NE(conv_graph_engine_config(3, std::vector<std::pair<int64_t, int64_t>>{{2, 1}}),
            conv_graph_engine_config(32, std::vector<std::pair<int64_t, int64_t>>{{2, 1}}));
}

// A ResNet block's 3x3 convolution, channels-last float16.
ConvGraphProblem base_problem() {
  ConvGraphProblem p;
  p.io_type = DataType::kHALF;
  p.x_dims = {1, 64, 56, 56};
  p.x_strides = {200704, 1, 3584, 64};
  p.w_dims = {64, 64, 3, 3};
  p.w_strides = {576, 1, 192, 64};
  p.y_dims = {1, 64, 56, 56};
  p.y_strides = {200704, 1, 3584, 64};
  p.bias_dims = {1, 64, 1, 1};
  p.bias_strides = {64, 1, 64, 64};
  p.pre_pad = {1, 1};
  p.post_pad = {1, 1};
  p.stride = {1, 1};
  p.dilation = {1, 1};
  return p;
}

TEST(ConvGraphRecord, KeyTextHoldsEveryField) {
  const ConvGraphEpilogue full{true, true, true};
  const std::string base = conv_graph_problem_text(base_problem(), full, 0, 1 << 26);
  EXPECT_EQ(base, conv_graph_problem_text(base_problem(), full, 0, 1 << 26));  // deterministic
  using Change = std::function<void(ConvGraphProblem&)>;
  const std::vector<std::pair<const char*, Change>> changes = {
      {"dtype", [](ConvGraphProblem& p) { p.io_type = DataType::kBF16; }},
      {"tf32", [](ConvGraphProblem& p) { p.allow_tf32 = true; }},
      {"x dims", [](ConvGraphProblem& p) { p.x_dims[0] = 2; }},
      {"x strides", [](ConvGraphProblem& p) { p.x_strides = {200704, 3136, 56, 1}; }},
      {"w dims", [](ConvGraphProblem& p) { p.w_dims[1] = 32; }},
      {"w strides", [](ConvGraphProblem& p) { p.w_strides = {576, 9, 3, 1}; }},
      {"y dims", [](ConvGraphProblem& p) { p.y_dims[2] = 28; }},
      {"y strides", [](ConvGraphProblem& p) { p.y_strides = {200704, 3136, 56, 1}; }},
      {"bias dims", [](ConvGraphProblem& p) { p.bias_dims[1] = 32; }},
      {"bias strides", [](ConvGraphProblem& p) { p.bias_strides = {64, 1, 1, 1}; }},
      {"pre pad", [](ConvGraphProblem& p) { p.pre_pad = {0, 1}; }},
      {"post pad", [](ConvGraphProblem& p) { p.post_pad = {1, 0}; }},
      {"stride", [](ConvGraphProblem& p) { p.stride = {2, 2}; }},
      {"dilation", [](ConvGraphProblem& p) { p.dilation = {2, 1}; }},
      {"x align", [](ConvGraphProblem& p) { p.align[kGraphX] = 8; }},
      {"w align", [](ConvGraphProblem& p) { p.align[kGraphW] = 8; }},
      {"y align", [](ConvGraphProblem& p) { p.align[kGraphY] = 2; }},
      {"bias align", [](ConvGraphProblem& p) { p.align[kGraphBias] = 4; }},
      {"residual align", [](ConvGraphProblem& p) { p.align[kGraphResidual] = 2; }},
      {"spatial rank", [](ConvGraphProblem& p) { p.stride = {1, 1, 1}; }},
  };
  std::set<std::string> seen = {base};
  for (const auto& [what, change] : changes) {
    ConvGraphProblem p = base_problem();
    change(p);
    EXPECT_TRUE(seen.insert(conv_graph_problem_text(p, full, 0, 1 << 26)).second) << what << " does not reach the key";
  }
  // The epilogue the fused plans compute, Kiln's activation and the workspace.
  for (const ConvGraphEpilogue& e : {ConvGraphEpilogue{}, ConvGraphEpilogue{true, false, false},
                                     ConvGraphEpilogue{false, true, false}, ConvGraphEpilogue{true, true, false}})
    EXPECT_TRUE(seen.insert(conv_graph_problem_text(base_problem(), e, 0, 1 << 26)).second) << e.str();
  EXPECT_TRUE(seen.insert(conv_graph_problem_text(base_problem(), full, -1, 1 << 26)).second) << "activation";
  EXPECT_TRUE(seen.insert(conv_graph_problem_text(base_problem(), full, 0, 1 << 20)).second) << "workspace";
  // List boundaries: [1,23] and [12,3] are different dims.
  ConvGraphProblem a = base_problem(), b = base_problem();
  a.stride = {1, 23};
  b.stride = {12, 3};
  EXPECT_NE(conv_graph_problem_text(a, full, 0, 0), conv_graph_problem_text(b, full, 0, 0));
}

TEST(ConvGraphRecord, AddressAlignment) {
  EXPECT_EQ(address_alignment(nullptr), 16);
  EXPECT_EQ(address_alignment(reinterpret_cast<const void*>(uintptr_t{0x1000})), 16);
  EXPECT_EQ(address_alignment(reinterpret_cast<const void*>(uintptr_t{0x1008})), 8);
  EXPECT_EQ(address_alignment(reinterpret_cast<const void*>(uintptr_t{0x1002})), 2);
  EXPECT_EQ(address_alignment(reinterpret_cast<const void*>(uintptr_t{0x1001})), 1);
}

}  // namespace
}  // namespace kiln::cuda

#endif  // KILN_WITH_CUDA
