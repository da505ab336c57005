// Engine::is_shape_inference_io: which inputs are shape tensors (see runtime/shape_inputs.h). Kept apart from
// engine.cpp because it is part of the run-time shape machinery.
#include "kiln/runtime.h"
#include "runtime/engine_data.h"
#include "runtime/executor.h"

namespace kiln {

bool Engine::is_shape_inference_io(const std::string& name) const {
  std::call_once(shape_io_once_, [this] {
    Executor probe(data_);
    shape_io_.assign(data_->io.size(), false);
    for (size_t i = 0; i < data_->io.size(); ++i) shape_io_[i] = probe.is_shape_input(i);
  });
  int i = io_index(name);
  return i >= 0 && shape_io_[i];
}

}  // namespace kiln
