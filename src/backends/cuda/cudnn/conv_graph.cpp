#include "backends/cuda/cudnn/conv_graph.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "backends/cuda/cudnn/conv_graph_record.h"

namespace kiln::cuda {

// Tensor unique ids: the variant pack binds addresses to these.
namespace {
constexpr int64_t kUid[kGraphTensorCount] = {1, 2, 3, 4, 5};
constexpr int64_t kFirstVirtualUid = 100;
// Heuristic results looked at, at most (most are filtered or fail long before).
constexpr int64_t kMaxHeuristicResults = 32;
}  // namespace

cudnnDataType_t cudnn_io_type(DataType t) {
  switch (t) {
    case DataType::kHALF: return CUDNN_DATA_HALF;
    case DataType::kBF16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
  }
}

// Everything an execution plan was built from: tensors, operations and the operation graph. cuDNN may keep
// references to them inside its plans, so they live as long as the last plan does.
struct ConvOpGraph {
  ConvGraphEpilogue epilogue;
  int64_t align[kGraphTensorCount] = {};
  std::vector<int64_t> uids;  // of the real tensors, in variant-pack order
  std::vector<BackendDesc> keep;
  BackendDesc graph;
};

namespace {

BackendDesc make_tensor(BackendSteps& st, int64_t uid, cudnnDataType_t type, const std::vector<int64_t>& dims,
                        const std::vector<int64_t>& strides, int64_t align, bool is_virtual) {
  BackendDesc t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const bool ok = st.ok(t.created(), "create tensor descriptor") &&
                  st.ok(t.set_dtype(CUDNN_ATTR_TENSOR_DATA_TYPE, type), "tensor data type") &&
                  st.ok(t.set_i64s(CUDNN_ATTR_TENSOR_DIMENSIONS, dims), "tensor dimensions") &&
                  st.ok(t.set_i64s(CUDNN_ATTR_TENSOR_STRIDES, strides), "tensor strides") &&
                  st.ok(t.set_i64(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid), "tensor unique id") &&
                  st.ok(t.set_i64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, align), "tensor byte alignment") &&
                  (!is_virtual || st.ok(t.set_bool(CUDNN_ATTR_TENSOR_IS_VIRTUAL, true), "tensor is-virtual")) &&
                  st.ok(t.finalize(), "finalize tensor descriptor");
  return ok ? std::move(t) : BackendDesc();
}

BackendDesc make_conv_desc(BackendSteps& st, const ConvGraphProblem& p) {
  BackendDesc c(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const bool ok = st.ok(c.created(), "create convolution descriptor") &&
                  st.ok(c.set_i64(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, static_cast<int64_t>(p.stride.size())),
                        "convolution spatial dims") &&
                  st.ok(c.set_dtype(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_DATA_FLOAT), "convolution compute type") &&
                  st.ok(c.set_conv_mode(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_CROSS_CORRELATION), "convolution mode") &&
                  st.ok(c.set_i64s(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, p.pre_pad), "convolution pre-paddings") &&
                  st.ok(c.set_i64s(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, p.post_pad), "convolution post-paddings") &&
                  st.ok(c.set_i64s(CUDNN_ATTR_CONVOLUTION_DILATIONS, p.dilation), "convolution dilations") &&
                  st.ok(c.set_i64s(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, p.stride), "convolution strides") &&
                  st.ok(c.finalize(), "finalize convolution descriptor");
  return ok ? std::move(c) : BackendDesc();
}

BackendDesc make_conv_op(BackendSteps& st, const BackendDesc& x, const BackendDesc& w, const BackendDesc& y,
                         const BackendDesc& conv) {
  BackendDesc op(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  const bool ok = st.ok(op.created(), "create convolution operation") &&
                  st.ok(op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x), "convolution X") &&
                  st.ok(op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w), "convolution W") &&
                  st.ok(op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, y), "convolution Y") &&
                  st.ok(op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv), "convolution descriptor") &&
                  st.ok(op.set_float(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, 1.0f), "convolution alpha") &&
                  st.ok(op.set_float(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, 0.0f), "convolution beta") &&
                  st.ok(op.finalize(), "finalize convolution operation");
  return ok ? std::move(op) : BackendDesc();
}

