// The cuDNN graph path's choice for one convolution problem, as a timing-cache record ("cudnn-graph" key,
// conv_graph_problem_text), so that only the first run ever times: the builder's trial run at each profile's
// opt shapes records the choice into the plan, and every context of the engine then finalizes just the
// recorded plan, or none when the legacy API won. No cuDNN header is needed here (see conv_graph_problem.h).
//
// Record text: "legacy", "depthwise" (Kiln's direct depthwise kernel, kernels/depthwise_conv.h), "gemm" (a
// 1x1 convolution as one cuBLASLt GEMM, conv_gemm_path.h; its algorithm is the GEMM's own record), "narrow"
// (Kiln's tensor-core kernel for 16-channel inputs, kernels/narrow_conv_mma.h), "splitk <S>" (Kiln's split-K
// kernel over S blocks a tile, kernels/splitk_conv_mma.h; S 1 to 8), or
// "graph full <engine config>" / "graph bare <engine config>" where full is the
// plan with the node's whole fusable epilogue in the graph and bare the convolution alone (Kiln's epilogue
// kernel does the rest), and <engine config> is conv_graph_engine_config()'s text, with " #<n>" after it for
// the n-th configuration of one identity in the heuristic's list (build_conv_graph_plans, conv_graph.cpp).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::cuda {

struct ConvGraphChoice {
  bool depthwise = false;      // Kiln's direct depthwise kernel (then the other choices are false)
  bool gemm = false;           // the convolution as one cuBLASLt GEMM (then the other choices are false)
  bool narrow = false;         // Kiln's narrow-input tensor-core kernel (then the other choices are false)
  int splitk = 0;              // > 0: Kiln's split-K kernel over that many splits (then the others are false)
  bool graph = false;          // false (and none of the above): the legacy cuDNN call
  bool full_epilogue = false;  // graph: the plan computes the node's whole fusable epilogue (else: bare)
  std::string engine_config;   // graph: which engine configuration (conv_graph_engine_config)
};

std::string encode_conv_graph_choice(const ConvGraphChoice& c);
// nullopt when the text is not one encode_conv_graph_choice makes.
std::optional<ConvGraphChoice> decode_conv_graph_choice(const std::string& text);

// One engine configuration's identity: cuDNN's global engine index and the knob settings (type, value) the
// heuristic chose, in knob-type order: "engine 12 knobs 2=3,14=4", "engine 0 knobs none", or
// "engine 5 knobs unknown" when cuDNN did not report them (nullopt). The same engine can appear with
// different knobs, so the index alone would not say which configuration won.
std::string conv_graph_engine_config(int64_t engine, std::optional<std::vector<std::pair<int64_t, int64_t>>> knobs);

// Process-wide counts of the graph path's work (tests check that a recorded choice times nothing and
// finalizes at most one plan; the counts cost one atomic increment each).
struct ConvGraphCounters {
  int64_t plans_finalized = 0;      // execution-plan finalizations attempted
  int64_t choices_timed = 0;        // choices made by building and timing candidates
  int64_t choices_from_record = 0;  // choices taken from a timing-cache record
  int64_t gemm_chosen = 0;          // choices (timed, forced or recorded) that took the cuBLASLt GEMM path
  int64_t narrow_chosen = 0;        // choices (timed, forced or recorded) that took the narrow-input kernel
  int64_t splitk_chosen = 0;        // choices (timed, forced or recorded) that took the split-K kernel
};
ConvGraphCounters conv_graph_counters();
void count_conv_graph_plan_finalized();
void count_conv_graph_choice(bool from_record);
void count_conv_gemm_chosen();
void count_conv_narrow_chosen();
void count_conv_splitk_chosen();

}  // namespace kiln::cuda
