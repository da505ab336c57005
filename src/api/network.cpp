#include "kiln/network.h"

#include <algorithm>

#include "ir/graph.h"
#include "ir/op_registry.h"
#include "runtime/shape_analysis.h"

namespace kiln {

namespace {
constexpr const char* kWeightAttr = "kiln_weight";  // marks constants created for a layer's weights

int axis_from_mask(uint32_t mask) {
  for (int i = 0; i < 32; ++i)
    if (mask & (1u << i)) return i;
  return 0;
}
std::vector<int64_t> axes_from_mask(uint32_t mask) {
  std::vector<int64_t> v;
  for (int i = 0; i < 32; ++i)
    if (mask & (1u << i)) v.push_back(i);
  return v;
}
}  // namespace

Network::Network(ILogger* logger, uint32_t flags) : graph_(std::make_unique<ir::Graph>()), logger_(logger) {
  strongly_typed_ = (flags & (1u << 1)) != 0;  // NetworkDefinitionCreationFlag.STRONGLY_TYPED
}
Network::~Network() = default;

ITensor* Network::add_input(const std::string& n, DataType dtype, const Dims& dims) {
  try {
    for (int64_t d : dims)
      if (d < -1) throw Error("dimension " + std::to_string(d) + " is invalid (use -1 for a dynamic dimension)");
    if (n.empty()) throw Error("an input needs a name");
    return graph_->add_input(n, dtype, dims);
  } catch (const std::exception& e) {
    log_to(logger_, Severity::kERROR, std::string("add_input: ") + e.what());
    return nullptr;
  }
}

bool Network::mark_output(ITensor* t) {
  if (!t) {
    log_to(logger_, Severity::kERROR, "mark_output: tensor is None");
    return false;
  }
  graph_->mark_output(t);
  return true;
}

bool Network::unmark_output(ITensor* t) {
  if (!t || !t->is_output) return false;
  graph_->unmark_output(t);
  return true;
}

std::vector<ILayer*> Network::layers() const {
  std::vector<ILayer*> v;
  for (auto& n : graph_->nodes())
    if (!n->attrs.has(kWeightAttr)) v.push_back(n.get());
  return v;
}

bool Network::check_inputs(const char* fn, const std::vector<ITensor*>& ins) {
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i]) {
      log_to(logger_, Severity::kERROR, std::string(fn) + ": input " + std::to_string(i) + " is None");
      return false;
    }
    bool ours = false;
    for (auto& v : graph_->values())
      if (v.get() == ins[i]) ours = true;
    if (!ours) {
      log_to(logger_, Severity::kERROR,
             std::string(fn) + ": input " + std::to_string(i) + " belongs to another network");
      return false;
    }
  }
  return true;
}

ITensor* Network::weight_input(const HostTensor& w, const char* what) {
  if (w.empty()) return nullptr;
  ir::Node* c = graph_->add_constant(graph_->unique_name(std::string("Constant ") + what), w);
  c->attrs.set(kWeightAttr, int64_t{1});
  return c->outputs[0];
}

ILayer* Network::weights_of(ILayer* layer, int i) const {
  if (!layer || i < 0 || i >= static_cast<int>(layer->inputs.size()) || !layer->inputs[i]) return nullptr;
  ir::Node* p = layer->inputs[i]->producer;
  return p && p->op == "Constant" && p->attrs.has(kWeightAttr) ? p : nullptr;
}

void Network::set_weights(ILayer* layer, int i, const HostTensor& w) {
  if (ir::Node* c = weights_of(layer, i)) {
    c->attrs.set("value", w);
    c->outputs[0]->dtype = w.dtype();
    c->outputs[0]->shape = w.shape();
    return;
  }
  while (static_cast<int>(layer->inputs.size()) <= i) layer->inputs.push_back(nullptr);
  layer->inputs[i] = weight_input(w, "weights");
}

