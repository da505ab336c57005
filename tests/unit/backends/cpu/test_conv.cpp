#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/cpu/conv.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

std::vector<float> random_vec(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.1f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = (rng() & 1) ? d(rng) : -d(rng);  // never zero
  return v;
}

int64_t prod(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

// Iterates a multi-index over dims (last fastest); returns false after the last one.
bool next_index(std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
    if (++idx[static_cast<size_t>(d)] < dims[static_cast<size_t>(d)]) return true;
    idx[static_cast<size_t>(d)] = 0;
  }
  return false;
}

int64_t flat(const std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  int64_t f = 0;
  for (size_t d = 0; d < dims.size(); ++d) f = f * dims[d] + idx[d];
  return f;
}

struct Ref {
  std::vector<double> y, mag;  // value and sum of |terms| per output
};

Ref ref_conv(const ConvNdParams& p, const std::vector<float>& x, const std::vector<float>& w, const float* bias) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  const int64_t in_t = prod(p.in_spatial), out_t = prod(p.out_spatial), ks = prod(p.kernel);
  const size_t D = p.in_spatial.size();
  Ref r;
  r.y.assign(static_cast<size_t>(p.N * p.K * out_t), 0.0);
  r.mag.assign(r.y.size(), 0.0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k) {
      const int64_t g = k / Kg;
      std::vector<int64_t> o(D, 0);
      if (out_t == 0) continue;
      do {
        double acc = bias ? bias[k] : 0.0, mag = bias ? std::fabs(bias[k]) : 0.0;
        for (int64_t c = 0; c < Cg; ++c) {
          std::vector<int64_t> kk(D, 0);
          do {
            std::vector<int64_t> i(D);
            bool inside = true;
            for (size_t d = 0; d < D; ++d) {
              i[d] = o[d] * p.stride[d] - p.pad_begin[d] + kk[d] * p.dilation[d];
              inside = inside && i[d] >= 0 && i[d] < p.in_spatial[d];
            }
            if (!inside) continue;
            const double xv = x[static_cast<size_t>((n * p.C + g * Cg + c) * in_t + flat(i, p.in_spatial))];
            const double wv = w[static_cast<size_t>((k * Cg + c) * ks + flat(kk, p.kernel))];
            acc += xv * wv;
            mag += std::fabs(xv * wv);
          } while (next_index(kk, p.kernel));
        }
        const size_t at = static_cast<size_t>((n * p.K + k) * out_t + flat(o, p.out_spatial));
        r.y[at] = acc;
        r.mag[at] = mag;
      } while (next_index(o, p.out_spatial));
    }
  return r;
}

Ref ref_conv_transpose(const ConvNdParams& p, const std::vector<float>& x, const std::vector<float>& w,
                       const float* bias) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  const int64_t in_t = prod(p.in_spatial), out_t = prod(p.out_spatial), ks = prod(p.kernel);
  const size_t D = p.in_spatial.size();
  Ref r;
  r.y.assign(static_cast<size_t>(p.N * p.K * out_t), 0.0);
  r.mag.assign(r.y.size(), 0.0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t o = 0; o < out_t; ++o) {
        const size_t at = static_cast<size_t>((n * p.K + k) * out_t + o);
        r.y[at] = bias ? bias[k] : 0.0;
        r.mag[at] = bias ? std::fabs(bias[k]) : 0.0;
      }
  if (in_t == 0) return r;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = 0; c < p.C; ++c) {
      const int64_t g = c / Cg;
      std::vector<int64_t> i(D, 0);
      do {
        const double xv = x[static_cast<size_t>((n * p.C + c) * in_t + flat(i, p.in_spatial))];
        for (int64_t kc = 0; kc < Kg; ++kc) {
          std::vector<int64_t> kk(D, 0);
          do {
            std::vector<int64_t> o(D);
            bool inside = true;
            for (size_t d = 0; d < D; ++d) {
              o[d] = i[d] * p.stride[d] - p.pad_begin[d] + kk[d] * p.dilation[d];
              inside = inside && o[d] >= 0 && o[d] < p.out_spatial[d];
            }
            if (!inside) continue;
            const double wv = w[static_cast<size_t>((c * Kg + kc) * ks + flat(kk, p.kernel))];
            const size_t at = static_cast<size_t>((n * p.K + g * Kg + kc) * out_t + flat(o, p.out_spatial));
            r.y[at] += xv * wv;
            r.mag[at] += std::fabs(xv * wv);
          } while (next_index(kk, p.kernel));
        }
      } while (next_index(i, p.in_spatial));
    }
  return r;
}

void expect_close(const std::vector<float>& got, const Ref& ref, int64_t terms) {
  ASSERT_EQ(got.size(), ref.y.size());
  int bad = 0;
  const double scale = 1e-5 / std::sqrt(static_cast<double>(std::max<int64_t>(terms, 1)));
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = scale * ref.mag[i] + 1e-30;
    if (!std::isfinite(got[i]) || std::fabs(got[i] - ref.y[i]) > tol) {
      if (++bad <= 5) ADD_FAILURE() << "at " << i << ": got " << got[i] << " want " << ref.y[i] << " tol " << tol;
    }
  }
  EXPECT_EQ(bad, 0) << "of " << got.size();
}

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pe, int64_t d) {
  return (in + pb + pe - d * (k - 1) - 1) / s + 1;
}

ConvNdParams make_nd(int64_t N, int64_t C, int64_t K, int64_t groups, std::vector<int64_t> in,
                     std::vector<int64_t> kernel, std::vector<int64_t> stride, std::vector<int64_t> pb,
                     std::vector<int64_t> pe, std::vector<int64_t> dil) {
  ConvNdParams p{N, C, K, groups, in, kernel, stride, pb, pe, dil, {}};
  for (size_t d = 0; d < in.size(); ++d)
    p.out_spatial.push_back(out_size(in[d], kernel[d], stride[d], pb[d], pe[d], dil[d]));
  return p;
}

std::string describe(const ConvNdParams& p) {
  auto v = [](const std::vector<int64_t>& x) {
    std::string s = "[";
    for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + std::to_string(x[i]);
    return s + "]";
  };
  return "N=" + std::to_string(p.N) + " C=" + std::to_string(p.C) + " K=" + std::to_string(p.K) +
         " groups=" + std::to_string(p.groups) + " in=" + v(p.in_spatial) + " kernel=" + v(p.kernel) +
         " stride=" + v(p.stride) + " pads=" + v(p.pad_begin) + v(p.pad_end) + " dil=" + v(p.dilation) +
         " out=" + v(p.out_spatial);
}

// Runs a forward convolution (through conv2d_nchw when 2-d, else conv_nd_nchw; 2-d also through conv_nd)
// on several pools and compares with the reference.
void check_conv(const ConvNdParams& p, bool with_bias, uint32_t seed) {
  SCOPED_TRACE(describe(p) + (with_bias ? " bias" : " no-bias"));
  const int64_t Cg = p.C / p.groups;
  const auto x = random_vec(p.N * p.C * prod(p.in_spatial), seed);
  const auto w = random_vec(p.K * Cg * prod(p.kernel), seed + 1);
  const auto b = random_vec(p.K, seed + 2);
  const float* bias = with_bias ? b.data() : nullptr;
  const Ref ref = ref_conv(p, x, w, bias);
  ThreadPool pool2(2), pool3(3);
  ThreadPool* pools[] = {nullptr, &pool2, &pool3};
  for (ThreadPool* pool : pools) {
    for (int via_nd = 0; via_nd < (p.in_spatial.size() == 2 ? 2 : 1); ++via_nd) {
      std::vector<float> y(ref.y.size(), std::numeric_limits<float>::quiet_NaN());
      if (p.in_spatial.size() == 2 && !via_nd) {
        Conv2dParams q{p.N,           p.C,           p.in_spatial[0], p.in_spatial[1], p.K,
                       p.kernel[0],   p.kernel[1],   p.stride[0],     p.stride[1],     p.pad_begin[0],
                       p.pad_begin[1], p.pad_end[0], p.pad_end[1],    p.dilation[0],   p.dilation[1],
                       p.groups,      p.out_spatial[0], p.out_spatial[1]};
        conv2d_nchw(q, x.data(), w.data(), bias, y.data(), pool);
      } else {
        conv_nd_nchw(p, x.data(), w.data(), bias, y.data(), pool);
      }
      SCOPED_TRACE(std::string("threads=") + std::to_string(pool ? pool->num_threads() : 0) +
                   (via_nd ? " via conv_nd" : ""));
      expect_close(y, ref, Cg * prod(p.kernel));
    }
  }
}

