// CPU kernels for MaxUnpool and Col2Im: both start from a zero output and put input elements back into
// the image (MaxUnpool: one element per index, later ones overwriting earlier; Col2Im: every block
// element added at its pixel, so overlapping blocks sum).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

// MaxUnpool: y.flat[indices[i]] = x[i]; the indices are flat over the whole output [N, C, spatial...],
// as MaxPool's second output gives them.
void k_max_unpool(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& idx = ctx.input(1);
  const TensorRef& y = ctx.out[0];
  if (idx.numel() != x.numel()) ctx.fail("the indices " + dims_str(idx.shape) + " must have the input's shape " + dims_str(x.shape));
  const size_t es = dtype_size(x.dtype);
  std::memset(y.data, 0, y.nbytes());
  const int64_t n = y.numel();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t k = idx.get_i64(i);
    if (k < 0 || k >= n)
      ctx.fail("index " + std::to_string(k) + " (element " + std::to_string(i) + ") is outside the output " + dims_str(y.shape));
    std::memcpy(static_cast<char*>(y.data) + k * es, static_cast<const char*>(x.data) + i * es, es);
  }
}

template <class T>
void col2im(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.out[0];
  const std::vector<int64_t> image = ctx.input(1).to_i64(), block = ctx.input(2).to_i64();
  const int64_t r = static_cast<int64_t>(image.size());
  if (static_cast<int64_t>(block.size()) != r) ctx.fail("image_shape and block_shape differ in length");
  std::vector<int64_t> dil = ctx.attrs().ints("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> stride = ctx.attrs().ints("strides", std::vector<int64_t>(r, 1));
  std::vector<int64_t> pads = ctx.attrs().ints("pads", std::vector<int64_t>(2 * r, 0));
  int64_t bvol = 1, ivol = 1, cols = 1;
  std::vector<int64_t> npos(static_cast<size_t>(r));  // sliding positions per dim
  for (int64_t d = 0; d < r; ++d) {
    if (y.shape[d + 2] != image[d]) ctx.fail("image_shape " + dims_str(image) + " does not match the output " + dims_str(y.shape));
    bvol *= block[d];
    ivol *= image[d];
    npos[d] = (image[d] + pads[d] + pads[d + r] - dil[d] * (block[d] - 1) - 1) / stride[d] + 1;
    if (npos[d] <= 0) ctx.fail("block_shape " + dims_str(block) + " does not fit image_shape " + dims_str(image));
    cols *= npos[d];
  }
  const int64_t batch = x.shape[0], channels = y.shape[1];
  if (x.shape[1] != channels * bvol || x.shape[2] != cols)
    ctx.fail("the input " + dims_str(x.shape) + " must be [N, C*" + std::to_string(bvol) + ", " + std::to_string(cols) +
             "] for image_shape " + dims_str(image) + " and block_shape " + dims_str(block));
  const T* xs = x.as<T>();
  T* ys = y.as<T>();
  std::fill(ys, ys + y.numel(), T(0));
  std::vector<int64_t> kb(static_cast<size_t>(r)), pos(static_cast<size_t>(r));
  for (int64_t nc = 0; nc < batch * channels; ++nc) {
    T* img = ys + nc * ivol;
    for (int64_t b = 0; b < bvol; ++b) {
      for (int64_t d = r, rem = b; d-- > 0;) kb[d] = rem % block[d], rem /= block[d];
      const T* src = xs + (nc * bvol + b) * cols;
      for (int64_t l = 0; l < cols; ++l) {
        for (int64_t d = r, rem = l; d-- > 0;) pos[d] = rem % npos[d], rem /= npos[d];
        int64_t off = 0;
        bool inside = true;
        for (int64_t d = 0; d < r && inside; ++d) {
          const int64_t p = pos[d] * stride[d] - pads[d] + kb[d] * dil[d];
          inside = p >= 0 && p < image[d];
          off = off * image[d] + p;
        }
        if (inside) img[off] += src[l];
      }
    }
  }
}

void k_col2im(KernelContext& ctx) {
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return col2im<float>(ctx);
    case DataType::kDOUBLE: return col2im<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("MaxUnpool", &k_max_unpool);
KILN_REGISTER_CPU_KERNEL("Col2Im", &k_col2im);

}  // namespace kiln::cpu
