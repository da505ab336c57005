// Convolution and Deconvolution on the GPU through cuDNN 9 (NCHW, 1-D to 3-D, groups, dilation),
// float32 (TF32 only when the builder allowed it), float16 and bfloat16 with float32 accumulation.
// Deconvolution is cuDNN's backward-data of the forward convolution whose filter has the same layout.
// The algorithm is chosen once per shape by timing cuDNN's candidates on the context's first run
// (cudnnFind*, within the workspace), then reused, including inside captured CUDA graphs.
// cuDNN pads symmetrically: asymmetric padding (some SAME_* and ROUND_UP cases) runs on the CPU.
//
// Convolution's fused epilogue (ir/OPS.md: y = act(conv(x, w) + bias + residual)): with a bias and no
// activation or ReLU, one cudnnConvolutionBiasActivationForward call computes
// y = act(alpha1 * conv(x) + alpha2 * z + bias) with z = the residual and alpha2 = 1 (without a residual,
// z = y and alpha2 = 0, as cuDNN requires a z). cuDNN allows only RELU and IDENTITY there, IDENTITY only with
// CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM (used when cudnnFind timed it close to the best algorithm);
// the bias descriptor has the data type of y (FLOAT, and HALF / BFLOAT16 for the pseudo-half configurations
// with float compute). When cuDNN answers NOT_SUPPORTED (or BAD_PARAM) for a configuration, and for every
// other activation, the convolution runs alone and one Kiln kernel (kernels/epilogue.cu) applies
// bias + residual + activation in place.
#include <algorithm>
#include <array>

#include "backends/cuda/kernel.h"
#include "backends/cuda/kernels/epilogue.h"
#include "backends/cuda/library_checks.h"

namespace kiln::cuda {

namespace {

struct Geometry {
  int nsp = 0;
  std::vector<int> pad, stride, dilation;
  bool symmetric = true;
};

std::vector<int64_t> spatial(const ir::Attrs& a, const char* key, int nsp, int64_t dflt) {
  std::vector<int64_t> v = a.has(key) ? a.ints(key) : std::vector<int64_t>{};
  if (v.empty()) v.assign(nsp, dflt);
  if (static_cast<int>(v.size()) == 1 && nsp > 1) v.assign(nsp, v[0]);
  return v;
}

// Padding as the CPU kernel computes it, from the actual input/output spatial sizes.
Geometry geometry(const ir::Node& n, const Dims& x, const Dims& w, const Dims& y, bool deconv) {
  Geometry g;
  g.nsp = static_cast<int>(x.size()) - 2;
  auto stride = spatial(n.attrs, "stride", g.nsp, 1), dil = spatial(n.attrs, "dilation", g.nsp, 1);
  auto pb = spatial(n.attrs, "pre_padding", g.nsp, 0), pe = spatial(n.attrs, "post_padding", g.nsp, 0);
  int64_t mode = n.attrs.i("padding_mode", 0);
  for (int i = 0; i < g.nsp; ++i) {
    int64_t in = x[2 + i], out = y[2 + i], s = stride[i];
    int64_t eff = dil[i] * (w[2 + i] - 1) + 1;
    if (mode == 2 || mode == 3) {
      int64_t total = std::max<int64_t>(deconv ? eff - s : (out - 1) * s + eff - in, 0);
      int64_t small = total / 2, large = total - small;
      pb[i] = mode == 2 ? small : large;
      pe[i] = mode == 2 ? large : small;
    } else if (mode == 1 && !deconv) {
      pe[i] = std::max(pe[i], (out - 1) * s + eff - in - pb[i]);
    }
    if (pb[i] != pe[i]) g.symmetric = false;
    g.pad.push_back(static_cast<int>(pb[i]));
    g.stride.push_back(static_cast<int>(s));
    g.dilation.push_back(static_cast<int>(dil[i]));
  }
  return g;
}

cudnnDataType_t dnn_type(DataType t) {
  switch (t) {
    case DataType::kHALF: return CUDNN_DATA_HALF;
    case DataType::kBF16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
  }
}

// A channels-last (NHWC) shape as the NCHW dims cuDNN describes it by: [N, H, W, C] -> [N, C, H, W]; the
// weights' [K, kh, kw, C/g] likewise -> [K, C/g, kh, kw].
Dims nchw_view(const Dims& s) { return s.size() == 4 ? Dims{s[0], s[3], s[1], s[2]} : s; }

bool conv_supports_impl(const ir::Node& n, const std::vector<ir::TensorInfo>& in, bool deconv) {
  if (in.size() < 2 || !in[0].present || !in[1].present) return false;
  DataType t = in[0].dtype;
  if (t != DataType::kFLOAT && t != DataType::kHALF && t != DataType::kBF16) return false;
  if (in[1].dtype != t || (in.size() > 2 && in[2].present && in[2].dtype != t)) return false;
  if (!deconv) {  // the fused epilogue: residual of the output's dtype, an activation the epilogue kernel knows
    if (in.size() > 3 && in[3].present && in[3].dtype != t) return false;
    if (!fused_activation_supported(n.attrs.i("activation", -1))) return false;
  }
  size_t rank = in[0].shape.size();
  if (rank < 3 || rank > 5) return false;
  if (deconv && n.attrs.has("output_padding")) {
    for (int64_t p : n.attrs.ints("output_padding"))
      if (p != 0) return false;  // cuDNN's backward-data output size cannot carry output_padding
  }
  const bool cl = !deconv && n.attrs.i("channels_last", 0) != 0;
  if (cl && (rank != 4 || in[1].shape.size() != 4)) return false;  // channels-last: 2-D convolutions only
  if (!dims_known(in[0].shape) || !dims_known(in[1].shape)) return true;  // decided again with real shapes
  // The output shape is needed for SAME/ROUND_UP padding: take it from the node's inferred value when known.
  const Dims& y = n.outputs[0]->shape;
  if (!dims_known(y) || y.size() != rank) return true;
  if (cl) return geometry(n, nchw_view(in[0].shape), nchw_view(in[1].shape), nchw_view(y), false).symmetric;
  return geometry(n, in[0].shape, in[1].shape, y, deconv).symmetric;
}

bool conv_supports(const ir::Node& n, const std::vector<ir::TensorInfo>& in) { return conv_supports_impl(n, in, false); }
bool deconv_supports(const ir::Node& n, const std::vector<ir::TensorInfo>& in) { return conv_supports_impl(n, in, true); }

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  // cuDNN wants at least 4-D descriptors: 1-D convolutions get a unit height.
  // Channels-last memory with NCHW dims `s` (cuDNN's NHWC layout: its tensor-core kernels' native one).
  void set_nhwc(cudnnDataType_t t, const Dims& s) {
    KILN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NHWC, t, static_cast<int>(s[0]), static_cast<int>(s[1]),
                                                static_cast<int>(s[2]), static_cast<int>(s[3])));
  }
  void set(cudnnDataType_t t, const Dims& s) {
    std::vector<int> dims(s.begin(), s.end());
    if (dims.size() == 3) dims.insert(dims.begin() + 2, 1);
    std::vector<int> strides(dims.size(), 1);
    for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * dims[i + 1];
    KILN_CUDNN_CHECK(cudnnSetTensorNdDescriptor(d, t, static_cast<int>(dims.size()), dims.data(), strides.data()));
  }
};

