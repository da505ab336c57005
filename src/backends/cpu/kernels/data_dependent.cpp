// CPU kernels for the ops whose output sizes depend on input values: NonZero, Compress, Unique,
// NonMaxSuppression. Each computes what it keeps first, then sizes its outputs with set_output_shape and
// writes them. Single-threaded: these ops sit on small tensors (indices, detections), not in hot loops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

// Whether element i of t is nonzero (any dtype; float16/bf16 -0.0 counts as zero).
bool nonzero_at(const TensorRef& t, int64_t i) {
  switch (t.dtype) {
    case DataType::kFLOAT: return t.as<float>()[i] != 0.0f;
    case DataType::kDOUBLE: return t.as<double>()[i] != 0.0;
    case DataType::kHALF:
    case DataType::kBF16: return (t.as<uint16_t>()[i] & 0x7fff) != 0;
    default: return t.get_i64(i) != 0;
  }
}

// ================================================ NonZero =================================================
void k_nonzero(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t n = x.numel(), r = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> hits;
  for (int64_t i = 0; i < n; ++i)
    if (nonzero_at(x, i)) hits.push_back(i);
  const int64_t count = static_cast<int64_t>(hits.size());
  ctx.set_output_shape(0, {std::max<int64_t>(r, 1), count});
  int64_t* y = ctx.out[0].as<int64_t>();
  if (r == 0) {  // a scalar: its one element has coordinate 0
    std::fill(y, y + count, 0);
    return;
  }
  // Row d holds the d-th coordinate of every hit, in row-major order of the hits.
  for (int64_t k = 0; k < count; ++k) {
    int64_t rem = hits[k];
    for (int64_t d = r - 1; d >= 0; --d) {
      y[d * count + k] = rem % x.shape[d];
      rem /= x.shape[d];
    }
  }
}

// ================================================ Compress ================================================
void k_compress(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& cond = ctx.input(1);
  const bool has_axis = ctx.attrs().i("has_axis", 0) != 0;
  const int64_t r = static_cast<int64_t>(x.shape.size());
  int64_t axis = has_axis ? ctx.attrs().i("axis", 0) : 0;
  if (axis < 0) axis += r;
  // Viewed as [outer, len, inner] with len the compressed axis (the whole flattened tensor without an axis).
  const int64_t len = has_axis ? x.shape[axis] : x.numel();
  int64_t outer = 1, inner = 1;
  if (has_axis) {
    for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
    for (int64_t d = axis + 1; d < r; ++d) inner *= x.shape[d];
  }
  if (cond.numel() > len)
    ctx.fail("the condition has " + std::to_string(cond.numel()) + " entries, more than the " + std::to_string(len) +
             " it selects from");
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < cond.numel(); ++i)
    if (cond.as<uint8_t>()[i]) keep.push_back(i);
  const int64_t k = static_cast<int64_t>(keep.size());
  Dims out = has_axis ? x.shape : Dims{k};
  if (has_axis) out[axis] = k;
  ctx.set_output_shape(0, out);
  const size_t es = dtype_size(x.dtype), row = static_cast<size_t>(inner) * es;
  const auto* src = static_cast<const uint8_t*>(x.data);
  auto* dst = static_cast<uint8_t*>(ctx.out[0].data);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < k; ++j) std::memcpy(dst + (o * k + j) * row, src + (o * len + keep[j]) * row, row);
}

// ================================================= Unique =================================================
// Elements compare by value in their own type (float16/bf16 through float), NaNs after everything and equal
// to each other, so sorting and grouping are well defined.
double key_at(const TensorRef& t, int64_t i) {
  switch (t.dtype) {
    case DataType::kHALF: return half_to_float(t.as<uint16_t>()[i]);
    case DataType::kBF16: return bf16_to_float(t.as<uint16_t>()[i]);
    default: return t.get_f64(i);
  }
}

