// The importer interface: what an ONNX op importer sees while it turns one NodeProto into IR nodes.
//
// An importer is a function registered for (domain, op_type) with KILN_REGISTER_IMPORTER. It reads the
// node's inputs and attributes through the ImportContext, adds IR nodes (ops from ir/OPS.md) and returns
// the ir::Values for the node's outputs, in order (nullptr for an output it does not produce; the parser
// rejects that when the output is named). The parser renames the returned values to the ONNX output names.
// Failures are thrown as ImportError (code + message, with the importer's source location).
#pragma once
#include <functional>
#include <optional>
#include <source_location>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"
#include "kiln/network.h"
#include "kiln/onnx_parser.h"
#include "onnx/onnx_model.h"

namespace kiln::onnx {

class ImportError : public std::runtime_error {
 public:
  ImportError(ParserErrorCode code, const std::string& msg,
              std::source_location loc = std::source_location::current())
      : std::runtime_error(msg), code_(code), loc_(loc) {}
  ParserErrorCode code() const { return code_; }
  const std::source_location& where() const { return loc_; }

 private:
  ParserErrorCode code_;
  std::source_location loc_;
};

// ONNX TensorProto.kiln::DataType -> Kiln DataType; nullopt for types Kiln does not handle.
std::optional<kiln::DataType> to_kiln_dtype(int32_t onnx_type);
// A TensorProto's contents as a HostTensor (copied). Throws ImportError for unsupported types.
HostTensor tensor_to_host(const TensorProto& t, const std::string& model_dir, ExternalDataCache& cache,
                          const std::string& what);

// A reference to IR nodes' ops and attribute values used by several importers.
namespace ir_enum {
enum Ew : int64_t {
  kSum = 0, kProd = 1, kMax = 2, kMin = 3, kSub = 4, kDiv = 5, kPow = 6, kFloorDiv = 7, kAnd = 8, kOr = 9,
  kXor = 10, kEqual = 11, kGreater = 12, kLess = 13, kMod = 64, kGreaterEqual = 65, kLessEqual = 66,
  kShiftLeft = 67, kShiftRight = 68
};
enum Unary : int64_t {
  kExp = 0, kLog = 1, kSqrt = 2, kRecip = 3, kAbs = 4, kNeg = 5, kSin = 6, kCos = 7, kTan = 8, kSinh = 9,
  kCosh = 10, kAsin = 11, kAcos = 12, kAtan = 13, kAsinh = 14, kAcosh = 15, kAtanh = 16, kCeil = 17,
  kFloor = 18, kErf = 19, kNot = 20, kSign = 21, kRound = 22, kIsInf = 23, kIsNan = 24
};
enum Reduce : int64_t {
  kRSum = 0, kRProd = 1, kRMax = 2, kRMin = 3, kRAvg = 4, kRL1 = 64, kRL2 = 65, kRLogSum = 66, kRLogSumExp = 67,
  kRSumSquare = 68
};
}  // namespace ir_enum

class ImportContext {
 public:
  ImportContext(Network& network, ILogger* logger, std::string model_dir, ExternalDataCache& cache,
                int64_t opset);

  Network& network() { return network_; }
  ir::Graph& graph() { return network_.graph(); }
  ILogger* logger() const { return logger_; }
  int64_t opset() const { return opset_; }
  const std::string& model_dir() const { return model_dir_; }
  ExternalDataCache& external_data() { return cache_; }

  // ---- the ONNX name -> IR value map -----------------------------------------------------------------
  void define(const std::string& name, ir::Value* v) { tensors_[name] = v; }
  ir::Value* lookup(const std::string& name) const;
  bool is_defined(const std::string& name) const { return tensors_.count(name) != 0; }
  // Names some later node or a graph output reads (set by the parser before importing nodes).
  void set_used_names(std::unordered_set<std::string> used) { used_ = std::move(used); }
  bool is_used(const std::string& name) const { return used_.count(name) != 0; }

  // ---- the node being imported ------------------------------------------------------------------------
  void begin_node(const NodeProto& node, int index);
  const NodeProto& node() const { return *node_; }
  int node_index() const { return node_index_; }
  std::string op_type() const { return std::string(node_->op_type); }
  std::string node_name() const { return base_name_; }

