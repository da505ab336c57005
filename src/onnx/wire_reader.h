// A small, bounds-checked reader for the protobuf wire format.
//
// Kiln reads ONNX files without libprotobuf (see DESIGN.md: no protobuf version clashes inside
// Python processes that also load PyTorch or ONNX Runtime). This reader knows only the wire
// format; the ONNX schema lives in onnx_model.cpp.
//
// Properties the rest of Kiln relies on:
//   * Zero-copy: length-delimited payloads are std::string_view into the input buffer.
//   * Every read is bounds-checked; malformed input throws ParseError (never UB, never an assert).
//     Messages name the message, the field, the byte offset (from the start of the outermost
//     buffer) and the chain of enclosing fields, e.g.
//       "TensorProto.raw_data: length 4000 exceeds remaining 12 bytes at offset 345
//        (in ModelProto.graph > GraphProto.initializer > TensorProto)".
//   * Nesting is limited to kMaxNestingDepth messages so hostile input cannot overflow the stack.
//   * Groups (wire types 3 and 4, deprecated since proto2 and unused by ONNX) are rejected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::onnx {

// The only exception that escapes the ONNX parsing functions.
class ParseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class WireType : uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLen = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

std::string_view wire_type_name(WireType type);

// Names used only for error messages: a message's name and the names of its known fields.
struct FieldName {
  uint32_t number;
  std::string_view name;
};
struct MessageInfo {
  std::string_view name;
  std::span<const FieldName> fields;
  // The field's schema name, or "" when the number is not in the table.
  std::string_view field_name(uint32_t number) const;
};

// One decoded field. For kVarint/kFixed32/kFixed64 the value is in `scalar` (fixed types hold the
// raw little-endian bits); for kLen the payload is `bytes`.
struct Field {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t scalar = 0;
  std::string_view bytes;
  size_t offset = 0;          // absolute offset of the tag
  size_t payload_offset = 0;  // absolute offset of the value
};

// Deep enough for any real model (each subgraph level costs 3: graph > node > attribute), shallow
// enough that the recursive decoders stay far from the stack limit.
inline constexpr int kMaxNestingDepth = 64;

class WireReader {
 public:
  // Reads a top-level message occupying all of `message`.
  WireReader(std::string_view message, const MessageInfo& info);
  // Reads the embedded message in `field` (which must be kLen) of `parent`. The parent must outlive
  // the child: it is consulted to build error paths. Throws when nesting exceeds kMaxNestingDepth.
  WireReader(const WireReader& parent, const Field& field, const MessageInfo& info);

  // Decodes the next field into `out`, skipping nothing: unknown fields are returned like known
  // ones and a decoder skips them by ignoring them. Returns false at the end of the message.
  bool next(Field& out);

  // Typed values; each checks the wire type and throws ParseError on a mismatch.
  uint64_t uint64(const Field& f) const;
  int64_t int64(const Field& f) const;
  int32_t int32(const Field& f) const;  // truncates like protobuf: int32 is sign-extended on the wire
  float float32(const Field& f) const;
  double float64(const Field& f) const;
  std::string_view bytes(const Field& f) const;

  // Repeated scalars: accept one unpacked element or a packed run (a kLen payload), as protobuf
  // parsers must, whatever the .proto says about [packed].
  void append(const Field& f, std::vector<int64_t>& out) const;
  void append(const Field& f, std::vector<int32_t>& out) const;
  void append(const Field& f, std::vector<uint64_t>& out) const;
  void append(const Field& f, std::vector<float>& out) const;
  void append(const Field& f, std::vector<double>& out) const;

  // Throw a ParseError about field `f` of this message (for semantic errors found by decoders).
  [[noreturn]] void fail(const Field& f, std::string_view what) const;
  // Same, at an explicit absolute offset; field_number 0 means "not inside a field".
  [[noreturn]] void fail_at(size_t offset, uint32_t field_number, std::string_view what) const;

  const MessageInfo& info() const { return *info_; }
  int depth() const { return depth_; }
  // "ModelProto.graph > GraphProto.node > NodeProto": the chain of fields leading here.
  std::string path() const;

 private:
  void expect(const Field& f, WireType type) const;
  template <class T, class Decode>
  void append_packed(const Field& f, WireType element_type, size_t element_size, std::vector<T>& out,
                     Decode decode) const;

  std::string_view data_;
  size_t pos_ = 0;
  size_t base_ = 0;  // absolute offset of data_[0]
  const MessageInfo* info_;
  const WireReader* parent_ = nullptr;
  uint32_t parent_field_ = 0;
  int depth_ = 0;
};

}  // namespace kiln::onnx
