// Ctrl-C (or any exception a Python signal handler raises) during build_serialized_network and the parser's calls.
//
// Those calls run without the GIL, so Python's SIGINT handler gets to run only when the calling thread enters
// Python: inside the logger's and the progress monitor's callbacks, where the KeyboardInterrupt used to be
// reported as unraisable and dropped, and the build went on as if no key had been pressed (found when a GPU
// test run ignored its SIGINT, twenty-third session). Now a callback that catches such an exception keeps it
// for the call (run_watched), the build's progress monitor (BuildInterruptMonitor, around the user's own, if
// any) also runs pending signal handlers between steps and stops the build once one is kept, and the call
// raises the kept exception when it returns. Outside such a call the callback raises it again.
#pragma once
#include <pybind11/pybind11.h>

#include <optional>
#include <utility>

#include "kiln/builder.h"

namespace kiln::python {

namespace py = pybind11;

// While one lives on a thread, an interrupt a callback catches is kept for the call that made it. Construct
// it under the GIL (it notes whether this is Python's main thread, the only one signal handlers run on).
class InterruptWatch {
 public:
  InterruptWatch();
  ~InterruptWatch();
  InterruptWatch(const InterruptWatch&) = delete;
  InterruptWatch& operator=(const InterruptWatch&) = delete;
};

// True when `e` is what a signal handler raises to stop the program (KeyboardInterrupt, SystemExit), which the
// callback must not drop: inside an InterruptWatch it is kept for the watched call (and the build stops);
// outside, a KeyboardInterrupt is raised again (PyErr_SetInterrupt), so Python delivers it as soon as the C++
// call around the callback returns. False for a SystemExit outside a watch, as for any other exception: the
// callback reports it. Call under the GIL.
bool keep_if_interrupt(py::error_already_set& e);

// Raises the exception a callback kept on this thread, if any. Call under the GIL.
void raise_kept_interrupt();

// Runs `f` (a long call into Kiln, which may call back into Python) without the GIL under an InterruptWatch,
// then raises the interrupt a callback kept, if any, in place of what `f` returned or threw: the interrupt is
// what stopped it. Call under the GIL.
template <class F>
auto run_watched(F&& f) {
  std::optional<decltype(f())> result;
  try {
    InterruptWatch watch;
    py::gil_scoped_release nogil;
    result.emplace(f());
  } catch (...) {
    raise_kept_interrupt();
    throw;
  }
  raise_kept_interrupt();
  return std::move(*result);
}

// The progress monitor a build runs with: forwards to `inner` (may be null) and stops the build (answers false)
// once an interrupt is kept. Between steps, on Python's main thread and at most every kSignalCheckMs, it also
// runs Python's pending signal handlers, so Ctrl-C stops a build whose callbacks stay silent (taking the GIL at
// every step would make a build wait on other Python threads once a step).
class BuildInterruptMonitor : public IProgressMonitor {
 public:
  static constexpr int kSignalCheckMs = 20;
  explicit BuildInterruptMonitor(IProgressMonitor* inner) : inner_(inner) {}
  void phase_start(const char* phase, const char* parent, int32_t steps) noexcept override;
  bool step_complete(const char* phase, int32_t step) noexcept override;
  void phase_finish(const char* phase) noexcept override;

 private:
  IProgressMonitor* inner_;
};

}  // namespace kiln::python
