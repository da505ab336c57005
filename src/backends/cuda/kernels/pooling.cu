// CUDA kernels for Pooling (MAX, AVERAGE with or without padding in the count, MAX_AVERAGE_BLEND, LP; 1 to 3
// spatial dims; stride, dilation, explicit/ceil/SAME padding) and GlobalPooling (MAX, AVERAGE, LP), matching
// src/backends/cpu/kernels/pooling.cpp. float32/float16/bfloat16, computed in float32.
//
// Pooling: one thread per output element walks its window. Fewer spatial dims are padded with leading 1s,
// so every case is [planes, D, H, W]. AVERAGE divides by the taps inside the input (exclude_pad) or inside
// the padded extent [-pre, in + post); a window with no such taps gives 0. GlobalPooling reduces each
// plane with a warp or a block.
//
// Channels-last Pooling (attr channels_last, from passes/channels_last: x [N, spatial..., C]) has its own
// kernel, k_pool_channels_last below: threads along C with 16-byte vector loads, bandwidth-bound; MAX over a
// square 2x2 or 3x3 window has an unrolled form of it, k_max_pool_window_channels_last.
#include <cmath>
#include <cstdint>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/fast_div.cuh"
#include "backends/cuda/kernels/programmatic_launch.cuh"
#include "backends/cuda/programmatic_launch.h"

