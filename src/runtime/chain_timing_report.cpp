#include "runtime/chain_timing_report.h"

#include <cstdio>

namespace kiln {

std::string chain_timing_summary(const ChainTimingReport& r) {
  if (r.decided == 0 && r.left == 0) return "";
  char line[256];
  std::snprintf(line, sizeof line,
                "chain timing: %d near tie(s) timed in the model's chain in %.1f s, %d kept another tactic than "
                "timing alone chose",
                r.decided, r.seconds, r.changed);
  std::string out = line;
  if (r.left > 0) {
    std::snprintf(line, sizeof line, "; %d left to timing alone (time budget or memory)", r.left);
    out += line;
  }
  return out + " (KILN_GEMM_CHAIN_TIES=0 turns it off)";
}

}  // namespace kiln