// A pointwise operation y = mode(x[, b]) computed in float32; its pointwise descriptor goes to `keep`.
// relu_upper > 0 (RELU_FWD only): the upper clip (ReLU6).
BackendDesc make_pointwise_op(BackendSteps& st, std::vector<BackendDesc>& keep, cudnnPointwiseMode_t mode,
                              const BackendDesc& x, const BackendDesc* b, const BackendDesc& y, float relu_upper = 0) {
  BackendDesc pw(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  if (!(st.ok(pw.created(), "create pointwise descriptor") &&
        st.ok(pw.set_pointwise_mode(CUDNN_ATTR_POINTWISE_MODE, mode), "pointwise mode") &&
        st.ok(pw.set_dtype(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_DATA_FLOAT), "pointwise math precision") &&
        (relu_upper <= 0 ||
         st.ok(pw.set_float(CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP, relu_upper), "pointwise ReLU upper clip")) &&
        st.ok(pw.finalize(), "finalize pointwise descriptor")))
    return BackendDesc();
  BackendDesc op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  const bool ok = st.ok(op.created(), "create pointwise operation") &&
                  st.ok(op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw), "pointwise operation descriptor") &&
                  st.ok(op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x), "pointwise X") &&
                  (!b || st.ok(op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b), "pointwise B")) &&
                  st.ok(op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y), "pointwise Y") &&
                  st.ok(op.finalize(), "finalize pointwise operation");
  if (!ok) return BackendDesc();
  keep.push_back(std::move(pw));
  return op;
}

bool valid_problem(const ConvGraphProblem& p, std::string* why) {
  const size_t rank = p.x_dims.size(), nsp = p.stride.size();
  const bool ok = (rank == 4 || rank == 5) && nsp == rank - 2 && p.x_strides.size() == rank && p.w_dims.size() == rank &&
                  p.w_strides.size() == rank && p.y_dims.size() == rank && p.y_strides.size() == rank &&
                  p.bias_dims.size() == rank && p.bias_strides.size() == rank && p.pre_pad.size() == nsp &&
                  p.post_pad.size() == nsp && p.dilation.size() == nsp;
  if (!ok) *why += "graph path: inconsistent problem description (rank " + std::to_string(rank) + "); ";
  return ok;
}

// The operation graph for the problem and epilogue, or null (reason in st).
std::shared_ptr<ConvOpGraph> make_op_graph(BackendSteps& st, cudnnHandle_t handle, const ConvGraphProblem& p,
                                           const ConvGraphEpilogue& e) {
  auto g = std::make_shared<ConvOpGraph>();
  g->epilogue = e;
  std::copy(p.align, p.align + kGraphTensorCount, g->align);
  const cudnnDataType_t io = cudnn_io_type(p.io_type);
  // Real tensors first: their descriptors must exist before the operations reference them.
  BackendDesc x = make_tensor(st, kUid[kGraphX], io, p.x_dims, p.x_strides, p.align[kGraphX], false);
  BackendDesc w = make_tensor(st, kUid[kGraphW], io, p.w_dims, p.w_strides, p.align[kGraphW], false);
  BackendDesc y = make_tensor(st, kUid[kGraphY], io, p.y_dims, p.y_strides, p.align[kGraphY], false);
  if (!x.get() || !w.get() || !y.get()) return nullptr;
  g->uids = {kUid[kGraphX], kUid[kGraphW], kUid[kGraphY]};
  BackendDesc bias, residual;
  if (e.bias) {
    bias = make_tensor(st, kUid[kGraphBias], io, p.bias_dims, p.bias_strides, p.align[kGraphBias], false);
    if (!bias.get()) return nullptr;
    g->uids.push_back(kUid[kGraphBias]);
  }
  if (e.residual) {
    residual = make_tensor(st, kUid[kGraphResidual], io, p.y_dims, p.y_strides, p.align[kGraphResidual], false);
    if (!residual.get()) return nullptr;
    g->uids.push_back(kUid[kGraphResidual]);
  }
  // The chain conv -> [+bias] -> [+residual] -> [relu]: every step but the last writes a float32 virtual
  // tensor of y's shape and layout; the last writes y.
  const int steps = 1 + e.bias + e.residual + e.relu;
  int64_t next_virtual = kFirstVirtualUid;
  std::vector<BackendDesc> produced;  // outputs of the steps, in order
  auto output_of_step = [&](int step) -> bool {
    if (step == steps - 1) {
      produced.push_back(std::move(y));
      return true;
    }
    produced.push_back(make_tensor(st, next_virtual++, CUDNN_DATA_FLOAT, p.y_dims, p.y_strides, 16, true));
    return produced.back().get() != nullptr;
  };
  BackendDesc conv = make_conv_desc(st, p);
  if (!conv.get() || !output_of_step(0)) return nullptr;
  std::vector<BackendDesc> ops;
  ops.push_back(make_conv_op(st, x, w, produced.back(), conv));
  if (!ops.back().get()) return nullptr;
  int step = 1;
  if (e.bias) {
    if (!output_of_step(step)) return nullptr;
    ops.push_back(make_pointwise_op(st, g->keep, CUDNN_POINTWISE_ADD, produced[step - 1], &bias, produced[step]));
    if (!ops.back().get()) return nullptr;
    ++step;
  }
  if (e.residual) {
    if (!output_of_step(step)) return nullptr;
    ops.push_back(make_pointwise_op(st, g->keep, CUDNN_POINTWISE_ADD, produced[step - 1], &residual, produced[step]));
    if (!ops.back().get()) return nullptr;
    ++step;
  }
  if (e.relu) {
    if (!output_of_step(step)) return nullptr;
    ops.push_back(make_pointwise_op(st, g->keep, CUDNN_POINTWISE_RELU_FWD, produced[step - 1], nullptr, produced[step],
                                    e.relu_upper));
    if (!ops.back().get()) return nullptr;
    ++step;
  }
  BackendDesc graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  std::vector<cudnnBackendDescriptor_t> raw_ops;
  for (const BackendDesc& op : ops) raw_ops.push_back(op.get());
  if (!(st.ok(graph.created(), "create operation graph") &&
        st.ok(graph.set_descs(CUDNN_ATTR_OPERATIONGRAPH_OPS, raw_ops), "operation graph ops") &&
        st.ok(graph.set_handle(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, handle), "operation graph handle") &&
        st.ok(graph.finalize(), "finalize operation graph")))
    return nullptr;
  g->graph = std::move(graph);
  for (BackendDesc* d : {&x, &w, &bias, &residual, &conv})
    if (d->get()) g->keep.push_back(std::move(*d));
  for (BackendDesc& d : produced) g->keep.push_back(std::move(d));
  for (BackendDesc& d : ops) g->keep.push_back(std::move(d));
  return g;
}

