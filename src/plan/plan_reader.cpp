#include "plan/plan_reader.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <unordered_set>

#include "ir/op_registry.h"
#include "plan/byte_reader.h"
#include "plan/plan_format.h"

#ifndef KILN_VERSION
#error "KILN_VERSION must be defined by the build"
#endif

namespace kiln::plan {

namespace {

std::string hex_bytes(const uint8_t* p, size_t n) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    if (i) s += ' ';
    s += buf;
  }
  return s;
}

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string tag_name(uint32_t tag) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    char c = static_cast<char>(tag >> (8 * i));
    if (c < 0x20 || c > 0x7e) return hex64(tag).substr(0, 2) + hex64(tag).substr(10);
    s += c;
  }
  return "'" + s + "'";
}

// "0.1.0" -> "0.1"; a string with fewer than two dots is compared whole.
std::string major_minor(const std::string& v) {
  size_t a = v.find('.');
  if (a == std::string::npos) return v;
  size_t b = v.find('.', a + 1);
  return b == std::string::npos ? v : v.substr(0, b);
}

[[noreturn]] void invalid(const std::string& msg) { throw Error("plan is invalid: " + msg); }

struct Span {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t offset = 0;  // file offset
};

// Reads one section's frame from the payload and returns a reader over its content.
ByteReader section(ByteReader& payload, uint32_t want, int index) {
  static const char* const kNames[] = {"section META", "section IOTB", "section GRPH", "section WGTS"};
  size_t at = payload.offset();
  uint32_t tag = payload.u32("a section tag");
  if (tag != want)
    payload.fail_at(at, "section " + std::to_string(index) + " is " + tag_name(tag) + ", expected " + tag_name(want));
  at = payload.offset();
  if (uint32_t r = payload.u32("a section's reserved field"))
    payload.fail_at(at, "reserved field of " + tag_name(want) + " is " + std::to_string(r) + ", expected 0");
  uint64_t size = payload.u64("a section size");
  if (size > payload.remaining())
    throw Error("plan is malformed in the payload: " + std::string(kNames[index]) + " announces " +
                std::to_string(size) + " bytes at offset " + std::to_string(payload.offset()) + ", only " +
                std::to_string(payload.remaining()) + " left");
  return payload.sub(static_cast<size_t>(size), "a section", kNames[index]);
}

void read_meta(ByteReader r, EngineData& e) {
  e.name = r.str("the engine name");
  size_t at = r.offset();
  e.num_profiles = r.i32("num_profiles");
  if (e.num_profiles < 0) r.fail_at(at, "num_profiles is negative (" + std::to_string(e.num_profiles) + ")");
  e.device_memory_size = r.u64("device_memory_size");
  e.workspace_limit = r.u64("workspace_limit");
  e.weights_bytes = r.u64("weights_bytes");
  e.target_libraries = r.str("target_libraries");
  at = r.offset();
  std::string tactics = r.str("tactics");
  try {
    e.tactics = std::make_shared<TimingCache>(std::vector<uint8_t>(tactics.begin(), tactics.end()));
  } catch (const Error& err) {
    r.fail_at(at, std::string("the tactics: ") + err.what());
  }
  r.expect_end("section META");
}

void read_io(ByteReader r, EngineData& e) {
  size_t n = r.count("the I/O tensor count", 4 + 1 + 4 + 4 + 4);
  e.io.resize(n);
  for (auto& io : e.io) {
    io.name = r.str("an I/O tensor name");
    io.is_input = r.boolean("an I/O tensor's is_input flag");
    io.dtype = r.dtype("an I/O tensor's data type");
    io.shape = r.dims("an I/O tensor's shape");
    io.profiles.resize(r.count("an I/O tensor's profile count", 12));
    for (auto& p : io.profiles) {
      p.min = r.dims("a profile's min shape");
      p.opt = r.dims("a profile's opt shape");
      p.max = r.dims("a profile's max shape");
    }
  }
  r.expect_end("section IOTB");
}

