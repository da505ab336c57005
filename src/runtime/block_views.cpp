#include "runtime/block_views.h"

#include "ir/slice_range.h"

namespace kiln {

namespace {

using Ints = std::vector<int64_t>;
using ElementOffsets = std::optional<Ints>;  // per output, in elements of the data input

// The contents of an int32/int64 parameter when the host knows them for this plan: a constant, or a value
// computed during shape analysis (shape arithmetic, shape-tensor inputs; a change re-plans).
std::optional<Ints> host_ints(const ir::Value* v, const ShapeAnalysis& shapes) {
  if (!v) return std::nullopt;
  const HostTensor* t = ir::constant_value(v);
  if (!t && !shapes.values[v->id].empty()) t = &shapes.values[v->id];
  if (!t || (t->dtype() != DataType::kINT32 && t->dtype() != DataType::kINT64)) return std::nullopt;
  return t->to_i64();
}

bool has_input(const ir::Node& n, size_t slot) { return slot < n.inputs.size() && n.inputs[slot] != nullptr; }

// Picking [start[d], start[d] + size[d]) on every axis d of a row-major tensor of shape x: the element
// offset of the first picked element when the picked elements are one contiguous run, i.e. the axes after
// the last partially picked axis are whole and the axes before it are picked down to one element.
// nullopt for other picks, for out-of-range ones, and for empty ones (there is nothing to alias).
std::optional<int64_t> contiguous_run_start(const Dims& x, const Ints& start, const Ints& size) {
  const size_t r = x.size();
  if (start.size() != r || size.size() != r) return std::nullopt;
  for (size_t d = 0; d < r; ++d)
    if (start[d] < 0 || size[d] < 1 || start[d] + size[d] > x[d]) return std::nullopt;
  size_t cut = 0;  // the last partially picked axis (0 when every axis is whole: nothing to check before it)
  for (size_t d = r; d-- > 0;)
    if (size[d] != x[d]) {
      cut = d;
      break;
    }
  for (size_t d = 0; d < cut; ++d)
    if (size[d] != 1) return std::nullopt;
  int64_t offset = 0, stride = 1;
  for (size_t d = r; d-- > 0;) {
    offset += start[d] * stride;
    stride *= x[d];
  }
  return offset;
}

std::optional<int64_t> normalized_axis(int64_t axis, size_t rank) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return std::nullopt;
  return axis;
}

// Gather (default mode) of one index: the index's slab on the axis. Negative indices count from the end;
// the output's shape (the index's shape in place of the axis) does not change the bytes. Not with a fused
// addend (input 2): that output is a sum, not the data's bytes.
ElementOffsets gather_runs(const ir::Node& n, const ShapeAnalysis& shapes, const Dims& x) {
  if (n.attrs.i("mode", 0) != 0 || !has_input(n, 1) || has_input(n, 2)) return std::nullopt;
  std::optional<Ints> index = host_ints(n.inputs[1], shapes);
  std::optional<int64_t> axis = normalized_axis(n.attrs.i("axis", 0), x.size());
  if (!index || index->size() != 1 || !axis) return std::nullopt;
  int64_t i = (*index)[0];
  if (i < 0) i += x[*axis];
  Ints start(x.size(), 0), size = x;
  start[*axis] = i;
  size[*axis] = 1;
  std::optional<int64_t> run = contiguous_run_start(x, start, size);
  if (!run) return std::nullopt;
  return Ints{*run};
}

// TensorRT Slice: start and stride from inputs 1 and 3 or the attributes, the size is the output's shape.
// A stride matters only where more than one element is picked; every mode agrees while all indices are
// in range, which contiguous_run_start requires.
ElementOffsets slice_runs(const ir::Node& n, const ShapeAnalysis& shapes, const Dims& x, const Dims& out) {
  const size_t r = x.size();
  auto param = [&](size_t slot, const char* name, int64_t fallback) -> std::optional<Ints> {
    if (has_input(n, slot)) return host_ints(n.inputs[slot], shapes);
    if (n.attrs.has(name)) return n.attrs.ints(name);
    return Ints(r, fallback);
  };
  std::optional<Ints> start = param(1, "start", 0), stride = param(3, "stride", 1);
  if (!start || !stride || start->size() != r || stride->size() != r || out.size() != r) return std::nullopt;
  for (size_t d = 0; d < r; ++d)
    if (out[d] > 1 && (*stride)[d] != 1) return std::nullopt;
  std::optional<int64_t> run = contiguous_run_start(x, *start, out);
  if (!run) return std::nullopt;
  return Ints{*run};
}

// ONNX Slice (starts, ends, optional axes and steps), read with the same range rule as its kernels.
ElementOffsets dynamic_slice_runs(const ir::Node& n, const ShapeAnalysis& shapes, const Dims& x, const Dims& out) {
  std::optional<Ints> starts = host_ints(n.inputs.size() > 1 ? n.inputs[1] : nullptr, shapes);
  std::optional<Ints> ends = host_ints(n.inputs.size() > 2 ? n.inputs[2] : nullptr, shapes);
  if (!starts || !ends || ends->size() != starts->size()) return std::nullopt;
  const size_t k = starts->size();
  Ints axes, steps(k, 1);
  for (size_t i = 0; i < k; ++i) axes.push_back(static_cast<int64_t>(i));
  if (has_input(n, 3)) {
    std::optional<Ints> a = host_ints(n.inputs[3], shapes);
    if (!a) return std::nullopt;
    axes = *a;
  }
  if (has_input(n, 4)) {
    std::optional<Ints> s = host_ints(n.inputs[4], shapes);
    if (!s) return std::nullopt;
    steps = *s;
  }
  if (axes.size() != k || steps.size() != k) return std::nullopt;
  Ints start(x.size(), 0), size = x;
  std::vector<bool> seen(x.size(), false);
  for (size_t i = 0; i < k; ++i) {
    std::optional<int64_t> ax = normalized_axis(axes[i], x.size());
    if (!ax || seen[*ax] || steps[i] == 0) return std::nullopt;  // the kernel reports these
    seen[*ax] = true;
    const ir::SliceRange sr = ir::onnx_slice_range(x[*ax], (*starts)[i], (*ends)[i], steps[i]);
    if (sr.length > 1 && steps[i] != 1) return std::nullopt;  // strided or backwards: not one run
    start[*ax] = sr.start;
    size[*ax] = sr.length;
  }
  if (size != out) return std::nullopt;  // shape inference read the parameters otherwise: never alias on doubt
  std::optional<int64_t> run = contiguous_run_start(x, start, size);
  if (!run) return std::nullopt;
  return Ints{*run};
}

// Split: output i is the chunk after outputs 0..i-1 on the axis, whole on every other axis.
ElementOffsets split_runs(const ir::Node& n, const ShapeAnalysis& shapes, const Dims& x) {
  std::optional<int64_t> axis = normalized_axis(n.attrs.i("axis", 0), x.size());
  if (!axis) return std::nullopt;
  Ints runs;
  int64_t at = 0;
  for (const ir::Value* o : n.outputs) {
    const Dims& chunk = shapes.info[o->id].shape;
    if (chunk.size() != x.size()) return std::nullopt;
    for (size_t d = 0; d < x.size(); ++d)
      if (static_cast<int64_t>(d) != *axis && chunk[d] != x[d]) return std::nullopt;
    Ints start(x.size(), 0);
    start[*axis] = at;
    std::optional<int64_t> run = contiguous_run_start(x, start, chunk);
    if (!run) return std::nullopt;
    runs.push_back(*run);
    at += chunk[*axis];
  }
  if (at != x[*axis]) return std::nullopt;
  return runs;
}

}  // namespace

