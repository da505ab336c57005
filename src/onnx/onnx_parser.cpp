// OnnxParser: ONNX bytes -> Network. Reads the model with Kiln's wire reader (onnx_model.h), declares the
// graph inputs, turns initializers into Constant nodes, imports each node through the importer registered
// for its (domain, op_type) (import_context.h, importers/*.cpp), marks the graph outputs and finally infers
// every shape. Every failure becomes a ParserError; nothing throws out of parse().
#include "kiln/onnx_parser.h"

#include <algorithm>
#include <filesystem>
#include <new>
#include <unordered_map>
#include <unordered_set>

#include "ir/graph.h"
#include "onnx/import_context.h"
#include "onnx/onnx_model.h"
#include "runtime/shape_analysis.h"

namespace kiln {

namespace {
constexpr int64_t kMinOpset = 1;
constexpr int64_t kMaxOpset = 21;

const char* code_name(ParserErrorCode c) {
  switch (c) {
    case ParserErrorCode::kSUCCESS: return "SUCCESS";
    case ParserErrorCode::kINTERNAL_ERROR: return "INTERNAL_ERROR";
    case ParserErrorCode::kMEM_ALLOC_FAILED: return "MEM_ALLOC_FAILED";
    case ParserErrorCode::kMODEL_DESERIALIZE_FAILED: return "MODEL_DESERIALIZE_FAILED";
    case ParserErrorCode::kINVALID_VALUE: return "INVALID_VALUE";
    case ParserErrorCode::kINVALID_GRAPH: return "INVALID_GRAPH";
    case ParserErrorCode::kINVALID_NODE: return "INVALID_NODE";
    case ParserErrorCode::kUNSUPPORTED_GRAPH: return "UNSUPPORTED_GRAPH";
    case ParserErrorCode::kUNSUPPORTED_NODE: return "UNSUPPORTED_NODE";
    case ParserErrorCode::kUNSUPPORTED_NODE_ATTR: return "UNSUPPORTED_NODE_ATTR";
    case ParserErrorCode::kUNSUPPORTED_NODE_INPUT: return "UNSUPPORTED_NODE_INPUT";
    case ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE: return "UNSUPPORTED_NODE_DATATYPE";
    case ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC: return "UNSUPPORTED_NODE_DYNAMIC";
    case ParserErrorCode::kUNSUPPORTED_NODE_SHAPE: return "UNSUPPORTED_NODE_SHAPE";
    case ParserErrorCode::kREFIT_FAILED: return "REFIT_FAILED";
  }
  return "UNKNOWN";
}

// The directory external data is relative to: `path` itself when it is a directory, else its parent.
std::string model_directory(const std::string& path) {
  if (path.empty()) return ".";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return path;
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// The node a shape-inference message blames: "layer 'NAME' (Op): ...".
std::string blamed_layer(const std::string& msg) {
  auto p = msg.find("layer '");
  if (p == std::string::npos) return "";
  p += 7;
  auto e = msg.find("' (", p);
  if (e == std::string::npos) e = msg.find('\'', p);
  return e == std::string::npos ? "" : msg.substr(p, e - p);
}

// Carries a failure from the graph-level steps to the error list.
struct GraphError {
  ParserErrorCode code;
  std::string msg;
  std::source_location loc;
};
[[noreturn]] void graph_fail(ParserErrorCode code, const std::string& msg,
                             std::source_location loc = std::source_location::current()) {
  throw GraphError{code, msg, loc};
}

// Every tensor name that a node of g, or of a subgraph nested in g (If/Loop/Scan bodies), reads, and g's outputs.
void collect_used_names(const onnx::GraphProto& g, std::unordered_set<std::string>& used) {
  for (const auto& n : g.node) {
    for (auto in : n.input)
      if (!in.empty()) used.insert(std::string(in));
    for (const auto& a : n.attribute) {
      if (a.g) collect_used_names(*a.g, used);
      for (const auto& sub : a.graphs) collect_used_names(sub, used);
    }
  }
  for (const auto& o : g.output) used.insert(std::string(o.name));
}

class ModelImporter {
 public:
  ModelImporter(Network& net, ILogger* logger, std::vector<ParserError>& errors)
      : net_(net), logger_(logger), errors_(errors) {}

  bool run(const onnx::Model& model, const std::string& model_dir);

 private:
  Network& net_;
  ILogger* logger_;
  std::vector<ParserError>& errors_;
  std::unordered_set<const ir::Value*> bound_;                // values that carry an ONNX name
  std::unordered_set<const ir::Value*> initializers_;         // the initializers' Constant outputs
  std::unordered_map<std::string, int> ir_node_to_onnx_;      // IR node name -> ONNX node index
  const onnx::GraphProto* graph_ = nullptr;

  void record(ParserErrorCode code, const std::string& desc, const std::source_location& loc, int node);
  int64_t check_opset(const onnx::Model& model);
  void import_inputs(onnx::ImportContext& ctx, const std::unordered_set<std::string>& init_names);
  void import_initializers(onnx::ImportContext& ctx, const std::string& model_dir,
                           onnx::ExternalDataCache& cache);
  void import_node(onnx::ImportContext& ctx, const onnx::NodeProto& node, int index);
  void bind(onnx::ImportContext& ctx, ir::Value* v, const std::string& name);
  void mark_outputs(onnx::ImportContext& ctx);
};

void ModelImporter::record(ParserErrorCode code, const std::string& desc, const std::source_location& loc,
                           int node) {
  ParserError e;
  e.code = code;
  e.desc = desc;
  e.file = loc.file_name();
  e.line = static_cast<int>(loc.line());
  e.func = loc.function_name();
  e.node = node;
  if (graph_ && node >= 0 && node < static_cast<int>(graph_->node.size())) {
    e.node_name = std::string(graph_->node[node].name);
    e.node_operator = std::string(graph_->node[node].op_type);
  }
  log_to(logger_, Severity::kERROR, e.str());
  errors_.push_back(std::move(e));
}

int64_t ModelImporter::check_opset(const onnx::Model& model) {
  int64_t opset = -1;
  for (const auto& o : model.opset_import)
    if (onnx::canonical_domain(o.domain).empty()) opset = o.version;
  if (opset < 0) {
    bool uses_default = false;
    for (const auto& n : model.graph.node) uses_default = uses_default || onnx::canonical_domain(n.domain).empty();
    if (model.opset_import.empty() && model.ir_version < 3) {
      opset = 1;  // IR versions before 3 predate opset_import
    } else if (uses_default) {
      graph_fail(ParserErrorCode::kINVALID_GRAPH,
                 "the model uses ops of the default ONNX domain but imports no opset of it");
    } else {
      opset = kMaxOpset;  // only other domains: their nodes report what is unsupported
    }
  }
  if (opset < kMinOpset)
    graph_fail(ParserErrorCode::kUNSUPPORTED_GRAPH,
               "the model uses ONNX opset " + std::to_string(opset) + "; Kiln supports opsets " +
                   std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) +
                   " (convert it with onnx.version_converter)");
  if (opset > kMaxOpset)
    log_to(logger_, Severity::kWARNING,
           "the model uses ONNX opset " + std::to_string(opset) + ", newer than the newest Kiln knows (" +
               std::to_string(kMaxOpset) + "); importing it with opset-" + std::to_string(kMaxOpset) + " semantics");
  if (model.ir_version < 3 || model.ir_version > 14)
    log_to(logger_, Severity::kWARNING,
           "the model's ONNX IR version is " + std::to_string(model.ir_version) + "; trying to import it anyway");
  return opset;
}

void ModelImporter::import_inputs(onnx::ImportContext& ctx, const std::unordered_set<std::string>& init_names) {
  for (const auto& in : graph_->input) {
    std::string name(in.name);
    if (init_names.count(name)) continue;  // a default value: a constant, not a network input
    if (name.empty()) graph_fail(ParserErrorCode::kINVALID_GRAPH, "a graph input has no name");
    if (ctx.is_defined(name)) graph_fail(ParserErrorCode::kINVALID_GRAPH, "graph input '" + name + "' is declared twice");
    if (!in.has_type || !in.type.is_tensor())
      graph_fail(ParserErrorCode::kUNSUPPORTED_GRAPH,
                 "graph input '" + name + "' is not a dense tensor (sequence, map, optional and sparse inputs are not supported)");
    auto dt = onnx::to_kiln_dtype(in.type.elem_type);
    if (!dt)
      graph_fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE,
                 "graph input '" + name + "' has data type " + std::string(onnx::data_type_name(in.type.elem_type)) +
                     " (" + std::to_string(in.type.elem_type) +
                     "); Kiln has no string or complex tensors");
    if (!in.type.has_shape)
      graph_fail(ParserErrorCode::kUNSUPPORTED_GRAPH,
                 "graph input '" + name + "' has no shape (unknown rank); Kiln needs the rank of every input");
    Dims dims;
    for (const auto& d : in.type.shape.dim)
      dims.push_back(d.kind == onnx::TensorShapeProto::Dimension::kValue && d.value >= 0 ? d.value : -1);
    ir::Value* v = net_.add_input(name, *dt, dims);
    if (!v) graph_fail(ParserErrorCode::kINVALID_GRAPH, "could not declare graph input '" + name + "' (see the log)");
    ctx.define(name, v);
    bound_.insert(v);
  }
}

void ModelImporter::import_initializers(onnx::ImportContext& ctx, const std::string& model_dir,
                                        onnx::ExternalDataCache& cache) {
  for (const auto& t : graph_->initializer) {
    std::string name(t.name);
    if (name.empty()) graph_fail(ParserErrorCode::kINVALID_GRAPH, "an initializer has no name");
    HostTensor h;
    try {
      h = onnx::tensor_to_host(t, model_dir, cache, "initializer '" + name + "'");
    } catch (const onnx::ImportError& e) {
      if (!ctx.is_used(name)) {  // nothing reads it: not worth failing the model for
        log_to(logger_, Severity::kWARNING, std::string(e.what()) + "; it is unused and ignored");
        continue;
      }
      throw GraphError{e.code(), e.what(), e.where()};
    }
    ir::Value* v = ctx.constant(std::move(h), name);
    ctx.define(name, v);
    bound_.insert(v);
    initializers_.insert(v);
  }
}

// Gives v the ONNX name `name`. Values already carrying an ONNX name (graph inputs, initializers, outputs of
// earlier nodes returned as they are) get an Identity so that each ONNX name has its own value.
void ModelImporter::bind(onnx::ImportContext& ctx, ir::Value* v, const std::string& name) {
  if (bound_.count(v) || v->is_input) v = ctx.identity(v);
  // An internal value that happens to carry this name gives it up.
  for (auto& other : net_.graph().values())
    if (other.get() != v && other->name == name && !bound_.count(other.get()))
      other->name = other->name + "__" + std::to_string(other->id);
  v->name = name;
  ctx.define(name, v);
  bound_.insert(v);
}

// Opsets 1..6: ops whose form before opset `since` has semantics (or attributes) the importers do not
// implement. Everything else either kept its semantics, lost only the legacy `consumed_inputs` attribute
// (ignored), or is handled by its importer (the binary ops' broadcast/axis).
static void check_legacy_op(const onnx::ImportContext& ctx, const std::string& op) {
  static const std::unordered_map<std::string, int64_t> kChangedBefore = {
      {"Cast", 6},    {"Tile", 6}, {"Concat", 4}, {"Reshape", 5}, {"Split", 2}, {"Pad", 2},
      {"LpPool", 2},  {"GlobalLpPool", 2}, {"GRU", 7}, {"LSTM", 7}, {"RNN", 7},
      {"Upsample", 7}};
  auto it = kChangedBefore.find(op);
  if (it != kChangedBefore.end() && ctx.opset() < it->second)
    throw onnx::ImportError(ParserErrorCode::kUNSUPPORTED_NODE,
                            op + " at opset " + std::to_string(ctx.opset()) + " (its form before opset " +
                                std::to_string(it->second) +
                                ") is not supported; convert the model with onnx.version_converter");
  // BatchNormalization and Dropout before opset 7 run in training mode unless is_test = 1.
  if ((op == "BatchNormalization" || op == "Dropout") && ctx.attr_i("is_test", 0) == 0)
    throw onnx::ImportError(ParserErrorCode::kUNSUPPORTED_NODE,
                            op + " at opset " + std::to_string(ctx.opset()) +
                                " with is_test = 0 (training mode) is not supported");
}

void ModelImporter::import_node(onnx::ImportContext& ctx, const onnx::NodeProto& node, int index) {
  ctx.begin_node(node, index);
  std::string op(node.op_type);
  for (size_t i = 0; i < node.input.size(); ++i) {
    if (node.input[i].empty()) continue;
    if (!ctx.is_defined(std::string(node.input[i])))
      throw onnx::ImportError(ParserErrorCode::kINVALID_GRAPH,
                              "node '" + ctx.node_name() + "' (" + op + ") reads tensor '" + std::string(node.input[i]) +
                                  "' (input " + std::to_string(i) +
                                  "), which no graph input, initializer or earlier node defines (ONNX requires "
                                  "the nodes in topological order)");
  }
  onnx::ImporterFn fn = onnx::find_importer(std::string(node.domain), op);
  if (fn && ctx.opset() < 7 && onnx::canonical_domain(node.domain).empty()) check_legacy_op(ctx, op);
  if (!fn)
    throw onnx::ImportError(ParserErrorCode::kUNSUPPORTED_NODE,
                            "no importer for op '" + op + "' (domain '" + std::string(node.domain) + "')");
  size_t before = net_.graph().num_nodes();
  std::vector<ir::Value*> outs = fn(ctx);
  std::unordered_set<const ir::Value*> seen;
  for (size_t i = 0; i < node.output.size(); ++i) {
    if (node.output[i].empty()) continue;
    std::string name(node.output[i]);
    ir::Value* v = i < outs.size() ? outs[i] : nullptr;
    if (!v) {
      if (ctx.is_used(name))
        throw onnx::ImportError(ParserErrorCode::kUNSUPPORTED_NODE,
                                op + ": output " + std::to_string(i) + " ('" + name +
                                    "') is not supported, and the model uses it");
      continue;
    }
    if (ctx.is_defined(name))
      log_to(logger_, Severity::kWARNING, "tensor '" + name + "' is defined twice; the later definition (node '" +
                                              ctx.node_name() + "') wins");
    if (!seen.insert(v).second) v = ctx.identity(v);  // two outputs that are the same value
    bind(ctx, v, name);
  }
  for (size_t i = before; i < net_.graph().num_nodes(); ++i) ir_node_to_onnx_[net_.graph().node(i)->name] = index;
}

void ModelImporter::mark_outputs(onnx::ImportContext& ctx) {
  for (const auto& o : graph_->output) {
    std::string name(o.name);
    ir::Value* v = ctx.lookup(name);
    if (!v) graph_fail(ParserErrorCode::kINVALID_GRAPH, "graph output '" + name + "' is not produced by any node, input or initializer");
    if (v->is_output) continue;  // listed twice
    if (v->is_input || initializers_.count(v)) {
      // An output must be a value of its own: rename the input side and let an Identity carry the name.
      ir::Value* out = ctx.identity(v);
      std::string renamed = name + (v->is_input ? "__input" : "__initializer");
      log_to(logger_, v->is_input ? Severity::kWARNING : Severity::kVERBOSE,
             "graph output '" + name + "' is directly a graph " + (v->is_input ? "input" : "initializer") +
                 "; it is renamed '" + renamed + "' and an Identity produces the output '" + name + "'");
      v->name = renamed;
      out->name = name;
      ctx.define(name, out);
      bound_.insert(out);
      v = out;
    }
    if (!net_.mark_output(v)) graph_fail(ParserErrorCode::kINVALID_GRAPH, "could not mark output '" + name + "'");
  }
}

bool ModelImporter::run(const onnx::Model& model, const std::string& model_dir) {
  size_t errors_before = errors_.size();
  int current = -1;
  try {
    if (!model.has_graph) graph_fail(ParserErrorCode::kINVALID_GRAPH, "the model has no graph");
    graph_ = &model.graph;
    int64_t opset = check_opset(model);
    onnx::ExternalDataCache cache;
    onnx::ImportContext ctx(net_, logger_, model_dir, cache, std::min(opset, kMaxOpset));

    std::unordered_set<std::string> init_names, used;
    for (const auto& t : graph_->initializer) init_names.insert(std::string(t.name));
    collect_used_names(*graph_, used);  // subgraphs included: a body may read an outer tensor
    ctx.set_used_names(std::move(used));

    import_inputs(ctx, init_names);
    import_initializers(ctx, model_dir, cache);
    for (size_t i = 0; i < graph_->node.size(); ++i) {
      current = static_cast<int>(i);
      import_node(ctx, graph_->node[i], current);
    }
    current = -1;
    mark_outputs(ctx);
    // Internal values never shadow an ONNX name (the engine's I/O is looked up by name).
    std::unordered_set<std::string> names;
    for (const ir::Value* v : bound_) names.insert(v->name);
    for (auto& v : net_.graph().values())
      if (!bound_.count(v.get()) && names.count(v->name)) v->name += "__" + std::to_string(v->id);
    if (graph_->output.empty()) log_to(logger_, Severity::kWARNING, "the model has no graph outputs");

    try {
      infer_graph_inplace(net_.graph());
    } catch (const std::exception& e) {
      std::string msg = e.what();
      std::string layer = blamed_layer(msg);
      auto it = ir_node_to_onnx_.find(layer);
      record(ParserErrorCode::kINVALID_NODE, "shape inference failed: " + msg, std::source_location::current(),
             it == ir_node_to_onnx_.end() ? -1 : it->second);
    }
  } catch (const onnx::ImportError& e) {
    record(e.code(), e.what(), e.where(), current);
  } catch (const GraphError& e) {
    record(e.code, e.msg, e.loc, current);
  } catch (const std::bad_alloc&) {
    record(ParserErrorCode::kMEM_ALLOC_FAILED, "out of memory", std::source_location::current(), current);
  } catch (const std::exception& e) {
    ParserErrorCode code = current >= 0 ? ParserErrorCode::kINVALID_NODE : ParserErrorCode::kINTERNAL_ERROR;
    record(code, e.what(), std::source_location::current(), current);
  }
  return errors_.size() == errors_before;
}

}  // namespace