  size_t num_inputs() const { return node_->input.size(); }
  size_t num_outputs() const { return node_->output.size(); }
  // Input i, or nullptr when it is omitted (absent or "").
  ir::Value* input(size_t i) const;
  bool has_input(size_t i) const { return input(i) != nullptr; }
  // Input i; throws INVALID_NODE naming the input when it is omitted.
  ir::Value* required_input(size_t i, std::source_location loc = std::source_location::current()) const;
  // Whether output i is named and read by a later node or by the graph outputs.
  bool output_used(size_t i) const;
  bool output_named(size_t i) const { return i < num_outputs() && !node_->output[i].empty(); }

  // ---- attributes -------------------------------------------------------------------------------------
  const AttributeProto* attr(const std::string& name) const;
  bool has_attr(const std::string& name) const { return attr(name) != nullptr; }
  int64_t attr_i(const std::string& name, int64_t def) const;
  float attr_f(const std::string& name, float def) const;
  std::string attr_s(const std::string& name, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& name, const std::vector<int64_t>& def = {}) const;
  std::vector<float> attr_floats(const std::string& name, const std::vector<float>& def = {}) const;
  HostTensor attr_tensor(const std::string& name) const;
  // Required forms: throw INVALID_NODE naming the attribute when absent.
  int64_t req_attr_i(const std::string& name, std::source_location loc = std::source_location::current()) const;
  std::vector<int64_t> req_attr_ints(const std::string& name,
                                     std::source_location loc = std::source_location::current()) const;

  // ---- building IR ------------------------------------------------------------------------------------
  // Adds an IR node with attributes, infers its outputs (dtype/shape, and their values when all inputs are
  // known and small) and returns it. Throws ImportError (INVALID_NODE) when inference rejects it.
  ir::Node* add(const std::string& op, std::vector<ir::Value*> ins, ir::Attrs attrs = {}, int num_outputs = 1,
                std::source_location loc = std::source_location::current());
  ir::Value* add1(const std::string& op, std::vector<ir::Value*> ins, ir::Attrs attrs = {},
                  std::source_location loc = std::source_location::current()) {
    return add(op, std::move(ins), std::move(attrs), 1, loc)->outputs[0];
  }
  // A Constant node holding `t`; `name` (optional) names the node and its value.
  ir::Value* constant(HostTensor t, const std::string& name = "");
  ir::Value* const_i64(const std::vector<int64_t>& v);  // 1-D int64
  ir::Value* const_i64_scalar(int64_t v);
  // A scalar (rank 0) constant of `dtype` holding v.
  ir::Value* const_scalar(kiln::DataType dtype, double v);
  // A constant of `dtype` with `rank` dims of size 1 holding v (broadcasts against a rank-`rank` tensor).
  ir::Value* const_like(kiln::DataType dtype, double v, size_t rank);

  // ---- known values -----------------------------------------------------------------------------------
  // The value of v when known at import time: a constant, or computed on the host from known inputs.
  const HostTensor* value_of(const ir::Value* v) const;
  // Integer contents of v when known (nullopt otherwise). Throws INVALID_NODE when v is known but not int.
  std::optional<std::vector<int64_t>> ints_of(const ir::Value* v, const std::string& what) const;
  std::optional<std::vector<double>> floats_of(const ir::Value* v) const;
  // Like ints_of but required: throws UNSUPPORTED_NODE_DYNAMIC naming `what` when not known.
  std::vector<int64_t> req_ints_of(const ir::Value* v, const std::string& what,
                                   std::source_location loc = std::source_location::current()) const;

  // ---- symbolic shape tensors ---------------------------------------------------------------------------
  // Small integer tensors whose elements are each a constant or "dim `axis` of value `src`" (what
  // Shape -> Gather -> Unsqueeze -> Concat chains compute). Lets Reshape turn such shapes into static
  // reshape dims with placeholders (dynamic batch without run-time shape arithmetic).
  struct SymDim {
    const ir::Value* src = nullptr;  // nullptr: a constant
    int64_t value = 0;               // the constant, or the axis of src
  };
  using SymShape = std::vector<SymDim>;
  // v's symbolic elements (from its known value, or recorded by an importer), or nullopt.
  std::optional<SymShape> sym_of(const ir::Value* v) const;
  void set_sym(const ir::Value* v, SymShape s) { sym_[v] = std::move(s); }
  // The dims of x as symbols ([begin, end)).
  SymShape sym_dims(const ir::Value* x, int64_t begin, int64_t end) const;