// The heuristic's ranked engine configurations (empty on failure, reason in st).
std::vector<BackendDesc> heuristic_configs(BackendSteps& st, const BackendDesc& graph, cudnnBackendHeurMode_t mode) {
  BackendDesc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  if (!(st.ok(heur.created(), "create engine heuristic") &&
        st.ok(heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph), "heuristic operation graph") &&
        st.ok(heur.set_heur_mode(CUDNN_ATTR_ENGINEHEUR_MODE, mode), "heuristic mode") &&
        st.ok(heur.finalize(), "finalize engine heuristic")))
    return {};
  int64_t count = 0;
  if (!st.ok(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                      &count, nullptr),
             "heuristic result count"))
    return {};
  count = std::clamp<int64_t>(count, 0, kMaxHeuristicResults);
  std::vector<BackendDesc> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    if (!st.ok(configs.back().created(), "create engine config")) return {};
    raw.push_back(configs.back().get());
  }
  if (count == 0) return {};
  int64_t got = 0;
  if (!st.ok(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                      &got, raw.data()),
             "heuristic results"))
    return {};
  configs.resize(static_cast<size_t>(std::clamp<int64_t>(got, 0, count)));
  return configs;
}

struct EngineNotes {
  int64_t index = -1;
  bool tensor_core = false, down_convert = false, reduced_precision = false, nondeterministic = false;
  bool transform = false;  // FFT or Winograd: a transformed domain with larger rounding errors
  bool runtime_compiled = false;
};

