// Tactics that tie when timed alone, for the build's chain timing (chain_tactics.cpp).
//
// A kernel's candidates are timed alone, back to back with themselves: weights hot in L2, nothing before them
// to overlap with. In a model's chain neither holds, and candidates that tie alone can differ there: GPT-2's 12
// mlp c_proj GEMMs (128 x 768 x 3072) on the split-K kernel timed 8.4 us with the 128x64 tile x8 and 8.5 us with
// 64x64 x4, and the model ran 1.1% faster with the second (bench/NOTES.md, twentieth session, call 6). Which
// one a build took was noise. The build's tactic timing (unless KILN_GEMM_CHAIN_TIES=0) records each such near tie
// here, then times the whole model with each of its tactics and keeps the fastest (chain_tactics.cpp).
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kiln::cuda {

// How close to the fastest a candidate's time alone must be to be tried in the chain, relative. 5% covered the
// spread of the tie above (8.4 against 8.5 us, the credited 7.9 against 8.0 us) but not ViT-B/16's attention
// output projection (197 x 768 x 768 with the residual): Kiln's split-K kernel 64x64 x4 timed 6.0 us credited
// against cuBLASLt's 5.2 alone (15% behind), and in the chain it ran the model 1.4% faster, since the LayerNorm
// after it starts beside it; with a 2x margin ViT ran 2.2% faster than its rebuild control, GPT-2 the same
// (bench/NOTES.md, twenty-first session, call 4). 20% takes that tie in and leaves out the losses by a third or
// more (GPT-2's c_attn and c_fc on Kiln's kernel, 33% and 61% behind alone, which the chain rejected too).
// KILN_GEMM_CHAIN_TIE_MARGIN sets another (1: within 2x), for tests and experiments (chain_tie_margin).
constexpr float kChainTieMargin = 0.2f;
// At most this many tactics of one problem are tried in the chain (the fastest alone among them).
constexpr size_t kChainTieMaxTactics = 3;

// One problem's near tie: its tactic key and the records of the tactics to try, the one chosen alone first; their
// names for the log where a record is not text (cuBLASLt's algorithms are bytes), else empty; the time alone of
// the one chosen alone (ms; 0 unknown).
struct TacticTie {
  std::string key;
  std::vector<std::string> tactics;
  std::vector<std::string> labels = {};
  float alone_ms = 0;
  const std::string& label(size_t i) const { return i < labels.size() ? labels[i] : tactics[i]; }
};

// Where the kernels of a build's timing run put their near ties (Resources::ties). Thread-safe.
class TacticTies {
 public:
  void add(TacticTie tie);  // counts as one layer of the tie's problem
  // A layer found its problem's record instead of timing (the record serves every layer of that shape): one
  // more layer at stake in that problem's tie, if it has one.
  void note_use(const std::string& key);
  // Every tie added so far, the most at stake first (its time alone x its layers; stable), and empties the list:
  // the chain timing's budget (chain_budget_s) then goes to the ties that can move the model most.
  std::vector<TacticTie> take();
  int layers(const std::string& key) const;  // the layers counted for `key` (add and note_use) since the last take

 private:
  std::map<std::string, int> layers_;
  mutable std::mutex mu_;
  std::vector<TacticTie> ties_;
};

// The records of the timed candidates (record, ms; a negative ms failed) whose time is within `margin` of the
// fastest's, fastest first (a stable order: of equal times, the one timed first, as the kernels choose), at most
// `max_count`. Fewer than two: no tie.
std::vector<std::string> near_ties(const std::vector<std::pair<std::string, float>>& timed, float margin,
                                   size_t max_count);

// A chain choice is kept over the one made alone only when its model runs at least this much faster (relative):
// smaller differences are within what two contexts of one engine read apart.
constexpr float kChainMinGain = 0.003f;

// The median of a tactic's round times (the mean of the middle two for an even count); 0 for none.
float median_ms(std::vector<float> v);

// Which of a tie's tactics the chain keeps, from the model's times with each: round_ms[i][r] is round r with
// tactic i (tactic 0 the one chosen alone). The lowest median, if it beats tactic 0's by kChainMinGain; else 0.
size_t chain_choice(const std::vector<std::vector<float>>& round_ms, float min_gain = kChainMinGain);

// Graph replays per timing round for a model whose replay takes `replay_ms`: enough for a round of
// kChainRoundMs (GPT-2 at batch 1, ~0.4 ms a replay: 20), at least one, at most kChainMaxReplays. A large batch
// then costs a round per tactic, not 20: BERT at 64 sequences replays in ~10 ms.
constexpr float kChainRoundMs = 8.f;
constexpr int kChainMaxReplays = 20;
int replays_per_round(float replay_ms);

// The chain timing of one profile stops deciding ties after this many seconds (the rest keep the tactic chosen
// alone): a transformer's ties take ~0.2 s each at batch 1 (GPT-2: 6 ties, ~1.2 s), but an engine with many
// distinct GEMM problems must not make the build minutes longer.
constexpr double kChainBudgetS = 20.0;
// kChainBudgetS, or KILN_GEMM_CHAIN_BUDGET_S when set (seconds, 0 to 3600; 0 decides no tie in the chain). The
// GPU test suite sets a small one: its 24 full-size model builds had made it several times longer (bench/NOTES.md,
// twenty-third session). Throws kiln::Error naming the variable when its value is not such a number.
double chain_budget_s();

// Whether, with the budget not yet spent, `executions` more executions of the engine, each taking `execution_s`
// to make (the last one's time; 0 unknown), still end within `budget_s` from `elapsed_s`: the chain leaves a tie
// it could not finish in the budget instead of overrunning it by the whole tie (MobileNetV2 at b128 makes an
// execution in ~3 s, so a tie of 3 tactics and its control costs ~13 s: one started at 19 s would end near 32).
bool chain_fits_budget(double elapsed_s, double execution_s, int executions, double budget_s);

// The build times near ties in the chain unless KILN_GEMM_CHAIN_TIES=0. On by default since the twenty-first
// session: against the rebuild control, GPT-2 +0.3%, BERT +1.2%, ViT +0.3% at batch 1, ~1 s of GPT-2's build.
bool chain_ties_enabled();
// kChainTieMargin, or KILN_GEMM_CHAIN_TIE_MARGIN when set; throws kiln::Error naming the variable when its value
// is not a number from 0 to 10.
float chain_tie_margin();

}  // namespace kiln::cuda
