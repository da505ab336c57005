#include "backends/cuda/cublaslt/lt_gemm.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <optional>
#include <limits>
#include <string>

#include "backends/cuda/cublaslt/split_k_candidates.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/library_checks.h"
#include "backends/cuda/stream_timing.h"
#include "backends/cuda/tactic_ties.h"
#include "kiln/timing_cache.h"
#include "runtime/env_switch.h"

namespace kiln::cuda {

namespace {

cudaDataType_t cuda_type(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return CUDA_R_32F;
    case DataType::kHALF: return CUDA_R_16F;
    case DataType::kBF16: return CUDA_R_16BF;
    default: throw Error(std::string("cuBLASLt GEMM: unsupported dtype ") + dtype_name(t));
  }
}

cublasLtEpilogue_t lt_epilogue(Epilogue e) {
  switch (e) {
    case Epilogue::kNone: return CUBLASLT_EPILOGUE_DEFAULT;
    case Epilogue::kBias: return CUBLASLT_EPILOGUE_BIAS;
    case Epilogue::kRelu: return CUBLASLT_EPILOGUE_RELU;
    case Epilogue::kBiasRelu: return CUBLASLT_EPILOGUE_RELU_BIAS;
    case Epilogue::kGelu: return CUBLASLT_EPILOGUE_GELU;
    case Epilogue::kBiasGelu: return CUBLASLT_EPILOGUE_GELU_BIAS;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

// KILN_GEMM_SPLIT_K=0 times the heuristic's candidates alone (to measure what the split-K variants give).
bool split_k_allowed() { return !env_is("KILN_GEMM_SPLIT_K", "0"); }

bool has_bias(Epilogue e) { return e == Epilogue::kBias || e == Epilogue::kBiasRelu || e == Epilogue::kBiasGelu; }

// One field of an algorithm's configuration, 0 when cuBLASLt does not report it.
template <class T>
long long algo_field(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
  T v{};
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof(v), &written) != CUBLAS_STATUS_SUCCESS) return 0;
  return static_cast<long long>(v);
}

// An algorithm as text: its id, tile, stages, split-K, reduction and swizzle codes (cublasLt.h's enums).
std::string algo_label(const cublasLtMatmulAlgo_t& algo) {
  char t[160];
  std::snprintf(t, sizeof t, "algo %lld tile %lld stages %lld split-K %lld reduction %lld swizzle %lld",
                algo_field<int32_t>(algo, CUBLASLT_ALGO_CONFIG_ID), algo_field<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_TILE_ID),
                algo_field<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID),
                algo_field<int32_t>(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                algo_field<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME),
                algo_field<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING));
  return t;
}

// An algorithm as its timing-cache record: its bytes.
std::string algo_record(const cublasLtMatmulAlgo_t& algo) {
  return std::string(reinterpret_cast<const char*>(&algo), sizeof(cublasLtMatmulAlgo_t));
}

// KILN_GEMM_LOG=1: which of cuBLASLt's algorithms a GEMM runs and where the choice came from, one line on stderr
// per setup. Two builds of a model that make the same choice of Kiln's own kernels can still differ here
// (bench/rebuild_probe.py).
void log_lt_choice(const GemmShape& s, const cublasLtMatmulAlgo_t& algo, const std::string& how) {
  if (!env_is("KILN_GEMM_LOG", "1")) return;
  std::fprintf(stderr, "kiln: cuBLASLt %lld x %lld x %lld (batch %lld): %s -> %s\n", static_cast<long long>(s.m),
               static_cast<long long>(s.n), static_cast<long long>(s.k), static_cast<long long>(s.batch), how.c_str(),
               algo_label(algo).c_str());
}

}  // namespace

int64_t common_alignment(std::initializer_list<uint64_t> values) {
  int64_t a = 256;
  for (uint64_t v : values)
    while (a > 1 && v % static_cast<uint64_t>(a) != 0) a /= 2;
  return a;
}

LtGemm::~LtGemm() { release(); }

