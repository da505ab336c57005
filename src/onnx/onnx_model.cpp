// Decoders from the protobuf wire format to the structs of onnx_model.h. Field numbers are those
// of onnx/onnx.proto (and onnx-ml.proto for TypeProto.opaque_type). Each decoder appends into an
// existing struct, which gives protobuf's merge semantics for repeated occurrences for free.
#include "onnx/onnx_model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <limits>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

namespace kiln::onnx {
namespace {

// ---- Field-name tables: used only to word error messages. ----

constexpr FieldName kModelFields[] = {
    {1, "ir_version"}, {2, "producer_name"}, {3, "producer_version"}, {4, "domain"},
    {5, "model_version"}, {6, "doc_string"}, {7, "graph"}, {8, "opset_import"},
    {14, "metadata_props"}, {20, "training_info"}, {25, "functions"}};
constexpr FieldName kOpsetFields[] = {{1, "domain"}, {2, "version"}};
constexpr FieldName kGraphFields[] = {
    {1, "node"}, {2, "name"}, {5, "initializer"}, {10, "doc_string"}, {11, "input"},
    {12, "output"}, {13, "value_info"}, {14, "quantization_annotation"}, {15, "sparse_initializer"}};
constexpr FieldName kNodeFields[] = {{1, "input"}, {2, "output"}, {3, "name"}, {4, "op_type"},
                                     {5, "attribute"}, {6, "doc_string"}, {7, "domain"}};
constexpr FieldName kAttributeFields[] = {
    {1, "name"}, {2, "f"}, {3, "i"}, {4, "s"}, {5, "t"}, {6, "g"}, {7, "floats"}, {8, "ints"},
    {9, "strings"}, {10, "tensors"}, {11, "graphs"}, {13, "doc_string"}, {14, "tp"},
    {15, "type_protos"}, {20, "type"}, {21, "ref_attr_name"}, {22, "sparse_tensor"},
    {23, "sparse_tensors"}};
constexpr FieldName kTensorFields[] = {
    {1, "dims"}, {2, "data_type"}, {3, "segment"}, {4, "float_data"}, {5, "int32_data"},
    {6, "string_data"}, {7, "int64_data"}, {8, "name"}, {9, "raw_data"}, {10, "double_data"},
    {11, "uint64_data"}, {12, "doc_string"}, {13, "external_data"}, {14, "data_location"}};
constexpr FieldName kSegmentFields[] = {{1, "begin"}, {2, "end"}};
constexpr FieldName kEntryFields[] = {{1, "key"}, {2, "value"}};
constexpr FieldName kValueInfoFields[] = {{1, "name"}, {2, "type"}, {3, "doc_string"}};
constexpr FieldName kTypeFields[] = {
    {1, "tensor_type"}, {4, "sequence_type"}, {5, "map_type"}, {6, "denotation"},
    {7, "opaque_type"}, {8, "sparse_tensor_type"}, {9, "optional_type"}};
constexpr FieldName kTensorTypeFields[] = {{1, "elem_type"}, {2, "shape"}};
constexpr FieldName kShapeFields[] = {{1, "dim"}};
constexpr FieldName kDimensionFields[] = {{1, "dim_value"}, {2, "dim_param"}, {3, "denotation"}};

const MessageInfo kModelInfo{"ModelProto", kModelFields};
const MessageInfo kOpsetInfo{"OperatorSetIdProto", kOpsetFields};
const MessageInfo kGraphInfo{"GraphProto", kGraphFields};
const MessageInfo kNodeInfo{"NodeProto", kNodeFields};
const MessageInfo kAttributeInfo{"AttributeProto", kAttributeFields};
const MessageInfo kTensorInfo{"TensorProto", kTensorFields};
const MessageInfo kSegmentInfo{"TensorProto.Segment", kSegmentFields};
const MessageInfo kEntryInfo{"StringStringEntryProto", kEntryFields};
const MessageInfo kValueInfoInfo{"ValueInfoProto", kValueInfoFields};
const MessageInfo kTypeInfo{"TypeProto", kTypeFields};
const MessageInfo kTensorTypeInfo{"TypeProto.Tensor", kTensorTypeFields};
const MessageInfo kShapeInfo{"TensorShapeProto", kShapeFields};
const MessageInfo kDimensionInfo{"TensorShapeProto.Dimension", kDimensionFields};

// ---- Decoders. Unknown field numbers fall through the switches and are thereby skipped. ----

template <class T, class Decode>
void decode_sub(const WireReader& parent, const Field& f, const MessageInfo& info, T& out, Decode decode) {
  WireReader child(parent, f, info);
  decode(child, out);
}

void decode_entry(WireReader& r, StringStringEntryProto& e) {
  for (Field f; r.next(f);) {
    if (f.number == 1) e.key = r.bytes(f);
    else if (f.number == 2) e.value = r.bytes(f);
  }
}

void decode_segment(WireReader& r, TensorProto& t) {
  t.has_segment = true;
  for (Field f; r.next(f);) {
    if (f.number == 1) t.segment_begin = r.int64(f);
    else if (f.number == 2) t.segment_end = r.int64(f);
  }
}

void decode_tensor(WireReader& r, TensorProto& t) {
  for (Field f; r.next(f);) {
    switch (f.number) {
      case 1: r.append(f, t.dims); break;
      case 2: t.data_type = r.int32(f); break;
      case 3: decode_sub(r, f, kSegmentInfo, t, decode_segment); break;
      case 4: r.append(f, t.float_data); break;
      case 5: r.append(f, t.int32_data); break;
      case 6: t.string_data.push_back(r.bytes(f)); break;
      case 7: r.append(f, t.int64_data); break;
      case 8: t.name = r.bytes(f); break;
      case 9: t.raw_data = r.bytes(f); t.has_raw_data = true; break;
      case 10: r.append(f, t.double_data); break;
      case 11: r.append(f, t.uint64_data); break;
      case 12: t.doc_string = r.bytes(f); break;
      case 13: decode_sub(r, f, kEntryInfo, t.external_data.emplace_back(), decode_entry); break;
      case 14: t.data_location = r.int32(f); break;
      default: break;
    }
  }
}

void decode_dimension(WireReader& r, TensorShapeProto::Dimension& d) {
  for (Field f; r.next(f);) {
    switch (f.number) {  // dim_value and dim_param are a oneof: the last one wins
      case 1: d.kind = TensorShapeProto::Dimension::kValue; d.value = r.int64(f); d.param = {}; break;
      case 2: d.kind = TensorShapeProto::Dimension::kParam; d.param = r.bytes(f); d.value = 0; break;
      case 3: d.denotation = r.bytes(f); break;
      default: break;
    }
  }
}

void decode_shape(WireReader& r, TensorShapeProto& s) {
  for (Field f; r.next(f);)
    if (f.number == 1) decode_sub(r, f, kDimensionInfo, s.dim.emplace_back(), decode_dimension);
}

void decode_tensor_type(WireReader& r, TypeProto& t) {
  for (Field f; r.next(f);) {
    if (f.number == 1) {
      t.elem_type = r.int32(f);
    } else if (f.number == 2) {
      t.has_shape = true;
      decode_sub(r, f, kShapeInfo, t.shape, decode_shape);
    }
  }
}

void decode_type(WireReader& r, TypeProto& t) {
  for (Field f; r.next(f);) {
    TypeProto::Kind kind = TypeProto::kNone;
    switch (f.number) {
      case 1: kind = TypeProto::kTensor; break;
      case 4: kind = TypeProto::kSequence; break;
      case 5: kind = TypeProto::kMap; break;
      case 6: t.denotation = r.bytes(f); continue;
      case 7: kind = TypeProto::kOpaque; break;
      case 8: kind = TypeProto::kSparseTensor; break;
      case 9: kind = TypeProto::kOptional; break;
      default: continue;
    }
    if (kind != t.kind) {  // switching oneof member: protobuf clears the previous one
      const std::string_view denotation = t.denotation;
      t = TypeProto{};
      t.denotation = denotation;
      t.kind = kind;
    }
    if (kind == TypeProto::kTensor || kind == TypeProto::kSparseTensor)
      decode_sub(r, f, kTensorTypeInfo, t, decode_tensor_type);
    else
      r.bytes(f);  // non-tensor types: only recorded; the payload is already bounds-checked
  }
}

void decode_value_info(WireReader& r, ValueInfoProto& v) {
  for (Field f; r.next(f);) {
    switch (f.number) {
      case 1: v.name = r.bytes(f); break;
      case 2: v.has_type = true; decode_sub(r, f, kTypeInfo, v.type, decode_type); break;
      case 3: v.doc_string = r.bytes(f); break;
      default: break;
    }
  }
}

void decode_graph(WireReader& r, GraphProto& g);

void decode_attribute(WireReader& r, AttributeProto& a) {
  // IR version 1 files have no `type`; remember the last value field seen to infer it.
  AttributeType seen = AttributeType::kUndefined;
  for (Field f; r.next(f);) {
    switch (f.number) {
      case 1: a.name = r.bytes(f); break;
      case 2: a.f = r.float32(f); seen = AttributeType::kFloat; break;
      case 3: a.i = r.int64(f); seen = AttributeType::kInt; break;
      case 4: a.s = r.bytes(f); seen = AttributeType::kString; break;
      case 5:
        if (!a.t) a.t = std::make_shared<TensorProto>();
        decode_sub(r, f, kTensorInfo, *a.t, decode_tensor);
        seen = AttributeType::kTensor;
        break;
      case 6:
        if (!a.g) a.g = std::make_shared<GraphProto>();
        decode_sub(r, f, kGraphInfo, *a.g, decode_graph);
        seen = AttributeType::kGraph;
        break;
      case 7: r.append(f, a.floats); seen = AttributeType::kFloats; break;
      case 8: r.append(f, a.ints); seen = AttributeType::kInts; break;
      case 9: a.strings.push_back(r.bytes(f)); seen = AttributeType::kStrings; break;
      case 10:
        decode_sub(r, f, kTensorInfo, a.tensors.emplace_back(), decode_tensor);
        seen = AttributeType::kTensors;
        break;
      case 11:
        decode_sub(r, f, kGraphInfo, a.graphs.emplace_back(), decode_graph);
        seen = AttributeType::kGraphs;
        break;
      case 13: a.doc_string = r.bytes(f); break;
      case 14: r.bytes(f); seen = AttributeType::kTypeProto; break;
      case 15: r.bytes(f); seen = AttributeType::kTypeProtos; break;
      case 20: a.type = static_cast<AttributeType>(r.int32(f)); break;
      case 21: a.ref_attr_name = r.bytes(f); break;
      case 22: r.bytes(f); seen = AttributeType::kSparseTensor; break;
      case 23: r.bytes(f); seen = AttributeType::kSparseTensors; break;
      default: break;
    }
  }
  if (a.type == AttributeType::kUndefined) a.type = seen;
}

void decode_node(WireReader& r, NodeProto& n) {
  for (Field f; r.next(f);) {
    switch (f.number) {
      case 1: n.input.push_back(r.bytes(f)); break;
      case 2: n.output.push_back(r.bytes(f)); break;
      case 3: n.name = r.bytes(f); break;
      case 4: n.op_type = r.bytes(f); break;
      case 5: decode_sub(r, f, kAttributeInfo, n.attribute.emplace_back(), decode_attribute); break;
      case 6: n.doc_string = r.bytes(f); break;
      case 7: n.domain = r.bytes(f); break;
      default: break;
    }
  }
}

void decode_graph(WireReader& r, GraphProto& g) {
  for (Field f; r.next(f);) {
    switch (f.number) {
      case 1: decode_sub(r, f, kNodeInfo, g.node.emplace_back(), decode_node); break;
      case 2: g.name = r.bytes(f); break;
      case 5: decode_sub(r, f, kTensorInfo, g.initializer.emplace_back(), decode_tensor); break;
      case 10: g.doc_string = r.bytes(f); break;
      case 11: decode_sub(r, f, kValueInfoInfo, g.input.emplace_back(), decode_value_info); break;
      case 12: decode_sub(r, f, kValueInfoInfo, g.output.emplace_back(), decode_value_info); break;
      case 13: decode_sub(r, f, kValueInfoInfo, g.value_info.emplace_back(), decode_value_info); break;
      case 15: r.fail(f, "sparse initializers are not supported");
      default: break;
    }
  }
}

void decode_opset(WireReader& r, OperatorSetIdProto& o) {
  for (Field f; r.next(f);) {
    if (f.number == 1) o.domain = r.bytes(f);
    else if (f.number == 2) o.version = r.int64(f);
  }
}

void decode_model(WireReader& r, ModelProto& m) {
  for (Field f; r.next(f);) {
    switch (f.number) {
      case 1: m.ir_version = r.int64(f); break;
      case 2: m.producer_name = r.bytes(f); break;
      case 3: m.producer_version = r.bytes(f); break;
      case 4: m.domain = r.bytes(f); break;
      case 5: m.model_version = r.int64(f); break;
      case 6: m.doc_string = r.bytes(f); break;
      case 7: m.has_graph = true; decode_sub(r, f, kGraphInfo, m.graph, decode_graph); break;
      case 8: decode_sub(r, f, kOpsetInfo, m.opset_import.emplace_back(), decode_opset); break;
      default: break;
    }
  }
}

[[noreturn]] void fail(const std::string& msg) { throw ParseError(msg); }

}  // namespace

// ---- Data types ----

namespace {
struct DataTypeInfo {
  std::string_view name;
  int bits;
};
// Indexed by DataType value.
constexpr std::array<DataTypeInfo, 27> kDataTypes = {{
    {"UNDEFINED", 0}, {"FLOAT", 32}, {"UINT8", 8}, {"INT8", 8}, {"UINT16", 16}, {"INT16", 16},
    {"INT32", 32}, {"INT64", 64}, {"STRING", 0}, {"BOOL", 8}, {"FLOAT16", 16}, {"DOUBLE", 64},
    {"UINT32", 32}, {"UINT64", 64}, {"COMPLEX64", 64}, {"COMPLEX128", 128}, {"BFLOAT16", 16},
    {"FLOAT8E4M3FN", 8}, {"FLOAT8E4M3FNUZ", 8}, {"FLOAT8E5M2", 8}, {"FLOAT8E5M2FNUZ", 8},
    {"UINT4", 4}, {"INT4", 4}, {"FLOAT4E2M1", 4}, {"FLOAT8E8M0", 8}, {"UINT2", 2}, {"INT2", 2},
}};
}  // namespace

int data_type_bits(int32_t dt) {
  return dt >= 0 && static_cast<size_t>(dt) < kDataTypes.size() ? kDataTypes[dt].bits : 0;
}
size_t data_type_size(int32_t dt) {
  const int bits = data_type_bits(dt);
  return bits % 8 == 0 ? static_cast<size_t>(bits / 8) : 0;
}
std::string_view data_type_name(int32_t dt) {
  return dt >= 0 && static_cast<size_t>(dt) < kDataTypes.size() ? kDataTypes[dt].name : "UNKNOWN";
}

// ---- Parsing entry points ----

namespace {
// Runs a top-level decoder, turning memory exhaustion into a ParseError: the parse functions
// promise that nothing else escapes.
template <class T>
T decode_top(std::string_view bytes, const MessageInfo& info, void (*decode)(WireReader&, T&)) {
  try {
    T out;
    WireReader r(bytes, info);
    decode(r, out);
    return out;
  } catch (const std::bad_alloc&) {
    throw ParseError(std::string(info.name) + ": out of memory decoding " + std::to_string(bytes.size()) +
                     " bytes");
  }
}
}  // namespace

Model parse_model(std::string_view bytes) { return decode_top(bytes, kModelInfo, decode_model); }

TensorProto parse_tensor(std::string_view bytes) { return decode_top(bytes, kTensorInfo, decode_tensor); }

// ---- Files ----

MappedFile MappedFile::open(const std::string& path) {
  auto os_error = [&](const char* what) {
    return ParseError("cannot " + std::string(what) + " '" + path + "': " +
                      std::generic_category().message(errno));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw os_error("open");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};  // the mapping stays valid after close
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw os_error("stat");
  if (!S_ISREG(st.st_mode)) fail("cannot read '" + path + "': not a regular file");
  MappedFile file;
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) return file;  // mmap rejects length 0; an empty view is the right answer
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p != MAP_FAILED) {
    file.data_ = static_cast<const char*>(p);
    file.size_ = size;
    file.mapped_ = true;
    return file;
  }
  // Some filesystems cannot be mapped: read the whole file instead.
  file.buffer_.resize(size);
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, file.buffer_.data() + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw os_error("read");
    if (n == 0) break;  // file shrank while reading: keep what is there
    got += static_cast<size_t>(n);
  }
  file.buffer_.resize(got);
  file.data_ = file.buffer_.data();
  file.size_ = got;
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    buffer_ = std::move(other.buffer_);  // moving a vector keeps its heap block: data_ stays valid
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
  }
  return *this;
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() noexcept {
  if (mapped_) ::munmap(const_cast<char*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  buffer_.clear();
}

ModelFile::ModelFile(MappedFile file, std::string path)
    : file_(std::move(file)), path_(std::move(path)) {
  directory_ = std::filesystem::path(path_).parent_path().string();
  if (directory_.empty()) directory_ = ".";
  try {
    model_ = parse_model(file_.bytes());
  } catch (const ParseError& e) {
    fail(path_ + ": " + e.what());
  }
}

ModelFile load_model_file(const std::string& path) { return ModelFile(MappedFile::open(path), path); }

// ---- Tensor data ----

TensorData TensorData::view(std::string_view bytes) {
  TensorData d;
  d.view_ = bytes;
  return d;
}

TensorData TensorData::owned(std::vector<char> bytes) {
  TensorData d;
  d.buffer_ = std::move(bytes);
  d.owns_ = true;
  return d;
}

const MappedFile& ExternalDataCache::open(const std::string& resolved_path) {
  auto it = files_.find(resolved_path);
  if (it == files_.end()) it = files_.emplace(resolved_path, MappedFile::open(resolved_path)).first;
  return it->second;
}

namespace {

// Names and locations come from the file: escape control bytes so a message stays one readable
// line and an embedded NUL cannot cut what() short.
std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

std::string describe(const TensorProto& t) {
  return t.name.empty() ? std::string("unnamed tensor") : "tensor '" + printable(t.name) + "'";
}

std::string dims_string(const TensorProto& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.dims.size(); ++i) s += (i ? ", " : "") + std::to_string(t.dims[i]);
  return s + "]";
}

// Lexically resolves an external-data location under model_dir. Symlinks are deliberately not
// resolved: model caches (e.g. Hugging Face's) link data files from elsewhere on purpose.
std::string resolve_location(const TensorProto& t, std::string_view location, const std::string& model_dir) {
  const std::string where = describe(t) + ": external data location '" + printable(location) + "'";
  if (location.empty()) fail(describe(t) + ": external data has no location");
  if (location.find('\0') != std::string_view::npos) fail(where + " contains a NUL byte");
  if (location.front() == '/') fail(where + " is absolute; it must be relative to the model directory");
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= location.size()) {
    size_t end = location.find('/', start);
    if (end == std::string_view::npos) end = location.size();
    const std::string_view part = location.substr(start, end - start);
    if (part == "..") {
      if (parts.empty()) fail(where + " escapes the model directory");
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  if (parts.empty()) fail(where + " does not name a file");
  std::string path = model_dir.empty() ? std::string() : model_dir + "/";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) path += '/';
    path += parts[i];
  }
  return path;
}

