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
//
// The graph API path (conv_graph.h), on by default: forward convolutions also get cuDNN graph-API execution
// plans, for the whole epilogue where cuDNN fuses it (conv + bias + residual + ReLU) and for the bare
// convolution followed by Kiln's epilogue kernel. The first time a problem is seen, each plan and the legacy
// choice above are timed with CUDA events on the context's stream (never inside a capture, as cudnnFind),
// the fastest is kept, so the graph path is taken only where it wins, and the choice is recorded in the
// timing cache ("cudnn-graph", conv_graph_record.h). The builder's trial run at each profile's opt shapes
// does that first time, so the plan carries the records and a context's first run finalizes only the
// recorded plan per convolution (none where the legacy call won) instead of building and timing up to
// several (runtime-compiled engines take up to a second each to finalize). KILN_CUDNN_GRAPH=0 keeps the
// legacy path alone, KILN_CUDNN_GRAPH=force / force-fused take the graph path whenever it has a plan (for
// tests; see conv_graph.h), and KILN_CUDNN_GRAPH_LOG=1 prints each choice, where it came from and what it
// cost on stderr.
//
// Channels-last depthwise convolutions (groups == C == K) have a third candidate, Kiln's direct kernel
// (kernels/depthwise_conv.h), timed against whatever won above and recorded as "depthwise" when faster.
//
// Channels-last 1x1 convolutions (stride 1, unpadded, groups 1; conv_gemm_path.h says exactly which) have
// another: the convolution as one cuBLASLt GEMM with the whole epilogue in it, timed against whatever won
// above and recorded as "gemm" when faster (KILN_CONV_GEMM: unset/1 consider it, 0 never, force take it
// whenever eligible, for tests). It is considered only with KILN_CUDNN_GRAPH unset/1 (the timed choice), and
// its problems' records are kept under a key of their own (the problem text + " conv-gemm"), so a record
// made without the GEMM candidate (an older cache, KILN_CONV_GEMM=0) is never followed as if it had lost.
//
// Channels-last convolutions of 16 input channels, stride 1 and no padding (the stem after its space-to-depth
// rewrite; kernels/narrow_conv_mma.h says exactly which) have Kiln's tensor-core kernel as one more
// candidate, timed the same way and recorded as "narrow" (KILN_CONV_NARROW: unset/1 consider it, 0 never,
// force take it whenever eligible; records under the problem text + " conv-narrow", for the same reason).
//
// Channels-last convolutions of fp16/bf16 with input channels a multiple of 64 (kernels/splitk_conv_mma.h says
// exactly which) have Kiln's split-K kernel as candidates on sm_90, one per split count worth trying for the
// shapes, timed the same way and recorded as "splitk <S>" (KILN_CONV_SPLITK: unset/1 consider it, 0 never,
// force take it whenever eligible with the most splits; KILN_CONV_SPLITK_SPLITS=S: that count only; records
// under the problem text + " conv-splitk", for the same reason). At batch 1 it is ResNet-50's 3x3 layers'.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "backends/cuda/cudnn/conv_gemm_path.h"
#include "backends/cuda/cudnn/conv_graph.h"
#include "backends/cuda/cudnn/conv_graph_record.h"
#include "backends/cuda/cudnn/conv_plan_cache.h"
#include "backends/cuda/cudnn/legacy_algo_numerics.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/stream_timing.h"
#include "backends/cuda/device.h"
#include "backends/cuda/kernels/depthwise_conv.h"
#include "backends/cuda/kernels/narrow_conv_mma.h"
#include "backends/cuda/kernels/splitk_conv_mma.h"
#include "backends/cuda/kernels/epilogue.h"
#include "backends/cuda/library_checks.h"
#include "backends/cuda/programmatic_launch.h"
#include "kiln/timing_cache.h"

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
  // Kiln's direct depthwise kernel timed fastest for these shapes (forward only; kernels/depthwise_conv.h).
  bool depthwise = false;
  DepthwiseGeometry dw;  // its geometry for these shapes (only the addresses are checked per run)
  // Kiln's narrow-input tensor-core kernel timed fastest (or forced) for these shapes (narrow_conv_mma.h).
  bool narrow = false;
  bool narrow_forced = false;
  NarrowConvGeometry nc;
  // Kiln's split-K kernel timed fastest (or forced) for these shapes, over `splitk` blocks a tile (0: not
  // chosen; splitk_conv_mma.h).
  int splitk = 0;
  bool splitk_forced = false;
  SplitKConvGeometry sk;
  // The graph-API plan that timed fastest for these shapes, when it beat the legacy call (forward only).
  std::unique_ptr<ConvGraphPlan> graph;
  // The convolution as one cuBLASLt GEMM (conv_gemm_path.h), when that path was chosen: its algorithm (the
  // GEMM's own timing-cache record) and shape, alignment included (a run on less aligned addresses takes
  // the legacy call instead). forced: KILN_CONV_GEMM=force took it (a cuBLASLt refusal is then an error).
  std::unique_ptr<LtGemm> gemm;
  GemmShape gemm_shape;
  bool gemm_forced = false;
  std::string graph_note;  // what was chosen and why, or why the graph path is not used (KILN_CUDNN_GRAPH_LOG)
  std::string choice_how;  // where the choice came from: a record, timing, nothing (KILN_CUDNN_GRAPH_LOG)

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
constexpr int64_t kActClip = 8;  // Clip(alpha, beta); Clip(0, b) is cuDNN's ReLU with an upper clip

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

