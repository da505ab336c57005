#include "backends/cuda/kernels/depthwise_conv.h"

#include <algorithm>

#include "backends/cuda/kernels/activation_math.cuh"
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/epilogue.h"

namespace kiln::cuda {

namespace {

using kern::from_f;
using kern::to_f;

struct DwArgs {
  DepthwiseGeometry g;
  int64_t cvecs;  // C / kVec
  int64_t rows;   // N * OH
  int act;
  float alpha, beta;
};

// blockDim.x: channel vectors (blockIdx.x picks which), blockDim.y: output columns of one output row; the
// block walks rows (n, oh) from blockIdx.y in steps of gridDim.y, so the only divisions are one per row.
// KH/KW: the filter size when the launch knows it (3, 5, 7: the taps unroll), 0 for any. Dynamic shared
// memory: the block's filters as float [kh * kw][blockDim.x * kVec].
template <class T, int KH, int KW>
__global__ void k_depthwise_nhwc(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                                 const T* __restrict__ residual, T* __restrict__ y, DwArgs a) {
  constexpr int kVec = 16 / sizeof(T);
  extern __shared__ float taps[];
  const DepthwiseGeometry& g = a.g;
  const int kh = KH ? KH : g.kh, kw = KW ? KW : g.kw;
  const int ntaps = kh * kw;
  const int width = blockDim.x * kVec;  // channels of this block
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * width;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  // The filters are [C, kh, kw] in memory: consecutive threads take consecutive taps of a channel.
  for (int i = tid; i < ntaps * width; i += blockDim.x * blockDim.y) {
    const int cl = i / ntaps, t = i - cl * ntaps;
    const int64_t c = c0 + cl;
    taps[t * width + cl] = c < g.C ? to_f(w[c * ntaps + t]) : 0.0f;
  }
  __syncthreads();
  const int64_t cv = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (cv >= a.cvecs) return;
  const int64_t c = cv * kVec;
  const float* my_taps = taps + threadIdx.x * kVec;
  const int H = static_cast<int>(g.H), W = static_cast<int>(g.W), OH = static_cast<int>(g.OH),
            OW = static_cast<int>(g.OW);
  for (int64_t row = blockIdx.y; row < a.rows; row += gridDim.y) {
    const int64_t n = row / OH;
    const int oh = static_cast<int>(row - n * OH);
    const T* xn = x + n * H * W * g.C + c;
    for (int ow = threadIdx.y; ow < OW; ow += blockDim.y) {
      float acc[kVec];
#pragma unroll
      for (int e = 0; e < kVec; ++e) acc[e] = 0.0f;
#pragma unroll
      for (int i = 0; i < kh; ++i) {
        const int ih = oh * g.stride_h - g.pad_h + i * g.dil_h;
        if (ih < 0 || ih >= H) continue;
        const T* xrow = xn + static_cast<int64_t>(ih) * W * g.C;
#pragma unroll
        for (int j = 0; j < kw; ++j) {
          const int iw = ow * g.stride_w - g.pad_w + j * g.dil_w;
          if (iw < 0 || iw >= W) continue;
          alignas(16) T v[kVec];
          *reinterpret_cast<uint4*>(v) = *reinterpret_cast<const uint4*>(xrow + static_cast<int64_t>(iw) * g.C);
          const float* wt = my_taps + (i * kw + j) * width;
#pragma unroll
          for (int e = 0; e < kVec; ++e) acc[e] += to_f(v[e]) * wt[e];
        }
      }
      const int64_t out = (row * OW + ow) * g.C + c;
      alignas(16) T r[kVec];
      if (residual) *reinterpret_cast<uint4*>(r) = *reinterpret_cast<const uint4*>(residual + out);
      alignas(16) T o[kVec];
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        float v = acc[e];
        if (bias) v += to_f(bias[c + e]);
        if (residual) v += to_f(r[e]);
        if (a.act >= 0) v = kern::act::activate(a.act, a.alpha, a.beta, v);
        o[e] = from_f<T>(v);
      }
      *reinterpret_cast<uint4*>(y + out) = *reinterpret_cast<const uint4*>(o);
    }
  }
}

// Channel vectors per block (at most 32, fewer when the filters would not fit 48 KiB of shared memory) and
// output columns per block (256 threads at most, no more columns than a row has, rounded to 8).
void block_shape(int64_t cvecs, int vec, int ntaps, int64_t ow, unsigned* bx, unsigned* by) {
  int64_t x = std::min<int64_t>(cvecs, 32);
  while (x > 1 && static_cast<int64_t>(ntaps) * x * vec * 4 > 48 * 1024) x /= 2;
  *bx = static_cast<unsigned>(x);
  const int64_t cols = std::min<int64_t>(std::max<int64_t>(1, 256 / x), (ow + 7) / 8 * 8);
  *by = static_cast<unsigned>(std::max<int64_t>(cols, 1));
}

template <class T, int KH, int KW>
void launch_sized(KernelContext& ctx, const DwArgs& a) {
  constexpr int kVec = 16 / sizeof(T);
  const int ntaps = a.g.kh * a.g.kw;
  unsigned bx, by;
  block_shape(a.cvecs, kVec, ntaps, a.g.OW, &bx, &by);
  const size_t smem = static_cast<size_t>(ntaps) * bx * kVec * sizeof(float);
  const dim3 grid(static_cast<unsigned>((a.cvecs + bx - 1) / bx),
                  static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(a.rows, 1), 65535)));
  const bool bias = ctx.in.size() > 2 && ctx.in[2].present;
  const bool residual = ctx.in.size() > 3 && ctx.in[3].present;
  k_depthwise_nhwc<T, KH, KW><<<grid, dim3(bx, by), smem, ctx.stream()>>>(
      ctx.in[0].as<T>(), ctx.in[1].as<T>(), bias ? ctx.in[2].as<T>() : nullptr,
      residual ? ctx.in[3].as<T>() : nullptr, ctx.out[0].as<T>(), a);
  KILN_CUDA_LAUNCH_CHECK();
}

