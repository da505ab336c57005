// The network IR: values (tensors) and nodes (ops) in a DAG. Nodes and values are heap objects with
// stable addresses so that API handles (ITensor, ILayer) can point at them while the graph grows.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/attrs.h"

namespace kiln::ir {

struct Node;

struct Value {
  int id = -1;
  std::string name;
  DataType dtype = DataType::kFLOAT;
  Dims shape;                // -1 for dims unknown until run time
  Node* producer = nullptr;  // null for graph inputs
  bool is_input = false;
  bool is_output = false;
};

struct Node {
  int id = -1;
  std::string name;
  std::string op;                 // an op registered in ir/ops (e.g. "Convolution")
  Attrs attrs;
  std::vector<Value*> inputs;     // nullptr marks an omitted optional input
  std::vector<Value*> outputs;
  std::optional<DataType> precision;              // layer.precision, when the user set it
  std::vector<std::optional<DataType>> output_types;  // layer.set_output_type
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  Value* add_input(const std::string& name, DataType dtype, Dims shape);
  // Adds a node with `num_outputs` fresh output values named "<name>_output_<i>" (renamable).
  Node* add_node(const std::string& op, const std::string& name, std::vector<Value*> inputs, int num_outputs);
  Node* add_constant(const std::string& name, HostTensor value);  // op "Constant", attr "value"
  void mark_output(Value* v);
  void unmark_output(Value* v);

  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  std::vector<Value*>& mutable_outputs() { return outputs_; }
  // Nodes in insertion order (topological after topo_sort()).
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }
  Node* node(size_t i) const { return nodes_[i].get(); }
  size_t num_nodes() const { return nodes_.size(); }

  Value* find_value(const std::string& name) const;
  Node* find_node(const std::string& name) const;
  std::vector<Node*> users(const Value* v) const;

  // Redirects every use of `from` (node inputs and graph outputs) to `to`.
  void replace_all_uses(Value* from, Value* to);
  // Removes nodes for which pred is true, then values that nothing produces or uses any more.
  void remove_nodes_if(const std::function<bool(const Node*)>& pred);
  // Sorts nodes so each comes after its inputs' producers; throws on a cycle.
  void topo_sort();
  // Renumbers ids densely (after removals).
  void renumber();

  std::unique_ptr<Graph> clone() const;
  std::string unique_name(const std::string& base);
  std::string to_string() const;  // a readable dump for logs and tests

 private:
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Value*> inputs_, outputs_;
  int next_name_ = 0;
};

// A constant node's value, or nullptr when v is not produced by a Constant node.
const HostTensor* constant_value(const Value* v);

}  // namespace kiln::ir
