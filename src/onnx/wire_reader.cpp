#include "onnx/wire_reader.h"

#include <bit>
#include <cstring>

namespace kiln::onnx {
namespace {

enum class VarintStatus { kOk, kTruncated, kTooLong };

// Base-128 varint, at most 10 bytes. A 10th byte above 1 would set bits beyond 64; protobuf
// writers never emit that, so it is treated as corruption rather than silently truncated.
VarintStatus decode_varint(std::string_view data, size_t& pos, uint64_t& out) {
  uint64_t value = 0;
  for (size_t i = 0; i < 10; ++i) {
    if (i >= data.size() - pos) return VarintStatus::kTruncated;  // pos <= size always holds
    const auto byte = static_cast<uint8_t>(data[pos + i]);
    if (i == 9 && byte > 1) return VarintStatus::kTooLong;
    value |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      pos += i + 1;
      out = value;
      return VarintStatus::kOk;
    }
  }
  return VarintStatus::kTooLong;
}

// Little-endian load assembled byte by byte: no alignment or aliasing assumptions, and correct on
// any host; compilers turn it into a single load.
uint64_t load_le(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

const char* varint_problem(VarintStatus s) {
  return s == VarintStatus::kTruncated ? "truncated varint" : "varint longer than 10 bytes";
}

}  // namespace

std::string_view wire_type_name(WireType type) {
  switch (type) {
    case WireType::kVarint: return "VARINT";
    case WireType::kFixed64: return "I64";
    case WireType::kLen: return "LEN";
    case WireType::kStartGroup: return "SGROUP";
    case WireType::kEndGroup: return "EGROUP";
    case WireType::kFixed32: return "I32";
  }
  return "INVALID";
}

std::string_view MessageInfo::field_name(uint32_t number) const {
  for (const FieldName& f : fields)
    if (f.number == number) return f.name;
  return {};
}

WireReader::WireReader(std::string_view message, const MessageInfo& info)
    : data_(message), info_(&info) {}

WireReader::WireReader(const WireReader& parent, const Field& field, const MessageInfo& info)
    : data_(field.bytes),
      base_(field.payload_offset),
      info_(&info),
      parent_(&parent),
      parent_field_(field.number),
      depth_(parent.depth_ + 1) {
  parent.expect(field, WireType::kLen);
  if (depth_ > kMaxNestingDepth)
    parent.fail(field, "messages nested deeper than " + std::to_string(kMaxNestingDepth) + " levels");
}

bool WireReader::next(Field& out) {
  if (pos_ >= data_.size()) return false;
  out = Field{};
  out.offset = base_ + pos_;
  uint64_t tag = 0;
  if (auto s = decode_varint(data_, pos_, tag); s != VarintStatus::kOk)
    fail_at(out.offset, 0, std::string(varint_problem(s)) + " in field tag");
  if (tag > 0xffffffffu) fail_at(out.offset, 0, "field tag does not fit in 32 bits");
  out.number = static_cast<uint32_t>(tag >> 3);
  const auto wire = static_cast<uint8_t>(tag & 7);
  if (out.number == 0) fail_at(out.offset, 0, "field number 0 is invalid");
  out.type = static_cast<WireType>(wire);
  out.payload_offset = base_ + pos_;
  const size_t remaining = data_.size() - pos_;
  switch (out.type) {
    case WireType::kVarint:
      if (auto s = decode_varint(data_, pos_, out.scalar); s != VarintStatus::kOk)
        fail_at(out.payload_offset, out.number, varint_problem(s));
      return true;
    case WireType::kFixed64:
    case WireType::kFixed32: {
      const size_t n = out.type == WireType::kFixed64 ? 8 : 4;
      if (remaining < n)
        fail_at(out.payload_offset, out.number,
                "truncated " + std::string(wire_type_name(out.type)) + ": needs " + std::to_string(n) +
                    " bytes, " + std::to_string(remaining) + " remain");
      out.scalar = load_le(data_.data() + pos_, n);
      pos_ += n;
      return true;
    }
    case WireType::kLen: {
      uint64_t len = 0;
      if (auto s = decode_varint(data_, pos_, len); s != VarintStatus::kOk)
        fail_at(out.payload_offset, out.number, std::string(varint_problem(s)) + " in length");
      // Compare before adding: offset + length arithmetic can never overflow.
      if (len > data_.size() - pos_)
        fail_at(out.payload_offset, out.number,
                "length " + std::to_string(len) + " exceeds remaining " +
                    std::to_string(data_.size() - pos_) + " bytes");
      out.payload_offset = base_ + pos_;
      out.bytes = data_.substr(pos_, static_cast<size_t>(len));
      pos_ += static_cast<size_t>(len);
      return true;
    }
    case WireType::kStartGroup:
    case WireType::kEndGroup:
      fail_at(out.offset, out.number, "group wire types (3, 4) are not supported");
  }
  fail_at(out.offset, out.number, "invalid wire type " + std::to_string(wire));
}

void WireReader::expect(const Field& f, WireType type) const {
  if (f.type != type)
    fail(f, "expected wire type " + std::string(wire_type_name(type)) + ", got " +
                std::string(wire_type_name(f.type)));
}

uint64_t WireReader::uint64(const Field& f) const {
  expect(f, WireType::kVarint);
  return f.scalar;
}
int64_t WireReader::int64(const Field& f) const { return static_cast<int64_t>(uint64(f)); }
int32_t WireReader::int32(const Field& f) const {
  return static_cast<int32_t>(static_cast<uint32_t>(uint64(f)));  // modular in C++20
}
float WireReader::float32(const Field& f) const {
  expect(f, WireType::kFixed32);
  return std::bit_cast<float>(static_cast<uint32_t>(f.scalar));
}
double WireReader::float64(const Field& f) const {
  expect(f, WireType::kFixed64);
  return std::bit_cast<double>(f.scalar);
}
std::string_view WireReader::bytes(const Field& f) const {
  expect(f, WireType::kLen);
  return f.bytes;
}

template <class T, class Decode>
void WireReader::append_packed(const Field& f, WireType element_type, size_t element_size,
                               std::vector<T>& out, Decode decode) const {
  if (f.type == element_type) {
    out.push_back(decode(f.scalar));
    return;
  }
  if (f.type != WireType::kLen)
    fail(f, "expected wire type " + std::string(wire_type_name(element_type)) + " or packed LEN, got " +
                std::string(wire_type_name(f.type)));
  const std::string_view payload = f.bytes;
  if (element_size != 0) {  // fixed-width elements
    if (payload.size() % element_size != 0)
      fail(f, "packed length " + std::to_string(payload.size()) + " is not a multiple of " +
                  std::to_string(element_size));
    out.reserve(out.size() + payload.size() / element_size);
    for (size_t i = 0; i < payload.size(); i += element_size)
      out.push_back(decode(load_le(payload.data() + i, element_size)));
    return;
  }
  // Varints: every element ends in exactly one byte without the continuation bit, so counting
  // those bytes sizes the vector without trusting anything but the (bounds-checked) payload.
  size_t count = 0;
  for (char c : payload) count += (static_cast<uint8_t>(c) & 0x80) == 0;
  out.reserve(out.size() + count);
  size_t pos = 0;
  while (pos < payload.size()) {
    const size_t at = pos;
    uint64_t v = 0;
    if (auto s = decode_varint(payload, pos, v); s != VarintStatus::kOk)
      fail_at(f.payload_offset + at, f.number, std::string(varint_problem(s)) + " in packed field");
    out.push_back(decode(v));
  }
}

void WireReader::append(const Field& f, std::vector<int64_t>& out) const {
  append_packed(f, WireType::kVarint, 0, out, [](uint64_t v) { return static_cast<int64_t>(v); });
}
void WireReader::append(const Field& f, std::vector<int32_t>& out) const {
  append_packed(f, WireType::kVarint, 0, out,
                [](uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); });
}
void WireReader::append(const Field& f, std::vector<uint64_t>& out) const {
  append_packed(f, WireType::kVarint, 0, out, [](uint64_t v) { return v; });
}
void WireReader::append(const Field& f, std::vector<float>& out) const {
  append_packed(f, WireType::kFixed32, 4, out,
                [](uint64_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v)); });
}
void WireReader::append(const Field& f, std::vector<double>& out) const {
  append_packed(f, WireType::kFixed64, 8, out, [](uint64_t v) { return std::bit_cast<double>(v); });
}

