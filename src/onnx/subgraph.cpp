// ImportContext::import_subgraph: imports the body of an If / Loop / Scan into the one flat IR graph.
//
// Kiln's IR has no subgraphs (plans serialize flat graphs), so control-flow importers inline their bodies:
// If imports the taken branch (or both, then selects), Loop and Scan import the body once per unrolled
// step. Each import is a scope: the body's inputs and the tensors its nodes define shadow outer names only
// until the body ends, which is what lets the same body be imported many times over. Outer-scope names
// stay visible, as ONNX requires. Node names get "<outer node>/<scope>/" in front so that every unrolled
// step is recognizable in logs and in the built network.
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "onnx/import_context.h"

namespace kiln::onnx {

std::vector<ir::Value*> ImportContext::import_subgraph(const GraphProto& g, const std::vector<ir::Value*>& inputs,
                                                       const std::string& scope) {
  const std::string outer_op = op_type();
  const std::string where = "the " + scope + " body of " + outer_op + " '" + base_name_ + "'";
  if (g.input.size() != inputs.size())
    fail(ParserErrorCode::kINVALID_GRAPH, where + " declares " + std::to_string(g.input.size()) +
                                              " inputs; " + outer_op + " binds " + std::to_string(inputs.size()));

  // The state of the node being imported (the If/Loop/Scan itself), restored when the body is done.
  const NodeProto* saved_node = node_;
  const int saved_index = node_index_;
  const std::string saved_base = base_name_;
  const int saved_sub = sub_nodes_;
  const std::string prefix = base_name_ + "/" + scope + "/";

  // Names the body binds, with what they meant outside (nullopt: nothing), to undo on the way out.
  std::vector<std::pair<std::string, std::optional<ir::Value*>>> shadowed;
  std::unordered_set<std::string> bound_here;
  auto bind_local = [&](const std::string& name, ir::Value* v) {
    if (bound_here.insert(name).second) {
      auto it = tensors_.find(name);
      shadowed.emplace_back(name, it == tensors_.end() ? std::nullopt : std::optional<ir::Value*>(it->second));
    }
    tensors_[name] = v;
  };
  auto restore = [&] {
    for (auto it = shadowed.rbegin(); it != shadowed.rend(); ++it) {
      if (it->second) tensors_[it->first] = *it->second;
      else tensors_.erase(it->first);
    }
    node_ = saved_node;
    node_index_ = saved_index;
    base_name_ = saved_base;
    sub_nodes_ = saved_sub;
  };

  try {
    // Importers ask whether an output is used (to skip optional outputs): count the body's reads.
    for (const auto& n : g.node)
      for (auto in : n.input)
        if (!in.empty()) used_.insert(std::string(in));
    for (const auto& o : g.output) used_.insert(std::string(o.name));

    for (size_t i = 0; i < inputs.size(); ++i) {
      const ValueInfoProto& in = g.input[i];
      std::string name(in.name);
      if (name.empty()) fail(ParserErrorCode::kINVALID_GRAPH, where + ": input " + std::to_string(i) + " has no name");
      if (!inputs[i]) fail(ParserErrorCode::kINVALID_NODE, where + ": input '" + name + "' is bound to nothing");
      // A declared element type must match what the op binds (an undeclared one takes it).
      if (in.has_type && in.type.is_tensor() && in.type.elem_type != 0) {
        auto dt = to_kiln_dtype(in.type.elem_type);
        if (dt && *dt != inputs[i]->dtype)
          fail(ParserErrorCode::kINVALID_GRAPH, where + ": input '" + name + "' is declared " +
                                                    dtype_name(*dt) + " but receives " + dtype_name(inputs[i]->dtype));
      }
      bind_local(name, inputs[i]);
    }
    // Initializers are the same tensors in every unrolled step: one Constant each, shared.
    for (const auto& t : g.initializer) {
      std::string name(t.name);
      auto it = subgraph_initializers_.find(&t);
      if (it == subgraph_initializers_.end()) {
        HostTensor h = tensor_to_host(t, model_dir_, cache_, where + ": initializer '" + name + "'");
        it = subgraph_initializers_.emplace(&t, constant(std::move(h), prefix + name)).first;
      }
      bind_local(name, it->second);
    }

    for (size_t i = 0; i < g.node.size(); ++i) {
      const NodeProto& n = g.node[i];
      const std::string op(n.op_type);
      node_ = &n;
      node_index_ = saved_index;  // errors and layer mapping point at the outer node
      sub_nodes_ = 0;
      std::string base = prefix + (n.name.empty() ? op + "_" + std::to_string(i) : std::string(n.name));
      std::string unique = base;
      for (int k = 1; name_taken(unique); ++k) unique = base + "_" + std::to_string(k);
      base_name_ = unique;
      try {
        for (size_t j = 0; j < n.input.size(); ++j) {
          if (n.input[j].empty() || is_defined(std::string(n.input[j]))) continue;
          fail(ParserErrorCode::kINVALID_GRAPH,
               "reads tensor '" + std::string(n.input[j]) + "' (input " + std::to_string(j) +
                   "), which neither the body nor an enclosing graph defines before it");
        }
        ImporterFn fn = find_importer(std::string(n.domain), op);
        if (!fn)
          fail(ParserErrorCode::kUNSUPPORTED_NODE,
               "no importer for op '" + op + "' (domain '" + std::string(n.domain) + "')");
        std::vector<ir::Value*> outs = fn(*this);
        for (size_t j = 0; j < n.output.size(); ++j) {
          if (n.output[j].empty()) continue;
          std::string name(n.output[j]);
          ir::Value* v = j < outs.size() ? outs[j] : nullptr;
          if (!v) {
            if (is_used(name))
              fail(ParserErrorCode::kUNSUPPORTED_NODE,
                   "output " + std::to_string(j) + " ('" + name + "') is not supported, and the model uses it");
            continue;
          }
          bind_local(name, v);
        }
      } catch (const ImportError& e) {
        // Say where in the body it happened; keep the code and the importer's source location.
        throw ImportError(e.code(), "in " + where + ", node '" + unique + "' (" + op + "): " + e.what(), e.where());
      }
    }

    std::vector<ir::Value*> outs;
    for (const auto& o : g.output) {
      ir::Value* v = lookup(std::string(o.name));
      if (!v)
        fail(ParserErrorCode::kINVALID_GRAPH,
             where + ": output '" + std::string(o.name) + "' is not produced by any node, input or initializer");
      outs.push_back(v);
    }
    restore();
    return outs;
  } catch (...) {
    restore();
    throw;
  }
}

}  // namespace kiln::onnx
