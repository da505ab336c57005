// CUDA kernel for FusedPointwise: the node's program (ir/pointwise_program.h) becomes CUDA C++
// (nvrtc/pointwise_codegen.h), compiled with NVRTC on first use and cached for the process
// (nvrtc/nvrtc_module.h). Each context keeps, per node, the kernel and launch geometry of the last input
// shapes, so a steady-state run is one cudaLaunchKernel.
//
// Specialization: an input whose shape is the output's is read at the flat index, a one-element input
// once per thread, any other (broadcast) input through the collapsed dims of the iteration space and its
// strides. With no broadcast input and every pointer aligned, each thread handles 4 elements with vector
// loads and stores.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/nvrtc/nvrtc_module.h"
#include "backends/cuda/nvrtc/pointwise_codegen.h"
#include "ir/pointwise_program.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
const char* kEntry = "kiln_fused_pointwise";

struct FusedState {
  bool ready = false;
  std::vector<Dims> in_shapes;
  std::vector<DataType> in_dtypes;
  Dims out_shape;
  PointwiseSpec spec;
  std::vector<int64_t> geo;
  cudaKernel_t kernel = nullptr;
};

// Plans the launch for the current shapes: input kinds, collapsed geometry, the kernel.
void plan(KernelContext& ctx, FusedState& st) {
  st.ready = false;
  const TensorRef& y = ctx.out[0];
  PointwiseSpec spec;
  std::vector<Dims> shapes;
  try {
    spec.program = ir::pw::Program::from_attrs(ctx.attrs());
    for (size_t i = 0; i < ctx.in.size(); ++i) {
      spec.input_dtypes.push_back(ctx.input(i).dtype);
      shapes.push_back(ctx.in[i].shape);
    }
    plan_layout(spec, shapes, y.shape, &st.geo);
  } catch (const Error& e) {
    ctx.fail(e.what());
  }
  std::string source;
  try {
    source = pointwise_source(spec, kEntry);
  } catch (const Error& e) {
    ctx.fail(e.what());
  }
  try {
    st.kernel = nvrtc::get_kernel(source, kEntry);
  } catch (const Error& e) {
    ctx.fail(std::string("generating the fused kernel failed: ") + e.what());
  }
  st.spec = std::move(spec);
  st.in_shapes.clear();
  st.in_dtypes.clear();
  for (const TensorRef& t : ctx.in) {
    st.in_shapes.push_back(t.shape);
    st.in_dtypes.push_back(t.dtype);
  }
  st.out_shape = y.shape;
  st.ready = true;
}

bool same_inputs(const KernelContext& ctx, const FusedState& st) {
  if (!st.ready || st.in_shapes.size() != ctx.in.size() || st.out_shape != ctx.out[0].shape) return false;
  for (size_t i = 0; i < ctx.in.size(); ++i)
    if (st.in_shapes[i] != ctx.in[i].shape || st.in_dtypes[i] != ctx.in[i].dtype) return false;
  return true;
}

bool aligned(const void* p, int bytes) { return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes) == 0; }

bool supports_fused_pointwise(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  try {
    std::vector<DataType> dts;
    for (const ir::TensorInfo& t : in) {
      if (!t.present) return false;
      dts.push_back(t.dtype);
    }
    ir::pw::validate(ir::pw::Program::from_attrs(node.attrs), dts);
    return in.size() <= 64;
  } catch (const Error&) {
    return false;
  }
}

void fused_pointwise_kernel(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  const int64_t n = y.numel();
  if (n <= 0) return;
  FusedState& st = node_state<FusedState>(ctx);
  if (!same_inputs(ctx, st)) plan(ctx, st);
  const PointwiseSpec& spec = st.spec;

  // Vector path: no strided input, every flat input and the output aligned to its 4-element bundle.
  bool vec = spec.num_strided() == 0 && n >= 4 && aligned(y.data, PointwiseSpec::vec_alignment(y.dtype));
  for (size_t i = 0; i < ctx.in.size() && vec; ++i)
    if (spec.kinds[i] == InputKind::kFlat) vec = aligned(ctx.in[i].data, PointwiseSpec::vec_alignment(ctx.in[i].dtype));

  std::vector<void*> ptrs;
  for (const TensorRef& t : ctx.in) ptrs.push_back(t.data);
  void* out = y.data;
  long long count = static_cast<long long>(n);
  int vec_flag = vec ? 1 : 0;
  std::vector<void*> args;
  for (void*& p : ptrs) args.push_back(&p);
  args.push_back(&out);
  args.push_back(&count);
  args.push_back(&vec_flag);
  std::vector<int64_t> geo = st.geo;
  if (!geo.empty()) args.push_back(geo.data());
  const unsigned blocks = grid_for(vec ? (n + 3) / 4 : n, kThreads);
  KILN_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(st.kernel), dim3(blocks), dim3(kThreads), args.data(), 0,
                                   ctx.stream()));
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("FusedPointwise", &fused_pointwise_kernel, &supports_fused_pointwise);

}  // namespace kiln::cuda
