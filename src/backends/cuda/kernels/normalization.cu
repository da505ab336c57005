// CUDA kernel for Normalization (LayerNorm, InstanceNorm, GroupNorm): mean and variance over `axes` (and
// over channel groups when num_groups > 1), then y = (x - mean) / sqrt(var + eps) * scale + bias with scale
// and bias broadcast against x. Statistics are two-pass (mean, then mean of squared deviations) in float32.
//
// With groups the channel axis is split into [G, C/G] and C/G joins the statistics dims (as the CPU kernel).
// The statistics dims must then form one contiguous run once size-1 dims are dropped, so x is
// [outer, D, inner]: inner == 1 (LayerNorm, GroupNorm, InstanceNorm on NCHW) runs a warp or a block per
// row; inner > 1 runs a thread per (outer, inner) column. Other layouts run on the CPU backend (the
// `supports` predicate says no). scale/bias may be any float dtype.
//
// LayerNorm proper (rows of up to 256 16-byte vectors, scale and bias indexed by the position in the row
// alone) takes a faster kernel: a warp per row holds the row in registers, so x is read from memory once
// instead of three times, with 16-byte loads and stores, and scale/bias are read once per warp instead of
// through a broadcast walk per element. The general row kernel ran BERT-base's LayerNorms at ~0.4 TB/s
// (~25 us each at batch 1, a third of the model's time); this one is bound by memory bandwidth.
//
// That kernel also takes part in programmatic dependent launch (programmatic_launch.h): it may start beside
// the kernel before it (it waits for it first thing), and it lets the next start at once where the executor
// says that one waits too. Why: a transformer at batch 1 runs 25 LayerNorms of ~3 us between its GEMMs, and
// each GEMM of Kiln's loads its weights while the LayerNorm before it still runs only if the LayerNorm lets it
// start (cublaslt/splitk_gemm.h).
//
// y is stored in x's dtype, or in float32 where passes/fold_normalization_cast folded the Cast after the op
// (a transformer's last LayerNorm feeding its float32 output): one kernel and a round trip of y less.
#include <cmath>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/programmatic_launch.cuh"
#include "backends/cuda/programmatic_launch.h"
#include "runtime/env_switch.h"

namespace kiln::cuda::kern {
namespace {

struct NormParams {
  const void* scale;
  const void* bias;
  int scale_dt, bias_dt;
  Walk<2> pw;  // x flat index -> (scale, bias) offsets
  float eps;
};

__device__ __forceinline__ float affine(const NormParams& p, int64_t flat, float v) {
  int64_t off[2];
  p.pw.offsets(flat, off);
  return v * load_param(p.scale, p.scale_dt, off[0]) + load_param(p.bias, p.bias_dt, off[1]);
}

template <class T, class O>
__global__ void k_norm_rows(const T* __restrict__ x, O* __restrict__ y, int64_t rows, int64_t n, NormParams p,
                            int tpr) {
  __shared__ float smem[kThreads / 32];
  const int rpb = blockDim.x / tpr;
  const int lane = threadIdx.x % tpr;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * rpb + threadIdx.x / tpr; row < rows;
       row += static_cast<int64_t>(gridDim.x) * rpb) {
    const T* xr = x + row * n;
    float s = 0.0f;
    for (int64_t i = lane; i < n; i += tpr) s += to_f(xr[i]);
    const float mean = row_allreduce(s, SumOp{}, tpr, smem) / static_cast<float>(n);
    float q = 0.0f;
    for (int64_t i = lane; i < n; i += tpr) {
      const float d = to_f(xr[i]) - mean;
      q += d * d;
    }
    const float var = row_allreduce(q, SumOp{}, tpr, smem) / static_cast<float>(n);
    const float rstd = 1.0f / sqrtf(var + p.eps);
    for (int64_t i = lane; i < n; i += tpr)
      y[row * n + i] = from_f<O>(affine(p, row * n + i, (to_f(xr[i]) - mean) * rstd));
  }
}

template <class T, class O>
__global__ void k_norm_cols(const T* __restrict__ x, O* __restrict__ y, int64_t outer, int64_t n, int64_t inner,
                            NormParams p) {
  const int64_t total = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const int64_t o = t / inner, i = t - o * inner;
    const int64_t base = o * n * inner + i;
    float s = 0.0f;
    for (int64_t r = 0; r < n; ++r) s += to_f(x[base + r * inner]);
    const float mean = s / static_cast<float>(n);
    float q = 0.0f;
    for (int64_t r = 0; r < n; ++r) {
      const float d = to_f(x[base + r * inner]) - mean;
      q += d * d;
    }
    const float rstd = 1.0f / sqrtf(q / static_cast<float>(n) + p.eps);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t e = base + r * inner;
      y[e] = from_f<O>(affine(p, e, (to_f(x[e]) - mean) * rstd));
    }
  }
}

