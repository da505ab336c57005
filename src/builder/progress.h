// The builder's side of IProgressMonitor: phases as scopes (finished however the scope ends) and steps
// that throw BuildCanceled when the monitor asks to stop. Without a monitor everything is a no-op.
#pragma once
#include <stdexcept>
#include <string>

#include "kiln/builder.h"

namespace kiln {

struct BuildCanceled : std::runtime_error {
  BuildCanceled() : std::runtime_error("the build was canceled by the progress monitor") {}
};

class ProgressPhase {
 public:
  ProgressPhase(IProgressMonitor* m, std::string name, const ProgressPhase* parent, int32_t steps)
      : m_(m), name_(std::move(name)) {
    if (m_) m_->phase_start(name_.c_str(), parent ? parent->name_.c_str() : nullptr, steps);
  }
  ~ProgressPhase() {
    if (m_) m_->phase_finish(name_.c_str());
  }
  ProgressPhase(const ProgressPhase&) = delete;
  ProgressPhase& operator=(const ProgressPhase&) = delete;
  // Reports the next step done; throws BuildCanceled when the monitor returns false.
  void step() {
    if (m_ && !m_->step_complete(name_.c_str(), next_++)) throw BuildCanceled();
  }

 private:
  IProgressMonitor* m_;
  std::string name_;
  int32_t next_ = 0;
};

}  // namespace kiln
