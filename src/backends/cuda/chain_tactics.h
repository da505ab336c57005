// The build's chain timing (on unless KILN_GEMM_CHAIN_TIES=0, tactic_ties.h): after the timing run, each near tie its
// kernels reported is decided by timing the whole model once with each of the tie's tactics (CUDA-graph
// replays, as contexts run it), and the fastest is what the plan records.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "backends/cuda/tactic_ties.h"
#include "runtime/device_execution.h"

namespace kiln::cuda {

// make_cuda_execution whose kernels report their near ties to `ties` (null: exactly make_cuda_execution).
std::unique_ptr<DeviceExecution> make_cuda_execution_with_ties(std::shared_ptr<const EngineData> engine,
                                                               TacticTies* ties);

// For each tie in the order given (TacticTies::take ranks them, most at stake first), each decided with the ones
// before it already chosen: one execution of the engine per tactic, each made after that tactic was written as
// the key's record so that its kernels take it; then rounds of graph replays on `stream` with every tactic first
// in turn; engine->tactics keeps the one chain_choice picks. A tie whose executions cannot be made (out of
// memory) keeps the tactic chosen alone, and so do the ties left when the budget (chain_budget_s) is spent.
// KILN_GEMM_LOG=1 prints each decision on stderr; `progress` (may be null) is started with the number of ties
// and stepped once per tie.
ChainTimingReport choose_ties_in_chain(const std::shared_ptr<const EngineData>& engine,
                                       const std::vector<Dims>& input_shapes, const std::vector<void*>& io_ptrs,
                                       cudaStream_t stream, const std::vector<TacticTie>& ties,
                                       ChainProgress* progress = nullptr);

}  // namespace kiln::cuda