namespace kiln::cuda::kern {
namespace {

enum PoolType : int { kMax = 0, kAverage = 1, kBlend = 2, kLp = 64 };
enum PaddingMode : int64_t { kRoundDown = 0, kRoundUp = 1, kSameUpper = 2, kSameLower = 3 };

struct PoolAxis {
  int64_t in = 1, out = 1, k = 1, s = 1, d = 1, pre = 0, post = 0;
};

struct PoolParams {
  PoolAxis ax[3];  // D, H, W
  int type;
  bool exclude_pad;
  float p, blend;
};

// Taps of output o on axis a: the first input index and how many taps land inside the input / the padding.
__device__ __forceinline__ void axis_counts(const PoolAxis& a, int64_t o, int64_t* valid, int64_t* padded) {
  int64_t v = 0, pd = 0;
  for (int64_t t = 0; t < a.k; ++t) {
    const int64_t i = o * a.s - a.pre + t * a.d;
    v += i >= 0 && i < a.in;
    pd += i >= -a.pre && i < a.in + a.post;
  }
  *valid = v;
  *padded = pd;
}

// What an AVERAGE window at output (od, oh, ow) divides by: its taps inside the input (exclude_pad) or
// inside the padded extent [-pre, in + post).
__device__ __forceinline__ int64_t average_divisor(const PoolParams& p, int64_t od, int64_t oh, int64_t ow) {
  int64_t vd, pd, vh, ph, vw, pw;
  axis_counts(p.ax[0], od, &vd, &pd);
  axis_counts(p.ax[1], oh, &vh, &ph);
  axis_counts(p.ax[2], ow, &vw, &pw);
  return p.exclude_pad ? vd * vh * vw : pd * ph * pw;
}

template <class T>
__global__ void k_pool(const T* __restrict__ x, T* __restrict__ y, int64_t n, PoolParams p) {
  const PoolAxis &AD = p.ax[0], &AH = p.ax[1], &AW = p.ax[2];
  const int64_t in_plane = AD.in * AH.in * AW.in;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    int64_t rem = e;
    const int64_t ow = rem % AW.out;
    rem /= AW.out;
    const int64_t oh = rem % AH.out;
    rem /= AH.out;
    const int64_t od = rem % AD.out;
    const int64_t plane = rem / AD.out;
    const T* xp = x + plane * in_plane;
    float mx = -INFINITY, sm = 0.0f;
    for (int64_t td = 0; td < AD.k; ++td) {
      const int64_t id = od * AD.s - AD.pre + td * AD.d;
      if (id < 0 || id >= AD.in) continue;
      for (int64_t th = 0; th < AH.k; ++th) {
        const int64_t ih = oh * AH.s - AH.pre + th * AH.d;
        if (ih < 0 || ih >= AH.in) continue;
        const T* row = xp + (id * AH.in + ih) * AW.in;
        for (int64_t tw = 0; tw < AW.k; ++tw) {
          const int64_t iw = ow * AW.s - AW.pre + tw * AW.d;
          if (iw < 0 || iw >= AW.in) continue;
          const float v = to_f(row[iw]);
          if (p.type == kMax || p.type == kBlend) mx = v > mx ? v : mx;
          if (p.type == kLp) sm += p.p == 2.0f ? v * v : powf(fabsf(v), p.p);
          else if (p.type != kMax) sm += v;
        }
      }
    }
    float r;
    if (p.type == kMax) {
      r = mx;
    } else if (p.type == kLp) {
      r = p.p == 2.0f ? sqrtf(sm) : powf(sm, 1.0f / p.p);
    } else {
      const int64_t cnt = average_divisor(p, od, oh, ow);
      const float avg = cnt > 0 ? sm / static_cast<float>(cnt) : 0.0f;
      r = p.type == kAverage ? avg : (1.0f - p.blend) * mx + p.blend * avg;
    }
    y[e] = from_f<T>(r);
  }
}

// Channels-last: x [N, D, H, W, C], y [N, D', H', W', C] (fewer spatial dims padded with 1s). One thread per
// output pixel and group of V consecutive channels; each tap of its window is one V-element vector load
// (16 bytes where C and the pointers allow). Consecutive threads take consecutive channel groups, then
// consecutive pixels along W, so a warp's loads are contiguous runs and the windows that neighbouring
// pixels share are re-read from L1/L2, not DRAM. Index math in I: int32 when every offset fits (the
// divisions are most of the arithmetic of this cheap kernel). kMaxOnly: MAX, the common case, without the
// per-element type tests.
template <class T, int V, class I, bool kMaxOnly>
__global__ void k_pool_channels_last(const T* __restrict__ x, T* __restrict__ y, I n, I groups, I C, PoolParams p) {
  const PoolAxis &AD = p.ax[0], &AH = p.ax[1], &AW = p.ax[2];
  const I d_in = static_cast<I>(AD.in), h_in = static_cast<I>(AH.in), w_in = static_cast<I>(AW.in);
  const I d_out = static_cast<I>(AD.out), h_out = static_cast<I>(AH.out), w_out = static_cast<I>(AW.out);
  const I stride = static_cast<I>(gridDim.x) * static_cast<I>(blockDim.x);
  for (I e = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x); e < n; e += stride) {
    const I cg = e % groups;
    I pix = e / groups;
    const I ow = pix % w_out;
    pix /= w_out;
    const I oh = pix % h_out;
    pix /= h_out;
    const I od = pix % d_out;
    const I nb = pix / d_out;
    float mx[V], sm[V];
#pragma unroll
    for (int k = 0; k < V; ++k) {
      mx[k] = -INFINITY;
      sm[k] = 0.0f;
    }
    for (I td = 0; td < static_cast<I>(AD.k); ++td) {
      const I id = od * static_cast<I>(AD.s) - static_cast<I>(AD.pre) + td * static_cast<I>(AD.d);
      if (id < 0 || id >= d_in) continue;
      for (I th = 0; th < static_cast<I>(AH.k); ++th) {
        const I ih = oh * static_cast<I>(AH.s) - static_cast<I>(AH.pre) + th * static_cast<I>(AH.d);
        if (ih < 0 || ih >= h_in) continue;
        const I row = ((nb * d_in + id) * h_in + ih) * w_in;
        for (I tw = 0; tw < static_cast<I>(AW.k); ++tw) {
          const I iw = ow * static_cast<I>(AW.s) - static_cast<I>(AW.pre) + tw * static_cast<I>(AW.d);
          if (iw < 0 || iw >= w_in) continue;
          const Vec<T, V> v = *reinterpret_cast<const Vec<T, V>*>(x + (row + iw) * C + cg * V);
#pragma unroll
          for (int k = 0; k < V; ++k) {
            const float f = to_f(v.v[k]);
            if (kMaxOnly || p.type == kBlend) mx[k] = f > mx[k] ? f : mx[k];
            if (!kMaxOnly) {
              if (p.type == kLp) sm[k] += p.p == 2.0f ? f * f : powf(fabsf(f), p.p);
              else sm[k] += f;
            }
          }
        }
      }
    }
    Vec<T, V> out;
    if (kMaxOnly) {
#pragma unroll
      for (int k = 0; k < V; ++k) out.v[k] = from_f<T>(mx[k]);
    } else if (p.type == kLp) {
#pragma unroll
      for (int k = 0; k < V; ++k) out.v[k] = from_f<T>(p.p == 2.0f ? sqrtf(sm[k]) : powf(sm[k], 1.0f / p.p));
    } else {
      const int64_t cnt = average_divisor(p, od, oh, ow);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float avg = cnt > 0 ? sm[k] / static_cast<float>(cnt) : 0.0f;
        out.v[k] = from_f<T>(p.type == kAverage ? avg : (1.0f - p.blend) * mx[k] + p.blend * avg);
      }
    }
    // y's offset (pixel * C + cg * V) is e * V because C = groups * V.
    *reinterpret_cast<Vec<T, V>*>(y + e * V) = out;
  }
}