uint64_t parse_decimal(const TensorProto& t, std::string_view key, std::string_view text) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end)
    fail(describe(t) + ": external data " + std::string(key) + " '" + printable(text) +
         "' is not a non-negative decimal integer that fits in 64 bits");
  return v;
}

std::string_view external_bytes(const TensorProto& t, const std::string& model_dir,
                                ExternalDataCache& cache, uint64_t expected) {
  std::string_view location, offset_text, length_text;
  bool has_offset = false, has_length = false;
  for (const StringStringEntryProto& e : t.external_data) {
    if (e.key == "location") location = e.value;
    else if (e.key == "offset") offset_text = e.value, has_offset = true;
    else if (e.key == "length") length_text = e.value, has_length = true;
    // "checksum" and unknown keys are ignored, as in the ONNX reference loader.
  }
  const std::string path = resolve_location(t, location, model_dir);
  const uint64_t offset = has_offset ? parse_decimal(t, "offset", offset_text) : 0;
  const uint64_t length = has_length ? parse_decimal(t, "length", length_text) : expected;
  std::string_view file;
  try {
    file = cache.open(path).bytes();
  } catch (const ParseError& e) {
    fail(describe(t) + ": " + e.what());
  }
  const std::string where = describe(t) + ": external data in '" + path + "' (" +
                            std::to_string(file.size()) + " bytes)";
  if (offset > file.size()) fail(where + ": offset " + std::to_string(offset) + " is beyond the end");
  if (length > file.size() - offset)  // no offset + length: that could overflow
    fail(where + ": offset " + std::to_string(offset) + " + length " + std::to_string(length) +
         " is beyond the end");
  return file.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
}

