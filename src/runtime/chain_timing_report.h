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

}  // namespace kiln
