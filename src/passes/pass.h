// A graph pass: a named, deterministic, idempotent rewrite. run() returns whether it changed the graph.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  virtual bool run(ir::Graph& g) = 0;
};

// Removes nodes none of whose outputs reach a graph output.
class EliminateDeadNodes : public Pass {
 public:
  std::string name() const override { return "eliminate-dead-nodes"; }
  bool run(ir::Graph& g) override;
};

// Bypasses Identity nodes and Casts to the same type (unless their output is a graph output).
class EliminateIdentities : public Pass {
 public:
  std::string name() const override { return "eliminate-identities"; }
  bool run(ir::Graph& g) override;
};

// Evaluates nodes whose inputs are all constants and replaces them by Constant nodes.
class FoldConstants : public Pass {
 public:
  std::string name() const override { return "fold-constants"; }
  bool run(ir::Graph& g) override;
  // Folding may not grow the plan by more than this per node (e.g. an Expand of a scalar to a huge shape).
  int64_t max_growth_bytes = 16 << 20;
};

// Replaces Shape nodes whose input shape is fully known by constants (so shape arithmetic folds).
class FoldShapes : public Pass {
 public:
  std::string name() const override { return "fold-shapes"; }
  bool run(ir::Graph& g) override;
};

// Merges chains of reshape-only Shuffles (no transposes) into one.
class MergeReshapes : public Pass {
 public:
  std::string name() const override { return "merge-reshapes"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
