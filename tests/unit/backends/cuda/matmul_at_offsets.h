// A float16 MatrixMultiply node, a [M, K] by weights [N, K] (op_b TRANSPOSE), run straight through the CUDA
// kernel registry with a at an aligned address or some bytes past it: the tests of Kiln's GEMM kernels (small-M,
// split-K) that check a run on misaligned buffers takes cuBLASLt's path and keeps the node's choice.
#pragma once
#ifdef KILN_WITH_CUDA
#include <cstdint>
#include <utility>

#include "backends/cuda/cuda_op_harness.h"

namespace kiln::cudatest {

class MatmulAtOffsets {
 public:
  MatmulAtOffsets(Dims a_shape, Dims w_shape)
      : a_shape_(std::move(a_shape)), w_shape_(std::move(w_shape)), node_(make_node(graph_, a_shape_, w_shape_)),
        y_shape_(ir::infer_node(*node_, {ir::TensorInfo{true, kDt, a_shape_, nullptr},
                                         ir::TensorInfo{true, kDt, w_shape_, nullptr}})[0].shape),
        a_(randf(a_shape_, kDt, -1.0, 1.0)), w_(randf(w_shape_, kDt, -0.05, 0.05)),
        ref_(cpu_reference("MatrixMultiply", node_->attrs, {a_, w_}).at(0)) {
    res_.stream = test_stream();
    shared_library_handles().attach(res_);
  }

  // Runs the node (one context and node state across calls, as a context's runs) with a `a_offset` bytes past
  // an aligned address; *chosen: how much `chosen_counter` (a kernel's count of nodes that took it) rose.
  ::testing::AssertionResult run(size_t a_offset, int64_t (*chosen_counter)(), int64_t* chosen) {
    uint8_t* a_at = static_cast<uint8_t*>(a_buf_.get()) + a_offset;
    if (cudaMemcpy(a_at, a_.raw(), a_.nbytes(), cudaMemcpyHostToDevice) != cudaSuccess ||
        cudaMemcpy(w_buf_.get(), w_.raw(), w_.nbytes(), cudaMemcpyHostToDevice) != cudaSuccess ||
        cudaMemset(y_buf_.get(), 0xFF, y_buf_.size()) != cudaSuccess)
      return ::testing::AssertionFailure() << "copies failed";
    ctx_.in = {cuda::TensorRef{true, kDt, a_shape_, a_at, nullptr}, cuda::TensorRef{true, kDt, w_shape_, w_buf_.get(), nullptr}};
    ctx_.out = {cuda::TensorRef{true, kDt, y_shape_, y_buf_.get(), nullptr}};
    const int64_t before = chosen_counter();
    try {
      cuda::find_kernel("MatrixMultiply")(ctx_);
    } catch (const std::exception& e) {
      return ::testing::AssertionFailure() << "threw: " << e.what();
    }
    *chosen = chosen_counter() - before;
    if (cudaStreamSynchronize(res_.stream) != cudaSuccess) return ::testing::AssertionFailure() << "the GEMM failed";
    HostTensor got(kDt, y_shape_);
    if (cudaMemcpy(got.mutable_raw(), y_buf_.get(), got.nbytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
      return ::testing::AssertionFailure() << "copy back failed";
    return compare(got, ref_, default_tol(kDt), false, 1e-3);
  }

 private:
  static constexpr DataType kDt = DataType::kHALF;
  static ir::Node* make_node(ir::Graph& g, const Dims& a_shape, const Dims& w_shape) {
    ir::Node* n = g.add_node("MatrixMultiply", "m", {g.add_input("a", kDt, a_shape), g.add_input("w", kDt, w_shape)}, 1);
    n->attrs.set("op_b", int64_t{1});
    return n;
  }
  // In this order: each is made from those before it.
  Dims a_shape_, w_shape_;
  ir::Graph graph_;
  ir::Node* node_;
  Dims y_shape_;
  HostTensor a_, w_, ref_;
  cuda::Resources res_;
  cuda::KernelContext ctx_{*node_, {}, {}, res_};
  // a gets 16 bytes of room for its offsets; w and y are aligned.
  cuda::DeviceBuffer a_buf_{a_.nbytes() + 16}, w_buf_{w_.nbytes()}, y_buf_{static_cast<size_t>(volume(y_shape_)) * 2};
};

}  // namespace kiln::cudatest
#endif  // KILN_WITH_CUDA
