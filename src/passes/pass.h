// A graph pass: a named, deterministic, idempotent rewrite. run() returns whether it changed the graph.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

// Makes `replacement` stand for `old` everywhere: every node input, and a network output, which keeps its
// public name (the names swap). For rewrites that replace a node by a new subgraph.
inline void replace_value(ir::Graph& g, ir::Value* old, ir::Value* replacement) {
  if (old->is_output) std::swap(old->name, replacement->name);
  g.replace_all_uses(old, replacement);
}

// The lowering passes' loop: every node of op `op` for which `lower` builds a replacement (returning the value
// that stands for the node's only output, or nullptr to keep the node) is replaced and removed.
template <class Lower>
bool lower_nodes(ir::Graph& g, const std::vector<std::string>& ops, Lower&& lower) {
  std::vector<ir::Node*> todo;
  for (auto& n : g.nodes())
    if (std::find(ops.begin(), ops.end(), n->op) != ops.end()) todo.push_back(n.get());
  std::vector<const ir::Node*> doomed;
  for (ir::Node* n : todo) {
    if (ir::Value* r = lower(g, *n)) {
      replace_value(g, n->outputs[0], r);
      doomed.push_back(n);
    }
  }
  if (doomed.empty()) return false;
  g.remove_nodes_if([&](const ir::Node* n) { return std::find(doomed.begin(), doomed.end(), n) != doomed.end(); });
  return true;
}

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

// Replaces Shape nodes whose input shape is fully known, and shape computations whose every entry the known
// dims decide (ir/partial_values.h), by constants (so shape arithmetic folds).
class FoldShapes : public Pass {
 public:
  std::string name() const override { return "fold-shapes"; }
  bool run(ir::Graph& g) override;
};

// FoldShapes and FoldConstants to a fixed point, re-inferring every shape between rounds: a folded shape
// computation can make a reshape's dims known (ir/partial_values.h), and those dims let the next round fold
// more (nn.MultiheadAttention's scale 1/sqrt(head size) is computed from the Shape of a reshaped q).
class FoldShapeArithmetic : public Pass {
 public:
  std::string name() const override { return "fold-shape-arithmetic"; }
  bool run(ir::Graph& g) override;

 private:
  FoldShapes shapes_;
  FoldConstants constants_;
};

// Merges chains of reshape-only Shuffles (no transposes) into one.
class MergeReshapes : public Pass {
 public:
  std::string name() const override { return "merge-reshapes"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
