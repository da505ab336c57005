// Channels-last Pooling (attr channels_last: x [N, spatial..., C]) against the NCHW Pooling of the same data
// with the channels moved to the end afterwards: every pooling type, 1 to 3 spatial dims, strides,
// dilation, explicit / ceil / SAME padding, exclude_pad on and off, on one thread and on the pool.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backends/cpu/math_kernel_test_util.h"
#include "backends/pooling_test_attrs.h"
#include "ir/op_registry.h"

using namespace kiln;

namespace {

using Ints = std::vector<int64_t>;

// A float32 [N, C, sp...] tensor as [N, sp..., C] (to_last) or the reverse.
HostTensor move_channels(const HostTensor& t, bool to_last) {
  const Dims& s = t.shape();
  const size_t r = s.size();
  Dims out(s);
  if (to_last) {
    out.erase(out.begin() + 1);
    out.push_back(s[1]);
  } else {
    out.pop_back();
    out.insert(out.begin() + 1, s[r - 1]);
  }
  // Channels-first view of both: N, C, inner (the spatial volume).
  const int64_t N = s[0], C = to_last ? s[1] : s[r - 1], inner = N && C ? t.numel() / (N * C) : 0;
  HostTensor y(DataType::kFLOAT, out);
  const float* src = t.data<float>();
  float* dst = y.mutable_data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t first = (n * C + c) * inner + i, last = (n * inner + i) * C + c;
        if (to_last) dst[last] = src[first];
        else dst[first] = src[last];
      }
  return y;
}

struct Case {
  Dims x;  // NCHW-style [N, C, spatial...]
  Ints window, stride, pre, post, dil;
  int64_t padding_mode, type;
  bool exclude_pad;
  double p;
};

std::string describe(const Case& c) {
  return "x " + dims_str(c.x) + " window " + dims_str(c.window) + " stride " + dims_str(c.stride) + " pads " +
         dims_str(c.pre) + "/" + dims_str(c.post) + " dilation " + dims_str(c.dil) + " mode " +
         std::to_string(c.padding_mode) + " type " + std::to_string(c.type) + " exclude_pad " +
         std::to_string(c.exclude_pad) + " p " + std::to_string(c.p);
}

::testing::AssertionResult check(const Case& c, cpu::ThreadPool* pool) {
  HostTensor x = mtest::rand_float(c.x, DataType::kFLOAT, 0.1, 2.0);
  auto attrs = [&](bool channels_last) {
    return [&, channels_last](ir::Attrs& a) {
      pooltest::set_pooling_attrs(a, {c.window, c.stride, c.pre, c.post, c.dil, c.padding_mode}, c.type,
                                  c.exclude_pad ? 1 : 0, c.p, channels_last);
    };
  };
  const HostTensor want = move_channels(mtest::run1("Pooling", {&x}, attrs(false), pool), true);
  const HostTensor xl = move_channels(x, true);
  const HostTensor got = mtest::run1("Pooling", {&xl}, attrs(true), pool);
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << describe(c) << ": shape " << dims_str(got.shape()) << ", want "
                                         << dims_str(want.shape());
  // Both layouts accumulate a window's taps in the same order: MAX is exact, the rest within rounding.
  ::testing::AssertionResult r = mtest::close(got, mtest::to_f64(want), c.type == 0 ? 0.0 : 1e-6, 0.0);
  if (!r) return ::testing::AssertionFailure() << describe(c) << ": " << r.message();
  return ::testing::AssertionSuccess();
}

Ints rand_ints_of(size_t n, int64_t lo, int64_t hi) {
  Ints v(n);
  for (auto& x : v) x = mtest::rand_int(lo, hi);
  return v;
}

}  // namespace

TEST(PoolingChannelsLast, MatchesNchwRandomGeometry) {
  const int64_t types[] = {0, 1, 2, 64};
  const int64_t channels[] = {1, 3, 8, 17};
  for (int iter = 0; iter < 192; ++iter) {
    const size_t nsp = iter % 6 == 0 ? 1 : iter % 6 == 1 ? 3 : 2;
    Case c;
    c.padding_mode = iter % 4;
    c.type = types[(iter / 4) % 4];
    c.exclude_pad = (iter / 16) % 2 == 0;
    c.p = (iter / 32) % 2 ? 3.0 : 2.0;
    c.window = rand_ints_of(nsp, 1, 3);
    c.stride = rand_ints_of(nsp, 1, 3);
    c.dil = rand_ints_of(nsp, 1, 2);
    c.pre.assign(nsp, 0);
    c.post.assign(nsp, 0);
    c.x = {mtest::rand_int(1, 2), channels[iter % 4]};
    for (size_t i = 0; i < nsp; ++i) {
      const int64_t eff = c.dil[i] * (c.window[i] - 1) + 1;
      if (c.padding_mode <= 1) {  // explicit padding must be smaller than the window
        c.pre[i] = mtest::rand_int(0, eff - 1);
        c.post[i] = mtest::rand_int(0, eff - 1);
      }
      c.x.push_back(mtest::rand_int(std::max<int64_t>(eff, nsp == 3 ? 3 : 5), nsp == 3 ? 6 : 11));
    }
    EXPECT_TRUE(check(c, iter % 2 ? mtest::test_pool() : nullptr));
  }
}

TEST(PoolingChannelsLast, ResNetStemAndCeilMode) {
  for (int64_t type : {0, 1})
    for (bool excl : {true, false}) {
      // ResNet's stem max pool (3x3, stride 2, padding 1) on enough pixels to spread over the pool.
      EXPECT_TRUE(check({{2, 16, 20, 18}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 0, type, excl, 2.0},
                        mtest::test_pool()));
      // Ceil mode: the last window hangs past the input; a window that would start in the end padding is
      // dropped (in 5, window 2, stride 2, pads 1/1 -> 3 outputs).
      EXPECT_TRUE(check({{1, 5, 5, 6}, {2, 3}, {2, 2}, {1, 0}, {1, 1}, {1, 1}, 1, type, excl, 2.0}, nullptr));
      EXPECT_TRUE(check({{1, 4, 6, 6}, {3, 3}, {2, 2}, {0, 0}, {0, 0}, {1, 1}, 1, type, excl, 2.0}, nullptr));
    }
}

TEST(PoolingChannelsLast, ShapeInference) {
  ir::Graph g;
  ir::Node* n = g.add_node("Pooling", "pool", {g.add_input("x", DataType::kHALF, {8, 112, 112, 64})}, 1);
  n->attrs.set("window", Ints{3, 3});
  n->attrs.set("stride", Ints{2, 2});
  n->attrs.set("pre_padding", Ints{1, 1});
  n->attrs.set("post_padding", Ints{1, 1});
  n->attrs.set("channels_last", int64_t{1});
  std::vector<ir::TensorInfo> in(1);
  in[0].dtype = DataType::kHALF;
  in[0].shape = {8, 112, 112, 64};
  std::vector<ir::TensorInfo> out = ir::infer_node(*n, in);
  EXPECT_EQ(out.at(0).shape, (Dims{8, 56, 56, 64}));
  EXPECT_EQ(out.at(0).dtype, DataType::kHALF);
  in[0].shape = {-1, 7, 9, 5};  // unknown batch stays unknown
  EXPECT_EQ(ir::infer_node(*n, in).at(0).shape, (Dims{-1, 4, 5, 5}));
  in[0].shape = {8, 64};  // no spatial dims
  EXPECT_THROW(ir::infer_node(*n, in), std::exception);
}