// Converts a typed repeated field to little-endian bytes, `width` bytes per stored value.
template <class T>
TensorData from_typed(const TensorProto& t, const char* field, const std::vector<T>& values,
                      size_t width, uint64_t expected) {
  const uint64_t needed = expected / width;
  if (values.size() != needed)
    fail(describe(t) + ": " + field + " has " + std::to_string(values.size()) + " values, but dims " +
         dims_string(t) + " of " + std::string(data_type_name(t.data_type)) + " need " +
         std::to_string(needed));
  const bool is_bool = t.data_type == static_cast<int32_t>(DataType::kBool);
  std::vector<char> out(static_cast<size_t>(expected));
  for (size_t i = 0; i < values.size(); ++i) {
    uint64_t bits;
    if constexpr (std::is_same_v<T, float>) bits = std::bit_cast<uint32_t>(values[i]);
    else if constexpr (std::is_same_v<T, double>) bits = std::bit_cast<uint64_t>(values[i]);
    else bits = static_cast<uint64_t>(values[i]);
    if (is_bool) bits = bits != 0;  // BOOL is one byte holding exactly 0 or 1
    for (size_t b = 0; b < width; ++b) out[i * width + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
  }
  return TensorData::owned(std::move(out));
}

}  // namespace

uint64_t tensor_element_count(const TensorProto& t) {
  uint64_t count = 1;
  for (int64_t d : t.dims) {
    if (d < 0) fail(describe(t) + ": negative dimension in dims " + dims_string(t));
    const auto ud = static_cast<uint64_t>(d);
    if (ud != 0 && count > std::numeric_limits<uint64_t>::max() / ud)
      fail(describe(t) + ": element count of dims " + dims_string(t) + " overflows 64 bits");
    count *= ud;
  }
  return count;
}