template <class T>
int compare_values(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    bool an = std::isnan(a), bn = std::isnan(b);
    if (an || bn) return an == bn ? 0 : (an ? 1 : -1);
  }
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Slices of x along the axis as [outer, len, inner]: slice s is x[:, s, :]. Without an axis every element
// is a slice (outer = inner = 1).
template <class T, class Get>
void unique_typed(KernelContext& ctx, Get get, int64_t outer, int64_t len, int64_t inner, int64_t axis) {
  const TensorRef& x = ctx.input(0);
  auto cmp = [&](int64_t a, int64_t b) {
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        int c = compare_values<T>(get((o * len + a) * inner + i), get((o * len + b) * inner + i));
        if (c) return c;
      }
    return 0;
  };
  std::vector<int64_t> order(static_cast<size_t>(len));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
  // Groups of equal slices in sorted order; the stable sort puts each group's first occurrence first.
  std::vector<int64_t> first, count, group_of(static_cast<size_t>(len));
  for (size_t k = 0; k < order.size(); ++k) {
    if (k == 0 || cmp(order[k - 1], order[k]) != 0) {
      first.push_back(order[k]);
      count.push_back(0);
    }
    group_of[order[k]] = static_cast<int64_t>(first.size()) - 1;
    ++count.back();
  }
  const int64_t u = static_cast<int64_t>(first.size());
  // Output order: sorted groups, or groups by first occurrence when sorted = 0.
  std::vector<int64_t> rank(static_cast<size_t>(u));
  std::iota(rank.begin(), rank.end(), 0);
  if (ctx.attrs().i("sorted", 1) == 0)
    std::sort(rank.begin(), rank.end(), [&](int64_t a, int64_t b) { return first[a] < first[b]; });
  std::vector<int64_t> pos(static_cast<size_t>(u));
  for (int64_t p = 0; p < u; ++p) pos[rank[p]] = p;

  Dims yshape = axis >= 0 ? x.shape : Dims{u};
  if (axis >= 0) yshape[axis] = u;
  ctx.set_output_shape(0, yshape);
  const size_t es = dtype_size(x.dtype), row = static_cast<size_t>(inner) * es;
  const auto* src = static_cast<const uint8_t*>(x.data);
  auto* dst = static_cast<uint8_t*>(ctx.out[0].data);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t p = 0; p < u; ++p) std::memcpy(dst + (o * u + p) * row, src + (o * len + first[rank[p]]) * row, row);
  if (ctx.out.size() > 1) {
    ctx.set_output_shape(1, {u});
    for (int64_t p = 0; p < u; ++p) ctx.out[1].as<int64_t>()[p] = first[rank[p]];
  }
  if (ctx.out.size() > 2) {
    ctx.set_output_shape(2, {len});
    for (int64_t s = 0; s < len; ++s) ctx.out[2].as<int64_t>()[s] = pos[group_of[s]];
  }
  if (ctx.out.size() > 3) {
    ctx.set_output_shape(3, {u});
    for (int64_t p = 0; p < u; ++p) ctx.out[3].as<int64_t>()[p] = count[rank[p]];
  }
}

void k_unique(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  int64_t axis = -1, outer = 1, inner = 1, len = x.numel();
  if (ctx.attrs().i("has_axis", 0) != 0) {
    axis = ctx.attrs().i("axis", 0);
    if (axis < 0) axis += r;
    len = x.shape[axis];
    for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
    for (int64_t d = axis + 1; d < r; ++d) inner *= x.shape[d];
  }
  switch (x.dtype) {
    case DataType::kINT64: {
      const int64_t* p = x.as<int64_t>();  // exact beyond 2^53
      return unique_typed<int64_t>(ctx, [p](int64_t i) { return p[i]; }, outer, len, inner, axis);
    }
    case DataType::kFLOAT:
    case DataType::kDOUBLE:
    case DataType::kHALF:
    case DataType::kBF16:
      return unique_typed<double>(ctx, [&x](int64_t i) { return key_at(x, i); }, outer, len, inner, axis);
    default:
      return unique_typed<int64_t>(ctx, [&x](int64_t i) { return x.get_i64(i); }, outer, len, inner, axis);
  }
}

