// The direct depthwise convolution kernel (kernels/depthwise_conv.*) against the CPU Convolution kernel:
// channels-last x [N, H, W, C] and weights [C, kh, kw, 1], float32 / float16 / bfloat16, 3x3 stride 1 and 2,
// 5x5 and 7x7 (shared memory holds fewer channels per block), 2x2 and 4x4 (the kernel's any-size variant),
// dilation, asymmetric strides, rows wider than a block's columns, channel counts of one 16-byte vector and
// of several blocks, with every combination of bias, residual and activation
// (ReLU, and clip as ReLU6). The harness runs the kernel twice on differently poisoned outputs, so an
// unwritten element fails too.
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/kernels/depthwise_conv.h"

namespace kiln {
namespace {

using namespace cudatest;

// Runs the node on the direct kernel alone, with the window the cases set (symmetric padding).
void direct_kernel(cuda::KernelContext& ctx) {
  const std::vector<int64_t> pad = ctx.attrs().ints("pre_padding"), stride = ctx.attrs().ints("stride"),
                             dil = ctx.attrs().ints("dilation");
  cuda::DepthwiseGeometry g;
  g.pad_h = static_cast<int>(pad[0]);
  g.pad_w = static_cast<int>(pad[1]);
  g.stride_h = static_cast<int>(stride[0]);
  g.stride_w = static_cast<int>(stride[1]);
  g.dil_h = static_cast<int>(dil[0]);
  g.dil_w = static_cast<int>(dil[1]);
  if (!cuda::depthwise_conv_geometry(ctx, &g) || !cuda::depthwise_conv_aligned(ctx))
    ctx.fail("the direct depthwise kernel does not apply");
  cuda::enqueue_depthwise_conv(ctx, g);
}

struct Case {
  Dims x;  // [N, H, W, C]
  int64_t k, stride_h, stride_w, pad, dilation;
};

TEST(CudaDepthwiseConv, MatchesTheCpuKernel) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<Case> cases = {
      {{2, 9, 11, 32}, 3, 1, 1, 1, 1},   {{1, 14, 14, 96}, 3, 2, 2, 1, 1},   {{2, 7, 8, 8}, 3, 1, 1, 1, 1},
      {{1, 12, 12, 40}, 5, 1, 1, 2, 1},  {{1, 10, 9, 264}, 7, 1, 1, 3, 1},   {{2, 9, 9, 16}, 3, 1, 1, 2, 2},
      {{1, 8, 13, 24}, 3, 2, 1, 0, 1},   {{3, 5, 5, 1024}, 3, 1, 1, 1, 1},   {{1, 4, 300, 16}, 3, 1, 1, 1, 1},
      {{2, 6, 7, 16}, 2, 1, 1, 0, 1},    {{1, 9, 9, 8}, 4, 2, 2, 1, 1},
  };
  struct Epi {
    bool bias, residual;
    int64_t act;  // -1 none, 0 ReLU, 8 clip (ReLU6 with alpha 0, beta 6)
  };
  const std::vector<Epi> epis = {{false, false, -1}, {true, false, 0}, {true, true, -1}, {true, false, 8},
                                 {false, true, 0}};
  for (DataType dt : float_types())
    for (const Case& c : cases) {
      if (c.x[3] % (16 / static_cast<int64_t>(dtype_size(dt))) != 0) continue;
      for (const Epi& e : epis) {
        const int64_t C = c.x[3];
        auto attrs = [&](ir::Attrs& a) {
          a.set("pre_padding", std::vector<int64_t>{c.pad, c.pad});
          a.set("post_padding", std::vector<int64_t>{c.pad, c.pad});
          a.set("stride", std::vector<int64_t>{c.stride_h, c.stride_w});
          a.set("dilation", std::vector<int64_t>{c.dilation, c.dilation});
          a.set("groups", C);
          a.set("channels_last", int64_t{1});
          if (e.act >= 0) a.set("activation", e.act);
          if (e.act == 8) {
            a.set("act_alpha", 0.0);
            a.set("act_beta", 6.0);
          }
        };
        const int64_t eff = c.dilation * (c.k - 1) + 1;
        const Dims y = {c.x[0], (c.x[1] + 2 * c.pad - eff) / c.stride_h + 1, (c.x[2] + 2 * c.pad - eff) / c.stride_w + 1,
                        C};
        std::vector<HostTensor> in = {randf(c.x, dt, -2.0, 2.0), randf({C, c.k, c.k, 1}, dt, -0.5, 0.5),
                                      e.bias ? randf({C}, dt, -1.0, 1.0) : HostTensor()};
        if (e.residual) in.push_back(randf(y, dt, -1.0, 1.0));
        else if (!e.bias) in.pop_back();
        Options opt;
        opt.kernel = &direct_kernel;
        if (dt == DataType::kFLOAT) opt.tol = 2e-5;
        EXPECT_TRUE(check_op("Convolution", in, attrs, opt))
            << dtype_name(dt) << " x " << dims_str(c.x) << " k " << c.k << " stride " << c.stride_h << "x"
            << c.stride_w << " dilation " << c.dilation << " bias " << e.bias << " residual " << e.residual
            << " act " << e.act;
      }
    }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