// cudnnFind's results as a timing-cache tactic: per candidate the algorithm, status, workspace and time, so
// a recorded problem replays exactly the choice (and the fallback order) the timing made.
template <class Perf> std::string pack_perf(const Perf* perf, int found) {
  std::string s;
  for (int i = 0; i < found; ++i) {
    const int32_t algo = static_cast<int32_t>(perf[i].algo), status = static_cast<int32_t>(perf[i].status);
    const uint64_t memory = perf[i].memory;
    const float time = perf[i].time;
    s.append(reinterpret_cast<const char*>(&algo), 4).append(reinterpret_cast<const char*>(&status), 4);
    s.append(reinterpret_cast<const char*>(&memory), 8).append(reinterpret_cast<const char*>(&time), 4);
  }
  return s;
}

// The candidates of a recorded tactic; -1 when it is not one pack_perf made for at most `max` candidates.
template <class Perf, class Algo> int unpack_perf(const std::string& s, Perf* perf, int max) {
  constexpr size_t kRecord = 20;
  if (s.empty() || s.size() % kRecord != 0 || s.size() / kRecord > static_cast<size_t>(max)) return -1;
  const int n = static_cast<int>(s.size() / kRecord);
  for (int i = 0; i < n; ++i) {
    int32_t algo, status;
    uint64_t memory;
    float time;
    const char* p = s.data() + i * kRecord;
    std::memcpy(&algo, p, 4);
    std::memcpy(&status, p + 4, 4);
    std::memcpy(&memory, p + 8, 8);
    std::memcpy(&time, p + 16, 4);
    perf[i] = Perf{};
    perf[i].algo = static_cast<Algo>(algo);
    perf[i].status = static_cast<cudnnStatus_t>(status);
    perf[i].memory = memory;
    perf[i].time = time;
  }
  return n;
}

// Everything that decides which algorithms apply and how fast they are, as timing-cache text.
std::string conv_problem(const KernelContext& ctx, bool deconv, bool channels_last, cudnnMathType_t math) {
  std::string p = std::string(deconv ? "deconv" : "conv") + (channels_last ? " nhwc " : " nchw ") +
                  dtype_name(ctx.input(0).dtype) + " x" + dims_str(ctx.input(0).shape) + " w" +
                  dims_str(ctx.input(1).shape) + " y" + dims_str(ctx.out[0].shape) + " math" + std::to_string(math);
  for (const char* a : {"pre_padding", "post_padding", "stride", "dilation"}) {
    p += std::string(" ") + a;
    for (int64_t v : ctx.attrs().ints(a)) p += "," + std::to_string(v);
  }
  return p + " groups" + std::to_string(ctx.attrs().i("groups", 1)) + " ws" + std::to_string(ctx.res.workspace_bytes);
}

void setup(KernelContext& ctx, ConvState& st, bool deconv) {
  const TensorRef &x = ctx.input(0), &wt = ctx.input(1);
  const TensorRef& y = ctx.out[0];
  const bool cl = !deconv && ctx.attrs().i("channels_last", 0) != 0;
  const Dims xs = cl ? nchw_view(x.shape) : x.shape, ws = cl ? nchw_view(wt.shape) : wt.shape,
             ys = cl ? nchw_view(y.shape) : y.shape;
  Geometry g = geometry(ctx.node, xs, ws, ys, deconv);
  if (!g.symmetric) ctx.fail("cuDNN needs symmetric padding (the builder should have run this layer on the CPU)");
  cudnnDataType_t t = cudnn_io_type(x.dtype);
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
  // Time the candidates on this context's own buffers (the output is scratch until written), unless the
  // plan or the timing cache has this problem's timing already.
  constexpr int kMax = 8;
  int found = 0;
  const std::string key = tactic_key(ctx.res, "cudnn-find", "cudnn " + std::to_string(cudnnGetVersion()),
                                     conv_problem(ctx, deconv, cl, math));
  std::optional<std::string> recorded = ctx.res.tactics ? ctx.res.tactics->find(key) : std::nullopt;
  const bool float32_io = x.dtype == DataType::kFLOAT;
  if (!deconv) {
    std::array<cudnnConvolutionFwdAlgoPerf_t, kMax> perf{};
    if (recorded) found = unpack_perf<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(*recorded, perf.data(), kMax);
    if (found <= 0) {
      KILN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(ctx.res.cudnn, st.x.d, x.data, st.w, wt.data, st.conv,
                                                              st.y.d, y.data, kMax, &found, perf.data(),
                                                              ctx.res.workspace, ctx.res.workspace_bytes));
      if (ctx.res.tactics) ctx.res.tactics->record(key, pack_perf(perf.data(), found));
    }
    bool ok = false;
    float best_time = 0, precomp_time = -1;
    size_t precomp_memory = 0;
    st.fallbacks.clear();
    for (int i = 0; i < found; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ctx.res.workspace_bytes ||
          !keeps_accuracy(perf[i].algo, float32_io))
        continue;
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
    if (!ok) ctx.fail("cuDNN found no convolution algorithm for input " + dims_str(x.shape) + " within the workspace" +
                    (float32_io ? " at float32 accuracy" : ""));
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
    if (recorded)
      found = unpack_perf<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(*recorded, perf.data(), kMax);
    if (found <= 0) {
      KILN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(ctx.res.cudnn, st.w, wt.data, st.x.d, x.data,
                                                                   st.conv, st.y.d, y.data, kMax, &found, perf.data(),
                                                                   ctx.res.workspace, ctx.res.workspace_bytes));
      if (ctx.res.tactics) ctx.res.tactics->record(key, pack_perf(perf.data(), found));
    }
    bool ok = false;
    for (int i = 0; i < found && !ok; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ctx.res.workspace_bytes &&
          keeps_accuracy(perf[i].algo, float32_io)) {
        st.bwd_algo = perf[i].algo;
        st.workspace = perf[i].memory;
        ok = true;
      }
    if (!ok) ctx.fail("cuDNN found no deconvolution algorithm for input " + dims_str(x.shape) + " within the workspace" +
                    (float32_io ? " at float32 accuracy" : ""));
  }
  st.x_shape = x.shape;
  st.w_shape = wt.shape;
  st.y_shape = y.shape;
  st.dtype = x.dtype;
  st.ready = true;
}

