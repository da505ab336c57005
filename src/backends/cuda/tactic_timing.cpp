// The builder's tactic timing run (runtime/device_execution.h): one eager execution at a profile's shapes on
// zero-filled buffers, then (unless KILN_GEMM_CHAIN_TIES=0) the chain timing of the near ties it found. Zeros are
// valid everywhere timing needs them to be (token ids, gather indices, masks) and the libraries' speed does not
// depend on the values.
#include <algorithm>

#include "backends/cuda/chain_tactics.h"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/device_buffer.h"
#include "runtime/device_execution.h"

namespace kiln {

ChainTimingReport time_tactics_on_device(std::shared_ptr<const EngineData> engine, const std::vector<Dims>& input_shapes,
                                         ChainProgress* progress) {
  // Unless KILN_GEMM_CHAIN_TIES=0 the kernels report the candidates that tied alone, and the whole model decides
  // them after this run (chain_tactics.h).
  cuda::TacticTies ties;
  const bool chain = cuda::chain_ties_enabled();
  std::unique_ptr<DeviceExecution> exec = cuda::make_cuda_execution_with_ties(engine, chain ? &ties : nullptr);
  exec->prepare(input_shapes, std::vector<HostTensor>(engine->io.size()));
  if (exec->dynamic()) return {};  // data-dependent shapes run on the CPU: no library tactics to time
  std::vector<cuda::DeviceBuffer> buffers;
  std::vector<void*> ptrs;
  for (size_t i = 0; i < engine->io.size(); ++i) {
    const size_t bytes = static_cast<size_t>(volume(exec->io_shape(i))) * dtype_size(engine->io[i].dtype);
    buffers.emplace_back(std::max<size_t>(bytes, 1));
    KILN_CUDA_CHECK(cudaMemset(buffers.back().get(), 0, bytes));
    ptrs.push_back(buffers.back().get());
  }
  cudaStream_t stream = nullptr;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  ChainTimingReport report;
  try {
    exec->enqueue(ptrs, stream);
    exec->synchronize(stream);
    if (chain) {
      exec.reset();  // its memory, before one execution per tactic of a tie is made
      report = cuda::choose_ties_in_chain(engine, input_shapes, ptrs, stream, ties.take(), progress);
    }
  } catch (...) {
    cudaStreamSynchronize(stream);
    cudaStreamDestroy(stream);
    throw;
  }
  cudaStreamDestroy(stream);
  return report;
}

}  // namespace kiln
