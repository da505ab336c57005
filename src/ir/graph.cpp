#include "ir/graph.h"

#include <algorithm>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace kiln::ir {

Value* Graph::add_input(const std::string& name, DataType dtype, Dims shape) {
  if (find_value(name)) throw Error("a tensor named '" + name + "' already exists in the network");
  auto v = std::make_unique<Value>();
  v->id = static_cast<int>(values_.size());
  v->name = name;
  v->dtype = dtype;
  v->shape = std::move(shape);
  v->is_input = true;
  inputs_.push_back(v.get());
  values_.push_back(std::move(v));
  return inputs_.back();
}

Node* Graph::add_node(const std::string& op, const std::string& name, std::vector<Value*> inputs, int num_outputs) {
  auto n = std::make_unique<Node>();
  n->id = static_cast<int>(nodes_.size());
  n->op = op;
  n->name = name.empty() ? unique_name(op) : name;
  n->inputs = std::move(inputs);
  for (int i = 0; i < num_outputs; ++i) {
    auto v = std::make_unique<Value>();
    v->id = static_cast<int>(values_.size());
    v->name = n->name + "_output_" + std::to_string(i);
    v->producer = n.get();
    n->outputs.push_back(v.get());
    values_.push_back(std::move(v));
  }
  n->output_types.resize(num_outputs);
  nodes_.push_back(std::move(n));
  return nodes_.back().get();
}

Node* Graph::add_constant(const std::string& name, HostTensor value) {
  Node* n = add_node("Constant", name, {}, 1);
  n->outputs[0]->dtype = value.dtype();
  n->outputs[0]->shape = value.shape();
  n->attrs.set("value", std::move(value));
  return n;
}

void Graph::mark_output(Value* v) {
  if (std::find(outputs_.begin(), outputs_.end(), v) != outputs_.end()) return;
  v->is_output = true;
  outputs_.push_back(v);
}

void Graph::unmark_output(Value* v) {
  auto it = std::find(outputs_.begin(), outputs_.end(), v);
  if (it == outputs_.end()) return;
  outputs_.erase(it);
  v->is_output = false;
}

Value* Graph::find_value(const std::string& name) const {
  for (auto& v : values_)
    if (v->name == name) return v.get();
  return nullptr;
}

Node* Graph::find_node(const std::string& name) const {
  for (auto& n : nodes_)
    if (n->name == name) return n.get();
  return nullptr;
}

std::vector<Node*> Graph::users(const Value* v) const {
  std::vector<Node*> out;
  for (auto& n : nodes_)
    if (std::find(n->inputs.begin(), n->inputs.end(), v) != n->inputs.end()) out.push_back(n.get());
  return out;
}

void Graph::replace_all_uses(Value* from, Value* to) {
  for (auto& n : nodes_)
    for (auto& in : n->inputs)
      if (in == from) in = to;
  for (auto& o : outputs_)
    if (o == from) {
      // The graph output keeps its public name: the replacement takes it over.
      o = to;
      from->is_output = false;
      to->is_output = true;
    }
}

void Graph::remove_nodes_if(const std::function<bool(const Node*)>& pred) {
  std::unordered_set<const Value*> dropped;
  std::vector<std::unique_ptr<Node>> kept;
  for (auto& n : nodes_) {
    if (pred(n.get())) {
      for (auto* o : n->outputs) dropped.insert(o);
    } else {
      kept.push_back(std::move(n));
    }
  }
  nodes_ = std::move(kept);
  std::unordered_set<const Value*> used;
  for (auto& n : nodes_) {
    for (auto* in : n->inputs) used.insert(in);
    for (auto* o : n->outputs) used.insert(o);
  }
  for (auto* v : inputs_) used.insert(v);
  for (auto* v : outputs_) used.insert(v);
  for (auto& n : nodes_)
    for (auto* in : n->inputs)
      if (in && dropped.count(in)) throw Error("internal: removed node still feeds " + n->name);
  std::vector<std::unique_ptr<Value>> vals;
  for (auto& v : values_)
    if (used.count(v.get())) vals.push_back(std::move(v));
  values_ = std::move(vals);
  renumber();
}

void Graph::topo_sort() {
  std::unordered_map<const Node*, int> state;  // 0 new, 1 visiting, 2 done
  std::vector<std::unique_ptr<Node>> order;
  std::unordered_map<Node*, std::unique_ptr<Node>*> slot;
  for (auto& n : nodes_) slot[n.get()] = &n;
  std::function<void(Node*)> visit = [&](Node* n) {
    int& s = state[n];
    if (s == 2) return;
    if (s == 1) throw Error("the network has a cycle through layer '" + n->name + "'");
    s = 1;
    for (auto* in : n->inputs)
      if (in && in->producer) visit(in->producer);
    state[n] = 2;
    order.push_back(std::move(*slot[n]));
  };
  std::vector<Node*> original;
  for (auto& n : nodes_) original.push_back(n.get());
  for (auto* n : original) visit(n);
  nodes_ = std::move(order);
  renumber();
}

void Graph::renumber() {
  for (size_t i = 0; i < nodes_.size(); ++i) nodes_[i]->id = static_cast<int>(i);
  for (size_t i = 0; i < values_.size(); ++i) values_[i]->id = static_cast<int>(i);
}

std::unique_ptr<Graph> Graph::clone() const {
  auto g = std::make_unique<Graph>();
  std::unordered_map<const Value*, Value*> vmap;
  std::unordered_map<const Node*, Node*> nmap;
  for (auto& v : values_) {
    auto nv = std::make_unique<Value>(*v);
    nv->producer = nullptr;
    vmap[v.get()] = nv.get();
    g->values_.push_back(std::move(nv));
  }
  for (auto& n : nodes_) {
    auto nn = std::make_unique<Node>(*n);
    for (auto& in : nn->inputs) in = in ? vmap.at(in) : nullptr;
    for (auto& o : nn->outputs) {
      o = vmap.at(o);
      o->producer = nn.get();
    }
    g->nodes_.push_back(std::move(nn));
  }
  for (auto* v : inputs_) g->inputs_.push_back(vmap.at(v));
  for (auto* v : outputs_) g->outputs_.push_back(vmap.at(v));
  g->next_name_ = next_name_;
  return g;
}

std::string Graph::unique_name(const std::string& base) {
  for (;;) {
    std::string n = "(Unnamed Layer* " + std::to_string(next_name_++) + ") [" + base + "]";
    if (!find_node(n)) return n;
  }
}

std::string Graph::to_string() const {
  std::ostringstream s;
  for (auto* v : inputs_) s << "input " << v->name << " " << dtype_name(v->dtype) << dims_str(v->shape) << "\n";
  for (auto& n : nodes_) {
    s << n->op << " '" << n->name << "' (";
    for (size_t i = 0; i < n->inputs.size(); ++i) s << (i ? ", " : "") << (n->inputs[i] ? n->inputs[i]->name : "-");
    s << ") -> (";
    for (size_t i = 0; i < n->outputs.size(); ++i)
      s << (i ? ", " : "") << n->outputs[i]->name << " " << dtype_name(n->outputs[i]->dtype)
        << dims_str(n->outputs[i]->shape);
    s << ")\n";
  }
  for (auto* v : outputs_) s << "output " << v->name << "\n";
  return s.str();
}

const HostTensor* constant_value(const Value* v) {
  if (!v || !v->producer || v->producer->op != "Constant") return nullptr;
  return &v->producer->attrs.tensor("value");
}

}  // namespace kiln::ir
