#include "backends/cuda/nvrtc/nvrtc_module.h"

#include "backends/cuda/nvrtc/source_writer.h"

#include <nvrtc.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "backends/cuda/cuda_check.h"
#include "kiln/types.h"

namespace kiln::cuda::nvrtc {

namespace {

void check(nvrtcResult r, const char* call) {
  if (r != NVRTC_SUCCESS) throw Error(std::string("NVRTC: ") + call + " failed: " + nvrtcGetErrorString(r));
}

std::string numbered(const std::string& src) {
  SourceWriter o;  // not an ostringstream: see source_writer.h
  size_t start = 0;
  for (int n = 1; start < src.size(); ++n) {
    size_t end = src.find('\n', start);
    if (end == std::string::npos) end = src.size();
    o << n << ": " << src.substr(start, end - start) << "\n";
    start = end + 1;
  }
  return o.str();
}

struct ProgramGuard {
  nvrtcProgram p = nullptr;
  ~ProgramGuard() {
    if (p) nvrtcDestroyProgram(&p);
  }
};

const std::vector<int>& supported_archs() {
  static const std::vector<int> archs = [] {
    int n = 0;
    std::vector<int> a;
    if (nvrtcGetNumSupportedArchs(&n) == NVRTC_SUCCESS && n > 0) {
      a.resize(static_cast<size_t>(n));
      if (nvrtcGetSupportedArchs(a.data()) != NVRTC_SUCCESS) a.clear();
    }
    return a;
  }();
  return archs;
}

struct Loaded {
  cudaLibrary_t library = nullptr;
  cudaKernel_t kernel = nullptr;
};

// Never destroyed: libraries stay loaded for the process (unloading at exit could run after the driver's
// own teardown).
struct Cache {
  std::mutex mu;
  std::unordered_map<std::string, Loaded> kernels;
};
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

Image compile(const std::string& source, const std::string& arch, const std::string& name) {
  ProgramGuard g;
  check(nvrtcCreateProgram(&g.p, source.c_str(), name.c_str(), 0, nullptr, nullptr), "nvrtcCreateProgram");
  const std::string arch_opt = "--gpu-architecture=" + arch;
  // 177: unused variables and helpers; 186: unsigned compared with 0 (generic integer code).
  const char* opts[] = {arch_opt.c_str(), "--std=c++17", "--diag-suppress=177,186"};
  const nvrtcResult r = nvrtcCompileProgram(g.p, 3, opts);
  Image img;
  size_t log_size = 0;
  if (nvrtcGetProgramLogSize(g.p, &log_size) == NVRTC_SUCCESS && log_size > 1) {
    img.log.resize(log_size);
    if (nvrtcGetProgramLog(g.p, img.log.data()) != NVRTC_SUCCESS) img.log.clear();
    while (!img.log.empty() && img.log.back() == '\0') img.log.pop_back();
  }
  if (r != NVRTC_SUCCESS)
    throw Error("NVRTC could not compile a generated kernel for " + arch + " (" + nvrtcGetErrorString(r) + "):\n" +
                img.log + "\nsource:\n" + numbered(source));
  size_t size = 0;
  if (arch.rfind("sm_", 0) == 0) {
    check(nvrtcGetCUBINSize(g.p, &size), "nvrtcGetCUBINSize");
    img.data.resize(size);
    check(nvrtcGetCUBIN(g.p, img.data.data()), "nvrtcGetCUBIN");
    img.cubin = true;
  } else {
    check(nvrtcGetPTXSize(g.p, &size), "nvrtcGetPTXSize");  // includes the terminating NUL
    img.data.resize(size + 1, '\0');
    check(nvrtcGetPTX(g.p, img.data.data()), "nvrtcGetPTX");
  }
  return img;
}

std::string target_arch(int major, int minor) {
  const int want = major * 10 + minor;
  const std::vector<int>& archs = supported_archs();
  if (std::find(archs.begin(), archs.end(), want) != archs.end()) return "sm_" + std::to_string(want);
  int best = 0;
  for (int a : archs)
    if (a < want) best = std::max(best, a);
  if (!best)
    throw Error("NVRTC supports no GPU architecture up to sm_" + std::to_string(want) +
                " (generated kernels cannot be compiled for this device)");
  return "compute_" + std::to_string(best);
}

cudaKernel_t get_kernel(const std::string& source, const std::string& entry) {
  int dev = 0, major = 0, minor = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&dev));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  const std::string arch = target_arch(major, minor);
  std::string key;
  key.reserve(arch.size() + entry.size() + source.size() + 2);
  key.append(arch).append(1, '\n').append(entry).append(1, '\n').append(source);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.kernels.find(key);
  if (it != c.kernels.end()) return it->second.kernel;
  const Image img = compile(source, arch);
  Loaded l;
  KILN_CUDA_CHECK(cudaLibraryLoadData(&l.library, img.data.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
  const cudaError_t e = cudaLibraryGetKernel(&l.kernel, l.library, entry.c_str());
  if (e != cudaSuccess) {
    cudaLibraryUnload(l.library);
    throw_library_error("CUDA", cudaGetErrorString(e), "cudaLibraryGetKernel", __FILE__, __LINE__);
  }
  c.kernels.emplace(std::move(key), l);
  return l.kernel;
}

size_t cache_size() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.kernels.size();
}

}  // namespace kiln::cuda::nvrtc