void check_conv_transpose(const ConvNdParams& p, bool with_bias, uint32_t seed) {
  SCOPED_TRACE(describe(p) + (with_bias ? " bias" : " no-bias"));
  const int64_t Kg = p.K / p.groups;
  const auto x = random_vec(p.N * p.C * prod(p.in_spatial), seed);
  const auto w = random_vec(p.C * Kg * prod(p.kernel), seed + 1);
  const auto b = random_vec(p.K, seed + 2);
  const float* bias = with_bias ? b.data() : nullptr;
  const Ref ref = ref_conv_transpose(p, x, w, bias);
  ThreadPool pool2(2), pool3(3);
  ThreadPool* pools[] = {nullptr, &pool2, &pool3};
  for (ThreadPool* pool : pools) {
    SCOPED_TRACE(std::string("threads=") + std::to_string(pool ? pool->num_threads() : 0));
    std::vector<float> y(ref.y.size(), std::numeric_limits<float>::quiet_NaN());
    conv_transpose_nd_nchw(p, x.data(), w.data(), bias, y.data(), pool);
    expect_close(y, ref, (p.C / p.groups) * prod(p.kernel));
  }
}

// Output size of a transposed convolution.
ConvNdParams make_transpose(int64_t N, int64_t C, int64_t K, int64_t groups, std::vector<int64_t> in,
                            std::vector<int64_t> kernel, std::vector<int64_t> stride, std::vector<int64_t> pb,
                            std::vector<int64_t> pe, std::vector<int64_t> dil, std::vector<int64_t> out_pad) {
  ConvNdParams p{N, C, K, groups, in, kernel, stride, pb, pe, dil, {}};
  for (size_t d = 0; d < in.size(); ++d)
    p.out_spatial.push_back((in[d] - 1) * stride[d] - pb[d] - pe[d] + dil[d] * (kernel[d] - 1) + 1 + out_pad[d]);
  return p;
}

class ConvTest : public ::testing::TestWithParam<bool> {  // param: force the portable kernels
 protected:
  void SetUp() override { detail::gemm_force_generic(GetParam()); }
  void TearDown() override { detail::gemm_force_generic(false); }
};

TEST_P(ConvTest, Conv2dBasic) {
  check_conv(make_nd(2, 3, 5, 1, {17, 17}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), true, 1);
  check_conv(make_nd(1, 4, 7, 1, {9, 12}, {3, 5}, {1, 1}, {0, 0}, {0, 0}, {1, 1}), false, 2);
  check_conv(make_nd(3, 1, 1, 1, {5, 5}, {5, 5}, {1, 1}, {0, 0}, {0, 0}, {1, 1}), true, 3);  // 1 output
}

TEST_P(ConvTest, Conv2dStridePadDilation) {
  check_conv(make_nd(2, 3, 4, 1, {19, 23}, {3, 4}, {2, 3}, {0, 2}, {1, 3}, {2, 1}), true, 10);
  check_conv(make_nd(1, 5, 6, 1, {16, 16}, {7, 7}, {2, 2}, {3, 3}, {3, 3}, {1, 1}), true, 11);  // stem-like
  check_conv(make_nd(1, 2, 3, 1, {10, 11}, {3, 3}, {1, 1}, {4, 1}, {0, 5}, {3, 2}), false, 12);
  check_conv(make_nd(2, 2, 2, 1, {4, 3}, {5, 6}, {1, 2}, {3, 3}, {3, 3}, {1, 1}), true, 13);  // kernel > input
  check_conv(make_nd(1, 3, 3, 1, {9, 9}, {2, 2}, {4, 4}, {0, 0}, {0, 0}, {1, 1}), true, 14);  // stride > kernel
}

TEST_P(ConvTest, Conv2dGroups) {
  check_conv(make_nd(2, 4, 6, 2, {11, 13}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), true, 20);
  check_conv(make_nd(1, 6, 9, 3, {12, 10}, {3, 2}, {2, 1}, {1, 0}, {2, 1}, {1, 2}), false, 21);
  check_conv(make_nd(3, 8, 8, 4, {7, 7}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}), true, 22);  // grouped 1x1
}

