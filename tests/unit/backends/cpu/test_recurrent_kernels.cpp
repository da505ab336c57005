// RNN / GRU / LSTM kernels against a naive reference written here straight from the ONNX equations (one
// scalar loop per gate, double accumulation, no GEMM), on random weights: every direction, sequence_lens
// with ragged and zero lengths, initial states, biases, peepholes, input_forget, clip, linear_before_reset
// and non-default activations with alpha/beta.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "backends/cpu/eval.h"
#include "ir/graph.h"

namespace kiln {
namespace {

std::mt19937_64& rng() {
  static std::mt19937_64 r(2024);
  return r;
}

HostTensor random_f32(const Dims& shape, float scale = 0.5f) {
  HostTensor t(DataType::kFLOAT, shape);
  std::uniform_real_distribution<float> u(-scale, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = u(rng());
  return t;
}

struct RefAct {
  std::string name;
  double alpha, beta;
  double operator()(double x) const {
    if (name == "Relu") return std::max(0.0, x);
    if (name == "Tanh") return std::tanh(x);
    if (name == "Sigmoid") return 1.0 / (1.0 + std::exp(-x));
    if (name == "Affine") return alpha * x + beta;
    if (name == "LeakyRelu") return x >= 0 ? x : alpha * x;
    if (name == "ThresholdedRelu") return x > alpha ? x : 0.0;
    if (name == "ScaledTanh") return alpha * std::tanh(beta * x);
    if (name == "HardSigmoid") return std::min(1.0, std::max(0.0, alpha * x + beta));
    if (name == "Elu") return x >= 0 ? x : alpha * (std::exp(x) - 1);
    if (name == "Softsign") return x / (1 + std::fabs(x));
    if (name == "Softplus") return std::log(1 + std::exp(x));
    ADD_FAILURE() << "unknown activation " << name;
    return 0;
  }
};

struct Case {
  std::string op;  // RNN, GRU, LSTM
  int64_t T = 4, B = 3, I = 5, H = 4;
  int64_t direction = 0;
  std::vector<RefAct> acts;  // per direction, concatenated
  double clip = 0;
  int64_t linear_before_reset = 0, input_forget = 0;
  bool bias = true, lens = false, init = false, peep = false;
};

int64_t gates(const std::string& op) { return op == "LSTM" ? 4 : op == "GRU" ? 3 : 1; }

struct Inputs {
  HostTensor x, w, r, b, lens, h0, c0, p;
};

double clipv(double v, double c) { return c > 0 ? std::min(c, std::max(-c, v)) : v; }

// Y [T, D, B, H], Y_h [D, B, H], Y_c [D, B, H].
std::vector<std::vector<double>> reference(const Case& c, const Inputs& in) {
  const int64_t D = c.direction == 2 ? 2 : 1, G = gates(c.op), H = c.H, B = c.B, T = c.T, I = c.I;
  std::vector<double> y(T * D * B * H, 0.0), yh(D * B * H, 0.0), yc(D * B * H, 0.0);
  const float* x = in.x.data<float>();
  const size_t per_dir = c.acts.size() / D;
  for (int64_t d = 0; d < D; ++d) {
    const bool reverse = c.direction == 1 || d == 1;
    const float* w = in.w.data<float>() + d * G * H * I;
    const float* r = in.r.data<float>() + d * G * H * H;
    const float* bb = c.bias ? in.b.data<float>() + d * 2 * G * H : nullptr;
    const float* pp = c.peep ? in.p.data<float>() + d * 3 * H : nullptr;
    const RefAct* f = c.acts.data() + d * per_dir;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = c.lens ? in.lens.data<int32_t>()[b] : T;
      std::vector<double> h(H, 0.0), cell(H, 0.0);
      if (c.init)
        for (int64_t j = 0; j < H; ++j) {
          h[j] = in.h0.data<float>()[(d * B + b) * H + j];
          if (c.op == "LSTM") cell[j] = in.c0.data<float>()[(d * B + b) * H + j];
        }
      for (int64_t s = 0; s < len; ++s) {
        const int64_t t = reverse ? len - 1 - s : s;
        const float* xt = x + (t * B + b) * I;
        // xw[g*H+j] = Xt . W[g*H+j] + Wb;  hr[g*H+j] = H . R[g*H+j] + Rb
        auto xw = [&](int64_t row) {
          double a = bb ? bb[row] : 0.0;
          for (int64_t k = 0; k < I; ++k) a += double(xt[k]) * w[row * I + k];
          return a;
        };
        auto hr = [&](int64_t row, const std::vector<double>& hv) {
          double a = bb ? bb[G * H + row] : 0.0;
          for (int64_t k = 0; k < H; ++k) a += hv[k] * r[row * H + k];
          return a;
        };
        std::vector<double> hn(H);
        if (c.op == "RNN") {
          for (int64_t j = 0; j < H; ++j) hn[j] = f[0](clipv(xw(j) + hr(j, h), c.clip));
        } else if (c.op == "GRU") {
          std::vector<double> z(H), rr(H), rh(H);
          for (int64_t j = 0; j < H; ++j) {
            z[j] = f[0](clipv(xw(j) + hr(j, h), c.clip));
            rr[j] = f[0](clipv(xw(H + j) + hr(H + j, h), c.clip));
            rh[j] = rr[j] * h[j];
          }
          for (int64_t j = 0; j < H; ++j) {
            double cand = c.linear_before_reset ? f[1](clipv(xw(2 * H + j) + rr[j] * hr(2 * H + j, h), c.clip))
                                                : f[1](clipv(xw(2 * H + j) + hr(2 * H + j, rh), c.clip));
            hn[j] = (1 - z[j]) * cand + z[j] * h[j];
          }
        } else {
          std::vector<double> cn(H);
          for (int64_t j = 0; j < H; ++j) {
            const double pi = pp ? pp[j] : 0, po = pp ? pp[H + j] : 0, pf = pp ? pp[2 * H + j] : 0;
            const double ig = f[0](clipv(xw(j) + hr(j, h) + pi * cell[j], c.clip));
            const double fg = c.input_forget ? 1 - ig : f[0](clipv(xw(2 * H + j) + hr(2 * H + j, h) + pf * cell[j], c.clip));
            const double cg = f[1](clipv(xw(3 * H + j) + hr(3 * H + j, h), c.clip));
            cn[j] = fg * cell[j] + ig * cg;
            const double og = f[0](clipv(xw(H + j) + hr(H + j, h) + po * cn[j], c.clip));
            hn[j] = og * f[2](cn[j]);
          }
          cell = cn;
        }
        h = hn;
        for (int64_t j = 0; j < H; ++j) y[((t * D + d) * B + b) * H + j] = h[j];
      }
      for (int64_t j = 0; j < H; ++j) {
        yh[(d * B + b) * H + j] = h[j];
        yc[(d * B + b) * H + j] = cell[j];
      }
    }
  }
  return {y, yh, yc};
}

void run_case(const Case& c) {
  const int64_t D = c.direction == 2 ? 2 : 1, G = gates(c.op);
  Inputs in;
  in.x = random_f32({c.T, c.B, c.I}, 1.0f);
  in.w = random_f32({D, G * c.H, c.I});
  in.r = random_f32({D, G * c.H, c.H});
  if (c.bias) in.b = random_f32({D, 2 * G * c.H});
  if (c.lens) {
    in.lens = HostTensor(DataType::kINT32, {c.B});
    for (int64_t b = 0; b < c.B; ++b)
      in.lens.mutable_data<int32_t>()[b] = static_cast<int32_t>(b == 0 ? c.T : std::uniform_int_distribution<int64_t>(0, c.T)(rng()));
  }
  if (c.init) {
    in.h0 = random_f32({D, c.B, c.H});
    in.c0 = random_f32({D, c.B, c.H});
  }
  if (c.peep) in.p = random_f32({D, 3 * c.H});

  ir::Graph g;
  std::vector<const HostTensor*> vals = {&in.x, &in.w, &in.r, c.bias ? &in.b : nullptr, c.lens ? &in.lens : nullptr,
                                         c.init ? &in.h0 : nullptr};
  if (c.op == "LSTM") {
    vals.push_back(c.init ? &in.c0 : nullptr);
    vals.push_back(c.peep ? &in.p : nullptr);
  }
  while (!vals.empty() && !vals.back()) vals.pop_back();
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < vals.size(); ++i)
    ins.push_back(vals[i] ? g.add_input("in" + std::to_string(i), vals[i]->dtype(), vals[i]->shape()) : nullptr);
  ir::Node* n = g.add_node(c.op, "rec", ins, c.op == "LSTM" ? 3 : 2);
  std::string names;
  std::vector<double> alpha, beta;
  for (const RefAct& a : c.acts) {
    names += (names.empty() ? "" : ",") + a.name;
    alpha.push_back(a.alpha);
    beta.push_back(a.beta);
  }
  n->attrs.set("hidden_size", c.H);
  n->attrs.set("direction", c.direction);
  n->attrs.set("activations", names);
  n->attrs.set("activation_alpha", alpha);
  n->attrs.set("activation_beta", beta);
  if (c.clip > 0) n->attrs.set("clip", c.clip);
  if (c.op == "GRU") n->attrs.set("linear_before_reset", c.linear_before_reset);
  if (c.op == "LSTM") n->attrs.set("input_forget", c.input_forget);