struct ConvState {
  Dims x_shape, w_shape, y_shape;
  DataType dtype = DataType::kFLOAT;
  bool ready = false;
  TensorDesc x, y, bias;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t bwd_algo{};
  size_t workspace = 0;
  // cudnnConvolutionBiasActivationForward: used while `fused` (cleared when cuDNN refuses the configuration).
  bool fused = false;
  cudnnConvolutionFwdAlgo_t fused_algo{};
  size_t fused_workspace = 0;
  // The other algorithms cudnnFind timed, fastest first: tried in turn when cuDNN refuses to run the chosen
  // one with these descriptors (seen as BAD_PARAM at run time for an fp16 16x16/16 patch convolution).
  std::vector<std::pair<cudnnConvolutionFwdAlgo_t, size_t>> fallbacks;

  ConvState() {
    KILN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    KILN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    KILN_CUDNN_CHECK(cudnnCreateActivationDescriptor(&act));
  }
  ~ConvState() {
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyActivationDescriptor(act);
  }
};

constexpr int64_t kActRelu = 0;

// cuDNN's fused call can run this node: a bias, and ReLU or no activation.
bool cudnn_can_fuse(const KernelContext& ctx) {
  const int64_t a = ctx.attrs().i("activation", -1);
  return ctx.has_input(2) && (a == -1 || a == kActRelu);
}

// Not-supported (3xxx) and bad-parameter (2xxx) statuses: cuDNN refuses this configuration of the fused call.
bool refused(cudnnStatus_t s) {
  const int c = static_cast<int>(s) / 1000;
  return c == 2 || c == 3;
}