std::string ParserError::str() const {
  std::string s;
  if (node >= 0) {
    s = "In node " + std::to_string(node) + " (" + node_name + (node_name.empty() ? "" : ", ") + node_operator + "): ";
  }
  return s + code_name(code) + ": " + desc;
}

OnnxParser::OnnxParser(Network& network, ILogger* logger) : network_(network), logger_(logger) {}
OnnxParser::~OnnxParser() = default;

bool OnnxParser::parse(const void* data, size_t size, const std::string& path) {
  return parse_impl(data, size, model_directory(path));
}

bool OnnxParser::parse_from_file(const std::string& path) {
  try {
    onnx::ModelFile file = onnx::load_model_file(path);
    ModelImporter imp(network_, logger_, errors_);
    return imp.run(file.model(), file.directory());
  } catch (const onnx::ParseError& e) {
    ParserError err;
    err.code = ParserErrorCode::kMODEL_DESERIALIZE_FAILED;
    err.desc = std::string("cannot read ONNX model '") + path + "': " + e.what();
    err.file = __FILE__;
    err.line = __LINE__;
    err.func = __func__;
    log_to(logger_, Severity::kERROR, err.str());
    errors_.push_back(std::move(err));
  } catch (const std::exception& e) {
    ParserError err;
    err.code = ParserErrorCode::kINTERNAL_ERROR;
    err.desc = std::string("parsing '") + path + "': " + e.what();
    err.file = __FILE__;
    err.line = __LINE__;
    err.func = __func__;
    log_to(logger_, Severity::kERROR, err.str());
    errors_.push_back(std::move(err));
  }
  return false;
}

bool OnnxParser::parse_impl(const void* data, size_t size, const std::string& model_dir) {
  onnx::Model model;
  try {
    if (!data && size) throw onnx::ParseError("null buffer of " + std::to_string(size) + " bytes");
    model = onnx::parse_model(std::string_view(static_cast<const char*>(data), size));
  } catch (const std::exception& e) {
    ParserError err;
    err.code = dynamic_cast<const std::bad_alloc*>(&e) ? ParserErrorCode::kMEM_ALLOC_FAILED
                                                         : ParserErrorCode::kMODEL_DESERIALIZE_FAILED;
    err.desc = std::string("cannot decode the ONNX model: ") + e.what();
    err.file = __FILE__;
    err.line = __LINE__;
    err.func = __func__;
    log_to(logger_, Severity::kERROR, err.str());
    errors_.push_back(std::move(err));
    return false;
  }
  ModelImporter imp(network_, logger_, errors_);
  return imp.run(model, model_dir);
}

bool OnnxParser::supports_operator(const std::string& op_type, const std::string& domain) const {
  return onnx::find_importer(domain, op_type) != nullptr;
}

}  // namespace kiln
