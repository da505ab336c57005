// Kiln's basic vocabulary: data types, dimensions and the error type every layer throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

// Values match TensorRT's DataType so that Python scripts comparing ints keep working.
// Values >= 64 are Kiln's own (ONNX models use them); they are never GPU I/O types.
// Sub-byte types (4- and 2-bit) are stored unpacked, one element per byte, each byte holding the
// element's bits zero- or sign-extended (fp4: the 4-bit code in the low nibble); the ONNX parser
// unpacks them.
enum class DataType : int32_t {
  kFLOAT = 0,
  kHALF = 1,
  kINT8 = 2,
  kINT32 = 3,
  kBOOL = 4,
  kUINT8 = 5,
  kFP8 = 6,  // float8 E4M3FN (ONNX FLOAT8E4M3FN)
  kBF16 = 7,
  kINT64 = 8,
  kINT4 = 9,
  kFP4 = 10,  // float4 E2M1 (ONNX FLOAT4E2M1)
  kE8M0 = 11, // float8 E8M0, a power-of-two scale (ONNX FLOAT8E8M0)
  kDOUBLE = 64,
  kUINT16 = 65,
  kUINT32 = 66,
  kUINT64 = 67,
  kINT16 = 68,
  kFP8E5M2 = 69,
  kFP8E4M3FNUZ = 70,
  kFP8E5M2FNUZ = 71,
  kUINT4 = 72,
  kINT2 = 73,
  kUINT2 = 74,
};

size_t dtype_size(DataType t);        // bytes per element (sub-byte types: 1, packed storage is not used)
const char* dtype_name(DataType t);   // "float32", "float16", ...
bool dtype_is_float(DataType t);
bool dtype_is_valid(int32_t raw);

// Dimensions; -1 marks a dimension unknown until run time.
using Dims = std::vector<int64_t>;

// Product of dims; 1 for rank 0; -1 if any dim is unknown.
int64_t volume(const Dims& d);
bool dims_known(const Dims& d);
std::string dims_str(const Dims& d);  // "[1, 3, -1]"

// Every failure inside Kiln is a kiln::Error whose message names what is wrong.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace kiln
