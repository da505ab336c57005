#include "build_progress.h"

#include <cstdio>

namespace kiln::cli {

BuildProgress::~BuildProgress() {
  if (drawn_) std::fputs("\r\033[K", stderr);  // leave a clean line for what follows
}

void BuildProgress::phase_start(const char* phase, const char*, int32_t steps) noexcept {
  stack_.push_back(Phase{phase, steps, 0, std::chrono::steady_clock::now()});
  draw();
}

bool BuildProgress::step_complete(const char* phase, int32_t step) noexcept {
  for (auto& p : stack_)
    if (p.name == phase) p.done = step + 1;
  draw();
  return true;
}

void BuildProgress::phase_finish(const char* phase) noexcept {
  if (stack_.empty()) return;
  const Phase& p = stack_.back();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - p.start).count();
  if (verbose_ && !terminal_)
    std::fprintf(stderr, "%*s%s: %d/%d steps in %.2f s\n", static_cast<int>(2 * (stack_.size() - 1)), "", phase,
                 p.done, p.steps, s);
  stack_.pop_back();
  if (stack_.empty() && drawn_) {  // the build is over: clear the bar for the summary that follows
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
  }
  draw();
}

void BuildProgress::draw() const {
  if (!terminal_ || stack_.empty()) return;
  const Phase& p = stack_.back();
  constexpr int kWidth = 24;
  const int filled = p.steps > 0 ? kWidth * p.done / p.steps : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '-');
  std::string path;
  for (const auto& q : stack_) path += (path.empty() ? "" : " > ") + q.name;
  std::fprintf(stderr, "\r\033[K%s [%s] %d/%d", path.c_str(), bar.c_str(), p.done, p.steps);
  std::fflush(stderr);
  const_cast<BuildProgress*>(this)->drawn_ = true;
}

}  // namespace kiln::cli
