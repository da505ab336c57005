#include "build_interrupt.h"

namespace kiln::python {

namespace {

// Per thread: a build and its callbacks run on the thread that called build_serialized_network, and Python
// delivers signals to the main thread only, so a build in another thread is not stopped by the main thread's.
thread_local std::unique_ptr<py::error_already_set> kept;
thread_local int watches = 0;

bool interrupt_pending() {
  py::gil_scoped_acquire gil;
  if (!kept && PyErr_CheckSignals() != 0) {
    py::error_already_set e;  // fetches what the handler raised
    if (!keep_if_interrupt(e)) e.discard_as_unraisable("a signal handler during the build");
  }
  return kept != nullptr;
}

}  // namespace

InterruptWatch::InterruptWatch() { ++watches; }
InterruptWatch::~InterruptWatch() { --watches; }

bool keep_if_interrupt(py::error_already_set& e) {
  const bool keyboard = e.matches(PyExc_KeyboardInterrupt);
  if (!keyboard && !e.matches(PyExc_SystemExit)) return false;
  if (watches == 0) {
    if (!keyboard) return false;
    PyErr_SetInterrupt();  // delivered again at the caller's next Python instruction
    return true;
  }
  if (!kept) kept = std::make_unique<py::error_already_set>(std::move(e));
  return true;
}

std::unique_ptr<py::error_already_set> take_interrupt() { return std::move(kept); }

void BuildInterruptMonitor::phase_start(const char* phase, const char* parent, int32_t steps) noexcept {
  if (inner_) inner_->phase_start(phase, parent, steps);
}

bool BuildInterruptMonitor::step_complete(const char* phase, int32_t step) noexcept {
  if (inner_ && !inner_->step_complete(phase, step)) return false;
  return !interrupt_pending();
}

void BuildInterruptMonitor::phase_finish(const char* phase) noexcept {
  if (inner_) inner_->phase_finish(phase);
}

}  // namespace kiln::python
