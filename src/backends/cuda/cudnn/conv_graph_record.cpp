#include "backends/cuda/cudnn/conv_graph_record.h"

#include <algorithm>
#include <atomic>

namespace kiln::cuda {

namespace {
constexpr const char* kLegacy = "legacy";
constexpr const char* kDepthwise = "depthwise";
constexpr const char* kGemm = "gemm";
constexpr const char* kNarrow = "narrow";
constexpr const char* kSplitK = "splitk ";
constexpr const char* kGraphFull = "graph full ";
constexpr const char* kGraphBare = "graph bare ";
constexpr const char* kEngine = "engine ";

std::atomic<int64_t> g_plans_finalized{0}, g_choices_timed{0}, g_choices_from_record{0}, g_gemm_chosen{0},
    g_narrow_chosen{0}, g_splitk_chosen{0};

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

std::string encode_conv_graph_choice(const ConvGraphChoice& c) {
  if (c.depthwise) return kDepthwise;
  if (c.gemm) return kGemm;
  if (c.narrow) return kNarrow;
  if (c.splitk > 0) return kSplitK + std::to_string(c.splitk);
  if (!c.graph) return kLegacy;
  return (c.full_epilogue ? kGraphFull : kGraphBare) + c.engine_config;
}

std::optional<ConvGraphChoice> decode_conv_graph_choice(const std::string& text) {
  ConvGraphChoice c;
  if (text == kLegacy) return c;
  if (text == kDepthwise) {
    c.depthwise = true;
    return c;
  }
  if (text == kGemm) {
    c.gemm = true;
    return c;
  }
  if (text == kNarrow) {
    c.narrow = true;
    return c;
  }
  if (starts_with(text, kSplitK)) {
    // One or two digits without a sign or leading zero: exactly what encode makes (the split count is the
    // kernel's to check against the node).
    const std::string n = text.substr(std::char_traits<char>::length(kSplitK));
    if (n.empty() || n.size() > 2 || n[0] == '0' || !std::all_of(n.begin(), n.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
      return std::nullopt;
    c.splitk = std::stoi(n);
    return c;
  }
  const bool full = starts_with(text, kGraphFull);
  if (!full && !starts_with(text, kGraphBare)) return std::nullopt;
  c.graph = true;
  c.full_epilogue = full;
  c.engine_config = text.substr(std::char_traits<char>::length(kGraphFull));  // both prefixes have one length
  // The configuration is matched as text against the candidates' own: it must at least look like one.
  if (!starts_with(c.engine_config, kEngine) || c.engine_config.size() == std::char_traits<char>::length(kEngine))
    return std::nullopt;
  return c;
}

std::string conv_graph_engine_config(int64_t engine, std::optional<std::vector<std::pair<int64_t, int64_t>>> knobs) {
  std::string s = kEngine + std::to_string(engine) + " knobs ";
  if (!knobs) return s + "unknown";
  if (knobs->empty()) return s + "none";
  std::sort(knobs->begin(), knobs->end());
  for (size_t i = 0; i < knobs->size(); ++i)
    s += (i ? "," : "") + std::to_string((*knobs)[i].first) + "=" + std::to_string((*knobs)[i].second);
  return s;
}

ConvGraphCounters conv_graph_counters() {
  ConvGraphCounters c;
  c.plans_finalized = g_plans_finalized.load();
  c.choices_timed = g_choices_timed.load();
  c.choices_from_record = g_choices_from_record.load();
  c.gemm_chosen = g_gemm_chosen.load();
  c.narrow_chosen = g_narrow_chosen.load();
  c.splitk_chosen = g_splitk_chosen.load();
  return c;
}

void count_conv_graph_plan_finalized() { ++g_plans_finalized; }

void count_conv_graph_choice(bool from_record) { ++(from_record ? g_choices_from_record : g_choices_timed); }

void count_conv_gemm_chosen() { ++g_gemm_chosen; }
void count_conv_narrow_chosen() { ++g_narrow_chosen; }
void count_conv_splitk_chosen() { ++g_splitk_chosen; }

}  // namespace kiln::cuda
