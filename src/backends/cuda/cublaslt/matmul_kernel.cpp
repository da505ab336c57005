// MatrixMultiply on the GPU through cuBLASLt: numpy matmul semantics with TensorRT's TRANSPOSE/VECTOR
// operand ops, as the CPU kernel (src/backends/cpu/kernels/matmul.cpp). Batches become one strided-batched
// call when each operand's batch is either the output's or broadcast whole; other broadcasts loop over the
// outer batch index (one call per distinct operand pair). float32 uses TF32 tensor cores when the builder
// allowed it (node attribute `allow_tf32`); float16/bfloat16 accumulate in float32.
//
// The fused epilogue (ir/OPS.md: y = act(a@b + bias + residual)) rides on cuBLASLt: the bias [N] is the BIAS
// epilogue's vector (see lt_gemm.cpp for why it runs along our last dim), the residual is cuBLASLt's C with
// beta = 1 (D = the output), and ReLU / tanh-GELU are the RELU(_BIAS) / GELU(_BIAS) epilogues. Other
// activations run afterwards in one Kiln kernel over the output (kernels/epilogue.cu). Every GEMM call of a
// batched or broadcast product takes the same bias, and its residual at the same offset as its output.
//
// erf-GELU (BERT's and ViT's MLP) in float16 / bfloat16 also takes cuBLASLt's GELU epilogue, which computes the
// tanh form. Why: a second pass over the [tokens, 4 x hidden] output cost as much as a third of the GEMM
// (ViT-B/16 at batch 128: 0.12 of 0.30 ms a layer, where GPT-2's tanh-GELU GEMM of the same shape class runs
// at the plain GEMM's speed). The two forms differ by at most 4.8e-4 absolutely (at x = +-2.7; below 2.7e-4
// for |x| < 2.2), which is under half a float16 ulp of the output for every x >= 0 (0.41 ulp at most), and
// the epilogue applies it to the float32 accumulator where the unfused path first rounds the GEMM's
// output to float16 (an error up to 9.8e-4 at x = 2.7 by itself). float32 and TF32 GEMMs keep the exact erf
// in Kiln's kernel, and KILN_EXACT_GELU=1 keeps it for half types too.
//
// Products against weights stored [N, K] have Kiln's kernels as more candidates, timed against cuBLASLt's
// choice on the node's first eager run and recorded like a cuBLASLt algorithm: at most 8 rows (a classifier
// at batch 1-8), the small-M kernel (kernels/small_m_gemm.h); too few rows to fill the GPU with its tiles (a
// transformer's token rows at batch 1), the split-K convolution kernel as a 1x1 convolution on each of its tiles
// (cublaslt/splitk_gemm.h). Both do the whole epilogue (erf-GELU exactly) and start programmatically.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/cublaslt/lt_gemm.h"
#include "backends/cuda/cublaslt/splitk_gemm.h"
#include "backends/cuda/device.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/kernels/epilogue.h"
#include "backends/cuda/kernels/small_m_gemm.h"
#include "backends/cuda/programmatic_launch.h"
#include "backends/cuda/stream_timing.h"
#include "backends/cuda/tactic_ties.h"
#include "kiln/timing_cache.h"
#include "runtime/env_switch.h"

