// Little-endian output primitives for the plan writer (layout: plan/plan_format.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/types.h"

namespace kiln::plan {

class ByteWriter {
 public:
  size_t size() const { return buf_.size(); }
  const std::vector<uint8_t>& bytes() const { return buf_; }
  std::vector<uint8_t> take() { return std::move(buf_); }
  void reserve(size_t n) { buf_.reserve(n); }

  void u8(uint8_t v) { buf_.push_back(v); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void u32(uint32_t v);
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void u64(uint64_t v);
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f64(double v);
  // A count or length stored as u32; throws kiln::Error naming `what` when it does not fit.
  void count(size_t n, const char* what);
  void str(const std::string& s, const char* what = "string");
  void dims(const Dims& d);
  void dtype(DataType t) { i32(static_cast<int32_t>(t)); }
  void raw(const void* p, size_t n);
  void zeros(size_t n) { buf_.resize(buf_.size() + n, 0); }
  // Appends zeros until size() + base is a multiple of `alignment`.
  void pad_to(size_t alignment, size_t base = 0);

  // Overwrite previously written fields.
  void patch_u32(size_t at, uint32_t v);
  void patch_u64(size_t at, uint64_t v);

 private:
  std::vector<uint8_t> buf_;
};

}  // namespace kiln::plan
