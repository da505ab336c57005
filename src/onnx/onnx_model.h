// Plain C++ structs for the parts of the ONNX schema (onnx/onnx.proto) that Kiln imports, decoded
// by Kiln's own wire reader (no libprotobuf), plus file loading and tensor-data access.
//
// LIFETIME: every std::string_view in these structs (names, raw_data, attribute strings, ...)
// points into the byte buffer passed to parse_model(). That buffer must outlive the structs.
// load_model_file() bundles the buffer (a read-only memory map) with the Model so this holds.
//
// Decoding follows protobuf semantics: unknown fields are skipped (newer ONNX versions add
// fields), repeated scalars are accepted packed or unpacked, a singular message field that occurs
// twice is merged, and for scalars the last value wins. Kiln is stricter than protobuf in one
// way: a known field with the wrong wire type is an error rather than an unknown field.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "onnx/wire_reader.h"

namespace kiln::onnx {

// TensorProto.DataType. Fields holding a data type stay int32_t: files may carry values newer
// than this list, and the importer reports them by number.
enum class DataType : int32_t {
  kUndefined = 0, kFloat = 1, kUint8 = 2, kInt8 = 3, kUint16 = 4, kInt16 = 5, kInt32 = 6,
  kInt64 = 7, kString = 8, kBool = 9, kFloat16 = 10, kDouble = 11, kUint32 = 12, kUint64 = 13,
  kComplex64 = 14, kComplex128 = 15, kBfloat16 = 16, kFloat8E4M3FN = 17, kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19, kFloat8E5M2FNUZ = 20, kUint4 = 21, kInt4 = 22, kFloat4E2M1 = 23,
  kFloat8E8M0 = 24, kUint2 = 25, kInt2 = 26,
};

// Bits per element (4 for INT4, 64 for COMPLEX64, 128 for COMPLEX128); 0 for UNDEFINED, STRING
// and unknown values.
int data_type_bits(int32_t data_type);
// Bytes per element; 0 for sub-byte types, UNDEFINED, STRING and unknown values.
size_t data_type_size(int32_t data_type);
// "FLOAT", "BFLOAT16", ...; "UNKNOWN" for values not in the list.
std::string_view data_type_name(int32_t data_type);

struct StringStringEntryProto {
  std::string_view key;
  std::string_view value;
};

struct OperatorSetIdProto {
  std::string_view domain;  // "" (or "ai.onnx") is the default ONNX domain
  int64_t version = 0;
};

struct TensorProto {
  enum DataLocation : int32_t { kDefault = 0, kExternal = 1 };

  std::vector<int64_t> dims;
  int32_t data_type = 0;  // a DataType value
  bool has_segment = false;
  int64_t segment_begin = 0;
  int64_t segment_end = 0;
  std::vector<float> float_data;
  std::vector<int32_t> int32_data;
  std::vector<std::string_view> string_data;
  std::vector<int64_t> int64_data;
  std::string_view name;
  std::string_view doc_string;
  bool has_raw_data = false;  // distinguishes an empty raw_data from an absent one
  std::string_view raw_data;  // NOT aligned: copy or memcpy before typed access
  std::vector<double> double_data;
  std::vector<uint64_t> uint64_data;
  std::vector<StringStringEntryProto> external_data;
  int32_t data_location = kDefault;

  bool is_external() const { return data_location == kExternal; }
};

struct TensorShapeProto {
  struct Dimension {
    enum Kind : uint8_t { kUnknown, kValue, kParam };  // kUnknown: neither set
    Kind kind = kUnknown;
    int64_t value = 0;
    std::string_view param;
    std::string_view denotation;
  };
  std::vector<Dimension> dim;
};

// TypeProto. Only tensor types are decoded in full; the others are recorded by kind (their inner
// types are skipped, bounds-checked but not decoded) so an importer can say what it met.
struct TypeProto {
  enum Kind : uint8_t {
    kNone,          // no value set
    kTensor,        // tensor_type = 1
    kSequence,      // sequence_type = 4
    kMap,           // map_type = 5
    kOpaque,        // opaque_type = 7 (onnx-ml)
    kSparseTensor,  // sparse_tensor_type = 8
    kOptional,      // optional_type = 9
  };
  Kind kind = kNone;
  int32_t elem_type = 0;  // tensor (and sparse tensor) element type
  bool has_shape = false;  // absent shape = unknown rank; present with no dims = scalar
  TensorShapeProto shape;
  std::string_view denotation;

