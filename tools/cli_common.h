// Shared pieces of the `kiln` command line: argument parsing, the stderr logger, number/shape parsing and
// formatting, and the verbs' entry points (one file per verb: cmd_build.cpp, cmd_run.cpp, cmd_inspect.cpp).
//
// Conventions: results go to stdout, diagnostics to stderr. A verb returns its exit code: 0 success,
// 1 failure (the reason printed), 2 usage error (UsageError thrown, main prints it with a hint).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kiln/logger.h"
#include "kiln/types.h"

namespace kiln::cli {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Bad command line: main prints the message and "see 'kiln VERB --help'", and exits with 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A small getopt-like parser. Options are declared by their names ("-o,--output" or "--fp16"); every
// option is looked up by its long name. Accepts "--name value", "--name=value", "-o value", "--" (the
// rest is positional). -h/--help is always declared.
class ArgParser {
 public:
  explicit ArgParser(std::string verb);
  void flag(const std::string& names);                            // takes no value
  void option(const std::string& names, bool repeatable = false);  // takes one value
  // Throws UsageError on unknown options, missing values and non-repeatable options given twice.
  void parse(const std::vector<std::string>& args);

  bool has(const std::string& long_name) const;
  std::string get(const std::string& long_name, const std::string& fallback = "") const;
  const std::vector<std::string>& all(const std::string& long_name) const;  // every value, in order
  const std::vector<std::string>& positional() const { return positional_; }
  bool help() const { return has("--help"); }
  bool verbose() const { return has("--verbose"); }

 private:
  struct Spec {
    std::string short_name, long_name;
    bool takes_value = false, repeatable = false;
  };
  std::string verb_;
  std::vector<Spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;  // long name -> values ("" for flags)
  std::vector<std::string> positional_;
  const Spec* find(const std::string& name) const;
  const Spec& declared(const std::string& long_name) const;
};

// Prints Kiln's log messages to stderr ("[W] ...") at or above its severity: warnings by default,
// everything with -v. Counts errors so that callers can say "see the errors above".
class CliLogger : public ILogger {
 public:
  explicit CliLogger(bool verbose = false) : min_(verbose ? Severity::kVERBOSE : Severity::kWARNING) {}
  void log(Severity severity, const char* msg) noexcept override;
  void set_verbose(bool v) { min_ = v ? Severity::kVERBOSE : Severity::kWARNING; }
  bool verbose() const { return min_ == Severity::kVERBOSE; }
  int num_errors() const { return errors_; }
  // True when exactly this message was logged (and shown) as an error.
  bool error_shown(const std::string& msg);
  // The tool's own progress notes: printed with -v only.
  void info(const std::string& msg) { log(Severity::kINFO, msg.c_str()); }

 private:
  Severity min_;
  int errors_ = 0;
  std::vector<std::string> shown_errors_;  // the first few, to avoid printing them twice
  std::mutex mu_;
};

// "1x3x224x224" -> {1, 3, 224, 224}; "" (or "scalar") -> {} (a 0-d tensor). Dimensions must be >= 0.
Dims parse_dims(const std::string& s, const std::string& option);
// "a:1x3x8x8,b:2x4" (several values are concatenated). A name may itself contain ':' — the last ':'
// separates it from the dims. Throws UsageError on malformed entries and names given twice.
std::vector<std::pair<std::string, Dims>> parse_shape_list(const std::vector<std::string>& values,
                                                           const std::string& option);
// Integers with range checks (UsageError naming the option).
int64_t parse_int(const std::string& s, const std::string& option, int64_t min, int64_t max);
// Byte counts: "1048576", "64K", "256M", "2G" (binary units, optional "iB"/"B" suffix).
uint64_t parse_bytes(const std::string& s, const std::string& option);

// Random values for an input (floats in [-1, 1), integers in [0, 100), bools 0/1), the same for a given seed
// and input name on every machine. Throws for dtypes it cannot fill.
void fill_random(uint8_t* dst, DataType dt, int64_t n, uint64_t seed, const std::string& name);

std::string dims_x(const Dims& d);             // "1x3x224x224", "scalar" for rank 0
std::string format_bytes(uint64_t n);          // "1.50 MiB (1572864 bytes)"
std::string format_ms(double ms);              // "12.345 ms"
std::string join(const std::vector<std::string>& v, const std::string& sep);

// Verb entry points; args are the words after the verb.
int cmd_build(const std::vector<std::string>& args);
int cmd_run(const std::vector<std::string>& args);
int cmd_inspect(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);
extern const char* const kBenchUsage;
extern const char* const kBuildUsage;
extern const char* const kRunUsage;
extern const char* const kInspectUsage;

}  // namespace kiln::cli