Span read_weights(ByteReader r) {
  size_t pad = align_up(r.offset(), kTensorAlignment) - r.offset();
  const uint8_t* p = r.take(pad, "the weights' alignment padding");
  for (size_t i = 0; i < pad; ++i)
    if (p[i]) r.fail_at(r.offset() - pad + i, "the weights' alignment padding is not zero");
  Span s{r.cursor(), r.remaining(), r.offset()};
  r.take(r.remaining(), "the weights");
  return s;
}

struct NodeRec {
  std::string name, op;
  std::vector<uint32_t> inputs, outputs;
  std::optional<DataType> precision;
  std::vector<std::optional<DataType>> output_types;
  ir::Attrs attrs;
};

struct ValueRec {
  std::string name;
  DataType dtype;
  Dims shape;
};

class GraphReader {
 public:
  GraphReader(ByteReader r, Span blob, std::shared_ptr<const void> owner)
      : r_(std::move(r)), blob_(blob), owner_(std::move(owner)) {}

  std::unique_ptr<ir::Graph> read() {
    read_records();
    return build();
  }

 private:
  uint32_t vref(const char* what, bool allow_none) {
    size_t at = r_.offset();
    uint32_t i = r_.u32(what);
    if (allow_none && i == kNoValue) return i;
    if (i >= values_.size())
      r_.fail_at(at, std::string(what) + " refers to tensor #" + std::to_string(i) + ", the graph has " +
                         std::to_string(values_.size()));
    return i;
  }

  std::optional<DataType> optional_dtype(const char* what) {
    if (!r_.boolean(what)) return std::nullopt;
    return r_.dtype(what);
  }

