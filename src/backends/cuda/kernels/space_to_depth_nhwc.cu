// CUDA kernel for SpaceToDepthNhwc (ir/OPS.md; passes/channels_last writes it in front of a strided stem
// convolution, instead of the NCHW->NHWC transpose): y[n, t, u, (qh*s + qw)*C + c] =
// x[n, c, t*s + qh - pre_h, u*s + qw - pre_w], 0 outside x and in channels C*s*s .. C_out-1.
//
// Two strategies, for the same result:
// - Rows (when space_to_depth_rows_fit: ResNet-50's and MobileNetV2's stems). One block per output row (n, t)
//   stages the C*s input rows that row reads in shared memory, read with coalesced loads (8 per thread in
//   flight before any is stored), then writes the output row, a contiguous U*C_out run, with coalesced 16-byte
//   stores. The per-pixel strategy below reached only 1.8 TB/s on ResNet-50's stem at batch 128 (0.073 ms for
//   131 MB; eleventh session's profile): its loads were 8 bytes apart across a warp and its 16-byte stores
//   32 bytes apart, so every instruction touched twice the lines it used.
// - Pixels (rows too wide to stage). One thread per output pixel (n, t, u) writes its C_out channels: the
//   pixel's coordinates cost two divisions per thread (not per element: per-element 64-bit div/mod made an
//   earlier Pad kernel instruction-bound at 240 GB/s), and the channels' (c, qh, qw) are counters stepped along.
//   Offsets are 32-bit when x and y have fewer than 2^31 elements.
// Both store 16-byte vectors when C_out fills whole vectors and y is 16-byte aligned, else one element at a time.
// Same dtype in and out: pure data movement, dtype-generic by element size (zero bytes are 0 in every type).
// A float32 input with a float16/bfloat16 output (attribute 'output_dtype'; passes/fold_space_to_depth_cast.h
// folds LowerPrecision's Cast into the op) converts each element as it moves, with the conversion the Cast
// kernel uses (from_f: __float2half_rn / __float2bfloat16_rn), so the output is bit-identical to Cast + op.
#include <climits>

#include "backends/cuda/kernels/common.cuh"
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

// The row strategy's geometry (all within-row quantities fit 32 bits: the staged area is at most
// kSpaceToDepthRowStageLimit bytes).
struct RowArgs {
  int C, H, W, T, U, C_out, s, pre_h, pre_w;
  int staged_bytes;  // space_to_depth_staged_rows_bytes: where the tables start
};

constexpr int kRowThreads = 128;  // ResNet-50's stem row: 1380 staged elements, 230 16-byte stores
constexpr int kRowLoads = 8;      // loads per thread in flight before they are stored

// One block per output row nt = n*T + t. Staged row r = c*s + qh holds x[n, c, t*s + qh - pre_h, wi - pre_w] at
// column wi (0 <= wi < U*s), converted to Y; output channel ch = (qh*s + qw)*C + c of pixel u is staged element
// (c*s + qh)*U*s + u*s + qw.
template <class X, class Y, int V>
__global__ void __launch_bounds__(kRowThreads) k_space_to_depth_rows(const X* __restrict__ x, Y* __restrict__ y,
                                                                     RowArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int rows = a.C * a.s, width = a.U * a.s;
  Y* stage = reinterpret_cast<Y*>(smem);
  // Offsets, not pointers: a pointer read back from shared memory is generic, and its loads are not the
  // read-only global loads the compiler gives x's.
  int64_t* row_off = reinterpret_cast<int64_t*>(smem + a.staged_bytes);  // x's row r, or -1 above/below x
  int* ch_off = reinterpret_cast<int*>(row_off + rows);  // channel's staged offset at u = 0, or -1 (zero channel)
  const int64_t nt = blockIdx.x;
  const int64_t n = nt / a.T;
  const int t = static_cast<int>(nt - n * a.T);
  for (int r = threadIdx.x; r < rows; r += kRowThreads) {
    const int c = r / a.s, h = t * a.s + (r - c * a.s) - a.pre_h;
    row_off[r] = h >= 0 && h < a.H ? ((n * a.C + c) * a.H + h) * static_cast<int64_t>(a.W) : -1;
  }
  for (int ch = threadIdx.x; ch < a.C_out; ch += kRowThreads) {
    int off = -1;
    if (ch < rows * a.s) {
      const int b = ch / a.C, c = ch - b * a.C, qh = b / a.s, qw = b - qh * a.s;
      off = (c * a.s + qh) * width + qw;
    }
    ch_off[ch] = off;
  }
  __syncthreads();
  const Y zero = convert<X, Y>(X(0));
  const unsigned total = static_cast<unsigned>(rows * width);
  for (unsigned base = 0; base < total; base += kRowThreads * kRowLoads) {
    // All kRowLoads loads issue before the first is used: branch-free (predicated) and converted afterwards;
    // converting each as it lands serialized them (one load in flight per thread).
    X raw[kRowLoads];
#pragma unroll
    for (int k = 0; k < kRowLoads; ++k) {
      const unsigned i = base + k * kRowThreads + threadIdx.x;
      const unsigned r = i < total ? i / width : 0;
      const int w = static_cast<int>(i - r * width) - a.pre_w;
      const int64_t ro = row_off[r];
      const bool inside = i < total && ro >= 0 && w >= 0 && w < a.W;
      raw[k] = inside ? x[ro + w] : X(0);
    }
#pragma unroll
    for (int k = 0; k < kRowLoads; ++k) {
      const unsigned i = base + k * kRowThreads + threadIdx.x;
      if (i < total) stage[i] = convert<X, Y>(raw[k]);
    }
  }
  __syncthreads();
  Y* yrow = y + nt * a.U * a.C_out;
  const int stores = a.U * a.C_out / V;  // C_out is a multiple of V
  for (int j = threadIdx.x; j < stores; j += kRowThreads) {
    const int u = j * V / a.C_out, ch0 = j * V - u * a.C_out;
    Y v[V];
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const int off = ch_off[ch0 + e];
      v[e] = off < 0 ? zero : stage[off + u * a.s];
    }
    if constexpr (V * sizeof(Y) == 16) {
      uint4 packed;
      memcpy(&packed, v, 16);
      reinterpret_cast<uint4*>(yrow)[j] = packed;  // aligned: y is, and every row is whole vectors
    } else {
      static_assert(V == 1, "a store is one element or one 16-byte vector");
      yrow[j] = v[0];
    }
  }
}

