#include "plan/plan_writer.h"

#include <bit>
#include <map>
#include <unordered_map>
#include <variant>

#include "plan/byte_writer.h"
#include "plan/plan_format.h"

#ifndef KILN_VERSION
#error "KILN_VERSION must be defined by the build"
#endif

namespace kiln::plan {

namespace {

[[noreturn]] void refuse(const std::string& msg) { throw Error("cannot write plan: " + msg); }

void check_dtype(DataType t, const std::string& what) {
  if (!dtype_is_valid(static_cast<int32_t>(t)))
    refuse(what + " has an invalid data type (" + std::to_string(static_cast<int32_t>(t)) + ")");
}

// Collects tensor bytes for the WGTS section, each at a kTensorAlignment-aligned offset in the blob;
// tensors sharing storage are stored once.
class WeightBlob {
 public:
  uint64_t add(const void* p, size_t n) {
    if (n == 0) return 0;
    auto key = std::make_pair(p, n);
    auto it = seen_.find(key);
    if (it != seen_.end()) return it->second;
    uint64_t at = size_;
    items_.push_back({p, n, at});
    seen_.emplace(key, at);
    size_ = align_up(at + n, kTensorAlignment);
    return at;
  }
  uint64_t size() const { return size_; }

  // Writes the blob; w.size() must be the blob's (aligned) file offset.
  void write(ByteWriter& w) const {
    size_t start = w.size();
    for (auto& it : items_) {
      w.zeros(start + it.offset - w.size());
      w.raw(it.data, it.nbytes);
    }
  }

 private:
  struct Item {
    const void* data;
    size_t nbytes;
    uint64_t offset;
  };
  std::vector<Item> items_;
  std::map<std::pair<const void*, size_t>, uint64_t> seen_;
  uint64_t size_ = 0;
};

class SectionScope {
 public:
  SectionScope(ByteWriter& w, uint32_t tag) : w_(w) {
    w_.u32(tag);
    w_.u32(0);
    size_at_ = w_.size();
    w_.u64(0);
  }
  ~SectionScope() { w_.patch_u64(size_at_, w_.size() - size_at_ - 8); }

 private:
  ByteWriter& w_;
  size_t size_at_;
};

struct GraphWriter {
  const ir::Graph& g;
  ByteWriter& w;
  WeightBlob& blob;
  std::unordered_map<const ir::Value*, uint32_t> index;

  uint32_t ref(const ir::Value* v, const std::string& who) {
    auto it = index.find(v);
    if (it == index.end()) refuse(who + " refers to a tensor that is not in the graph");
    return it->second;
  }

  void validate() {
    const auto& values = g.values();
    if (values.size() >= kNoValue) refuse("the graph has too many tensors");
    for (size_t i = 0; i < values.size(); ++i) {
      if (!index.emplace(values[i].get(), static_cast<uint32_t>(i)).second)
        refuse("tensor '" + values[i]->name + "' appears twice in the graph's value list");
      check_dtype(values[i]->dtype, "tensor '" + values[i]->name + "'");
    }
    std::vector<int> made(values.size(), 0);
    for (auto* v : g.inputs()) {
      uint32_t i = ref(v, "a network input");
      if (made[i]++) refuse("tensor '" + v->name + "' is listed twice as a network input");
    }
    for (auto* v : g.outputs()) ref(v, "a network output");
    for (auto& n : g.nodes()) {
      for (auto* in : n->inputs)
        if (in) ref(in, "layer '" + n->name + "'");
      for (auto* out : n->outputs) {
        uint32_t i = ref(out, "layer '" + n->name + "'");
        if (made[i]++)
          refuse("tensor '" + out->name + "' is produced by layer '" + n->name +
                 "' but is also a network input or another layer's output");
      }
      if (n->precision) check_dtype(*n->precision, "the precision of layer '" + n->name + "'");
      for (auto& t : n->output_types)
        if (t) check_dtype(*t, "an output type of layer '" + n->name + "'");
    }
    for (size_t i = 0; i < values.size(); ++i)
      if (!made[i]) refuse("tensor '" + values[i]->name + "' is neither a network input nor produced by a layer");
  }

  void tensor(const HostTensor& t, const std::string& who) {
    bool has = !t.empty();
    check_dtype(t.dtype(), who);
    w.boolean(has);
    w.dtype(t.dtype());
    w.dims(t.shape());
    if (!has) return;
    if (!dims_known(t.shape())) refuse(who + " is a tensor of unknown shape " + dims_str(t.shape()));
    size_t n = t.nbytes();
    w.u64(blob.add(t.raw(), n));
    w.u64(n);
  }

