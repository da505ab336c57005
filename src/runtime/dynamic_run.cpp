#include "runtime/dynamic_run.h"

#include <cstring>

#include "ir/op_registry.h"
#include "ir/ops/data_dependent_ops.h"

namespace kiln {

namespace {

// One tensor while the graph runs: its actual dtype/shape and where its bytes are. `owned` holds the
// memory of tensors computed by this run; inputs, constants and host-computed values are borrowed.
struct Live {
  bool ready = false;
  DataType dtype = DataType::kFLOAT;
  Dims shape;
  const void* data = nullptr;
  HostTensor owned;
  int uses_left = 0;  // node inputs still to run; graph outputs hold theirs until the end
};

class Runner {
 public:
  Runner(const EngineData& e, const ShapeAnalysis& pre, const std::vector<int>& io_ids,
         const std::vector<void*>& io_ptrs, cpu::ThreadPool* pool)
      : e_(e), g_(*e.graph), pre_(pre), io_ids_(io_ids), pool_(pool), live_(g_.values().size()) {
    for (auto& n : g_.nodes())
      for (auto* in : n->inputs)
        if (in) ++live_[in->id].uses_left;
    for (size_t i = 0; i < e_.io.size(); ++i) {
      Live& l = live_[io_ids_[i]];
      if (!e_.io[i].is_input) {
        l.uses_left += 1 << 20;  // kept until delivered
        continue;
      }
      const auto& info = pre_.info[io_ids_[i]];
      set_borrowed(io_ids_[i], info.dtype, info.shape, io_ptrs[i]);
    }
    // Tensors computed on the host during shape analysis, and constants, are ready from the start.
    for (auto& v : g_.values()) {
      if (live_[v->id].ready) continue;
      if (const HostTensor* c = ir::constant_value(v.get())) set_borrowed(v->id, c->dtype(), c->shape(), c->raw());
      else if (!pre_.values[v->id].empty())
        set_borrowed(v->id, pre_.values[v->id].dtype(), pre_.values[v->id].shape(), pre_.values[v->id].raw());
    }
  }

  void run_all() {
    for (auto& np : g_.nodes()) {
      const ir::Node& n = *np;
      bool done = true;
      for (auto* o : n.outputs) done = done && live_[o->id].ready;
      if (!done) run_node(n);
      release_inputs(n);
    }
  }

  void deliver(OutputSink& sink) {
    for (size_t i = 0; i < e_.io.size(); ++i) {
      if (e_.io[i].is_input) continue;
      const Live& l = live_[io_ids_[i]];
      if (!l.ready) throw Error("internal: output '" + e_.io[i].name + "' was not computed");
      size_t bytes = static_cast<size_t>(volume(l.shape)) * dtype_size(l.dtype);
      void* dst = sink.output_memory(i, l.shape, bytes);
      if (bytes && dst != l.data) std::memmove(dst, l.data, bytes);
    }
  }

 private:
  const EngineData& e_;
  const ir::Graph& g_;
  const ShapeAnalysis& pre_;
  const std::vector<int>& io_ids_;
  cpu::ThreadPool* pool_;
  std::vector<Live> live_;

  void set_borrowed(int id, DataType dt, const Dims& shape, const void* data) {
    Live& l = live_[id];
    l.ready = true;
    l.dtype = dt;
    l.shape = shape;
    l.data = data;
  }

  void run_node(const ir::Node& n) {
    // Inference sees every input's actual shape and contents, so shape parameters computed by earlier
    // nodes (of any size) make this node's output shapes exact.
    std::vector<HostTensor> views(n.inputs.size());
    std::vector<ir::TensorInfo> infos(n.inputs.size());
    cpu::KernelContext ctx{n, {}, {}, pool_};
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const ir::Value* in = n.inputs[i];
      cpu::TensorRef ref;
      if (!in) {
        infos[i].present = false;
      } else {
        const Live& l = live_[in->id];
        if (!l.ready) throw Error("layer '" + n.name + "': input '" + in->name + "' is used before it is produced");
        views[i] = HostTensor::wrap(l.dtype, l.shape, nullptr, l.data);
        infos[i] = ir::TensorInfo{true, l.dtype, l.shape, &views[i]};
        ref = cpu::TensorRef{true, l.dtype, l.shape, const_cast<void*>(l.data)};
      }
      ctx.in.push_back(ref);
    }
    auto outs = ir::infer_node(n, infos);
    bool sized_by_kernel = ir::has_data_dependent_shape(n.op);
    std::vector<HostTensor> mem(outs.size());
    for (size_t i = 0; i < outs.size(); ++i) {
      if (dims_known(outs[i].shape)) mem[i] = HostTensor(outs[i].dtype, outs[i].shape);
      else if (!sized_by_kernel)
        throw Error("layer '" + n.name + "' (" + n.op + "): output '" + n.outputs[i]->name + "' has shape " +
                    dims_str(outs[i].shape) + " even with every input known");
      ctx.out.push_back(cpu::TensorRef{true, outs[i].dtype, outs[i].shape, mem[i].mutable_raw()});
    }
    ctx.allocate_output = [&](size_t i, const Dims& shape) {
      mem.at(i) = HostTensor(outs[i].dtype, shape);
      return mem[i].mutable_raw();
    };
    cpu::KernelFn fn = cpu::find_kernel(n.op);
    if (!fn) throw Error("layer '" + n.name + "': no CPU kernel for op '" + n.op + "'");
    fn(ctx);
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!dims_known(ctx.out[i].shape) || mem[i].empty())
        throw Error("layer '" + n.name + "' (" + n.op + "): the kernel did not size output " + std::to_string(i));
      Live& l = live_[n.outputs[i]->id];
      l.ready = true;
      l.dtype = ctx.out[i].dtype;
      l.shape = ctx.out[i].shape;
      l.owned = std::move(mem[i]);
      l.data = l.owned.raw();
    }
  }

  // Frees what this run computed once nothing later reads it (peak memory stays near the static plan's).
  void release_inputs(const ir::Node& n) {
    for (auto* in : n.inputs) {
      if (!in) continue;
      Live& l = live_[in->id];
      if (--l.uses_left == 0 && !l.owned.empty()) {
        l.owned = HostTensor();
        l.data = nullptr;
        l.ready = false;
      }
    }
  }
};

}  // namespace

void run_dynamic(const EngineData& engine, const ShapeAnalysis& pre, const std::vector<int>& io_value_ids,
                 const std::vector<void*>& io_ptrs, cpu::ThreadPool* pool, OutputSink& sink) {
  Runner r(engine, pre, io_value_ids, io_ptrs, pool);
  r.run_all();
  r.deliver(sink);
}

}  // namespace kiln
