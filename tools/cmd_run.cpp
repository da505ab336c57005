// `kiln run`: load a plan, feed it inputs from .npy/.npz files (or random data), run it, report and save
// the outputs, and time it (what `trtexec --loadEngine=...` / `polygraphy run` do).
#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>

#include "cli_common.h"
#include "ir/host_tensor.h"
#include "kiln/runtime.h"
#include "npy.h"

namespace kiln::cli {

const char* const kRunUsage =
    "usage: kiln run PLAN [options]\n"
    "\n"
    "Runs a plan on the given inputs (random ones for inputs not given), prints each output's shape,\n"
    "dtype and statistics, the timing, and saves the outputs when asked.\n"
    "\n"
    "options:\n"
    "  --input NAME=FILE.npy      an input array (repeatable); for a plan with one input, FILE.npy alone\n"
    "  --inputs FILE.npz          input arrays by name from an .npz archive (numpy.savez)\n"
    "  --shapes NAME:DIMS[,...]   shapes of dynamic inputs that get random data, e.g. input:1x3x224x224\n"
    "  --output-dir DIR           write each output to DIR/NAME.npy\n"
    "  --outputs FILE.npz         write all outputs to one .npz archive (not with --output-dir)\n"
    "  --iterations N             timed runs after one warm-up run (default 1)\n"
    "  --seed S                   seed of the random inputs (default 1)\n"
    "  -v, --verbose              print Kiln's info and verbose log messages\n"
    "  -h, --help                 print this help\n"
    "\n"
    "Random inputs are uniform in [-1, 1) for floating-point inputs, in [0, 100) for integer inputs, and\n"
    "0/1 for bool inputs. Given arrays must have the input's dtype and a shape that its static dimensions\n"
    "and optimization profile accept. Exit status: 0 success, 1 failure, 2 usage error.\n";

namespace {

using Clock = std::chrono::steady_clock;

// Host memory with 64-byte alignment, as kernels may expect of tensor addresses.
struct HostBuffer {
  std::vector<uint8_t> storage;
  uint8_t* ptr = nullptr;
  size_t size = 0;
  void allocate(size_t n) {
    storage.assign(n + 64, 0);
    auto p = reinterpret_cast<uintptr_t>(storage.data());
    ptr = reinterpret_cast<uint8_t*>((p + 63) / 64 * 64);
    size = n;
  }
};

struct InputSource {
  npy::Array array;
  std::string from;  // file name (or archive:entry)
};

// Element i as double / int64.
double elem_f(const uint8_t* p, DataType dt, int64_t i) {
  switch (dt) {
    case DataType::kFLOAT: return reinterpret_cast<const float*>(p)[i];
    case DataType::kDOUBLE: return reinterpret_cast<const double*>(p)[i];
    case DataType::kHALF: return half_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
    case DataType::kBF16: return bf16_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
    case DataType::kINT8: return reinterpret_cast<const int8_t*>(p)[i];
    case DataType::kUINT8: case DataType::kBOOL: return p[i];
    case DataType::kINT32: return reinterpret_cast<const int32_t*>(p)[i];
    case DataType::kINT64: return static_cast<double>(reinterpret_cast<const int64_t*>(p)[i]);
    default: return std::nan("");
  }
}
int64_t elem_i(const uint8_t* p, DataType dt, int64_t i) {
  switch (dt) {
    case DataType::kINT8: return reinterpret_cast<const int8_t*>(p)[i];
    case DataType::kUINT8: case DataType::kBOOL: return p[i];
    case DataType::kINT32: return reinterpret_cast<const int32_t*>(p)[i];
    case DataType::kINT64: return reinterpret_cast<const int64_t*>(p)[i];
    default: return 0;
  }
}

std::string fmt_g(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// "min -0.99 max 0.98 mean 0.0012 | first: 0.1, 0.2, ..."
std::string statistics(const uint8_t* p, DataType dt, int64_t n) {
  if (n == 0) return "empty";
  if (dt == DataType::kFP8 || dt == DataType::kINT4) return std::string("(no statistics for ") + dtype_name(dt) + ")";
  constexpr int64_t kFirst = 6;
  std::string first;
  for (int64_t i = 0; i < std::min(n, kFirst); ++i) {
    if (i) first += ", ";
    first += dtype_is_float(dt) ? fmt_g(elem_f(p, dt, i)) : std::to_string(elem_i(p, dt, i));
  }
  if (n > kFirst) first += ", ...";
  std::string s;
  if (dtype_is_float(dt)) {
    int64_t nan = 0, inf = 0, finite = 0;
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      double v = elem_f(p, dt, i);
      if (std::isnan(v)) { ++nan; continue; }
      if (std::isinf(v)) { ++inf; continue; }
      ++finite;
      mn = std::min(mn, v);
      mx = std::max(mx, v);
      sum += v;
    }
    if (finite) s = "min " + fmt_g(mn) + "  max " + fmt_g(mx) + "  mean " + fmt_g(sum / static_cast<double>(finite));
    else s = "no finite values";
    if (nan) s += "  NaN: " + std::to_string(nan);
    if (inf) s += "  Inf: " + std::to_string(inf);
  } else if (dt == DataType::kBOOL) {
    int64_t t = 0;
    for (int64_t i = 0; i < n; ++i) t += p[i] != 0;
    s = "true: " + std::to_string(t) + " of " + std::to_string(n);
  } else {
    int64_t mn = elem_i(p, dt, 0), mx = mn;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      int64_t v = elem_i(p, dt, i);
      mn = std::min(mn, v);
      mx = std::max(mx, v);
      sum += static_cast<double>(v);
    }
    s = "min " + std::to_string(mn) + "  max " + std::to_string(mx) + "  mean " + fmt_g(sum / static_cast<double>(n));
  }
  return s + "  | first: " + first;
}

// Does `got` fit the engine's declared shape (same rank, equal static dims)?
bool fits(const Dims& decl, const Dims& got) {
  if (decl.size() != got.size()) return false;
  for (size_t i = 0; i < decl.size(); ++i)
    if (decl[i] >= 0 && decl[i] != got[i]) return false;
  return true;
}

// A file name for an output tensor: characters other than [A-Za-z0-9._-] become '_'.
std::string file_stem(const std::string& name) {
  std::string s;
  for (char c : name) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  if (s.empty() || s[0] == '.') s = "_" + s;
  return s;
}

}  // namespace