// The legacy API's forward convolution and epilogue, as setup() chose them.
void run_legacy_forward(KernelContext& ctx, ConvState& st) {
  const TensorRef &x = ctx.input(0), &wt = ctx.input(1);
  TensorRef& y = ctx.out[0];
  const float one = 1.f, zero = 0.f;
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

// ---- The graph API path ----

// Strides of dense NCHW-ordered dims stored in that order, and stored channels-last (N, spatial..., C).
std::vector<int64_t> packed_strides(const Dims& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (int i = static_cast<int>(d.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * d[i + 1];
  return s;
}
std::vector<int64_t> channels_last_strides(const Dims& d) {
  std::vector<int64_t> s(d.size(), 1);
  int64_t inner = d[1];  // C is innermost; then the spatial dims, last fastest; N outermost
  for (int i = static_cast<int>(d.size()) - 1; i >= 2; --i) {
    s[i] = inner;
    inner *= d[i];
  }
  s[0] = inner;
  return s;
}

ConvGraphPointers graph_pointers(const KernelContext& ctx) {
  ConvGraphPointers p;
  p.x = ctx.input(0).data;
  p.w = ctx.input(1).data;
  p.y = ctx.out[0].data;
  p.bias = ctx.has_input(2) ? ctx.in[2].data : nullptr;
  p.residual = ctx.has_input(3) ? ctx.in[3].data : nullptr;
  p.workspace = ctx.res.workspace;
  return p;
}

// The convolution in the graph API's terms (setup() has checked the padding is symmetric).
ConvGraphProblem graph_problem(const KernelContext& ctx) {
  const TensorRef &x = ctx.input(0), &wt = ctx.input(1);
  const TensorRef& y = ctx.out[0];
  const bool cl = ctx.attrs().i("channels_last", 0) != 0;
  Dims xs = cl ? nchw_view(x.shape) : x.shape, ws = cl ? nchw_view(wt.shape) : wt.shape,
       ys = cl ? nchw_view(y.shape) : y.shape;
  const Geometry g = geometry(ctx.node, xs, ws, ys, false);
  std::vector<int64_t> pad(g.pad.begin(), g.pad.end()), stride(g.stride.begin(), g.stride.end()),
      dil(g.dilation.begin(), g.dilation.end());
  if (g.nsp == 1) {  // 1-D as 2-D with a unit height, as the legacy descriptors do
    for (Dims* d : {&xs, &ws, &ys}) d->insert(d->begin() + 2, 1);
    pad.insert(pad.begin(), 0);
    stride.insert(stride.begin(), 1);
    dil.insert(dil.begin(), 1);
  }
  auto strides = [&](const Dims& d) { return cl ? channels_last_strides(d) : packed_strides(d); };
  ConvGraphProblem p;
  p.io_type = x.dtype;
  p.allow_tf32 = x.dtype == DataType::kFLOAT && ctx.attrs().i("allow_tf32", 0) != 0;
  p.x_dims = xs;
  p.x_strides = strides(xs);
  p.w_dims = ws;
  p.w_strides = strides(ws);
  p.y_dims = ys;
  p.y_strides = strides(ys);
  p.bias_dims.assign(ys.size(), 1);
  p.bias_dims[1] = ys[1];
  p.bias_strides = strides(p.bias_dims);
  p.pre_pad = pad;
  p.post_pad = pad;
  p.stride = stride;
  p.dilation = dil;
  const ConvGraphPointers ptr = graph_pointers(ctx);
  p.align[kGraphX] = address_alignment(ptr.x);
  p.align[kGraphW] = address_alignment(ptr.w);
  p.align[kGraphY] = address_alignment(ptr.y);
  p.align[kGraphBias] = address_alignment(ptr.bias);
  p.align[kGraphResidual] = address_alignment(ptr.residual);
  return p;
}

// After a graph plan: the part of the node's epilogue the plan did not compute, by Kiln's epilogue kernel
// (nothing is launched when nothing is left).
void finish_epilogue(KernelContext& ctx, const ConvGraphEpilogue& fused) {
  TensorRef& y = ctx.out[0];
  BiasAct ep;
  read_fused_activation(ctx.attrs(), &ep);
  if (fused.relu) ep.act = -1;
  const bool cl = ctx.attrs().i("channels_last", 0) != 0;
  if (ctx.has_input(2) && !fused.bias) {
    ep.bias = ctx.in[2].data;
    ep.channels = cl ? y.shape[3] : y.shape[1];
    ep.inner = cl ? 1 : volume(Dims(y.shape.begin() + 2, y.shape.end()));
  }
  if (ctx.has_input(3) && !fused.residual) ep.residual = ctx.in[3].data;
  launch_bias_act(ctx.stream(), y.dtype, y.data, y.numel(), ep);
}

// Runs the node through a graph plan; false (nothing enqueued, reason in *why) when the plan cannot run on
// these addresses or cuDNN refuses.
bool run_graph(KernelContext& ctx, ConvGraphPlan& plan, std::string* why) {
  const ConvGraphPointers p = graph_pointers(ctx);
  if (!plan.aligned(p)) {
    *why = "tensor addresses less aligned than the plan was built for";
    return false;
  }
  if (plan.execute(ctx.res.cudnn, p, why) != CUDNN_STATUS_SUCCESS) {
    cudaGetLastError();  // a launch error cuDNN left behind must not be blamed on the next kernel
    return false;
  }
  finish_epilogue(ctx, plan.fused());
  return true;
}

// Milliseconds as log text.
std::string ms_str(float ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f ms", ms);
  return buf;
}

// The direct depthwise kernel's geometry when it applies to this node and its current shapes, with the window
// cuDNN's descriptors were set up from.
bool depthwise_geometry(const KernelContext& ctx, DepthwiseGeometry* g) {
  if (ctx.attrs().i("channels_last", 0) == 0 || ctx.in[0].shape.size() != 4) return false;
  const Geometry geo = geometry(ctx.node, nchw_view(ctx.in[0].shape), nchw_view(ctx.in[1].shape),
                                nchw_view(ctx.out[0].shape), false);
  if (!geo.symmetric || geo.pad.size() != 2) return false;
  g->stride_h = geo.stride[0];
  g->stride_w = geo.stride[1];
  g->pad_h = geo.pad[0];
  g->pad_w = geo.pad[1];
  g->dil_h = geo.dilation[0];
  g->dil_w = geo.dilation[1];
  return depthwise_conv_geometry(ctx, g);
}

// Enqueues the path chosen so far (not the GEMM path, considered last): the time a candidate must beat.
void run_chosen_so_far(KernelContext& ctx, ConvState& st) {
  std::string why;
  if (st.depthwise && depthwise_conv_aligned(ctx)) return enqueue_depthwise_conv(ctx, st.dw);
  if (st.narrow && narrow_conv_aligned(ctx)) return enqueue_narrow_conv(ctx, st.nc);
  if (st.splitk > 0 && splitk_conv_aligned(ctx)) return enqueue_splitk_conv(ctx, st.sk, st.splitk);
  if (st.graph && run_graph(ctx, *st.graph, &why)) return;
  run_legacy_forward(ctx, st);
}

// Times a candidate against the path chosen so far (timed here first when its time is still unknown, -1) and
// says whether it is faster; the note says what was measured either way. run_candidate enqueues it, false
// when it cannot run (*failure, if given, then says why).
bool candidate_wins(KernelContext& ctx, ConvState& st, const std::string& name, float* chosen_time,
                    const std::function<bool()>& run_candidate, const std::string* failure = nullptr) {
  if (*chosen_time < 0) {
    *chosen_time = time_ms(ctx.stream(), [&] {
      run_chosen_so_far(ctx, st);
      return true;
    });
  }
  const float chosen_ms = *chosen_time;
  const float ms = time_ms(ctx.stream(), run_candidate);
  if (ms < 0 || (chosen_ms >= 0 && ms >= chosen_ms)) {
    st.graph_note += " [" + name + " " + (ms < 0 && failure ? "failed (" + *failure + ")" : ms_str(ms)) + "]";
    return false;
  }
  st.graph_note = name + " " + ms_str(ms) + " [chosen before: " + st.graph_note + " " + ms_str(chosen_ms) + "]";
  *chosen_time = ms;
  return true;
}

// Forgets whatever path was chosen for these shapes (the legacy call is left): each take_* starts here, so a
// choice is only ever one path, and choose_path starts from nothing.
void clear_paths(ConvState& st) {
  st.graph.reset();
  st.depthwise = false;
  st.narrow = false;
  st.narrow_forced = false;
  st.splitk = 0;
  st.splitk_forced = false;
  st.gemm.reset();
  st.gemm_forced = false;
}

// Kiln's direct depthwise kernel, taken when faster: cuDNN's NHWC depthwise engines are far from memory
// bandwidth.
void consider_depthwise(KernelContext& ctx, ConvState& st, float* chosen_time, ConvGraphChoice* chosen) {
  DepthwiseGeometry g;
  if (!depthwise_geometry(ctx, &g) || !depthwise_conv_aligned(ctx)) return;
  if (!candidate_wins(ctx, st, "direct depthwise kernel", chosen_time, [&] {
        enqueue_depthwise_conv(ctx, g);
        return true;
      }))
    return;
  clear_paths(st);
  st.depthwise = true;
  st.dw = g;
  *chosen = ConvGraphChoice{};
  chosen->depthwise = true;
}

// The convolution's window for the GEMM path's eligibility (setup() has checked the padding is symmetric).
ConvWindow conv_window(const KernelContext& ctx) {
  const bool cl = ctx.attrs().i("channels_last", 0) != 0;
  auto view = [&](const Dims& d) { return cl ? nchw_view(d) : d; };
  const Geometry g = geometry(ctx.node, view(ctx.in[0].shape), view(ctx.in[1].shape), view(ctx.out[0].shape), false);
  return ConvWindow{g.pad, g.stride, g.dilation};
}

// The narrow-input kernel's geometry when it applies to this node, its current shapes and the device.
bool narrow_geometry(const KernelContext& ctx, NarrowConvGeometry* g, std::string* why) {
  if (ctx.attrs().i("channels_last", 0) == 0) {
    if (why) *why = "not channels-last";
    return false;
  }
  if (!narrow_conv_geometry(ctx, conv_window(ctx).unit(), g, why)) return false;
  if (current_device().major < 8) {
    if (why) *why = "mma.sync needs sm_80 or newer";
    return false;
  }
  return true;
}

// Takes the narrow-input kernel for these shapes (forced: KILN_CONV_NARROW=force took it, so misaligned
// tensors are an error rather than a fallback).
void take_narrow(ConvState& st, const NarrowConvGeometry& g, bool forced) {
  clear_paths(st);
  st.narrow = true;
  st.narrow_forced = forced;
  st.nc = g;
}

// Kiln's narrow-input kernel (geometry g, as choose_path found it), taken when faster.
void consider_narrow(KernelContext& ctx, ConvState& st, const NarrowConvGeometry& g, float* chosen_time,
                     ConvGraphChoice* chosen) {
  if (!narrow_conv_aligned(ctx)) return;
  if (!candidate_wins(ctx, st, "narrow-input kernel", chosen_time, [&] {
        enqueue_narrow_conv(ctx, g);
        return true;
      }))
    return;
  take_narrow(st, g, false);
  *chosen = ConvGraphChoice{};
  chosen->narrow = true;
}

// The split-K kernel's geometry when it applies to this node, its current shapes and the device.
bool splitk_geometry(const KernelContext& ctx, SplitKConvGeometry* g, std::string* why) {
  if (ctx.attrs().i("channels_last", 0) == 0 || ctx.in[0].shape.size() != 4) {
    if (why) *why = "not channels-last 2-D";
    return false;
  }
  const ConvWindow cw = conv_window(ctx);
  SplitKWindow w;
  w.pad_h = cw.pad[0];
  w.pad_w = cw.pad[1];
  w.stride_h = cw.stride[0];
  w.stride_w = cw.stride[1];
  w.dil_h = cw.dilation[0];
  w.dil_w = cw.dilation[1];
  if (!splitk_conv_geometry(ctx, w, g, why)) return false;
  if (current_device().major < 9) {
    if (why) *why = "thread block clusters need sm_90 or newer";
    return false;
  }
  return true;
}

// Takes the split-K kernel over `splits` blocks a tile for these shapes (forced: KILN_CONV_SPLITK=force took
// it, so misaligned tensors are an error rather than a fallback).
void take_splitk(ConvState& st, const SplitKConvGeometry& g, int splits, bool forced) {
  clear_paths(st);
  st.splitk = splits;
  st.splitk_forced = forced;
  st.sk = g;
}

// Kiln's split-K kernel (geometry g, as choose_path found it) at each split count worth trying, each taken
// when faster than everything before it.
void consider_splitk(KernelContext& ctx, ConvState& st, const SplitKConvGeometry& g, float* chosen_time,
                     ConvGraphChoice* chosen) {
  if (!splitk_conv_aligned(ctx)) return;
  for (int splits : splitk_conv_candidates(g, current_device().sm_count)) {
    std::string failure;
    if (!candidate_wins(ctx, st, "split-K kernel x" + std::to_string(splits), chosen_time,
                        [&] { return try_enqueue_splitk_conv(ctx, g, splits, &failure); }, &failure))
      continue;
    take_splitk(st, g, splits, false);
    *chosen = ConvGraphChoice{};
    chosen->splitk = splits;
  }
}

// Takes the GEMM path for these shapes (an LtGemm that has not run yet: its first run chooses its algorithm).
void take_gemm(ConvState& st, const GemmShape& shape, std::unique_ptr<LtGemm> gemm, bool forced) {
  clear_paths(st);
  st.gemm = gemm ? std::move(gemm) : std::make_unique<LtGemm>();
  st.gemm_shape = shape;
  st.gemm_forced = forced;
}

// The convolution as one cuBLASLt GEMM, taken when faster. The GEMM's first timed call also times cuBLASLt's
// algorithms for it (lt_gemm.h; untimed warm-up of time_ms) and records its choice under the GEMM's own key.
void consider_gemm(KernelContext& ctx, ConvState& st, const GemmShape& shape, float* chosen_time,
                   ConvGraphChoice* chosen) {
  auto gemm = std::make_unique<LtGemm>();
  std::string failure;
  if (!candidate_wins(ctx, st, "cuBLASLt GEMM", chosen_time,
                      [&] { return run_conv_gemm(ctx, *gemm, shape, &failure); }, &failure))
    return;
  take_gemm(st, shape, std::move(gemm), false);
  *chosen = ConvGraphChoice{};
  chosen->gemm = true;
}

// Follows a timing-cache record of the choice for this problem: "legacy" builds no plan at all; a recorded
// plan is the only one finalized. False (the reason in *stale) when the record cannot be followed.
// gemm_shape, narrow, splitk: the GEMM path's shape and the narrow-input and split-K kernels' geometries when
// each is a candidate for this node (else null), as choose_path found them.
bool follow_record(KernelContext& ctx, ConvState& st, const ConvGraphProblem& problem, const ConvGraphEpilogue& full,
                   const GemmShape* gemm_shape, const NarrowConvGeometry* narrow, const SplitKConvGeometry* splitk,
                   const std::string& text, std::string* stale) {
  const std::optional<ConvGraphChoice> choice = decode_conv_graph_choice(text);
  if (!choice) {
    *stale = "unreadable record '" + text + "'";
    return false;
  }
  if (choice->gemm) {
    if (!gemm_shape) {
      *stale = "the recorded cuBLASLt GEMM path is not a candidate for this node";
      return false;
    }
    take_gemm(st, *gemm_shape, nullptr, false);
    st.graph_note = "cuBLASLt GEMM";
    return true;
  }
  if (choice->narrow) {
    if (!narrow) {
      *stale = "the recorded narrow-input kernel is not a candidate for this node";
      return false;
    }
    take_narrow(st, *narrow, false);
    st.graph_note = "narrow-input kernel";
    return true;
  }
  if (choice->splitk > 0) {
    const int s = choice->splitk;
    if (!splitk) {
      *stale = "the recorded split-K kernel is not a candidate for this node";
      return false;
    }
    // A count the kernel cannot run for these shapes, or another than KILN_CONV_SPLITK_SPLITS asks for.
    if (s > kSplitKMaxSplits || (s & (s - 1)) != 0 || s > splitk->chunks() ||
        (splitk->fixed_splits > 0 && s != splitk->fixed_splits)) {
      *stale = "the recorded split-K count " + std::to_string(s) + " is not a candidate for this node";
      return false;
    }
    take_splitk(st, *splitk, s, false);
    st.graph_note = "split-K kernel x" + std::to_string(s);
    return true;
  }
  if (choice->depthwise) {
    if (!depthwise_geometry(ctx, &st.dw)) {
      *stale = "the recorded direct depthwise kernel does not apply to these tensors";
      return false;
    }
    st.depthwise = true;
    st.graph_note = "direct depthwise kernel";
    return true;
  }
  if (!choice->graph) {
    st.graph_note = "legacy";
    return true;
  }
  const uint64_t workspace = ctx.res.workspace ? ctx.res.workspace_bytes : 0;
  const ConvGraphEpilogue epilogue = choice->full_epilogue ? full : ConvGraphEpilogue{};
  auto build = [&](cudnnHandle_t handle, std::string* why) -> std::unique_ptr<ConvGraphPlan> {
    ConvGraphBudget one;  // the recorded plan was within the timing's budget: let it be built again
    one.workspace_bytes = workspace;
    one.max_plans = 1;
    one.attempts_left = 1;
    one.runtime_compiled_left = 1;
    std::vector<std::unique_ptr<ConvGraphPlan>> plans =
        build_conv_graph_plans(handle, problem, epilogue, &one, why, &choice->engine_config);
    return plans.empty() ? nullptr : std::move(plans.front());
  };
  std::string why;
  // Another context of the engine may have finalized this plan already (conv_plan_cache.h). The key is
  // everything the plan depends on: the problem (workspace included), the epilogue in the graph, the
  // configuration.
  st.graph = ctx.res.conv_plans
                 ? ctx.res.conv_plans->find_or_build(conv_graph_problem_text(problem, epilogue, -1, workspace) +
                                                         " | " + choice->engine_config,
                                                     build, &why)
                 : build(ctx.res.cudnn, &why);
  if (!st.graph) {
    *stale = "the recorded '" + text + "' could not be built: " + why;
    return false;
  }
  st.graph_note = "graph " + st.graph->name();
  return true;
}

// Builds the graph plans within the budget and times them, and (unless forced) the legacy call, on this
// context's tensors (the output is scratch until the real run); keeps the fastest and says what it is.
ConvGraphChoice time_paths(KernelContext& ctx, ConvState& st, const ConvGraphProblem& problem,
                           const ConvGraphEpilogue& full, ConvGraphMode mode, float* chosen_ms) {
  *chosen_ms = -1;  // not timed
  const bool forced = mode == ConvGraphMode::kForce || mode == ConvGraphMode::kForceFused;
  ConvGraphChoice legacy;  // graph = false
  ConvGraphBudget budget;
  budget.workspace_bytes = ctx.res.workspace ? ctx.res.workspace_bytes : 0;
  budget.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  // The whole epilogue in the graph where cuDNN fuses it; and the bare convolution + Kiln's epilogue kernel.
  std::string why;
  std::vector<std::unique_ptr<ConvGraphPlan>> plans =
      build_conv_graph_plans(ctx.res.cudnn, problem, full, &budget, &why);
  if (full.any() && mode != ConvGraphMode::kForceFused) {
    auto bare = build_conv_graph_plans(ctx.res.cudnn, problem, ConvGraphEpilogue{}, &budget, &why);
    for (auto& p : bare) plans.push_back(std::move(p));
  }
  if (plans.empty()) {
    st.graph_note = "legacy (no graph plan: " + why + ")";
    if (forced) ctx.fail("KILN_CUDNN_GRAPH=force: no cuDNN graph plan: " + why);
    return legacy;
  }
  std::string timings;
  float legacy_ms = -1;
  if (!forced) {
    legacy_ms = time_ms(ctx.stream(), [&] {
      run_legacy_forward(ctx, st);
      return true;
    });
    timings = "legacy " + ms_str(legacy_ms);
  }
  size_t best = plans.size();
  float best_ms = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    std::string failure;
    const float ms = time_ms(ctx.stream(), [&] { return run_graph(ctx, *plans[i], &failure); });
    timings += (timings.empty() ? "" : ", ") + plans[i]->name() + " " + (ms < 0 ? "failed (" + failure + ")" : ms_str(ms));
    if (ms >= 0 && (best == plans.size() || ms < best_ms)) {
      best = i;
      best_ms = ms;
    }
  }
  if (best == plans.size()) {
    st.graph_note = "legacy (every graph plan failed: " + timings + ")";
    if (forced) ctx.fail("KILN_CUDNN_GRAPH=force: " + st.graph_note);
    return legacy;
  }
  if (!forced && best_ms >= legacy_ms) {
    st.graph_note = "legacy [" + timings + "]";
    *chosen_ms = legacy_ms;
    return legacy;
  }
  *chosen_ms = best_ms;
  st.graph = std::move(plans[best]);
  st.graph_note = "graph " + st.graph->name() + " [" + timings + "]";
  ConvGraphChoice graph;
  graph.graph = true;
  graph.full_epilogue = st.graph->fused().any();  // only the full variant fuses anything
  graph.engine_config = st.graph->engine_config();
  return graph;
}

// Chooses between the legacy call setup() prepared and graph-API plans for these shapes (see the top of
// the file): from the timing cache's record for the problem when there is one, else by timing, recording
// the winner. Forced modes (tests) neither follow nor leave records: what they take is not what timing chose.
void choose_path_uncounted(KernelContext& ctx, ConvState& st) {
  clear_paths(st);
  st.graph_note.clear();
  st.choice_how = "nothing chosen";
  // The GEMM path: KILN_CONV_GEMM=force takes it here whenever the node is eligible, nothing timed or recorded.
  const ConvGemmMode gemm_mode = conv_gemm_mode();
  GemmShape gemm_shape;
  std::string gemm_why;
  const bool gemm_eligible =
      gemm_mode != ConvGemmMode::kOff && conv_gemm_shape(ctx, conv_window(ctx), &gemm_shape, &gemm_why);
  if (gemm_eligible && gemm_mode == ConvGemmMode::kForce) {
    take_gemm(st, gemm_shape, nullptr, true);
    st.graph_note = "cuBLASLt GEMM (KILN_CONV_GEMM=force)";
    st.choice_how = "forced: nothing timed or recorded";
    return;
  }
  // The narrow-input kernel: KILN_CONV_NARROW=force likewise.
  const NarrowConvMode narrow_mode = narrow_conv_mode();
  std::string narrow_why;
  NarrowConvGeometry nc;
  const bool narrow_eligible = narrow_mode != NarrowConvMode::kOff && narrow_geometry(ctx, &nc, &narrow_why);
  if (narrow_eligible && narrow_mode == NarrowConvMode::kForce) {
    take_narrow(st, nc, true);
    st.graph_note = "narrow-input kernel (KILN_CONV_NARROW=force)";
    st.choice_how = "forced: nothing timed or recorded";
    return;
  }
  // The split-K kernel: KILN_CONV_SPLITK=force likewise, with the most splits worth trying.
  const SplitKConvMode splitk_mode = splitk_conv_mode();
  std::string splitk_why;
  SplitKConvGeometry sk;
  const bool splitk_eligible = splitk_mode != SplitKConvMode::kOff && splitk_geometry(ctx, &sk, &splitk_why);
  if (splitk_eligible && splitk_mode == SplitKConvMode::kForce) {
    const int splits = splitk_conv_candidates(sk, current_device().sm_count).back();
    take_splitk(st, sk, splits, true);
    st.graph_note = "split-K kernel x" + std::to_string(splits) + " (KILN_CONV_SPLITK=force)";
    st.choice_how = "forced: nothing timed or recorded";
    return;
  }
  // Said in the log when forcing the GEMM path or one of Kiln's kernels meets a node it cannot take (the usual
  // choice is made then).
  const std::string gemm_aside =
      (gemm_mode == ConvGemmMode::kForce ? " [KILN_CONV_GEMM=force: not eligible: " + gemm_why + "]" : "") +
      (narrow_mode == NarrowConvMode::kForce ? " [KILN_CONV_NARROW=force: not eligible: " + narrow_why + "]" : "") +
      (splitk_mode == SplitKConvMode::kForce ? " [KILN_CONV_SPLITK=force: not eligible: " + splitk_why + "]" : "");
  const ConvGraphMode mode = conv_graph_mode();
  if (mode == ConvGraphMode::kOff) {
    st.graph_note = "legacy (KILN_CUDNN_GRAPH=0)" + gemm_aside;
    return;
  }
  const bool forced = mode == ConvGraphMode::kForce || mode == ConvGraphMode::kForceFused;
  const bool gemm_candidate = gemm_eligible && !forced;  // gemm_mode is kAuto here
  const bool narrow_candidate = narrow_eligible && !forced;  // narrow_mode is kAuto here
  const bool splitk_candidate = splitk_eligible && !forced;  // splitk_mode is kAuto here
  // Timing synchronizes, which a capture forbids; the executor's first run for a shape is eager, so this
  // only guards other callers.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(ctx.stream(), &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone) {
    cudaGetLastError();
    st.graph_note = "legacy (first run inside a CUDA graph capture: nothing timed)";
    if (forced) ctx.fail("KILN_CUDNN_GRAPH=force: " + st.graph_note);
    return;
  }
  const ConvGraphProblem problem = graph_problem(ctx);
  ConvGraphEpilogue full;
  full.bias = ctx.has_input(2);
  full.residual = ctx.has_input(3);
  BiasAct act;
  read_fused_activation(ctx.attrs(), &act);
  full.relu = act.act == kActRelu || (act.act == kActClip && act.alpha == 0.0f && act.beta > 0.0f);
  if (act.act == kActClip && full.relu) full.relu_upper = act.beta;  // ReLU6
  std::string key;
  if (!forced && ctx.res.tactics)
    key = tactic_key(ctx.res, "cudnn-graph", "cudnn " + std::to_string(cudnnGetVersion()),
                     conv_graph_problem_text(problem, full, ctx.attrs().i("activation", -1),
                                             ctx.res.workspace ? ctx.res.workspace_bytes : 0) +
                         (gemm_candidate ? " conv-gemm" : "") + (narrow_candidate ? " conv-narrow" : "") +
                         (splitk_candidate ? " conv-splitk" : ""));
  std::string stale;
  if (!key.empty()) {
    if (std::optional<std::string> text = ctx.res.tactics->find(key)) {
      if (follow_record(ctx, st, problem, full, gemm_candidate ? &gemm_shape : nullptr,
                        narrow_candidate ? &nc : nullptr, splitk_candidate ? &sk : nullptr, *text, &stale)) {
        count_conv_graph_choice(true);
        st.choice_how = "from the timing-cache record";
        return;
      }
    }
  }
  count_conv_graph_choice(false);
  st.choice_how = forced ? "timed (forced mode: not recorded)"
                  : key.empty() ? "timed (no timing cache: not recorded)"
                  : stale.empty() ? "timed and recorded"
                                  : "timed again (" + stale + ")";
  float chosen_ms = -1;
  ConvGraphChoice chosen = time_paths(ctx, st, problem, full, mode, &chosen_ms);
  if (!forced) consider_depthwise(ctx, st, &chosen_ms, &chosen);
  if (narrow_candidate) consider_narrow(ctx, st, nc, &chosen_ms, &chosen);
  if (splitk_candidate) consider_splitk(ctx, st, sk, &chosen_ms, &chosen);
  if (gemm_candidate) consider_gemm(ctx, st, gemm_shape, &chosen_ms, &chosen);
  st.graph_note += gemm_aside;
  // A stale record stays: the timing cache keeps a key's first record, so this adds nothing then, and each
  // context times this convolution again (rare: the key holds everything the build of a plan depends on).
  if (!key.empty()) ctx.res.tactics->record(key, encode_conv_graph_choice(chosen));
}

// choose_path_uncounted, then the counts of which of Kiln's own paths the node took: once per choice, from its
// final state (a timed choice may take a kernel and then lose it to a later, faster candidate).
void choose_path(KernelContext& ctx, ConvState& st) {
  choose_path_uncounted(ctx, st);
  if (st.gemm) count_conv_gemm_chosen();
  if (st.narrow) count_conv_narrow_chosen();
  if (st.splitk > 0) count_conv_splitk_chosen();
}

void run(KernelContext& ctx, bool deconv) {
  const TensorRef &x = ctx.input(0), &wt = ctx.input(1);
  TensorRef& y = ctx.out[0];
  if (y.numel() == 0) return;
  KILN_CUDNN_CHECK(cudnnSetStream(ctx.res.cudnn, ctx.stream()));
  auto& st = node_state<ConvState>(ctx);
  if (!st.ready || st.x_shape != x.shape || st.w_shape != wt.shape || st.y_shape != y.shape || st.dtype != x.dtype) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point t0 = Clock::now();
    setup(ctx, st, deconv);
    if (!deconv) {
      const Clock::time_point t1 = Clock::now();
      // The candidates timed here let nothing start early: what follows each on the stream is the next timing
      // round or another candidate, not the next step.
      const bool may_start = ctx.res.next_kernel_may_start;
      ctx.res.next_kernel_may_start = false;
      choose_path(ctx, st);
      ctx.res.next_kernel_may_start = may_start;
      const Clock::time_point t2 = Clock::now();
      if (conv_graph_log_enabled())  // the two times: what a context's first run spends per convolution here
        std::fprintf(stderr, "kiln: convolution '%s' x %s: %s; %s; legacy setup %.1f ms, choice %.1f ms\n",
                     ctx.node.name.c_str(), dims_str(x.shape).c_str(), st.graph_note.c_str(), st.choice_how.c_str(),
                     std::chrono::duration<double, std::milli>(t1 - t0).count(),
                     std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
  }
  if (deconv) {
    const float one = 1.f, zero = 0.f;
    KILN_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.res.cudnn, &one, st.w, wt.data, st.x.d, x.data, st.conv,
                                                  st.bwd_algo, ctx.res.workspace, st.workspace, &zero, st.y.d, y.data));
    if (ctx.has_input(2))
      KILN_CUDNN_CHECK(cudnnAddTensor(ctx.res.cudnn, &one, st.bias.d, ctx.in[2].data, &one, st.y.d, y.data));
    return;
  }
  if (st.gemm) {
    if (conv_gemm_aligned(ctx, st.gemm_shape)) {
      std::string why;
      if (run_conv_gemm(ctx, *st.gemm, st.gemm_shape, &why)) return;
      // cuBLASLt refused (no algorithm for this epilogue, a recorded algorithm it rejects): the legacy call
      // from now on, unless forced (a test wants to know).
      if (st.gemm_forced) ctx.fail("KILN_CONV_GEMM=force: cuBLASLt cannot run this convolution: " + why);
      st.graph_note = "legacy (the cuBLASLt GEMM failed: " + why + ")";
      st.gemm.reset();
    }
    // Less aligned addresses this time: the legacy call runs instead, the choice stays for later runs.
    return run_legacy_forward(ctx, st);
  }
  if (st.depthwise) {
    if (depthwise_conv_aligned(ctx)) return enqueue_depthwise_conv(ctx, st.dw);
    // Less aligned addresses this time: cuDNN's legacy call runs instead, the choice stays for later runs.
  }
  // Kiln's kernels note a programmatic launch here, where the choice runs, not where timing ran candidates: the
  // kernel before this one lets it start early only if it is the one that runs (programmatic_launch.h).
  if (st.narrow) {
    if (narrow_conv_aligned(ctx)) {
      enqueue_narrow_conv(ctx, st.nc);
      if (st.nc.programmatic) note_programmatic_launch(ctx);
      return;
    }
    if (st.narrow_forced) ctx.fail("KILN_CONV_NARROW=force: the tensors are not aligned for the narrow-input kernel");
    // Less aligned addresses this time: cuDNN's legacy call runs instead, the choice stays for later runs.
  }
  if (st.splitk > 0) {
    if (splitk_conv_aligned(ctx)) {
      enqueue_splitk_conv(ctx, st.sk, st.splitk);
      if (st.sk.programmatic) note_programmatic_launch(ctx);
      return;
    }
    if (st.splitk_forced) ctx.fail("KILN_CONV_SPLITK=force: the tensors are not aligned for the split-K kernel");
    // Less aligned addresses this time: cuDNN's legacy call runs instead, the choice stays for later runs.
  }
  // cuDNN's kernels from here: if Kiln's kernel was expected (a misaligned run of a node that chose it), the
  // kernel before may have let this node start early.
  before_other_kernels(ctx);
  if (st.graph) {
    std::string why;
    if (run_graph(ctx, *st.graph, &why)) return;
    // Misaligned addresses this time: the legacy call runs instead, the plan stays for later runs. A cuDNN
    // failure at run time (a timed plan ran before; a recorded one runs here first) drops the plan for good.
    if (st.graph->aligned(graph_pointers(ctx))) {
      st.graph_note = "legacy (the graph plan failed at run time: " + why + ")";
      st.graph.reset();
    }
  }
  run_legacy_forward(ctx, st);
}

void conv_kernel(KernelContext& ctx) { run(ctx, false); }
void deconv_kernel(KernelContext& ctx) { run(ctx, true); }

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Convolution", &conv_kernel, &conv_supports);
KILN_REGISTER_CUDA_KERNEL("Deconvolution", &deconv_kernel, &deconv_supports);

}  // namespace kiln::cuda
