#include "passes/fuse_pointwise.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "ir/pointwise_program.h"

namespace kiln::passes {

namespace {

using namespace ir::pw;

bool pointwise_op(const std::string& op) {
  return op == "ElementWise" || op == "Unary" || op == "Activation" || op == "Cast" || op == "Select" || op == "Scale";
}

// The one-element constant behind v, when it can be an immediate of the program.
const HostTensor* scalar_constant(const ir::Value* v) {
  const HostTensor* t = ir::constant_value(v);
  if (!t || t->numel() != 1 || !is_program_type(t->dtype()) || t->dtype() != v->dtype) return nullptr;
  return t;
}

// Translates nodes into program instructions. Values of the group map to registers; any other value becomes
// a node input (kInput) or, for a one-element constant, an immediate. With `graph` null (a dry run, to check
// a node or count a group's inputs) nothing is added to the graph.
class Emitter {
 public:
  explicit Emitter(ir::Graph* graph) : g_(graph) {}

  Program p;
  std::vector<ir::Value*> inputs;
  std::vector<Dims> input_shapes;
  std::unordered_map<const ir::Value*, int64_t> reg;

  int64_t value(ir::Value* v) {
    auto it = reg.find(v);
    if (it != reg.end()) return it->second;
    int64_t r;
    if (const HostTensor* t = scalar_constant(v)) {
      if (is_float_type(t->dtype())) r = p.constant(t->dtype(), t->get_f64(0));
      else r = p.constant_int(t->dtype(), t->get_i64(0));
    } else {
      r = load(v);
    }
    reg[v] = r;
    return r;
  }

  // Emits node n; returns its output's register (or false via ok when n cannot be expressed).
  int64_t emit(const ir::Node& n, bool* ok) {
    *ok = true;
    const ir::Value* out = n.outputs[0];
    const DataType dt = out->dtype;
    if (n.op == "ElementWise") {
      const int64_t op = n.attrs.i("op", -1);
      const int64_t a = value(n.inputs[0]), b = value(n.inputs[1]);
      return p.add({kElementWise, op, dt, a, b, op == kMod ? (n.attrs.i("fmod", 0) ? 1 : 0) : 0});
    }
    if (n.op == "Unary") return p.add({kUnary, n.attrs.i("op", -1), dt, value(n.inputs[0]), -1, -1});
    if (n.op == "Activation") {
      const int64_t type = n.attrs.i("type", -1);
      double da, db;
      activation_defaults(type, &da, &db);
      const int64_t a = value(n.inputs[0]);
      p.imm.push_back(n.attrs.f("alpha", da));
      p.imm.push_back(n.attrs.f("beta", db));
      return p.add({kActivation, type, dt, a, static_cast<int64_t>(p.imm.size()) - 2, -1});
    }
    if (n.op == "Cast") {
      const int64_t a = value(n.inputs[0]);
      if (n.inputs[0]->dtype == dt) return a;
      return p.add({kCast, 0, dt, a, -1, -1});
    }
    if (n.op == "Select") {
      const int64_t c = value(n.inputs[0]), a = value(n.inputs[1]), b = value(n.inputs[2]);
      return p.add({kSelect, 0, dt, c, a, b});
    }
    if (n.op == "Scale") return emit_scale(n, ok);
    *ok = false;
    return -1;
  }

 private:
  ir::Graph* g_;

  // A node input; `shape` is the shape it will have (a Scale coefficient's reshaped one in a dry run).
  int64_t load(ir::Value* v, const Dims* shape = nullptr) {
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i] == v) return p.input(static_cast<int64_t>(i), v->dtype);
    inputs.push_back(v);
    input_shapes.push_back(shape ? *shape : v->shape);
    return p.input(static_cast<int64_t>(inputs.size()) - 1, v->dtype);
  }

