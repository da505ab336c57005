// The network-definition API: build a network layer by layer (TensorRT's INetworkDefinition shape).
// Tensors are ir::Value, layers are ir::Node; a layer's TensorRT properties are its node's attributes
// (names in src/ir/OPS.md). Every add_* validates its inputs and infers output shapes: on bad input it
// logs an error naming the problem and returns nullptr, leaving the network unchanged.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kiln/logger.h"
#include "kiln/types.h"

namespace kiln {
class HostTensor;
namespace ir {
class Graph;
struct Value;
struct Node;
}  // namespace ir

using ITensor = ir::Value;
using ILayer = ir::Node;

class Network {
 public:
  explicit Network(ILogger* logger, uint32_t flags = 0);
  ~Network();

  ir::Graph& graph() { return *graph_; }
  const ir::Graph& graph() const { return *graph_; }
  ILogger* logger() const { return logger_; }
  bool strongly_typed() const { return strongly_typed_; }
  std::string name = "Unnamed Network 0";

  ITensor* add_input(const std::string& name, DataType dtype, const Dims& dims);
  bool mark_output(ITensor* t);
  bool unmark_output(ITensor* t);

  // Layers that the API lists (weight constants created inside add_* are not layers).
  std::vector<ILayer*> layers() const;

  ILayer* add_constant(const Dims& dims, const HostTensor& weights);
  ILayer* add_convolution_nd(ITensor* in, int64_t num_output_maps, const Dims& kernel, const HostTensor& w,
                             const HostTensor& bias);
  ILayer* add_deconvolution_nd(ITensor* in, int64_t num_output_maps, const Dims& kernel, const HostTensor& w,
                               const HostTensor& bias);
  ILayer* add_pooling_nd(ITensor* in, int type, const Dims& window);
  ILayer* add_activation(ITensor* in, int type);
  ILayer* add_elementwise(ITensor* a, ITensor* b, int op);
  ILayer* add_unary(ITensor* in, int op);
  ILayer* add_matrix_multiply(ITensor* a, int op_a, ITensor* b, int op_b);
  ILayer* add_shuffle(ITensor* in);
  ILayer* add_concatenation(const std::vector<ITensor*>& ins);
  ILayer* add_slice(ITensor* in, const Dims& start, const Dims& size, const Dims& stride);
  ILayer* add_gather(ITensor* data, ITensor* indices, int64_t axis, int mode = 0);
  ILayer* add_reduce(ITensor* in, int op, uint32_t axes_mask, bool keep_dims);
  ILayer* add_softmax(ITensor* in);
  ILayer* add_cast(ITensor* in, DataType to);
  ILayer* add_identity(ITensor* in);
  ILayer* add_shape(ITensor* in);
  ILayer* add_select(ITensor* cond, ITensor* a, ITensor* b);
  ILayer* add_resize(ITensor* in);
  ILayer* add_padding_nd(ITensor* in, const Dims& pre, const Dims& post);
  ILayer* add_topk(ITensor* in, int op, int64_t k, uint32_t axes_mask);
  ILayer* add_scale(ITensor* in, int mode, const HostTensor& shift, const HostTensor& scale, const HostTensor& power,
                    int64_t channel_axis = 1);
  ILayer* add_normalization(ITensor* in, ITensor* scale, ITensor* bias, uint32_t axes_mask);
  ILayer* add_einsum(const std::vector<ITensor*>& ins, const std::string& equation);
  ILayer* add_fill(const Dims& dims, int op, DataType dtype);
  ILayer* add_fully_connected(ITensor* in, int64_t num_outputs, const HostTensor& w, const HostTensor& bias);
  // Any IR op by name (used by the ONNX importers); attributes set by the caller afterwards.
  ILayer* add_op(const std::string& op, const std::vector<ITensor*>& ins, int num_outputs);

  // Re-infers every tensor's shape (call it after changing layer attributes and before adding layers
  // that consume their outputs; the Python API does this for you) and dtype from the inputs (after properties changed). Returns false
  // and logs the first error.
  bool infer_shapes();
  // A weight constant owned by a layer (kernel, bias, ...), replaceable through set_weights.
  ILayer* weights_of(ILayer* layer, int input_index) const;
  void set_weights(ILayer* layer, int input_index, const HostTensor& w);

 private:
  std::unique_ptr<ir::Graph> graph_;
  ILogger* logger_;
  bool strongly_typed_ = false;
  ILayer* finish(ILayer* layer);                       // infers the new layer; removes it on error
  ITensor* weight_input(const HostTensor& w, const char* what);
  bool check_inputs(const char* fn, const std::vector<ITensor*>& ins);
};

}  // namespace kiln
