// One cuDNN backend (graph API) descriptor owned RAII-style, with setters whose C++ argument types fix the
// CUDNN_TYPE_* tag passed with them: the classic failure of this API is a value of the wrong width (an int
// where INT64 is expected, a double where FLOAT is), which cuDNN reports only as BAD_PARAM at finalize or,
// worse, reads as garbage. Every call returns its status: the graph path turns failures into a dropped
// candidate, never an exception.
#pragma once
#include <cudnn.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kiln::cuda {

class BackendDesc {
 public:
  BackendDesc() = default;
  explicit BackendDesc(cudnnBackendDescriptorType_t type) { status_ = cudnnBackendCreateDescriptor(type, &d_); }
  ~BackendDesc() { reset(); }
  BackendDesc(BackendDesc&& o) noexcept : d_(std::exchange(o.d_, nullptr)), status_(o.status_) {}
  BackendDesc& operator=(BackendDesc&& o) noexcept {
    if (this != &o) {
      reset();
      d_ = std::exchange(o.d_, nullptr);
      status_ = o.status_;
    }
    return *this;
  }
  BackendDesc(const BackendDesc&) = delete;
  BackendDesc& operator=(const BackendDesc&) = delete;

  // CUDNN_STATUS_SUCCESS when the descriptor was created (a null descriptor never is).
  cudnnStatus_t created() const {
    if (status_ != CUDNN_STATUS_SUCCESS) return status_;
    return d_ ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  }
  // cudnnBackendGetAttribute fills descriptors the caller created (ENGINEHEUR_RESULTS, ENGINECFG_ENGINE): it is
  // given these handles, never replaces them.
  cudnnBackendDescriptor_t get() const { return d_; }

  cudnnStatus_t set_i64(cudnnBackendAttributeName_t a, int64_t v) { return set(a, CUDNN_TYPE_INT64, 1, &v); }
  cudnnStatus_t set_i64s(cudnnBackendAttributeName_t a, const std::vector<int64_t>& v) {
    return set(a, CUDNN_TYPE_INT64, static_cast<int64_t>(v.size()), v.data());
  }
  cudnnStatus_t set_dtype(cudnnBackendAttributeName_t a, cudnnDataType_t v) { return set(a, CUDNN_TYPE_DATA_TYPE, 1, &v); }
  cudnnStatus_t set_bool(cudnnBackendAttributeName_t a, bool v) { return set(a, CUDNN_TYPE_BOOLEAN, 1, &v); }
  cudnnStatus_t set_float(cudnnBackendAttributeName_t a, float v) { return set(a, CUDNN_TYPE_FLOAT, 1, &v); }
  cudnnStatus_t set_handle(cudnnBackendAttributeName_t a, cudnnHandle_t h) { return set(a, CUDNN_TYPE_HANDLE, 1, &h); }
  cudnnStatus_t set_conv_mode(cudnnBackendAttributeName_t a, cudnnConvolutionMode_t v) {
    return set(a, CUDNN_TYPE_CONVOLUTION_MODE, 1, &v);
  }
  cudnnStatus_t set_pointwise_mode(cudnnBackendAttributeName_t a, cudnnPointwiseMode_t v) {
    return set(a, CUDNN_TYPE_POINTWISE_MODE, 1, &v);
  }
  cudnnStatus_t set_heur_mode(cudnnBackendAttributeName_t a, cudnnBackendHeurMode_t v) {
    return set(a, CUDNN_TYPE_HEUR_MODE, 1, &v);
  }
  cudnnStatus_t set_desc(cudnnBackendAttributeName_t a, const BackendDesc& v) {
    if (!v.d_) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    cudnnBackendDescriptor_t p = v.d_;
    return set(a, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &p);
  }
  cudnnStatus_t set_descs(cudnnBackendAttributeName_t a, const std::vector<cudnnBackendDescriptor_t>& v) {
    for (cudnnBackendDescriptor_t p : v)
      if (!p) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    return set(a, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(v.size()), v.data());
  }
  // VOID_PTR attributes take an array of pointers (one element: the address of one pointer).
  cudnnStatus_t set_ptrs(cudnnBackendAttributeName_t a, const std::vector<void*>& v) {
    return set(a, CUDNN_TYPE_VOID_PTR, static_cast<int64_t>(v.size()), v.data());
  }
  cudnnStatus_t set_ptr(cudnnBackendAttributeName_t a, void* p) { return set(a, CUDNN_TYPE_VOID_PTR, 1, &p); }

  cudnnStatus_t finalize() { return d_ ? cudnnBackendFinalize(d_) : CUDNN_STATUS_BAD_PARAM_NULL_POINTER; }

  cudnnStatus_t get_i64(cudnnBackendAttributeName_t a, int64_t* v) const {
    if (!d_) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    int64_t n = 0;
    cudnnStatus_t s = cudnnBackendGetAttribute(d_, a, CUDNN_TYPE_INT64, 1, &n, v);
    return s == CUDNN_STATUS_SUCCESS && n != 1 ? CUDNN_STATUS_BAD_PARAM : s;
  }

 private:
  cudnnStatus_t set(cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t, int64_t n, const void* v) {
    return d_ ? cudnnBackendSetAttribute(d_, a, t, n, v) : CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  }
  void reset() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
    d_ = nullptr;
  }

  cudnnBackendDescriptor_t d_ = nullptr;
  cudnnStatus_t status_ = CUDNN_STATUS_SUCCESS;
};

// Collects the first failure of a sequence of backend calls with what was being done and cuDNN's own
// message, so a dropped candidate can say why.
class BackendSteps {
 public:
  // True when `s` is success; otherwise records "what: status (detail)" once and returns false.
  bool ok(cudnnStatus_t s, const char* what) {
    if (s == CUDNN_STATUS_SUCCESS) return true;
    if (error_.empty()) {
      char detail[256] = {0};
      cudnnGetLastErrorString(detail, sizeof(detail));
      error_ = std::string(what) + ": " + cudnnGetErrorString(s);
      if (detail[0]) error_ += std::string(" (") + detail + ")";
    }
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace kiln::cuda