// Warp-per-row LayerNorm over rows of n = 32 * NV * kVec elements at most (see the top of the file). Each
// lane owns the vectors lane, lane + 32, ...; lanes past the row's end skip theirs. The statistics are
// two-pass like k_norm_rows (mean, then mean of squared deviations), from registers. P is the dtype of scale
// and bias (float32 or T): they are read with vector loads too, and stay in L1 across a block's rows. O is the
// dtype y is stored in (T, or float32 where a Cast to float32 was folded in); a vector of x becomes
// sizeof(O) / sizeof(T) 16-byte pieces of y.
template <class T, class P, int NV, class O>
__global__ void k_layernorm_warp(const T* __restrict__ x, O* __restrict__ y, int64_t rows, int n,
                                 const P* __restrict__ scale, const P* __restrict__ bias, float eps,
                                 bool allow_next) {
  constexpr int kVec = 16 / sizeof(T);
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  const int nvec = n / kVec;
  // This lane's pieces of scale and bias (the same for every row), loaded before the wait where they are few (at
  // most 4 16-byte pieces each: a 768-wide float16 row's 3 vectors a lane): they are weights no kernel writes,
  // so their trip to memory overlaps the kernel before, or at least x's. Why: loaded after the statistics,
  // they were a second dependent round trip at the end of every LayerNorm (GPT-2 b1's timeline: 3.1-3.2 us
  // each for a 128 x 768 row block, 25 of them; seventeenth session).
  constexpr int kPieces = static_cast<int>(sizeof(P)) * kVec / 16;  // of scale (or bias) a vector
  constexpr int kOutPieces = static_cast<int>(sizeof(O)) * kVec / 16;  // of y a vector
  constexpr bool kEarly = NV * kPieces <= 4;
  // Every lane loads NV vectors, those past the row's end clamped to its last (in bounds, never used): no
  // predicated loads whose zero-filled registers ptxas would merge, and unpack, before x's loads.
  uint4 early_scale[kEarly ? NV * kPieces : 1], early_bias[kEarly ? NV * kPieces : 1];
  if constexpr (kEarly) {
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int vec = min(lane + 32 * j, nvec - 1);
#pragma unroll
      for (int k = 0; k < kPieces; ++k) {
        early_scale[j * kPieces + k] = load_weight_16(reinterpret_cast<const uint4*>(scale + vec * kVec) + k);
        early_bias[j * kPieces + k] = load_weight_16(reinterpret_cast<const uint4*>(bias + vec * kVec) + k);
      }
    }
  }
  wait_for_prior_kernels();  // x is the previous kernel's output (a no-op unless launched programmatically)
  if (allow_next) allow_next_kernel_to_start();  // it too waits for this one before it reads y
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * warps + (threadIdx.x >> 5); row < rows;
       row += static_cast<int64_t>(gridDim.x) * warps) {
    const uint4* xr = reinterpret_cast<const uint4*>(x + row * n);
    uint4* yr = reinterpret_cast<uint4*>(y + row * n);
    float v[NV][kVec];
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      alignas(16) T t[kVec];
      if (lane + 32 * j < nvec) {
        *reinterpret_cast<uint4*>(t) = xr[lane + 32 * j];
#pragma unroll
        for (int e = 0; e < kVec; ++e) s += (v[j][e] = to_f(t[e]));
      } else {
#pragma unroll
        for (int e = 0; e < kVec; ++e) v[j][e] = 0.0f;
      }
    }
    const float mean = warp_allreduce(s, SumOp{}) / static_cast<float>(n);
    float q = 0.0f;