bool engine_notes(BackendSteps& st, const BackendDesc& config, EngineNotes* n) {
  BackendDesc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  if (!st.ok(engine.created(), "create engine descriptor")) return false;
  cudnnBackendDescriptor_t raw = engine.get();
  int64_t count = 0;
  if (!st.ok(cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                      &count, &raw),
             "engine of config"))
    return false;
  if (engine.get_i64(CUDNN_ATTR_ENGINE_GLOBAL_INDEX, &n->index) != CUDNN_STATUS_SUCCESS) n->index = -1;
  cudnnBackendNumericalNote_t numerical[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  count = 0;
  if (!st.ok(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                      CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &count, numerical),
             "engine numerical notes"))
    return false;
  count = std::clamp<int64_t>(count, 0, CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
  for (int64_t i = 0; i < count; ++i) {
    switch (numerical[i]) {
      case CUDNN_NUMERICAL_NOTE_TENSOR_CORE: n->tensor_core = true; break;
      case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS: n->down_convert = true; break;
      case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION: n->reduced_precision = true; break;
      case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC: n->nondeterministic = true; break;
      case CUDNN_NUMERICAL_NOTE_FFT:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13: n->transform = true; break;
      default: break;
    }
  }
  cudnnBackendBehaviorNote_t behavior[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
  count = 0;
  if (!st.ok(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                      CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &count, behavior),
             "engine behavior notes"))
    return false;
  count = std::clamp<int64_t>(count, 0, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT);
  for (int64_t i = 0; i < count; ++i)
    if (behavior[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) n->runtime_compiled = true;
  return true;
}

// Why an engine may not run this problem under Kiln's numerics, or null.
const char* numerics_refusal(const EngineNotes& n, const ConvGraphProblem& p) {
  if (p.io_type == DataType::kFLOAT && !p.allow_tf32 && n.tensor_core) return "TF32 tensor cores (not allowed)";
  if (n.down_convert) return "down-converts its inputs";
  if (n.reduced_precision) return "reduced-precision reduction";
  if (n.nondeterministic) return "nondeterministic";
  // float32 I/O promises float32 accuracy (the legacy path's FMA math); half types have more slack.
  if (p.io_type == DataType::kFLOAT && n.transform) return "FFT/Winograd (float32 accuracy)";
  return nullptr;
}

// The knob settings (type, value) the heuristic chose for the configuration; nullopt when cuDNN does not
// report them (the identity then says "unknown", the same every time, so records still match).
// The choices are read into descriptors made beforehand, as many as there are knob types (no configuration
// sets one knob twice). Asking first for their count alone (no descriptors) gave "knobs none" in every
// record ever logged on the H200, though eight configurations of engine 41 timed 0.068-0.090 ms on one
// convolution: that query read 0 where knobs were set. Read this way, the same configurations report six
// knobs each and differ in them (bench/NOTES.md, twenty-fourth session, call 3).
std::optional<std::vector<std::pair<int64_t, int64_t>>> engine_knobs(const BackendDesc& config) {
  std::vector<BackendDesc> choices;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < CUDNN_KNOB_TYPE_COUNTS; ++i) {
    choices.emplace_back(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR);
    if (choices.back().created() != CUDNN_STATUS_SUCCESS) return std::nullopt;
    raw.push_back(choices.back().get());
  }
  int64_t got = 0;
  if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                               CUDNN_KNOB_TYPE_COUNTS, &got, raw.data()) != CUDNN_STATUS_SUCCESS)
    return std::nullopt;
  got = std::clamp<int64_t>(got, 0, CUDNN_KNOB_TYPE_COUNTS);
  std::vector<std::pair<int64_t, int64_t>> knobs;
  for (int64_t i = 0; i < got; ++i) {
    cudnnBackendKnobType_t type{};
    int64_t n = 0, value = 0;
    if (cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &n, &type) !=
            CUDNN_STATUS_SUCCESS ||
        n != 1 || choices[i].get_i64(CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, &value) != CUDNN_STATUS_SUCCESS)
      return std::nullopt;
    knobs.emplace_back(static_cast<int64_t>(type), value);
  }
  return knobs;
}

std::string engine_label(const EngineNotes& n) {
  std::string s = "engine " + std::to_string(n.index);
  if (n.runtime_compiled) s += " (runtime-compiled)";
  return s;
}

}  // namespace

// The finalized plan and what it was built from; members go in reverse, so the plan is destroyed before its
// configuration and graph, and all three before the handle it was finalized with (when a cache keeps that).
struct ConvPlanCore {
  std::shared_ptr<const void> handle_owner;
  std::shared_ptr<const ConvOpGraph> graph;
  BackendDesc config, plan;
  std::mutex execute_mutex;  // one enqueue of the plan at a time (conv_graph.h)
};

ConvGraphPlan::ConvGraphPlan(std::shared_ptr<const ConvOpGraph> graph, BackendDesc config, BackendDesc plan,
                             int64_t workspace, std::string engine_config, std::string name)
    : core_(std::make_shared<ConvPlanCore>()), workspace_(workspace), engine_config_(std::move(engine_config)),
      name_(std::move(name)) {
  core_->graph = std::move(graph);
  core_->config = std::move(config);
  core_->plan = std::move(plan);
}