// Channels-last MAX over a square 2-D window of K x K taps (K 2 or 3: ResNet's 3x3/2 stem pool), dilation 1:
// the generic kernel above with the window unrolled and its loads first. Why: the generic loop's bounds
// checks make each tap's 16-byte load wait for the one before it to be folded, so a thread has one load in
// flight and the pool ran at 2.5 TB/s (ResNet-50 b128, 0.101 ms for 256 MB); here a thread's K*K loads are
// all issued before the first is used: 0.074 ms, 3.45 TB/s (H200, twelfth session). Taps outside x are
// skipped, as in the generic kernel (the same `f > max` fold: identical results). 32-bit offsets; D is 1.
// It may be launched programmatically (ResNet's stem pool after the stem convolution, whose kernel lets it
// start early: programmatic_launch.h), so it waits for the kernel before it first; then it lets the next start
// where the executor says that one waits too (allow_next).
struct Window2d {
  int32_t h_in, w_in, h_out, w_out, sh, sw, ph, pw;
  // The element index's decode (groups, w_out, h_out) as multiply-shifts: the kernel waits for the previous one
  // first thing, so its three 32-bit divisions (~120 SASS instructions) all came after that kernel's end.
  FastDivU32 groups_div, w_out_div, h_out_div;
};

template <class T, int V, int K>
__global__ void k_max_pool_window_channels_last(const T* __restrict__ x, T* __restrict__ y, int32_t n,
                                                int32_t groups, int32_t C, Window2d w, bool allow_next) {
  wait_for_prior_kernels();
  if (allow_next) allow_next_kernel_to_start();  // it too waits for this one before it reads y
  const int32_t stride = static_cast<int32_t>(gridDim.x) * static_cast<int32_t>(blockDim.x);
  for (int32_t e = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x); e < n; e += stride) {
    // e < n <= 2^30 (launch_max_window's condition): the fast divisions are exact.
    int32_t pix = static_cast<int32_t>(w.groups_div.div(static_cast<uint32_t>(e)));
    const int32_t cg = e - pix * groups;
    const int32_t rest = static_cast<int32_t>(w.w_out_div.div(static_cast<uint32_t>(pix)));
    const int32_t ow = pix - rest * w.w_out;
    const int32_t nb = static_cast<int32_t>(w.h_out_div.div(static_cast<uint32_t>(rest)));
    const int32_t oh = rest - nb * w.h_out;
    const int32_t ih0 = oh * w.sh - w.ph, iw0 = ow * w.sw - w.pw;
    Vec<T, V> tap[K * K];
    bool inside[K * K];
#pragma unroll
    for (int i = 0; i < K; ++i)
#pragma unroll
      for (int j = 0; j < K; ++j) {
        const int32_t ih = ih0 + i, iw = iw0 + j;
        inside[i * K + j] = ih >= 0 && ih < w.h_in && iw >= 0 && iw < w.w_in;
        if (inside[i * K + j])
          tap[i * K + j] = *reinterpret_cast<const Vec<T, V>*>(x + ((nb * w.h_in + ih) * w.w_in + iw) * C + cg * V);
      }
    float mx[V];
#pragma unroll
    for (int k = 0; k < V; ++k) mx[k] = -INFINITY;
#pragma unroll
    for (int t = 0; t < K * K; ++t)
      if (inside[t]) {
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const float f = to_f(tap[t].v[k]);
          mx[k] = f > mx[k] ? f : mx[k];
        }
      }
    Vec<T, V> out;
