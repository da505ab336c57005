// What the build's chain timing of near ties did (backends/cuda/chain_tactics.h), for the build log: a person
// watching a build sees why its tactic timing took a second longer, and whether it changed anything.
#pragma once
#include <string>

namespace kiln {

struct ChainTimingReport {
  int decided = 0;  // ties timed in the model's chain
  int changed = 0;  // of those, the ones that kept another tactic than timing alone chose
  int left = 0;     // ties not decided (the time budget spent, or no memory for their executions)
  double seconds = 0;
};

// The build log's line for a report; "" when there was nothing to decide.
std::string chain_timing_summary(const ChainTimingReport& r);

// The chain timing's progress, for the build's progress monitor (a phase of its own under "Timing tactics"):
// start is called once with the number of ties to decide (not at all when there are none), then step once per
// tie, decided or left. step may throw (BuildCanceled, when the monitor cancels the build).
class ChainProgress {
 public:
  virtual ~ChainProgress() = default;
  virtual void start(int ties) = 0;
  virtual void step() = 0;
};

}  // namespace kiln
