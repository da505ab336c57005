#include "kiln/types.h"

#include <cstdio>

#include "kiln/logger.h"

namespace kiln {

size_t dtype_size(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return 4;
    case DataType::kHALF: return 2;
    case DataType::kINT8: return 1;
    case DataType::kINT32: return 4;
    case DataType::kBOOL: return 1;
    case DataType::kUINT8: return 1;
    case DataType::kFP8: return 1;
    case DataType::kBF16: return 2;
    case DataType::kINT64: return 8;
    case DataType::kINT4: return 1;
    case DataType::kFP4: return 1;
    case DataType::kE8M0: return 1;
    case DataType::kDOUBLE: return 8;
    case DataType::kUINT16: return 2;
    case DataType::kUINT32: return 4;
    case DataType::kUINT64: return 8;
    case DataType::kINT16: return 2;
    case DataType::kFP8E5M2: return 1;
    case DataType::kFP8E4M3FNUZ: return 1;
    case DataType::kFP8E5M2FNUZ: return 1;
    case DataType::kUINT4: return 1;
    case DataType::kINT2: return 1;
    case DataType::kUINT2: return 1;
  }
  throw Error("unknown DataType " + std::to_string(static_cast<int>(t)));
}

const char* dtype_name(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return "float32";
    case DataType::kHALF: return "float16";
    case DataType::kINT8: return "int8";
    case DataType::kINT32: return "int32";
    case DataType::kBOOL: return "bool";
    case DataType::kUINT8: return "uint8";
    case DataType::kFP8: return "fp8";
    case DataType::kBF16: return "bfloat16";
    case DataType::kINT64: return "int64";
    case DataType::kINT4: return "int4";
    case DataType::kFP4: return "fp4";
    case DataType::kE8M0: return "e8m0";
    case DataType::kDOUBLE: return "float64";
    case DataType::kUINT16: return "uint16";
    case DataType::kUINT32: return "uint32";
    case DataType::kUINT64: return "uint64";
    case DataType::kINT16: return "int16";
    case DataType::kFP8E5M2: return "fp8e5m2";
    case DataType::kFP8E4M3FNUZ: return "fp8e4m3fnuz";
    case DataType::kFP8E5M2FNUZ: return "fp8e5m2fnuz";
    case DataType::kUINT4: return "uint4";
    case DataType::kINT2: return "int2";
    case DataType::kUINT2: return "uint2";
  }
  return "invalid";
}

bool dtype_is_float(DataType t) {
  switch (t) {
    case DataType::kFLOAT:
    case DataType::kHALF:
    case DataType::kBF16:
    case DataType::kFP8:
    case DataType::kFP4:
    case DataType::kE8M0:
    case DataType::kDOUBLE:
    case DataType::kFP8E5M2:
    case DataType::kFP8E4M3FNUZ:
    case DataType::kFP8E5M2FNUZ: return true;
    default: return false;
  }
}

bool dtype_is_valid(int32_t raw) { return (raw >= 0 && raw <= 11) || (raw >= 64 && raw <= 74); }

int64_t volume(const Dims& d) {
  int64_t v = 1;
  for (int64_t x : d) {
    if (x < 0) return -1;
    v *= x;
  }
  return v;
}

bool dims_known(const Dims& d) {
  for (int64_t x : d)
    if (x < 0) return false;
  return true;
}

std::string dims_str(const Dims& d) {
  // String appends, not an ostringstream: iostream number formatting depends on the process's C++ locale,
  // which a host application owns (see backends/cuda/nvrtc/source_writer.h).
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s.append(i ? ", " : "").append(std::to_string(d[i]));
  return s + "]";
}

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::kINTERNAL_ERROR: return "F";
    case Severity::kERROR: return "E";
    case Severity::kWARNING: return "W";
    case Severity::kINFO: return "I";
    case Severity::kVERBOSE: return "V";
  }
  return "?";
}

void StderrLogger::log(Severity severity, const char* msg) noexcept {
  if (static_cast<int>(severity) > static_cast<int>(min_)) return;
  std::fprintf(stderr, "[%s] %s\n", severity_name(severity), msg);
}

void log_to(ILogger* logger, Severity s, const std::string& msg) {
  if (logger) logger->log(s, msg.c_str());
}

}  // namespace kiln