  HostTensor tensor(const NodeRec& n, const std::string& key) {
    size_t at = r_.offset();
    bool has = r_.boolean("a tensor's has_data flag");
    DataType dt = r_.dtype("a tensor's data type");
    Dims shape = r_.dims("a tensor's shape");
    if (!has) return HostTensor::wrap(dt, shape, nullptr, nullptr);
    std::string who = "tensor attribute '" + key + "' of layer '" + n.name + "'";
    uint64_t numel = 1;
    for (int64_t d : shape) {
      if (d < 0) r_.fail_at(at, who + " has a negative dimension in shape " + dims_str(shape));
      if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d))
        r_.fail_at(at, who + " has an impossibly large shape " + dims_str(shape));
      numel *= static_cast<uint64_t>(d);
    }
    uint64_t esize = dtype_size(dt);
    if (numel > std::numeric_limits<uint64_t>::max() / esize)
      r_.fail_at(at, who + " has an impossibly large shape " + dims_str(shape));
    size_t off_at = r_.offset();
    uint64_t offset = r_.u64("a tensor's offset");
    uint64_t nbytes = r_.u64("a tensor's byte size");
    if (nbytes != numel * esize)
      r_.fail_at(off_at, who + " stores " + std::to_string(nbytes) + " bytes, its shape " + dims_str(shape) + " of " +
                             dtype_name(dt) + " needs " + std::to_string(numel * esize));
    if (offset % kTensorAlignment)
      r_.fail_at(off_at, who + " is at weights offset " + std::to_string(offset) + ", not a multiple of " +
                             std::to_string(kTensorAlignment));
    if (offset > blob_.size || nbytes > blob_.size - offset)
      r_.fail_at(off_at, who + " spans weights bytes " + std::to_string(offset) + ".." +
                             std::to_string(offset + nbytes) + ", the weights hold " + std::to_string(blob_.size));
    const uint8_t* p = blob_.data + offset;
    if (owner_ && reinterpret_cast<uintptr_t>(p) % kTensorAlignment == 0) return HostTensor::wrap(dt, shape, owner_, p);
    if (nbytes == 0) return HostTensor(dt, shape);
    // Tensors that shared storage when the plan was written share one copy again.
    auto [it, fresh] = copies_.try_emplace({offset, nbytes});
    if (fresh) {
      auto holder = std::make_shared<HostTensor>(HostTensor::copy_of(DataType::kUINT8, {static_cast<int64_t>(nbytes)}, p));
      it->second = {holder, holder->raw()};
    }
    return HostTensor::wrap(dt, shape, it->second.first, it->second.second);
  }

  void attrs(NodeRec& n) {
    size_t count = r_.count("a layer's attribute count", 4 + 1 + 4);
    std::string prev;
    for (size_t i = 0; i < count; ++i) {
      size_t at = r_.offset();
      std::string key = r_.str("an attribute name");
      if (i && !(prev < key))
        r_.fail_at(at, "attribute '" + key + "' of layer '" + n.name + "' is out of order or repeated");
      size_t kind_at = r_.offset();
      uint8_t kind = r_.u8("an attribute kind");
      switch (kind) {
        case kAttrInt: n.attrs.set(key, r_.i64("an integer attribute")); break;
        case kAttrFloat: n.attrs.set(key, r_.f64("a float attribute")); break;
        case kAttrString: n.attrs.set(key, r_.str("a string attribute")); break;
        case kAttrInts: {
          std::vector<int64_t> v(r_.count("an integer list attribute's length", 8));
          for (auto& x : v) x = r_.i64("an integer list element");
          n.attrs.set(key, std::move(v));
          break;
        }
        case kAttrFloats: {
          std::vector<double> v(r_.count("a float list attribute's length", 8));
          for (auto& x : v) x = r_.f64("a float list element");
          n.attrs.set(key, std::move(v));
          break;
        }
        case kAttrTensor: n.attrs.set(key, tensor(n, key)); break;
        default:
          r_.fail_at(kind_at, "attribute '" + key + "' of layer '" + n.name + "' has unknown kind " +
                                  std::to_string(kind));
      }
      prev = std::move(key);
    }
  }

  void read_records() {
    values_.resize(r_.count("the tensor count", 4 + 4 + 4));
    for (auto& v : values_) {
      v.name = r_.str("a tensor name");
      v.dtype = r_.dtype("a tensor's data type");
      v.shape = r_.dims("a tensor's shape");
    }
    is_input_.assign(values_.size(), false);
    made_.assign(values_.size(), false);
    inputs_.resize(r_.count("the network input count", 4));
    for (auto& i : inputs_) {
      size_t at = r_.offset();
      i = vref("a network input", false);
      if (is_input_[i]) r_.fail_at(at, "tensor '" + values_[i].name + "' is listed twice as a network input");
      is_input_[i] = made_[i] = true;
    }
    outputs_.resize(r_.count("the network output count", 4));
    for (auto& o : outputs_) o = vref("a network output", false);

    nodes_.resize(r_.count("the layer count", 4 + 4 + 4 + 4 + 1 + 4 + 4));
    for (auto& n : nodes_) {
      n.name = r_.str("a layer name");
      size_t op_at = r_.offset();
      n.op = r_.str("an op name");
      const ir::OpDef* def = ir::find_op(n.op);
      if (!def)
        throw Error("plan uses op '" + n.op + "' (layer '" + n.name +
                    "'), which this Kiln does not know; rebuild the engine with this Kiln");
      n.inputs.resize(r_.count("a layer's input count", 4));
      for (auto& i : n.inputs) i = vref("a layer input", true);
      n.outputs.resize(r_.count("a layer's output count", 4));
      for (auto& o : n.outputs) {
        size_t at = r_.offset();
        o = vref("a layer output", false);
        if (made_[o])
          r_.fail_at(at, "tensor '" + values_[o].name + "' is an output of layer '" + n.name +
                             "' but is also a network input or another layer's output");
        made_[o] = true;
      }
      int ni = static_cast<int>(n.inputs.size()), no = static_cast<int>(n.outputs.size());
      if (ni < def->min_inputs || (def->max_inputs >= 0 && ni > def->max_inputs))
        r_.fail_at(op_at, "layer '" + n.name + "' (" + n.op + ") has " + std::to_string(ni) + " inputs, the op takes " +
                              std::to_string(def->min_inputs) +
                              (def->max_inputs < 0 ? " or more" : " to " + std::to_string(def->max_inputs)));
      if (def->num_outputs >= 0 && no != def->num_outputs)
        r_.fail_at(op_at, "layer '" + n.name + "' (" + n.op + ") has " + std::to_string(no) +
                              " outputs, the op has " + std::to_string(def->num_outputs));
      n.precision = optional_dtype("a layer's precision");
      n.output_types.resize(r_.count("a layer's output type count", 1));
      for (auto& t : n.output_types) t = optional_dtype("a layer's output type");
      attrs(n);
    }
    r_.expect_end("section GRPH");
    for (size_t i = 0; i < values_.size(); ++i)
      if (!made_[i]) invalid("tensor '" + values_[i].name + "' is neither a network input nor produced by a layer");
  }

  // Recreates the graph through Graph's public API with the exact value and node orders: every value
  // slot is first filled by add_input (network inputs) or by a one-output placeholder node (the rest),
  // then the real nodes are added (without outputs of their own) and take over those value objects, and
  // finally the placeholders are removed, which keeps the values' order and renumbers ids densely.
  std::unique_ptr<ir::Graph> build() {
    static const std::string kPlaceholder = "\x01kiln-plan-placeholder";
    auto g = std::make_unique<ir::Graph>();
    const size_t nv = values_.size();
    std::vector<ir::Value*> obj(nv, nullptr);
    std::unordered_set<const ir::Node*> placeholders;
    size_t next_input = 0;
    for (size_t i = 0; i < nv; ++i) {
      if (is_input_[i]) {
        // The k-th add_input object must be network input k (Graph::inputs() order).
        uint32_t v = inputs_[next_input];
        obj[v] = g->add_input("\x01kiln-plan-input-" + std::to_string(next_input), DataType::kFLOAT, {});
        ++next_input;
      } else {
        ir::Node* ph = g->add_node(kPlaceholder, kPlaceholder, {}, 1);
        obj[i] = ph->outputs[0];
        ph->outputs.clear();
        ph->output_types.clear();
        placeholders.insert(ph);
      }
    }
    for (size_t i = 0; i < nv; ++i) {
      ir::Value* v = obj[i];
      v->name = std::move(values_[i].name);
      v->dtype = values_[i].dtype;
      v->shape = std::move(values_[i].shape);
      v->producer = nullptr;
      v->is_input = is_input_[i];
      v->is_output = false;
    }
    for (auto& rec : nodes_) {
      std::vector<ir::Value*> ins;
      ins.reserve(rec.inputs.size());
      for (uint32_t i : rec.inputs) ins.push_back(i == kNoValue ? nullptr : obj[i]);
      ir::Node* n = g->add_node(rec.op, kPlaceholder, std::move(ins), 0);
      n->name = std::move(rec.name);
      for (uint32_t o : rec.outputs) {
        n->outputs.push_back(obj[o]);
        obj[o]->producer = n;
      }
      n->precision = rec.precision;
      n->output_types = std::move(rec.output_types);
      n->attrs = std::move(rec.attrs);
    }
    g->remove_nodes_if([&](const ir::Node* n) { return placeholders.count(n) != 0; });
    for (uint32_t o : outputs_) {
      g->mutable_outputs().push_back(obj[o]);
      obj[o]->is_output = true;
    }
    return g;
  }

  ByteReader r_;
  Span blob_;
  std::shared_ptr<const void> owner_;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<std::shared_ptr<const void>, const void*>> copies_;
  std::vector<ValueRec> values_;
  std::vector<bool> is_input_, made_;
  std::vector<uint32_t> inputs_, outputs_;
  std::vector<NodeRec> nodes_;
};

