#include <chrono>
#include <memory>

#include "backends/gpu_probe.h"
#include "runtime/device_execution.h"
#include "builder/pipeline.h"
#include "builder/progress.h"
#include "ir/ops/data_dependent_ops.h"
#include "kiln/builder.h"
#include "plan/plan_writer.h"
#include "runtime/engine_data.h"
#include "runtime/env_switch.h"
#include "runtime/executor.h"
#include "runtime/shape_analysis.h"

namespace kiln {

namespace {

// Per input, per profile: [min, opt, max]. Static inputs without a profile entry use their own shape.
std::vector<std::vector<ProfileShapes>> resolve_profiles(const ir::Graph& g, const BuilderConfig& config) {
  std::vector<OptimizationProfile> profiles = config.profiles();
  bool dynamic = false;
  for (auto* in : g.inputs())
    if (!dims_known(in->shape)) dynamic = true;
  if (profiles.empty()) {
    if (dynamic) {
      for (auto* in : g.inputs())
        if (!dims_known(in->shape))
          throw Error("input '" + in->name + "' has dynamic shape " + dims_str(in->shape) +
                      " but the config has no optimization profile: create one with "
                      "builder.create_optimization_profile(), set_shape('" + in->name +
                      "', min, opt, max) and config.add_optimization_profile(profile)");
    }
    profiles.emplace_back();
  }
  std::vector<std::vector<ProfileShapes>> out(g.inputs().size());
  for (size_t p = 0; p < profiles.size(); ++p) {
    for (auto& [name, s] : profiles[p].shapes()) {
      bool found = false;
      for (auto* in : g.inputs()) found |= in->name == name;
      if (!found) throw Error("optimization profile " + std::to_string(p) + " names '" + name + "', which is not a network input");
    }
    for (size_t i = 0; i < g.inputs().size(); ++i) {
      auto* in = g.inputs()[i];
      auto s = profiles[p].get_shape(in->name);
      if (s.empty()) {
        if (!dims_known(in->shape))
          throw Error("optimization profile " + std::to_string(p) + " has no shapes for dynamic input '" + in->name +
                      "' " + dims_str(in->shape));
        out[i].push_back(ProfileShapes{in->shape, in->shape, in->shape});
        continue;
      }
      for (const Dims& d : s) {
        if (d.size() != in->shape.size())
          throw Error("optimization profile " + std::to_string(p) + ": shape " + dims_str(d) + " for '" + in->name +
                      "' has the wrong rank; the input is " + dims_str(in->shape));
        for (size_t k = 0; k < d.size(); ++k)
          if (in->shape[k] >= 0 && d[k] != in->shape[k])
            throw Error("optimization profile " + std::to_string(p) + ": shape " + dims_str(d) + " for '" +
                        in->name + "' conflicts with its static dimensions " + dims_str(in->shape));
      }
      out[i].push_back(ProfileShapes{s[0], s[1], s[2]});
    }
  }
  return out;
}

uint64_t weight_bytes(const ir::Graph& g) {
  uint64_t b = 0;
  for (auto& n : g.nodes())
    if (n->op == "Constant") b += n->attrs.tensor("value").nbytes();
  return b;
}

// Matrix layers (attention's two products and a Conv1x1Pair's two convolutions included: the pair's halves
// take it, ir/ops/conv1x1_pair.h) may use TF32 tensor cores for float32 when the TF32 flag is set (TensorRT's
// default).
void mark_tf32(ir::Graph& g, bool allow) {
  for (auto& n : g.nodes())
    if (n->op == "MatrixMultiply" || n->op == "Convolution" || n->op == "Deconvolution" || n->op == "FusedAttention" ||
        n->op == "Conv1x1Pair")
      n->attrs.set("allow_tf32", static_cast<int64_t>(allow ? 1 : 0));
}

// Layers the CUDA backend has no kernel for run on the CPU with copies: say which, once, at build time.
void log_cpu_fallbacks(const ir::Graph& g, ILogger* logger) {
  std::vector<std::string> names;
  // Shape nodes and integer arithmetic on their outputs (and constants) run during the runtime's shape
  // analysis, on the host, once per set of input shapes: not per execution, so not a fallback.
  std::vector<bool> host(g.values().size(), false);
  auto is_int = [](DataType t) { return t == DataType::kINT32 || t == DataType::kINT64 || t == DataType::kBOOL; };
  for (auto& n : g.nodes()) {
    bool all_host = n->op == "Constant" || n->op == "Shape";
    if (!all_host) {
      all_host = !n->inputs.empty();
      for (auto* in : n->inputs)
        if (in && !host[in->id]) all_host = false;
      for (auto* o : n->outputs)
        if (!is_int(o->dtype)) all_host = false;
    }
    for (auto* o : n->outputs) host[o->id] = all_host;
    if (all_host) continue;
    std::vector<ir::TensorInfo> ins;
    for (auto* in : n->inputs)
      ins.push_back(in ? ir::TensorInfo{true, in->dtype, in->shape, nullptr} : ir::TensorInfo::absent());
    if (!gpu::supports(*n, ins)) names.push_back(n->name + " (" + n->op + ")");
  }
  if (names.empty()) return;
  std::string list;
  for (size_t i = 0; i < names.size() && i < 12; ++i) list += (i ? ", " : "") + names[i];
  if (names.size() > 12) list += ", ... (" + std::to_string(names.size() - 12) + " more)";
  log_to(logger, Severity::kWARNING,
         std::to_string(names.size()) + " layer(s) have no CUDA kernel for their types and will run on the CPU "
         "(copies and a stream synchronization each; no CUDA graph): " + list);
}

// Layers whose output sizes depend on input values (NonZero, ...): a GPU engine then runs its network on the
// CPU, with copies of the I/O (cuda::Executor::run_dynamic). Said once, at build time.
void log_data_dependent_shapes(const ir::Graph& g, ILogger* logger) {
  std::string list;
  for (auto& n : g.nodes())
    if (ir::has_data_dependent_shape(n->op)) list += (list.empty() ? "" : ", ") + n->name + " (" + n->op + ")";
  if (!list.empty())
    log_to(logger, Severity::kWARNING,
           "layers with data-dependent output shapes: " + list + "; the GPU engine runs such a network on the "
           "CPU, copying its inputs and outputs between device and host at each execution");
}

// The chain timing's ties as a phase of the progress monitor's, under "Timing tactics" (ChainProgress).
class ChainPhase : public ChainProgress {
 public:
  ChainPhase(IProgressMonitor* monitor, const ProgressPhase* parent) : monitor_(monitor), parent_(parent) {}
  void start(int ties) override {
    phase_ = std::make_unique<ProgressPhase>(monitor_, "Chain timing of near ties", parent_, ties);
  }
  void step() override {
    if (phase_) phase_->step();
  }

