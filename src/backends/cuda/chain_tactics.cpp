#include "backends/cuda/chain_tactics.h"

#include <chrono>
#include <cstdio>
#include <exception>
#include <set>
#include <string>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/stream_timing.h"
#include "kiln/timing_cache.h"
#include "runtime/env_switch.h"

namespace kiln::cuda {

namespace {

// Rounds of replays per tactic, each tactic first in one round of every few (drift in the GPU's clocks then
// falls on all alike); the replays a round come from replays_per_round: at batch 1 a transformer's replay is
// ~0.4 ms, so a tie of three tactics (and the control) costs ~0.2 s of timing.
constexpr int kRounds = 6, kWarmups = 3;

// The mean time in ms of `replays` back-to-back replays of `exec` (a timing round, or the probe that sizes them).
float mean_replay_ms(DeviceExecution& exec, const std::vector<void*>& io_ptrs, cudaStream_t stream, int replays,
                     EventPair& ev) {
  KILN_CUDA_CHECK(cudaEventRecord(ev.start, stream));
  for (int j = 0; j < replays; ++j) exec.enqueue(io_ptrs, stream);
  KILN_CUDA_CHECK(cudaEventRecord(ev.stop, stream));
  KILN_CUDA_CHECK(cudaEventSynchronize(ev.stop));
  float ms = 0;
  KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.start, ev.stop));
  return ms / replays;
}

// The problem part of a tactic key (kind|device|library|problem), for the log.
std::string problem_of(const std::string& key) {
  const size_t bar = key.rfind('|');
  return bar == std::string::npos ? key : key.substr(bar + 1);
}

// One execution of the engine per tactic (the key's record set to it first), each prepared and run, so its
// kernels take it (their per-node choices are made on the first run and kept), then run once more so that its
// CUDA graph is captured before the timed replays. After each, `more(seconds it took, executions still to make)`
// says whether to go on; when it says no, the executions made so far are returned (fewer than the tactics).
template <class More>
std::vector<std::unique_ptr<DeviceExecution>> executions_per_tactic(const std::shared_ptr<const EngineData>& engine,
                                                                    const std::vector<Dims>& input_shapes,
                                                                    const std::vector<void*>& io_ptrs,
                                                                    cudaStream_t stream,
                                                                    const std::vector<std::string>& tactics,
                                                                    const std::string& key, More&& more) {
  std::vector<std::unique_ptr<DeviceExecution>> execs;
  for (const std::string& tactic : tactics) {
    const auto t0 = std::chrono::steady_clock::now();
    engine->tactics->replace(key, tactic);
    std::unique_ptr<DeviceExecution> e = make_cuda_execution_with_ties(engine, nullptr);
    e->prepare(input_shapes, std::vector<HostTensor>(engine->io.size()));
    for (int i = 0; i < kWarmups; ++i) e->enqueue(io_ptrs, stream);
    e->synchronize(stream);
    execs.push_back(std::move(e));
    const double made_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int left = static_cast<int>(tactics.size() - execs.size());
    if (left > 0 && !more(made_s, left)) break;
  }
  return execs;
}

}  // namespace