  // y = (x * scale + shift) ^ power with constant coefficients, each one value (an immediate) or a tensor
  // reshaped to broadcast against x: [C, 1, ..., 1] for CHANNEL, x.shape[axis:] for ELEMENTWISE.
  int64_t emit_scale(const ir::Node& n, bool* ok) {
    const ir::Value* x = n.inputs[0];
    const DataType dt = x->dtype;
    const int64_t mode = n.attrs.i("mode", 0);
    const int64_t rank = static_cast<int64_t>(x->shape.size());
    int64_t axis = n.attrs.i("channel_axis", 1);
    if (axis < 0) axis += rank;
    Dims coeff_shape;
    if (mode == 1 || mode == 2) {
      if (axis < 0 || axis >= rank) return *ok = false, -1;
      if (mode == 1) {
        if (x->shape[axis] < 0) return *ok = false, -1;
        coeff_shape.push_back(x->shape[axis]);
        coeff_shape.resize(static_cast<size_t>(rank - axis), 1);
      } else {
        coeff_shape.assign(x->shape.begin() + axis, x->shape.end());
        if (!dims_known(coeff_shape)) return *ok = false, -1;
      }
    } else if (mode != 0) {
      return *ok = false, -1;
    }
    int64_t r = value(n.inputs[0]);
    static const int kOrder[3] = {2, 1, 3};  // scale, shift, power
    for (int k : kOrder) {
      if (static_cast<size_t>(k) >= n.inputs.size() || !n.inputs[k]) continue;
      ir::Value* cv = n.inputs[k];
      const HostTensor* t = ir::constant_value(cv);
      if (!t || !is_float_type(t->dtype())) return *ok = false, -1;
      int64_t c;
      if (t->numel() == 1) {
        if (k == 3 && t->get_f64(0) == 1.0) continue;  // power 1
        c = p.constant(dt, t->get_f64(0));
      } else {
        if (mode == 0 || t->numel() != volume(coeff_shape)) return *ok = false, -1;
        if (k == 3) {
          bool all_one = true;
          for (int64_t i = 0; i < t->numel() && all_one; ++i) all_one = t->get_f64(i) == 1.0;
          if (all_one) continue;
        }
        ir::Value* src = cv;
        if (g_ && cv->shape != coeff_shape) {
          ir::Node* cn = g_->add_constant(g_->unique_name("Constant"), t->reshaped(coeff_shape));
          cn->outputs[0]->dtype = t->dtype();
          cn->outputs[0]->shape = coeff_shape;
          src = cn->outputs[0];
        }
        c = load(src, &coeff_shape);
        if (t->dtype() != dt) c = p.add({kCast, 0, dt, c, -1, -1});
      }
      const int64_t op = k == 2 ? kProd : k == 1 ? kSum : kPow;
      r = p.add({kElementWise, op, dt, r, c, 0});
    }
    return r;
  }
};

std::vector<ir::TensorInfo> infos_of(const ir::Node& n) {
  std::vector<ir::TensorInfo> v;
  for (const ir::Value* in : n.inputs) {
    if (!in) {
      ir::TensorInfo t;
      t.present = false;
      v.push_back(t);
      continue;
    }
    v.push_back(ir::TensorInfo{true, in->dtype, in->shape, ir::constant_value(in)});
  }
  return v;
}

// Whether n may join a group: a pointwise op on program dtypes that a program can express and the target
// supports. Checked by emitting the node alone and validating the one-node program.
bool fusable(const ir::Node& n, const FusePointwise::Supported& supported) {
  if (!pointwise_op(n.op) || n.outputs.size() != 1) return false;
  if (!is_program_type(n.outputs[0]->dtype)) return false;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const ir::Value* in = n.inputs[i];
    if (!in) {
      if (n.op != "Scale" || i == 0) return false;
      continue;
    }
    if (!is_program_type(in->dtype)) return false;
  }
  try {
    Emitter e(nullptr);
    bool ok = false;
    const int64_t r = e.emit(n, &ok);
    if (!ok) return false;
    if (e.p.code.empty() || r != static_cast<int64_t>(e.p.code.size()) - 1)
      e.p.add({kCast, 0, n.outputs[0]->dtype, r, -1, -1});
    if (e.p.out_dtype() != n.outputs[0]->dtype) return false;
    std::vector<DataType> dts;
    for (auto* v : e.inputs) dts.push_back(v->dtype);
    validate(e.p, dts);
  } catch (const Error&) {
    return false;
  }
  return !supported || supported(n, infos_of(n));
}

// Numpy broadcast of known shapes (unknown dims stay -1 unless a known one fixes them); false on a clash.
bool broadcast_into(Dims& acc, const Dims& s) {
  const size_t r = std::max(acc.size(), s.size());
  Dims out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t a = i < r - acc.size() ? 1 : acc[i - (r - acc.size())];
    const int64_t b = i < r - s.size() ? 1 : s[i - (r - s.size())];
    if (a == 1) out[i] = b;
    else if (b == 1) out[i] = a;
    else if (a == -1) out[i] = b;
    else if (b == -1 || a == b) out[i] = a;
    else return false;
  }
  acc = std::move(out);
  return true;
}

std::string group_name(const std::vector<ir::Node*>& members) {
  std::string s = "PWN(";
  for (size_t i = 0; i < members.size(); ++i) {
    if (i) s += ", ";
    if (s.size() > 200) {
      s += "...";
      break;
    }
    s += members[i]->name;
  }
  return s + ")";
}

// The node inputs a group (members plus `extra`) would have: values read by its nodes and produced
// elsewhere, one-element constants excepted (they become immediates).
size_t external_inputs(const std::vector<ir::Node*>& members, const ir::Node* extra,
                       const std::unordered_set<const ir::Node*>& in_group) {
  std::unordered_set<const ir::Value*> ext;
  auto scan = [&](const ir::Node* n) {
    for (const ir::Value* v : n->inputs)
      if (v && !(v->producer && in_group.count(v->producer)) && !scalar_constant(v)) ext.insert(v);
  };
  for (const ir::Node* m : members) scan(m);
  scan(extra);
  return ext.size();
}