#pragma unroll
    for (int k = 0; k < V; ++k) out.v[k] = from_f<T>(mx[k]);
    *reinterpret_cast<Vec<T, V>*>(y + e * V) = out;  // e * V = pixel * C + cg * V, as C = groups * V
  }
}

// Launches the unrolled MAX kernel where it applies (a square 2x2 or 3x3 window, dilation 1, no depth axis,
// 32-bit offsets); false otherwise.
template <class T, int V>
bool launch_max_window(const KernelContext& ctx, const TensorRef& x, TensorRef& y, const PoolParams& p, bool small,
                       bool programmatic) {
  const PoolAxis &AD = p.ax[0], &AH = p.ax[1], &AW = p.ax[2];
  const bool flat = AD.in == 1 && AD.out == 1 && AD.k == 1 && AD.pre == 0;
  if (p.type != kMax || !small || !flat || AH.d != 1 || AW.d != 1 || AH.k != AW.k || (AH.k != 2 && AH.k != 3))
    return false;
  const int64_t C = x.shape.back(), groups = C / V, n = y.numel() / V;
  const Window2d w{static_cast<int32_t>(AH.in), static_cast<int32_t>(AW.in), static_cast<int32_t>(AH.out),
                   static_cast<int32_t>(AW.out), static_cast<int32_t>(AH.s), static_cast<int32_t>(AW.s),
                   static_cast<int32_t>(AH.pre), static_cast<int32_t>(AW.pre),
                   FastDivU32(static_cast<uint32_t>(groups)), FastDivU32(static_cast<uint32_t>(AW.out)),
                   FastDivU32(static_cast<uint32_t>(AH.out))};
  const auto kernel = AH.k == 2 ? k_max_pool_window_channels_last<T, V, 2> : k_max_pool_window_channels_last<T, V, 3>;
  KILN_CUDA_CHECK(launch_maybe_programmatic(kernel, dim3(blocks_for(n)), dim3(kThreads), 0, ctx.stream(), programmatic,
                                            x.as<T>(), y.as<T>(), static_cast<int32_t>(n),
                                            static_cast<int32_t>(groups), static_cast<int32_t>(C), w,
                                            ctx.res.next_kernel_may_start));
  if (programmatic) note_programmatic_launch(ctx);
  return true;
}

template <class T, int V, class I>
void launch_channels_last(const KernelContext& ctx, const TensorRef& x, TensorRef& y, const PoolParams& p) {
  const int64_t C = x.shape.back(), groups = C / V, n = y.numel() / V;
  const unsigned blocks = blocks_for(n);
  if (p.type == kMax)
    k_pool_channels_last<T, V, I, true><<<blocks, kThreads, 0, ctx.stream()>>>(
        x.as<T>(), y.as<T>(), static_cast<I>(n), static_cast<I>(groups), static_cast<I>(C), p);
  else
    k_pool_channels_last<T, V, I, false><<<blocks, kThreads, 0, ctx.stream()>>>(
        x.as<T>(), y.as<T>(), static_cast<I>(n), static_cast<I>(groups), static_cast<I>(C), p);
  KILN_CUDA_LAUNCH_CHECK();
}

