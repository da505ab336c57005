// programmatic_launch.h: the switches (KILN_PDL, KILN_PDL_TRIGGER) and the note a kernel leaves when it
// launches programmatically, which the executor reads to let the kernel before it start it early (no GPU
// needed); and, on an sm_90 GPU, absorb_early_start holding back a kernel that does not wait. Kiln's own chains
// run in tests/gpu/test_gpu_programmatic_launch.py and the GPU model tests' captured-graph runs.
#ifdef KILN_WITH_CUDA
#include "backends/cuda/programmatic_launch.h"

#include <algorithm>
#include <vector>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/device.h"
#include "backends/cuda/device_buffer.h"
#include "backends/cuda/programmatic_wait_probe.h"

namespace kiln {
namespace {

using cuda::TriggerPolicy;
using cudatest::ScopedEnv;

TEST(ProgrammaticLaunch, OnUnlessKilnPdlIsZero) {
  for (const char* v : {static_cast<const char*>(nullptr), "", "1", "yes"}) {
    ScopedEnv e("KILN_PDL", v);
    EXPECT_TRUE(cuda::programmatic_launch_enabled()) << (v ? v : "(unset)");
  }
  ScopedEnv e("KILN_PDL", "0");
  EXPECT_FALSE(cuda::programmatic_launch_enabled());
}

TEST(ProgrammaticLaunch, TriggerPolicyValues) {
  struct Case {
    const char* value;  // nullptr: unset
    TriggerPolicy policy;
  };
  for (const Case& c : {Case{nullptr, TriggerPolicy::kWaitingSuccessor}, Case{"", TriggerPolicy::kWaitingSuccessor},
                        Case{"1", TriggerPolicy::kWaitingSuccessor}, Case{"all", TriggerPolicy::kAll},
                        Case{"0", TriggerPolicy::kNone}}) {
    ScopedEnv e("KILN_PDL_TRIGGER", c.value);
    EXPECT_EQ(cuda::trigger_policy(), c.policy) << (c.value ? c.value : "(unset)");
  }
}

// The note names the node whose kernel launched, in the context's resources only.
TEST(ProgrammaticLaunch, NoteNamesTheNodeInItsContext) {
  ir::Graph g;
  ir::Node* a = g.add_node("Convolution", "a", {}, 1);
  ir::Node* b = g.add_node("Convolution", "b", {}, 1);
  cuda::Resources res, other;
  cuda::KernelContext ctx{*a, {}, {}, res};
  cuda::note_programmatic_launch(ctx);
  EXPECT_EQ(res.programmatic_nodes.count(a), 1u);
  EXPECT_EQ(res.programmatic_nodes.count(b), 0u);
  EXPECT_TRUE(other.programmatic_nodes.empty());
  cuda::note_programmatic_launch(ctx);  // again: still one entry
  EXPECT_EQ(res.programmatic_nodes.size(), 1u);
  EXPECT_FALSE(res.next_kernel_may_start);  // set by the executor only
}

// Five rounds of writer -> [absorb] -> reader; the flags the reader saw.
std::vector<int> late_write_rounds(bool absorb, bool graph) {
  cuda::DeviceBuffer flag(sizeof(int)), seen(sizeof(int));
  cudaStream_t stream = nullptr;
  EXPECT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  std::vector<int> out;
  for (int round = 0; round < 5; ++round) {
    int* f = static_cast<int*>(flag.get());
    int* s = static_cast<int*>(seen.get());
    EXPECT_EQ(cudaMemsetAsync(s, 0xff, sizeof(int), stream), cudaSuccess);
    if (graph) {
      cudaGraph_t g = nullptr;
      cudaGraphExec_t exec = nullptr;
      EXPECT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
      const cudaError_t e = cudatest::enqueue_late_write_then_read(stream, f, s, absorb, 200);
      EXPECT_EQ(cudaStreamEndCapture(stream, &g), cudaSuccess);
      EXPECT_EQ(e, cudaSuccess);
      EXPECT_EQ(cudaGraphInstantiate(&exec, g, 0), cudaSuccess);
      EXPECT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
      EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      cudaGraphExecDestroy(exec);
      cudaGraphDestroy(g);
    } else {
      EXPECT_EQ(cudatest::enqueue_late_write_then_read(stream, f, s, absorb, 200), cudaSuccess);
    }
    int got = -2;
    EXPECT_EQ(cudaMemcpyAsync(&got, s, sizeof(int), cudaMemcpyDeviceToHost, stream), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    out.push_back(got);
  }
  cudaStreamDestroy(stream);
  return out;
}

// The writer lets the next kernel start at once and writes its flag 200 us later. With absorb_early_start
// between them the reader reads the flag only after the write, eagerly and in a captured graph. Without it, on
// sm_90 the reader reads it early (the hazard; shown once at least, so the test can see it); below sm_90 there
// is no programmatic launch (the attribute is ignored), so the reader always waits for the writer.
TEST(ProgrammaticLaunch, AbsorbingWaitHoldsBackAKernelThatDoesNotWait) {
  KILN_REQUIRE_CUDA_DEVICE();
  const bool programmatic = cuda::current_device().major >= 9;
  for (bool graph : {false, true}) {
    const char* where = graph ? "graph" : "eager";
    const std::vector<int> bare = late_write_rounds(false, graph);
    if (programmatic)
      EXPECT_NE(std::count(bare.begin(), bare.end(), 0), 0)
          << where << ": the reader never started early without the absorbing wait";
    else
      for (int v : bare) EXPECT_EQ(v, 1) << where << ": the reader started early below sm_90";
    for (int v : late_write_rounds(true, graph)) EXPECT_EQ(v, 1) << where;
  }
}

}  // namespace
}  // namespace kiln
#endif
