#include "layer_profile.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

namespace kiln::cli {

std::vector<LayerTiming> median_profile(const std::vector<std::vector<LayerTiming>>& runs) {
  if (runs.empty()) return {};
  std::vector<LayerTiming> out = runs.front();
  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<double> ms;
    for (const auto& r : runs)
      if (i < r.size()) ms.push_back(r[i].ms);
    std::sort(ms.begin(), ms.end());
    size_t m = ms.size();
    out[i].ms = m % 2 ? ms[m / 2] : 0.5 * (ms[m / 2 - 1] + ms[m / 2]);
  }
  return out;
}

namespace {

std::string clip(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(0, n - 3) + "..."; }

}  // namespace

void print_layer_profile(const std::vector<LayerTiming>& layers, int top) {
  double total = 0;
  for (const auto& l : layers) total += l.ms;
  std::vector<size_t> order(layers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return layers[a].ms > layers[b].ms; });
  size_t shown = top > 0 ? std::min<size_t>(static_cast<size_t>(top), order.size()) : order.size();
  std::printf("\nper-layer profile (median of the profiled runs; layers run eagerly, one event pair each): "
              "%zu layers, %.3f ms in all\n", layers.size(), total);
  std::printf("%4s  %-48s %-16s %9s %6s %9s %9s\n", "#", "layer", "op", "ms", "%", "TFLOP/s", "GB/s");
  for (size_t k = 0; k < shown; ++k) {
    const LayerTiming& l = layers[order[k]];
    double s = l.ms * 1e-3;
    std::printf("%4zu  %-48s %-16s %9.4f %5.1f%% %9.2f %9.1f%s\n", order[k], clip(l.name, 48).c_str(),
                clip(l.op, 16).c_str(), l.ms, total > 0 ? 100.0 * l.ms / total : 0.0,
                s > 0 ? l.flops / s / 1e12 : 0.0, s > 0 ? l.bytes / s / 1e9 : 0.0, l.on_host ? "  (CPU fallback)" : "");
  }
  struct OpTotal {
    double ms = 0, flops = 0, bytes = 0;
    int count = 0;
  };
  std::map<std::string, OpTotal> by_op;
  for (const auto& l : layers) {
    auto& t = by_op[l.op];
    t.ms += l.ms;
    t.flops += l.flops;
    t.bytes += l.bytes;
    ++t.count;
  }
  std::vector<std::pair<std::string, OpTotal>> ops(by_op.begin(), by_op.end());
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  std::printf("\nby op:\n%-20s %6s %9s %6s %9s %9s\n", "op", "layers", "ms", "%", "TFLOP/s", "GB/s");
  for (const auto& [op, t] : ops) {
    double s = t.ms * 1e-3;
    std::printf("%-20s %6d %9.4f %5.1f%% %9.2f %9.1f\n", clip(op, 20).c_str(), t.count, t.ms,
                total > 0 ? 100.0 * t.ms / total : 0.0, s > 0 ? t.flops / s / 1e12 : 0.0, s > 0 ? t.bytes / s / 1e9 : 0.0);
  }
}

}  // namespace kiln::cli
