// `kiln bench --profile`: the per-layer table. Several profiled runs are combined per layer by their median
// (one slow run does not skew a layer), then printed by time with each layer's achieved TFLOP/s and GB/s,
// followed by the time per op type.
#pragma once
#include <vector>

#include "kiln/runtime.h"

namespace kiln::cli {

// runs: one profile per execution, all of the same layers in the same order.
std::vector<LayerTiming> median_profile(const std::vector<std::vector<LayerTiming>>& runs);
// Prints the `top` slowest layers (all when top <= 0) and the per-op totals.
void print_layer_profile(const std::vector<LayerTiming>& layers, int top);

}  // namespace kiln::cli