  void attr(const std::string& key, const ir::AttrValue& v, const std::string& node) {
    w.str(key, "an attribute name");
    std::visit(
        [&](const auto& a) {
          using T = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            w.u8(kAttrInt);
            w.i64(a);
          } else if constexpr (std::is_same_v<T, double>) {
            w.u8(kAttrFloat);
            w.f64(a);
          } else if constexpr (std::is_same_v<T, std::string>) {
            w.u8(kAttrString);
            w.str(a, "a string attribute");
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            w.u8(kAttrInts);
            w.count(a.size(), "an integer list attribute");
            for (int64_t x : a) w.i64(x);
          } else if constexpr (std::is_same_v<T, std::vector<double>>) {
            w.u8(kAttrFloats);
            w.count(a.size(), "a float list attribute");
            for (double x : a) w.f64(x);
          } else {
            static_assert(std::is_same_v<T, HostTensor>);
            w.u8(kAttrTensor);
            tensor(a, "attribute '" + key + "' of layer '" + node + "'");
          }
        },
        v);
  }

  void optional_dtype(const std::optional<DataType>& t) {
    w.boolean(t.has_value());
    if (t) w.dtype(*t);
  }

  void write() {
    validate();
    w.count(g.values().size(), "the graph's tensor list");
    for (auto& v : g.values()) {
      w.str(v->name, "a tensor name");
      w.dtype(v->dtype);
      w.dims(v->shape);
    }
    w.count(g.inputs().size(), "the network input list");
    for (auto* v : g.inputs()) w.u32(index.at(v));
    w.count(g.outputs().size(), "the network output list");
    for (auto* v : g.outputs()) w.u32(index.at(v));
    w.count(g.nodes().size(), "the layer list");
    for (auto& n : g.nodes()) {
      w.str(n->name, "a layer name");
      w.str(n->op, "an op name");
      w.count(n->inputs.size(), "a layer's input list");
      for (auto* in : n->inputs) w.u32(in ? index.at(in) : kNoValue);
      w.count(n->outputs.size(), "a layer's output list");
      for (auto* out : n->outputs) w.u32(index.at(out));
      optional_dtype(n->precision);
      w.count(n->output_types.size(), "a layer's output type list");
      for (auto& t : n->output_types) optional_dtype(t);
      const auto& attrs = n->attrs.all();
      w.count(attrs.size(), "a layer's attribute list");
      for (auto& [k, v] : attrs) attr(k, v, n->name);
    }
  }
};

}  // namespace

std::vector<uint8_t> write_plan(const EngineData& data) {
  if constexpr (std::endian::native != std::endian::little)
    throw Error("cannot write plan: plans store tensors little-endian and this host is big-endian");
  if (!data.graph) refuse("the engine has no graph");
  const std::string version = data.kiln_version.empty() ? std::string(KILN_VERSION) : data.kiln_version;
  if (data.target.size() > kMaxHeaderString) refuse("the target name is longer than 256 bytes");
  if (version.size() > kMaxHeaderString) refuse("the Kiln version string is longer than 256 bytes");
  if (data.num_profiles < 0) refuse("num_profiles is negative (" + std::to_string(data.num_profiles) + ")");

  ByteWriter w;
  // Header.
  const size_t header_size = plan_header_size(data.target.size(), version.size());
  w.raw(kPlanMagic, sizeof kPlanMagic);
  w.u32(kPlanFormatVersion);
  w.u32(static_cast<uint32_t>(header_size));
  w.str(data.target);
  w.str(version);
  const size_t payload_size_at = w.size();
  w.u64(0);
  const size_t checksum_at = w.size();
  w.u64(0);
  w.zeros(header_size - w.size());

  {
    SectionScope s(w, kSectionMeta);
    w.str(data.name, "the engine name");
    w.i32(data.num_profiles);
    w.u64(data.device_memory_size);
    w.u64(data.workspace_limit);
    w.u64(data.weights_bytes);
    w.str(data.target_libraries);
    std::vector<uint8_t> tactics;
    if (data.tactics && data.tactics->size()) tactics = data.tactics->serialize();
    w.str(std::string(tactics.begin(), tactics.end()), "the tactics");
  }
  {
    SectionScope s(w, kSectionIO);
    w.count(data.io.size(), "the I/O table");
    for (auto& io : data.io) {
      check_dtype(io.dtype, "I/O tensor '" + io.name + "'");
      w.str(io.name, "an I/O tensor name");
      w.boolean(io.is_input);
      w.dtype(io.dtype);
      w.dims(io.shape);
      w.count(io.profiles.size(), "an I/O tensor's profile list");
      for (auto& p : io.profiles) {
        w.dims(p.min);
        w.dims(p.opt);
        w.dims(p.max);
      }
    }
  }
  WeightBlob blob;
  {
    SectionScope s(w, kSectionGraph);
    GraphWriter gw{*data.graph, w, blob, {}};
    gw.write();
  }
  {
    w.reserve(w.size() + 16 + kTensorAlignment + blob.size());
    SectionScope s(w, kSectionWeights);
    w.pad_to(kTensorAlignment);
    blob.write(w);
  }

  w.patch_u64(payload_size_at, w.size() - header_size);
  std::vector<uint8_t> out = w.take();
  uint64_t sum = plan_checksum(out.data(), out.size(), checksum_at);
  for (int i = 0; i < 8; ++i) out[checksum_at + i] = static_cast<uint8_t>(sum >> (8 * i));
  return out;
}

}  // namespace kiln::plan