ConvGraphPlan::ConvGraphPlan(std::shared_ptr<ConvPlanCore> core, int64_t workspace, std::string engine_config,
                             std::string name)
    : core_(std::move(core)), workspace_(workspace), engine_config_(std::move(engine_config)), name_(std::move(name)) {}

// Destroys this context's variant pack before (possibly) the plan it was made for.
ConvGraphPlan::~ConvGraphPlan() = default;

std::unique_ptr<ConvGraphPlan> ConvGraphPlan::share() const {
  return std::unique_ptr<ConvGraphPlan>(new ConvGraphPlan(core_, workspace_, engine_config_, name_));
}

void ConvGraphPlan::keep_alive(std::shared_ptr<const void> owner) { core_->handle_owner = std::move(owner); }

const ConvGraphEpilogue& ConvGraphPlan::fused() const { return core_->graph->epilogue; }

bool ConvGraphPlan::aligned(const ConvGraphPointers& p) const {
  const ConvOpGraph& g = *core_->graph;
  const ConvGraphEpilogue& e = g.epilogue;
  auto ok = [&](const void* ptr, ConvGraphTensor t) { return reinterpret_cast<uintptr_t>(ptr) % g.align[t] == 0; };
  return ok(p.x, kGraphX) && ok(p.w, kGraphW) && ok(p.y, kGraphY) && (!e.bias || ok(p.bias, kGraphBias)) &&
         (!e.residual || ok(p.residual, kGraphResidual));
}

cudnnStatus_t ConvGraphPlan::execute(cudnnHandle_t handle, const ConvGraphPointers& p, std::string* why) {
  const ConvOpGraph& g = *core_->graph;
  const ConvGraphEpilogue& e = g.epilogue;
  std::vector<void*> ptrs = {const_cast<void*>(p.x), const_cast<void*>(p.w), p.y};
  if (e.bias) ptrs.push_back(const_cast<void*>(p.bias));
  if (e.residual) ptrs.push_back(const_cast<void*>(p.residual));
  for (void* ptr : ptrs)
    if (!ptr) {
      if (why) *why = "graph path: a tensor address is null";
      return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    }
  if (ptrs.size() != g.uids.size()) {
    if (why) *why = "graph path: variant pack does not match the graph";
    return CUDNN_STATUS_BAD_PARAM;
  }
  ptrs.push_back(p.workspace);  // the cache key: tensors, then the workspace
  if (!pack_.get() || ptrs != pack_ptrs_) {
    pack_ = BackendDesc();
    pack_ptrs_.clear();
    BackendSteps st;
    BackendDesc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    const std::vector<void*> data(ptrs.begin(), ptrs.end() - 1);
    if (!(st.ok(pack.created(), "create variant pack") &&
          st.ok(pack.set_i64s(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, g.uids), "variant pack unique ids") &&
          st.ok(pack.set_ptrs(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, data), "variant pack data pointers") &&
          st.ok(pack.set_ptr(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, p.workspace), "variant pack workspace") &&
          st.ok(pack.finalize(), "finalize variant pack"))) {
      if (why) *why = st.error();
      return CUDNN_STATUS_BAD_PARAM;
    }
    pack_ = std::move(pack);
    pack_ptrs_ = std::move(ptrs);
  }
  BackendSteps st;
  cudnnStatus_t s;
  {
    std::lock_guard<std::mutex> lock(core_->execute_mutex);
    s = cudnnBackendExecute(handle, core_->plan.get(), pack_.get());
  }
  if (!st.ok(s, "cudnnBackendExecute") && why) *why = st.error();
  return s;
}