struct ParsedHeader {
  PlanHeader h;
  size_t checksum_offset = 0;
};

ParsedHeader parse_header(const uint8_t* p, size_t size) {
  if (size == 0 || p == nullptr) throw Error("plan is empty");
  size_t n = std::min(size, sizeof kPlanMagic);
  if (std::memcmp(p, kPlanMagic, n) != 0)
    throw Error("not a Kiln plan (bad magic: file starts with " + hex_bytes(p, n) + ", expected \"KILNPLAN\")");
  ByteReader r(p, size);
  r.take(sizeof kPlanMagic, "the magic");
  ParsedHeader out;
  PlanHeader& h = out.h;
  h.format_version = r.u32("the format version");
  if (h.format_version != kPlanFormatVersion)
    throw Error("plan format version " + std::to_string(h.format_version) + " is not supported by this Kiln (supports " +
                std::to_string(kPlanFormatVersion) + "); it was written by " +
                (h.format_version > kPlanFormatVersion ? "a newer" : "an older") + " Kiln, rebuild the engine");
  size_t hs_at = r.offset();
  h.header_size = r.u32("the header size");
  h.target = r.str("the target name", kMaxHeaderString);
  h.kiln_version = r.str("the Kiln version", kMaxHeaderString);
  h.payload_size = r.u64("the payload size");
  out.checksum_offset = r.offset();
  h.checksum = r.u64("the checksum");
  size_t expected = plan_header_size(h.target.size(), h.kiln_version.size());
  if (h.header_size != expected)
    r.fail_at(hs_at, "header size field is " + std::to_string(h.header_size) + ", expected " + std::to_string(expected));
  r.take(h.header_size - r.offset(), "the header padding");
  return out;
}

