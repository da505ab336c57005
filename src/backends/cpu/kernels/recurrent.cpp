// CPU kernels for RNN, GRU and LSTM (ONNX semantics; contract in ir/OPS.md, inference in
// ir/ops/recurrent_ops.cpp).
//
// Per direction, the input projection of every time step is one GEMM, X[T*B, I] x W^T -> [T*B, G*H], with
// the biases folded in; each step then needs only the recurrent GEMM H[B, H] x R^T and the pointwise gate
// math. Batch entries whose sequence has ended (sequence_lens) keep their state and write zeros to Y; the
// reverse direction walks each sequence from its own last valid step back to 0.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel.h"

namespace kiln::cpu {
namespace {

// One activation function of the ONNX recurrent ops, with its alpha/beta already resolved by the importer.
struct Act {
  enum Kind { kRelu, kTanh, kSigmoid, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kHardSigmoid, kElu,
              kSoftsign, kSoftplus };
  Kind kind = kTanh;
  float alpha = 0, beta = 0;

  float operator()(float x) const {
    switch (kind) {
      case kRelu: return x > 0 ? x : 0.0f;
      case kTanh: return std::tanh(x);
      case kSigmoid: return x >= 0 ? 1.0f / (1.0f + std::exp(-x)) : std::exp(x) / (1.0f + std::exp(x));
      case kAffine: return alpha * x + beta;
      case kLeakyRelu: return x >= 0 ? x : alpha * x;
      case kThresholdedRelu: return x > alpha ? x : 0.0f;
      case kScaledTanh: return alpha * std::tanh(beta * x);
      case kHardSigmoid: return std::min(1.0f, std::max(0.0f, alpha * x + beta));
      case kElu: return x >= 0 ? x : alpha * (std::exp(x) - 1.0f);
      case kSoftsign: return x / (1.0f + std::fabs(x));
      case kSoftplus: return x > 20.0f ? x : std::log1p(std::exp(x));
    }
    return x;
  }
};

std::vector<Act> parse_activations(const KernelContext& ctx) {
  static const std::pair<const char*, Act::Kind> kNames[] = {
      {"Relu", Act::kRelu},         {"Tanh", Act::kTanh},   {"Sigmoid", Act::kSigmoid},
      {"Affine", Act::kAffine},     {"LeakyRelu", Act::kLeakyRelu}, {"ThresholdedRelu", Act::kThresholdedRelu},
      {"ScaledTanh", Act::kScaledTanh}, {"HardSigmoid", Act::kHardSigmoid}, {"Elu", Act::kElu},
      {"Softsign", Act::kSoftsign}, {"Softplus", Act::kSoftplus}};
  const std::string list = ctx.attrs().s("activations", "");
  const std::vector<double> alpha = ctx.attrs().floats("activation_alpha");
  const std::vector<double> beta = ctx.attrs().floats("activation_beta");
  std::vector<Act> acts;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string name = list.substr(pos, end - pos);
    Act a;
    bool found = false;
    for (const auto& [n, k] : kNames)
      if (name == n) {
        a.kind = k;
        found = true;
      }
    if (!found) ctx.fail("unknown activation '" + name + "'");
    const size_t i = acts.size();
    a.alpha = i < alpha.size() ? static_cast<float>(alpha[i]) : 0.0f;
    a.beta = i < beta.size() ? static_cast<float>(beta[i]) : 0.0f;
    acts.push_back(a);
    pos = end + 1;
  }
  return acts;
}

enum class Cell { kRNN, kGRU, kLSTM };

// Everything one direction needs: shapes, the direction's weights and the output slots.
struct Problem {
  Cell cell;
  int64_t T, B, I, H, G, D;
  float clip;  // <= 0: none
  bool linear_before_reset, input_forget;
  const float* x;
  std::vector<int64_t> lens;  // per batch entry
};

float clipped(float v, float c) { return c > 0 ? std::min(c, std::max(-c, v)) : v; }

// Runs direction `d` (reverse when `reverse`): writes Y[:, d] (rows of ended sequences stay zero), and the
// final states into h/c (which hold the initial states on entry).
void run_direction(const Problem& p, int64_t d, bool reverse, const Act* acts, const float* w, const float* r,
                   const float* bias, const float* peep, float* y, float* h, float* c, ThreadPool* pool) {
  const int64_t H = p.H, B = p.B, GH = p.G * p.H;
  const bool gru = p.cell == Cell::kGRU, lstm = p.cell == Cell::kLSTM;
  // XW = X W^T + Wb + Rb for all steps at once. GRU with linear_before_reset keeps Rb of the h gate apart,
  // since it is added before the reset gate multiplies.
  std::vector<float> xw(static_cast<size_t>(p.T * B * GH));
  if (p.T * B > 0) sgemm(false, true, p.T * B, GH, p.I, 1.0f, p.x, p.I, w, p.I, 0.0f, xw.data(), GH, pool);
  std::vector<float> rb_h(static_cast<size_t>(H), 0.0f);
  if (bias) {
    std::vector<float> add(static_cast<size_t>(GH));
    for (int64_t j = 0; j < GH; ++j) add[j] = bias[j] + bias[GH + j];
    if (gru && p.linear_before_reset)
      for (int64_t j = 0; j < H; ++j) {
        add[2 * H + j] = bias[2 * H + j];
        rb_h[j] = bias[GH + 2 * H + j];
      }
    for (int64_t row = 0; row < p.T * B; ++row)
      for (int64_t j = 0; j < GH; ++j) xw[row * GH + j] += add[j];
  }

  std::vector<float> hr(static_cast<size_t>(B * GH)), rh(static_cast<size_t>(B * H)), hn(static_cast<size_t>(B * H));
  int64_t steps = 0;
  for (int64_t b = 0; b < B; ++b) steps = std::max(steps, p.lens[b]);
  for (int64_t s = 0; s < steps; ++s) {
    // GRU without linear_before_reset multiplies the reset gate in before the h-gate GEMM: z and r first.
    const int64_t first_cols = gru && !p.linear_before_reset ? 2 * H : GH;
    sgemm(false, true, B, first_cols, H, 1.0f, h, H, r, H, 0.0f, hr.data(), GH, pool);
    if (gru && !p.linear_before_reset) {
      for (int64_t b = 0; b < B; ++b) {
        if (s >= p.lens[b]) continue;
        const int64_t t = reverse ? p.lens[b] - 1 - s : s;
        const float* g = xw.data() + (t * B + b) * GH;
        for (int64_t j = 0; j < H; ++j)
          rh[b * H + j] = acts[0](clipped(g[H + j] + hr[b * GH + H + j], p.clip)) * h[b * H + j];
      }
      sgemm(false, true, B, H, H, 1.0f, rh.data(), H, r + 2 * H * H, H, 0.0f, hr.data() + 2 * H, GH, pool);
    }
    for (int64_t b = 0; b < B; ++b) {
      if (s >= p.lens[b]) continue;
      const int64_t t = reverse ? p.lens[b] - 1 - s : s;
      const float* g = xw.data() + (t * B + b) * GH;
      const float* q = hr.data() + b * GH;
      float* hb = h + b * H;
      float* out = y + ((t * p.D + d) * B + b) * H;
      if (p.cell == Cell::kRNN) {
        for (int64_t j = 0; j < H; ++j) hb[j] = acts[0](clipped(g[j] + q[j], p.clip));
      } else if (gru) {
        for (int64_t j = 0; j < H; ++j) {
          const float z = acts[0](clipped(g[j] + q[j], p.clip));
          float cand;
          if (p.linear_before_reset) {
            const float rr = acts[0](clipped(g[H + j] + q[H + j], p.clip));
            cand = acts[1](clipped(g[2 * H + j] + rr * (q[2 * H + j] + rb_h[j]), p.clip));
          } else {
            cand = acts[1](clipped(g[2 * H + j] + q[2 * H + j], p.clip));
          }
          hn[b * H + j] = (1.0f - z) * cand + z * hb[j];
        }
        std::memcpy(hb, hn.data() + b * H, static_cast<size_t>(H) * sizeof(float));
      } else if (lstm) {
        float* cb = c + b * H;
        for (int64_t j = 0; j < H; ++j) {  // gate order i, o, f, c; peepholes i, o, f
          const float pi = peep ? peep[j] : 0.0f, po = peep ? peep[H + j] : 0.0f, pf = peep ? peep[2 * H + j] : 0.0f;
          const float ig = acts[0](clipped(g[j] + q[j] + pi * cb[j], p.clip));
          const float fg = p.input_forget ? 1.0f - ig : acts[0](clipped(g[2 * H + j] + q[2 * H + j] + pf * cb[j], p.clip));
          const float cg = acts[1](clipped(g[3 * H + j] + q[3 * H + j], p.clip));
          const float cn = fg * cb[j] + ig * cg;
          const float og = acts[0](clipped(g[H + j] + q[H + j] + po * cn, p.clip));
          cb[j] = cn;
          hb[j] = og * acts[2](cn);
        }
      }
      std::memcpy(out, hb, static_cast<size_t>(H) * sizeof(float));
    }
  }
}

void k_recurrent(KernelContext& ctx) {
  const std::string& op = ctx.node.op;
  const TensorRef& x = ctx.input(0);
  const TensorRef& w = ctx.input(1);
  const TensorRef& r = ctx.input(2);
  Problem p;
  p.cell = op == "LSTM" ? Cell::kLSTM : op == "GRU" ? Cell::kGRU : Cell::kRNN;
  p.G = p.cell == Cell::kLSTM ? 4 : p.cell == Cell::kGRU ? 3 : 1;
  p.T = x.shape[0];
  p.B = x.shape[1];
  p.I = x.shape[2];
  p.H = ctx.attrs().i("hidden_size", 0);
  const int64_t direction = ctx.attrs().i("direction", 0);
  p.D = direction == 2 ? 2 : 1;
  p.clip = static_cast<float>(ctx.attrs().f("clip", 0.0));
  p.linear_before_reset = ctx.attrs().i("linear_before_reset", 0) != 0;
  p.input_forget = ctx.attrs().i("input_forget", 0) != 0;
  p.x = x.as<float>();
  if (w.shape != Dims{p.D, p.G * p.H, p.I} || r.shape != Dims{p.D, p.G * p.H, p.H})
    ctx.fail("W " + dims_str(w.shape) + " or R " + dims_str(r.shape) + " do not match X " + dims_str(x.shape));
  p.lens.assign(static_cast<size_t>(p.B), p.T);
  if (ctx.has_input(4)) {
    const TensorRef& lens = ctx.input(4);
    if (lens.numel() != p.B) ctx.fail("sequence_lens has " + std::to_string(lens.numel()) + " entries, batch is " + std::to_string(p.B));
    for (int64_t b = 0; b < p.B; ++b) {
      const int64_t l = lens.get_i64(b);
      if (l < 0 || l > p.T)
        ctx.fail("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(l) + " is outside [0, " +
                 std::to_string(p.T) + "]");
      p.lens[b] = l;
    }
  }
  const std::vector<Act> acts = parse_activations(ctx);
  const size_t per_dir = acts.size() / static_cast<size_t>(p.D);

  TensorRef& y = ctx.out[0];
  std::memset(y.data, 0, y.nbytes());
  const int64_t state = p.B * p.H;
  std::vector<float> h(static_cast<size_t>(p.D * state), 0.0f), c(static_cast<size_t>(p.D * state), 0.0f);
  if (ctx.has_input(5)) std::memcpy(h.data(), ctx.input(5).data, h.size() * sizeof(float));
  const bool lstm = p.cell == Cell::kLSTM;
  if (lstm && ctx.has_input(6)) std::memcpy(c.data(), ctx.input(6).data, c.size() * sizeof(float));
  const float* bias = ctx.has_input(3) ? ctx.input(3).as<float>() : nullptr;
  const float* peep = lstm && ctx.has_input(7) ? ctx.input(7).as<float>() : nullptr;
  const int64_t gh = p.G * p.H;
  for (int64_t d = 0; d < p.D; ++d) {
    const bool reverse = direction == 1 || d == 1;
    run_direction(p, d, reverse, acts.data() + d * per_dir, w.as<float>() + d * gh * p.I, r.as<float>() + d * gh * p.H,
                  bias ? bias + d * 2 * gh : nullptr, peep ? peep + d * 3 * p.H : nullptr, y.as<float>(),
                  h.data() + d * state, c.data() + d * state, ctx.pool);
  }
  std::memcpy(ctx.out[1].data, h.data(), h.size() * sizeof(float));
  if (lstm && ctx.out.size() > 2) std::memcpy(ctx.out[2].data, c.data(), c.size() * sizeof(float));
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("RNN", &k_recurrent);
KILN_REGISTER_CPU_KERNEL("GRU", &k_recurrent);
KILN_REGISTER_CPU_KERNEL("LSTM", &k_recurrent);

}  // namespace kiln::cpu
