// A tiny protobuf wire-format writer for building test inputs by hand, so the tests need neither
// libprotobuf nor checked-in binary fixtures. It writes whatever it is told, including invalid
// encodings, which is what the error-path tests need.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::onnx::test {

class ProtoWriter {
 public:
  static std::string varint_bytes(uint64_t v) {
    std::string out;
    while (v >= 0x80) {
      out += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out += static_cast<char>(v);
    return out;
  }

  ProtoWriter& tag(uint32_t field, uint32_t wire_type) {
    buf_ += varint_bytes((static_cast<uint64_t>(field) << 3) | wire_type);
    return *this;
  }
  ProtoWriter& varint(uint32_t field, uint64_t v) {
    tag(field, 0);
    buf_ += varint_bytes(v);
    return *this;
  }
  ProtoWriter& int64(uint32_t field, int64_t v) { return varint(field, static_cast<uint64_t>(v)); }
  // int32 is sign-extended to 64 bits on the wire, as protobuf does.
  ProtoWriter& int32(uint32_t field, int32_t v) { return int64(field, v); }
  ProtoWriter& fixed32(uint32_t field, uint32_t v) {
    tag(field, 5);
    put_le(v, 4);
    return *this;
  }
  ProtoWriter& fixed64(uint32_t field, uint64_t v) {
    tag(field, 1);
    put_le(v, 8);
    return *this;
  }
  ProtoWriter& float32(uint32_t field, float v) { return fixed32(field, std::bit_cast<uint32_t>(v)); }
  ProtoWriter& float64(uint32_t field, double v) { return fixed64(field, std::bit_cast<uint64_t>(v)); }
  ProtoWriter& bytes(uint32_t field, std::string_view v) {
    tag(field, 2);
    buf_ += varint_bytes(v.size());
    buf_ += v;
    return *this;
  }
  ProtoWriter& message(uint32_t field, const ProtoWriter& m) { return bytes(field, m.str()); }

  // Packed repeated fields: one LEN field holding the concatenated elements.
  template <class T>
  ProtoWriter& packed_varints(uint32_t field, const std::vector<T>& values) {
    std::string payload;
    for (T v : values) payload += varint_bytes(static_cast<uint64_t>(static_cast<int64_t>(v)));
    return bytes(field, payload);
  }
  ProtoWriter& packed_floats(uint32_t field, const std::vector<float>& values) {
    ProtoWriter p;
    for (float v : values) p.put_le(std::bit_cast<uint32_t>(v), 4);
    return bytes(field, p.str());
  }
  ProtoWriter& packed_doubles(uint32_t field, const std::vector<double>& values) {
    ProtoWriter p;
    for (double v : values) p.put_le(std::bit_cast<uint64_t>(v), 8);
    return bytes(field, p.str());
  }

  ProtoWriter& raw(std::string_view bytes) {
    buf_ += bytes;
    return *this;
  }
  const std::string& str() const { return buf_; }
  size_t size() const { return buf_.size(); }

 private:
  void put_le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) buf_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string buf_;
};

}  // namespace kiln::onnx::test
