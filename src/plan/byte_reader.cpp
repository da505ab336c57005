#include "plan/byte_reader.h"

#include <bit>
#include <cstdint>

namespace kiln::plan {

ByteReader::ByteReader(const uint8_t* data, size_t size, size_t base, std::string scope)
    : data_(data), size_(size), base_(base), scope_(std::move(scope)) {}

void ByteReader::need(size_t n, const char* what) const {
  if (n <= remaining()) return;
  std::string msg = "needed " + std::to_string(n) + " bytes for " + what + " at offset " + std::to_string(offset()) +
                    ", only " + std::to_string(remaining()) + " left";
  if (scope_.empty()) throw Error("plan is truncated: " + msg);
  throw Error("plan is malformed in " + scope_ + ": " + msg);
}

void ByteReader::fail(const std::string& msg) const { fail_at(offset(), msg); }

void ByteReader::fail_at(size_t file_offset, const std::string& msg) const {
  std::string where = " (at offset " + std::to_string(file_offset) + ")";
  if (scope_.empty()) throw Error("plan is corrupted: " + msg + where);
  throw Error("plan is malformed in " + scope_ + ": " + msg + where);
}

uint8_t ByteReader::u8(const char* what) {
  need(1, what);
  return data_[pos_++];
}

bool ByteReader::boolean(const char* what) {
  size_t at = offset();
  uint8_t v = u8(what);
  if (v > 1) fail_at(at, std::string(what) + " must be 0 or 1, got " + std::to_string(v));
  return v == 1;
}

uint32_t ByteReader::u32(const char* what) {
  need(4, what);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | data_[pos_ + i];
  pos_ += 4;
  return v;
}

uint64_t ByteReader::u64(const char* what) {
  need(8, what);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | data_[pos_ + i];
  pos_ += 8;
  return v;
}

double ByteReader::f64(const char* what) { return std::bit_cast<double>(u64(what)); }

std::string ByteReader::str(const char* what, size_t max_len) {
  size_t at = offset();
  uint32_t n = u32(what);
  if (n > max_len)
    fail_at(at, std::string(what) + " is " + std::to_string(n) + " bytes long, at most " + std::to_string(max_len) +
                    " allowed");
  const uint8_t* p = take(n, what);
  return std::string(reinterpret_cast<const char*>(p), n);
}

size_t ByteReader::count(const char* what, size_t min_bytes_each) {
  uint32_t n = u32(what);
  if (min_bytes_each && n > remaining() / min_bytes_each) {
    std::string msg = std::string(what) + " " + std::to_string(n) + " needs at least " +
                      std::to_string(static_cast<uint64_t>(n) * min_bytes_each) + " bytes at offset " +
                      std::to_string(offset()) + ", only " + std::to_string(remaining()) + " left";
    if (scope_.empty()) throw Error("plan is truncated: " + msg);
    throw Error("plan is malformed in " + scope_ + ": " + msg);
  }
  return n;
}

Dims ByteReader::dims(const char* what) {
  size_t rank = count(what, 8);
  Dims d(rank);
  for (auto& x : d) x = i64(what);
  return d;
}

DataType ByteReader::dtype(const char* what) {
  size_t at = offset();
  int32_t raw = i32(what);
  if (!dtype_is_valid(raw)) fail_at(at, std::string(what) + " is not a valid data type (" + std::to_string(raw) + ")");
  return static_cast<DataType>(raw);
}

const uint8_t* ByteReader::take(size_t n, const char* what) {
  need(n, what);
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

ByteReader ByteReader::sub(size_t n, const char* what, std::string scope) {
  size_t at = offset();
  const uint8_t* p = take(n, what);
  return ByteReader(p, n, at, std::move(scope));
}

void ByteReader::expect_end(const char* what) const {
  if (at_end()) return;
  fail(std::string(what) + " has " + std::to_string(remaining()) + " unread bytes at its end");
}

}  // namespace kiln::plan
