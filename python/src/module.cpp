// pybind11 bindings: the C++ core exposed as `kiln._kiln`. The TensorRT-shaped API (names, enums,
// aliases, layer classes) is written in Python on top of this in python/kiln/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "backends/gpu_probe.h"
#include "build_interrupt.h"
#include "ir/graph.h"
#include "ir/op_registry.h"
#include "kiln/builder.h"
#include "kiln/onnx_parser.h"
#include "kiln/runtime.h"

namespace py = pybind11;
using namespace kiln;
using kiln::python::keep_if_interrupt;
using kiln::python::run_watched;

namespace {

// Forwards C++ log messages to a Python object with a log(severity:int, msg:str) method.
class PyLogger : public ILogger {
 public:
  explicit PyLogger(py::object target) : target_(std::move(target)) {}
  void log(Severity s, const char* msg) noexcept override {
    py::gil_scoped_acquire gil;
    try {
      target_.attr("_kiln_log")(static_cast<int>(s), std::string(msg));
    } catch (py::error_already_set& e) {
      if (!keep_if_interrupt(e)) e.discard_as_unraisable("kiln logger");  // a KeyboardInterrupt stops the build
    }
  }

 private:
  py::object target_;
};

// An IOutputAllocator that calls a Python adapter's _kiln_reallocate(name, memory, size, alignment) -> int
// and _kiln_notify_shape(name, shape) (python/kiln/runtime.py adapts user allocators to these). Runs on the
// executing thread, which does not hold the GIL; Python errors become kiln::Error and fail the execution.
class PyOutputAllocator : public IOutputAllocator {
 public:
  explicit PyOutputAllocator(py::object target) : target_(std::move(target)) {}
  void* reallocate_output(const std::string& name, void* current, uint64_t size, uint64_t alignment) override {
    py::gil_scoped_acquire gil;
    try {
      py::object r = target_.attr("_kiln_reallocate")(name, reinterpret_cast<uintptr_t>(current), size, alignment);
      return reinterpret_cast<void*>(r.cast<uintptr_t>());
    } catch (py::error_already_set& e) {
      throw Error("reallocate_output('" + name + "') raised " + e.what());
    } catch (py::cast_error& e) {
      throw Error("reallocate_output('" + name + "') must return an address (int) or an array: " + e.what());
    }
  }
  void notify_shape(const std::string& name, const Dims& dims) override {
    py::gil_scoped_acquire gil;
    try {
      target_.attr("_kiln_notify_shape")(name, dims);
    } catch (py::error_already_set& e) {
      throw Error("notify_shape('" + name + "') raised " + e.what());
    }
  }

 private:
  py::object target_;
};

// TensorRT 10's IProgressMonitor implemented in Python (kiln.IProgressMonitor): the builder calls it from the
// building thread, which runs without the GIL. A monitor that raises is reported (sys.unraisablehook) and
// the build goes on, unless it raised KeyboardInterrupt (build_interrupt.h).
class PyProgressMonitor : public IProgressMonitor {
 public:
  explicit PyProgressMonitor(py::object target) : target_(std::move(target)) {}
  void phase_start(const char* phase, const char* parent, int32_t steps) noexcept override {
    py::gil_scoped_acquire gil;
    try {
      target_.attr("phase_start")(phase, parent ? py::object(py::str(parent)) : py::object(py::none()), steps);
    } catch (py::error_already_set& e) {
      if (!keep_if_interrupt(e)) e.discard_as_unraisable("IProgressMonitor.phase_start");
    }
  }
  bool step_complete(const char* phase, int32_t step) noexcept override {
    py::gil_scoped_acquire gil;
    try {
      py::object r = target_.attr("step_complete")(phase, step);
      return r.is_none() || py::bool_(r);
    } catch (py::error_already_set& e) {
      if (keep_if_interrupt(e)) return false;  // Ctrl-C inside the monitor: stop the build
      e.discard_as_unraisable("IProgressMonitor.step_complete");
      return true;
    }
  }
  void phase_finish(const char* phase) noexcept override {
    py::gil_scoped_acquire gil;
    try {
      target_.attr("phase_finish")(phase);
    } catch (py::error_already_set& e) {
      if (!keep_if_interrupt(e)) e.discard_as_unraisable("IProgressMonitor.phase_finish");
    }
  }

