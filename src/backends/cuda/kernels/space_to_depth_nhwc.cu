// CUDA kernel for SpaceToDepthNhwc (ir/OPS.md; passes/channels_last writes it in front of a strided stem
// convolution, instead of the NCHW->NHWC transpose): y[n, t, u, (qh*s + qw)*C + c] =
// x[n, c, t*s + qh - pre_h, u*s + qw - pre_w], 0 outside x and in channels C*s*s .. C_out-1.
//
// One thread per output pixel (n, t, u) writes its C_out channels: the pixel's coordinates cost two
// divisions per thread (not per element: per-element 64-bit div/mod made an earlier Pad kernel
// instruction-bound at 240 GB/s), and the channels' (c, qh, qw) are counters stepped along. The channels go
// out as 16-byte vectors when C_out fills whole vectors and y is 16-byte aligned (ResNet's stem: 16 float16
// channels, two vectors; a warp writes 1 KiB contiguously), else one element at a time. Reads: a warp's
// lanes read pixels s apart in one input row per (c, qh, qw); the s reads of one row meet in L1.
// Offsets are 32-bit when x and y have fewer than 2^31 elements (ResNet-50 at batch 128: 19M and 27M).
//
// Block rows as vectors (k_space_to_depth_block_rows): where s is 2, x has 2- or 4-byte elements, C <= 4,
// the begin padding pre_w and the width W are multiples of s and x is aligned to s elements (the stems that
// passes/channels_last rewrites: it rounds the begin padding up to a multiple of s for this), the s input
// columns a pixel reads in one (c, qh) row are one aligned s-element vector, all inside x or all outside
// it. A thread then makes C*s loads of 8 bytes (float32), and a warp's 32 pixels read 256 contiguous bytes
// per load, where the per-element loop makes C*s*s 4-byte loads that each use half of every sector they
// touch. ResNet-50's stem at batch 128: 0.0727 ms (1.80 TB/s) one element at a time, 0.042 (3.1 TB/s) here
// (H200, twelfth session). C is a template parameter so that the pixel's channels stay in registers. The
// choice follows from the node alone: KILN_S2D_VECTOR=0 (builder/pipeline.cpp) keeps the stems' own odd
// padding, which sends ResNet's and MobileNet's stems down the element path (a same-run A/B).
// Same dtype in and out: pure data movement, dtype-generic by element size (zero bytes are 0 in every type).
// A float32 input with a float16/bfloat16 output (attribute 'output_dtype'; passes/fold_space_to_depth_cast.h
// folds LowerPrecision's Cast into the op) converts each element as it moves, with the conversion the Cast
// kernel uses (from_f: __float2half_rn / __float2bfloat16_rn), so the output is bit-identical to Cast + op.
#include <climits>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/programmatic_launch.cuh"
#include "backends/space_to_depth_nhwc_geometry.h"

