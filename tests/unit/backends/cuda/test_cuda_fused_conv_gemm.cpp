// The fused forms of Convolution (cuDNN + Kiln's epilogue kernel) and MatrixMultiply (cuBLASLt epilogues +
// Kiln's epilogue kernel) against the CPU kernels: y = act(op + bias + residual) for every activation the
// passes fuse, with and without bias and residual, float32 / float16 / bfloat16, batched and broadcast GEMMs,
// odd sizes (unaligned rows). Outputs are poisoned before each run (so a z = y read with alpha2 = 0 would
// show up as NaN), and two runs must agree bit for bit.
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/library_handles.h"

#include <cmath>
#include <cstdlib>

namespace kiln {
namespace {

using namespace cudatest;

// Tolerances relative to max |reference|: the low-precision output may be rounded once before the epilogue.
double fused_tol(DataType dt) {
  switch (dt) {
    case DataType::kHALF: return 4e-3;
    case DataType::kBF16: return 2.5e-2;
    default: return 2e-5;
  }
}

// cuBLASLt computes the tanh-GELU epilogue (ActivationType 13) with its own fast tanh, about 1e-4 relative
// from the CPU's tanhf: float32 results with that epilogue are held to 2e-4 (seen at 2.2e-5 on an H200 when
// the timed algorithm choice picked a GELU_BIAS kernel; half and bfloat16 tolerances already cover it).
double matmul_tol(DataType dt, int64_t act) { return dt == DataType::kFLOAT && act == 13 ? 2e-4 : fused_tol(dt); }

// check_op with cuBLASLt/cuDNN handles and a workspace in the kernel's Resources (kept for both runs, as an
// execution context keeps them). *got, when given, receives the GPU's output.
::testing::AssertionResult check_lib_op(const std::string& op, const std::vector<HostTensor>& inputs,
                                        const std::function<void(ir::Attrs&)>& attrs, DataType dt, double tol = -1,
                                        HostTensor* got = nullptr) {
  try {
    ir::Graph g;
    std::vector<ir::Value*> vals;
    std::vector<ir::TensorInfo> infos(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].empty()) {
        vals.push_back(nullptr);
        infos[i].present = false;
        continue;
      }
      vals.push_back(g.add_input("in" + std::to_string(i), inputs[i].dtype(), inputs[i].shape()));
      infos[i] = ir::TensorInfo{true, inputs[i].dtype(), inputs[i].shape(), &inputs[i]};
    }
    ir::Node* node = g.add_node(op, "node", vals, 1);
    attrs(node->attrs);
    const std::vector<ir::TensorInfo> outs = ir::infer_node(*node, infos);
    node->outputs[0]->shape = outs[0].shape;
    node->outputs[0]->dtype = outs[0].dtype;
    if (!cuda::supports(*node, infos)) return ::testing::AssertionFailure() << "cuda::supports() says no";
    cuda::KernelFn fn = cuda::find_kernel(op);
    if (!fn) return ::testing::AssertionFailure() << "no CUDA kernel for " << op;

    const HostTensor ref = cpu_reference(op, node->attrs, inputs).at(0);

