#include "backends/cuda/kernels/attention_lt_gemm.h"

#include <string>

#include "backends/cuda/library_checks.h"

namespace kiln::cuda::kern {

namespace {

// A node with dynamic shapes meets new shapes over time: keep the most recent few (each run uses at most two
// per product: full chunks and the last chunk).
constexpr size_t kMaxEntries = 8;

cudaDataType_t lt_type(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return CUDA_R_32F;
    case DataType::kHALF: return CUDA_R_16F;
    case DataType::kBF16: return CUDA_R_16BF;
    default: throw Error(std::string("FusedAttention GEMM: unsupported dtype ") + dtype_name(t));
  }
}

}  // namespace

struct LtBatchedGemms::Entry {
  LtBatchedShape shape;
  bool ok = false;  // cuBLASLt has an algorithm
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t algo_workspace = 0;

  ~Entry() {
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (op) cublasLtMatmulDescDestroy(op);
  }

  void setup(cublasLtHandle_t lt, const LtBatchedShape& s) {
    shape = s;
    const cublasComputeType_t compute = s.ab_dtype == DataType::kFLOAT && s.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                                  : CUBLAS_COMPUTE_32F;
    KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F));
    const cublasOperation_t opa = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, opb = CUBLAS_OP_N;
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    const cudaDataType_t tab = lt_type(s.ab_dtype), tc = lt_type(s.c_dtype);
    const uint64_t a_rows = s.trans_a ? s.k : s.m, a_cols = s.trans_a ? s.m : s.k;
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, tab, a_rows, a_cols, s.lda));
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, tab, s.k, s.n, s.ldb));
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, tc, s.m, s.n, s.ldc));
    const int32_t count = static_cast<int32_t>(s.batch);
    for (auto [layout, stride] : {std::pair{la, s.stride_a}, std::pair{lb, s.stride_b}, std::pair{lc, s.stride_c}}) {
      KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      KILN_CUBLAS_CHECK(
          cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    }
    cublasLtMatmulPreference_t pref = nullptr;
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &s.workspace_bytes, sizeof(s.workspace_bytes));
    // Without the pointers' alignment cuBLASLt assumes 256 bytes and may pick an algorithm that faults.
    const uint32_t align = static_cast<uint32_t>(s.align);
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    // NOT_SUPPORTED and no result both mean "not with cuBLASLt": the caller then runs the direct kernel.
    ok = st == CUBLAS_STATUS_SUCCESS && found > 0 && result.workspaceSize <= s.workspace_bytes;
    if (ok) {
      algo = result.algo;
      algo_workspace = result.workspaceSize;
    }
  }
};

LtBatchedGemms::LtBatchedGemms() = default;
LtBatchedGemms::~LtBatchedGemms() = default;

LtBatchedGemms::Entry* LtBatchedGemms::find(const LtBatchedShape& s) {
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i]->shape == s) {
      std::unique_ptr<Entry> hit = std::move(entries_[i]);
      entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
      entries_.push_back(std::move(hit));
      return entries_.back().get();
    }
  return nullptr;
}

bool LtBatchedGemms::prepare(cublasLtHandle_t lt, const LtBatchedShape& s) {
  if (Entry* e = find(s)) return e->ok;
  if (s.batch < 1 || s.batch > 0x7fffffffLL) throw Error("FusedAttention GEMM: batch count " + std::to_string(s.batch));
  auto e = std::make_unique<Entry>();
  e->setup(lt, s);  // a descriptor failure throws and caches nothing
  if (entries_.size() >= kMaxEntries) entries_.erase(entries_.begin());  // the least recently used
  entries_.push_back(std::move(e));
  return entries_.back()->ok;
}

void LtBatchedGemms::run(cublasLtHandle_t lt, const LtBatchedShape& s, float alpha, const void* a, const void* b,
                         void* c, void* workspace, cudaStream_t stream) {
  Entry* e = find(s);
  if (!e || !e->ok) throw Error("FusedAttention GEMM: the product was not prepared");
  const float beta = 0.0f;
  // cuBLASLt's arguments are (A, B) in its own order: our A is its A. C is also D (beta 0 reads nothing).
  KILN_CUBLAS_CHECK(cublasLtMatmul(lt, e->op, &alpha, a, e->la, b, e->lb, &beta, c, e->lc, c, e->lc, &e->algo,
                                   e->algo_workspace ? workspace : nullptr, e->algo_workspace, stream));
}

}  // namespace kiln::cuda::kern
