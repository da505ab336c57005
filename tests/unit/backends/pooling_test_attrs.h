// The Pooling layer's attributes as the pooling tests set them (CPU channels-last and CUDA both layouts):
// one window description per case, the pooling type, exclude_pad and the layout.
#pragma once
#include <cstdint>
#include <vector>

#include "ir/attrs.h"

namespace kiln::pooltest {

struct PoolWindow {
  std::vector<int64_t> window, stride, pre, post, dil;
  int64_t padding_mode = 0;
};

// blend_factor 0.3 (MAX_AVERAGE_BLEND); p is the LP pool's exponent.
inline void set_pooling_attrs(ir::Attrs& a, const PoolWindow& w, int64_t type, int64_t exclude_pad, double p,
                              bool channels_last) {
  a.set("type", type);
  a.set("window", w.window);
  a.set("stride", w.stride);
  a.set("pre_padding", w.pre);
  a.set("post_padding", w.post);
  a.set("dilation", w.dil);
  a.set("padding_mode", w.padding_mode);
  a.set("exclude_pad", exclude_pad);
  a.set("blend_factor", 0.3);
  a.set("p", p);
  if (channels_last) a.set("channels_last", int64_t{1});
}

}  // namespace kiln::pooltest
