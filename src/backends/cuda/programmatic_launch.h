// Programmatic dependent launch (sm_90) for Kiln's own kernels: a kernel launched with programmatic stream
// serialization may start while the kernel before it in the stream is still running, do the work that does not
// read that kernel's output (load its weights), and then wait for it (kernels/programmatic_launch.cuh). A kernel
// lets the next one start early (after its own wait, or as it starts) only where the executor says that next
// kernel is one of Kiln's launched this way (trigger_policy below says why).
//
// Why: at batch 1 each kernel is a few microseconds, and the next one's launch, its blocks' scheduling and its
// first weight loads (from DRAM: a 51 MB model does not stay in a 50 MB L2) wait for the previous kernel's last
// block. ResNet-50's classifier reads 4 MB of weights after the global average pool; with this it reads them
// while the pool runs. Inside a CUDA-graph capture the launch becomes a programmatic edge of the graph.
//
// Below sm_90 the launch attribute is ignored and the device-side calls compile to nothing: the kernel then
// runs after its predecessor, as any other. KILN_PDL=0 launches Kiln's kernels without it (to measure what it
// gives); it is read where a kernel prepares a shape, never at a launch.
#pragma once
#include <cuda_runtime.h>

#include <utility>

#include "backends/cuda/kernel.h"
#include "runtime/env_switch.h"

namespace kiln::cuda {

inline bool programmatic_launch_enabled() { return !env_is("KILN_PDL", "0"); }

// Which of Kiln's kernels let the next kernel start early (griddepcontrol.launch_dependents). The default,
// kWaitingSuccessor: only a kernel whose successor on the stream is one of Kiln's kernels launched
// programmatically, which waits for it before reading anything (the executor knows that successor from the
// previous run: Resources::programmatic_nodes, so a context's first, eager run lets none start early).
// KILN_PDL_TRIGGER=all: every such kernel, whatever follows it; =0: none. Why the default: with `all`,
// ResNet-50's captured graphs at batch 1 gave wrong outputs (relative error 0.19 against float32, every build,
// from the first captured run on; the default and =0 right: fifteenth session, calls 2-3). No kernel of Kiln's
// reads anything but its weights before its wait; what `all` adds is cuDNN's and cuBLASLt's kernels starting
// early after Kiln's, so one of them must read before it waits (not proven further). Read by the executor
// when it prepares, never at a launch.
enum class TriggerPolicy { kWaitingSuccessor, kAll, kNone };
inline TriggerPolicy trigger_policy() {
  if (env_is("KILN_PDL_TRIGGER", "all")) return TriggerPolicy::kAll;
  if (env_is("KILN_PDL_TRIGGER", "0")) return TriggerPolicy::kNone;
  return TriggerPolicy::kWaitingSuccessor;
}

// Notes that this node's kernel is being launched programmatically (see Resources::programmatic_nodes).
inline void note_programmatic_launch(const KernelContext& ctx) { ctx.res.programmatic_nodes.insert(&ctx.node); }

// Enqueues a kernel, launched programmatically, that only waits for the kernel before it. For a node that was
// expected to launch one of Kiln's kernels programmatically, so that the kernel before it may have let it start
// early (Resources::started_early), but which runs a library's kernel this time (an address off the alignment
// Kiln's kernel needs): the library's kernel then starts only once the kernel before has ended.
void absorb_early_start(cudaStream_t stream);

// Calls absorb_early_start where the kernel before this node's may have let it start early. Every path of a
// node that notes programmatic launches, and runs something else instead, calls this first.
inline void before_other_kernels(const KernelContext& ctx) {
  if (ctx.res.started_early) absorb_early_start(ctx.stream());
}

// The launch attribute that lets a kernel start before its predecessor in the stream has finished.
inline cudaLaunchAttribute programmatic_launch_attribute() {
  cudaLaunchAttribute a = {};
  a.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  a.val.programmaticStreamSerializationAllowed = 1;
  return a;
}

// Launches `kernel` on `stream`, with programmatic stream serialization when `programmatic`. Such a kernel
// must call wait_for_prior_kernels() (kernels/programmatic_launch.cuh) before it reads another kernel's output
// or writes anything.
template <class... Params, class... Args>
cudaError_t launch_maybe_programmatic(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                                      cudaStream_t stream, bool programmatic, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute = programmatic_launch_attribute();
  config.attrs = &attribute;
  config.numAttrs = programmatic ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace kiln::cuda
