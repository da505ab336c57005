// Bounds-checked little-endian input primitives for the plan reader (layout: plan/plan_format.h).
//
// Every read checks the bytes left first and throws kiln::Error instead of reading past the end, e.g.
//   "plan is truncated: needed 8 bytes for payload size at offset 40, only 3 left"
// (or, in a reader with a scope, "plan is malformed in section GRPH: needed ... only 3 left").
// Counts are checked against the bytes left (count x smallest encoded element) before the caller
// allocates anything, so a corrupted length cannot cause a huge allocation. Offsets in messages are
// file offsets.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/types.h"

namespace kiln::plan {

class ByteReader {
 public:
  // `base` is the file offset of data[0]; `scope` is "" for the whole file (errors say "plan is truncated"
  // or "plan is corrupted"), otherwise what the bytes are (errors say "plan is malformed in <scope>").
  ByteReader(const uint8_t* data, size_t size, size_t base = 0, std::string scope = "");

  size_t offset() const { return base_ + pos_; }  // file offset of the next byte
  size_t remaining() const { return size_ - pos_; }
  bool at_end() const { return pos_ == size_; }
  const uint8_t* cursor() const { return data_ + pos_; }

  uint8_t u8(const char* what);
  bool boolean(const char* what);  // a u8 that must be 0 or 1
  uint32_t u32(const char* what);
  int32_t i32(const char* what) { return static_cast<int32_t>(u32(what)); }
  uint64_t u64(const char* what);
  int64_t i64(const char* what) { return static_cast<int64_t>(u64(what)); }
  double f64(const char* what);
  // u32 length + bytes; lengths above max_len are refused.
  std::string str(const char* what, size_t max_len = SIZE_MAX);
  // A u32 element count, checked so that count * min_bytes_each bytes are still left.
  size_t count(const char* what, size_t min_bytes_each);
  Dims dims(const char* what);
  DataType dtype(const char* what);  // refuses values dtype_is_valid() rejects
  // Returns a pointer to the next n bytes and skips them.
  const uint8_t* take(size_t n, const char* what);
  // A reader over the next n bytes (skipped here), with its own scope for messages.
  ByteReader sub(size_t n, const char* what, std::string scope);
  // Throws unless every byte has been read.
  void expect_end(const char* what) const;

  // Throws kiln::Error "plan is corrupted: msg (at offset N)" or "plan is malformed in <scope>: msg (...)".
  [[noreturn]] void fail(const std::string& msg) const;
  [[noreturn]] void fail_at(size_t file_offset, const std::string& msg) const;

 private:
  void need(size_t n, const char* what) const;

  const uint8_t* data_;
  size_t size_;
  size_t base_;
  size_t pos_ = 0;
  std::string scope_;
};

}  // namespace kiln::plan