    cudaStream_t s = test_stream();
    cuda::Resources res;
    res.stream = s;
    shared_library_handles().attach(res);
    cuda::KernelContext ctx{*node, {}, {}, res};
    std::vector<cuda::DeviceBuffer> dev_in;
    for (const HostTensor& t : inputs) {
      cuda::TensorRef r;
      if (!t.empty()) {
        dev_in.emplace_back(std::max<size_t>(t.nbytes(), 1));
        if (cudaMemcpy(dev_in.back().get(), t.raw(), t.nbytes(), cudaMemcpyHostToDevice) != cudaSuccess)
          return ::testing::AssertionFailure() << "cudaMemcpy of an input failed";
        r = cuda::TensorRef{true, t.dtype(), t.shape(), dev_in.back().get(), t.raw()};
      }
      ctx.in.push_back(r);
    }
    cuda::DeviceBuffer dev_out(std::max<size_t>(static_cast<size_t>(volume(outs[0].shape)) * dtype_size(outs[0].dtype), 1));
    ctx.out.push_back(cuda::TensorRef{true, outs[0].dtype, outs[0].shape, dev_out.get(), nullptr});
    std::vector<HostTensor> runs;
    for (int poison : {0xFF, 0x7B}) {
      if (cudaMemsetAsync(dev_out.get(), poison, dev_out.size(), s) != cudaSuccess)
        return ::testing::AssertionFailure() << "cudaMemset failed";
      fn(ctx);
      const cudaError_t e = cudaStreamSynchronize(s);
      if (e != cudaSuccess) return ::testing::AssertionFailure() << "kernel failed: " << cudaGetErrorString(e);
      HostTensor h(outs[0].dtype, outs[0].shape);
      if (cudaMemcpy(h.mutable_raw(), dev_out.get(), h.nbytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
        return ::testing::AssertionFailure() << "cudaMemcpy of the output failed";
      runs.push_back(h);
    }
    if (!runs[0].same_bytes(runs[1])) return ::testing::AssertionFailure() << "the two runs differ (unwritten elements?)";
    if (got) *got = runs[0];
    for (const HostTensor& r : runs) {
      ::testing::AssertionResult c = compare(r, ref, tol >= 0 ? tol : fused_tol(dt), false);
      if (!c) return c;
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw: " << e.what();
  }
}

struct Act {
  int64_t type;
  bool set_ab;
  double alpha, beta;
};
const std::vector<Act>& acts() {
  static const std::vector<Act> a = {{-1, false, 0, 0}, {0, false, 0, 0},   {8, true, 0, 6},   {1, false, 0, 0},
                                     {2, false, 0, 0},  {3, true, 0.1, 0},  {65, false, 0, 0}, {64, false, 0, 0},
                                     {12, false, 0, 0}, {13, false, 0, 0}};
  return a;
}

void set_act(ir::Attrs& a, const Act& act) {
  if (act.type < 0) return;
  a.set("activation", act.type);
  if (act.set_ab) {
    a.set("act_alpha", act.alpha);
    a.set("act_beta", act.beta);
  }
}

struct ConvCase {
  Dims x, w;
  int64_t groups, stride;
};

TEST(CudaFusedConvolution, EveryActivationBiasResidualDtype) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<ConvCase> cases = {
      {{2, 8, 9, 7}, {16, 8, 3, 3}, 1, 1},  // 2-D
      {{1, 8, 10, 10}, {8, 4, 3, 3}, 2, 2}, // groups, stride
      {{2, 4, 13}, {6, 4, 3}, 1, 1},        // 1-D
      {{1, 4, 5, 6, 5}, {8, 4, 3, 3, 3}, 1, 1},  // 3-D
  };
  for (DataType dt : float_types())
    for (const ConvCase& c : cases)
      for (const Act& act : acts())
        for (int parts = 0; parts < 4; ++parts) {
          const bool bias = parts & 1, residual = parts & 2;
          const size_t nsp = c.x.size() - 2;
          auto attrs = [&](ir::Attrs& a) {
            a.set("pre_padding", std::vector<int64_t>(nsp, 1));
            a.set("post_padding", std::vector<int64_t>(nsp, 1));
            a.set("stride", std::vector<int64_t>(nsp, c.stride));
            a.set("groups", c.groups);
            set_act(a, act);
          };
          // The output shape, for the residual.
          Dims y = {c.x[0], c.w[0]};
          for (size_t i = 0; i < nsp; ++i) y.push_back((c.x[2 + i] + 2 - 3) / c.stride + 1);
          std::vector<HostTensor> in = {randf(c.x, dt), randf(c.w, dt, 0.05, 0.3), bias ? randf({c.w[0]}, dt) : HostTensor(),
                                        residual ? randf(y, dt) : HostTensor()};
          if (!residual) in.pop_back();
          EXPECT_TRUE(check_lib_op("Convolution", in, attrs, dt))
              << dtype_name(dt) << " x " << dims_str(c.x) << " w " << dims_str(c.w) << " act " << act.type << " bias "
              << bias << " residual " << residual;
        }
}

TEST(CudaFusedConvolution, SupportsAcceptsFusedForms) {
  for (DataType dt : float_types()) {
    ir::Graph g;
    auto* x = g.add_input("x", dt, {1, 4, 8, 8});
    auto* w = g.add_input("w", dt, {8, 4, 3, 3});
    auto* b = g.add_input("b", dt, {8});
    auto* r = g.add_input("r", dt, {1, 8, 8, 8});
    ir::Node* n = g.add_node("Convolution", "c", {x, w, b, r}, 1);
    n->attrs.set("pre_padding", std::vector<int64_t>{1, 1});
    n->attrs.set("post_padding", std::vector<int64_t>{1, 1});
    n->attrs.set("activation", int64_t{12});
    std::vector<ir::TensorInfo> in;
    for (auto* v : n->inputs) in.push_back(ir::TensorInfo{true, v->dtype, v->shape, nullptr});
    EXPECT_TRUE(cuda::supports(*n, in)) << dtype_name(dt);
    n->attrs.set("activation", int64_t{99});
    EXPECT_FALSE(cuda::supports(*n, in)) << "an unknown activation";
  }
}

struct MmCase {
  Dims a, b;
  int64_t op_b;
};

TEST(CudaFusedMatrixMultiply, BiasResidualActivationBatchedAndBroadcast) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<MmCase> cases = {
      {{16, 32}, {32, 24}, 0},             // one GEMM
      {{5, 7}, {7, 5}, 0},                 // odd sizes: rows not 16-byte aligned
      {{2, 3, 8, 16}, {16, 8}, 0},         // A's batch folded into M
      {{2, 3, 8, 16}, {2, 3, 16, 12}, 0},  // strided batch
      {{2, 1, 4, 8}, {1, 3, 8, 6}, 0},     // broadcast: strided batch over the output
      {{3, 1, 4, 8}, {2, 8, 6}, 0},        // general broadcast: one call per batch
      {{6, 16}, {10, 16}, 1},              // transposed B
      {{16}, {2, 16, 8}, 0},               // vector A
  };
  for (DataType dt : float_types())
    for (const MmCase& c : cases)
      for (const Act& act : acts())
        for (int parts = 0; parts < 4; ++parts) {
          const bool bias = parts & 1, residual = parts & 2;
          auto attrs = [&](ir::Attrs& a) {
            a.set("op_b", c.op_b);
            set_act(a, act);
          };
          // The output shape, from the CPU op.
          ir::Graph g;
          ir::Node* n = g.add_node("MatrixMultiply", "m", {g.add_input("a", dt, c.a), g.add_input("b", dt, c.b)}, 1);
          n->attrs.set("op_b", c.op_b);
          const Dims y = ir::infer_node(*n, {ir::TensorInfo{true, dt, c.a, nullptr}, ir::TensorInfo{true, dt, c.b, nullptr}})[0].shape;
          std::vector<HostTensor> in = {randf(c.a, dt, 0.1, 1.0), randf(c.b, dt, 0.1, 1.0),
                                        bias ? randf({y.back()}, dt) : HostTensor(), residual ? randf(y, dt) : HostTensor()};
          if (!residual) in.pop_back();
          if (!residual && !bias) in.pop_back();
          EXPECT_TRUE(check_lib_op("MatrixMultiply", in, attrs, dt, matmul_tol(dt, act.type)))
              << dtype_name(dt) << " " << dims_str(c.a) << " x " << dims_str(c.b) << " act " << act.type << " bias "
              << bias << " residual " << residual;
        }
}

// The spacing of float16 values around |v| (its ulp).
double float16_ulp(double v) {
  v = std::fabs(v);
  if (v < 6.103515625e-05) return 5.960464477539063e-08;  // subnormals
  return std::ldexp(1.0, static_cast<int>(std::floor(std::log2(v))) - 10);
}

// float16 erf-GELU GEMMs take cuBLASLt's tanh-form GELU epilogue (cublaslt/matmul_kernel.cpp): every output
// must stay within the gap of the two forms (4.8e-4), plus cuBLASLt's own fast tanh (2e-4: see matmul_tol),
// plus one float16 ulp of the exact value; with KILN_EXACT_GELU=1, within the unfused path's own rounding (the
// GEMM's output rounded once to float16, then the GELU's). Pre-activations spread over about +-5, where the
// two forms differ most.
TEST(CudaFusedMatrixMultiply, HalfErfGeluWithinTheTanhFormsGap) {
  KILN_REQUIRE_CUDA_DEVICE();
  const DataType dt = DataType::kHALF;
  std::vector<HostTensor> in = {randf({96, 256}, dt, 0.1, 1.0), randf({256, 160}, dt, 0.05, 0.5), randf({160}, dt, 0.0, 1.0)};
  auto gelu = [](ir::Attrs& a) { a.set("activation", int64_t{12}); };
  ir::Attrs gelu_attrs;
  gelu(gelu_attrs);
  const HostTensor exact = cpu_reference("MatrixMultiply", gelu_attrs, in).at(0);
  const HostTensor pre = cpu_reference("MatrixMultiply", ir::Attrs{}, in).at(0);
  double spread = 0;
  for (int64_t i = 0; i < pre.numel(); ++i) spread = std::max(spread, std::fabs(pre.get_f64(i)));
  ASSERT_GT(spread, 3.0) << "the pre-activations must reach the range where the two GELU forms differ most";
  for (bool exact_env : {false, true}) {
    if (exact_env) setenv("KILN_EXACT_GELU", "1", 1);
    HostTensor got;
    const ::testing::AssertionResult ran = check_lib_op("MatrixMultiply", in, gelu, dt, fused_tol(dt), &got);
    if (exact_env) unsetenv("KILN_EXACT_GELU");
    ASSERT_TRUE(ran) << "KILN_EXACT_GELU=" << exact_env;
    int bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < exact.numel(); ++i) {
      const double r = exact.get_f64(i), x = pre.get_f64(i), y = got.get_f64(i), err = std::fabs(y - r);
      // The output's rounding: half an ulp where it lands (above a power of two the ulp doubles: 1.99998
      // rounds to 2.0019).
      const double y_ulp = float16_ulp(std::max(std::fabs(r), std::fabs(y)));
      // Exact path: x rounded to float16 (half an ulp of x, times GELU's slope, at most 1.13), then y rounded;
      // 2e-5 for float32 sums in another order (which can also move x's rounding).
      const double bound = exact_env ? 0.6 * float16_ulp(x) * 1.13 + 0.6 * y_ulp + 2e-5 : 4.8e-4 + 2e-4 + y_ulp + 2e-5;
      worst = std::max(worst, err);
      if (err > bound && bad++ < 5)
        ADD_FAILURE() << "KILN_EXACT_GELU=" << exact_env << " element " << i << ": x " << x << " got " << got.get_f64(i)
                      << " exact " << r << " (error " << err << " > " << bound << ")";
    }
    EXPECT_EQ(bad, 0) << "KILN_EXACT_GELU=" << exact_env << ": worst error " << worst;
  }
}

TEST(CudaFusedEpilogueKernel, SupportsAcceptsFusedMatrixMultiply) {
  for (DataType dt : float_types()) {
    ir::Graph g;
    ir::Node* n = g.add_node("MatrixMultiply", "m",
                             {g.add_input("a", dt, {4, 8}), g.add_input("b", dt, {8, 5}), g.add_input("bias", dt, {5}),
                              g.add_input("r", dt, {4, 5})},
                             1);
    n->attrs.set("activation", int64_t{13});
    std::vector<ir::TensorInfo> in;
    for (auto* v : n->inputs) in.push_back(ir::TensorInfo{true, v->dtype, v->shape, nullptr});
    EXPECT_TRUE(cuda::supports(*n, in)) << dtype_name(dt);
    in[2].dtype = dt == DataType::kFLOAT ? DataType::kHALF : DataType::kFLOAT;
    EXPECT_FALSE(cuda::supports(*n, in)) << "a bias of another dtype";
  }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