void pool_channels_last(const KernelContext& ctx, const TensorRef& x, TensorRef& y, const PoolParams& p,
                        bool programmatic) {
  if (y.numel() <= 0) return;
  // int32 offsets when every element offset, and a grid stride past the last one, stays below 2^31.
  const bool small = std::max(x.numel(), y.numel()) <= (int64_t{1} << 30);
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = x.shape.back() % kVec == 0 && aligned_to(x.data, 16) && aligned_to(y.data, 16);
    if (vec ? launch_max_window<T, kVec>(ctx, x, y, p, small, programmatic)
            : launch_max_window<T, 1>(ctx, x, y, p, small, programmatic))
      return;
    if (vec && small) launch_channels_last<T, kVec, int32_t>(ctx, x, y, p);
    else if (vec) launch_channels_last<T, kVec, int64_t>(ctx, x, y, p);
    else if (small) launch_channels_last<T, 1, int32_t>(ctx, x, y, p);
    else launch_channels_last<T, 1, int64_t>(ctx, x, y, p);
  });
}

std::vector<int64_t> spatial(const KernelContext& ctx, const char* name, size_t nsp, int64_t def) {
  std::vector<int64_t> v = ctx.attrs().ints(name);
  if (v.empty()) return std::vector<int64_t>(nsp, def);
  if (v.size() != nsp)
    ctx.fail(std::string("'") + name + "' has " + std::to_string(v.size()) + " values, expected " + std::to_string(nsp));
  return v;
}

bool pool_type_ok(int64_t t) { return t == kMax || t == kAverage || t == kBlend || t == kLp; }

bool supports_pooling(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  return !in.empty() && is_float_type(in[0].dtype) && in[0].shape.size() >= 3 && in[0].shape.size() <= 5 &&
         pool_type_ok(node.attrs.i("type", kMax));
}

// Read once per node and context, not at each launch (programmatic_launch.h).
struct PoolLaunch {
  bool programmatic = programmatic_launch_enabled();
};

void pooling_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  if (!is_float_type(x.dtype)) ctx.fail(std::string("Pooling on ") + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  if (x.shape.size() < 3 || x.shape.size() > 5) ctx.fail("expected 1 to 3 spatial dims, got input " + dims_str(x.shape));
  const size_t nsp = x.shape.size() - 2;
  const auto& a = ctx.attrs();
  PoolParams p;
  p.type = static_cast<int>(a.i("type", kMax));
  if (!pool_type_ok(p.type)) ctx.fail("unknown pooling type " + std::to_string(p.type));
  const int64_t mode = a.i("padding_mode", kRoundDown);
  p.exclude_pad = a.i("exclude_pad", 1) != 0;
  p.p = static_cast<float>(a.f("p", 2.0));
  p.blend = static_cast<float>(a.f("blend_factor", 0.0));
  const std::vector<int64_t> win = a.req_ints("window"), stride = spatial(ctx, "stride", nsp, 1),
                             dil = spatial(ctx, "dilation", nsp, 1), pre = spatial(ctx, "pre_padding", nsp, 0),
                             post = spatial(ctx, "post_padding", nsp, 0);
  if (win.size() != nsp) ctx.fail("'window' must have one value per spatial dim");
  // Spatial dims start at 1 in [N, spatial..., C] (channels-last), at 2 in [N, C, spatial...].
  const bool channels_last = a.i("channels_last", 0) != 0;
  const size_t first = channels_last ? 1 : 2;
  const size_t off = 3 - nsp;
  for (size_t i = 0; i < nsp; ++i) {
    PoolAxis& A = p.ax[off + i];
    A.in = x.shape[first + i];
    A.out = y.shape[first + i];
    A.k = win[i];
    A.s = stride[i];
    A.d = dil[i];
    if (A.k < 1 || A.s < 1 || A.d < 1) ctx.fail("window, stride and dilation must be >= 1");
    const int64_t eff = A.d * (A.k - 1) + 1;
    if (mode == kSameUpper || mode == kSameLower) {
      const int64_t total = std::max<int64_t>(0, (A.out - 1) * A.s + eff - A.in);
      const int64_t small = total / 2, large = total - small;
      A.pre = mode == kSameUpper ? small : large;
      A.post = mode == kSameUpper ? large : small;
    } else {
      A.pre = pre[i];
      A.post = post[i];
    }
  }
  if (channels_last) return pool_channels_last(ctx, x, y, p, node_state<PoolLaunch>(ctx).programmatic);
  const int64_t n = y.numel();
  if (n <= 0) return;
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    k_pool<T><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(x.as<T>(), y.as<T>(), n, p);
    KILN_CUDA_LAUNCH_CHECK();
  });
}