TEST_P(ConvTest, Conv2dDepthwise) {
  // groups == C == K: 3x3 / 5x5, stride 1 and 2, dilation, asymmetric pads, narrow and wide planes.
  check_conv(make_nd(2, 8, 8, 8, {20, 37}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), true, 30);
  check_conv(make_nd(1, 6, 6, 6, {21, 40}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}), true, 31);
  check_conv(make_nd(1, 5, 5, 5, {30, 45}, {5, 5}, {1, 1}, {2, 2}, {2, 2}, {1, 1}), false, 32);
  check_conv(make_nd(1, 5, 5, 5, {30, 45}, {5, 5}, {2, 2}, {1, 2}, {2, 1}, {1, 1}), true, 33);
  check_conv(make_nd(1, 4, 4, 4, {25, 33}, {3, 3}, {1, 3}, {2, 0}, {1, 3}, {2, 2}), true, 34);
  check_conv(make_nd(2, 3, 3, 3, {3, 2}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), true, 35);  // tiny planes
  check_conv(make_nd(1, 3, 3, 3, {7, 7}, {7, 7}, {1, 1}, {3, 3}, {3, 3}, {1, 1}), true, 36);
  // Channel multiplier 2 (groups == C, K == 2C), and one input channel with many outputs.
  check_conv(make_nd(2, 4, 8, 4, {13, 19}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), true, 37);
  check_conv(make_nd(1, 1, 6, 1, {15, 16}, {3, 3}, {2, 1}, {0, 1}, {1, 0}, {1, 1}), false, 38);
}

TEST_P(ConvTest, Conv2dPointwise) {
  check_conv(make_nd(2, 16, 24, 1, {7, 9}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}), true, 40);
  check_conv(make_nd(1, 33, 17, 1, {14, 14}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}), false, 41);
  check_conv(make_nd(2, 8, 12, 1, {9, 9}, {1, 1}, {2, 2}, {0, 0}, {0, 0}, {1, 1}), true, 42);  // 1x1 stride 2
  check_conv(make_nd(1, 4, 5, 1, {6, 6}, {1, 1}, {1, 1}, {1, 0}, {0, 1}, {1, 1}), true, 43);   // 1x1 padded
}

TEST_P(ConvTest, Conv2dLargeImageIsTiled) {
  // The im2col of the whole image (144 rows x 130*130 columns) exceeds the tile bound.
  check_conv(make_nd(1, 16, 8, 1, {130, 130}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), true, 50);
  check_conv(make_nd(2, 8, 4, 2, {100, 120}, {3, 3}, {2, 2}, {0, 1}, {1, 0}, {1, 1}), false, 51);
}

TEST_P(ConvTest, Conv1d) {
  check_conv(make_nd(2, 4, 6, 2, {50}, {5}, {2}, {2}, {1}, {2}), true, 60);
  check_conv(make_nd(1, 3, 5, 1, {17}, {3}, {1}, {1}, {1}, {1}), false, 61);
  check_conv(make_nd(2, 6, 6, 6, {40}, {3}, {1}, {1}, {1}, {1}), true, 62);  // depthwise 1-d
  check_conv(make_nd(1, 8, 4, 1, {20}, {1}, {1}, {0}, {0}, {1}), true, 63);  // pointwise 1-d
  // A long signal: its im2col (40 rows x 20000 columns) is cut into tiles along the signal.
  check_conv(make_nd(1, 8, 4, 1, {20000}, {5}, {1}, {2}, {2}, {1}), true, 64);
  check_conv(make_nd(2, 4, 4, 2, {9001}, {7}, {3}, {1}, {4}, {2}), false, 65);
}

