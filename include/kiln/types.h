// Kiln's basic vocabulary: data types, dimensions and the error type every layer throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

// Values match TensorRT's DataType so that Python scripts comparing ints keep working.
// kDOUBLE is Kiln's own (ONNX models use it); it is never a GPU I/O type.
enum class DataType : int32_t {
  kFLOAT = 0,
  kHALF = 1,
  kINT8 = 2,
  kINT32 = 3,
  kBOOL = 4,
  kUINT8 = 5,
  kFP8 = 6,
  kBF16 = 7,
  kINT64 = 8,
  kINT4 = 9,
  kDOUBLE = 64,
};

size_t dtype_size(DataType t);        // bytes per element (kINT4: 1, packed storage is not used)
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