 private:
  py::object target_;
};

DataType dtype_from_numpy(const py::dtype& dt) {
  char k = dt.kind();
  size_t n = dt.itemsize();
  if (k == 'f' && n == 4) return DataType::kFLOAT;
  if (k == 'f' && n == 2) return DataType::kHALF;
  if (k == 'f' && n == 8) return DataType::kDOUBLE;
  if (k == 'i' && n == 4) return DataType::kINT32;
  if (k == 'i' && n == 8) return DataType::kINT64;
  if (k == 'i' && n == 1) return DataType::kINT8;
  if (k == 'u' && n == 1) return DataType::kUINT8;
  if (k == 'i' && n == 2) return DataType::kINT16;
  if (k == 'u' && n == 2) return DataType::kUINT16;
  if (k == 'u' && n == 4) return DataType::kUINT32;
  if (k == 'u' && n == 8) return DataType::kUINT64;
  if (k == 'b') return DataType::kBOOL;
  throw py::type_error("numpy dtype " + std::string(py::str(dt)) + " has no Kiln DataType");
}

py::dtype numpy_from_dtype(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return py::dtype("float32");
    case DataType::kHALF: return py::dtype("float16");
    case DataType::kDOUBLE: return py::dtype("float64");
    case DataType::kINT32: return py::dtype("int32");
    case DataType::kINT64: return py::dtype("int64");
    case DataType::kINT8: return py::dtype("int8");
    case DataType::kUINT8: return py::dtype("uint8");
    case DataType::kBOOL: return py::dtype("bool");
    case DataType::kBF16: return py::dtype("uint16");
    case DataType::kINT16: return py::dtype("int16");
    case DataType::kUINT16: return py::dtype("uint16");
    case DataType::kUINT32: return py::dtype("uint32");
    case DataType::kUINT64: return py::dtype("uint64");
    // No numpy type: the stored bytes (float8/float4/E8M0 codes; 4/2-bit integers one per byte).
    case DataType::kFP8:
    case DataType::kFP8E5M2:
    case DataType::kFP8E4M3FNUZ:
    case DataType::kFP8E5M2FNUZ:
    case DataType::kFP4:
    case DataType::kE8M0:
    case DataType::kUINT4:
    case DataType::kUINT2: return py::dtype("uint8");
    case DataType::kINT4:
    case DataType::kINT2: return py::dtype("int8");
    default: throw py::type_error(std::string("DataType ") + dtype_name(t) + " has no numpy equivalent");
  }
}

// Copies a numpy array (any layout) into an owned HostTensor.
HostTensor tensor_from_numpy(const py::array& a, py::object dtype_override) {
  py::array c = py::array::ensure(a, py::array::c_style);
  if (!c) throw py::type_error("expected an array-like value");
  DataType dt = dtype_override.is_none() ? dtype_from_numpy(c.dtype()) : DataType(dtype_override.cast<int>());
  Dims shape(c.shape(), c.shape() + c.ndim());
  if (static_cast<size_t>(c.nbytes()) != static_cast<size_t>(volume(shape)) * dtype_size(dt))
    throw py::value_error("array bytes do not match the DataType");
  return HostTensor::copy_of(dt, shape, c.data());
}

py::array numpy_from_tensor(const HostTensor& t) {
  py::array a(numpy_from_dtype(t.dtype()), std::vector<py::ssize_t>(t.shape().begin(), t.shape().end()));
  if (t.nbytes()) std::memcpy(a.mutable_data(), t.raw(), t.nbytes());
  return a;
}

