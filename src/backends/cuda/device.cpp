#include "backends/cuda/device.h"

#include <cudnn.h>
#include <cublasLt.h>

#include <mutex>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/library_checks.h"
#include "backends/gpu_probe.h"
#include "kiln/types.h"

namespace kiln::cuda {

void throw_library_error(const char* library, const std::string& message, const char* call, const char* file,
                         int line) {
  std::string f = file;
  auto slash = f.rfind("src/");
  if (slash != std::string::npos) f = f.substr(slash);
  throw Error(std::string(library) + " error: " + message + " in " + call + " (" + f + ":" + std::to_string(line) + ")");
}

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "cuBLAS status (unknown code)";
  }
}

namespace {

struct Probe {
  bool ok = false;
  std::string reason;
  DeviceInfo info;
};

const Probe& probe() {
  static Probe p = [] {
    Probe r;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error so later calls start clean
      r.reason = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
      return r;
    }
    if (count == 0) {
      r.reason = "no CUDA device present";
      return r;
    }
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) dev = 0;
    cudaDeviceProp prop{};
    e = cudaGetDeviceProperties(&prop, dev);
    if (e != cudaSuccess) {
      r.reason = std::string("cannot read CUDA device properties: ") + cudaGetErrorString(e);
      return r;
    }
    r.info.ordinal = dev;
    r.info.name = prop.name;
    r.info.major = prop.major;
    r.info.minor = prop.minor;
    r.info.sm_count = prop.multiProcessorCount;
    r.info.total_memory = prop.totalGlobalMem;
    r.info.l2_bytes = prop.l2CacheSize;
    r.info.max_shared_per_block_optin = static_cast<int>(prop.sharedMemPerBlockOptin);
    if (prop.major < 8) {
      r.reason = "CUDA device " + r.info.name + " is " + r.info.arch() + "; Kiln's CUDA backend needs sm_80 or newer";
      return r;
    }
    r.ok = true;
    return r;
  }();
  return p;
}

}  // namespace

const DeviceInfo& current_device() {
  const Probe& p = probe();
  if (!p.ok) throw Error(p.reason);
  return p.info;
}

}  // namespace kiln::cuda

namespace kiln::gpu {

bool built_with_cuda() { return true; }
bool available() { return cuda::probe().ok; }
std::string unavailable_reason() { return cuda::probe().reason; }
std::string target() { return "cuda:" + cuda::current_device().arch(); }
bool supports(const ir::Node& node, const std::vector<ir::TensorInfo>& inputs) { return cuda::supports(node, inputs); }

std::string library_versions() {
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  return "cudart " + std::to_string(rt) + ", cublasLt " + std::to_string(cublasLtGetVersion()) + ", cudnn " +
         std::to_string(cudnnGetVersion());
}

}  // namespace kiln::gpu