ChainTimingReport choose_ties_in_chain(const std::shared_ptr<const EngineData>& engine,
                                       const std::vector<Dims>& input_shapes, const std::vector<void*>& io_ptrs,
                                       cudaStream_t stream, const std::vector<TacticTie>& reported,
                                       ChainProgress* progress) {
  ChainTimingReport report;
  // Each problem once (a later report of a decided key would add nothing), and only real ties.
  std::vector<const TacticTie*> ties;
  std::set<std::string> keys;
  for (const TacticTie& tie : reported)
    if (tie.tactics.size() >= 2 && keys.insert(tie.key).second) ties.push_back(&tie);
  if (progress && !ties.empty()) progress->start(static_cast<int>(ties.size()));
  const double budget_s = chain_budget_s();  // before any tie: a bad value fails the build's timing at once
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  // What making one execution of the engine took, once known: the chain does not start a tie, nor go on making a
  // tie's executions, that would end past the budget (MobileNetV2 at b128 makes an execution in ~3 s).
  double execution_s = 0;
  // A tie left keeps the tactic chosen alone (its record, which making its executions may have replaced).
  auto leave = [&](const TacticTie& tie, const char* why) {
    engine->tactics->replace(tie.key, tie.tactics[0]);
    ++report.left;
    if (env_is("KILN_GEMM_LOG", "1"))
      std::fprintf(stderr, "kiln: chain timing of %s left (%s, %.1f s of %.1f): keeps %s\n", problem_of(tie.key).c_str(),
                   why, seconds(), budget_s, tie.label(0).c_str());
    if (progress) progress->step();
  };
  for (const TacticTie* each : ties) {
    const TacticTie& tie = *each;
    const int executions = static_cast<int>(tie.tactics.size()) + 1;  // with the control below
    if (!chain_fits_budget(seconds(), execution_s, executions, budget_s)) {
      leave(tie, "time budget");  // the rest keep the tactic chosen alone
      continue;
    }
    // The tactic chosen alone gets a second execution, made last, and its better time is the bar the others
    // must beat. It was added for a first-made bias (two engines with the same Kiln choices 1.1% apart, twentieth
    // session) that turned out to be cuBLASLt's own tie; within one build the two read 0.1% apart (twenty-first
    // session, call 1). It stays: the better of two readings keeps the alone choice unless another is clearly
    // faster, where consecutive readings of one engine differ by up to 0.34%.
    std::vector<std::string> tactics = tie.tactics;
    tactics.push_back(tie.tactics[0]);
    std::vector<std::unique_ptr<DeviceExecution>> execs;
    try {
      execs = executions_per_tactic(engine, input_shapes, io_ptrs, stream, tactics, tie.key,
                                    [&](double made_s, int left) {
                                      execution_s = made_s;
                                      return chain_fits_budget(seconds(), made_s, left, budget_s);
                                    });
    } catch (const std::exception& e) {
      execs.clear();
      cudaStreamSynchronize(stream);
      cudaGetLastError();  // an allocation that failed leaves its (non-sticky) error behind
      leave(tie, e.what());
      continue;
    }
    if (execs.size() < tactics.size()) {  // the rest of its executions would have ended past the budget
      execs.clear();
      leave(tie, "time budget, after its first executions");
      continue;
    }
    EventPair ev;
    const int replays = replays_per_round(mean_replay_ms(*execs[0], io_ptrs, stream, 3, ev));
    std::vector<std::vector<float>> round_ms(execs.size());
    for (int r = 0; r < kRounds; ++r)
      for (size_t k = 0; k < execs.size(); ++k) {
        const size_t i = (r + k) % execs.size();
        round_ms[i].push_back(mean_replay_ms(*execs[i], io_ptrs, stream, replays, ev));
      }
    execs.clear();
    const std::vector<float> control = round_ms.back();
    round_ms.pop_back();
    const float first_made_ms = median_ms(round_ms[0]);
    if (median_ms(control) < first_made_ms) round_ms[0] = control;
    const size_t pick = chain_choice(round_ms);
    engine->tactics->replace(tie.key, tie.tactics[pick]);
    ++report.decided;
    if (pick != 0) ++report.changed;
    if (env_is("KILN_GEMM_LOG", "1")) {
      std::string line = "kiln: chain timing of " + problem_of(tie.key) + ":";
      for (size_t i = 0; i < round_ms.size(); ++i) {
        char t[160];
        std::snprintf(t, sizeof t, " [%s] %.4f ms,", tie.label(i).c_str(), median_ms(round_ms[i]));
        line += t;
      }
      std::fprintf(stderr, "%s -> %s (the first tactic's first execution %.4f ms, its control %.4f ms; %d replays a round)\n",
                   line.c_str(), tie.label(pick).c_str(), first_made_ms, median_ms(control), replays);
    }
    if (progress) progress->step();
  }
  report.seconds = seconds();
  return report;
}

}  // namespace kiln::cuda