template <class T>
void launch(KernelContext& ctx, const DwArgs& a) {
  if (a.g.kh == 3 && a.g.kw == 3) return launch_sized<T, 3, 3>(ctx, a);
  if (a.g.kh == 5 && a.g.kw == 5) return launch_sized<T, 5, 5>(ctx, a);
  if (a.g.kh == 7 && a.g.kw == 7) return launch_sized<T, 7, 7>(ctx, a);
  launch_sized<T, 0, 0>(ctx, a);
}

}  // namespace

bool depthwise_conv_geometry(const KernelContext& ctx, DepthwiseGeometry* g) {
  const ir::Node& n = ctx.node;
  if (n.op != "Convolution" || n.attrs.i("channels_last", 0) == 0) return false;
  if (ctx.in.size() < 2 || !ctx.in[0].present || !ctx.in[1].present || ctx.out.empty()) return false;
  const TensorRef &x = ctx.in[0], &w = ctx.in[1], &y = ctx.out[0];
  const DataType dt = x.dtype;
  if (dt != DataType::kFLOAT && dt != DataType::kHALF && dt != DataType::kBF16) return false;
  if (w.dtype != dt || y.dtype != dt || x.shape.size() != 4 || w.shape.size() != 4 || y.shape.size() != 4)
    return false;
  const int64_t C = x.shape[3];
  if (n.attrs.i("groups", 1) != C || w.shape[0] != C || w.shape[3] != 1 || y.shape[3] != C) return false;
  if (C % (16 / static_cast<int64_t>(dtype_size(dt))) != 0) return false;
  const bool bias = ctx.in.size() > 2 && ctx.in[2].present;
  const bool residual = ctx.in.size() > 3 && ctx.in[3].present;
  if (bias && (ctx.in[2].dtype != dt || ctx.in[2].numel() != C)) return false;
  if (residual && (ctx.in[3].dtype != dt || ctx.in[3].shape != y.shape)) return false;
  if (!fused_activation_supported(n.attrs.i("activation", -1))) return false;
  g->N = x.shape[0];
  g->H = x.shape[1];
  g->W = x.shape[2];
  g->C = C;
  g->OH = y.shape[1];
  g->OW = y.shape[2];
  g->kh = static_cast<int>(w.shape[1]);
  g->kw = static_cast<int>(w.shape[2]);
  // The kernel indexes rows and columns in 32 bits.
  constexpr int64_t kMax = 1 << 30;
  if (g->H >= kMax || g->W >= kMax || g->OH >= kMax || g->OW >= kMax) return false;
  return g->kh > 0 && g->kw > 0 && g->stride_h > 0 && g->stride_w > 0 && g->dil_h > 0 && g->dil_w > 0;
}

bool depthwise_conv_aligned(const KernelContext& ctx) {
  const bool residual = ctx.in.size() > 3 && ctx.in[3].present;
  return aligned_to(ctx.in[0].data, 16) && aligned_to(ctx.out[0].data, 16) && (!residual || aligned_to(ctx.in[3].data, 16));
}

void enqueue_depthwise_conv(KernelContext& ctx, const DepthwiseGeometry& g) {
  DwArgs a;
  a.g = g;
  a.cvecs = g.C / (16 / static_cast<int64_t>(dtype_size(ctx.in[0].dtype)));
  a.rows = g.N * g.OH;
  if (a.rows == 0 || g.OW == 0 || a.cvecs == 0) return;
  BiasAct ba;
  read_fused_activation(ctx.attrs(), &ba);
  a.act = ba.act;
  a.alpha = ba.alpha;
  a.beta = ba.beta;
  const bool ok = kern::dispatch_float(ctx.in[0].dtype, [&](auto tag) { launch<decltype(tag)>(ctx, a); });
  if (!ok) ctx.fail("the depthwise kernel takes float32, float16 or bfloat16");
}

}  // namespace kiln::cuda