void setup(KernelContext& ctx, ConvState& st, bool deconv) {
  const TensorRef &x = ctx.input(0), &wt = ctx.input(1);
  const TensorRef& y = ctx.out[0];
  const bool cl = !deconv && ctx.attrs().i("channels_last", 0) != 0;
  const Dims xs = cl ? nchw_view(x.shape) : x.shape, ws = cl ? nchw_view(wt.shape) : wt.shape,
             ys = cl ? nchw_view(y.shape) : y.shape;
  Geometry g = geometry(ctx.node, xs, ws, ys, deconv);
  if (!g.symmetric) ctx.fail("cuDNN needs symmetric padding (the builder should have run this layer on the CPU)");
  cudnnDataType_t t = dnn_type(x.dtype);
  // The "input" and "output" of cuDNN's forward convolution: for Deconvolution, y and x swap roles.
  if (cl) {
    st.x.set_nhwc(t, xs);
    st.y.set_nhwc(t, ys);
    KILN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(st.w, t, CUDNN_TENSOR_NHWC, static_cast<int>(ws[0]),
                                                static_cast<int>(ws[1]), static_cast<int>(ws[2]), static_cast<int>(ws[3])));
  } else {
    st.x.set(t, x.shape);
    st.y.set(t, y.shape);
    std::vector<int> fdims(wt.shape.begin(), wt.shape.end());
    if (fdims.size() == 3) fdims.insert(fdims.begin() + 2, 1);
    KILN_CUDNN_CHECK(cudnnSetFilterNdDescriptor(st.w, t, CUDNN_TENSOR_NCHW, static_cast<int>(fdims.size()), fdims.data()));
  }
  std::vector<int> pad = g.pad, stride = g.stride, dil = g.dilation;
  if (g.nsp == 1) {
    pad.insert(pad.begin(), 0);
    stride.insert(stride.begin(), 1);
    dil.insert(dil.begin(), 1);
  }
  KILN_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(st.conv, static_cast<int>(pad.size()), pad.data(), stride.data(),
                                                   dil.data(), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  KILN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(st.conv, static_cast<int>(ctx.attrs().i("groups", 1))));
  // CUDNN_DEFAULT_MATH lets float32 use TF32 tensor cores; FMA math keeps full float32 products.
  cudnnMathType_t math = CUDNN_TENSOR_OP_MATH;
  if (x.dtype == DataType::kFLOAT) math = ctx.attrs().i("allow_tf32", 0) ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(st.conv, math));
  if (ctx.has_input(2)) {
    Dims bshape(ys.size(), 1);
    bshape[1] = ys[1];
    st.bias.set(t, bshape);
  }
  // Time the candidates on this context's own buffers (the output is scratch until written).
  constexpr int kMax = 8;
  int found = 0;
  if (!deconv) {
    std::array<cudnnConvolutionFwdAlgoPerf_t, kMax> perf{};
    KILN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(ctx.res.cudnn, st.x.d, x.data, st.w, wt.data, st.conv, st.y.d,
                                                            y.data, kMax, &found, perf.data(), ctx.res.workspace,
                                                            ctx.res.workspace_bytes));
    bool ok = false;
    float best_time = 0, precomp_time = -1;
    size_t precomp_memory = 0;
    st.fallbacks.clear();
    for (int i = 0; i < found; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ctx.res.workspace_bytes) continue;
      if (ok) st.fallbacks.emplace_back(perf[i].algo, perf[i].memory);
      if (!ok) {
        st.fwd_algo = perf[i].algo;
        st.workspace = perf[i].memory;
        best_time = perf[i].time;
        ok = true;
      }
      if (perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM && precomp_time < 0) {
        precomp_time = perf[i].time;
        precomp_memory = perf[i].memory;
      }
    }
    if (!ok) ctx.fail("cuDNN found no convolution algorithm for input " + dims_str(x.shape) + " within the workspace");
    // The fused call: ReLU with the fastest algorithm; IDENTITY only with IMPLICIT_PRECOMP_GEMM, taken when it
    // is about as fast (the fusion saves a pass over y for the bias and residual).
    st.fused = false;
    if (cudnn_can_fuse(ctx)) {
      const bool relu = ctx.attrs().i("activation", -1) == kActRelu;
      if (relu) {
        st.fused = true;
        st.fused_algo = st.fwd_algo;
        st.fused_workspace = st.workspace;
      } else if (precomp_time >= 0 && precomp_time <= best_time * 1.15f + 0.002f) {
        st.fused = true;
        st.fused_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
        st.fused_workspace = precomp_memory;
      }
      if (st.fused)
        KILN_CUDNN_CHECK(cudnnSetActivationDescriptor(
            st.act, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_PROPAGATE_NAN, 0.0));
    }
  } else {
    std::array<cudnnConvolutionBwdDataAlgoPerf_t, kMax> perf{};
    KILN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(ctx.res.cudnn, st.w, wt.data, st.x.d, x.data, st.conv,
                                                                 st.y.d, y.data, kMax, &found, perf.data(),
                                                                 ctx.res.workspace, ctx.res.workspace_bytes));
    bool ok = false;
    for (int i = 0; i < found && !ok; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ctx.res.workspace_bytes) {
        st.bwd_algo = perf[i].algo;
        st.workspace = perf[i].memory;
        ok = true;
      }
    if (!ok) ctx.fail("cuDNN found no deconvolution algorithm for input " + dims_str(x.shape) + " within the workspace");
  }
  st.x_shape = x.shape;
  st.w_shape = wt.shape;
  st.y_shape = y.shape;
  st.dtype = x.dtype;
  st.ready = true;
}

