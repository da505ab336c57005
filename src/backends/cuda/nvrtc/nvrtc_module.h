// Kernels generated at run time: CUDA C++ compiled with NVRTC, loaded through the CUDA runtime's library API
// (cudaLibraryLoadData / cudaLibraryGetKernel, CUDA 12+), so Kiln links cudart and NVRTC but not the driver
// library. Compiled kernels live in one process-wide cache keyed by target architecture, entry point and
// source text: each distinct kernel is compiled and loaded once per process, whatever the number of
// engines and contexts using it (the library is loaded into each device context on first launch).
//
// Compilation happens on a kernel's first use, i.e. in the eager run that precedes CUDA-graph capture;
// a captured run finds the kernel cached.
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <vector>

namespace kiln::cuda::nvrtc {

struct Image {
  std::vector<char> data;  // a cubin, or NUL-terminated PTX
  bool cubin = false;
  std::string log;         // the compiler's messages (warnings)
};

// Compiles `source` for `arch`: "sm_90" gives a cubin, "compute_90" PTX. Needs no GPU. Throws kiln::Error
// with the compiler log and the numbered source when compilation fails.
Image compile(const std::string& source, const std::string& arch, const std::string& name = "kiln_generated.cu");

// What NVRTC should compile for a device of compute capability major.minor: "sm_XY" when this NVRTC
// knows the architecture, else "compute_XY" PTX of the newest one it knows below (JIT-compiled by the
// driver). Throws when NVRTC knows none.
std::string target_arch(int major, int minor);

// The extern "C" kernel `entry` of `source`, compiled for the current device and loaded (cached for the
// process; thread-safe). Launch it with cudaLaunchKernel((const void*)kernel, ...).
cudaKernel_t get_kernel(const std::string& source, const std::string& entry);

// Kernels compiled so far by this process (for tests and logs).
size_t cache_size();

}  // namespace kiln::cuda::nvrtc