#pragma unroll
    for (int j = 0; j < NV; ++j)
      if (lane + 32 * j < nvec)
#pragma unroll
        for (int e = 0; e < kVec; ++e) {
          const float d = v[j][e] - mean;
          q += d * d;
        }
    const float var = warp_allreduce(q, SumOp{}) / static_cast<float>(n);
    const float rstd = 1.0f / sqrtf(var + eps);
#pragma unroll
    for (int j = 0; j < NV; ++j)
      if (lane + 32 * j < nvec) {
        const int c = (lane + 32 * j) * kVec;
        alignas(16) P g[kVec];
        alignas(16) P b[kVec];
#pragma unroll
        for (int k = 0; k < kPieces; ++k) {
          if constexpr (kEarly) {
            uint4 sv = early_scale[j * kPieces + k], bv = early_bias[j * kPieces + k];
            // Opaque here, inside the row loop: otherwise their conversion to float is hoisted in front of
            // the loop, where it waits for these loads before x's are even issued.
            asm volatile("" : "+r"(sv.x), "+r"(sv.y), "+r"(sv.z), "+r"(sv.w), "+r"(bv.x), "+r"(bv.y), "+r"(bv.z),
                         "+r"(bv.w));
            reinterpret_cast<uint4*>(g)[k] = sv;
            reinterpret_cast<uint4*>(b)[k] = bv;
          } else {
            reinterpret_cast<uint4*>(g)[k] = reinterpret_cast<const uint4*>(scale + c)[k];
            reinterpret_cast<uint4*>(b)[k] = reinterpret_cast<const uint4*>(bias + c)[k];
          }
        }
        alignas(16) O t[kVec];
#pragma unroll
        for (int e = 0; e < kVec; ++e) t[e] = from_f<O>((v[j][e] - mean) * rstd * to_f(g[e]) + to_f(b[e]));
#pragma unroll
        for (int k = 0; k < kOutPieces; ++k) yr[(lane + 32 * j) * kOutPieces + k] = reinterpret_cast<const uint4*>(t)[k];
      }
  }
}

constexpr int kLayerNormMaxVectorsPerLane = 8;

// Whether k_layernorm_warp applies: statistics over whole trailing rows of n elements (inner == 1, no
// groups), n a whole number of 16-byte vectors that fit the registers, x, y, scale and bias 16-byte
// aligned, scale and bias float32 or x's dtype and indexed by the position in the row alone (broadcast over
// every non-statistics dim).
bool layernorm_warp_applies(const KernelContext& ctx, const TensorRef& x, const TensorRef& scale,
                            const TensorRef& bias, int64_t groups, int64_t D, int64_t inner) {
  const int64_t vec = 16 / static_cast<int64_t>(dtype_size(x.dtype));
  if (groups != 1 || inner != 1 || D % vec != 0 || D / vec > 32 * kLayerNormMaxVectorsPerLane) return false;
  if (scale.dtype != bias.dtype || (scale.dtype != x.dtype && scale.dtype != DataType::kFLOAT)) return false;
  for (const void* ptr : {static_cast<const void*>(x.data), static_cast<const void*>(ctx.out[0].data),
                          static_cast<const void*>(scale.data), static_cast<const void*>(bias.data)})
    if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0) return false;
  std::vector<bool> stat(x.shape.size(), false);
  for (int64_t a : ctx.attrs().ints("axes")) stat[a < 0 ? a + static_cast<int64_t>(x.shape.size()) : a] = true;
  for (const TensorRef* t : {&scale, &bias}) {
    const Dims st = broadcast_strides(t->shape, x.shape);
    int64_t row_stride = 1;  // x's stride of dim d
    for (size_t d = x.shape.size(); d-- > 0;) {
      if (x.shape[d] != 1 && st[d] != (stat[d] ? row_stride : 0)) return false;
      row_stride *= x.shape[d];
    }
  }
  return true;
}