TEST_P(ConvTest, Conv3d) {
  check_conv(make_nd(2, 4, 6, 2, {5, 6, 7}, {3, 2, 3}, {1, 2, 1}, {1, 0, 2}, {1, 1, 0}, {1, 1, 2}), true, 70);
  check_conv(make_nd(1, 3, 4, 1, {4, 5, 6}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {1, 1, 1}), true, 71);
  check_conv(make_nd(1, 3, 3, 3, {6, 6, 6}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}), false, 72);
  // Unit leading dims: tiles along the first dim larger than 1 (and along the last one).
  check_conv(make_nd(1, 4, 6, 1, {1, 120, 140}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, {1, 1, 1}), true, 73);
  check_conv(make_nd(1, 8, 4, 1, {1, 1, 9000}, {1, 1, 9}, {1, 1, 1}, {0, 0, 4}, {0, 0, 4}, {1, 1, 1}), true, 74);
}

TEST_P(ConvTest, Conv0dIsFullyConnected) {
  check_conv(make_nd(3, 10, 7, 1, {}, {}, {}, {}, {}, {}), true, 80);
}

TEST_P(ConvTest, ConvTranspose2d) {
  check_conv_transpose(make_transpose(2, 4, 6, 1, {5, 6}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), true, 90);
  check_conv_transpose(make_transpose(1, 4, 6, 2, {7, 5}, {4, 3}, {2, 3}, {1, 0}, {2, 1}, {1, 2}, {1, 2}), true, 91);
  check_conv_transpose(make_transpose(2, 3, 2, 1, {4, 4}, {1, 1}, {3, 3}, {0, 0}, {0, 0}, {1, 1}, {2, 0}), false, 92);
  check_conv_transpose(make_transpose(1, 6, 6, 6, {8, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {0, 0}), true, 93);
  check_conv_transpose(make_transpose(1, 8, 4, 1, {60, 70}, {4, 4}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, {0, 0}), true, 94);
}

TEST_P(ConvTest, ConvTranspose1dAnd3d) {
  check_conv_transpose(make_transpose(2, 4, 4, 2, {9}, {3}, {2}, {1}, {0}, {2}, {1}), true, 100);
  check_conv_transpose(make_transpose(1, 3, 5, 1, {12}, {5}, {1}, {2}, {2}, {1}, {0}), false, 101);
  // Long input: the column matrix (128 rows x 20000 columns) is cut into tiles along the signal.
  check_conv_transpose(make_transpose(1, 4, 16, 1, {20000}, {8}, {2}, {3}, {3}, {1}, {1}), true, 103);
  // 3-d with a unit leading dim: tiles along the second dim.
  check_conv_transpose(
      make_transpose(1, 2, 32, 1, {1, 150, 40}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 1, 1}),
      true, 104);
  check_conv_transpose(
      make_transpose(1, 4, 2, 2, {3, 4, 5}, {2, 3, 2}, {2, 1, 2}, {0, 1, 1}, {1, 0, 0}, {1, 2, 1}, {1, 0, 1}), true,
      102);
}

INSTANTIATE_TEST_SUITE_P(Kernels, ConvTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Generic" : "Native"; });

TEST(Conv, RejectsInconsistentParams) {
  std::vector<float> buf(64, 1.0f);
  auto p = make_nd(1, 4, 6, 3, {4, 4}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1});  // 3 does not divide 4
  EXPECT_THROW(conv_nd_nchw(p, buf.data(), buf.data(), nullptr, buf.data(), nullptr), std::invalid_argument);
  p = make_nd(1, 4, 6, 1, {4, 4}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1});
  p.stride = {1};
  EXPECT_THROW(conv_nd_nchw(p, buf.data(), buf.data(), nullptr, buf.data(), nullptr), std::invalid_argument);
  p.stride = {0, 1};
  EXPECT_THROW(conv_nd_nchw(p, buf.data(), buf.data(), nullptr, buf.data(), nullptr), std::invalid_argument);
  p.stride = {1, 1};
  p.groups = 0;
  EXPECT_THROW(conv_transpose_nd_nchw(p, buf.data(), buf.data(), nullptr, buf.data(), nullptr),
               std::invalid_argument);
}

TEST(Conv, EmptyBatchWritesNothing) {
  std::vector<float> y(4, 5.0f);
  auto p = make_nd(0, 2, 2, 1, {2, 2}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1});
  conv_nd_nchw(p, nullptr, nullptr, nullptr, y.data(), nullptr);
  EXPECT_EQ(y, std::vector<float>(4, 5.0f));
}

}  // namespace
}  // namespace kiln::cpu
