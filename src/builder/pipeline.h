// The builder's pass list for each target, readable top to bottom.
#pragma once
#include <memory>
#include <vector>

#include "builder/progress.h"
#include "kiln/logger.h"
#include "passes/pass.h"

namespace kiln {

std::vector<std::unique_ptr<passes::Pass>> cpu_pipeline();

// The CUDA target's passes: the CPU list, then precision lowering when FP16/BF16 is allowed.
struct GpuPipelineOptions {
  bool fp16 = false, bf16 = false;
  bool obey_precision_constraints = false;
};
std::vector<std::unique_ptr<passes::Pass>> gpu_pipeline(const GpuPipelineOptions& options);

// Runs the passes in order, each until it stops changing the graph (bounded), then sweeps the layers a pass
// that changed the graph left dead (so the next pass counts live readers only), logging what changed and how
// long it took; `phase` (may be null) gets one step per pass.
void run_pipeline(ir::Graph& g, const std::vector<std::unique_ptr<passes::Pass>>& pipeline, ILogger* logger,
                  ProgressPhase* phase = nullptr);

}  // namespace kiln
