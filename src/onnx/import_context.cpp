#include "onnx/import_context.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "backends/cpu/eval.h"
#include "ir/dtype_traits.h"
#include "ir/op_registry.h"

namespace kiln::onnx {

namespace {
// Largest tensor the importer computes on the host to learn a value at import time (shape arithmetic,
// axes, sizes). Bigger constant expressions are left to the builder's constant folding.
constexpr int64_t kMaxFoldElements = 4096;

std::string attr_type_name(AttributeType t) {
  switch (t) {
    case AttributeType::kFloat: return "FLOAT";
    case AttributeType::kInt: return "INT";
    case AttributeType::kString: return "STRING";
    case AttributeType::kTensor: return "TENSOR";
    case AttributeType::kGraph: return "GRAPH";
    case AttributeType::kFloats: return "FLOATS";
    case AttributeType::kInts: return "INTS";
    case AttributeType::kStrings: return "STRINGS";
    case AttributeType::kTensors: return "TENSORS";
    case AttributeType::kGraphs: return "GRAPHS";
    case AttributeType::kSparseTensor: return "SPARSE_TENSOR";
    case AttributeType::kSparseTensors: return "SPARSE_TENSORS";
    default: return "type " + std::to_string(static_cast<int>(t));
  }
}
}  // namespace

std::optional<kiln::DataType> to_kiln_dtype(int32_t t) {
  switch (static_cast<onnx::DataType>(t)) {
    case onnx::DataType::kFloat: return kiln::DataType::kFLOAT;
    case onnx::DataType::kFloat16: return kiln::DataType::kHALF;
    case onnx::DataType::kBfloat16: return kiln::DataType::kBF16;
    case onnx::DataType::kDouble: return kiln::DataType::kDOUBLE;
    case onnx::DataType::kInt32: return kiln::DataType::kINT32;
    case onnx::DataType::kInt64: return kiln::DataType::kINT64;
    case onnx::DataType::kInt8: return kiln::DataType::kINT8;
    case onnx::DataType::kUint8: return kiln::DataType::kUINT8;
    case onnx::DataType::kBool: return kiln::DataType::kBOOL;
    case onnx::DataType::kInt16: return kiln::DataType::kINT16;
    case onnx::DataType::kUint16: return kiln::DataType::kUINT16;
    case onnx::DataType::kUint32: return kiln::DataType::kUINT32;
    case onnx::DataType::kUint64: return kiln::DataType::kUINT64;
    case onnx::DataType::kFloat8E4M3FN: return kiln::DataType::kFP8;
    case onnx::DataType::kFloat8E4M3FNUZ: return kiln::DataType::kFP8E4M3FNUZ;
    case onnx::DataType::kFloat8E5M2: return kiln::DataType::kFP8E5M2;
    case onnx::DataType::kFloat8E5M2FNUZ: return kiln::DataType::kFP8E5M2FNUZ;
    case onnx::DataType::kFloat8E8M0: return kiln::DataType::kE8M0;
    case onnx::DataType::kFloat4E2M1: return kiln::DataType::kFP4;
    case onnx::DataType::kInt4: return kiln::DataType::kINT4;
    case onnx::DataType::kUint4: return kiln::DataType::kUINT4;
    case onnx::DataType::kInt2: return kiln::DataType::kINT2;
    case onnx::DataType::kUint2: return kiln::DataType::kUINT2;
    default: return std::nullopt;
  }
}

namespace {
// ONNX packs 4- and 2-bit elements from the low bits of each byte; Kiln keeps one element per byte,
// sign-extended for the signed integer types (types.h).
void unpack_sub_byte(std::string_view packed, HostTensor& h) {
  const int bits = dtype_int_bits(h.dtype()) == 2 ? 2 : 4;  // int2/uint2, else int4/uint4/float4
  const unsigned per_byte = 8 / bits, mask = (1u << bits) - 1;
  const bool sign_extend = h.dtype() == kiln::DataType::kINT4 || h.dtype() == kiln::DataType::kINT2;
  auto* out = h.mutable_data<uint8_t>();
  for (int64_t i = 0; i < h.numel(); ++i) {
    const auto byte = static_cast<uint8_t>(packed[static_cast<size_t>(i) / per_byte]);
    const unsigned v = (byte >> ((static_cast<unsigned>(i) % per_byte) * bits)) & mask;
    out[i] = sign_extend ? static_cast<uint8_t>(wrap_to_int(h.dtype(), v)) : static_cast<uint8_t>(v);
  }
}
}  // namespace

HostTensor tensor_to_host(const TensorProto& t, const std::string& model_dir, ExternalDataCache& cache,
                          const std::string& what) {
  if (t.data_type == static_cast<int32_t>(onnx::DataType::kString))
    throw ImportError(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, what + " is a STRING tensor; Kiln has no string tensors");
  auto dt = to_kiln_dtype(t.data_type);
  if (!dt)
    throw ImportError(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE,
                      what + " has data type " + std::string(data_type_name(t.data_type)) + " (" +
                          std::to_string(t.data_type) +
                          "), which Kiln does not support (it has no string or complex tensors)");
  Dims dims(t.dims.begin(), t.dims.end());
  TensorData bytes;
  try {
    bytes = tensor_bytes(t, model_dir, cache);
  } catch (const ParseError& e) {
    throw ImportError(ParserErrorCode::kINVALID_VALUE, what + ": " + e.what());
  }
  HostTensor h(*dt, dims);
  if (data_type_bits(t.data_type) < 8) {  // tensor_bytes checked the packed size
    unpack_sub_byte(bytes.bytes(), h);
    return h;
  }
  if (bytes.size() != h.nbytes())
    throw ImportError(ParserErrorCode::kINVALID_VALUE, what + ": holds " + std::to_string(bytes.size()) +
                                                            " bytes, dims " + dims_str(dims) + " need " +
                                                            std::to_string(h.nbytes()));
  if (h.nbytes()) std::memcpy(h.mutable_raw(), bytes.data(), h.nbytes());
  if (*dt == kiln::DataType::kBOOL) {  // normalize to 0/1
    auto* p = h.mutable_data<uint8_t>();
    for (int64_t i = 0; i < h.numel(); ++i) p[i] = p[i] != 0;
  }
  return h;
}

// ---------------------------------------------------------------------------------------------------------
ImportContext::ImportContext(Network& network, ILogger* logger, std::string model_dir, ExternalDataCache& cache,
                             int64_t opset)
    : network_(network), logger_(logger), model_dir_(std::move(model_dir)), cache_(cache), opset_(opset) {
  for (auto& n : network_.graph().nodes()) node_names_.insert(n->name);
}

bool ImportContext::name_taken(const std::string& n) {
  if (!node_names_.count(n)) return false;
  // The set may hold names of nodes removed since; the graph has the last word.
  if (graph().find_node(n)) return true;
  node_names_.erase(n);
  return false;
}

ir::Value* ImportContext::lookup(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

void ImportContext::begin_node(const NodeProto& node, int index) {
  node_ = &node;
  node_index_ = index;
  sub_nodes_ = 0;
  std::string base = !node.name.empty() ? std::string(node.name)
                                        : std::string(node.op_type) + "_" + std::to_string(index);
  // IR node names are unique: a clash (duplicate ONNX names) gets a numeric suffix.
  std::string n = base;
  for (int k = 1; name_taken(n); ++k) n = base + "_" + std::to_string(k);
  base_name_ = n;
}

std::string ImportContext::next_node_name() {
  int k = sub_nodes_++;
  std::string n = base_name_;
  if (k != 0 || name_taken(n)) {
    do {
      n = base_name_ + "/" + std::to_string(k++);
    } while (name_taken(n));
    sub_nodes_ = k;
  }
  node_names_.insert(n);
  return n;
}

ir::Value* ImportContext::input(size_t i) const {
  if (i >= node_->input.size() || node_->input[i].empty()) return nullptr;
  return lookup(std::string(node_->input[i]));
}

ir::Value* ImportContext::required_input(size_t i, std::source_location loc) const {
  ir::Value* v = input(i);
  if (!v)
    throw ImportError(ParserErrorCode::kINVALID_NODE,
                      op_type() + " needs input " + std::to_string(i) + ", which is missing (the node has " +
                          std::to_string(num_inputs()) + " inputs)",
                      loc);
  return v;
}

bool ImportContext::output_used(size_t i) const {
  return output_named(i) && is_used(std::string(node_->output[i]));
}

// ---------------------------------------------------------------------------------------------------------
const AttributeProto* ImportContext::attr(const std::string& name) const {
  const AttributeProto* found = nullptr;
  for (const auto& a : node_->attribute)
    if (a.name == name) found = &a;  // the last wins, as protobuf-style readers do
  return found;
}

namespace {
void expect_type(const AttributeProto& a, std::initializer_list<AttributeType> ok, const std::string& op) {
  for (auto t : ok)
    if (a.type == t) return;
  throw ImportError(ParserErrorCode::kINVALID_NODE, op + ": attribute '" + std::string(a.name) + "' has type " +
                                                        attr_type_name(a.type) + ", expected " +
                                                        attr_type_name(*ok.begin()));
}
}  // namespace

int64_t ImportContext::attr_i(const std::string& name, int64_t def) const {
  const AttributeProto* a = attr(name);
  if (!a) return def;
  expect_type(*a, {AttributeType::kInt}, op_type());
  return a->i;
}

float ImportContext::attr_f(const std::string& name, float def) const {
  const AttributeProto* a = attr(name);
  if (!a) return def;
  if (a->type == AttributeType::kInt) return static_cast<float>(a->i);  // tolerated: some exporters do this
  expect_type(*a, {AttributeType::kFloat}, op_type());
  return a->f;
}

std::string ImportContext::attr_s(const std::string& name, const std::string& def) const {
  const AttributeProto* a = attr(name);
  if (!a) return def;
  expect_type(*a, {AttributeType::kString}, op_type());
  return std::string(a->s);
}

std::vector<int64_t> ImportContext::attr_ints(const std::string& name, const std::vector<int64_t>& def) const {
  const AttributeProto* a = attr(name);
  if (!a) return def;
  expect_type(*a, {AttributeType::kInts}, op_type());
  return a->ints;
}

std::vector<float> ImportContext::attr_floats(const std::string& name, const std::vector<float>& def) const {
  const AttributeProto* a = attr(name);
  if (!a) return def;
  expect_type(*a, {AttributeType::kFloats}, op_type());
  return a->floats;
}

HostTensor ImportContext::attr_tensor(const std::string& name) const {
  const AttributeProto* a = attr(name);
  if (!a) throw ImportError(ParserErrorCode::kINVALID_NODE, op_type() + ": missing the '" + name + "' attribute");
  if (a->type == AttributeType::kSparseTensor)
    throw ImportError(ParserErrorCode::kUNSUPPORTED_NODE_ATTR,
                      op_type() + ": attribute '" + name + "' is a sparse tensor; Kiln does not support sparse tensors");
  expect_type(*a, {AttributeType::kTensor}, op_type());
  if (!a->t) throw ImportError(ParserErrorCode::kINVALID_NODE, op_type() + ": attribute '" + name + "' holds no tensor");
  return tensor_to_host(*a->t, model_dir_, cache_, op_type() + " attribute '" + name + "'");
}

int64_t ImportContext::req_attr_i(const std::string& name, std::source_location loc) const {
  if (!attr(name))
    throw ImportError(ParserErrorCode::kINVALID_NODE, op_type() + ": missing the required attribute '" + name + "'", loc);
  return attr_i(name, 0);
}

std::vector<int64_t> ImportContext::req_attr_ints(const std::string& name, std::source_location loc) const {
  if (!attr(name))
    throw ImportError(ParserErrorCode::kINVALID_NODE, op_type() + ": missing the required attribute '" + name + "'", loc);
  return attr_ints(name);
}

// ---------------------------------------------------------------------------------------------------------
ir::Node* ImportContext::add(const std::string& op, std::vector<ir::Value*> ins, ir::Attrs attrs, int num_outputs,
                             std::source_location loc) {
  // Trailing omitted inputs are dropped so that ops with a fixed maximum arity accept them.
  while (!ins.empty() && !ins.back()) ins.pop_back();
  ir::Node* n = network_.add_op(op, ins, num_outputs);
  if (!n) throw ImportError(ParserErrorCode::kINTERNAL_ERROR, "could not add an IR '" + op + "' node (see the log)", loc);
  n->name = next_node_name();
  for (size_t i = 0; i < n->outputs.size(); ++i) n->outputs[i]->name = n->name + "_output_" + std::to_string(i);
  n->attrs = std::move(attrs);
  try {
    std::vector<ir::TensorInfo> infos;
    for (auto* in : n->inputs) {
      if (!in) {
        infos.push_back(ir::TensorInfo{false, kiln::DataType::kFLOAT, {}, nullptr});
        continue;
      }
      infos.push_back(ir::TensorInfo{true, in->dtype, in->shape, value_of(in)});
    }
    auto outs = ir::infer_node(*n, infos);
    for (size_t i = 0; i < outs.size() && i < n->outputs.size(); ++i) {
      n->outputs[i]->dtype = outs[i].dtype;
      n->outputs[i]->shape = outs[i].shape;
    }
  } catch (const std::exception& e) {
    graph().remove_nodes_if([&](const ir::Node* x) { return x == n; });
    throw ImportError(ParserErrorCode::kINVALID_NODE, e.what(), loc);
  }
  try_fold(n);
  return n;
}

void ImportContext::try_fold(ir::Node* n) {
  if (n->op == "Constant") return;
  if (n->op == "Fill" && n->attrs.i("op", 0) != 0) return;
  for (auto* o : n->outputs) {
    int64_t v = volume(o->shape);
    if (v < 0 || v > kMaxFoldElements) return;
  }
  if (n->op == "Shape") {  // known whenever the input's dims are
    const Dims& d = n->inputs[0]->shape;
    if (!dims_known(d)) return;
    int64_t r = static_cast<int64_t>(d.size());
    int64_t s = n->attrs.i("start", 0), e = n->attrs.i("end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = std::clamp<int64_t>(s, 0, r);
    e = std::clamp<int64_t>(e, s, r);
    known_[n->outputs[0]] = HostTensor::from_i64(std::vector<int64_t>(d.begin() + s, d.begin() + e));
    return;
  }
  std::vector<const HostTensor*> vals;
  for (auto* in : n->inputs) {
    if (!in) {
      vals.push_back(nullptr);
      continue;
    }
    const HostTensor* v = value_of(in);
    if (!v || v->numel() > kMaxFoldElements) return;
    vals.push_back(v);
  }
  if (n->inputs.empty() && n->op != "Fill") return;
  try {
    auto outs = cpu::eval_node(*n, vals);
    for (size_t i = 0; i < outs.size() && i < n->outputs.size(); ++i) known_[n->outputs[i]] = std::move(outs[i]);
  } catch (const std::exception&) {
    // Not computable here (no kernel yet, or a run-time error): the value stays unknown.
  }
}

ir::Value* ImportContext::constant(HostTensor t, const std::string& name) {
  std::string n = name.empty() ? next_node_name() : name;
  if (!name.empty()) {
    for (int k = 1; name_taken(n); ++k) n = name + "_" + std::to_string(k);
    node_names_.insert(n);
  }
  ir::Node* c = graph().add_constant(n, std::move(t));
  c->outputs[0]->name = name.empty() ? n + "_output_0" : name;
  return c->outputs[0];
}

ir::Value* ImportContext::const_i64(const std::vector<int64_t>& v) { return constant(HostTensor::from_i64(v)); }
ir::Value* ImportContext::const_i64_scalar(int64_t v) { return constant(HostTensor::scalar_i64(v)); }

namespace {
void store_scalar(HostTensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case kiln::DataType::kFLOAT: t.mutable_data<float>()[i] = static_cast<float>(v); break;
    case kiln::DataType::kDOUBLE: t.mutable_data<double>()[i] = v; break;
    case kiln::DataType::kHALF: t.mutable_data<uint16_t>()[i] = float_to_half(static_cast<float>(v)); break;
    case kiln::DataType::kBF16: t.mutable_data<uint16_t>()[i] = float_to_bf16(static_cast<float>(v)); break;
    case kiln::DataType::kINT32: t.mutable_data<int32_t>()[i] = static_cast<int32_t>(v); break;
    case kiln::DataType::kINT64: t.mutable_data<int64_t>()[i] = static_cast<int64_t>(v); break;
    case kiln::DataType::kINT8: t.mutable_data<int8_t>()[i] = static_cast<int8_t>(v); break;
    case kiln::DataType::kUINT8: t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
    case kiln::DataType::kBOOL: t.mutable_data<uint8_t>()[i] = v != 0; break;
    case kiln::DataType::kINT16: t.mutable_data<int16_t>()[i] = static_cast<int16_t>(v); break;
    case kiln::DataType::kUINT16: t.mutable_data<uint16_t>()[i] = static_cast<uint16_t>(static_cast<int64_t>(v)); break;
    case kiln::DataType::kUINT32: t.mutable_data<uint32_t>()[i] = static_cast<uint32_t>(static_cast<int64_t>(v)); break;
    case kiln::DataType::kUINT64: t.mutable_data<uint64_t>()[i] = static_cast<uint64_t>(v); break;
    default: throw Error(std::string("cannot make a constant of dtype ") + dtype_name(t.dtype()));
  }
}
}  // namespace

ir::Value* ImportContext::const_scalar(kiln::DataType dtype, double v) { return const_like(dtype, v, 0); }

ir::Value* ImportContext::const_like(kiln::DataType dtype, double v, size_t rank) {
  HostTensor t(dtype, Dims(rank, 1));
  store_scalar(t, 0, v);
  return constant(std::move(t));
}

// ---------------------------------------------------------------------------------------------------------
const HostTensor* ImportContext::value_of(const ir::Value* v) const {
  if (!v) return nullptr;
  if (const HostTensor* c = ir::constant_value(v)) return c;
  auto it = known_.find(v);
  return it == known_.end() ? nullptr : &it->second;
}

std::optional<std::vector<int64_t>> ImportContext::ints_of(const ir::Value* v, const std::string& what) const {
  const HostTensor* t = value_of(v);
  if (!t) return std::nullopt;
  if (dtype_is_float(t->dtype()))
    throw ImportError(ParserErrorCode::kINVALID_NODE,
                      op_type() + ": " + what + " must be an integer tensor, got " + dtype_name(t->dtype()));
  return t->to_i64();
}

std::optional<std::vector<double>> ImportContext::floats_of(const ir::Value* v) const {
  const HostTensor* t = value_of(v);
  if (!t) return std::nullopt;
  std::vector<double> out(t->numel());
  for (int64_t i = 0; i < t->numel(); ++i) out[i] = t->get_f64(i);
  return out;
}

std::vector<int64_t> ImportContext::req_ints_of(const ir::Value* v, const std::string& what,
                                                std::source_location loc) const {
  auto r = ints_of(v, what);
  if (!r)
    throw ImportError(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
                      op_type() + ": " + what + " ('" + (v ? v->name : std::string("?")) +
                          "') must be known when the network is built (a constant or computable from static "
                          "shapes); Kiln does not support it as a run-time tensor here",
                      loc);
  return *r;
}

std::optional<ImportContext::SymShape> ImportContext::sym_of(const ir::Value* v) const {
  if (!v) return std::nullopt;
  if (const HostTensor* t = value_of(v)) {
    if (dtype_is_float(t->dtype()) || t->shape().size() > 1 || t->numel() > 64) return std::nullopt;
    SymShape s;
    for (int64_t i = 0; i < t->numel(); ++i) s.push_back(SymDim{nullptr, t->get_i64(i)});
    return s;
  }
  auto it = sym_.find(v);
  if (it == sym_.end()) return std::nullopt;
  return it->second;
}

ImportContext::SymShape ImportContext::sym_dims(const ir::Value* x, int64_t begin, int64_t end) const {
  SymShape s;
  for (int64_t i = begin; i < end; ++i)
    s.push_back(x->shape[i] >= 0 ? SymDim{nullptr, x->shape[i]} : SymDim{x, i});
  return s;
}

int64_t ImportContext::axis(int64_t a, int64_t r, const std::string& what, std::source_location loc) const {
  int64_t x = a < 0 ? a + r : a;
  if (x < 0 || x >= r)
    throw ImportError(ParserErrorCode::kINVALID_NODE,
                      op_type() + ": " + what + " " + std::to_string(a) + " is out of range for a rank-" +
                          std::to_string(r) + " tensor",
                      loc);
  return x;
}

// ---------------------------------------------------------------------------------------------------------
ir::Value* ImportContext::elementwise(ir::Value* a, ir::Value* b, int64_t op) {
  ir::Attrs at;
  at.set("op", op);
  return add1("ElementWise", {a, b}, std::move(at));
}

ir::Value* ImportContext::unary(ir::Value* x, int64_t op) {
  ir::Attrs at;
  at.set("op", op);
  return add1("Unary", {x}, std::move(at));
}

ir::Value* ImportContext::cast(ir::Value* x, kiln::DataType to) {
  ir::Attrs at;
  at.set("to", static_cast<int64_t>(to));
  return add1("Cast", {x}, std::move(at));
}

ir::Value* ImportContext::identity(ir::Value* x) { return add1("Identity", {x}); }

ir::Value* ImportContext::shape_of(ir::Value* x) {
  // Static dims are known now: a constant keeps everything computed from them foldable.
  if (dims_known(x->shape)) return const_i64(x->shape);
  ir::Value* s = add1("Shape", {x});
  set_sym(s, sym_dims(x, 0, rank(x)));
  return s;
}

ir::Value* ImportContext::dims_slice(ir::Value* x, int64_t begin, int64_t end) {
  int64_t r = rank(x);
  bool known = true;
  for (int64_t i = begin; i < end; ++i) known = known && x->shape[i] >= 0;
  if (known) return const_i64(std::vector<int64_t>(x->shape.begin() + begin, x->shape.begin() + end));
  ir::Value* s = shape_of(x);
  if (begin == 0 && end == r) return s;
  return add1("DynamicSlice", {s, const_i64({begin}), const_i64({end}), const_i64({0})});
}

ir::Value* ImportContext::dims_product(ir::Value* x, int64_t begin, int64_t end) {
  int64_t p = 1;
  bool known = true;
  for (int64_t i = begin; i < end; ++i) {
    if (x->shape[i] < 0) known = false;
    else p *= x->shape[i];
  }
  if (known) return const_i64({p});
  ir::Value* s = shape_of(x);
  ir::Value* acc = nullptr;
  for (int64_t i = begin; i < end; ++i) {
    ir::Attrs at;
    at.set("axis", int64_t{0});
    at.set("mode", int64_t{0});
    ir::Value* d = add1("Gather", {s, const_i64({i})}, std::move(at));
    acc = acc ? elementwise(acc, d, ir_enum::kProd) : d;
  }
  return acc;
}

ir::Value* ImportContext::reshape(ir::Value* x, const std::vector<int64_t>& dims, bool zero_is_placeholder) {
  ir::Attrs at;
  at.set("has_reshape", int64_t{1});
  at.set("reshape_dims", dims);
  at.set("zero_is_placeholder", int64_t{zero_is_placeholder});
  return add1("Shuffle", {x}, std::move(at));
}

ir::Value* ImportContext::reshape_to(ir::Value* x, ir::Value* shape) {
  if (auto v = ints_of(shape, "the reshape dims")) {
    ir::Attrs at;
    at.set("has_reshape", int64_t{1});
    at.set("reshape_dims", *v);
    at.set("zero_is_placeholder", int64_t{0});
    return add1("Shuffle", {x}, std::move(at));
  }
  ir::Attrs at;
  at.set("zero_is_placeholder", int64_t{0});
  return add1("Shuffle", {x, shape}, std::move(at));
}

ir::Value* ImportContext::transpose(ir::Value* x, const std::vector<int64_t>& perm) {
  ir::Attrs at;
  at.set("first_transpose", perm);
  at.set("has_reshape", int64_t{0});
  return add1("Shuffle", {x}, std::move(at));
}

ir::Value* ImportContext::unsqueeze(ir::Value* x, const std::vector<int64_t>& axes) {
  ir::Attrs at;
  at.set("axes", axes);
  return add1("Unsqueeze", {x}, std::move(at));
}

ir::Value* ImportContext::concat(const std::vector<ir::Value*>& xs, int64_t axis) {
  if (xs.size() == 1) return xs[0];
  ir::Attrs at;
  at.set("axis", axis);
  return add1("Concatenation", xs, std::move(at));
}

ir::Value* ImportContext::flatten2d(ir::Value* x, int64_t ax) {
  int64_t r = rank(x);
  auto known_range = [&](int64_t b, int64_t e, int64_t* p) {
    *p = 1;
    for (int64_t i = b; i < e; ++i) {
      if (x->shape[i] < 0) return false;
      *p *= x->shape[i];
    }
    return true;
  };
  int64_t before = 1, after = 1;
  bool kb = known_range(0, ax, &before), ka = known_range(ax, r, &after);
  if (kb && ka) return reshape(x, {before, after}, false);
  if (ka && after > 0) return reshape(x, {-1, after}, false);
  if (kb && before > 0) return reshape(x, {before, -1}, false);
  if (ax == 1) return reshape(x, {0, -1}, true);  // [N, rest]: N copied, the rest inferred
  // Otherwise the sizes come from the run-time shape: [prod(d[:axis]), prod(d[axis:])].
  ir::Value* shape = concat({dims_product(x, 0, ax), dims_product(x, ax, r)}, 0);
  return reshape_to(x, shape);
}

// ---------------------------------------------------------------------------------------------------------
namespace {
std::map<std::pair<std::string, std::string>, ImporterFn>& registry() {
  static std::map<std::pair<std::string, std::string>, ImporterFn> r;
  return r;
}
}  // namespace

std::string canonical_domain(std::string_view domain) {
  if (domain.empty() || domain == "ai.onnx") return "";
  return std::string(domain);
}

void register_importer(const std::string& domain, const std::string& op_type, ImporterFn fn) {
  registry()[{canonical_domain(domain), op_type}] = fn;
}

ImporterFn find_importer(const std::string& domain, const std::string& op_type) {
  auto it = registry().find({canonical_domain(domain), op_type});
  return it == registry().end() ? nullptr : it->second;
}

std::vector<std::string> registered_importers() {
  std::vector<std::string> v;
  for (auto& [k, f] : registry()) v.push_back(k.first + ":" + k.second);
  return v;
}

}  // namespace kiln::onnx
