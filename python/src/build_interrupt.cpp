#include "build_interrupt.h"

#include <chrono>
#include <memory>

namespace kiln::python {

namespace {

// Per thread: a watched call and its callbacks run on the thread that made it.
thread_local std::unique_ptr<py::error_already_set> kept;
thread_local int watches = 0;
thread_local bool watched_on_main = false;  // the outermost watch's thread is Python's main thread
thread_local std::chrono::steady_clock::time_point last_signal_check;

bool on_python_main_thread() {
  static const unsigned long main_ident =
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  return PyThread_get_thread_ident() == main_ident;
}

// Runs Python's pending signal handlers (on the main thread, at most every kSignalCheckMs) and keeps what they
// raise when it is an interrupt. True when an interrupt is kept.
bool interrupt_pending() {
  if (kept) return true;
  if (!watched_on_main) return false;  // handlers run on the main thread only
  const auto now = std::chrono::steady_clock::now();
  if (now - last_signal_check < std::chrono::milliseconds(BuildInterruptMonitor::kSignalCheckMs)) return false;
  last_signal_check = now;
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) {
    py::error_already_set e;  // fetches what the handler raised
    if (!keep_if_interrupt(e)) e.discard_as_unraisable("a signal handler during the build");
  }
  return kept != nullptr;
}

}  // namespace

InterruptWatch::InterruptWatch() {
  if (watches++ == 0) watched_on_main = on_python_main_thread();
}
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

void raise_kept_interrupt() {
  if (std::unique_ptr<py::error_already_set> e = std::move(kept)) {
    e->restore();
    throw py::error_already_set();
  }
}

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
