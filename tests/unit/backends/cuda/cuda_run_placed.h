// Runs one op's registered CUDA kernel with each input and the output placed a chosen number of elements
// past a 256-byte aligned device address (cudaMalloc's), so tests can steer kernels off their 16-byte vector
// paths and compare the paths bit for bit. The output buffer is filled with a marker byte first, with a
// guard after the view: a byte outside the output view that loses the marker fails the run.
#pragma once
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"

namespace kiln::cudatest {

// Runs `op` on `inputs` (input i at in_offsets[i] elements, missing entries 0; the output at out_offset) and
// stores its only output in *out. host_copies: give the kernel host copies of the inputs as well.
inline ::testing::AssertionResult run_placed(const std::string& op, const std::vector<HostTensor>& inputs,
                                             const std::function<void(ir::Attrs&)>& attrs,
                                             const std::vector<int64_t>& in_offsets, int64_t out_offset,
                                             HostTensor* out, bool host_copies = true) {
  constexpr unsigned char kMarker = 0xA5;
  constexpr size_t kGuard = 256;
  try {
    ir::Graph g;
    std::vector<ir::Value*> vals;
    std::vector<ir::TensorInfo> infos(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      vals.push_back(g.add_input("in" + std::to_string(i), inputs[i].dtype(), inputs[i].shape()));
      infos[i].dtype = inputs[i].dtype();
      infos[i].shape = inputs[i].shape();
      infos[i].value = &inputs[i];
    }
    ir::Node* node = g.add_node(op, "node", vals, 1);
    if (attrs) attrs(node->attrs);
    const ir::TensorInfo o = ir::infer_node(*node, infos).at(0);
    if (!dims_known(o.shape)) return ::testing::AssertionFailure() << "output shape " << dims_str(o.shape) << " unknown";
    if (!cuda::supports(*node, infos)) return ::testing::AssertionFailure() << "cuda::supports() says no";

    cudaStream_t s = test_stream();
    cuda::Resources res;
    res.stream = s;
    cuda::KernelContext ctx{*node, {}, {}, res};
    std::vector<cuda::DeviceBuffer> dev_in;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const size_t off = (i < in_offsets.size() ? in_offsets[i] : 0) * dtype_size(inputs[i].dtype());
      dev_in.emplace_back(inputs[i].nbytes() + off + 1);
      char* p = static_cast<char*>(dev_in.back().get()) + off;
      if (inputs[i].nbytes() && cudaMemcpy(p, inputs[i].raw(), inputs[i].nbytes(), cudaMemcpyHostToDevice) != cudaSuccess)
        return ::testing::AssertionFailure() << "cudaMemcpy of input " << i << " failed";
      ctx.in.push_back(cuda::TensorRef{true, inputs[i].dtype(), inputs[i].shape(), p, host_copies ? inputs[i].raw() : nullptr});
    }
    HostTensor result(o.dtype, o.shape);
    const size_t first = out_offset * dtype_size(o.dtype), last = first + result.nbytes();
    cuda::DeviceBuffer dout(last + kGuard);
    if (cudaMemset(dout.get(), kMarker, dout.size()) != cudaSuccess) return ::testing::AssertionFailure() << "cudaMemset failed";
    ctx.out.push_back(cuda::TensorRef{true, o.dtype, o.shape, static_cast<char*>(dout.get()) + first, nullptr});

    cuda::KernelFn fn = cuda::find_kernel(op);
    if (!fn) return ::testing::AssertionFailure() << "no CUDA kernel for " << op;
    fn(ctx);
    const cudaError_t e = cudaStreamSynchronize(s);
    if (e != cudaSuccess) return ::testing::AssertionFailure() << "kernel failed: " << cudaGetErrorString(e);
    std::vector<unsigned char> got(dout.size());
    if (cudaMemcpy(got.data(), dout.get(), got.size(), cudaMemcpyDeviceToHost) != cudaSuccess)
      return ::testing::AssertionFailure() << "cudaMemcpy of the output failed";
    for (size_t i = 0; i < got.size(); ++i)
      if ((i < first || i >= last) && got[i] != kMarker)
        return ::testing::AssertionFailure() << "byte " << i << " outside the output view [" << first << ", " << last
                                             << ") was written";
    if (result.nbytes()) std::memcpy(result.mutable_raw(), got.data() + first, result.nbytes());
    *out = result;
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw: " << e.what();
  }
}

}  // namespace kiln::cudatest

#endif  // KILN_WITH_CUDA
