// The GPU probe of a build without the CUDA backend.
#ifndef KILN_WITH_CUDA
#include "backends/gpu_probe.h"

#include "kiln/types.h"

namespace kiln::gpu {

bool built_with_cuda() { return false; }
bool available() { return false; }
std::string target() { throw Error("this build of Kiln has no CUDA backend (the CUDA toolkit was not found)"); }
std::string library_versions() { return ""; }
std::string unavailable_reason() { return "this build of Kiln has no CUDA backend (the CUDA toolkit was not found)"; }
bool supports(const ir::Node&, const std::vector<ir::TensorInfo>&) { return false; }

}  // namespace kiln::gpu
#endif

#ifndef KILN_WITH_CUDA
#include "runtime/device_execution.h"

namespace kiln {
std::unique_ptr<DeviceExecution> make_cuda_execution(std::shared_ptr<const EngineData>) {
  throw Error("this plan targets a CUDA GPU, but this build of Kiln has no CUDA backend");
}
ChainTimingReport time_tactics_on_device(std::shared_ptr<const EngineData>, const std::vector<Dims>&, ChainProgress*) {
  throw Error("this build of Kiln has no CUDA backend");
}
}  // namespace kiln
#endif
