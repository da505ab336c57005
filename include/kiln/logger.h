// Logging interface: users implement ILogger (TensorRT's shape) and hand it to Builder/Runtime/parser.
#pragma once
#include <string>

namespace kiln {

enum class Severity : int32_t { kINTERNAL_ERROR = 0, kERROR = 1, kWARNING = 2, kINFO = 3, kVERBOSE = 4 };

const char* severity_name(Severity s);

class ILogger {
 public:
  virtual ~ILogger() = default;
  virtual void log(Severity severity, const char* msg) noexcept = 0;
};

// Prints messages at or above min_severity to stderr ("[W] message").
class StderrLogger : public ILogger {
 public:
  explicit StderrLogger(Severity min_severity = Severity::kWARNING) : min_(min_severity) {}
  void log(Severity severity, const char* msg) noexcept override;
  Severity min_severity() const { return min_; }
  void set_min_severity(Severity s) { min_ = s; }

 private:
  Severity min_;
};

// Convenience: forwards to logger when non-null.
void log_to(ILogger* logger, Severity s, const std::string& msg);

}  // namespace kiln