namespace kiln::cuda::kern {
namespace {

template <class I> struct SpaceToDepthArgs {
  I C, H, W;       // input [N, C, H, W]
  I T, U, C_out;   // output [N, T, U, C_out]
  I s, pre_h, pre_w;
  I block_channels;  // C * s * s: the channels that hold data
};

// X -> Y: the same type (moved as is), or float32 -> half/bf16 (rounded as the Cast kernel rounds).
template <class X, class Y> __device__ __forceinline__ Y convert(X v) {
  if constexpr (std::is_same_v<X, Y>) return v;
  else return from_f<Y>(v);
}

// Output pixel pix = (n * T + t) * U + u of y [N, T, U, C_out]: two divisions a thread.
template <class I> struct OutPixel {
  I n, t, u;
};
template <class I> __device__ __forceinline__ OutPixel<I> out_pixel(I pix, const SpaceToDepthArgs<I>& a) {
  const I nt = pix / a.U;
  return {nt / a.T, nt % a.T, pix % a.U};
}

// Stores V channels of one pixel at yp: one 16-byte vector (yp 16-byte aligned) or one element.
template <class Y, int V> __device__ __forceinline__ void store_channels(Y* yp, const Y* v) {
  if constexpr (V * sizeof(Y) == 16) {
    uint4 packed;
    memcpy(&packed, v, 16);
    *reinterpret_cast<uint4*>(yp) = packed;
  } else {
    static_assert(V == 1, "a store is one element or one 16-byte vector");
    *yp = *v;
  }
}

// X, Y: the input's and output's element types (an unsigned type of the element's size when they are the
// same dtype; float -> half/bf16 when converting); V: elements per store (16 / sizeof(Y) for the vector path,
// 1 otherwise); I: int32_t or int64_t offsets.
template <class X, class Y, class I, int V>
__global__ void k_space_to_depth_nhwc(const X* __restrict__ x, Y* __restrict__ y, int64_t pixels,
                                      SpaceToDepthArgs<I> a) {
  const int64_t gid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (gid >= pixels) return;
  const I pix = static_cast<I>(gid);
  const OutPixel<I> o = out_pixel(pix, a);
  const I h0 = o.t * a.s - a.pre_h, w0 = o.u * a.s - a.pre_w;  // the block's top-left input pixel (may be < 0)
  const X* xn = x + o.n * a.C * a.H * a.W;
  Y* yp = y + pix * a.C_out;
  const Y zero = convert<X, Y>(X(0));  // all zero bits in every type
  I c = 0, qh = 0, qw = 0;  // output channel ch = (qh*s + qw)*C + c
  for (I ch0 = 0; ch0 < a.C_out; ch0 += V) {
    Y v[V];
#pragma unroll
    for (int e = 0; e < V; ++e) {
      v[e] = zero;
      if (ch0 + e < a.block_channels) {
        const I h = h0 + qh, w = w0 + qw;
        if (h >= 0 && h < a.H && w >= 0 && w < a.W) v[e] = convert<X, Y>(xn[(c * a.H + h) * a.W + w]);
        if (++c == a.C) {
          c = 0;
          if (++qw == a.s) {
            qw = 0;
            ++qh;
          }
        }
      }
    }
    store_channels<Y, V>(yp + ch0, v);  // aligned: y is, and C_out and ch0 are multiples of V
  }
}

// s input elements of one row, read as one vector (8 bytes for two float32): the caller guarantees the alignment.
template <class X, int S> struct alignas(S * sizeof(X)) BlockRow {
  X v[S];
};

// X, Y and V as above; S: the block (s); kC: the input channels C. 32-bit offsets.
template <class X, class Y, int S, int kC, int V>
__global__ void k_space_to_depth_block_rows(const X* __restrict__ x, Y* __restrict__ y, int32_t pixels,
                                            SpaceToDepthArgs<int32_t> a, bool allow_next) {
  constexpr int kData = kC * S * S;               // channels that hold data
  constexpr int kStored = (kData + V - 1) / V * V;  // ... and the zeros that fill their last store
  // The stem convolution after it (launched programmatically: the executor says so) may start now and copy
  // its filters; it waits for this kernel before it reads y (programmatic_launch.h).
  if (allow_next) allow_next_kernel_to_start();
  const int64_t gid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (gid >= pixels) return;
  const int32_t pix = static_cast<int32_t>(gid);
  const OutPixel<int32_t> o = out_pixel(pix, a);
  const int32_t h0 = o.t * S - a.pre_h, w0 = o.u * S - a.pre_w;  // w0 is a multiple of S, and so is W
  const bool columns_inside = w0 >= 0 && w0 < a.W;            // all S columns, or none
  const int32_t x0 = o.n * kC * a.H * a.W + w0;  // + (c * H + h) * W: the row's first column (read only inside x)
  const Y zero = convert<X, Y>(X(0));
  Y v[kStored];
#pragma unroll
  for (int qh = 0; qh < S; ++qh) {
    const int32_t h = h0 + qh;
    const bool inside = columns_inside && h >= 0 && h < a.H;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      BlockRow<X, S> r{};
      if (inside) r = *reinterpret_cast<const BlockRow<X, S>*>(x + x0 + (c * a.H + h) * a.W);
#pragma unroll
      for (int qw = 0; qw < S; ++qw) v[(qh * S + qw) * kC + c] = convert<X, Y>(r.v[qw]);
    }
  }
#pragma unroll
  for (int e = kData; e < kStored; ++e) v[e] = zero;
  Y* yp = y + pix * a.C_out;
#pragma unroll
  for (int ch0 = 0; ch0 < kStored; ch0 += V) store_channels<Y, V>(yp + ch0, v + ch0);  // aligned as above
  Y zeros[V];
#pragma unroll
  for (int e = 0; e < V; ++e) zeros[e] = zero;
  for (int32_t ch0 = kStored; ch0 < a.C_out; ch0 += V) store_channels<Y, V>(yp + ch0, zeros);  // channel padding
}

// Launches the block-row kernel when the geometry and x allow it (see the top of the file); false otherwise.
template <class X, class Y, int V>
bool launch_block_rows(const KernelContext& ctx, const X* x, Y* y, int64_t pixels, const SpaceToDepthArgs<int32_t>& a) {
  constexpr int S = 2;
  if constexpr (sizeof(X) != 2 && sizeof(X) != 4) {
    return false;
  } else {
    if (a.s != S || a.pre_w % S != 0 || a.W % S != 0 || !aligned_to(x, S * sizeof(X))) return false;
    const unsigned blocks = blocks_for(pixels);
    const int32_t p = static_cast<int32_t>(pixels);
    const bool next = ctx.res.next_kernel_may_start;
    switch (a.C) {
      case 1: k_space_to_depth_block_rows<X, Y, S, 1, V><<<blocks, kThreads, 0, ctx.stream()>>>(x, y, p, a, next); break;
      case 2: k_space_to_depth_block_rows<X, Y, S, 2, V><<<blocks, kThreads, 0, ctx.stream()>>>(x, y, p, a, next); break;
      case 3: k_space_to_depth_block_rows<X, Y, S, 3, V><<<blocks, kThreads, 0, ctx.stream()>>>(x, y, p, a, next); break;
      case 4: k_space_to_depth_block_rows<X, Y, S, 4, V><<<blocks, kThreads, 0, ctx.stream()>>>(x, y, p, a, next); break;
      default: return false;
    }
    KILN_CUDA_LAUNCH_CHECK();
    return true;
  }
}

template <class X, class Y, class I, int V>
void launch(const KernelContext& ctx, const void* x, void* y, int64_t pixels, const SpaceToDepthArgs<I>& a) {
  if constexpr (std::is_same_v<I, int32_t>) {
    if (launch_block_rows<X, Y, V>(ctx, static_cast<const X*>(x), static_cast<Y*>(y), pixels, a)) return;
  }
  const int64_t blocks = (pixels + kThreads - 1) / kThreads;
  if (blocks > INT_MAX) ctx.fail("the output has too many pixels (" + std::to_string(pixels) + ") for one launch");
  k_space_to_depth_nhwc<X, Y, I, V><<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream()>>>(
      static_cast<const X*>(x), static_cast<Y*>(y), pixels, a);
  KILN_CUDA_LAUNCH_CHECK();
}

template <class X, class Y, class I>
void run(const KernelContext& ctx, const SpaceToDepthArgs<I>& a, int64_t pixels) {
  constexpr int kVec = static_cast<int>(16 / sizeof(Y));
  const void* x = ctx.input(0).data;
  void* y = ctx.out[0].data;
  const bool vector = a.C_out % kVec == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  if (vector) launch<X, Y, I, kVec>(ctx, x, y, pixels, a);
  else launch<X, Y, I, 1>(ctx, x, y, pixels, a);
}

template <class I>
SpaceToDepthArgs<I> args_of(const SpaceToDepthGeometry& g) {
  SpaceToDepthArgs<I> a;
  a.C = static_cast<I>(g.C);
  a.H = static_cast<I>(g.H);
  a.W = static_cast<I>(g.W);
  a.T = static_cast<I>(g.T);
  a.U = static_cast<I>(g.U);
  a.C_out = static_cast<I>(g.C_out);
  a.s = static_cast<I>(g.s);
  a.pre_h = static_cast<I>(g.pre_h);
  a.pre_w = static_cast<I>(g.pre_w);
  a.block_channels = static_cast<I>(g.C * g.s * g.s);
  return a;
}

void space_to_depth_nhwc_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.out[0];
  SpaceToDepthGeometry g;
  const std::string bad = space_to_depth_geometry(ctx.attrs(), x.shape, x.dtype, y.shape, y.dtype, &g);
  if (!bad.empty()) ctx.fail(bad);
  const int64_t pixels = g.N * g.T * g.U;
  if (pixels == 0 || g.C_out == 0) return;
  // 32-bit offsets when every offset (and t*s + qh, below the padded size) fits; else 64-bit.
  const int64_t padded = std::max(g.T, g.U) * g.s + std::max(g.pre_h, g.pre_w);
  const bool narrow = x.numel() <= INT_MAX && y.numel() <= INT_MAX && padded <= INT_MAX;
  auto go = [&](auto xtag, auto ytag) {
    using X = decltype(xtag);
    using Y = decltype(ytag);
    if (narrow) run<X, Y, int32_t>(ctx, args_of<int32_t>(g), pixels);
    else run<X, Y, int64_t>(ctx, args_of<int64_t>(g), pixels);
  };
  if (x.dtype != y.dtype) {  // float32 -> float16 / bfloat16, the only conversions space_to_depth_geometry passes
    if (y.dtype == DataType::kHALF) go(float{}, half{});
    else go(float{}, bf16{});
  } else if (!dispatch_size(dtype_size(x.dtype), [&](auto tag) { go(tag, tag); })) {
    ctx.fail(std::string("unsupported dtype ") + dtype_name(x.dtype));
  }
}

// 4-D input of a dtype the CUDA backend stores (element sizes 1 to 8 bytes), written as it is or, with
// 'output_dtype', converted from float32 to float16/bfloat16.
bool supports_space_to_depth_nhwc(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  if (in.empty() || in[0].shape.size() != 4 || !is_gpu_type(in[0].dtype)) return false;
  if (!node.attrs.has("output_dtype")) return true;
  const int64_t to = node.attrs.i("output_dtype", -1);
  if (to == static_cast<int64_t>(in[0].dtype)) return true;
  return in[0].dtype == DataType::kFLOAT &&
         (to == static_cast<int64_t>(DataType::kHALF) || to == static_cast<int64_t>(DataType::kBF16));
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("SpaceToDepthNhwc", &space_to_depth_nhwc_kernel, &supports_space_to_depth_nhwc);

}  // namespace kiln::cuda::kern
