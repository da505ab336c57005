// Convolution, Deconvolution, Pooling and GlobalPooling kernels against naive references written here
// (direct loops in double precision) on random inputs: strides, asymmetric padding, dilation, groups,
// SAME_UPPER/LOWER, ceil mode, 1-D/2-D/3-D.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "backends/cpu/eval.h"
#include "ir/graph.h"

namespace kiln {
namespace {

using Ints = std::vector<int64_t>;

std::mt19937_64& rng() {
  static std::mt19937_64 r(4321);
  return r;
}
int64_t rand_int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng()); }

HostTensor random_f32(Dims shape) {
  HostTensor t(DataType::kFLOAT, shape);
  std::uniform_real_distribution<float> u(0.1f, 2.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = u(rng()) * (rand_int(0, 1) ? 1.f : -1.f);
  return t;
}

Ints unravel(int64_t i, const Dims& d) {
  Ints idx(d.size());
  for (size_t k = d.size(); k-- > 0;) {
    idx[k] = i % d[k];
    i /= d[k];
  }
  return idx;
}
int64_t ravel(const Ints& idx, const Dims& d) {
  int64_t off = 0;
  for (size_t k = 0; k < d.size(); ++k) off = off * d[k] + idx[k];
  return off;
}

struct Geometry {
  Ints kernel, stride, dil, pre, post;
  int64_t mode = 0;  // 0 floor, 1 ceil, 2 SAME_UPPER, 3 SAME_LOWER
};

std::string geo_str(const Geometry& g) {
  return "kernel " + dims_str(g.kernel) + " stride " + dims_str(g.stride) + " dil " + dims_str(g.dil) + " pads " +
         dims_str(g.pre) + "/" + dims_str(g.post) + " mode " + std::to_string(g.mode);
}

void set_geometry(ir::Attrs& a, const Geometry& g, const char* kernel_name) {
  a.set(kernel_name, g.kernel);
  a.set("stride", g.stride);
  a.set("dilation", g.dil);
  a.set("pre_padding", g.pre);
  a.set("post_padding", g.post);
  a.set("padding_mode", g.mode);
}

// Output size and the padding actually applied at the start, per the op contract.
void window_geometry(const Geometry& g, const Dims& in, bool pool, Dims* out, Ints* pre, Ints* post) {
  for (size_t i = 0; i < in.size(); ++i) {
    int64_t eff = g.dil[i] * (g.kernel[i] - 1) + 1, o, p = g.pre[i], q = g.post[i];
    if (g.mode >= 2) {
      o = (in[i] + g.stride[i] - 1) / g.stride[i];
      int64_t total = std::max<int64_t>(0, (o - 1) * g.stride[i] + eff - in[i]);
      p = g.mode == 2 ? total / 2 : total - total / 2;
      q = total - p;
    } else {
      double span = double(in[i] + p + q - eff) / double(g.stride[i]);
      o = static_cast<int64_t>(g.mode == 1 ? std::ceil(span) : std::floor(span)) + 1;
      if (pool && g.mode == 1 && (o - 1) * g.stride[i] >= in[i] + p) --o;
    }
    out->push_back(o);
    pre->push_back(p);
    post->push_back(q);
  }
}

void compare(const HostTensor& got, const std::vector<double>& want, const std::vector<double>& scale, Dims shape,
             const std::string& what) {
  ASSERT_EQ(dims_str(got.shape()), dims_str(shape)) << what;
  for (int64_t i = 0; i < got.numel(); ++i) {
    double g = got.data<float>()[i], w = want[i];
    double tol = 2e-5 * scale[i] + 1e-6;
    if (!(std::fabs(g - w) <= tol) && !(std::isinf(w) && g == w)) {
      ADD_FAILURE() << what << ": element " << i << " " << dims_str(unravel(i, shape)) << " got " << g << " want " << w;
      return;
    }
  }
}

// ------------------------------------------------------------------------------------------------------
struct ConvCase {
  Dims x;
  int64_t K, groups;
  Geometry g;
  bool bias;
};

void run_conv_case(const ConvCase& c) {
  size_t nsp = c.x.size() - 2;
  int64_t N = c.x[0], C = c.x[1], K = c.K, G = c.groups, Cg = C / G, Kg = K / G;
  Dims wshape{K, Cg};
  wshape.insert(wshape.end(), c.g.kernel.begin(), c.g.kernel.end());
  HostTensor x = random_f32(c.x), w = random_f32(wshape), b = random_f32({K});
  ir::Graph graph;
  std::vector<ir::Value*> vals{graph.add_input("x", x.dtype(), x.shape()), graph.add_input("w", w.dtype(), w.shape())};
  std::vector<const HostTensor*> ins{&x, &w};
  if (c.bias) {
    vals.push_back(graph.add_input("b", b.dtype(), b.shape()));
    ins.push_back(&b);
  }
  ir::Node* n = graph.add_node("Convolution", "conv", vals, 1);
  set_geometry(n->attrs, c.g, "kernel");
  n->attrs.set("num_output_maps", K);
  n->attrs.set("groups", G);
  auto y = cpu::eval_node(*n, ins);

  Dims in(c.x.begin() + 2, c.x.end()), out_sp;
  Ints pre, post;
  window_geometry(c.g, in, false, &out_sp, &pre, &post);
  Dims out{N, K};
  out.insert(out.end(), out_sp.begin(), out_sp.end());
  int64_t total = volume(out);
  std::vector<double> want(total), scale(total);
  int64_t taps = volume(c.g.kernel);
  for (int64_t i = 0; i < total; ++i) {
    Ints o = unravel(i, out);
    int64_t nn = o[0], k = o[1], grp = k / Kg;
    double acc = c.bias ? b.data<float>()[k] : 0.0, mag = std::fabs(acc);
    for (int64_t ci = 0; ci < Cg; ++ci)
      for (int64_t t = 0; t < taps; ++t) {
        Ints tk = unravel(t, c.g.kernel);
        Ints xi{nn, grp * Cg + ci};
        bool inside = true;
        for (size_t s = 0; s < nsp; ++s) {
          int64_t pos = o[2 + s] * c.g.stride[s] - pre[s] + tk[s] * c.g.dil[s];
          inside &= pos >= 0 && pos < in[s];
          xi.push_back(pos);
        }
        if (!inside) continue;
        Ints wi{k, ci};
        wi.insert(wi.end(), tk.begin(), tk.end());
        double v = double(x.data<float>()[ravel(xi, c.x)]) * w.data<float>()[ravel(wi, wshape)];
        acc += v;
        mag += std::fabs(v);
      }
    want[i] = acc;
    scale[i] = mag;
  }
  compare(y[0], want, scale, out, "conv x " + dims_str(c.x) + " K " + std::to_string(K) + " groups " +
                                      std::to_string(G) + " " + geo_str(c.g));
}

Geometry random_geometry(size_t nsp, int64_t mode, bool allow_big_pads) {
  Geometry g;
  g.mode = mode;
  for (size_t i = 0; i < nsp; ++i) {
    g.kernel.push_back(rand_int(1, nsp == 3 ? 3 : 4));
    g.stride.push_back(rand_int(1, 3));
    g.dil.push_back(rand_int(1, 2));
    int64_t eff = g.dil.back() * (g.kernel.back() - 1) + 1;
    int64_t lim = allow_big_pads ? 2 : eff - 1;
    g.pre.push_back(rand_int(0, std::min<int64_t>(2, lim)));
    g.post.push_back(rand_int(0, std::min<int64_t>(2, lim)));
  }
  return g;
}

TEST(ConvKernels, Conv2dRandomGeometry) {
  for (int iter = 0; iter < 80; ++iter) {
    int64_t G = std::vector<int64_t>{1, 1, 2, 3}[iter % 4];
    int64_t C = G * rand_int(1, 3), K = G * rand_int(1, 3);
    Geometry g = random_geometry(2, iter % 4, true);
    Dims x{rand_int(1, 2), C, rand_int(7, 12), rand_int(7, 12)};
    run_conv_case({x, K, G, g, iter % 3 != 0});
  }
}

TEST(ConvKernels, Conv2dSpecialShapes) {
  Geometry one{{1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, 0};
  run_conv_case({{2, 16, 9, 11}, 24, 1, one, true});           // 1x1 GEMM path
  Geometry dw{{3, 3}, {2, 1}, {1, 2}, {1, 2}, {0, 1}, 0};
  run_conv_case({{2, 8, 13, 10}, 8, 8, dw, true});             // depthwise
  run_conv_case({{1, 8, 13, 10}, 16, 8, dw, false});           // channel multiplier 2
  Geometry big{{3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 0};
  run_conv_case({{1, 32, 20, 20}, 40, 1, big, true});          // large, multithreaded
  Geometry same{{4, 5}, {3, 2}, {1, 1}, {0, 0}, {0, 0}, 2};
  run_conv_case({{1, 3, 10, 9}, 4, 1, same, true});            // SAME_UPPER, even kernel
  same.mode = 3;
  run_conv_case({{1, 3, 10, 9}, 4, 1, same, true});            // SAME_LOWER
}

TEST(ConvKernels, Conv1dAnd3d) {
  for (int iter = 0; iter < 30; ++iter) {
    int64_t G = iter % 3 == 0 ? 2 : 1;
    int64_t C = G * rand_int(1, 3), K = G * rand_int(1, 3);
    if (iter % 2 == 0) {
      Geometry g = random_geometry(1, iter % 4, true);
      run_conv_case({{rand_int(1, 2), C, rand_int(7, 20)}, K, G, g, true});
    } else {
      Geometry g = random_geometry(3, iter % 4, true);
      run_conv_case({{1, C, rand_int(5, 8), rand_int(5, 8), rand_int(5, 8)}, K, G, g, iter % 3 != 1});
    }
  }
}

// ------------------------------------------------------------------------------------------------------
struct DeconvCase {
  Dims x;
  int64_t K, groups;
  Geometry g;
  Ints output_padding;
  bool bias;
};

void run_deconv_case(const DeconvCase& c) {
  size_t nsp = c.x.size() - 2;
  int64_t N = c.x[0], C = c.x[1], K = c.K, G = c.groups, Cg = C / G, Kg = K / G;
  Dims wshape{C, Kg};
  wshape.insert(wshape.end(), c.g.kernel.begin(), c.g.kernel.end());
  HostTensor x = random_f32(c.x), w = random_f32(wshape), b = random_f32({K});
  ir::Graph graph;
  std::vector<ir::Value*> vals{graph.add_input("x", x.dtype(), x.shape()), graph.add_input("w", w.dtype(), w.shape())};
  std::vector<const HostTensor*> ins{&x, &w};
  if (c.bias) {
    vals.push_back(graph.add_input("b", b.dtype(), b.shape()));
    ins.push_back(&b);
  }
  ir::Node* n = graph.add_node("Deconvolution", "deconv", vals, 1);
  set_geometry(n->attrs, c.g, "kernel");
  n->attrs.set("num_output_maps", K);
  n->attrs.set("groups", G);
  n->attrs.set("output_padding", c.output_padding);
  auto y = cpu::eval_node(*n, ins);

  Dims in(c.x.begin() + 2, c.x.end()), out{N, K};
  Ints pre(nsp);
  for (size_t i = 0; i < nsp; ++i) {
    int64_t eff = c.g.dil[i] * (c.g.kernel[i] - 1) + 1, s = c.g.stride[i];
    if (c.g.mode >= 2) {
      int64_t total = eff - s;  // these cases keep it >= 0
      pre[i] = c.g.mode == 2 ? total / 2 : total - total / 2;
      out.push_back(in[i] * s + c.output_padding[i]);
    } else {
      pre[i] = c.g.pre[i];
      out.push_back((in[i] - 1) * s - c.g.pre[i] - c.g.post[i] + eff + c.output_padding[i]);
    }
  }
  int64_t total = volume(out);
  std::vector<double> want(total, 0.0), scale(total, 0.0);
  for (int64_t i = 0; i < total; ++i) {
    if (c.bias) {
      want[i] = b.data<float>()[unravel(i, out)[1]];
      scale[i] = std::fabs(want[i]);
    }
  }
  int64_t taps = volume(c.g.kernel);
  for (int64_t xi = 0; xi < x.numel(); ++xi) {
    Ints xc = unravel(xi, c.x);
    int64_t grp = xc[1] / Cg;
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t t = 0; t < taps; ++t) {
        Ints tk = unravel(t, c.g.kernel);
        Ints oc{xc[0], grp * Kg + k};
        bool inside = true;
        for (size_t s = 0; s < nsp; ++s) {
          int64_t pos = xc[2 + s] * c.g.stride[s] - pre[s] + tk[s] * c.g.dil[s];
          inside &= pos >= 0 && pos < out[2 + s];
          oc.push_back(pos);
        }
        if (!inside) continue;
        Ints wi{xc[1], k};
        wi.insert(wi.end(), tk.begin(), tk.end());
        double v = double(x.data<float>()[xi]) * w.data<float>()[ravel(wi, wshape)];
        int64_t o = ravel(oc, out);
        want[o] += v;
        scale[o] += std::fabs(v);
      }
  }
  compare(y[0], want, scale, out, "deconv x " + dims_str(c.x) + " K " + std::to_string(K) + " groups " +
                                      std::to_string(G) + " " + geo_str(c.g) + " output_padding " +
                                      dims_str(c.output_padding));
}

TEST(ConvKernels, DeconvolutionRandomGeometry) {
  for (int iter = 0; iter < 60; ++iter) {
    size_t nsp = iter % 5 == 0 ? 1 : iter % 5 == 1 ? 3 : 2;
    int64_t G = iter % 3 == 2 ? 2 : 1;
    int64_t C = G * rand_int(1, 3), K = G * rand_int(1, 3);
    int64_t mode = iter % 4 == 3 ? 2 + rand_int(0, 1) : 0;
    Geometry g = random_geometry(nsp, mode, false);
    Ints op(nsp);
    for (size_t i = 0; i < nsp; ++i) {
      if (mode >= 2) g.kernel[i] = std::max(g.kernel[i], g.stride[i]);  // SAME: total padding eff - stride >= 0
      op[i] = rand_int(0, std::max(g.stride[i], g.dil[i]) - 1);
    }
    Dims x{rand_int(1, 2), C};
    for (size_t i = 0; i < nsp; ++i) x.push_back(rand_int(nsp == 3 ? 3 : 4, nsp == 3 ? 5 : 9));
    run_deconv_case({x, K, G, g, op, iter % 2 == 0});
  }
}

// ------------------------------------------------------------------------------------------------------
struct PoolCase {
  Dims x;
  int64_t type;
  Geometry g;
  bool exclude_pad;
  double p, blend;
};

void run_pool_case(const PoolCase& c) {
  size_t nsp = c.x.size() - 2;
  HostTensor x = random_f32(c.x);
  ir::Graph graph;
  ir::Node* n = graph.add_node("Pooling", "pool", {graph.add_input("x", x.dtype(), x.shape())}, 1);
  set_geometry(n->attrs, c.g, "window");
  n->attrs.set("type", c.type);
  n->attrs.set("exclude_pad", c.exclude_pad);
  n->attrs.set("p", c.p);
  n->attrs.set("blend_factor", c.blend);
  auto y = cpu::eval_node(*n, {&x});
  Dims in(c.x.begin() + 2, c.x.end()), out_sp;
  Ints pre, post;
  window_geometry(c.g, in, true, &out_sp, &pre, &post);
  Dims out{c.x[0], c.x[1]};
  out.insert(out.end(), out_sp.begin(), out_sp.end());
  int64_t total = volume(out), taps = volume(c.g.kernel);
  std::vector<double> want(total), scale(total);
  for (int64_t i = 0; i < total; ++i) {
    Ints o = unravel(i, out);
    double mx = -std::numeric_limits<double>::infinity(), sum = 0, mag = 0;
    int64_t valid = 0, padded = 0;
    for (int64_t t = 0; t < taps; ++t) {
      Ints tk = unravel(t, c.g.kernel);
      Ints xi{o[0], o[1]};
      bool inside = true, in_pad = true;
      for (size_t s = 0; s < nsp; ++s) {
        int64_t pos = o[2 + s] * c.g.stride[s] - pre[s] + tk[s] * c.g.dil[s];
        inside &= pos >= 0 && pos < in[s];
        in_pad &= pos >= -pre[s] && pos < in[s] + post[s];
        xi.push_back(pos);
      }
      padded += in_pad;
      if (!inside) continue;
      ++valid;
      double v = x.data<float>()[ravel(xi, c.x)];
      mx = std::max(mx, v);
      sum += c.type == 64 ? std::pow(std::fabs(v), c.p) : v;
      mag += std::fabs(c.type == 64 ? std::pow(std::fabs(v), c.p) : v);
    }
    double avg = sum / double(c.exclude_pad ? valid : padded);
    if (c.type == 0) want[i] = mx;
    else if (c.type == 1) want[i] = avg;
    else if (c.type == 2) want[i] = (1 - c.blend) * mx + c.blend * avg;
    else want[i] = std::pow(sum, 1.0 / c.p);
    scale[i] = c.type == 64 ? std::fabs(want[i]) * 4 : mag / std::max<int64_t>(1, valid) + std::fabs(mx);
  }
  compare(y[0], want, scale, out, "pool type " + std::to_string(c.type) + " x " + dims_str(c.x) + " " + geo_str(c.g) +
                                      " exclude_pad " + std::to_string(c.exclude_pad) + " p " + std::to_string(c.p));
}

TEST(PoolingKernels, RandomGeometryEveryType) {
  const int64_t types[] = {0, 1, 2, 64};
  for (int iter = 0; iter < 160; ++iter) {
    size_t nsp = iter % 7 == 0 ? 1 : iter % 7 == 1 ? 3 : 2;
    int64_t mode = iter % 4;
    Geometry g = random_geometry(nsp, mode, false);
    Dims x{rand_int(1, 2), rand_int(1, 3)};
    for (size_t i = 0; i < nsp; ++i) x.push_back(rand_int(nsp == 3 ? 5 : 7, nsp == 3 ? 7 : 12));
    int64_t type = types[(iter / 4) % 4];
    double p = (iter / 16) % 2 ? 3.0 : 2.0;
    run_pool_case({x, type, g, (iter / 2) % 2 == 0, p, 0.3});
  }
}

TEST(PoolingKernels, CeilModeDropsWindowsStartingInPadding) {
  // in 5, window 2, stride 2, pads 1/1: floor gives 3, ceil gives 4 minus the window starting at 6 -> 3.
  Geometry g{{2}, {2}, {1}, {1}, {1}, 1};
  run_pool_case({{1, 2, 5}, 0, g, true, 2.0, 0.0});
  run_pool_case({{1, 2, 5}, 1, g, false, 2.0, 0.0});
  // in 6, window 3, stride 2, no pads: ceil gives 3, the last window hangs past the input; the average
  // divides by the taps inside the padded extent (here: inside the input) in both exclude_pad settings.
  Geometry g2{{3, 3}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, 1};
  run_pool_case({{1, 1, 6, 6}, 1, g2, false, 2.0, 0.0});
  run_pool_case({{1, 1, 6, 6}, 1, g2, true, 2.0, 0.0});
  // Same with padding 1/1 on an 8 wide input: the last window covers 7, 8 (end padding) and 9 (beyond it).
  Geometry g3{{3}, {2}, {1}, {1}, {1}, 1};
  run_pool_case({{1, 2, 8}, 1, g3, false, 2.0, 0.0});
  run_pool_case({{1, 2, 8}, 2, g3, false, 2.0, 0.4});
}

TEST(PoolingKernels, LargeMultithreaded) {
  Geometry g{{3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 0};
  run_pool_case({{4, 64, 56, 56}, 0, g, true, 2.0, 0.0});
  Geometry s1{{3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 0};
  run_pool_case({{2, 32, 40, 40}, 1, s1, false, 2.0, 0.0});
}

TEST(PoolingKernels, GlobalPooling) {
  for (Dims shape : {Dims{2, 3, 5, 7}, Dims{1, 4, 1000}, Dims{2, 2, 3, 4, 5}, Dims{3, 1, 1, 1}})
    for (int64_t type : {0, 1, 64})
      for (double p : {2.0, 3.0}) {
        if (type != 64 && p != 2.0) continue;
        HostTensor x = random_f32(shape);
        ir::Graph graph;
        ir::Node* n = graph.add_node("GlobalPooling", "gp", {graph.add_input("x", x.dtype(), x.shape())}, 1);
        n->attrs.set("type", type);
        n->attrs.set("p", p);
        auto y = cpu::eval_node(*n, {&x});
        int64_t planes = shape[0] * shape[1], m = x.numel() / planes;
        Dims out = shape;
        for (size_t i = 2; i < out.size(); ++i) out[i] = 1;
        std::vector<double> want(planes), scale(planes);
        for (int64_t pl = 0; pl < planes; ++pl) {
          double mx = -INFINITY, s = 0, mag = 0;
          for (int64_t i = 0; i < m; ++i) {
            double v = x.data<float>()[pl * m + i];
            mx = std::max(mx, v);
            s += type == 64 ? std::pow(std::fabs(v), p) : v;
            mag += std::fabs(v);
          }
          want[pl] = type == 0 ? mx : type == 1 ? s / m : std::pow(s, 1 / p);
          scale[pl] = type == 1 ? mag / m : std::fabs(want[pl]) * 4;
        }
        compare(y[0], want, scale, out, "global type " + std::to_string(type) + " " + dims_str(shape));
      }
}

}  // namespace
}  // namespace kiln