// How the warp kernel is launched: on `stream`, programmatically or not (read once per node: LayerNormLaunch),
// letting the next kernel start early or not (the executor's next_kernel_may_start).
struct WarpLaunch {
  cudaStream_t stream;
  bool programmatic, allow_next;
};

template <class T, class P, int NV, class O>
void launch_layernorm_warp(const WarpLaunch& l, const T* x, O* y, int64_t rows, int64_t n, const void* scale,
                           const void* bias, float eps) {
  constexpr int kWarpsPerBlock = 4;  // small blocks: batch-1 rows (128 of them for BERT) still spread out
  KILN_CUDA_CHECK(launch_maybe_programmatic(k_layernorm_warp<T, P, NV, O>, grid_for((rows + kWarpsPerBlock - 1) / kWarpsPerBlock, 1),
                                            dim3(32 * kWarpsPerBlock), 0, l.stream, l.programmatic, x, y, rows,
                                            static_cast<int>(n), static_cast<const P*>(scale),
                                            static_cast<const P*>(bias), eps, l.allow_next));
}

template <class T, class P, class O>
void layernorm_warp(const WarpLaunch& l, const T* x, O* y, int64_t rows, int64_t n, const NormParams& p) {
  constexpr int64_t kVec = 16 / sizeof(T);
  const int64_t per_lane = (n / kVec + 31) / 32;
  if (per_lane <= 1) return launch_layernorm_warp<T, P, 1>(l, x, y, rows, n, p.scale, p.bias, p.eps);
  if (per_lane <= 2) return launch_layernorm_warp<T, P, 2>(l, x, y, rows, n, p.scale, p.bias, p.eps);
  if (per_lane <= 4) return launch_layernorm_warp<T, P, 4>(l, x, y, rows, n, p.scale, p.bias, p.eps);
  launch_layernorm_warp<T, P, kLayerNormMaxVectorsPerLane>(l, x, y, rows, n, p.scale, p.bias, p.eps);
}

// x as [outer, D, inner] around the statistics dims; false when they do not form one run. Unknown dims
// (-1, at build time) count as larger than 1.
bool norm_geometry(const Dims& shape, const std::vector<int64_t>& axes, int64_t groups, int64_t* outer, int64_t* D,
                   int64_t* inner) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  std::vector<bool> stat(rank, false);
  for (int64_t a : axes) {
    const int64_t n = a < 0 ? a + rank : a;
    if (n < 0 || n >= rank) return false;
    stat[n] = true;
  }
  Dims wdims = shape;
  std::vector<bool> wstat = stat;
  if (groups > 1) {
    if (rank < 2) return false;
    const int64_t c = shape[1];
    wdims = {shape[0], groups, c < 0 ? -1 : c / groups};
    wdims.insert(wdims.end(), shape.begin() + 2, shape.end());
    wstat = {stat[0], stat[1], true};
    wstat.insert(wstat.end(), stat.begin() + 2, stat.end());
  }
  // Phases: 0 = before the run, 1 = inside it, 2 = after it.
  int phase = 0;
  *outer = *D = *inner = 1;
  for (size_t d = 0; d < wdims.size(); ++d) {
    if (wdims[d] == 1) continue;
    if (wstat[d]) {
      if (phase == 2) return false;
      phase = 1;
      *D *= wdims[d];
    } else {
      if (phase == 1) phase = 2;
      (phase == 0 ? *outer : *inner) *= wdims[d];
    }
  }
  return true;
}

// Whether the GPU kernels store y in the dtype the node asks for (output_dtype, passes/fold_normalization_cast):
// x's, or float32.
bool output_dtype_ok(const ir::Attrs& attrs, DataType x) {
  const int64_t want = attrs.i("output_dtype", -1);
  return want < 0 || static_cast<DataType>(want) == x || static_cast<DataType>(want) == DataType::kFLOAT;
}

bool supports_normalization(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  if (in.size() != 3 || !is_float_type(in[0].dtype) || !is_float_type(in[1].dtype) || !is_float_type(in[2].dtype))
    return false;
  if (!output_dtype_ok(node.attrs, in[0].dtype)) return false;
  int64_t outer, D, inner;
  return norm_geometry(in[0].shape, node.attrs.ints("axes"), node.attrs.i("num_groups", 1), &outer, &D, &inner);
}

