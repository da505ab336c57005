// `kiln build`: ONNX model -> plan file (what `trtexec --onnx=... --saveEngine=...` does).
#include <algorithm>
#include <chrono>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include "build_progress.h"
#include "cli_common.h"
#include "ir/graph.h"
#include "kiln/builder.h"
#include "kiln/network.h"
#include "kiln/onnx_parser.h"
#include "kiln/runtime.h"
#include "npy.h"
#include "runtime/engine_data.h"

namespace kiln::cli {

const char* const kBuildUsage =
    "usage: kiln build MODEL.onnx -o PLAN [options]\n"
    "\n"
    "Parses an ONNX model, optimizes it for this machine and writes the plan file.\n"
    "\n"
    "options:\n"
    "  -o, --output PLAN            where to write the plan (required)\n"
    "  --shapes NAME:DIMS[,...]     fixed shapes for dynamic inputs (min = opt = max),\n"
    "                               e.g. --shapes input:1x3x224x224,mask:1x128\n"
    "  --min-shapes NAME:DIMS[,...]\n"
    "  --opt-shapes NAME:DIMS[,...]\n"
    "  --max-shapes NAME:DIMS[,...] one optimization profile; every input named in one of them must be\n"
    "                               named in all three. Inputs with dynamic dimensions need shapes.\n"
    "  --workspace BYTES            workspace memory limit (e.g. 1073741824, 512M, 1G)\n"
    "  --fp16                       allow FP16 kernels where the target has them\n"
    "  --bf16                       allow BF16 kernels where the target has them\n"
    "  --no-tf32                    GPU: keep float32 matrix products in full float32 (no TF32)\n"
    "  --device gpu|cpu             the target (default: the GPU when one is usable, else the CPU)\n"
    "  --timing-cache FILE          GPU: reuse the tactics timed into FILE (when it exists) and save the\n"
    "                               ones this build times there (a warm cache makes rebuilds fast)\n"
    "  -v, --verbose                print Kiln's info and verbose log messages, and (GPU) every\n"
    "                               convolution's and attention layer's timed tactics and choice\n"
    "  -h, --help                   print this help\n"
    "\n"
    "A tensor name containing ':' is fine: the last ':' separates it from its dims. Each shape option\n"
    "may be repeated. Exit status: 0 success, 1 failure, 2 usage error.\n";

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string describe_value(const ir::Value* v) {
  return v->name + "  " + dtype_name(v->dtype) + " " + dims_str(v->shape);
}

}  // namespace

