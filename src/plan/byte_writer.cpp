#include "plan/byte_writer.h"

#include <bit>
#include <cstring>
#include <limits>

namespace kiln::plan {

void ByteWriter::u32(uint32_t v) {
  for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void ByteWriter::u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void ByteWriter::f64(double v) { u64(std::bit_cast<uint64_t>(v)); }

void ByteWriter::count(size_t n, const char* what) {
  if (n > std::numeric_limits<uint32_t>::max())
    throw Error(std::string("cannot write plan: ") + what + " has " + std::to_string(n) +
                " entries, more than a plan can hold (2^32 - 1)");
  u32(static_cast<uint32_t>(n));
}

void ByteWriter::str(const std::string& s, const char* what) {
  count(s.size(), what);
  raw(s.data(), s.size());
}

void ByteWriter::dims(const Dims& d) {
  count(d.size(), "a shape");
  for (int64_t x : d) i64(x);
}

void ByteWriter::raw(const void* p, size_t n) {
  if (n == 0) return;
  size_t at = buf_.size();
  buf_.resize(at + n);
  std::memcpy(buf_.data() + at, p, n);
}

void ByteWriter::pad_to(size_t alignment, size_t base) {
  size_t pos = base + buf_.size();
  size_t rem = pos % alignment;
  if (rem) zeros(alignment - rem);
}

void ByteWriter::patch_u32(size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) buf_.at(at + i) = static_cast<uint8_t>(v >> (8 * i));
}

void ByteWriter::patch_u64(size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) buf_.at(at + i) = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace kiln::plan