  // ---- small helpers over IR --------------------------------------------------------------------------
  ir::Value* elementwise(ir::Value* a, ir::Value* b, int64_t op);
  ir::Value* unary(ir::Value* x, int64_t op);
  ir::Value* cast(ir::Value* x, kiln::DataType to);
  ir::Value* identity(ir::Value* x);
  ir::Value* shape_of(ir::Value* x);  // int64 [rank]
  // The product of dims [begin, end) of x as an int64 [1] tensor (1 when the range is empty).
  ir::Value* dims_product(ir::Value* x, int64_t begin, int64_t end);
  // Dims [begin, end) of x as an int64 [end-begin] tensor.
  ir::Value* dims_slice(ir::Value* x, int64_t begin, int64_t end);
  // Reshape x to `dims` (-1 inferred; 0 copies the input dim when zero_is_placeholder).
  ir::Value* reshape(ir::Value* x, const std::vector<int64_t>& dims, bool zero_is_placeholder = true);
  // Reshape x to the dims held by the int64 1-D tensor `shape` (no placeholders).
  ir::Value* reshape_to(ir::Value* x, ir::Value* shape);
  ir::Value* transpose(ir::Value* x, const std::vector<int64_t>& perm);
  ir::Value* unsqueeze(ir::Value* x, const std::vector<int64_t>& axes);
  ir::Value* concat(const std::vector<ir::Value*>& xs, int64_t axis);
  // Flattens x to 2-D [prod(d[:axis]), prod(d[axis:])], correct for dynamic dims.
  ir::Value* flatten2d(ir::Value* x, int64_t axis);

  // ---- subgraphs (If / Loop / Scan bodies; subgraph.cpp) -------------------------------------------------
  // Imports the nodes of `g` into this IR graph, in place of a run-time call: g's inputs are bound to
  // `inputs` (in order), its initializers become constants, names of the enclosing scopes stay visible and
  // the names g defines are visible only inside it (so a body can be imported once per unrolled step).
  // Node names get the prefix "<current node>/<scope>/". Returns the values of g's outputs, in order.
  std::vector<ir::Value*> import_subgraph(const GraphProto& g, const std::vector<ir::Value*>& inputs,
                                          const std::string& scope);

  // Throws INVALID_NODE / UNSUPPORTED_* with the given message.
  [[noreturn]] void fail(ParserErrorCode code, const std::string& msg,
                         std::source_location loc = std::source_location::current()) const {
    throw ImportError(code, msg, loc);
  }
  static int64_t rank(const ir::Value* v) { return static_cast<int64_t>(v->shape.size()); }
  // Normalizes a possibly negative axis; throws INVALID_NODE when out of range.
  int64_t axis(int64_t a, int64_t rank, const std::string& what = "axis",
               std::source_location loc = std::source_location::current()) const;

 private:
  Network& network_;
  ILogger* logger_;
  std::string model_dir_;
  ExternalDataCache& cache_;
  int64_t opset_;
  std::unordered_map<std::string, ir::Value*> tensors_;
  std::unordered_set<std::string> used_;
  std::unordered_map<const ir::Value*, HostTensor> known_;  // values computed on the host
  std::unordered_map<const ir::Value*, SymShape> sym_;
  const NodeProto* node_ = nullptr;
  int node_index_ = -1;
  std::string base_name_;
  int sub_nodes_ = 0;
  std::unordered_set<std::string> node_names_;  // names of the graph's nodes (kept in step as nodes are added)
  std::unordered_map<const TensorProto*, ir::Value*> subgraph_initializers_;  // one Constant per body initializer
  bool name_taken(const std::string& n);
  std::string next_node_name();
  void try_fold(ir::Node* n);
};

// ---- the importer registry --------------------------------------------------------------------------------
using ImporterFn = std::vector<ir::Value*> (*)(ImportContext&);

void register_importer(const std::string& domain, const std::string& op_type, ImporterFn fn);
ImporterFn find_importer(const std::string& domain, const std::string& op_type);
std::vector<std::string> registered_importers();  // "domain:op" for tests and diagnostics
// "" and "ai.onnx" are the default domain.
std::string canonical_domain(std::string_view domain);

}  // namespace kiln::onnx

#define KILN_IMPORTER_CAT2(a, b) a##b
#define KILN_IMPORTER_CAT(a, b) KILN_IMPORTER_CAT2(a, b)
// Registers `fn` for ONNX op `op` in `domain` ("" = the default ONNX domain) at load time.
#define KILN_REGISTER_IMPORTER(domain, op, fn)                                    \
  static const bool KILN_IMPORTER_CAT(kiln_importer_registered_, __COUNTER__) = \
      (::kiln::onnx::register_importer(domain, op, fn), true)