 private:
  IProgressMonitor* monitor_;
  const ProgressPhase* parent_;
  std::unique_ptr<ProgressPhase> phase_;
};

// GPU builds time their library tactics now, at each profile's opt shapes (a run of the engine, in
// time_tactics_on_device), so the plan carries them and contexts start without timing. A timing cache seeds
// the records (a warm cache times nothing) and receives the new ones. When the run fails the build goes on:
// contexts then time on their first run, as they do for shapes the plan has no record of.
void time_tactics(const std::shared_ptr<EngineData>& ed, const std::vector<std::vector<ProfileShapes>>& profiles,
                  const BuilderConfig& config, const ProgressPhase* parent, ILogger* logger) {
  const bool use_cache = config.timing_cache && !config.get_flag(BuilderFlag::kDISABLE_TIMING_CACHE);
  ed->tactics = std::make_shared<TimingCache>();
  if (use_cache) ed->tactics->set_fallback(config.timing_cache);
  ProgressPhase timing(config.progress_monitor, "Timing tactics", parent, ed->num_profiles);
  for (int p = 0; p < ed->num_profiles; ++p, timing.step()) {
    std::vector<Dims> shapes;
    for (auto& ps : profiles) shapes.push_back(ps[p].opt);
    try {
      ChainPhase chain_phase(config.progress_monitor, &timing);
      const std::string chain = chain_timing_summary(time_tactics_on_device(ed, shapes, &chain_phase));
      if (!chain.empty()) log_to(logger, Severity::kINFO, "profile " + std::to_string(p) + ": " + chain);
    } catch (const BuildCanceled&) {
      throw;  // the monitor canceled the build during the chain timing: not a timing failure
    } catch (const std::exception& e) {
      log_to(logger, Severity::kWARNING,
             "profile " + std::to_string(p) + ": tactics not timed at build (" + e.what() +
                 "); contexts time them on their first run");
    }
  }
  ed->tactics->set_fallback(nullptr);
  if (use_cache) config.timing_cache->combine(*ed->tactics);
  log_to(logger, Severity::kINFO, std::to_string(ed->tactics->size()) + " tactic record(s) in the plan");
}

}  // namespace

std::vector<uint8_t> Builder::build_serialized_network(Network& network, const BuilderConfig& config) {
  auto t0 = std::chrono::steady_clock::now();
  try {
    if (!network.infer_shapes()) throw Error("the network has invalid layers (see the errors above)");
    const ir::Graph& src = network.graph();
    if (src.outputs().empty()) throw Error("the network has no outputs: call network.mark_output(tensor)");
    for (auto* o : src.outputs())
      if (o->is_input) throw Error("tensor '" + o->name + "' is both a network input and an output");
    const bool use_gpu = config.default_device_type == DeviceType::kGPU && gpu::available();
    if (config.default_device_type == DeviceType::kGPU && !use_gpu)
      log_to(logger_, Severity::kINFO, gpu::unavailable_reason() + ": targeting the CPU");

    // Progress: "Building engine" (3 steps: graph optimization, memory planning, serialization), with the
    // passes and the profile checks as nested phases.
    ProgressPhase building(config.progress_monitor, "Building engine", nullptr, 3);
    auto ed = std::make_shared<EngineData>();
    ed->name = network.name;
    ed->target = use_gpu ? gpu::target() : "cpu";
    if (use_gpu) ed->target_libraries = gpu::library_versions();
    ed->kiln_version = KILN_VERSION;
    ed->workspace_limit = config.get_memory_pool_limit(MemoryPoolType::kWORKSPACE);
    ed->graph = src.clone();
    ir::Graph& g = *ed->graph;
    g.topo_sort();
    auto profiles = resolve_profiles(g, config);
    ed->num_profiles = static_cast<int>(profiles.empty() ? 1 : profiles[0].size());

    // Testing aid: KILN_CPU_RUNS_GPU_PIPELINE=1 runs the GPU target's graph rewrites (channels-last layout,
    // pointwise fusion, precision lowering when its flags are set) for a CPU engine, whose kernels implement
    // every float32 rewritten form: a machine without a GPU can check them on whole models.
    const bool gpu_passes = use_gpu || env_is("KILN_CPU_RUNS_GPU_PIPELINE", "1");
    if (gpu_passes) {
      GpuPipelineOptions o;
      bool typed = network.strongly_typed();
      o.fp16 = !typed && config.get_flag(BuilderFlag::kFP16);
      o.bf16 = !typed && config.get_flag(BuilderFlag::kBF16);
      o.obey_precision_constraints = config.get_flag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS) ||
                                     config.get_flag(BuilderFlag::kPREFER_PRECISION_CONSTRAINTS);
      auto passes = gpu_pipeline(o);
      ProgressPhase optimizing(config.progress_monitor, "Optimizing graph", &building, static_cast<int32_t>(passes.size()));
      run_pipeline(g, passes, logger_, &optimizing);
      mark_tf32(g, config.get_flag(BuilderFlag::kTF32) && !typed);
    } else {
      auto passes = cpu_pipeline();
      ProgressPhase optimizing(config.progress_monitor, "Optimizing graph", &building, static_cast<int32_t>(passes.size()));
      run_pipeline(g, passes, logger_, &optimizing);
    }
    building.step();
    for (auto& n : g.nodes()) n->attrs.erase("kiln_weight");

    // Declared shapes (with -1) for the I/O table and the plan's graph.
    infer_graph_inplace(g);
    if (gpu_passes) log_cpu_fallbacks(g, logger_);
    for (size_t i = 0; i < g.inputs().size(); ++i) {
      auto* in = g.inputs()[i];
      ed->io.push_back(IOTensorInfo{in->name, true, in->dtype, in->shape, profiles[i]});
    }
    for (auto* o : g.outputs()) ed->io.push_back(IOTensorInfo{o->name, false, o->dtype, o->shape, {}});

    // Check every profile's extremes and size the arena for the largest.
    Executor probe(ed);
    uint64_t arena = 0;
    ProgressPhase planning(config.progress_monitor, "Planning memory", &building, 3 * ed->num_profiles);
    for (int p = 0; p < ed->num_profiles; ++p) {
      for (int which = 0; which < 3; ++which, planning.step()) {
        std::vector<Dims> shapes;
        for (auto& ps : profiles) shapes.push_back(which == 0 ? ps[p].min : which == 1 ? ps[p].opt : ps[p].max);
        try {
          probe.prepare(shapes);
        } catch (const std::exception& e) {
          throw Error(std::string("profile ") + std::to_string(p) + " " + (which == 0 ? "min" : which == 1 ? "opt" : "max") +
                      " shapes: " + e.what());
        }
        arena = std::max<uint64_t>(arena, static_cast<uint64_t>(probe.arena_bytes()));
      }
    }
    if (use_gpu) log_data_dependent_shapes(g, logger_);
    building.step();
    ed->device_memory_size = arena;
    if (use_gpu) time_tactics(ed, profiles, config, &building, logger_);
    ed->weights_bytes = weight_bytes(g);
    auto plan = plan::write_plan(*ed);
    building.step();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    log_to(logger_, Severity::kINFO,
           "built engine for " + ed->target + ": " + std::to_string(g.num_nodes()) + " nodes, activation memory " +
               std::to_string(arena) + " bytes, weights " + std::to_string(ed->weights_bytes) + " bytes, in " +
               std::to_string(static_cast<int>(ms)) + " ms");
    return plan;
  } catch (const std::exception& e) {
    log_to(logger_, Severity::kERROR, std::string("build failed: ") + e.what());
    return {};
  }
}

}  // namespace kiln