int cmd_run(const std::vector<std::string>& args) {
  ArgParser ap("run");
  ap.option("--input", true);
  ap.option("--inputs", true);
  ap.option("--shapes", true);
  ap.option("--output-dir");
  ap.option("--outputs");
  ap.option("--iterations");
  ap.option("--seed");
  ap.flag("-v,--verbose");
  ap.parse(args);
  if (ap.help()) {
    std::fputs(kRunUsage, stdout);
    return kExitOk;
  }
  if (ap.positional().size() != 1)
    throw UsageError(ap.positional().empty() ? "missing PLAN"
                                             : "expected one plan, got " + std::to_string(ap.positional().size()) +
                                                   " (" + join(ap.positional(), ", ") + ")");
  const std::string plan_path = ap.positional()[0];
  if (ap.has("--output-dir") && ap.has("--outputs"))
    throw UsageError("--output-dir and --outputs exclude each other: choose .npy files or one .npz");
  int64_t iterations = ap.has("--iterations") ? parse_int(ap.get("--iterations"), "--iterations", 1, 100000000) : 1;
  uint64_t seed = ap.has("--seed") ? static_cast<uint64_t>(parse_int(ap.get("--seed"), "--seed", 0, INT64_MAX)) : 1;
  auto shapes = parse_shape_list(ap.all("--shapes"), "--shapes");
  for (auto& v : ap.all("--input"))
    if (v.empty()) throw UsageError("--input: empty value (expected NAME=FILE.npy)");

  CliLogger logger(ap.verbose());

  // Load the plan.
  std::vector<uint8_t> plan = npy::read_file(plan_path);
  Runtime runtime(&logger);
  auto engine = runtime.deserialize(plan.data(), plan.size());
  if (!engine) throw Error("cannot load plan '" + plan_path + "' (see the error above)");
  std::printf("loaded %s: %s, target %s, %d layers\n", plan_path.c_str(), format_bytes(plan.size()).c_str(),
              engine->target().c_str(), engine->num_layers());
  std::vector<std::string> inputs, outputs;
  for (int i = 0; i < engine->num_io_tensors(); ++i) {
    const std::string& n = engine->io_name(i);
    (engine->io_mode(n) == TensorIOMode::kINPUT ? inputs : outputs).push_back(n);
  }
  auto check_input_name = [&](const std::string& n, const std::string& what) {
    if (engine->io_mode(n) == TensorIOMode::kINPUT) return;
    if (engine->io_mode(n) == TensorIOMode::kOUTPUT)
      throw Error(what + ": '" + n + "' is an output of the plan, not an input (inputs: " + join(inputs, ", ") + ")");
    throw Error(what + ": the plan has no input named '" + n + "' (inputs: " +
                (inputs.empty() ? std::string("none") : join(inputs, ", ")) + ")");
  };

  // Gather the given arrays.
  std::map<std::string, InputSource> given;
  auto add_given = [&](const std::string& n, npy::Array a, const std::string& from) {
    auto it = given.find(n);
    if (it != given.end())
      throw Error("input '" + n + "' is given twice (" + it->second.from + " and " + from + ")");
    given.emplace(n, InputSource{std::move(a), from});
  };
  for (auto& v : ap.all("--input")) {
    auto eq = v.find('=');
    std::string n, file;
    if (eq == std::string::npos) {
      if (inputs.size() != 1)
        throw UsageError("--input " + v + ": expected NAME=FILE.npy (the plan has " + std::to_string(inputs.size()) +
                         " inputs: " + join(inputs, ", ") + ")");
      n = inputs[0];
      file = v;
    } else {
      n = v.substr(0, eq);
      file = v.substr(eq + 1);
      if (n.empty() || file.empty()) throw UsageError("--input " + v + ": expected NAME=FILE.npy");
    }
    check_input_name(n, "--input " + v);
    add_given(n, npy::load_npy(file), file);
  }
  for (auto& file : ap.all("--inputs")) {
    for (auto& [n, a] : npy::load_npz(file)) {
      check_input_name(n, "--inputs " + file);
      add_given(n, std::move(a), file + ":" + n);
    }
  }
  for (auto& [n, _] : shapes) check_input_name(n, "--shapes");

  // Inputs: shapes, dtypes, data.
  auto ctx = engine->create_execution_context();
  std::map<std::string, HostBuffer> buffers;
  std::printf("inputs:\n");
  for (auto& n : inputs) {
    DataType dt = engine->io_dtype(n);
    Dims decl = engine->io_shape(n);
    const Dims* shape_opt = nullptr;
    for (auto& [sn, d] : shapes)
      if (sn == n) shape_opt = &d;
    std::string decl_note = dims_known(decl) ? "" : " (-1: any size the optimization profile allows)";
    Dims shape;
    auto it = given.find(n);
    if (it != given.end()) {
      npy::Array& a = it->second.array;
      const std::string& from = it->second.from;
      if (a.dtype != dt && !(dt == DataType::kBF16 && a.dtype == DataType::kFLOAT))
        throw Error("input '" + n + "': expected dtype " + dtype_name(dt) + ", got " + dtype_name(a.dtype) + " (" +
                    from + ")");
      if (!fits(decl, a.shape))
        throw Error("input '" + n + "': expected shape " + dims_str(decl) + decl_note + ", got " + dims_str(a.shape) +
                    " (" + from + ")");
      if (shape_opt && *shape_opt != a.shape)
        throw Error("input '" + n + "': --shapes says " + dims_x(*shape_opt) + " but " + from + " has shape " +
                    dims_x(a.shape));
      shape = a.shape;
    } else if (shape_opt) {
      if (!fits(decl, *shape_opt))
        throw Error("input '" + n + "': expected shape " + dims_str(decl) + decl_note + ", --shapes gives " +
                    dims_str(*shape_opt));
      shape = *shape_opt;
    } else if (dims_known(decl)) {
      shape = decl;
    } else if (auto p = engine->profile_shapes(n, ctx->active_optimization_profile()); p[0] == p[2]) {
      shape = p[1];  // the profile admits one shape only: no need to ask for it
    } else {
      throw Error("input '" + n + "' has dynamic shape " + dims_str(decl) + ": give it an array (--input " + n +
                  "=FILE.npy) or a shape (--shapes " + n + ":" + dims_x(p[1]) + "); the plan accepts min " +
                  dims_x(p[0]) + ", opt " + dims_x(p[1]) + ", max " + dims_x(p[2]));
    }
    if (!dims_known(decl) && !ctx->set_input_shape(n, shape))
      throw Error("input '" + n + "': shape " + dims_x(shape) + " is not accepted by the plan (see the error above)");

    HostBuffer& buf = buffers[n];
    int64_t count = volume(shape);
    buf.allocate(static_cast<size_t>(count) * dtype_size(dt));
    std::string from;
    if (it != given.end()) {
      const npy::Array& a = it->second.array;
      if (a.dtype == dt) {
        if (a.nbytes()) std::memcpy(buf.ptr, a.data.data(), a.nbytes());
      } else {  // float32 array for a bf16 input
        for (int64_t i = 0; i < count; ++i) {
          float f;
          std::memcpy(&f, a.data.data() + 4 * i, 4);
          reinterpret_cast<uint16_t*>(buf.ptr)[i] = float_to_bf16(f);
        }
        logger.log(Severity::kWARNING, ("input '" + n + "': float32 data converted to bfloat16").c_str());
      }
      from = "from " + it->second.from;
    } else {
      fill_random(buf.ptr, dt, count, seed, n);
      from = dtype_is_float(dt) ? "random uniform [-1, 1)" : dt == DataType::kBOOL ? "random 0/1" : "random integers [0, 100)";
    }
    if (!ctx->set_tensor_address(n, buf.ptr)) throw Error("input '" + n + "': set_tensor_address failed (see above)");
    std::printf("  %s  %s %s  %s\n", n.c_str(), dtype_name(dt), dims_x(shape).c_str(), from.c_str());
  }
  if (!ctx->all_input_shapes_specified()) throw Error("not every input shape is specified (see the errors above)");

  // Outputs: shapes follow from the input shapes.
  for (auto& n : outputs) {
    Dims s = ctx->get_tensor_shape(n);
    if (!dims_known(s))
      throw Error("cannot determine the shape of output '" + n + "' (got " + dims_str(s) + "; see the errors above)");
    HostBuffer& buf = buffers[n];
    buf.allocate(static_cast<size_t>(volume(s)) * dtype_size(engine->io_dtype(n)));
    if (!ctx->set_tensor_address(n, buf.ptr)) throw Error("output '" + n + "': set_tensor_address failed (see above)");
  }

  // Warm-up, then the timed runs.
  auto t0 = Clock::now();
  if (!ctx->execute()) throw Error("execution failed (see the errors above)");
  double warm_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::vector<double> times;
  for (int64_t it = 0; it < iterations; ++it) {
    t0 = Clock::now();
    if (!ctx->execute()) throw Error("execution failed in timed run " + std::to_string(it + 1) + " (see the errors above)");
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }

  // Report and save the outputs.
  std::vector<npy::NamedArray> saved;
  std::printf("outputs:\n");
  for (auto& n : outputs) {
    DataType dt = engine->io_dtype(n);
    Dims s = ctx->get_tensor_shape(n);
    const HostBuffer& buf = buffers[n];
    if (static_cast<size_t>(std::max<int64_t>(volume(s), 0)) * dtype_size(dt) != buf.size)
      throw Error("output '" + n + "' changed shape during execution (now " + dims_str(s) + ")");
    std::printf("  %s  %s %s\n      %s\n", n.c_str(), dtype_name(dt), dims_x(s).c_str(),
                statistics(buf.ptr, dt, volume(s)).c_str());
    if (!ap.has("--output-dir") && !ap.has("--outputs")) continue;
    npy::Array a;
    if (npy::dtype_supported(dt)) {
      a = npy::Array(dt, s);
      if (buf.size) std::memcpy(a.data.data(), buf.ptr, buf.size);
    } else if (dt == DataType::kBF16) {
      a = npy::Array(DataType::kFLOAT, s);
      for (int64_t i = 0; i < volume(s); ++i) reinterpret_cast<float*>(a.data.data())[i] = static_cast<float>(elem_f(buf.ptr, dt, i));
      logger.log(Severity::kWARNING, ("output '" + n + "' is bfloat16: saved as float32").c_str());
    } else {
      throw Error("output '" + n + "' has dtype " + dtype_name(dt) + ", which .npy files cannot hold");
    }
    saved.emplace_back(n, std::move(a));
  }
  if (ap.has("--output-dir")) {
    std::string dir = ap.get("--output-dir");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || !std::filesystem::is_directory(dir))
      throw Error("cannot create output directory '" + dir + "'" + (ec ? ": " + ec.message() : ": a file is in the way"));
    std::vector<std::string> used;
    for (auto& [n, a] : saved) {
      std::string stem = file_stem(n), name = stem;
      for (int k = 2; std::find(used.begin(), used.end(), name) != used.end(); ++k) name = stem + "_" + std::to_string(k);
      used.push_back(name);
      std::string path = (std::filesystem::path(dir) / (name + ".npy")).string();
      npy::save_npy(path, a);
      std::printf("wrote %s\n", path.c_str());
    }
  } else if (ap.has("--outputs")) {
    std::string path = ap.get("--outputs");
    npy::save_npz(path, saved);
    std::printf("wrote %s (%zu arrays)\n", path.c_str(), saved.size());
  }

  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  size_t m = sorted.size();
  double median = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
  double mean = 0;
  for (double t : times) mean += t;
  mean /= static_cast<double>(m);
  std::printf("timing: %lld iteration%s after 1 warm-up (%s): median %s, min %s, max %s, mean %s\n",
              static_cast<long long>(iterations), iterations == 1 ? "" : "s", format_ms(warm_ms).c_str(),
              format_ms(median).c_str(), format_ms(sorted.front()).c_str(), format_ms(sorted.back()).c_str(),
              format_ms(mean).c_str());
  return kExitOk;
}

}  // namespace kiln::cli
