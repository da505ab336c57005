// NumPy files for the command line: .npy (format versions 1, 2 and 3) and .npz archives (zip files).
//
// Supported element types (any byte order on reading, little-endian on writing):
//   f2 -> kHALF   f4 -> kFLOAT   f8 -> kDOUBLE   i1 -> kINT8   u1 -> kUINT8   i4 -> kINT32   i8 -> kINT64
//   b1 -> kBOOL
// Fortran-ordered arrays are converted to C order on reading; arrays are always written in C order.
// .npz entries may be stored (zip method 0) or, when Kiln was built with zlib, deflated (method 8);
// archives are always written stored, like numpy.savez.
//
// Every malformed, truncated or unsupported input throws kiln::Error naming the file (or archive entry)
// and what is wrong; nothing reads outside the bytes given and nothing allocates more than the bytes
// given can describe (deflated entries: at most what deflate's maximum ratio allows).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/types.h"

namespace kiln::npy {

struct Array {
  DataType dtype = DataType::kFLOAT;
  Dims shape;                  // C order; empty for a 0-d array
  std::vector<uint8_t> data;   // numel * dtype_size(dtype) bytes, C order, little-endian

  Array() = default;
  Array(DataType dt, Dims s);  // zero-filled
  int64_t numel() const { return volume(shape); }
  size_t nbytes() const { return data.size(); }
};

// A named array of an .npz archive; the name is the entry name without its ".npy" suffix.
using NamedArray = std::pair<std::string, Array>;

// True when `dt` has a .npy equivalent ("<f4", ...).
bool dtype_supported(DataType dt);
// The .npy descr ("<f4", "|b1", ...); throws for dtypes without one.
std::string dtype_descr(DataType dt);

// `what` names the source in error messages (a file name, "archive.npz:entry.npy").
Array parse_npy(const void* data, size_t size, const std::string& what);
std::vector<uint8_t> serialize_npy(const Array& a);

std::vector<NamedArray> parse_npz(const void* data, size_t size, const std::string& what);
std::vector<uint8_t> serialize_npz(const std::vector<NamedArray>& arrays);

// True when zip entries compressed with deflate can be read (Kiln was built with zlib).
bool deflate_supported();

// File helpers: whole-file reads and writes with errors naming the path.
std::vector<uint8_t> read_file(const std::string& path);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);

Array load_npy(const std::string& path);
void save_npy(const std::string& path, const Array& a);
std::vector<NamedArray> load_npz(const std::string& path);
void save_npz(const std::string& path, const std::vector<NamedArray>& arrays);

}  // namespace kiln::npy
