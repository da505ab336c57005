// The builder's pass list for each target, readable top to bottom.
#pragma once
#include <memory>
#include <vector>

#include "kiln/logger.h"
#include "passes/pass.h"

namespace kiln {

std::vector<std::unique_ptr<passes::Pass>> cpu_pipeline();

// Runs the passes in order, each until it stops changing the graph (bounded), logging what changed.
void run_pipeline(ir::Graph& g, const std::vector<std::unique_ptr<passes::Pass>>& pipeline, ILogger* logger);

}  // namespace kiln