int cmd_build(const std::vector<std::string>& args) {
  ArgParser ap("build");
  ap.option("-o,--output");
  ap.option("--shapes", true);
  ap.option("--min-shapes", true);
  ap.option("--opt-shapes", true);
  ap.option("--max-shapes", true);
  ap.option("--workspace");
  ap.flag("--fp16");
  ap.flag("--bf16");
  ap.flag("--no-tf32");
  ap.option("--timing-cache");
  ap.option("--device");
  ap.flag("-v,--verbose");
  ap.parse(args);
  if (ap.help()) {
    std::fputs(kBuildUsage, stdout);
    return kExitOk;
  }
  if (ap.positional().size() != 1)
    throw UsageError(ap.positional().empty() ? "missing MODEL.onnx"
                                             : "expected one model, got " + std::to_string(ap.positional().size()) +
                                                   " (" + join(ap.positional(), ", ") + ")");
  const std::string model = ap.positional()[0];
  if (!ap.has("--output")) throw UsageError("missing -o PLAN (where to write the plan)");
  const std::string output = ap.get("--output");
  if (output.empty()) throw UsageError("-o: empty plan path");

  auto fixed = parse_shape_list(ap.all("--shapes"), "--shapes");
  auto mins = parse_shape_list(ap.all("--min-shapes"), "--min-shapes");
  auto opts = parse_shape_list(ap.all("--opt-shapes"), "--opt-shapes");
  auto maxs = parse_shape_list(ap.all("--max-shapes"), "--max-shapes");
  auto lookup = [](const std::vector<std::pair<std::string, Dims>>& v, const std::string& n) -> const Dims* {
    for (auto& [name, d] : v)
      if (name == n) return &d;
    return nullptr;
  };
  std::vector<std::string> ranged;  // inputs with min/opt/max, in first-seen order
  for (auto* list : {&mins, &opts, &maxs})
    for (auto& [n, _] : *list)
      if (std::find(ranged.begin(), ranged.end(), n) == ranged.end()) ranged.push_back(n);
  for (auto& n : ranged) {
    std::vector<std::string> missing;
    if (!lookup(mins, n)) missing.push_back("--min-shapes");
    if (!lookup(opts, n)) missing.push_back("--opt-shapes");
    if (!lookup(maxs, n)) missing.push_back("--max-shapes");
    if (!missing.empty())
      throw UsageError("input '" + n + "' needs shapes in all of --min-shapes, --opt-shapes and --max-shapes; missing " +
                       join(missing, " and "));
    if (lookup(fixed, n))
      throw UsageError("input '" + n + "' is given both --shapes and --min/--opt/--max-shapes; use one or the other");
  }
  std::optional<uint64_t> workspace;
  if (ap.has("--workspace")) workspace = parse_bytes(ap.get("--workspace"), "--workspace");

  CliLogger logger(ap.verbose());
  std::error_code ec;
  if (!std::filesystem::exists(model, ec)) throw Error("model '" + model + "' does not exist");
  if (std::filesystem::is_directory(model, ec)) throw Error("model '" + model + "' is a directory, not an ONNX file");

  // Parse.
  Builder builder(&logger);
  auto network = builder.create_network();
  OnnxParser parser(*network, &logger);
  auto t0 = Clock::now();
  bool parsed = parser.parse_from_file(model);
  double parse_ms = ms_since(t0);
  if (!parsed || parser.num_errors() > 0) {
    // The parser logs each error too; list only those the log did not already show.
    std::vector<std::string> unshown;
    for (int i = 0; i < parser.num_errors(); ++i)
      if (!logger.error_shown(parser.error(i).str())) unshown.push_back(parser.error(i).str());
    int n = parser.num_errors();
    std::fprintf(stderr, "kiln build: error: cannot parse '%s' (%d error%s%s)\n", model.c_str(), n, n == 1 ? "" : "s",
                 n > 0 && unshown.empty() ? ", shown above" : unshown.empty() ? "" : ":");
    for (auto& e : unshown) std::fprintf(stderr, "  %s\n", e.c_str());
    if (n == 0) std::fprintf(stderr, "  (the parser gave no reason; run with -v for the log)\n");
    return kExitFailure;
  }
  const ir::Graph& g = network->graph();
  std::printf("parsed %s in %s: %zu layers\n", model.c_str(), format_ms(parse_ms).c_str(), network->layers().size());
  for (auto* in : g.inputs()) std::printf("  input   %s\n", describe_value(in).c_str());
  for (auto* out : g.outputs()) std::printf("  output  %s\n", describe_value(out).c_str());

  // Shapes must name network inputs.
  std::vector<std::string> input_names;
  for (auto* in : g.inputs()) input_names.push_back(in->name);
  auto check_name = [&](const std::string& n, const char* opt) {
    if (std::find(input_names.begin(), input_names.end(), n) == input_names.end())
      throw Error(std::string(opt) + " names '" + n + "', which is not an input of the model (inputs: " +
                  (input_names.empty() ? "none" : join(input_names, ", ")) + ")");
  };
  for (auto& [n, _] : fixed) check_name(n, "--shapes");
  for (auto& n : ranged) check_name(n, "--min/--opt/--max-shapes");

  // Configure.
  BuilderConfig config;
  if (workspace) config.set_memory_pool_limit(MemoryPoolType::kWORKSPACE, *workspace);
  if (ap.has("--fp16")) config.set_flag(BuilderFlag::kFP16);
  if (ap.has("--bf16")) config.set_flag(BuilderFlag::kBF16);
  if (ap.has("--no-tf32")) config.clear_flag(BuilderFlag::kTF32);
  std::string cache_path;
  if (ap.has("--timing-cache")) {
    cache_path = ap.get("--timing-cache");
    config.timing_cache = std::make_shared<TimingCache>();
    if (std::FILE* f = std::fopen(cache_path.c_str(), "rb")) {
      std::fclose(f);
      try {
        *config.timing_cache = TimingCache(npy::read_file(cache_path));
      } catch (const Error& e) {
        throw Error("--timing-cache " + cache_path + ": " + e.what());
      }
      logger.info("timing cache " + cache_path + ": " + std::to_string(config.timing_cache->size()) + " records");
    }
  }
  if (ap.has("--device")) {
    std::string d = ap.get("--device");
    if (d == "gpu") config.default_device_type = DeviceType::kGPU;
    else if (d == "cpu") config.default_device_type = DeviceType::kCPU;
    else throw UsageError("--device " + d + ": expected gpu or cpu");
  }
  if (!fixed.empty() || !ranged.empty()) {
    OptimizationProfile profile;
    auto set = [&](const std::string& n, const Dims& mn, const Dims& op, const Dims& mx) {
      const ir::Value* in = g.find_value(n);
      if (in && in->shape.size() != op.size())
        throw Error("shape " + dims_x(op) + " for input '" + n + "' has rank " + std::to_string(op.size()) +
                    ", but the input is " + dims_str(in->shape) + " (rank " + std::to_string(in->shape.size()) + ")");
      if (!profile.set_shape(n, mn, op, mx)) throw Error(profile.last_error);
    };
    for (auto& [n, d] : fixed) set(n, d, d, d);
    for (auto& n : ranged) set(n, *lookup(mins, n), *lookup(opts, n), *lookup(maxs, n));
    if (config.add_optimization_profile(profile) < 0)
      throw Error("the optimization profile is invalid" + (profile.last_error.empty() ? "" : ": " + profile.last_error));
    for (auto& [n, s] : profile.shapes())
      logger.info("profile: " + n + " min " + dims_x(s[0]) + " opt " + dims_x(s[1]) + " max " + dims_x(s[2]));
  }

  // Build. With --verbose the GPU kernels' tactic logs are on too (unless the caller set them): each
  // convolution's and attention layer's candidates with their timings and the choice, as the build times
  // them (the per-layer tactic timing a person watching a build wants to see).
  if (ap.verbose()) {
    setenv("KILN_CUDNN_GRAPH_LOG", "1", 0);
    setenv("KILN_ATTENTION_LOG", "1", 0);
  }
  t0 = Clock::now();
  BuildProgress progress(isatty(fileno(stderr)) != 0, ap.verbose());
  config.progress_monitor = &progress;
  std::vector<uint8_t> plan = builder.build_serialized_network(*network, config);
  config.progress_monitor = nullptr;
  double build_ms = ms_since(t0);
  if (plan.empty()) {
    std::fprintf(stderr, "kiln build: error: building the plan failed (see the errors above)\n");
    std::vector<std::string> uncovered;
    for (auto* in : g.inputs())
      if (!dims_known(in->shape) && !lookup(fixed, in->name) &&
          std::find(ranged.begin(), ranged.end(), in->name) == ranged.end())
        uncovered.push_back(in->name + " " + dims_str(in->shape));
    if (!uncovered.empty())
      std::fprintf(stderr,
                   "hint: these inputs have dynamic dimensions and no shapes: %s\n"
                   "      pass --shapes NAME:DIMS, or --min-shapes/--opt-shapes/--max-shapes\n",
                   join(uncovered, ", ").c_str());
    return kExitFailure;
  }
  npy::write_file(output, plan);
  std::printf("built in %s\n", format_ms(build_ms).c_str());
  if (config.timing_cache) {
    npy::write_file(cache_path, config.timing_cache->serialize());
    std::printf("timing cache %s: %zu records\n", cache_path.c_str(), config.timing_cache->size());
  }

  // Load what was written back, both as a check and for the summary.
  Runtime runtime(&logger);
  auto engine = runtime.deserialize(plan.data(), plan.size());
  if (!engine) {
    std::fprintf(stderr, "kiln build: error: the plan was written to %s but does not load (see above)\n", output.c_str());
    return kExitFailure;
  }
  std::printf("plan %s: %s, target %s, %d layers after optimization\n", output.c_str(),
              format_bytes(plan.size()).c_str(), engine->target().c_str(), engine->num_layers());
  std::printf("  activation memory %s, weights %s\n", format_bytes(engine->device_memory_size()).c_str(),
              format_bytes(engine->data().weights_bytes).c_str());
  for (int i = 0; i < engine->num_io_tensors(); ++i) {
    const std::string& n = engine->io_name(i);
    if (engine->io_mode(n) != TensorIOMode::kINPUT) continue;
    Dims s = engine->io_shape(n);
    if (dims_known(s)) continue;
    auto p = engine->profile_shapes(n, 0);
    std::printf("  input %s: min %s, opt %s, max %s\n", n.c_str(), dims_x(p[0]).c_str(), dims_x(p[1]).c_str(),
                dims_x(p[2]).c_str());
  }
  return kExitOk;
}

}  // namespace kiln::cli
