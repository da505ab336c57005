#include "builder/pipeline.h"

#include "backends/gpu_probe.h"
#include "passes/lower_precision.h"

namespace kiln {

std::vector<std::unique_ptr<passes::Pass>> cpu_pipeline() {
  std::vector<std::unique_ptr<passes::Pass>> p;
  p.push_back(std::make_unique<passes::EliminateDeadNodes>());
  p.push_back(std::make_unique<passes::EliminateIdentities>());
  p.push_back(std::make_unique<passes::FoldShapes>());
  p.push_back(std::make_unique<passes::FoldConstants>());
  p.push_back(std::make_unique<passes::MergeReshapes>());
  p.push_back(std::make_unique<passes::EliminateDeadNodes>());
  return p;
}

std::vector<std::unique_ptr<passes::Pass>> gpu_pipeline(const GpuPipelineOptions& o) {
  auto p = cpu_pipeline();
  if (o.fp16 || o.bf16) {
    // FP16 wins when both are allowed: it has the finer mantissa for activations of inference networks.
    DataType low = o.fp16 ? DataType::kHALF : DataType::kBF16;
    p.push_back(std::make_unique<passes::LowerPrecision>(low, o.obey_precision_constraints, &gpu::supports));
    p.push_back(std::make_unique<passes::EliminateIdentities>());
    p.push_back(std::make_unique<passes::EliminateDeadNodes>());
  }
  return p;
}

void run_pipeline(ir::Graph& g, const std::vector<std::unique_ptr<passes::Pass>>& pipeline, ILogger* logger) {
  for (auto& pass : pipeline) {
    size_t before = g.num_nodes();
    for (int i = 0; i < 4 && pass->run(g); ++i) {
    }
    g.topo_sort();
    log_to(logger, Severity::kVERBOSE,
           "pass " + pass->name() + ": " + std::to_string(before) + " -> " + std::to_string(g.num_nodes()) + " nodes");
  }
}

}  // namespace kiln