// Emits the group's nodes (in topological order) and checks the result: a valid program ending with the
// sink's value, and inputs that broadcast to the sink's shape.
bool build_program(const std::vector<ir::Node*>& members, const ir::Value* out, Emitter& e) {
  bool ok = true;
  for (ir::Node* m : members) {
    const int64_t r = e.emit(*m, &ok);
    if (!ok) return false;
    e.reg[m->outputs[0]] = r;
  }
  const int64_t r = e.reg[out];
  if (r != static_cast<int64_t>(e.p.code.size()) - 1) e.p.add({kCast, 0, out->dtype, r, -1, -1});
  std::vector<DataType> dts;
  Dims shape;
  for (size_t i = 0; i < e.inputs.size(); ++i) {
    dts.push_back(e.inputs[i]->dtype);
    if (!broadcast_into(shape, e.input_shapes[i])) return false;
  }
  try {
    validate(e.p, dts);
  } catch (const Error&) {
    return false;
  }
  if (shape.size() > out->shape.size() || e.p.out_dtype() != out->dtype) return false;
  shape.insert(shape.begin(), out->shape.size() - shape.size(), 1);
  for (size_t d = 0; d < shape.size(); ++d)
    if (shape[d] != out->shape[d] && shape[d] >= 0 && out->shape[d] >= 0) return false;
  return true;
}

}  // namespace

bool FusePointwise::run(ir::Graph& g) {
  g.topo_sort();
  std::vector<ir::Node*> order;
  std::unordered_map<const ir::Node*, size_t> pos;
  for (auto& np : g.nodes()) {
    pos[np.get()] = order.size();
    order.push_back(np.get());
  }
  std::unordered_map<const ir::Value*, std::vector<ir::Node*>> readers;
  for (ir::Node* n : order)
    for (ir::Value* in : n->inputs)
      if (in) readers[in].push_back(n);
  std::unordered_map<const ir::Node*, bool> can;
  for (ir::Node* n : order) can[n] = fusable(*n, supported_);

  // Groups, grown backwards from each sink (latest node first).
  std::unordered_set<const ir::Node*> assigned;
  std::vector<std::vector<ir::Node*>> groups;
  const size_t max_nodes = static_cast<size_t>(std::max(2, max_instructions / 4));
  for (size_t i = order.size(); i-- > 0;) {
    ir::Node* sink = order[i];
    if (!can[sink] || assigned.count(sink)) continue;
    std::vector<ir::Node*> members{sink};
    std::unordered_set<const ir::Node*> in_group{sink};
    for (bool changed = true; changed && members.size() < max_nodes;) {
      changed = false;
      for (size_t m = 0; m < members.size() && members.size() < max_nodes; ++m) {
        for (ir::Value* v : members[m]->inputs) {
          if (!v || v->is_output || !v->producer) continue;
          ir::Node* p = v->producer;
          if (in_group.count(p) || assigned.count(p) || !can[p]) continue;
          bool all_inside = true;
          for (ir::Node* r : readers[v]) all_inside = all_inside && in_group.count(r);
          if (!all_inside) continue;
          in_group.insert(p);
          if (external_inputs(members, p, in_group) > static_cast<size_t>(max_inputs)) {
            in_group.erase(p);
            continue;
          }
          members.push_back(p);
          changed = true;
        }
      }
    }
    for (ir::Node* m : members) assigned.insert(m);
    if (members.size() >= 2) groups.push_back(std::move(members));
  }

  bool changed = false;
  std::unordered_set<const ir::Node*> removed;
  for (auto& members : groups) {
    std::sort(members.begin(), members.end(), [&](ir::Node* a, ir::Node* b) { return pos[a] < pos[b]; });
    ir::Node* sink = members.back();
    ir::Value* out = sink->outputs[0];
    // A dry run first (nothing added to the graph): the group must fit the limits and give a valid program
    // whose inputs broadcast to the sink's shape. The real run then repeats it.
    Emitter dry(nullptr);
    if (!build_program(members, out, dry) || static_cast<int>(dry.inputs.size()) > max_inputs ||
        static_cast<int>(dry.p.code.size()) > max_instructions)
      continue;
    Emitter e(&g);
    build_program(members, out, e);

    ir::Node* fused = g.add_node("FusedPointwise", group_name(members), e.inputs, 1);
    e.p.to_attrs(fused->attrs);
    fused->attrs.set("rank", static_cast<int64_t>(out->shape.size()));
    ir::Value* fout = fused->outputs[0];
    fout->dtype = out->dtype;
    fout->shape = out->shape;
    g.replace_all_uses(out, fout);
    const std::string name = out->name;
    out->name = name + "__fused";
    fout->name = name;
    for (ir::Node* m : members) removed.insert(m);
    changed = true;
  }
  if (!removed.empty()) g.remove_nodes_if([&](const ir::Node* n) { return removed.count(n) != 0; });
  if (changed) g.topo_sort();
  return changed;
}

}  // namespace kiln::passes