namespace kiln::cuda {

namespace {

constexpr int kActRelu = 0, kActGeluErf = 12, kActGeluTanh = 13;

// Whether a half-type GEMM may compute erf-GELU as cuBLASLt's tanh-form epilogue (see the file comment).
bool half_gelu_by_tanh_form() { return !env_is("KILN_EXACT_GELU", "1"); }

bool matmul_supports(const ir::Node& n, const std::vector<ir::TensorInfo>& in) {
  if (in.size() < 2 || !in[0].present || !in[1].present || in[0].dtype != in[1].dtype) return false;
  DataType t = in[0].dtype;
  if (t != DataType::kFLOAT && t != DataType::kHALF && t != DataType::kBF16) return false;
  for (size_t i = 2; i < in.size() && i < 4; ++i)  // fused bias and residual: the output's dtype
    if (in[i].present && in[i].dtype != t) return false;
  return fused_activation_supported(n.attrs.i("activation", -1));
}

// The cuBLASLt epilogue for this bias / activation; *lt_act: cuBLASLt applies the activation too.
// erf_as_tanh: erf-GELU may take the tanh-form GELU epilogue (half types, see the file comment).
Epilogue lt_epilogue_for(bool bias, int act, bool erf_as_tanh, bool* lt_act) {
  *lt_act = true;
  if (act == kActRelu) return bias ? Epilogue::kBiasRelu : Epilogue::kRelu;
  if (act == kActGeluTanh || (act == kActGeluErf && erf_as_tanh)) return bias ? Epilogue::kBiasGelu : Epilogue::kGelu;
  *lt_act = false;
  return bias ? Epilogue::kBias : Epilogue::kNone;
}

// Which kernel computes the node (decide_own_kernel): cuBLASLt's path, Kiln's small-M kernel, or Kiln's split-K
// kernel on `tile` over `splits` blocks a tile.
enum class OwnKernel { kUndecided, kNone, kSmallM, kSplitK };
struct OwnChoice {
  OwnKernel kernel = OwnKernel::kUndecided;
  int splits = 0;
  SplitKTile tile;
  OwnChoice() = default;
  OwnChoice(OwnKernel k, int s, SplitKTile t = SplitKTile{}) : kernel(k), splits(s), tile(t) {}
};

// Per node: the GEMM and how much of the fused epilogue cuBLASLt does. Level 0: bias and ReLU / tanh-GELU in
// cuBLASLt's epilogue; 1: only the bias; 2: nothing (Kiln's kernel adds the bias too). The residual is always
// cuBLASLt's C.
struct MatmulState {
  LtGemm gemm;
  int level = 0;
  int erf_as_tanh = -1;  // decided on the node's first run (-1: not yet)
  OwnChoice own;         // decided on the node's first run
  bool programmatic = false;  // Kiln's kernels may start beside the kernel before (KILN_PDL, read with `own`)
  SplitKConvGeometry splitk;  // the split-K kernel's geometry, when it is the choice
};

// The timing-cache records of the choice (the problem's text: gemm_problem plus the epilogue inputs).
constexpr const char* kSmallMTaken = "small-M kernel", *kNoOwnKernel = "cuBLASLt";
const std::string kSplitKTaken = "split-K kernel ";  // + the tile and " x" the split count

// The split-K kernel on one tile: its geometry and the split counts worth timing there, fewest first.
struct SplitKTileCandidates {
  SplitKConvGeometry geometry;
  std::vector<int> splits;
};

// What one of Kiln's kernels needs to be timed and launched for this node.
struct OwnCandidates {
  bool small_m = false, splitk = false;  // eligible (their switches allow it and their conditions hold)
  CandidateMode small_m_mode = CandidateMode::kAuto, splitk_mode = CandidateMode::kAuto;
  const SmallMGemmArgs* small_args = nullptr;
  std::vector<SplitKTileCandidates> splitk_tiles;  // the tiles that apply, in kSplitKTiles' order (splitk: any)
  ConvTensors tensors{};    // a as x, w, bias, residual, y
  DataType dtype = DataType::kHALF;
  bool programmatic = false;  // Kiln's kernels launch programmatically (KILN_PDL): they get kProgrammaticCreditMs
};

// What one of Kiln's kernels launched programmatically gains in a model's chain over its time alone: it loads
// its weights while the kernel before it finishes, which timing it back to back with itself cannot show.
// Measured on the H200 (seventeenth session, call 1): GPT-2 b1's 12 attention projections (768 x 768) on the
// split-K kernel, timed alone at 5.0 us against cuBLASLt's 5.1, made the model 13 us faster than cuBLASLt did
// (KILN_GEMM_SPLITK=0 / default 1.031), ~1.1 us a GEMM; in call 4 the same tie (5.0 against 5.0) went to
// cuBLASLt and the gain was lost. Half of that is credited: near ties go to Kiln's kernel, clear losses (c_fc
// on the split-K kernel: 9.1 against cuBLASLt's 5.6 us) stay cuBLASLt's.
constexpr float kProgrammaticCreditMs = 0.5e-3f;

// The choice's name as the timing cache records it and KILN_GEMM_LOG prints it.
std::string own_record(const OwnChoice& c) {
  if (c.kernel == OwnKernel::kSmallM) return kSmallMTaken;
  if (c.kernel == OwnKernel::kSplitK) return kSplitKTaken + c.tile.name() + " x" + std::to_string(c.splits);
  return kNoOwnKernel;
}

// The recorded choice, or kUndecided when there is none or it no longer applies (a split count this device
// would not time, a kernel no longer eligible, a kernel Kiln no longer has): the node times its candidates again.
OwnChoice parse_own_record(const std::string& rec, const OwnCandidates& c) {
  OwnChoice none{OwnKernel::kNone, 0};
  if (rec == kNoOwnKernel) return none;
  if (rec == kSmallMTaken) return c.small_m ? OwnChoice{OwnKernel::kSmallM, 0} : OwnChoice{};
  for (const SplitKTileCandidates& t : c.splitk_tiles)
    for (int s : t.splits) {
      const OwnChoice choice{OwnKernel::kSplitK, s, t.geometry.tile};
      if (rec == own_record(choice)) return choice;
    }
  return OwnChoice{};
}

// KILN_GEMM_LOG=1: one line on stderr per node and context as its kernel is chosen (what was timed, in us, and
// what won, or where the choice came from), for the benchmark's logs and the GPU tests. Read at that choice.
void log_own_choice(const KernelContext& ctx, const GemmShape& s, const OwnChoice& c, const std::string& how) {
  if (!env_is("KILN_GEMM_LOG", "1")) return;
  std::fprintf(stderr, "kiln: matrix multiply '%s' %lld x %lld x %lld: %s -> %s\n", ctx.node.name.c_str(),
               static_cast<long long>(s.m), static_cast<long long>(s.n), static_cast<long long>(s.k), how.c_str(),
               own_record(c).c_str());
}

// Which kernel computes the node (its one shape), on its first run: never one of Kiln's where it does not fit
// the problem or its switch is 0; Kiln's kernel when forced (small-M first; the split-K kernel on its first tile
// that applies, with the most splits it would time there; nothing timed or recorded); else the record, or the
// fastest of cuBLASLt's path (run_lt, which sets itself up and times its algorithms on its first call, just
// before), the small-M kernel and the split-K kernel on each tile at each split count (Kiln's two less
// kProgrammaticCreditMs where they launch programmatically).
// Inside a capture nothing can be timed: cuBLASLt's path, not recorded. Nor when the residual is the output (the
// timing runs would read what they wrote).
template <class RunLt>
OwnChoice decide_own_kernel(KernelContext& ctx, const GemmShape& s, const OwnCandidates& c, RunLt&& run_lt) {
  auto decided = [&](OwnChoice choice, const std::string& how) {
    log_own_choice(ctx, s, choice, how);
    return choice;
  };
  if (c.small_m && c.small_m_mode == CandidateMode::kForce)
    return decided({OwnKernel::kSmallM, 0}, "KILN_GEMM_SMALL_M=force");
  if (c.splitk && c.splitk_mode == CandidateMode::kForce) {
    const SplitKTileCandidates& first = c.splitk_tiles.front();
    return decided({OwnKernel::kSplitK, first.splits.back(), first.geometry.tile}, "KILN_GEMM_SPLITK=force");
  }
  if (!c.small_m && !c.splitk) return decided({OwnKernel::kNone, 0}, "no kernel of Kiln's applies");
  Resources& res = ctx.res;
  const SmallMGemmArgs& args = *c.small_args;
  std::string key;
  if (res.tactics) {
    // The candidates timed, and whether Kiln's are credited, are part of the problem: a context with one switched
    // off (KILN_GEMM_SPLITK=0 or KILN_PDL=0 in an A/B run) keeps its own record, and later contexts of the
    // default still find theirs.
    std::string epi = std::string(args.bias ? ",bias" : "") + (args.residual ? ",residual" : "") + ",act " +
                      std::to_string(args.act) + (c.small_m ? ",small-m" : "");
    for (const SplitKTileCandidates& t : c.splitk_tiles) epi += ",split-k " + t.geometry.tile.name();
    if (c.programmatic) epi += ",pdl";
    key = tactic_key(res, "gemm-own-kernels", "3", gemm_problem(s) + epi);
    if (std::optional<std::string> rec = res.tactics->find(key)) {
      const OwnChoice recorded = parse_own_record(*rec, c);
      if (recorded.kernel != OwnKernel::kUndecided) {
        if (res.ties) res.ties->note_use(key);  // one more layer of this problem, for its tie's stake
        return decided(recorded, "recorded");
      }
    }
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  KILN_CUDA_CHECK(cudaStreamIsCapturing(ctx.stream(), &capture));
  if (capture != cudaStreamCaptureStatusNone) return decided({OwnKernel::kNone, 0}, "inside a capture: not timed");
  if (args.residual && args.residual == args.y) return decided({OwnKernel::kNone, 0}, "residual in place: not timed");
  run_lt();  // cuBLASLt's setup and algorithm timing, before its path is timed as a whole
  float best_ms = time_ms(ctx.stream(), [&] {
    run_lt();
    return true;
  });
  OwnChoice best{OwnKernel::kNone, 0};
  std::string timed;
  // Kiln's kernels compete with their time alone less the credit for starting early in the chain.
  const float credit_ms = c.programmatic ? kProgrammaticCreditMs : 0.f;
  // Every candidate's record and the time it competed with, for the build's chain timing (tactic_ties.h).
  std::vector<std::pair<std::string, float>> competed{{own_record(best), best_ms}};
  auto consider = [&](OwnChoice choice, float ms) {
    char t[64];
    std::snprintf(t, sizeof t, ", %s %.1f us", own_record(choice).c_str(), ms * 1e3f);
    timed += ms >= 0 ? std::string(t) : ", " + own_record(choice) + " failed";
    competed.emplace_back(own_record(choice), ms >= 0 ? ms - credit_ms : -1.f);
    if (ms >= 0 && (best_ms < 0 || ms - credit_ms < best_ms)) {
      best_ms = ms - credit_ms;
      best = choice;
    }
  };
  {
    char t[96];
    std::snprintf(t, sizeof t, "cuBLASLt %.1f us (Kiln's kernels credited %.1f us)", best_ms * 1e3f, credit_ms * 1e3f);
    timed = t;
  }
  std::string why;
  if (c.small_m)
    consider({OwnKernel::kSmallM, 0}, time_ms(ctx.stream(), [&] { return launch_small_m_gemm(ctx.stream(), args, &why); }));
  if (c.splitk && conv_tensors_aligned(c.tensors, 8))
    for (const SplitKTileCandidates& t : c.splitk_tiles)
      for (int splits : t.splits)  // timed with nothing let start early: the next timing round follows it
        consider({OwnKernel::kSplitK, splits, t.geometry.tile}, time_ms(ctx.stream(), [&] {
                   return try_launch_splitk(ctx.stream(), c.tensors, c.dtype, false, t.geometry, splits, &why);
                 }));
  if (!key.empty()) res.tactics->record(key, own_record(best));
  if (res.ties && !key.empty()) {
    std::vector<std::string> tied = near_ties(competed, chain_tie_margin(), kChainTieMaxTactics);
    if (tied.size() > 1) {
      timed += ", tied in";
      for (const std::string& t : tied) timed += " [" + t + "]";
      res.ties->add({key, std::move(tied), {}, std::max(best_ms, 0.f)});
    }
  }
  return decided(best, timed);
}

void matmul_kernel(KernelContext& ctx) {
  const TensorRef& a = ctx.input(0);
  const TensorRef& b = ctx.input(1);
  TensorRef& c = ctx.out[0];
  if (c.numel() == 0) return;
  const int64_t op_a = ctx.attrs().i("op_a", 0), op_b = ctx.attrs().i("op_b", 0);
  const int64_t ra = static_cast<int64_t>(a.shape.size()), rb = static_cast<int64_t>(b.shape.size());
  const bool a_vec = op_a == 2 || ra == 1, b_vec = op_b == 2 || rb == 1;
  GemmShape s;
  s.dtype = a.dtype;
  s.allow_tf32 = ctx.attrs().i("allow_tf32", 0) != 0;
  s.trans_a = !a_vec && op_a == 1;
  s.trans_b = !b_vec && op_b == 1;
  int64_t M = 1, N = 1, K, kb;
  if (a_vec) {
    K = a.shape[ra - 1];
    s.lda = K;
  } else {
    M = s.trans_a ? a.shape[ra - 1] : a.shape[ra - 2];
    K = s.trans_a ? a.shape[ra - 2] : a.shape[ra - 1];
    s.lda = a.shape[ra - 1];
  }
  if (b_vec) {  // a vector of K is B^T stored 1 x K
    kb = b.shape[rb - 1];
    s.trans_b = true;
    s.ldb = kb;
  } else {
    kb = s.trans_b ? b.shape[rb - 1] : b.shape[rb - 2];
    N = s.trans_b ? b.shape[rb - 2] : b.shape[rb - 1];
    s.ldb = b.shape[rb - 1];
  }
  if (K != kb) ctx.fail("contraction dims differ: " + std::to_string(K) + " vs " + std::to_string(kb));
  s.m = M;
  s.n = N;
  s.k = K;
  s.ldc = N;
  MatmulState& state = node_state<MatmulState>(ctx);  // every call of this node has one shape
  LtGemm& gemm = state.gemm;
  const size_t es = dtype_size(a.dtype);
  if (K == 0) ctx.fail("contraction dimension is 0");
  // The fused epilogue.
  const void* bias = ctx.has_input(2) ? ctx.in[2].data : nullptr;
  const void* residual = ctx.has_input(3) ? ctx.in[3].data : nullptr;
  if (bias && (b_vec || ctx.in[2].numel() != N)) ctx.fail("the fused bias must hold N = " + std::to_string(N) + " values");
  if (residual && ctx.in[3].numel() != c.numel()) ctx.fail("the fused residual must have the output's shape");
  BiasAct fused;
  read_fused_activation(ctx.attrs(), &fused);
  if (state.erf_as_tanh < 0) state.erf_as_tanh = a.dtype != DataType::kFLOAT && half_gelu_by_tanh_form() ? 1 : 0;
  const float beta = residual ? 1.f : 0.f;
  const auto* res_bytes = static_cast<const uint8_t*>(residual);
  auto addr = [](const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); };
  Dims batch_a(a.shape.begin(), a.shape.end() - (a_vec ? 1 : 2));
  Dims batch_b(b.shape.begin(), b.shape.end() - (b_vec ? 1 : 2));
  const int64_t vol_a = volume(batch_a), vol_b = volume(batch_b);
  const int64_t out_rank = static_cast<int64_t>(c.shape.size()) - (a_vec ? 0 : 1) - (b_vec ? 0 : 1);
  Dims batch_out(c.shape.begin(), c.shape.begin() + out_rank);
  const int64_t vol_out = volume(batch_out);
  // General broadcast: maps the output batch index to each operand's batch index.
  const size_t rank = batch_out.size();
  auto operand_index = [&](const Dims& bd, int64_t flat) {
    int64_t idx = 0, stride = 1;
    for (size_t d = 0; d < rank; ++d) {
      size_t od = rank - 1 - d;
      int64_t coord = flat % batch_out[od];
      flat /= batch_out[od];
      if (d < bd.size()) {
        size_t bdim = bd.size() - 1 - d;
        if (bd[bdim] != 1) idx += coord * stride;
        stride *= bd[bdim];
      }
    }
    return idx;
  };
  // Enqueues the GEMM(s) with cuBLASLt doing as much of the epilogue as `level` allows (see MatmulState), then
  // Kiln's kernel for the rest.
  auto enqueue = [&](int level) {
    BiasAct post = fused;  // what is left for Kiln's kernel
    post.bias = nullptr;
    bool lt_act = false;
    const bool lt_bias = bias && level < 2;
    if (level == 0) s.epilogue = lt_epilogue_for(bias != nullptr, fused.act, state.erf_as_tanh == 1, &lt_act);
    else s.epilogue = lt_bias ? Epilogue::kBias : Epilogue::kNone;
    if (lt_act) post.act = -1;
    if (bias && !lt_bias) {
      post.bias = bias;
      post.channels = N;
      post.inner = 1;
    }
    const void* lt_bias_ptr = lt_bias ? bias : nullptr;
    s.batch = 1;
    s.stride_a = s.stride_b = s.stride_c = 0;
    s.m = M;
    if (vol_b == 1 && !s.trans_a && vol_a > 1) {  // fold A's batch into M: one large GEMM
      s.m = vol_a * M;
      s.align = common_alignment({addr(a.data), addr(b.data), addr(c.data), addr(residual)});
      gemm.run(ctx.res, s, a.data, b.data, c.data, lt_bias_ptr, 1.f, beta, residual);
    } else if ((vol_a == vol_out || vol_a == 1) && (vol_b == vol_out || vol_b == 1)) {
      s.batch = vol_out;
      s.stride_a = vol_a == 1 ? 0 : M * K;
      s.stride_b = vol_b == 1 ? 0 : K * N;
      s.stride_c = M * N;
      s.align = common_alignment({addr(a.data), addr(b.data), addr(c.data), addr(residual),
                                  static_cast<uint64_t>(s.stride_a * es), static_cast<uint64_t>(s.stride_b * es),
                                  static_cast<uint64_t>(s.stride_c * es)});
      gemm.run(ctx.res, s, a.data, b.data, c.data, lt_bias_ptr, 1.f, beta, residual);
    } else {
      s.align = common_alignment({addr(a.data), addr(b.data), addr(c.data), addr(residual),
                                  static_cast<uint64_t>(M * K * es), static_cast<uint64_t>(K * N * es),
                                  static_cast<uint64_t>(M * N * es)});
      for (int64_t i = 0; i < vol_out; ++i) {
        const auto* pa = static_cast<const uint8_t*>(a.data) + operand_index(batch_a, i) * M * K * es;
        const auto* pb = static_cast<const uint8_t*>(b.data) + operand_index(batch_b, i) * K * N * es;
        auto* pc = static_cast<uint8_t*>(c.data) + i * M * N * es;
        gemm.run(ctx.res, s, pa, pb, pc, lt_bias_ptr, 1.f, beta, residual ? res_bytes + i * M * N * es : nullptr);
      }
    }
    launch_bias_act(ctx.stream(), c.dtype, c.data, c.numel(), post);  // nothing when nothing is left
  };
  // cuBLASLt refuses some epilogues for some shapes/types (no algorithm, NOT_SUPPORTED): it then does less of
  // the epilogue, once for this node. The first call fails at setup, before any GEMM is enqueued.
  const bool has_epilogue = bias || fused.act >= 0;
  auto run_lt = [&] {
    for (;;) {
      try {
        enqueue(state.level);
        return;
      } catch (const Error&) {
        if (!has_epilogue || state.level >= 2) throw;
        ++state.level;
      }
    }
  };
  // Kiln's kernels: a's rows (its batch folded in, as the first branch of enqueue does) against weights [N, K]
  // that have no batch of their own.
  const GemmRows rows{a.dtype, vol_a * M, N, K, !s.trans_a && s.lda == K,
                      !b_vec && s.trans_b && s.ldb == K && vol_b == 1};
  const SmallMProblem small{rows, addr(a.data), addr(b.data)};
  SmallMGemmArgs args;
  args.a = a.data;
  args.w = b.data;
  args.bias = bias;
  args.residual = residual;
  args.y = c.data;
  args.m = rows.m;
  args.n = N;
  args.k = K;
  args.dtype = a.dtype;
  args.act = fused.act;
  args.alpha = fused.alpha;
  args.beta = fused.beta;
  const ConvTensors tensors{a.data, b.data, bias, residual, c.data};
  if (state.own.kernel == OwnKernel::kUndecided) {
    state.programmatic = programmatic_launch_enabled();
    args.programmatic = state.programmatic;
    OwnCandidates cand;
    cand.small_m_mode = small_m_gemm_mode();
    cand.small_m = cand.small_m_mode != CandidateMode::kOff && !small_m_gemm_refusal(small);
    cand.small_args = &args;
    const SplitKGemmProblem sp{rows, fused.act, fused.alpha, fused.beta};
    const DeviceInfo& dev = current_device();
    cand.splitk_mode = splitk_gemm_mode();
    if (cand.splitk_mode != CandidateMode::kOff)
      for (SplitKTile tile : splitk_gemm_tiles())
        if (!splitk_gemm_refusal(sp, dev.sm_count, dev.major, tile)) {
          SplitKTileCandidates t;
          t.geometry = splitk_gemm_geometry(sp, tile);  // its programmatic flag read with state.programmatic
          t.splits = splitk_conv_candidates(t.geometry, dev.sm_count);
          cand.splitk_tiles.push_back(std::move(t));
        }
    cand.splitk = !cand.splitk_tiles.empty();
    cand.tensors = tensors;
    cand.dtype = a.dtype;
    cand.programmatic = state.programmatic;
    state.own = decide_own_kernel(ctx, s, cand, run_lt);
    for (const SplitKTileCandidates& t : cand.splitk_tiles)
      if (state.own.kernel == OwnKernel::kSplitK && t.geometry.tile == state.own.tile) state.splitk = t.geometry;
    if (state.own.kernel == OwnKernel::kSmallM) count_small_m_gemm_chosen();
    if (state.own.kernel == OwnKernel::kSplitK) count_splitk_gemm_chosen();
  }
  args.programmatic = state.programmatic;
  args.allow_next = ctx.res.next_kernel_may_start;
  // The choice holds for the node's one shape, but the addresses are checked at every run: a caller's buffers
  // may move, and the kernels need their tensors 16-byte aligned. A run where they are not takes cuBLASLt's path
  // and the choice stays for later runs; forced too, since the choice counts alignment among the conditions the
  // kernels "apply" under (an unaligned first run never takes them).
  if (state.own.kernel == OwnKernel::kSmallM && !small_m_gemm_refusal(small)) {
    std::string why;
    if (!launch_small_m_gemm(ctx.stream(), args, &why)) ctx.fail(why);
    if (args.programmatic) note_programmatic_launch(ctx);
    return;
  }
  if (state.own.kernel == OwnKernel::kSplitK && conv_tensors_aligned(tensors, 8)) {
    std::string why;
    if (!try_launch_splitk(ctx.stream(), tensors, a.dtype, ctx.res.next_kernel_may_start, state.splitk,
                           state.own.splits, &why))
      ctx.fail(why);
    if (state.splitk.programmatic) note_programmatic_launch(ctx);
    return;
  }
  before_other_kernels(ctx);  // a misaligned run of a node that chose Kiln's kernel: see programmatic_launch.h
  run_lt();
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("MatrixMultiply", &matmul_kernel, &matmul_supports);

}  // namespace kiln::cuda