void LtGemm::release() {
  if (la_) cublasLtMatrixLayoutDestroy(la_);
  if (lb_) cublasLtMatrixLayoutDestroy(lb_);
  if (lc_) cublasLtMatrixLayoutDestroy(lc_);
  if (op_) cublasLtMatmulDescDestroy(op_);
  la_ = lb_ = lc_ = nullptr;
  op_ = nullptr;
  bias_ = nullptr;
  ready_ = false;
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLASLt's "A" is our B and its "B" our A,
// each read column-major with our row-major leading dimension, so the transpose flags carry over unchanged.
//
// The bias epilogue in that view: cuBLASLt adds a vector whose length is the number of rows of its D (the
// column-major m) to every column. Its D is our C^T, an n x m column-major matrix (leading dimension ldc):
// its rows are our columns, so the vector runs along our row-major N, the last dim of the output, and is the
// same for each of our M rows. That is exactly the [N] bias of a fused MatrixMultiply (y[i, j] += bias[j]).
// The residual is cuBLASLt's C (beta = 1) with D's layout: D = act(A B + C + bias), the epilogue applied after
// beta * C is added.
void LtGemm::setup(Resources& res, const GemmShape& s, const void* bias, const Timing& timing) {
  release();
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  if (s.dtype == DataType::kFLOAT && s.allow_tf32) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  cudaDataType_t t = cuda_type(s.dtype);
  KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op_, compute, CUDA_R_32F));
  cublasOperation_t opa = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt's A = our B
  cublasOperation_t opb = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
  KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
  cublasLtEpilogue_t epi = lt_epilogue(s.epilogue);
  KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (has_bias(s.epilogue)) {
    // The bias has D's type (float16 output: a float16 bias); set before the heuristic, which reads the
    // pointer's alignment.
    cudaDataType_t bt = t;
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    bias_ = bias;
  }
  // Column-major shapes: our B (k x n row-major, or n x k when transposed) is n x k / k x n column-major.
  uint64_t a_rows = s.trans_b ? s.k : s.n, a_cols = s.trans_b ? s.n : s.k;
  uint64_t b_rows = s.trans_a ? s.m : s.k, b_cols = s.trans_a ? s.k : s.m;
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la_, t, a_rows, a_cols, s.ldb));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb_, t, b_rows, b_cols, s.lda));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc_, t, s.n, s.m, s.ldc));
  if (s.batch > 1) {
    int32_t count = static_cast<int32_t>(s.batch);
    int64_t sa = s.stride_b, sb = s.stride_a, sc = s.stride_c;
    for (auto [layout, stride] : {std::pair{la_, sa}, std::pair{lb_, sb}, std::pair{lc_, sc}}) {
      KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      KILN_CUBLAS_CHECK(
          cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  size_t ws = res.workspace_bytes;
  KILN_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const uint32_t align = static_cast<uint32_t>(s.align);
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align)));
  const std::string key = tactic_key(res, "gemm", "cublasLt " + std::to_string(cublasLtGetVersion()), gemm_problem(s));
  if (use_recorded(res, key)) {
    if (res.ties) res.ties->note_use(key);  // one more layer of this problem, for its tie's stake
    log_lt_choice(s, algo_, "recorded");
    cublasLtMatmulPreferenceDestroy(pref);
    shape_ = s;
    ready_ = true;
    return;
  }
  std::array<cublasLtMatmulHeuristicResult_t, kCandidates> results{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(res.cublaslt, op_, la_, lb_, lc_, lc_, pref, kCandidates,
                                                     results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0)
    throw Error("cuBLASLt has no algorithm for a " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" +
                std::to_string(s.k) + " " + dtype_name(s.dtype) + " GEMM (batch " + std::to_string(s.batch) + ")");
  // Timed: the heuristic's candidates and split-K variants of its first ones (split_k_candidates.h);
  // untimed (inside a capture): the heuristic's first.
  std::vector<cublasLtMatmulHeuristicResult_t> candidates(results.begin(), results.begin() + found);
  int best = 0;
  float best_ms = -1;
  std::string tied;
  if (timing.allowed) {
    if (split_k_allowed())
      candidates = with_split_k_variants(res.cublaslt, op_, la_, lb_, lc_, results.data(), found, s.k, res.workspace_bytes);
    if (candidates.empty()) candidates.assign(results.begin(), results.begin() + 1);
    std::vector<float> times;
    if (candidates.size() > 1)
      best = fastest(res, candidates.data(), static_cast<int>(candidates.size()), timing, &best_ms, &times);
    if (res.tactics) res.tactics->record(key, algo_record(candidates[best].algo));
    if (res.ties && res.tactics) tied = report_tie(*res.ties, key, candidates, times, best_ms);
  }
  algo_ = candidates[best].algo;
  algo_workspace_ = candidates[best].workspaceSize;
  char how[96];
  if (best_ms >= 0)
    std::snprintf(how, sizeof how, "fastest of %zu timed, %.1f us", candidates.size(), best_ms * 1e3);
  else
    std::snprintf(how, sizeof how, "%s", timing.allowed ? "the only candidate" : "untimed (inside a capture)");
  log_lt_choice(s, algo_, how + tied);
  shape_ = s;
  ready_ = true;
}

