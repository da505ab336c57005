// CUDA kernel for FusedAttention: out = softmax(scale * q @ k^T + mask) @ v. Three implementations:
//  - Library GEMMs (attention_gemm_path.h): cuBLASLt batched products around a float32 softmax, taken when q,
//    k, v and the output have uniform strides over the (batch*head) slices (tokens-major tensors only with
//    B == 1 or H == 1) and a slice's scores fit in the workspace.
//  - The flash kernel on tensor cores (attention_flash_mma.h): float16/bfloat16, head size D = Dv = 64 or 128,
//    sm_80+, 16-byte aligned rows; everything stays in registers, the scores never reach memory.
//  - The generic flash-style kernel below for everything else (float32, other head sizes up to 256, unaligned
//    tensors): 8 warps, 4 query rows each, key tiles of 32 staged as float; lane j scores key j of the tile,
//    lanes own output columns lane + 32 t; a running max and sum per row (online softmax).
// All three read q, k, v and write the output through the layout's offsets and strides
// (fused_attention_layout.h), so heads-major, tokens-major and packed tensors need no transposing copy.
//
// Where both the GEMM path and the flash kernel apply, neither wins everywhere (the GEMM path pays a round
// trip of the scores through memory, the flash kernel wastes the tail of its last key tile and, for a few
// queries, most of its 64-row query tile), so the first run of a node for a shape times both on the
// context's stream (stream_timing.h) and keeps the faster, recorded in the timing cache under
// "attention-path" so that later builds and contexts reuse it. Timing synchronizes, which a CUDA graph
// capture forbids: a first run inside a capture, with nothing recorded, takes the GEMM path (and times later).
// KILN_ATTENTION=gemm (the GEMM path wherever it applies) or =flash (the flash kernel, an error where it does
// not apply) forces a path for tests and A/B runs; unset or "auto", the timed choice. KILN_ATTENTION_LOG=1
// prints each timed choice on stderr.
//
// Rows with no visible key give 0 on every path. Accumulation is float32 throughout. The mask is read through
// strides over [B, H, Sq, Sk] (0 on broadcast dims); causal masks j > i + Sk - Sq, and the direct kernels skip
// key tiles that are causally hidden from the whole block.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "backends/cuda/device.h"
#include "backends/cuda/kernels/attention_flash_mma.h"
#include "backends/cuda/kernels/attention_gemm_path.h"
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/dynamic_smem.h"
#include "backends/cuda/stream_timing.h"
#include "backends/fused_attention_layout.h"
#include "kiln/timing_cache.h"