  std::vector<HostTensor> got = cpu::eval_node(*n, vals);
  std::vector<std::vector<double>> want = reference(c, in);
  const std::string what = c.op + " dir " + std::to_string(c.direction) + " acts " + names +
                           (c.lens ? " lens" : "") + (c.init ? " init" : "") + (c.peep ? " peep" : "") +
                           (c.clip > 0 ? " clip" : "") + (c.linear_before_reset ? " lbr" : "") +
                           (c.input_forget ? " input_forget" : "");
  ASSERT_EQ(got.size(), c.op == "LSTM" ? 3u : 2u) << what;
  for (size_t o = 0; o < got.size(); ++o) {
    ASSERT_EQ(got[o].numel(), static_cast<int64_t>(want[o].size())) << what << " output " << o;
    for (int64_t i = 0; i < got[o].numel(); ++i) {
      const double g = got[o].data<float>()[i], e = want[o][i];
      ASSERT_FALSE(std::isnan(g)) << what << " output " << o << " element " << i;
      ASSERT_NEAR(g, e, 1e-5 + 1e-4 * std::fabs(e)) << what << " output " << o << " element " << i;
    }
  }
}

std::vector<RefAct> defaults(const std::string& op, int64_t dirs) {
  std::vector<RefAct> one;
  if (op == "LSTM") one = {{"Sigmoid", 0, 0}, {"Tanh", 0, 0}, {"Tanh", 0, 0}};
  else if (op == "GRU") one = {{"Sigmoid", 0, 0}, {"Tanh", 0, 0}};
  else one = {{"Tanh", 0, 0}};
  std::vector<RefAct> all = one;
  if (dirs == 2) all.insert(all.end(), one.begin(), one.end());
  return all;
}

TEST(RecurrentKernel, AllCellsDirectionsAndOptionalInputs) {
  for (const char* op : {"RNN", "GRU", "LSTM"})
    for (int64_t dir = 0; dir < 3; ++dir)
      for (int variant = 0; variant < 4; ++variant) {
        Case c;
        c.op = op;
        c.direction = dir;
        c.acts = defaults(op, dir == 2 ? 2 : 1);
        c.bias = variant != 1;
        c.lens = variant >= 2;
        c.init = variant == 1 || variant == 3;
        c.peep = c.op == "LSTM" && variant == 3;
        run_case(c);
      }
}

TEST(RecurrentKernel, GruLinearBeforeReset) {
  for (int64_t dir = 0; dir < 3; ++dir) {
    Case c;
    c.op = "GRU";
    c.direction = dir;
    c.acts = defaults("GRU", dir == 2 ? 2 : 1);
    c.linear_before_reset = 1;
    c.lens = dir == 2;
    c.init = true;
    run_case(c);
  }
}

TEST(RecurrentKernel, LstmInputForgetAndClip) {
  Case c;
  c.op = "LSTM";
  c.direction = 2;
  c.acts = defaults("LSTM", 2);
  c.input_forget = 1;
  c.clip = 0.3;
  c.peep = true;
  c.init = true;
  run_case(c);
}

TEST(RecurrentKernel, OtherActivationsWithAlphaBeta) {
  Case r;
  r.op = "RNN";
  r.direction = 2;
  r.acts = {{"LeakyRelu", 0.1, 0}, {"ScaledTanh", 0.8, 1.3}};
  run_case(r);
  Case g;
  g.op = "GRU";
  g.acts = {{"HardSigmoid", 0.3, 0.4}, {"Softsign", 0, 0}};
  g.clip = 0.7;
  run_case(g);
  Case l;
  l.op = "LSTM";
  l.acts = {{"Sigmoid", 0, 0}, {"Elu", 0.9, 0}, {"Affine", 0.5, 0.1}};
  run_case(l);
  Case m;
  m.op = "RNN";
  m.acts = {{"Relu", 0, 0}};
  m.T = 1;
  run_case(m);
  Case s;
  s.op = "RNN";
  s.acts = {{"Softplus", 0, 0}};
  run_case(s);
  Case th;
  th.op = "RNN";
  th.acts = {{"ThresholdedRelu", 0.1, 0}};
  run_case(th);
}

// Larger sizes go through the blocked GEMM paths (several panels, the thread pool).
TEST(RecurrentKernel, LargerShapes) {
  Case c;
  c.op = "LSTM";
  c.T = 7;
  c.B = 9;
  c.I = 37;
  c.H = 29;
  c.direction = 2;
  c.acts = defaults("LSTM", 2);
  c.lens = true;
  c.init = true;
  run_case(c);
  c.op = "GRU";
  c.acts = defaults("GRU", 2);
  run_case(c);
}

TEST(RecurrentKernel, InferenceRejectsMismatchedWeights) {
  ir::Graph g;
  HostTensor x = random_f32({2, 1, 3}), w = random_f32({1, 8, 3}), r = random_f32({1, 4, 4});
  std::vector<ir::Value*> ins = {g.add_input("x", DataType::kFLOAT, x.shape()), g.add_input("w", DataType::kFLOAT, w.shape()),
                                 g.add_input("r", DataType::kFLOAT, r.shape())};
  ir::Node* n = g.add_node("GRU", "gru", ins, 2);
  n->attrs.set("hidden_size", int64_t{4});
  n->attrs.set("activations", std::string("Sigmoid,Tanh"));
  n->attrs.set("activation_alpha", std::vector<double>{0, 0});
  n->attrs.set("activation_beta", std::vector<double>{0, 0});
  try {
    cpu::eval_node(*n, {&x, &w, &r});
    FAIL() << "a GRU with 8 rows of W for hidden size 4 must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("W [1, 8, 3]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln
