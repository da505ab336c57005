// `kiln build`'s progress display, an IProgressMonitor: on a terminal, one line redrawn in place with the
// current phase's bar ("Optimizing graph [########------] 8/14"); elsewhere (logs, pipes) with -v, one line
// per finished phase with its duration. Quiet otherwise, so scripted output stays as it was.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "kiln/builder.h"

namespace kiln::cli {

class BuildProgress : public IProgressMonitor {
 public:
  BuildProgress(bool terminal, bool verbose) : terminal_(terminal), verbose_(verbose) {}
  ~BuildProgress() override;
  void phase_start(const char* phase, const char* parent, int32_t steps) noexcept override;
  bool step_complete(const char* phase, int32_t step) noexcept override;
  void phase_finish(const char* phase) noexcept override;

 private:
  struct Phase {
    std::string name;
    int32_t steps = 0, done = 0;
    std::chrono::steady_clock::time_point start;
  };
  bool terminal_, verbose_;
  std::vector<Phase> stack_;
  bool drawn_ = false;
  void draw() const;
};

}  // namespace kiln::cli