std::string WireReader::path() const {
  // Walk to the root first so the path reads outermost to innermost.
  std::vector<const WireReader*> chain;
  for (const WireReader* r = this; r != nullptr; r = r->parent_) chain.push_back(r);
  std::string out;
  for (size_t i = chain.size(); i-- > 0;) {
    const WireReader* r = chain[i];
    if (r->parent_ != nullptr) {
      const std::string_view name = r->parent_->info_->field_name(r->parent_field_);
      out += '.';
      out += name.empty() ? "field " + std::to_string(r->parent_field_) : std::string(name);
      out += " > ";
    }
    out += r->info_->name;
  }
  return out;
}

void WireReader::fail(const Field& f, std::string_view what) const {
  fail_at(f.offset, f.number, what);
}

void WireReader::fail_at(size_t offset, uint32_t field_number, std::string_view what) const {
  std::string msg(info_->name);
  if (field_number != 0) {
    const std::string_view name = info_->field_name(field_number);
    msg += '.';
    msg += name.empty() ? "field " + std::to_string(field_number) : std::string(name);
  }
  msg += ": ";
  msg += what;
  msg += " at offset " + std::to_string(offset);
  if (parent_ != nullptr) msg += " (in " + path() + ")";
  throw ParseError(msg);
}

}  // namespace kiln::onnx
