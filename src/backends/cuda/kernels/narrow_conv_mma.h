// Kiln's tensor-core kernel for channels-last convolutions whose input has exactly 16 channels: the stem
// after its space-to-depth rewrite (passes/channels_last.h; ResNet-50's 4x4 over 16 channels to 64 maps,
// MobileNet's 2x2 to 32), with the node's whole epilogue: y = act(conv(x, w) + bias + residual).
//
// Why Kiln's own: 16 input channels are exactly one k-step of mma.sync m16n8k16, so each filter tap is one
// MMA per 16 output pixels and 8 output channels, with no k padding and no im2col. cuDNN's engines run
// ResNet-50's stem at 154 TFLOP/s (0.342 ms at batch 128, ninth session), a quarter of what its 52.6 GFLOP
// and 260 MB would allow. The convolution kernel times this one against cuDNN's choice and keeps the faster.
//
// Applies to: forward, channels_last, groups 1, stride 1, dilation 1, no padding (the space-to-depth op
// writes the padding), x [N, H, W, 16] and w [K, kh, kw, 16] with kh * kw <= 16, y [N, H-kh+1, W-kw+1, K]
// with K a multiple of 32, float16 or bfloat16 throughout, an optional bias [K], an optional residual of y's
// shape, and an activation the epilogue knows. Needs sm_80 or newer (mma.sync, ldmatrix).
#pragma once
#include <cstdint>
#include <string>

#include "backends/cuda/candidate_mode.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

// KILN_CONV_NARROW_TILE: how a block's 4 warps share its tile of 8 output rows x 16 pixels x KT channels
// (narrow_conv_mma.cu's top says why two): "rows4" kRows4, each warp 4 rows x KT / 2 channels; "rows2"
// kRows2, each warp 2 rows x all KT channels; unset, "" or "auto" kAuto, the default: rows4 where it loads
// at least a quarter fewer fragments from shared memory (64-channel blocks, 3 or more rows of taps:
// ResNet's stem), rows2 elsewhere (narrow_conv_tile_for). Read with the geometry, when the convolution
// chooses its path, so a launch reads no environment.
enum class NarrowConvTile { kAuto, kRows4, kRows2 };

// The tiling kAuto takes for a block of KT output channels and kh rows of taps.
NarrowConvTile narrow_conv_tile_for(int KT, int kh);

// `value` (nullptr: unset) as KILN_CONV_NARROW_TILE's tiling in *out; false for any other value.
bool parse_narrow_conv_tile(const char* value, NarrowConvTile* out);

struct NarrowConvGeometry {
  int64_t N = 0, H = 0, W = 0, K = 0, OH = 0, OW = 0;
  int kh = 0, kw = 0;
  int act = -1;  // the fused activation (epilogue.h's read_fused_activation): type, -1 none, and its parameters
  float alpha = 0, beta = 0;
  NarrowConvTile tile = NarrowConvTile::kRows2;  // resolved by narrow_conv_geometry: never kAuto
  // Launched to start beside the kernel before it, copying its filters meanwhile (programmatic_launch.h;
  // KILN_PDL, read with the geometry).
  bool programmatic = false;
};

// KILN_CONV_NARROW (candidate_mode.h): the kernel is one more timed candidate for eligible convolutions,
// never, or forced: taken whenever eligible, nothing timed or recorded (tests).
using NarrowConvMode = CandidateMode;
inline NarrowConvMode narrow_conv_mode() { return candidate_mode("KILN_CONV_NARROW"); }

// Whether the kernel can run this node for its current shapes and dtypes (see the top of the file), filling
// in *g (its tiling from KILN_CONV_NARROW_TILE: a bad value fails the node, naming it); false with the reason
// in *why. The window (stride, padding, dilation) is the caller's, as it computed it for cuDNN. The addresses
// are checked apart (narrow_conv_aligned): they may change per run.
bool narrow_conv_geometry(const KernelContext& ctx, bool unit_window, NarrowConvGeometry* g, std::string* why);

// Whether x, w, y and the residual are 16-byte aligned and the bias 4-byte aligned, as the kernel's loads
// and stores need.
bool narrow_conv_aligned(const KernelContext& ctx);

// Enqueues the convolution and its epilogue on ctx.stream(). Never synchronizes or allocates.
void enqueue_narrow_conv(KernelContext& ctx, const NarrowConvGeometry& g);

}  // namespace kiln::cuda