// Read once per node and context, not at each launch (programmatic_launch.h).
struct LayerNormLaunch {
  bool programmatic = programmatic_launch_enabled();
  // KILN_EXPERIMENT_SKIP_NORMALIZATION=1, a timing experiment that gives WRONG OUTPUTS: the context launches no
  // normalization kernel, so an A/B against the default reads what the normalizations cost in the model's chain
  // (the bound on what fusing them into their neighbours can give; bench/NOTES.md, twenty-first session). Read per
  // context, so the A/B shares the engine and its tactics.
  bool skip_for_timing = env_is("KILN_EXPERIMENT_SKIP_NORMALIZATION", "1");
};

void normalization_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& scale = ctx.input(1);
  const TensorRef& bias = ctx.input(2);
  if (!is_float_type(x.dtype) || !is_float_type(scale.dtype) || !is_float_type(bias.dtype))
    ctx.fail("Normalization needs float inputs on the GPU");
  const int64_t groups = ctx.attrs().i("num_groups", 1);
  if (groups > 1 && (x.shape.size() < 2 || x.shape[1] % groups != 0))
    ctx.fail("channel count is not divisible by num_groups");
  int64_t outer, D, inner;
  if (!norm_geometry(x.shape, ctx.attrs().ints("axes"), groups, &outer, &D, &inner))
    ctx.fail("the statistics axes do not form one contiguous run of dims (the CPU kernel handles this layout)");
  if (x.numel() == 0) return;
  for (const TensorRef* t : {&scale, &bias})
    if (t->shape.size() > x.shape.size()) ctx.fail("scale/bias have a higher rank than the input");
  const LayerNormLaunch& launch = node_state<LayerNormLaunch>(ctx);
  if (launch.skip_for_timing) return;
  NormParams p;
  p.scale = scale.data;
  p.bias = bias.data;
  p.scale_dt = static_cast<int>(scale.dtype);
  p.bias_dt = static_cast<int>(bias.dtype);
  p.pw = broadcast_walk<2>(ctx, x.shape, {&scale.shape, &bias.shape});
  p.eps = static_cast<float>(ctx.attrs().f("epsilon", 1e-5));
  cudaStream_t s = ctx.stream();
  const bool warp = layernorm_warp_applies(ctx, x, scale, bias, groups, D, inner);
  const WarpLaunch wl{s, launch.programmatic, ctx.res.next_kernel_may_start};
  if (!warp) before_other_kernels(ctx);  // a node whose warp kernel ran programmatically before (misaligned now)
  const DataType out_dt = ctx.out[0].dtype;
  if (out_dt != x.dtype && out_dt != DataType::kFLOAT)
    ctx.fail(std::string("the GPU kernels store y as x's dtype or float32, not ") + dtype_name(out_dt));
  auto run = [&](auto t_tag, auto o_tag) {
    using T = decltype(t_tag);
    using O = decltype(o_tag);
    O* y = ctx.out[0].as<O>();
    if (warp) {
      if (scale.dtype == DataType::kFLOAT)
        layernorm_warp<T, float>(wl, x.as<T>(), y, outer, D, p);
      else
        layernorm_warp<T, T>(wl, x.as<T>(), y, outer, D, p);
    } else if (inner == 1) {
      const int tpr = threads_per_row(D);
      const int rpb = kThreads / tpr;
      k_norm_rows<T, O><<<blocks_for((outer + rpb - 1) / rpb, 1), kThreads, 0, s>>>(x.as<T>(), y, outer, D, p, tpr);
    } else {
      k_norm_cols<T, O><<<blocks_for(outer * inner), kThreads, 0, s>>>(x.as<T>(), y, outer, D, inner, p);
    }
    KILN_CUDA_LAUNCH_CHECK();
  };
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (out_dt == x.dtype) run(tag, tag);
    else if constexpr (!std::is_same_v<T, float>) run(tag, float{});
  });
  if (warp && wl.programmatic) note_programmatic_launch(ctx);
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Normalization", &normalization_kernel, &supports_normalization);

}  // namespace kiln::cuda::kern