  bool is_tensor() const { return kind == kTensor; }
};

struct ValueInfoProto {
  std::string_view name;
  bool has_type = false;
  TypeProto type;
  std::string_view doc_string;
};

struct GraphProto;

// AttributeProto.AttributeType.
enum class AttributeType : int32_t {
  kUndefined = 0, kFloat = 1, kInt = 2, kString = 3, kTensor = 4, kGraph = 5, kFloats = 6,
  kInts = 7, kStrings = 8, kTensors = 9, kGraphs = 10, kSparseTensor = 11, kSparseTensors = 12,
  kTypeProto = 13, kTypeProtos = 14,
};

struct AttributeProto {
  std::string_view name;
  std::string_view ref_attr_name;  // set only inside function bodies
  std::string_view doc_string;
  // The declared type. When a file omits it (IR version 1), it is inferred from the value field
  // present. Sparse-tensor and type-proto values are not decoded: an importer that meets
  // kSparseTensor(s)/kTypeProto(s) must report them as unsupported.
  AttributeType type = AttributeType::kUndefined;
  float f = 0.0f;
  int64_t i = 0;
  std::string_view s;
  // t and g are pointers: g because of the recursion graph > node > attribute > graph, t to keep
  // AttributeProto small (hostile input can hold millions of 2-byte attributes). Shared so the
  // structs stay copyable. Treat as read-only once parsed; null when absent.
  std::shared_ptr<TensorProto> t;
  std::shared_ptr<GraphProto> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string_view> strings;
  std::vector<TensorProto> tensors;
  std::vector<GraphProto> graphs;
};

struct NodeProto {
  std::vector<std::string_view> input;  // "" marks an omitted optional input
  std::vector<std::string_view> output;
  std::string_view name;
  std::string_view op_type;
  std::string_view domain;
  std::vector<AttributeProto> attribute;
  std::string_view doc_string;
};

// sparse_initializer is rejected with a ParseError; quantization_annotation is skipped.
struct GraphProto {
  std::vector<NodeProto> node;
  std::string_view name;
  std::vector<TensorProto> initializer;
  std::string_view doc_string;
  std::vector<ValueInfoProto> input;
  std::vector<ValueInfoProto> output;
  std::vector<ValueInfoProto> value_info;
};

// metadata_props, training_info and functions are skipped.
struct ModelProto {
  int64_t ir_version = 0;
  std::vector<OperatorSetIdProto> opset_import;
  std::string_view producer_name;
  std::string_view producer_version;
  std::string_view domain;
  int64_t model_version = 0;
  std::string_view doc_string;
  bool has_graph = false;
  GraphProto graph;
};
using Model = ModelProto;

// Decodes a serialized ModelProto. Throws ParseError on malformed input, and on memory
// exhaustion (decoded structs can be ~100x the input for hostile input made of empty messages).
// Performs no ONNX-level validation (missing graph, unknown ops...): that is the importer's job.
Model parse_model(std::string_view bytes);
// Decodes a serialized TensorProto (the .pb files of the ONNX backend test data sets).
TensorProto parse_tensor(std::string_view bytes);

// A read-only file: memory-mapped, or read into memory where mapping fails. Move-only; the bytes
// keep their address across moves, so views into them stay valid.
class MappedFile {
 public:
  // Throws ParseError naming the path and the OS error.
  static MappedFile open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::string_view bytes() const { return {data_, size_}; }
  bool is_mapped() const { return mapped_; }

 private:
  void release() noexcept;
  const char* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;      // true: munmap on release; false: data_ is in buffer_ (or empty)
  std::vector<char> buffer_;  // fallback when mmap is unavailable
};

// A parsed model together with the mapping its string_views point into. Move-only.
class ModelFile {
 public:
  ModelFile(MappedFile file, std::string path);
  ModelFile(ModelFile&&) noexcept = default;
  ModelFile& operator=(ModelFile&&) noexcept = default;
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;

  const Model& model() const { return model_; }
  std::string_view bytes() const { return file_.bytes(); }
  const std::string& path() const { return path_; }
  // The directory external-data locations are relative to ("." for a bare file name).
  const std::string& directory() const { return directory_; }

 private:
  MappedFile file_;  // declared first: outlives model_, whose views point into it
  std::string path_;
  std::string directory_;
  Model model_;
};

// Maps `path` read-only and parses it. Throws ParseError (I/O errors included).
ModelFile load_model_file(const std::string& path);

// The raw little-endian bytes of a tensor: a view (raw_data or external data) or an owned buffer
// (converted from the typed repeated fields). Views are NOT aligned to the element size.
class TensorData {
 public:
  TensorData() = default;
  static TensorData view(std::string_view bytes);
  static TensorData owned(std::vector<char> bytes);

  std::string_view bytes() const { return owns_ ? std::string_view(buffer_.data(), buffer_.size()) : view_; }
  const void* data() const { return bytes().data(); }
  size_t size() const { return bytes().size(); }
  bool owns() const { return owns_; }

 private:
  std::string_view view_;
  std::vector<char> buffer_;
  bool owns_ = false;
};

// Keeps each external data file mapped once, keyed by its resolved path. Views returned by
// tensor_bytes() point into these mappings: the cache must outlive them. Not thread-safe.
class ExternalDataCache {
 public:
  const MappedFile& open(const std::string& resolved_path);
  size_t size() const { return files_.size(); }

 private:
  std::unordered_map<std::string, MappedFile> files_;
};

// Number of elements implied by dims; throws ParseError for negative dims or overflow.
uint64_t tensor_element_count(const TensorProto& tensor);

// Returns the tensor's bytes, checked against dims x data_type. Sources, in ONNX's order of
// precedence: external data (data_location EXTERNAL; location relative to model_dir, which must
// not escape it), raw_data, then the typed field for data_type. Throws ParseError for STRING and
// segmented tensors, size mismatches, bad external-data locations, offsets or lengths.
TensorData tensor_bytes(const TensorProto& tensor, const std::string& model_dir, ExternalDataCache& cache);

}  // namespace kiln::onnx