py::object attr_to_py(const ir::AttrValue& v) {
  return std::visit(
      [](const auto& x) -> py::object {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, HostTensor>) return numpy_from_tensor(x);
        else return py::cast(x);
      },
      v);
}

ir::AttrValue attr_from_py(const py::handle& o) {
  if (py::isinstance<py::bool_>(o)) return static_cast<int64_t>(o.cast<bool>());
  if (py::isinstance<py::int_>(o)) return o.cast<int64_t>();
  if (py::isinstance<py::float_>(o)) return o.cast<double>();
  if (py::isinstance<py::str>(o)) return o.cast<std::string>();
  if (py::isinstance<py::array>(o)) return tensor_from_numpy(o.cast<py::array>(), py::none());
  if (py::isinstance<py::sequence>(o)) {
    auto seq = o.cast<py::sequence>();
    bool all_int = true;
    for (auto item : seq)
      if (!py::isinstance<py::int_>(item)) all_int = false;
    if (all_int) return seq.cast<std::vector<int64_t>>();
    return seq.cast<std::vector<double>>();
  }
  throw py::type_error("unsupported attribute value type");
}

}  // namespace

PYBIND11_MODULE(_kiln, m) {
  m.doc() = "Kiln core bindings";
  m.attr("__version__") = KILN_VERSION;
  m.def("built_with_cuda", &gpu::built_with_cuda);
  m.def("gpu_available", &gpu::available);
  m.def("gpu_unavailable_reason", &gpu::unavailable_reason);
  m.def("gpu_target", &gpu::target);
  m.def("gpu_library_versions", &gpu::library_versions);
  py::register_exception<kiln::Error>(m, "KilnError");

  py::class_<PyLogger, std::shared_ptr<PyLogger>>(m, "LoggerBridge").def(py::init<py::object>());

  m.def("dtype_size", [](int t) { return dtype_size(DataType(t)); });
  m.def("registered_ops", &ir::registered_ops);

  py::class_<ir::Value>(m, "Tensor")
      .def_property("name", [](ir::Value& v) { return v.name; }, [](ir::Value& v, std::string n) { v.name = std::move(n); })
      .def_property_readonly("shape", [](ir::Value& v) { return v.shape; })
      .def_property_readonly("dtype", [](ir::Value& v) { return static_cast<int>(v.dtype); })
      .def("set_dtype", [](ir::Value& v, int t) { v.dtype = DataType(t); })
      .def_property_readonly("is_input", [](ir::Value& v) { return v.is_input; })
      .def_property_readonly("is_output", [](ir::Value& v) { return v.is_output; })
      .def_property_readonly("producer", [](ir::Value& v) { return v.producer; }, py::return_value_policy::reference);

  py::class_<ir::Node>(m, "Node")
      .def_property("name", [](ir::Node& n) { return n.name; }, [](ir::Node& n, std::string s) { n.name = std::move(s); })
      .def_property_readonly("op", [](ir::Node& n) { return n.op; })
      .def_property_readonly("num_inputs", [](ir::Node& n) { return n.inputs.size(); })
      .def_property_readonly("num_outputs", [](ir::Node& n) { return n.outputs.size(); })
      .def("get_input", [](ir::Node& n, size_t i) { return i < n.inputs.size() ? n.inputs[i] : nullptr; },
           py::return_value_policy::reference)
      .def("get_output", [](ir::Node& n, size_t i) { return i < n.outputs.size() ? n.outputs[i] : nullptr; },
           py::return_value_policy::reference)
      .def("set_input", [](ir::Node& n, size_t i, ir::Value* v) {
        if (i > n.inputs.size()) throw py::index_error("input index " + std::to_string(i) + " out of range");
        if (i == n.inputs.size()) n.inputs.push_back(v);
        else n.inputs[i] = v;
      })
      .def("has_attr", [](ir::Node& n, const std::string& k) { return n.attrs.has(k); })
      .def("get_attr", [](ir::Node& n, const std::string& k) -> py::object {
        auto& all = n.attrs.all();
        auto it = all.find(k);
        return it == all.end() ? py::none() : attr_to_py(it->second);
      })
      .def("set_attr", [](ir::Node& n, const std::string& k, py::object v) { n.attrs.set_value(k, attr_from_py(v)); })
      .def("set_attr_tensor", [](ir::Node& n, const std::string& k, py::array a, py::object dt) {
        n.attrs.set(k, tensor_from_numpy(a, dt));
      })
      .def_property("precision",
                    [](ir::Node& n) -> py::object { return n.precision ? py::cast(static_cast<int>(*n.precision)) : py::none(); },
                    [](ir::Node& n, py::object p) {
                      if (p.is_none()) n.precision.reset();
                      else n.precision = DataType(p.cast<int>());
                    })
      .def("set_output_type", [](ir::Node& n, size_t i, int t) {
        if (i >= n.output_types.size()) throw py::index_error("output index out of range");
        n.output_types[i] = DataType(t);
      })
      .def("get_output_type", [](ir::Node& n, size_t i) -> int {
        if (i < n.output_types.size() && n.output_types[i]) return static_cast<int>(*n.output_types[i]);
        return i < n.outputs.size() ? static_cast<int>(n.outputs[i]->dtype) : 0;
      })
      .def("output_type_is_set", [](ir::Node& n, size_t i) { return i < n.output_types.size() && n.output_types[i].has_value(); });

  auto rp = py::return_value_policy::reference_internal;
  py::class_<Network>(m, "Network")
      .def(py::init([](std::shared_ptr<PyLogger> l, uint32_t flags) { return std::make_unique<Network>(l.get(), flags); }),
           py::keep_alive<1, 2>())
      .def_readwrite("name", &Network::name)
      .def_property_readonly("strongly_typed", &Network::strongly_typed)
      .def("add_input", [](Network& n, const std::string& name, int dt, Dims d) { return n.add_input(name, DataType(dt), d); }, rp)
      .def("mark_output", &Network::mark_output)
      .def("unmark_output", &Network::unmark_output)
      .def("layers", &Network::layers, rp)
      .def("inputs", [](Network& n) { return n.graph().inputs(); }, rp)
      .def("outputs", [](Network& n) { return n.graph().outputs(); }, rp)
      .def("infer_shapes", &Network::infer_shapes)
      .def("add_constant", [](Network& n, Dims d, py::array w, py::object dt) { return n.add_constant(d, tensor_from_numpy(w, dt)); }, rp)
      .def("add_convolution_nd", [](Network& n, ir::Value* in, int64_t k, Dims ks, py::array w, py::object b) {
        return n.add_convolution_nd(in, k, ks, tensor_from_numpy(w, py::none()),
                                    b.is_none() ? HostTensor() : tensor_from_numpy(b.cast<py::array>(), py::none()));
      }, rp)
      .def("add_deconvolution_nd", [](Network& n, ir::Value* in, int64_t k, Dims ks, py::array w, py::object b) {
        return n.add_deconvolution_nd(in, k, ks, tensor_from_numpy(w, py::none()),
                                      b.is_none() ? HostTensor() : tensor_from_numpy(b.cast<py::array>(), py::none()));
      }, rp)
      .def("add_fully_connected", [](Network& n, ir::Value* in, int64_t k, py::array w, py::object b) {
        return n.add_fully_connected(in, k, tensor_from_numpy(w, py::none()),
                                     b.is_none() ? HostTensor() : tensor_from_numpy(b.cast<py::array>(), py::none()));
      }, rp)
      .def("add_pooling_nd", &Network::add_pooling_nd, rp)
      .def("add_activation", &Network::add_activation, rp)
      .def("add_elementwise", &Network::add_elementwise, rp)
      .def("add_unary", &Network::add_unary, rp)
      .def("add_matrix_multiply", &Network::add_matrix_multiply, rp)
      .def("add_shuffle", &Network::add_shuffle, rp)
      .def("add_concatenation", &Network::add_concatenation, rp)
      .def("add_slice", &Network::add_slice, rp)
      .def("add_gather", &Network::add_gather, rp)
      .def("add_reduce", &Network::add_reduce, rp)
      .def("add_softmax", &Network::add_softmax, rp)
      .def("add_cast", [](Network& n, ir::Value* in, int t) { return n.add_cast(in, DataType(t)); }, rp)
      .def("add_identity", &Network::add_identity, rp)
      .def("add_shape", &Network::add_shape, rp)
      .def("add_select", &Network::add_select, rp)
      .def("add_resize", &Network::add_resize, rp)
      .def("add_padding_nd", &Network::add_padding_nd, rp)
      .def("add_topk", &Network::add_topk, rp)
      .def("add_scale", [](Network& n, ir::Value* in, int mode, py::object shift, py::object scale, py::object power,
                           int64_t axis) {
        auto t = [](py::object o) { return o.is_none() ? HostTensor() : tensor_from_numpy(o.cast<py::array>(), py::none()); };
        return n.add_scale(in, mode, t(shift), t(scale), t(power), axis);
      }, rp)
      .def("add_normalization", &Network::add_normalization, rp)
      .def("add_einsum", &Network::add_einsum, rp)
      .def("add_fill", [](Network& n, Dims d, int op, int dt) { return n.add_fill(d, op, DataType(dt)); }, rp)
      .def("add_op", &Network::add_op, rp)
      .def("weights_of", [](Network& n, ir::Node* l, int i) -> py::object {
        ir::Node* c = n.weights_of(l, i);
        if (!c) return py::none();
        return numpy_from_tensor(c->attrs.tensor("value"));
      })
      .def("set_weights", [](Network& n, ir::Node* l, int i, py::array w) { n.set_weights(l, i, tensor_from_numpy(w, py::none())); });

  py::class_<OptimizationProfile>(m, "OptimizationProfile")
      .def(py::init<>())
      .def("set_shape", &OptimizationProfile::set_shape)
      .def("get_shape", &OptimizationProfile::get_shape)
      .def("is_valid", &OptimizationProfile::is_valid)
      .def_readonly("last_error", &OptimizationProfile::last_error);

  py::class_<PyProgressMonitor, std::shared_ptr<PyProgressMonitor>>(m, "ProgressMonitorBridge")
      .def(py::init<py::object>());

  py::class_<TimingCache, std::shared_ptr<TimingCache>>(m, "TimingCache")
      .def(py::init([](py::bytes data) {
        std::string s = data;
        return std::make_shared<TimingCache>(std::vector<uint8_t>(s.begin(), s.end()));
      }))
      .def("serialize", [](const TimingCache& c) {
        std::vector<uint8_t> b = c.serialize();
        return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
      })
      .def("combine", &TimingCache::combine)
      .def("reset", &TimingCache::reset)
      .def("size", &TimingCache::size);

  py::class_<BuilderConfig>(m, "BuilderConfig")
      .def(py::init<>())
      .def("set_memory_pool_limit", [](BuilderConfig& c, int p, uint64_t b) { c.set_memory_pool_limit(MemoryPoolType(p), b); })
      .def("get_memory_pool_limit", [](BuilderConfig& c, int p) { return c.get_memory_pool_limit(MemoryPoolType(p)); })
      .def_property("flags", &BuilderConfig::flags, &BuilderConfig::set_flags)
      .def("add_optimization_profile", &BuilderConfig::add_optimization_profile)
      .def_property_readonly("num_optimization_profiles", [](BuilderConfig& c) { return c.profiles().size(); })
      .def_property("default_device_type", [](BuilderConfig& c) { return static_cast<int>(c.default_device_type); },
                    [](BuilderConfig& c, int d) { c.default_device_type = DeviceType(d); })
      .def("set_progress_monitor", [](BuilderConfig& c, PyProgressMonitor* m) {
        c.progress_monitor = m;  // the Python side keeps `m` alive while it is set
      }, py::arg("monitor").none(true))
      .def_readwrite("timing_cache", &BuilderConfig::timing_cache)
      .def_readwrite("builder_optimization_level", &BuilderConfig::builder_optimization_level)
      .def_readwrite("avg_timing_iterations", &BuilderConfig::avg_timing_iterations)
      .def_readwrite("profiling_verbosity", &BuilderConfig::profiling_verbosity);

  py::class_<Builder>(m, "Builder")
      .def(py::init([](std::shared_ptr<PyLogger> l) { return std::make_unique<Builder>(l.get()); }), py::keep_alive<1, 2>())
      .def("build_serialized_network", [](Builder& b, Network& n, const BuilderConfig& c) -> py::object {
        // The user's monitor (if any) inside one that stops the build on Ctrl-C (build_interrupt.h).
        kiln::python::BuildInterruptMonitor monitor(c.progress_monitor);
        BuilderConfig config = c;
        config.progress_monitor = &monitor;
        const std::vector<uint8_t> plan = run_watched([&] { return b.build_serialized_network(n, config); });
        if (plan.empty()) return py::none();
        return py::bytes(reinterpret_cast<const char*>(plan.data()), plan.size());
      });

  py::class_<ParserError>(m, "ParserError")
      .def("code", [](ParserError& e) { return static_cast<int>(e.code); })
      .def("desc", [](ParserError& e) { return e.desc; })
      .def("file", [](ParserError& e) { return e.file; })
      .def("line", [](ParserError& e) { return e.line; })
      .def("func", [](ParserError& e) { return e.func; })
      .def("node", [](ParserError& e) { return e.node; })
      .def("node_name", [](ParserError& e) { return e.node_name; })
      .def("node_operator", [](ParserError& e) { return e.node_operator; })
      .def("__str__", &ParserError::str)
      .def("__repr__", &ParserError::str);

  py::class_<OnnxParser>(m, "OnnxParser")
      .def(py::init([](Network& n, std::shared_ptr<PyLogger> l) { return std::make_unique<OnnxParser>(n, l.get()); }),
           py::keep_alive<1, 2>(), py::keep_alive<1, 3>())
      .def("parse", [](OnnxParser& p, py::buffer b, std::string path) {
        py::buffer_info info = b.request();
        return run_watched([&] { return p.parse(info.ptr, static_cast<size_t>(info.size * info.itemsize), path); });
      })
      .def("parse_from_file", [](OnnxParser& p, std::string path) {
        return run_watched([&] { return p.parse_from_file(path); });
      })
      .def_property_readonly("num_errors", &OnnxParser::num_errors)
      .def("get_error", [](OnnxParser& p, int i) -> py::object {
        if (i < 0 || i >= p.num_errors()) return py::none();
        return py::cast(p.error(i));
      })
      .def("clear_errors", &OnnxParser::clear_errors)
      .def("supports_operator", &OnnxParser::supports_operator, py::arg("op_type"), py::arg("domain") = "");

  py::class_<Engine, std::shared_ptr<Engine>>(m, "Engine")
      .def_property_readonly("name", &Engine::name)
      .def_property_readonly("target", &Engine::target)
      .def_property_readonly("num_io_tensors", &Engine::num_io_tensors)
      .def_property_readonly("num_layers", &Engine::num_layers)
      .def_property_readonly("num_optimization_profiles", &Engine::num_optimization_profiles)
      .def_property_readonly("device_memory_size", &Engine::device_memory_size)
      .def("io_name", &Engine::io_name)
      .def("io_index", &Engine::io_index)
      .def("io_mode", [](Engine& e, const std::string& n) { return static_cast<int>(e.io_mode(n)); })
      .def("io_shape", &Engine::io_shape)
      .def("io_dtype", [](Engine& e, const std::string& n) { return static_cast<int>(e.io_dtype(n)); })
      .def("profile_shapes", &Engine::profile_shapes)
      .def("is_shape_inference_io", &Engine::is_shape_inference_io)
      .def("describe", &Engine::describe)
      .def("serialize", [](Engine& e) {
        return py::bytes(reinterpret_cast<const char*>(e.serialized().data()), e.serialized().size());
      })
      .def("create_execution_context", [](Engine& e) { return std::shared_ptr<ExecutionContext>(e.create_execution_context()); });

  py::class_<ExecutionContext, std::shared_ptr<ExecutionContext>>(m, "ExecutionContext")
      .def_readwrite("name", &ExecutionContext::name)
      .def_readwrite("debug_sync", &ExecutionContext::debug_sync)
      .def_readwrite("profiling", &ExecutionContext::profiling)
      .def("last_profile", [](const ExecutionContext& c) {
        py::list out;
        for (const auto& l : c.last_profile())
          out.append(py::dict(py::arg("name") = l.name, py::arg("op") = l.op, py::arg("ms") = l.ms,
                              py::arg("flops") = l.flops, py::arg("bytes") = l.bytes, py::arg("on_host") = l.on_host));
        return out;
      })
      .def("set_tensor_address", [](ExecutionContext& c, const std::string& n, uintptr_t p) {
        return c.set_tensor_address(n, reinterpret_cast<void*>(p));
      })
      .def("get_tensor_address", [](ExecutionContext& c, const std::string& n) {
        return reinterpret_cast<uintptr_t>(c.get_tensor_address(n));
      })
      .def("set_input_shape", &ExecutionContext::set_input_shape)
      .def("get_tensor_shape", &ExecutionContext::get_tensor_shape)
      .def("set_output_allocator", [](ExecutionContext& c, const std::string& n, PyOutputAllocator* a) {
        return c.set_output_allocator(n, a);  // the Python side keeps `a` alive while it is set
      }, py::arg("name"), py::arg("allocator").none(true))
      .def("all_input_shapes_specified", &ExecutionContext::all_input_shapes_specified)
      .def("set_optimization_profile", &ExecutionContext::set_optimization_profile)
      .def_property_readonly("active_optimization_profile", &ExecutionContext::active_optimization_profile)
      .def_property_readonly("activation_bytes", &ExecutionContext::activation_bytes)
      .def("execute", [](ExecutionContext& c) {
        py::gil_scoped_release nogil;
        return c.execute();
      })
      .def("execute_bindings", [](ExecutionContext& c, std::vector<uintptr_t> b) {
        std::vector<void*> ptrs;
        for (auto p : b) ptrs.push_back(reinterpret_cast<void*>(p));
        py::gil_scoped_release nogil;
        return c.execute_bindings(ptrs);
      })
      .def("execute_async", [](ExecutionContext& c, uintptr_t stream) {
        py::gil_scoped_release nogil;
        return c.execute_async(reinterpret_cast<void*>(stream));
      })
      .def("execute_bindings_async", [](ExecutionContext& c, std::vector<uintptr_t> b, uintptr_t stream) {
        std::vector<void*> ptrs;
        for (auto p : b) ptrs.push_back(reinterpret_cast<void*>(p));
        py::gil_scoped_release nogil;
        return c.execute_bindings_async(ptrs, reinterpret_cast<void*>(stream));
      })
      .def_property_readonly("on_gpu", &ExecutionContext::on_gpu);

  py::class_<PyOutputAllocator>(m, "OutputAllocatorBridge").def(py::init<py::object>());

  py::class_<Runtime>(m, "Runtime")
      .def(py::init([](std::shared_ptr<PyLogger> l) { return std::make_unique<Runtime>(l.get()); }), py::keep_alive<1, 2>())
      .def("deserialize", [](Runtime& r, py::buffer b) -> std::shared_ptr<Engine> {
        py::buffer_info info = b.request();
        return r.deserialize(info.ptr, static_cast<size_t>(info.size * info.itemsize));
      });
}