// =========================================== NonMaxSuppression ============================================
struct Box {
  float y1, x1, y2, x2;  // corners, y1 <= y2 and x1 <= x2
};

Box box_at(const float* b, bool center) {
  if (center) {  // [x_center, y_center, width, height]
    float xc = b[0], yc = b[1], w = b[2], h = b[3];
    return {yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2};
  }
  // [y1, x1, y2, x2] with either corner first
  return {std::min(b[0], b[2]), std::min(b[1], b[3]), std::max(b[0], b[2]), std::max(b[1], b[3])};
}

// Intersection over union; boxes of no area overlap nothing.
float iou(const Box& a, const Box& b) {
  float area_a = (a.y2 - a.y1) * (a.x2 - a.x1), area_b = (b.y2 - b.y1) * (b.x2 - b.x1);
  if (area_a <= 0 || area_b <= 0) return 0;
  float ih = std::max(0.0f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  float iw = std::max(0.0f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  float inter = ih * iw;
  return inter / (area_a + area_b - inter);
}

void k_nms(KernelContext& ctx) {
  const TensorRef& boxes = ctx.input(0);
  const TensorRef& scores = ctx.input(1);
  const int64_t B = scores.shape[0], C = scores.shape[1], N = scores.shape[2];
  if (boxes.shape[0] != B || boxes.shape[1] != N || boxes.shape[2] != 4)
    ctx.fail("boxes " + dims_str(boxes.shape) + " do not match scores " + dims_str(scores.shape));
  const int64_t max_out = ctx.has_input(2) && ctx.in[2].numel() ? ctx.in[2].get_i64(0) : 0;
  const float iou_th = ctx.has_input(3) && ctx.in[3].numel() ? static_cast<float>(ctx.in[3].get_f64(0)) : 0.0f;
  const bool has_score_th = ctx.has_input(4) && ctx.in[4].numel();
  const float score_th = has_score_th ? static_cast<float>(ctx.in[4].get_f64(0)) : 0.0f;
  const bool center = ctx.attrs().i("center_point_box", 0) != 0;
  std::vector<int64_t> rows;  // (batch, class, box) triples in selection order
  for (int64_t b = 0; b < B && max_out > 0; ++b) {
    std::vector<Box> bx(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) bx[i] = box_at(boxes.as<float>() + (b * N + i) * 4, center);
    for (int64_t c = 0; c < C; ++c) {
      const float* s = scores.as<float>() + (b * C + c) * N;
      std::vector<int64_t> cand;
      for (int64_t i = 0; i < N; ++i)
        if (!has_score_th || s[i] > score_th) cand.push_back(i);
      // Highest score first; equal scores keep the lower box index first.
      std::stable_sort(cand.begin(), cand.end(), [s](int64_t a, int64_t b2) { return s[a] > s[b2]; });
      std::vector<int64_t> kept;
      for (int64_t i : cand) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool suppressed = false;
        for (int64_t k : kept)
          if (iou(bx[i], bx[k]) > iou_th) {
            suppressed = true;
            break;
          }
        if (suppressed) continue;
        kept.push_back(i);
        rows.insert(rows.end(), {b, c, i});
      }
    }
  }
  const int64_t n = static_cast<int64_t>(rows.size()) / 3;
  ctx.set_output_shape(0, {n, 3});
  std::copy(rows.begin(), rows.end(), ctx.out[0].as<int64_t>());
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("NonZero", &k_nonzero);
KILN_REGISTER_CPU_KERNEL("Compress", &k_compress);
KILN_REGISTER_CPU_KERNEL("Unique", &k_unique);
KILN_REGISTER_CPU_KERNEL("NonMaxSuppression", &k_nms);

}  // namespace kiln::cpu
