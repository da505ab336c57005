#include "runtime/shape_analysis.h"

#include <algorithm>

#include "backends/cpu/eval.h"

namespace kiln {

bool ShapeAnalysis::all_known() const {
  for (auto& i : info)
    if (i.present && !dims_known(i.shape)) return false;
  return true;
}

HostTensor shape_node_value(const ir::Node& n, const Dims& in) {
  int64_t rank = static_cast<int64_t>(in.size());
  auto clamp = [&](int64_t v) { return std::min(std::max(v < 0 ? v + rank : v, int64_t{0}), rank); };
  int64_t start = clamp(n.attrs.i("start", 0)), end = clamp(n.attrs.i("end", rank));
  Dims part;
  for (int64_t i = start; i < end; ++i) part.push_back(in[i]);
  return HostTensor::from_i64(part);
}

ShapeAnalysis analyze_shapes(const ir::Graph& g, const std::vector<Dims>& input_shapes, bool propagate_values,
                             const std::vector<HostTensor>& input_values) {
  ShapeAnalysis r;
  r.info.resize(g.values().size());
  r.values.resize(g.values().size());
  for (auto& v : g.values()) r.info[v->id].present = false;
  if (input_shapes.size() != g.inputs().size())
    throw Error("expected shapes for " + std::to_string(g.inputs().size()) + " inputs, got " +
                std::to_string(input_shapes.size()));
  for (size_t i = 0; i < g.inputs().size(); ++i) {
    auto* v = g.inputs()[i];
    const Dims& s = input_shapes[i];
    if (s.size() != v->shape.size())
      throw Error("input '" + v->name + "': shape " + dims_str(s) + " has rank " + std::to_string(s.size()) +
                  ", the network declares " + dims_str(v->shape));
    for (size_t d = 0; d < s.size(); ++d)
      if (v->shape[d] >= 0 && s[d] != v->shape[d])
        throw Error("input '" + v->name + "': shape " + dims_str(s) + " does not match the declared " +
                    dims_str(v->shape));
    r.info[v->id] = ir::TensorInfo{true, v->dtype, s, nullptr};
    if (i < input_values.size() && !input_values[i].empty()) {
      const HostTensor& t = input_values[i];
      if (t.dtype() != v->dtype || t.shape() != s)
        throw Error("input '" + v->name + "': its value is " + dtype_name(t.dtype()) + " " + dims_str(t.shape()) +
                    ", the input is " + dtype_name(v->dtype) + " " + dims_str(s));
      if (propagate_values) r.values[v->id] = t;
    }
  }
  for (auto& np : g.nodes()) {
    const ir::Node& n = *np;
    std::vector<ir::TensorInfo> ins;
    bool all_values = true;
    for (auto* in : n.inputs) {
      if (!in) {
        ins.push_back(ir::TensorInfo::absent());
        continue;
      }
      if (!r.info[in->id].present)
        throw Error("layer '" + n.name + "': input '" + in->name + "' is used before it is produced");
      ir::TensorInfo ti = r.info[in->id];
      if (const HostTensor* c = ir::constant_value(in)) ti.value = c;
      else if (!r.values[in->id].empty()) ti.value = &r.values[in->id];
      if (!ti.value) all_values = false;
      ins.push_back(ti);
    }
    auto outs = ir::infer_node(n, ins);
    for (size_t i = 0; i < outs.size(); ++i) {
      outs[i].value = nullptr;
      r.info[n.outputs[i]->id] = outs[i];
    }
    if (n.op == "Constant") continue;  // its value is read from the node itself
    if (!propagate_values) continue;
    if (n.op == "Shape" && dims_known(ins[0].shape)) {
      // A shape depends on its input's shape only, not on its data.
      r.values[n.outputs[0]->id] = shape_node_value(n, ins[0].shape);
      continue;
    }
    if (!all_values) continue;
    bool small = true;
    for (auto& o : outs) {
      int64_t ne = volume(o.shape);
      if (ne < 0 || ne > kMaxHostValueElements) small = false;
    }
    if (!small) continue;
    std::vector<const HostTensor*> in_vals;
    for (auto& ti : ins) in_vals.push_back(ti.present ? ti.value : nullptr);
    try {
      auto results = cpu::eval_node(n, in_vals);
      for (size_t i = 0; i < results.size(); ++i) r.values[n.outputs[i]->id] = std::move(results[i]);
    } catch (const Error&) {
      // The host cannot compute it (e.g. a dtype the CPU kernel lacks): the value stays unknown and
      // the node runs on its backend like any other.
    }
  }
  return r;
}

void infer_graph_inplace(ir::Graph& g) {
  std::vector<Dims> shapes;
  for (auto* v : g.inputs()) shapes.push_back(v->shape);
  // Reshape inference reads what the graph's values already say about shape tensors (ir/partial_values.h),
  // and those are written back only after the walk: a second round sees the first one's results (a third
  // is a safety margin; rounds stop as soon as nothing changes).
  for (int round = 0; round < 3; ++round) {
    auto r = analyze_shapes(g, shapes, true);
    bool changed = false;
    for (auto& v : g.values()) {
      if (!r.info[v->id].present) continue;
      changed = changed || v->dtype != r.info[v->id].dtype || v->shape != r.info[v->id].shape;
      v->dtype = r.info[v->id].dtype;
      v->shape = r.info[v->id].shape;
    }
    if (!changed) break;
  }
}

}  // namespace kiln