// ============================================== GlobalPooling ============================================

template <class T>
__global__ void k_global_pool(const T* __restrict__ x, T* __restrict__ y, int64_t planes, int64_t n, int type,
                              float pw, int tpr) {
  __shared__ float smem[kThreads / 32];
  const int rpb = blockDim.x / tpr;
  const int lane = threadIdx.x % tpr;
  for (int64_t pl = static_cast<int64_t>(blockIdx.x) * rpb + threadIdx.x / tpr; pl < planes;
       pl += static_cast<int64_t>(gridDim.x) * rpb) {
    const T* v = x + pl * n;
    float r;
    if (type == kMax) {
      float m = -INFINITY;
      for (int64_t i = lane; i < n; i += tpr) {
        const float f = to_f(v[i]);
        m = f > m ? f : m;
      }
      r = row_allreduce(m, MaxOp{}, tpr, smem);
    } else {
      float s = 0.0f;
      for (int64_t i = lane; i < n; i += tpr) {
        const float f = to_f(v[i]);
        s += type == kLp ? (pw == 2.0f ? f * f : powf(fabsf(f), pw)) : f;
      }
      s = row_allreduce(s, SumOp{}, tpr, smem);
      if (type == kLp) r = pw == 2.0f ? sqrtf(s) : powf(s, 1.0f / pw);
      else r = n ? s / static_cast<float>(n) : 0.0f;
    }
    if (lane == 0) y[pl] = from_f<T>(r);
  }
}

bool supports_global_pooling(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  const int64_t t = node.attrs.i("type", kMax);
  return !in.empty() && is_float_type(in[0].dtype) && in[0].shape.size() >= 2 && (t == kMax || t == kAverage || t == kLp);
}

void global_pooling_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  if (!is_float_type(x.dtype)) ctx.fail(std::string("GlobalPooling on ") + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  if (x.shape.size() < 2) ctx.fail("expected [N, C, spatial...], got " + dims_str(x.shape));
  const int type = static_cast<int>(ctx.attrs().i("type", kMax));
  if (type != kMax && type != kAverage && type != kLp) ctx.fail("unknown global pooling type " + std::to_string(type));
  const float pw = static_cast<float>(ctx.attrs().f("p", 2.0));
  const int64_t planes = x.shape[0] * x.shape[1];
  if (planes <= 0) return;
  const int64_t n = x.numel() / planes;
  const int tpr = threads_per_row(n);
  const int rpb = kThreads / tpr;
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    k_global_pool<T><<<blocks_for((planes + rpb - 1) / rpb, 1), kThreads, 0, ctx.stream()>>>(x.as<T>(), y.as<T>(), planes,
                                                                                              n, type, pw, tpr);
    KILN_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Pooling", &pooling_kernel, &supports_pooling);
KILN_REGISTER_CUDA_KERNEL("GlobalPooling", &global_pooling_kernel, &supports_global_pooling);

}  // namespace kiln::cuda::kern