std::optional<std::vector<int64_t>> block_view_offsets(const ir::Node& n, const ShapeAnalysis& shapes) {
  if (n.op != "Gather" && n.op != "Slice" && n.op != "DynamicSlice" && n.op != "Split") return std::nullopt;
  if (n.inputs.empty() || !n.inputs[0] || n.outputs.empty()) return std::nullopt;
  const ir::TensorInfo& x = shapes.info[n.inputs[0]->id];
  if (!x.present || !dims_known(x.shape)) return std::nullopt;
  for (const ir::Value* o : n.outputs) {
    const ir::TensorInfo& info = shapes.info[o->id];
    if (!info.present || info.dtype != x.dtype || !dims_known(info.shape)) return std::nullopt;
  }
  const Dims& out = shapes.info[n.outputs[0]->id].shape;
  ElementOffsets runs;
  if (n.op == "Gather") runs = gather_runs(n, shapes, x.shape);
  else if (n.op == "Slice") runs = slice_runs(n, shapes, x.shape, out);
  else if (n.op == "DynamicSlice") runs = dynamic_slice_runs(n, shapes, x.shape, out);
  else runs = split_runs(n, shapes, x.shape);
  if (!runs || runs->size() != n.outputs.size()) return std::nullopt;
  std::vector<int64_t> bytes;
  for (int64_t run : *runs) {
    const int64_t b = run * static_cast<int64_t>(dtype_size(x.dtype));
    if (b % kViewOffsetAlignment != 0) return std::nullopt;
    bytes.push_back(b);
  }
  return bytes;
}

}  // namespace kiln
