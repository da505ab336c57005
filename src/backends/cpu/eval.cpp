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
  std::vector<HostTensor> results;
  for (auto& o : outs) {
    if (!dims_known(o.shape))
      throw Error("layer '" + node.name + "': output shape " + dims_str(o.shape) + " is not known on the host");
    results.emplace_back(o.dtype, o.shape);
  }
  for (auto& r : results) ctx.out.push_back(TensorRef{true, r.dtype(), r.shape(), r.mutable_raw()});
  fn(ctx);
  return results;
}

}  // namespace kiln::cpu