TensorData tensor_bytes(const TensorProto& t, const std::string& model_dir, ExternalDataCache& cache) {
  using DT = DataType;
  const auto dt = static_cast<DT>(t.data_type);
  if (dt == DT::kString) fail(describe(t) + ": STRING tensors have no raw bytes; read string_data");
  const int bits = data_type_bits(t.data_type);
  if (bits == 0)
    fail(describe(t) + ": unsupported data_type " + std::to_string(t.data_type) + " (" +
         std::string(data_type_name(t.data_type)) + ")");
  if (t.has_segment) fail(describe(t) + ": segmented tensors are not supported");
  const uint64_t count = tensor_element_count(t);
  const auto ubits = static_cast<uint64_t>(bits);
  // Sub-byte types pack from the low bits; the last byte may be partly used.
  if (count > (std::numeric_limits<uint64_t>::max() - 7) / ubits ||
      (count * ubits + 7) / 8 > std::numeric_limits<size_t>::max())
    fail(describe(t) + ": byte size of dims " + dims_string(t) + " overflows");
  const uint64_t expected = (count * ubits + 7) / 8;

  auto check = [&](std::string_view bytes, const char* source) {
    if (bytes.size() != expected)
      fail(describe(t) + ": " + source + " holds " + std::to_string(bytes.size()) + " bytes, but dims " +
           dims_string(t) + " of " + std::string(data_type_name(t.data_type)) + " need " +
           std::to_string(expected));
    return TensorData::view(bytes);
  };
  if (t.is_external()) return check(external_bytes(t, model_dir, cache, expected), "external data");
  if (t.has_raw_data) return check(t.raw_data, "raw_data");

  switch (dt) {
    case DT::kFloat:
    case DT::kComplex64: return from_typed(t, "float_data", t.float_data, 4, expected);
    case DT::kDouble:
    case DT::kComplex128: return from_typed(t, "double_data", t.double_data, 8, expected);
    case DT::kInt64: return from_typed(t, "int64_data", t.int64_data, 8, expected);
    case DT::kUint32: return from_typed(t, "uint64_data", t.uint64_data, 4, expected);
    case DT::kUint64: return from_typed(t, "uint64_data", t.uint64_data, 8, expected);
    default:
      // Everything else lives in int32_data: one element per value for 8/16/32-bit types
      // (float16/bfloat16/float8 as bit patterns), and for 4- and 2-bit types one packed byte
      // (two or four elements) per value.
      return from_typed(t, "int32_data", t.int32_data, bits >= 8 ? static_cast<size_t>(bits / 8) : 1,
                        expected);
  }
}

}  // namespace kiln::onnx