// The build's chain timing (tactic_ties.h) of the algorithms that tie alone: GPT-2's 12 c_fc GEMMs (128 x 3072 x
// 768) timed 5.5 us with tile 15 and ~5.8 us with tile 92, which build took was noise, and the model ran ~1.4%
// faster with tile 92 (bench/NOTES.md, twenty-first session). Reports the tie to `ties` when there is one;
// returns its text for the log ("" when none).
std::string LtGemm::report_tie(TacticTies& ties, const std::string& key,
                               const std::vector<cublasLtMatmulHeuristicResult_t>& candidates,
                               const std::vector<float>& times, float best_ms) {
  std::vector<std::pair<std::string, float>> timed;
  for (size_t i = 0; i < times.size() && i < candidates.size(); ++i)
    timed.emplace_back(algo_record(candidates[i].algo), times[i]);
  TacticTie tie{key, near_ties(timed, chain_tie_margin(), kChainTieMaxTactics), {}, std::max(best_ms, 0.f)};
  if (tie.tactics.size() < 2) return "";
  std::string text = ", tied in";
  for (const std::string& record : tie.tactics) {
    cublasLtMatmulAlgo_t algo{};
    std::memcpy(&algo, record.data(), sizeof(algo));
    tie.labels.push_back(algo_label(algo));
    text += " [" + tie.labels.back() + "]";
  }
  ties.add(std::move(tie));
  return text;
}

// The recorded algorithm for this problem, if one is recorded and cuBLASLt still accepts it for these
// descriptors (the record may come from a plan or cache made with other alignments of the same shape).
bool LtGemm::use_recorded(Resources& res, const std::string& key) {
  if (!res.tactics) return false;
  std::optional<std::string> rec = res.tactics->find(key);
  if (!rec || rec->size() != sizeof(cublasLtMatmulAlgo_t)) return false;
  cublasLtMatmulAlgo_t algo{};
  std::memcpy(&algo, rec->data(), sizeof(algo));
  cublasLtMatmulHeuristicResult_t check{};
  if (cublasLtMatmulAlgoCheck(res.cublaslt, op_, la_, lb_, lc_, lc_, &algo, &check) != CUBLAS_STATUS_SUCCESS ||
      check.workspaceSize > res.workspace_bytes)
    return false;
  algo_ = algo;
  algo_workspace_ = check.workspaceSize;
  return true;
}

// Every field of the problem that changes which algorithms apply, as text.
std::string gemm_problem(const GemmShape& s) {
  std::string p;
  for (int64_t v : {int64_t(s.trans_a), int64_t(s.trans_b), s.m, s.n, s.k, s.lda, s.ldb, s.ldc, s.stride_a, s.stride_b,
                    s.stride_c, s.batch, int64_t(s.allow_tf32), int64_t(s.epilogue), s.align})
    p += std::to_string(v) + ",";
  return p + dtype_name(s.dtype);
}

// Times the heuristic's candidates on this call's own operands (time_ms: a warm-up, then the best of a few
// timed rounds) and returns the fastest's index: the heuristic ranks by a model, which can misjudge the
// skinny and batched products of inference. A candidate that fails to launch is skipped. Runs once per node
// and shape, on the context's first (eager) run, never inside a CUDA-graph capture.
int LtGemm::fastest(Resources& res, const cublasLtMatmulHeuristicResult_t* results, int found, const Timing& t,
                    float* best_ms_out, std::vector<float>* times) {
  int best = 0;
  float best_ms = std::numeric_limits<float>::infinity();
  if (times) times->assign(found, -1.f);
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    const float ms = time_ms(res.stream, [&] {
      return cublasLtMatmul(res.cublaslt, op_, &t.alpha, t.b, la_, t.a, lb_, &t.beta, t.c_in, lc_, t.c, lc_,
                            &results[i].algo, res.workspace, res.workspace_bytes, res.stream) == CUBLAS_STATUS_SUCCESS;
    });
    if (times) (*times)[i] = ms;
    if (ms >= 0 && ms < best_ms) {
      best_ms = ms;
      best = i;
    }
  }
  if (best_ms_out) *best_ms_out = best_ms < std::numeric_limits<float>::infinity() ? best_ms : -1.f;
  return best;
}

void LtGemm::run(Resources& res, const GemmShape& s, const void* a, const void* b, void* c, const void* bias,
                 float alpha, float beta, const void* c_in) {
  if (has_bias(s.epilogue) && !bias) throw Error("cuBLASLt GEMM: the bias epilogue needs a bias pointer");
  if (!ready_ || !(shape_ == s)) {
    // Timing writes D, so it needs a C that is not D when beta reads it (a residual passed apart, or none).
    const void* c_read = c_in ? c_in : c;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    KILN_CUDA_CHECK(cudaStreamIsCapturing(res.stream, &capture));
    Timing timing{capture == cudaStreamCaptureStatusNone && (beta == 0.f || c_read != c), a, b, c, c_read, alpha, beta};
    setup(res, s, bias, timing);
  }
  if (has_bias(s.epilogue) && bias != bias_) {
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    bias_ = bias;
  }
  KILN_CUBLAS_CHECK(cublasLtMatmul(res.cublaslt, op_, &alpha, b, la_, a, lb_, &beta, c_in ? c_in : c, lc_, c, lc_,
                                   &algo_, res.workspace, res.workspace_bytes, res.stream));
}

}  // namespace kiln::cuda