namespace kiln::cuda::kern {
namespace {

struct AttnParams {
  const void* q;
  const void* k;
  const void* v;
  const void* mask;
  void* out;
  int64_t H, Sq, Sk, D, Dv;
  int64_t q_sb, q_sh, k_sb, k_sh, v_sb, v_sh;
  int64_t q_ss, k_ss, v_ss;  // row strides (K^T: between its D rows)
  int64_t o_sb, o_sh, o_ss;
  int64_t m_sb, m_sh, m_si, m_sj;
  int64_t nq;  // query tiles per (batch, head)
  float scale;
  int mask_dtype;
  int has_mask;
  int causal;
  int k_transposed;
};

// The scaled, masked score of query i and key j (-inf when not visible or out of range).
__device__ __forceinline__ float masked_score(const AttnParams& p, float acc, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (i >= p.Sq || j >= p.Sk) return -INFINITY;
  if (p.causal && j > i + (p.Sk - p.Sq)) return -INFINITY;
  float s = acc * p.scale;
  if (p.has_mask) s += load_param(p.mask, p.mask_dtype, b * p.m_sb + h * p.m_sh + i * p.m_si + j * p.m_sj);
  return s;
}

// Keys [0, k_end) can be visible to the query rows [q0, q0 + rows) of this block.
__device__ __forceinline__ int64_t key_end(const AttnParams& p, int64_t q0, int64_t rows) {
  if (!p.causal) return p.Sk;
  const int64_t last = (q0 + rows < p.Sq ? q0 + rows : p.Sq) + (p.Sk - p.Sq);  // exclusive
  return last < p.Sk ? last : p.Sk;
}

// ------------------------------------------------------------------------------------------------------
// Generic path.

constexpr int kGRows = 4, kGWarps = 8, kGBQ = kGRows * kGWarps, kGBK = 32, kGThreads = kGWarps * 32;

inline size_t generic_smem_bytes(int64_t D, int64_t Dv) {
  return sizeof(float) * static_cast<size_t>(kGBQ * D + kGBK * (D | 1) + kGBK * Dv);
}

template <class T, int CH>
__global__ void __launch_bounds__(kGThreads) k_attention_generic(const AttnParams p) {
  extern __shared__ float gsm[];
  const int64_t D = p.D, Dv = p.Dv, KLD = p.D | 1;  // odd key stride: lane j reads row j conflict-free
  float* Qs = gsm;
  float* Ks = Qs + kGBQ * D;
  float* Vs = Ks + kGBK * KLD;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.x / p.nq;
  const int64_t q0 = (blockIdx.x % p.nq) * kGBQ;
  const int64_t b = bh / p.H, h = bh % p.H;
  const T* q = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* k = static_cast<const T*>(p.k) + b * p.k_sb + h * p.k_sh;
  const T* v = static_cast<const T*>(p.v) + b * p.v_sb + h * p.v_sh;

  for (int64_t idx = threadIdx.x; idx < kGBQ * D; idx += kGThreads) {
    const int64_t r = idx / D, c = idx - r * D;
    Qs[idx] = q0 + r < p.Sq ? to_f(q[(q0 + r) * p.q_ss + c]) : 0.0f;
  }
  float o[kGRows][CH], row_m[kGRows], row_l[kGRows];
#pragma unroll
  for (int rr = 0; rr < kGRows; ++rr) {
    row_m[rr] = -INFINITY;
    row_l[rr] = 0.0f;
#pragma unroll
    for (int t = 0; t < CH; ++t) o[rr][t] = 0.0f;
  }

  const int64_t k_end = key_end(p, q0, kGBQ);
  for (int64_t k0 = 0; k0 < k_end; k0 += kGBK) {
    __syncthreads();  // Q is stored (first tile); the previous tile's K/V are no longer read
    if (p.k_transposed) {
      for (int64_t idx = threadIdx.x; idx < kGBK * D; idx += kGThreads) {
        const int64_t key = idx % kGBK, d = idx / kGBK;
        Ks[key * KLD + d] = k0 + key < p.Sk ? to_f(k[d * p.k_ss + k0 + key]) : 0.0f;
      }
    } else {
      for (int64_t idx = threadIdx.x; idx < kGBK * D; idx += kGThreads) {
        const int64_t key = idx / D, d = idx - key * D;
        Ks[key * KLD + d] = k0 + key < p.Sk ? to_f(k[(k0 + key) * p.k_ss + d]) : 0.0f;
      }
    }
    for (int64_t idx = threadIdx.x; idx < kGBK * Dv; idx += kGThreads) {
      const int64_t key = idx / Dv, c = idx - key * Dv;
      Vs[idx] = k0 + key < p.Sk ? to_f(v[(k0 + key) * p.v_ss + c]) : 0.0f;
    }
    __syncthreads();
    const int nk = static_cast<int>(p.Sk - k0 < kGBK ? p.Sk - k0 : kGBK);
#pragma unroll
    for (int rr = 0; rr < kGRows; ++rr) {
      const int r = warp * kGRows + rr;
      const int64_t i = q0 + r;
      if (i >= p.Sq) continue;  // warp-uniform
      float acc = 0.0f;
      const float* qr = Qs + r * D;
      const float* kr = Ks + lane * KLD;
      for (int64_t d = 0; d < D; ++d) acc = fmaf(qr[d], kr[d], acc);
      const float s = masked_score(p, acc, b, h, i, k0 + lane);
      const float mn = fmaxf(row_m[rr], warp_allreduce(s, MaxOp{}));
      const float mu = mn == -INFINITY ? 0.0f : mn;
      const float alpha = expf(row_m[rr] - mu);
      const float pj = expf(s - mu);
      row_l[rr] = row_l[rr] * alpha + warp_allreduce(pj, SumOp{});
      row_m[rr] = mn;
#pragma unroll
      for (int t = 0; t < CH; ++t) o[rr][t] *= alpha;
      for (int j = 0; j < nk; ++j) {
        const float pb = __shfl_sync(0xffffffffu, pj, j);
        const float* vr = Vs + j * Dv;
#pragma unroll
        for (int t = 0; t < CH; ++t) {
          const int64_t c = lane + 32 * t;
          if (c < Dv) o[rr][t] = fmaf(pb, vr[c], o[rr][t]);
        }
      }
    }
  }

  T* out = static_cast<T*>(p.out) + b * p.o_sb + h * p.o_sh;
#pragma unroll
  for (int rr = 0; rr < kGRows; ++rr) {
    const int64_t i = q0 + warp * kGRows + rr;
    if (i >= p.Sq) continue;
    const float inv = row_l[rr] > 0.0f ? 1.0f / row_l[rr] : 0.0f;
#pragma unroll
    for (int t = 0; t < CH; ++t) {
      const int64_t c = lane + 32 * t;
      if (c < Dv) out[i * p.o_ss + c] = from_f<T>(o[rr][t] * inv);
    }
  }
}

// ------------------------------------------------------------------------------------------------------
// Host side.

constexpr int64_t kMaxHead = 256;

bool supports_fused_attention(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  if (in.size() < 3) return false;
  const DataType dt = in[0].dtype;
  if (!is_float_type(dt) || in[1].dtype != dt || in[2].dtype != dt) return false;
  if (in.size() > 3 && in[3].present && !is_float_type(in[3].dtype)) return false;
  bool three_d = false;
  if (!ir::check_attention_format(ir::attention_format(node.attrs), in[0].shape, in[1].shape, in[2].shape, &three_d).empty())
    return false;
  // Head sizes unknown at build time (-1, dynamic shapes) are accepted: the kernel checks the concrete sizes.
  // The last dim is the head size in every layout (K^T's is the key count: q has D).
  const int64_t d = in[0].shape.back(), dv = in[2].shape.back();
  return d <= kMaxHead && dv <= kMaxHead;
}

// The element `off` elements after a tensor's data pointer (a packed input's slot).
const void* at_offset(const void* data, int64_t off, DataType dt) {
  return static_cast<const uint8_t*>(data) + off * static_cast<int64_t>(dtype_size(dt));
}

template <class T, int CH>
void launch_generic(const AttnParams& p, int64_t blocks, int device, cudaStream_t s) {
  static std::atomic<int> raised[kMaxSmemDevices];
  const size_t smem = generic_smem_bytes(p.D, p.Dv);
  allow_dynamic_smem(k_attention_generic<T, CH>, smem, device, raised);
  k_attention_generic<T, CH><<<static_cast<unsigned>(blocks), kGThreads, smem, s>>>(p);
  KILN_CUDA_LAUNCH_CHECK();
}

void run_generic(KernelContext& ctx, const AttentionLayout& L, const DeviceInfo& dev) {
  if (L.D > kMaxHead || L.Dv > kMaxHead)
    ctx.fail("head sizes up to " + std::to_string(kMaxHead) + " are supported by the direct kernel, got " +
             std::to_string(L.D) + " and " + std::to_string(L.Dv) +
             " (the GEMM path, which takes any size, needs uniform (batch*head) strides and workspace for the scores)");
  if (static_cast<size_t>(dev.max_shared_per_block_optin) < generic_smem_bytes(L.D, L.Dv))
    ctx.fail("head sizes " + std::to_string(L.D) + "/" + std::to_string(L.Dv) + " need more shared memory than the device has");
  const bool has_mask = ctx.has_input(3);
  AttnParams p{};
  const DataType dt = ctx.input(0).dtype;
  p.q = at_offset(ctx.input(0).data, L.q_off, dt);
  p.k = at_offset(ctx.input(1).data, L.k_off, dt);
  p.v = at_offset(ctx.input(2).data, L.v_off, dt);
  p.mask = has_mask ? ctx.input(3).data : nullptr;
  p.out = ctx.out[0].data;
  p.H = L.H;
  p.Sq = L.Sq;
  p.Sk = L.Sk;
  p.D = L.D;
  p.Dv = L.Dv;
  copy_attention_strides(L, &p);
  p.scale = static_cast<float>(ctx.attrs().f("scale", 1.0));
  p.mask_dtype = has_mask ? static_cast<int>(ctx.input(3).dtype) : 0;
  p.has_mask = has_mask ? 1 : 0;
  p.causal = ctx.attrs().i("causal", 0) != 0 ? 1 : 0;
  p.k_transposed = L.k_transposed ? 1 : 0;
  p.nq = (L.Sq + kGBQ - 1) / kGBQ;
  const int64_t blocks = p.nq * L.B * L.H;
  if (blocks > 0x7fffffffLL) ctx.fail("too many (batch, head, query tile) blocks");
  cudaStream_t s = ctx.stream();
  dispatch_float(ctx.input(0).dtype, [&](auto tag) {
    using T = decltype(tag);
    if (L.Dv <= 32) launch_generic<T, 1>(p, blocks, dev.ordinal, s);
    else if (L.Dv <= 64) launch_generic<T, 2>(p, blocks, dev.ordinal, s);
    else if (L.Dv <= 128) launch_generic<T, 4>(p, blocks, dev.ordinal, s);
    else launch_generic<T, 8>(p, blocks, dev.ordinal, s);
  });
}

// ---- Choosing between the GEMM path and the flash kernel ----

enum class AttentionMode { kAuto, kGemm, kFlash };

AttentionMode attention_mode(const KernelContext& ctx) {
  const char* v = std::getenv("KILN_ATTENTION");
  if (!v || !*v || std::strcmp(v, "auto") == 0) return AttentionMode::kAuto;
  if (std::strcmp(v, "gemm") == 0) return AttentionMode::kGemm;
  if (std::strcmp(v, "flash") == 0) return AttentionMode::kFlash;
  ctx.fail(std::string("KILN_ATTENTION must be auto, gemm or flash, got '") + v + "'");
}

bool attention_log_enabled() {
  const char* v = std::getenv("KILN_ATTENTION_LOG");
  return v && *v && std::strcmp(v, "0") != 0;
}

// FusedAttention's state per node and context (one slot per node, see node_state<>).
struct FusedAttentionState {
  AttentionGemmState gemm;
  std::map<std::string, bool> flash_wins;  // problem -> the flash kernel was faster, per timing or record
};

// What the two paths' speeds depend on, as timing-cache text (the workspace decides the GEMM path's chunks).
std::string attention_problem(const KernelContext& ctx) {
  std::string p = std::string(dtype_name(ctx.input(0).dtype)) + " q" + dims_str(ctx.input(0).shape) + " k" +
                  dims_str(ctx.input(1).shape) + " v" + dims_str(ctx.input(2).shape);
  if (ctx.has_input(3)) p += std::string(" mask ") + dtype_name(ctx.input(3).dtype) + dims_str(ctx.input(3).shape);
  if (ctx.attrs().i("causal", 0) != 0) p += " causal";
  if (ctx.attrs().i("k_transposed", 0) != 0) p += " k_transposed";
  // Storage other than heads-major (recorded choices for heads-major nodes keep their keys).
  const ir::AttentionFormat f = ir::attention_format(ctx.attrs());
  if (f.layout[0] != 0 || f.layout[1] != 0 || f.layout[2] != 0 || f.out_layout != 0)
    p += " layouts q" + std::to_string(f.layout[0]) + "." + std::to_string(f.slot[0]) + " k" + std::to_string(f.layout[1]) +
         "." + std::to_string(f.slot[1]) + " v" + std::to_string(f.layout[2]) + "." + std::to_string(f.slot[2]) + " out" +
         std::to_string(f.out_layout);
  return p + " ws" + std::to_string(ctx.res.workspace_bytes);
}

std::string ms_str(float ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f ms", ms);
  return buf;
}

// Whether the flash kernel should run this problem rather than the GEMM path (both may apply; see the top of
// the file). Times both on the node's tensors (the output is scratch until the real run) unless the node or
// the timing cache already knows the answer.
bool flash_is_faster(KernelContext& ctx, const AttentionLayout& L, const FlashAttentionArgs& fa, const DeviceInfo& dev,
                     FusedAttentionState& st) {
  const std::string problem = attention_problem(ctx);
  if (auto it = st.flash_wins.find(problem); it != st.flash_wins.end()) return it->second;
  const std::string key = tactic_key(ctx.res, "attention-path",
                                     "kiln-flash-mma-1 cublasLt " + std::to_string(cublasLtGetVersion()), problem);
  if (std::optional<std::string> rec = ctx.res.tactics ? ctx.res.tactics->find(key) : std::nullopt) {
    if (*rec == "flash" || *rec == "gemm") return st.flash_wins[problem] = *rec == "flash";
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(ctx.stream(), &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone) {
    cudaGetLastError();
    return false;  // nothing timed or kept: the GEMM path as before the flash kernel existed
  }
  const float gemm_ms = time_ms(ctx.stream(), [&] { return run_attention_gemm(ctx, L, st.gemm); });
  if (gemm_ms < 0) return st.flash_wins[problem] = true;  // the GEMM path declines this problem
  const float flash_ms = time_ms(ctx.stream(), [&] {
    launch_flash_attention(fa, dev, ctx.stream());
    return true;
  });
  const bool flash = flash_ms < gemm_ms;
  if (ctx.res.tactics) ctx.res.tactics->record(key, flash ? "flash" : "gemm");
  if (attention_log_enabled())
    std::fprintf(stderr, "kiln: attention '%s' %s: flash %s, gemm %s -> %s\n", ctx.node.name.c_str(), problem.c_str(),
                 ms_str(flash_ms).c_str(), ms_str(gemm_ms).c_str(), flash ? "flash" : "gemm");
  return st.flash_wins[problem] = flash;
}

void fused_attention_kernel(KernelContext& ctx) {
  const TensorRef& q = ctx.input(0);
  const TensorRef& k = ctx.input(1);
  const TensorRef& v = ctx.input(2);
  const bool has_mask = ctx.has_input(3);
  if (!is_float_type(q.dtype) || k.dtype != q.dtype || v.dtype != q.dtype)
    ctx.fail(std::string("q, k and v must share a float dtype, got ") + dtype_name(q.dtype) + ", " +
             dtype_name(k.dtype) + ", " + dtype_name(v.dtype));
  if (has_mask && !is_float_type(ctx.input(3).dtype))
    ctx.fail(std::string("the mask must be float32, float16 or bfloat16, got ") + dtype_name(ctx.input(3).dtype));
  AttentionLayout L;
  const std::string err =
      attention_layout(q.shape, k.shape, v.shape, has_mask ? &ctx.input(3).shape : nullptr, ctx.attrs(), &L);
  if (!err.empty()) ctx.fail(err);
  if (ctx.out[0].numel() == 0) return;

  const DeviceInfo& dev = ctx.res.device ? *ctx.res.device : current_device();
  FlashAttentionArgs fa;
  fa.dtype = q.dtype;
  fa.L = L;
  fa.q = q.data;
  fa.k = k.data;
  fa.v = v.data;
  fa.out = ctx.out[0].data;
  if (has_mask) {
    fa.mask = ctx.input(3).data;
    fa.mask_dtype = ctx.input(3).dtype;
  }
  fa.scale = static_cast<float>(ctx.attrs().f("scale", 1.0));
  fa.causal = ctx.attrs().i("causal", 0) != 0;
  const std::string flash_unsupported = flash_attention_unsupported(fa, dev);
  const bool flash = flash_unsupported.empty();

  FusedAttentionState& st = node_state<FusedAttentionState>(ctx);
  switch (attention_mode(ctx)) {
    case AttentionMode::kFlash:
      if (!flash) ctx.fail("KILN_ATTENTION=flash, but the flash kernel does not take this node: " + flash_unsupported);
      break;
    case AttentionMode::kGemm:
      if (run_attention_gemm(ctx, L, st.gemm)) return;
      break;
    case AttentionMode::kAuto:
      if (!(flash && flash_is_faster(ctx, L, fa, dev, st)) && run_attention_gemm(ctx, L, st.gemm)) return;
      break;
  }
  fa.allow_next = ctx.res.next_kernel_may_start;  // after the timing runs: nothing of theirs follows them
  if (flash) launch_flash_attention(fa, dev, ctx.stream());
  else run_generic(ctx, L, dev);
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("FusedAttention", &fused_attention_kernel, &supports_fused_attention);

}  // namespace kiln::cuda::kern