// TensorRT hands convolution kernels over as flat arrays; their shape depends on the input's channels
// and on num_groups, which may be set after the layer is created. Shape them here, before inference.
static void shape_layer_weights(ir::Node* n) {
  if ((n->op != "Convolution" && n->op != "Deconvolution") || n->inputs.size() < 2 || !n->inputs[0] || !n->inputs[1])
    return;
  ir::Node* c = n->inputs[1]->producer;
  if (!c || c->op != "Constant" || !c->attrs.has(kWeightAttr)) return;
  const HostTensor& w = c->attrs.tensor("value");
  const Dims& x = n->inputs[0]->shape;
  Dims kernel = n->attrs.ints("kernel");
  int64_t groups = n->attrs.i("groups", 1), nout = n->attrs.i("num_output_maps", 0);
  if (x.size() < 2 || x[1] < 0 || groups <= 0) return;
  Dims shape = n->op == "Convolution" ? Dims{nout, x[1] / groups} : Dims{x[1], nout / groups};
  shape.insert(shape.end(), kernel.begin(), kernel.end());
  if (volume(shape) == w.numel() && shape != w.shape()) {
    c->attrs.set("value", w.reshaped(shape));
    c->outputs[0]->shape = shape;
  }
}

ILayer* Network::finish(ILayer* layer) {
  try {
    shape_layer_weights(layer);
    std::vector<ir::TensorInfo> ins;
    for (auto* in : layer->inputs) {
      if (!in) {
        ins.push_back(ir::TensorInfo::absent());
        continue;
      }
      ins.push_back(ir::TensorInfo{true, in->dtype, in->shape, ir::constant_value(in)});
    }
    auto outs = ir::infer_node(*layer, ins);
    for (size_t i = 0; i < outs.size(); ++i) {
      layer->outputs[i]->dtype = outs[i].dtype;
      layer->outputs[i]->shape = outs[i].shape;
    }
    return layer;
  } catch (const std::exception& e) {
    log_to(logger_, Severity::kERROR, e.what());
    std::vector<ir::Node*> doomed{layer};
    for (auto* in : layer->inputs)
      if (in && in->producer && in->producer->attrs.has(kWeightAttr)) doomed.push_back(in->producer);
    graph_->remove_nodes_if([&](const ir::Node* n) { return std::find(doomed.begin(), doomed.end(), n) != doomed.end(); });
    return nullptr;
  }
}

ILayer* Network::add_op(const std::string& op, const std::vector<ITensor*>& ins, int num_outputs) {
  for (auto* t : ins)
    if (t && !check_inputs(op.c_str(), {t})) return nullptr;
  if (!ir::find_op(op)) {
    log_to(logger_, Severity::kERROR, "unknown op '" + op + "'");
    return nullptr;
  }
  return graph_->add_node(op, "", ins, num_outputs);
}

ILayer* Network::add_constant(const Dims& dims, const HostTensor& weights) {
  if (volume(dims) != weights.numel()) {
    log_to(logger_, Severity::kERROR, "add_constant: shape " + dims_str(dims) + " holds " +
                                          std::to_string(volume(dims)) + " elements, the weights have " +
                                          std::to_string(weights.numel()));
    return nullptr;
  }
  return finish(graph_->add_constant(graph_->unique_name("Constant"), weights.reshaped(dims)));
}

static void set_conv_defaults(ir::Node* n, int64_t nout, const Dims& kernel) {
  size_t k = kernel.size();
  n->attrs.set("num_output_maps", nout);
  n->attrs.set("kernel", std::vector<int64_t>(kernel));
  n->attrs.set("stride", std::vector<int64_t>(k, 1));
  n->attrs.set("dilation", std::vector<int64_t>(k, 1));
  n->attrs.set("pre_padding", std::vector<int64_t>(k, 0));
  n->attrs.set("post_padding", std::vector<int64_t>(k, 0));
  n->attrs.set("groups", int64_t{1});
  n->attrs.set("padding_mode", int64_t{0});
}