void run(KernelContext& ctx, bool deconv) {
  const TensorRef &x = ctx.input(0), &wt = ctx.input(1);
  TensorRef& y = ctx.out[0];
  if (y.numel() == 0) return;
  KILN_CUDNN_CHECK(cudnnSetStream(ctx.res.cudnn, ctx.stream()));
  auto& st = node_state<ConvState>(ctx);
  if (!st.ready || st.x_shape != x.shape || st.w_shape != wt.shape || st.y_shape != y.shape || st.dtype != x.dtype)
    setup(ctx, st, deconv);
  const float one = 1.f, zero = 0.f;
  if (deconv) {
    KILN_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.res.cudnn, &one, st.w, wt.data, st.x.d, x.data, st.conv,
                                                  st.bwd_algo, ctx.res.workspace, st.workspace, &zero, st.y.d, y.data));
    if (ctx.has_input(2))
      KILN_CUDNN_CHECK(cudnnAddTensor(ctx.res.cudnn, &one, st.bias.d, ctx.in[2].data, &one, st.y.d, y.data));
    return;
  }
  const void* residual = ctx.has_input(3) ? ctx.in[3].data : nullptr;
  if (st.fused) {
    // y = act(1 * conv(x) + alpha2 * z + bias); without a residual z = y with alpha2 = 0 (cuDNN needs a z).
    const float alpha2 = residual ? 1.f : 0.f;
    cudnnStatus_t status = cudnnConvolutionBiasActivationForward(
        ctx.res.cudnn, &one, st.x.d, x.data, st.w, wt.data, st.conv, st.fused_algo, ctx.res.workspace,
        st.fused_workspace, &alpha2, st.y.d, residual ? residual : y.data, st.bias.d, ctx.in[2].data, st.act, st.y.d,
        y.data);
    if (status == CUDNN_STATUS_SUCCESS) return;
    if (!refused(status)) KILN_CUDNN_CHECK(status);
    st.fused = false;  // cuDNN has no fused kernel for this configuration: convolution + Kiln's epilogue
  }
  for (;;) {
    cudnnStatus_t status = cudnnConvolutionForward(ctx.res.cudnn, &one, st.x.d, x.data, st.w, wt.data, st.conv,
                                                   st.fwd_algo, ctx.res.workspace, st.workspace, &zero, st.y.d, y.data);
    if (status == CUDNN_STATUS_SUCCESS) break;
    if (!refused(status) || st.fallbacks.empty()) KILN_CUDNN_CHECK(status);
    st.fwd_algo = st.fallbacks.front().first;  // the next fastest; kept for later runs and graph captures
    st.workspace = st.fallbacks.front().second;
    st.fallbacks.erase(st.fallbacks.begin());
  }
  BiasAct ep;
  read_fused_activation(ctx.attrs(), &ep);
  const bool cl = ctx.attrs().i("channels_last", 0) != 0;
  if (!residual && ep.act < 0 && !cl) {  // bias only: as before fusion existed
    if (ctx.has_input(2))
      KILN_CUDNN_CHECK(cudnnAddTensor(ctx.res.cudnn, &one, st.bias.d, ctx.in[2].data, &one, st.y.d, y.data));
    return;
  }
  if (ctx.has_input(2)) {
    ep.bias = ctx.in[2].data;
    ep.channels = cl ? y.shape[3] : y.shape[1];  // channels-last: the channel is the innermost dim
    ep.inner = cl ? 1 : volume(Dims(y.shape.begin() + 2, y.shape.end()));
  }
  ep.residual = residual;
  launch_bias_act(ctx.stream(), y.dtype, y.data, y.numel(), ep);
}

void conv_kernel(KernelContext& ctx) { run(ctx, false); }
void deconv_kernel(KernelContext& ctx) { run(ctx, true); }

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Convolution", &conv_kernel, &conv_supports);
KILN_REGISTER_CUDA_KERNEL("Deconvolution", &deconv_kernel, &deconv_supports);

}  // namespace kiln::cuda
