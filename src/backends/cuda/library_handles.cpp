#include "backends/cuda/library_handles.h"

#include <cublasLt.h>
#include <cudnn.h>

#include "backends/cuda/library_checks.h"

namespace kiln::cuda {

LibraryHandles::LibraryHandles(size_t workspace_bytes) : workspace_(workspace_bytes) {
  KILN_CUBLAS_CHECK(cublasLtCreate(&lt_));
  cudnnStatus_t s = cudnnCreate(&dnn_);
  if (s != CUDNN_STATUS_SUCCESS) {
    cublasLtDestroy(lt_);
    KILN_CUDNN_CHECK(s);
  }
}

LibraryHandles::~LibraryHandles() {
  if (dnn_) cudnnDestroy(dnn_);
  if (lt_) cublasLtDestroy(lt_);
}

void LibraryHandles::attach(Resources& res) const {
  res.cublaslt = lt_;
  res.cudnn = dnn_;
  res.workspace = workspace_.get();
  res.workspace_bytes = workspace_.size();
}

}  // namespace kiln::cuda