ILayer* Network::add_convolution_nd(ITensor* in, int64_t nout, const Dims& kernel, const HostTensor& w,
                                    const HostTensor& b) {
  if (!check_inputs("add_convolution_nd", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Convolution", "", {in}, 1);
  n->inputs.push_back(weight_input(w, "kernel"));
  if (!b.empty()) n->inputs.push_back(weight_input(b, "bias"));
  set_conv_defaults(n, nout, kernel);
  return finish(n);
}

ILayer* Network::add_deconvolution_nd(ITensor* in, int64_t nout, const Dims& kernel, const HostTensor& w,
                                      const HostTensor& b) {
  if (!check_inputs("add_deconvolution_nd", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Deconvolution", "", {in}, 1);
  n->inputs.push_back(weight_input(w, "kernel"));
  if (!b.empty()) n->inputs.push_back(weight_input(b, "bias"));
  set_conv_defaults(n, nout, kernel);
  n->attrs.set("output_padding", std::vector<int64_t>(kernel.size(), 0));
  return finish(n);
}

ILayer* Network::add_pooling_nd(ITensor* in, int type, const Dims& window) {
  if (!check_inputs("add_pooling_nd", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Pooling", "", {in}, 1);
  size_t k = window.size();
  n->attrs.set("type", int64_t{type});
  n->attrs.set("window", std::vector<int64_t>(window));
  n->attrs.set("stride", std::vector<int64_t>(window));  // TensorRT's default stride is the window
  n->attrs.set("pre_padding", std::vector<int64_t>(k, 0));
  n->attrs.set("post_padding", std::vector<int64_t>(k, 0));
  n->attrs.set("padding_mode", int64_t{0});
  n->attrs.set("exclude_pad", int64_t{1});
  n->attrs.set("blend_factor", 0.0);
  return finish(n);
}

ILayer* Network::add_activation(ITensor* in, int type) {
  if (!check_inputs("add_activation", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Activation", "", {in}, 1);
  n->attrs.set("type", int64_t{type});
  n->attrs.set("alpha", 0.0);
  n->attrs.set("beta", 0.0);
  return finish(n);
}

ILayer* Network::add_elementwise(ITensor* a, ITensor* b, int op) {
  if (!check_inputs("add_elementwise", {a, b})) return nullptr;
  ir::Node* n = graph_->add_node("ElementWise", "", {a, b}, 1);
  n->attrs.set("op", int64_t{op});
  return finish(n);
}

ILayer* Network::add_unary(ITensor* in, int op) {
  if (!check_inputs("add_unary", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Unary", "", {in}, 1);
  n->attrs.set("op", int64_t{op});
  return finish(n);
}

ILayer* Network::add_matrix_multiply(ITensor* a, int op_a, ITensor* b, int op_b) {
  if (!check_inputs("add_matrix_multiply", {a, b})) return nullptr;
  ir::Node* n = graph_->add_node("MatrixMultiply", "", {a, b}, 1);
  n->attrs.set("op_a", int64_t{op_a});
  n->attrs.set("op_b", int64_t{op_b});
  return finish(n);
}

ILayer* Network::add_shuffle(ITensor* in) {
  if (!check_inputs("add_shuffle", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Shuffle", "", {in}, 1);
  n->attrs.set("zero_is_placeholder", int64_t{1});
  n->attrs.set("has_reshape", int64_t{0});
  return finish(n);
}

ILayer* Network::add_concatenation(const std::vector<ITensor*>& ins) {
  if (ins.empty()) {
    log_to(logger_, Severity::kERROR, "add_concatenation: needs at least one input");
    return nullptr;
  }
  if (!check_inputs("add_concatenation", ins)) return nullptr;
  ir::Node* n = graph_->add_node("Concatenation", "", ins, 1);
  // TensorRT's default axis: the channel axis of NCHW-style tensors, else 0.
  int64_t rank = static_cast<int64_t>(ins[0]->shape.size());
  n->attrs.set("axis", rank >= 3 ? rank - 3 : int64_t{0});
  return finish(n);
}

ILayer* Network::add_slice(ITensor* in, const Dims& start, const Dims& size, const Dims& stride) {
  if (!check_inputs("add_slice", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Slice", "", {in}, 1);
  n->attrs.set("start", std::vector<int64_t>(start));
  n->attrs.set("size", std::vector<int64_t>(size));
  n->attrs.set("stride", std::vector<int64_t>(stride));
  n->attrs.set("mode", int64_t{0});
  return finish(n);
}

ILayer* Network::add_gather(ITensor* data, ITensor* indices, int64_t axis, int mode) {
  if (!check_inputs("add_gather", {data, indices})) return nullptr;
  ir::Node* n = graph_->add_node("Gather", "", {data, indices}, 1);
  n->attrs.set("axis", axis);
  n->attrs.set("mode", int64_t{mode});
  n->attrs.set("num_elementwise_dims", int64_t{0});
  return finish(n);
}

ILayer* Network::add_reduce(ITensor* in, int op, uint32_t axes_mask, bool keep_dims) {
  if (!check_inputs("add_reduce", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Reduce", "", {in}, 1);
  n->attrs.set("op", int64_t{op});
  n->attrs.set("axes", axes_from_mask(axes_mask));
  n->attrs.set("keep_dims", int64_t{keep_dims});
  if (axes_mask == 0) {
    log_to(logger_, Severity::kERROR, "add_reduce: axes mask is 0; set at least one axis bit");
    graph_->remove_nodes_if([&](const ir::Node* x) { return x == n; });
    return nullptr;
  }
  return finish(n);
}

ILayer* Network::add_softmax(ITensor* in) {
  if (!check_inputs("add_softmax", {in})) return nullptr;
  ir::Node* n = graph_->add_node("SoftMax", "", {in}, 1);
  int64_t rank = static_cast<int64_t>(in->shape.size());
  n->attrs.set("axis", rank >= 3 ? rank - 3 : rank - 1);
  n->attrs.set("log", int64_t{0});
  return finish(n);
}

ILayer* Network::add_cast(ITensor* in, DataType to) {
  if (!check_inputs("add_cast", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Cast", "", {in}, 1);
  n->attrs.set("to", static_cast<int64_t>(to));
  return finish(n);
}

ILayer* Network::add_identity(ITensor* in) {
  if (!check_inputs("add_identity", {in})) return nullptr;
  return finish(graph_->add_node("Identity", "", {in}, 1));
}

ILayer* Network::add_shape(ITensor* in) {
  if (!check_inputs("add_shape", {in})) return nullptr;
  return finish(graph_->add_node("Shape", "", {in}, 1));
}

ILayer* Network::add_select(ITensor* cond, ITensor* a, ITensor* b) {
  if (!check_inputs("add_select", {cond, a, b})) return nullptr;
  return finish(graph_->add_node("Select", "", {cond, a, b}, 1));
}

ILayer* Network::add_resize(ITensor* in) {
  if (!check_inputs("add_resize", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Resize", "", {in}, 1);
  n->attrs.set("mode", int64_t{0});
  n->attrs.set("coordinate_transformation", int64_t{1});
  n->attrs.set("nearest_rounding", int64_t{2});
  n->attrs.set("scales", std::vector<double>(in->shape.size(), 1.0));
  return finish(n);
}

ILayer* Network::add_padding_nd(ITensor* in, const Dims& pre, const Dims& post) {
  if (!check_inputs("add_padding_nd", {in})) return nullptr;
  if (pre.size() != post.size() || pre.size() > in->shape.size()) {
    log_to(logger_, Severity::kERROR, "add_padding_nd: pre " + dims_str(pre) + " and post " + dims_str(post) +
                                          " must have equal length, at most the input's rank");
    return nullptr;
  }
  ir::Node* n = graph_->add_node("Pad", "", {in}, 1);
  size_t r = in->shape.size(), k = pre.size();
  std::vector<int64_t> pads(2 * r, 0);
  for (size_t i = 0; i < k; ++i) {
    pads[r - k + i] = pre[i];
    pads[2 * r - k + i] = post[i];
  }
  n->attrs.set("pads", pads);
  n->attrs.set("mode", "constant");
  n->attrs.set("value", 0.0);
  return finish(n);
}

ILayer* Network::add_topk(ITensor* in, int op, int64_t k, uint32_t axes_mask) {
  if (!check_inputs("add_topk", {in})) return nullptr;
  ir::Node* n = graph_->add_node("TopK", "", {in}, 2);
  n->attrs.set("op", int64_t{op});
  n->attrs.set("k", k);
  n->attrs.set("axis", int64_t{axis_from_mask(axes_mask)});
  n->attrs.set("sorted", int64_t{1});
  n->attrs.set("index_dtype", static_cast<int64_t>(DataType::kINT32));
  return finish(n);
}

ILayer* Network::add_scale(ITensor* in, int mode, const HostTensor& shift, const HostTensor& scale,
                           const HostTensor& power, int64_t channel_axis) {
  if (!check_inputs("add_scale", {in})) return nullptr;
  ir::Node* n = graph_->add_node("Scale", "", {in}, 1);
  n->inputs.push_back(weight_input(shift, "shift"));
  n->inputs.push_back(weight_input(scale, "scale"));
  n->inputs.push_back(weight_input(power, "power"));
  n->attrs.set("mode", int64_t{mode});
  n->attrs.set("channel_axis", channel_axis);
  return finish(n);
}

ILayer* Network::add_normalization(ITensor* in, ITensor* scale, ITensor* bias, uint32_t axes_mask) {
  if (!check_inputs("add_normalization", {in, scale, bias})) return nullptr;
  ir::Node* n = graph_->add_node("Normalization", "", {in, scale, bias}, 1);
  n->attrs.set("axes", axes_from_mask(axes_mask));
  n->attrs.set("epsilon", 1e-5);
  n->attrs.set("num_groups", int64_t{1});
  return finish(n);
}

ILayer* Network::add_einsum(const std::vector<ITensor*>& ins, const std::string& equation) {
  if (!check_inputs("add_einsum", ins)) return nullptr;
  ir::Node* n = graph_->add_node("Einsum", "", ins, 1);
  n->attrs.set("equation", equation);
  return finish(n);
}

ILayer* Network::add_fill(const Dims& dims, int op, DataType dtype) {
  ir::Node* n = graph_->add_node("Fill", "", {}, 1);
  n->attrs.set("op", int64_t{op});
  n->attrs.set("shape", std::vector<int64_t>(dims));
  n->attrs.set("alpha", 0.0);
  n->attrs.set("beta", std::vector<double>(dims.size(), 1.0));
  n->attrs.set("dtype", static_cast<int64_t>(dtype));
  return finish(n);
}

ILayer* Network::add_fully_connected(ITensor* in, int64_t nout, const HostTensor& w, const HostTensor& b) {
  // TensorRT 8's FullyConnected: [N, C, H, W] -> [N, K, 1, 1] with kernel [K, C*H*W]. Expressed as a
  // 1x1-output convolution whose kernel covers the whole input plane.
  if (!check_inputs("add_fully_connected", {in})) return nullptr;
  if (in->shape.size() < 3) {
    log_to(logger_, Severity::kERROR, "add_fully_connected: input must be at least 3-D [N, C, ...], got " +
                                          dims_str(in->shape));
    return nullptr;
  }
  Dims kernel(in->shape.begin() + 2, in->shape.end());
  if (!dims_known(kernel) || in->shape[1] < 0) {
    log_to(logger_, Severity::kERROR, "add_fully_connected: C and spatial dims must be static, got " +
                                          dims_str(in->shape));
    return nullptr;
  }
  Dims wshape{nout, in->shape[1]};
  wshape.insert(wshape.end(), kernel.begin(), kernel.end());
  if (volume(wshape) != w.numel()) {
    log_to(logger_, Severity::kERROR, "add_fully_connected: kernel has " + std::to_string(w.numel()) +
                                          " elements, expected " + std::to_string(volume(wshape)));
    return nullptr;
  }
  return add_convolution_nd(in, nout, kernel, w.reshaped(wshape), b);
}

bool Network::infer_shapes() {
  try {
    // Layers own weight constants created after them, and set_input may rewire layers: sort first.
    graph_->topo_sort();
    for (auto& n : graph_->nodes()) shape_layer_weights(n.get());
    infer_graph_inplace(*graph_);
    return true;
  } catch (const std::exception& e) {
    log_to(logger_, Severity::kERROR, e.what());
    return false;
  }
}

}  // namespace kiln