// X, Y: the input's and output's element types (an unsigned type of the element's size when they are the
// same dtype; float -> half/bf16 when converting); V: elements per store (16 / sizeof(Y) for the vector path,
// 1 otherwise); I: int32_t or int64_t offsets.
template <class X, class Y, class I, int V>
__global__ void k_space_to_depth_pixels(const X* __restrict__ x, Y* __restrict__ y, int64_t pixels,
                                      SpaceToDepthArgs<I> a) {
  const int64_t gid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (gid >= pixels) return;
  const I pix = static_cast<I>(gid);
  const I u = pix % a.U;
  const I nt = pix / a.U;
  const I t = nt % a.T;
  const I n = nt / a.T;
  const I h0 = t * a.s - a.pre_h, w0 = u * a.s - a.pre_w;  // the block's top-left input pixel (may be < 0)
  const X* xn = x + n * a.C * a.H * a.W;
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
    if constexpr (V * sizeof(Y) == 16) {
      uint4 packed;
      memcpy(&packed, v, 16);
      *reinterpret_cast<uint4*>(yp + ch0) = packed;  // aligned: y is, and C_out and ch0 are multiples of V
    } else {
      static_assert(V == 1, "a store is one element or one 16-byte vector");
      yp[ch0] = v[0];
    }
  }
}

template <class X, class Y, class I, int V>
void launch(const KernelContext& ctx, const void* x, void* y, int64_t pixels, const SpaceToDepthArgs<I>& a) {
  const int64_t blocks = (pixels + kThreads - 1) / kThreads;
  if (blocks > INT_MAX) ctx.fail("the output has too many pixels (" + std::to_string(pixels) + ") for one launch");
  k_space_to_depth_pixels<X, Y, I, V><<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream()>>>(
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

template <class X, class Y, int V>
void launch_rows(const KernelContext& ctx, const SpaceToDepthGeometry& g, const RowArgs& a) {
  const int64_t blocks = g.N * g.T;
  if (blocks > INT_MAX) ctx.fail("the output has too many rows (" + std::to_string(blocks) + ") for one launch");
  const size_t smem = static_cast<size_t>(space_to_depth_row_stage_bytes(g, sizeof(Y)));
  k_space_to_depth_rows<X, Y, V><<<static_cast<unsigned>(blocks), kRowThreads, smem, ctx.stream()>>>(
      static_cast<const X*>(ctx.input(0).data), static_cast<Y*>(ctx.out[0].data), a);
  KILN_CUDA_LAUNCH_CHECK();
}

template <class X, class Y>
void run_rows(const KernelContext& ctx, const SpaceToDepthGeometry& g) {
  const RowArgs a{static_cast<int>(g.C),     static_cast<int>(g.H),     static_cast<int>(g.W),
                  static_cast<int>(g.T),     static_cast<int>(g.U),     static_cast<int>(g.C_out),
                  static_cast<int>(g.s),     static_cast<int>(g.pre_h), static_cast<int>(g.pre_w),
                  static_cast<int>(space_to_depth_staged_rows_bytes(g, sizeof(Y)))};
  constexpr int kVec = static_cast<int>(16 / sizeof(Y));
  const bool vector = g.C_out % kVec == 0 && reinterpret_cast<uintptr_t>(ctx.out[0].data) % 16 == 0;
  if (vector) launch_rows<X, Y, kVec>(ctx, g, a);
  else launch_rows<X, Y, 1>(ctx, g, a);
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
    if (space_to_depth_rows_fit(g, sizeof(Y))) run_rows<X, Y>(ctx, g);
    else if (narrow) run<X, Y, int32_t>(ctx, args_of<int32_t>(g), pixels);
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
