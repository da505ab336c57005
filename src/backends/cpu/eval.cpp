#include "backends/cpu/eval.h"

#include "ir/op_registry.h"

namespace kiln::cpu {

std::vector<HostTensor> eval_node(const ir::Node& node, const std::vector<const HostTensor*>& inputs,
                                  ThreadPool* pool) {
  std::vector<ir::TensorInfo> infos(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) {
      infos[i].present = false;
      continue;
    }
    infos[i].dtype = inputs[i]->dtype();
    infos[i].shape = inputs[i]->shape();
    infos[i].value = inputs[i];
  }
  auto outs = ir::infer_node(node, infos);
  KernelFn fn = find_kernel(node.op);
  if (!fn) throw Error("layer '" + node.name + "': no CPU kernel for op '" + node.op + "'");
  KernelContext ctx{node, {}, {}, pool ? pool : &default_thread_pool()};
  for (auto* t : inputs) {
    TensorRef r;
    if (t) {
      r.present = true;
      r.dtype = t->dtype();
      r.shape = t->shape();
      r.data = const_cast<void*>(t->raw());
    }
    ctx.in.push_back(r);
  }
  // Outputs of unknown shape (data-dependent ops) get memory when the kernel knows their shape.
  std::vector<HostTensor> results(outs.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    if (dims_known(outs[i].shape)) results[i] = HostTensor(outs[i].dtype, outs[i].shape);
    ctx.out.push_back(TensorRef{true, outs[i].dtype, outs[i].shape, results[i].mutable_raw()});
  }
  ctx.allocate_output = [&](size_t i, const Dims& shape) {
    results.at(i) = HostTensor(outs[i].dtype, shape);
    return results[i].mutable_raw();
  };
  fn(ctx);
  for (size_t i = 0; i < outs.size(); ++i)
    if (!dims_known(ctx.out[i].shape))
      throw Error("layer '" + node.name + "': output shape " + dims_str(ctx.out[i].shape) + " is not known on the host");
  return results;
}

}  // namespace kiln::cpu
