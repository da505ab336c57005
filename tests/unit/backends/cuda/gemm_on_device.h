// A product y[m, n] = act(a[m, k] w[n, k]^T + bias[n] + residual[m, n]) with random operands on the device and the
// CPU kernel's output as its reference: the tests that launch Kiln's GEMM kernels straight (the split-K kernel)
// on each tile and split count. Inputs as those tests' comments describe: a in [-1, 1], weights in [-0.05, 0.05],
// bias and residual in the harness's default range.
#pragma once
#ifdef KILN_WITH_CUDA
#include <cstdint>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/device_buffer.h"
#include "backends/cuda/kernels/gemm_rows.h"

namespace kiln::cudatest {

// A float16 product of `m` packed token rows by weights [n, k] (the layout Kiln's GEMM kernels take): GPT-2's c_fc
// at batch 1 by default (128 x 768 by [3072, 768]). No device needed.
inline cuda::GemmRows token_rows(int64_t m = 128, int64_t n = 3072, int64_t k = 768) {
  cuda::GemmRows r;
  r.dtype = DataType::kHALF;
  r.m = m;
  r.n = n;
  r.k = k;
  r.a_rows_packed = true;
  r.w_rows_of_k = true;
  return r;
}

// One product a test launches on every tile and split count.
struct GemmCase {
  const char* label;
  int64_t m, n, k;
  bool residual;
  int act;  // -1 none
};

struct GemmOnDevice {
  GemmOnDevice(int64_t m, int64_t n, int64_t k, DataType dt, bool with_residual, int act)
      : dtype(dt),
        a_host(randf({m, k}, dt, -1.0, 1.0)),
        w_host(randf({n, k}, dt, -0.05, 0.05)),
        bias_host(randf({n}, dt)),
        residual_host(with_residual ? randf({m, n}, dt) : HostTensor()),
        ref(reference(act)),
        a(a_host.nbytes()),
        w(w_host.nbytes()),
        bias(bias_host.nbytes()),
        residual_buf(with_residual ? residual_host.nbytes() : 16),
        y(ref.numel() * dtype_size(dt)),
        residual(with_residual ? residual_buf.get() : nullptr) {
    upload(a, a_host);
    upload(w, w_host);
    upload(bias, bias_host);
    if (with_residual) upload(residual_buf, residual_host);
  }

  // cudaSuccess when every operand reached the device (a test asserts it before launching).
  cudaError_t uploaded = cudaSuccess;

  GemmOnDevice(const GemmCase& c, DataType dt) : GemmOnDevice(c.m, c.n, c.k, dt, c.residual, c.act) {}

  // Fills y with NaN (float16 and bfloat16 alike): every element must be written.
  cudaError_t poison() const { return cudaMemset(y.get(), 0xFF, y.size()); }

  // y on the host.
  HostTensor output() const {
    HostTensor got(dtype, ref.shape());
    if (cudaMemcpy(got.mutable_raw(), y.get(), got.nbytes(), cudaMemcpyDeviceToHost) != cudaSuccess) got = HostTensor();
    return got;
  }

  // y against the reference: the harness's relative tolerance and the GEMM tests' absolute allowance.
  ::testing::AssertionResult matches() const {
    return compare(output(), ref, default_tol(dtype), false, dtype == DataType::kHALF ? 1e-3 : 8e-3);
  }

  DataType dtype;
  HostTensor a_host, w_host, bias_host, residual_host, ref;
  cuda::DeviceBuffer a, w, bias, residual_buf, y;
  void* residual;  // residual_buf, or null without one

 private:
  HostTensor reference(int act) const {
    ir::Attrs attrs;
    attrs.set("op_b", int64_t{1});
    if (act >= 0) attrs.set("activation", int64_t{act});
    return cpu_reference("MatrixMultiply", attrs, {a_host, w_host, bias_host, residual_host}).at(0);
  }
  void upload(const cuda::DeviceBuffer& d, const HostTensor& h) {
    const cudaError_t e = cudaMemcpy(d.get(), h.raw(), h.nbytes(), cudaMemcpyHostToDevice);
    if (uploaded == cudaSuccess) uploaded = e;
  }
};

}  // namespace kiln::cudatest
#endif  // KILN_WITH_CUDA
