#include "backends/cuda/tactic_ties.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "kiln/types.h"
#include "runtime/env_switch.h"

namespace kiln::cuda {

void TacticTies::add(TacticTie tie) {
  std::lock_guard<std::mutex> lock(mu_);
  ++layers_[tie.key];
  ties_.push_back(std::move(tie));
}

void TacticTies::note_use(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  ++layers_[key];
}

int TacticTies::layers(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = layers_.find(key);
  return it == layers_.end() ? 0 : it->second;
}

std::vector<TacticTie> TacticTies::take() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TacticTie> out;
  out.swap(ties_);
  auto stake = [&](const TacticTie& t) {
    auto it = layers_.find(t.key);
    return static_cast<double>(t.alone_ms) * (it == layers_.end() ? 1 : it->second);
  };
  std::stable_sort(out.begin(), out.end(), [&](const TacticTie& a, const TacticTie& b) { return stake(a) > stake(b); });
  layers_.clear();
  return out;
}

std::vector<std::string> near_ties(const std::vector<std::pair<std::string, float>>& timed, float margin,
                                   size_t max_count) {
  std::vector<std::pair<std::string, float>> ok;
  for (const auto& t : timed)
    if (t.second >= 0) ok.push_back(t);
  std::stable_sort(ok.begin(), ok.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  std::vector<std::string> out;
  for (const auto& t : ok) {
    if (out.size() == max_count || t.second > ok.front().second * (1 + margin)) break;
    out.push_back(t.first);
  }
  return out;
}

float median_ms(std::vector<float> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

size_t chain_choice(const std::vector<std::vector<float>>& round_ms, float min_gain) {
  if (round_ms.empty() || round_ms[0].empty()) return 0;
  const float first = median_ms(round_ms[0]);
  size_t best = 0;
  float best_ms = first * (1 - min_gain);
  for (size_t i = 1; i < round_ms.size(); ++i) {
    if (round_ms[i].empty()) continue;
    const float m = median_ms(round_ms[i]);
    if (m < best_ms) {
      best_ms = m;
      best = i;
    }
  }
  return best;
}

int replays_per_round(float replay_ms) {
  if (!(replay_ms > 0)) return kChainMaxReplays;
  return static_cast<int>(std::clamp(std::ceil(kChainRoundMs / replay_ms), 1.f, static_cast<float>(kChainMaxReplays)));
}

bool chain_ties_enabled() { return !env_is("KILN_GEMM_CHAIN_TIES", "0"); }

namespace {

// The number `name` holds, `fallback` when unset or empty; kiln::Error naming the variable and `what` (the values
// it takes) when the value is not a number from lo to hi.
double bounded_env(const char* name, double fallback, double lo, double hi, const char* what) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (*end != '\0' || !(x >= lo && x <= hi)) throw Error(std::string(name) + "='" + v + "': " + what);
  return x;
}

}  // namespace

float chain_tie_margin() {
  return static_cast<float>(bounded_env("KILN_GEMM_CHAIN_TIE_MARGIN", kChainTieMargin, 0, 10,
                                        "a relative margin from 0 to 10 (0.2: within 20%)"));
}

double chain_budget_s() {
  return bounded_env("KILN_GEMM_CHAIN_BUDGET_S", kChainBudgetS, 0, 3600, "seconds from 0 to 3600 (20: the default)");
}

bool chain_fits_budget(double elapsed_s, double execution_s, int executions, double budget_s) {
  return elapsed_s < budget_s && elapsed_s + execution_s * executions <= budget_s;
}

}  // namespace kiln::cuda
