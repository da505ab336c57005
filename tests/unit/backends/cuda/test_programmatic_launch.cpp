// programmatic_launch.h's host side: the switches (KILN_PDL, KILN_PDL_TRIGGER) and the note a kernel leaves
// when it launches programmatically, which the executor reads to let the kernel before it start it early. No
// GPU needed; the device side runs in tests/gpu/test_gpu_programmatic_launch.py and the GPU model tests'
// captured-graph runs.
#ifdef KILN_WITH_CUDA
#include "backends/cuda/programmatic_launch.h"

#include "backends/cuda/cuda_op_harness.h"

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

}  // namespace
}  // namespace kiln
#endif