std::vector<std::unique_ptr<ConvGraphPlan>> build_conv_graph_plans(cudnnHandle_t handle, const ConvGraphProblem& problem,
                                                                   const ConvGraphEpilogue& epilogue,
                                                                   ConvGraphBudget* budget, std::string* why,
                                                                   const std::string* only_config) {
  std::vector<std::unique_ptr<ConvGraphPlan>> plans;
  const std::string tag = epilogue.str() + ": ";
  if (!valid_problem(problem, why)) return plans;
  BackendSteps graph_steps;
  std::shared_ptr<ConvOpGraph> graph = make_op_graph(graph_steps, handle, problem, epilogue);
  if (!graph) {
    *why += tag + graph_steps.error() + "; ";
    return plans;
  }
  std::string skipped;
  bool wanted_seen = false;  // only_config: the heuristics offered that configuration
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    if (!plans.empty()) break;  // FALLBACK only when mode A gave nothing usable
    BackendSteps heur_steps;
    std::vector<BackendDesc> configs = heuristic_configs(heur_steps, graph->graph, mode);
    if (configs.empty()) {
      *why += tag + (mode == CUDNN_HEUR_MODE_A ? "heuristic A: " : "heuristic FALLBACK: ") +
              (heur_steps.error().empty() ? std::string("no engine configs") : heur_steps.error()) + "; ";
      continue;
    }
    std::map<std::string, int> seen;  // configurations per identity so far in this list
    for (BackendDesc& config : configs) {
      if (static_cast<int>(plans.size()) >= budget->max_plans || budget->attempts_left <= 0) break;
      if (!plans.empty() && std::chrono::steady_clock::now() > budget->deadline) break;
      BackendSteps st;
      EngineNotes notes;
      if (!engine_notes(st, config, &notes)) {
        skipped += st.error() + "; ";
        continue;
      }
      // Identified before anything is finalized: with only_config, every other configuration costs nothing.
      // A configuration whose engine and knobs an earlier one in the list already had is told apart by its
      // place among them ("#2", "#3"...): the heuristic's order is the same for the same problem, GPU and cuDNN
      // release, which the record's key names.
      std::string engine_config = conv_graph_engine_config(notes.index, engine_knobs(config));
      if (const int nth = ++seen[engine_config]; nth > 1) engine_config += " #" + std::to_string(nth);
      if (only_config && engine_config != *only_config) continue;
      wanted_seen = true;
      if (const char* refusal = numerics_refusal(notes, problem)) {
        skipped += engine_label(notes) + ": " + refusal + "; ";
        continue;
      }
      if (notes.runtime_compiled && budget->runtime_compiled_left <= 0) {
        skipped += engine_label(notes) + ": over the runtime-compilation budget; ";
        continue;
      }
      --budget->attempts_left;
      budget->runtime_compiled_left -= notes.runtime_compiled;
      count_conv_graph_plan_finalized();
      BackendDesc plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      int64_t workspace = 0;
      if (!(st.ok(plan.created(), "create execution plan") &&
            st.ok(plan.set_handle(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, handle), "execution plan handle") &&
            st.ok(plan.set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, config), "execution plan engine config") &&
            st.ok(plan.finalize(), "finalize execution plan") &&
            st.ok(plan.get_i64(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, &workspace), "execution plan workspace"))) {
        skipped += engine_label(notes) + ": " + st.error() + "; ";
        continue;
      }
      if (workspace < 0 || static_cast<uint64_t>(workspace) > budget->workspace_bytes) {
        skipped += engine_label(notes) + ": needs " + std::to_string(workspace) + " bytes of workspace; ";
        continue;
      }
      std::string name = engine_config + (notes.runtime_compiled ? " (runtime-compiled) " : " ") + epilogue.str();
      plans.push_back(std::make_unique<ConvGraphPlan>(graph, std::move(config), std::move(plan), workspace,
                                                      engine_config, std::move(name)));
    }
  }
  if (only_config && !wanted_seen) skipped += *only_config + ": not among the heuristics' configurations; ";
  if (plans.empty()) *why += tag + "no usable plan" + (skipped.empty() ? std::string() : " (" + skipped + ")") + "; ";
  return plans;
}

ConvGraphMode conv_graph_mode() {
  const char* v = std::getenv("KILN_CUDNN_GRAPH");
  if (!v || !*v || std::strcmp(v, "1") == 0) return ConvGraphMode::kAuto;
  if (std::strcmp(v, "0") == 0) return ConvGraphMode::kOff;
  if (std::strcmp(v, "force") == 0) return ConvGraphMode::kForce;
  if (std::strcmp(v, "force-fused") == 0) return ConvGraphMode::kForceFused;
  // An unknown value is refused rather than read as "on": now that on is the default, "off" or "false" must
  // not quietly mean the opposite of what was meant.
  throw Error(std::string("KILN_CUDNN_GRAPH=") + v + ": expected 0 (legacy cuDNN API only), 1 (the default), force or force-fused");
}

bool conv_graph_log_enabled() {
  const char* v = std::getenv("KILN_CUDNN_GRAPH_LOG");
  return v && *v && std::strcmp(v, "0") != 0;
}

}  // namespace kiln::cuda
