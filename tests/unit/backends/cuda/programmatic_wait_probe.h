// Test kernels for absorb_early_start (programmatic_launch.h), in their own .cu file so the GoogleTest sources
// stay C++: a writer that lets the next kernel start at once and writes its flag only after a while, and a
// reader launched programmatically that never waits, standing for a library kernel that trusts the kernel
// before it to let it start only at its end.
#pragma once
#include <cuda_runtime.h>

namespace kiln::cudatest {

// Enqueues on `stream`: *flag = 0; the writer (lets the next start, spins spin_us microseconds, *flag = 1);
// absorb_early_start when `absorb`; the reader (*seen = *flag). Returns the first launch error.
cudaError_t enqueue_late_write_then_read(cudaStream_t stream, int* flag, int* seen, bool absorb, int spin_us);

}  // namespace kiln::cudatest
