#include "builder/pipeline.h"

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
