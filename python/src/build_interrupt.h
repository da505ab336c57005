// Ctrl-C (or any exception a Python signal handler raises) during build_serialized_network.
//
// The build runs without the GIL, so Python's SIGINT handler gets to run only when the building thread enters
// Python: inside the logger's and the progress monitor's callbacks, where the KeyboardInterrupt used to be
// reported as unraisable and dropped, and the build went on as if no key had been pressed (found when a GPU
// test run ignored its SIGINT, twenty-third session). Now a callback that catches such an exception keeps it
// for the watched call (InterruptWatch), the build's progress monitor (BuildInterruptMonitor, around the user's
// own, if any) runs pending signal handlers at every step and stops the build once one is kept, and the binding
// raises the kept exception when the build returns. Outside a watched call the callback raises it again.
#pragma once
#include <pybind11/pybind11.h>

#include <memory>

#include "kiln/builder.h"

namespace kiln::python {

namespace py = pybind11;

// While one lives on a thread (build_serialized_network, the parser's parse calls: long calls that run
// without the GIL), an interrupt a callback catches is kept for that call to raise when it returns.
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

// The exception kept on this thread since the last take_interrupt (nullptr: none). Call under the GIL.
std::unique_ptr<py::error_already_set> take_interrupt();

// The progress monitor a build runs with: forwards to `inner` (may be null) and, at each step, runs Python's
// pending signal handlers (under the GIL); once an interrupt is kept it answers false, which cancels the build.
class BuildInterruptMonitor : public IProgressMonitor {
 public:
  explicit BuildInterruptMonitor(IProgressMonitor* inner) : inner_(inner) {}
  void phase_start(const char* phase, const char* parent, int32_t steps) noexcept override;
  bool step_complete(const char* phase, int32_t step) noexcept override;
  void phase_finish(const char* phase) noexcept override;

 private:
  IProgressMonitor* inner_;
};

}  // namespace kiln::python
