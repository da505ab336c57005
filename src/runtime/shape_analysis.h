// Whole-graph shape inference. Walks the nodes in order, inferring every value's dtype and shape from
// the graph inputs' shapes. With value propagation on, small tensors whose inputs are all known (shape
// arithmetic: Shape -> Gather -> Concat -> Reshape) are computed on the host, so that shapes which
// depend on them become exact. The builder runs it per profile, the runtime for the actual shapes, and
// the network API with the declared (possibly -1) shapes.
#pragma once
#include <vector>

#include "ir/op_registry.h"

namespace kiln {

struct ShapeAnalysis {
  std::vector<ir::TensorInfo> info;   // by value id
  std::vector<HostTensor> values;     // by value id: host-computed contents (empty when not computed)
  bool all_known() const;             // every value's shape is fully known
};

// Largest element count of a tensor computed on the host during shape analysis.
inline constexpr int64_t kMaxHostValueElements = 256;

// input_shapes: one per graph input (in graph input order). input_values (optional, graph input order):
// the contents of inputs known now (shape tensors read at run time); an empty HostTensor where unknown.
// Throws kiln::Error naming the layer (or input) at fault.
ShapeAnalysis analyze_shapes(const ir::Graph& g, const std::vector<Dims>& input_shapes, bool propagate_values,
                             const std::vector<HostTensor>& input_values = {});

// The value a Shape node (with its optional start/end attributes) produces for an input of shape `in`.
HostTensor shape_node_value(const ir::Node& shape_node, const Dims& in);

// Runs analyze_shapes with the inputs' declared shapes and writes dtypes/shapes back into the graph.
void infer_graph_inplace(ir::Graph& g);

}  // namespace kiln