EngineData read(const std::shared_ptr<const void>& owner, const void* data, size_t size, const std::string& expected) {
  if constexpr (std::endian::native != std::endian::little)
    throw Error("cannot read plan: plans store tensors little-endian and this host is big-endian");
  const uint8_t* p = static_cast<const uint8_t*>(data);
  ParsedHeader ph = parse_header(p, size);
  const PlanHeader& h = ph.h;
  size_t avail = size - h.header_size;
  if (h.payload_size > avail)
    throw Error("plan is truncated: the header announces " + std::to_string(h.payload_size) + " bytes of payload, only " +
                std::to_string(avail) + " present");
  if (h.payload_size < avail)
    throw Error("plan has " + std::to_string(avail - h.payload_size) + " bytes of trailing data after its end (offset " +
                std::to_string(h.header_size + h.payload_size) + ")");
  uint64_t sum = plan_checksum(p, size, ph.checksum_offset);
  if (sum != h.checksum)
    throw Error("plan is corrupted: checksum mismatch (stored " + hex64(h.checksum) + ", computed " + hex64(sum) + ")");
  const std::string mine = KILN_VERSION;
  if (major_minor(h.kiln_version) != major_minor(mine))
    throw Error("plan was built by Kiln " + h.kiln_version + ", this is Kiln " + mine +
                ": plans are only compatible within one major.minor version, rebuild the engine");
  if (!expected.empty() && h.target.compare(0, expected.size(), expected) != 0)
    throw Error("plan was built for " + h.target + ", this device is " + expected);

  EngineData e;
  e.target = h.target;
  e.kiln_version = h.kiln_version;
  ByteReader payload(p + h.header_size, static_cast<size_t>(h.payload_size), h.header_size, "the payload");
  ByteReader meta = section(payload, kSectionMeta, 0);
  ByteReader io = section(payload, kSectionIO, 1);
  ByteReader graph = section(payload, kSectionGraph, 2);
  ByteReader weights = section(payload, kSectionWeights, 3);
  payload.expect_end("the payload");
  read_meta(std::move(meta), e);
  read_io(std::move(io), e);
  Span blob = read_weights(std::move(weights));
  e.graph = GraphReader(std::move(graph), blob, owner).read();
  return e;
}

}  // namespace

PlanHeader read_plan_header(const void* data, size_t size) {
  return parse_header(static_cast<const uint8_t*>(data), size).h;
}

EngineData read_plan(const void* data, size_t size, const std::string& expected_target_prefix) {
  return read(nullptr, data, size, expected_target_prefix);
}

EngineData read_plan_in_place(std::shared_ptr<const void> owner, const void* data, size_t size,
                              const std::string& expected_target_prefix) {
  if (!owner) throw Error("read_plan_in_place: an owner keeping the plan's bytes alive is required");
  return read(owner, data, size, expected_target_prefix);
}

}  // namespace kiln::plan
