// Independent branches of a run, for a second (auxiliary) stream: a step whose inputs are ready early and
// whose outputs only one later step reads can run beside the steps in between. ResNet's downsample
// convolutions are the case: a block's input feeds both the 1x1 downsample and the conv1 -> conv2 chain, and
// conv3 reads the downsample's output as its residual. At batch 1 each of those convolutions fills a few of
// the GPU's 132 SMs, so the downsample can run in the chain's shadow.
//
// The planning here is backend-independent (steps as lists of storage ids); the CUDA executor runs it
// (fork/join events, a second stream with its own library handles and workspace) and the static plan keeps
// every buffer a side step touches alive over its whole window (StepWindow), so no step running beside it can
// be given the same bytes.
#pragma once
#include <vector>

namespace kiln {

struct SideBranch {
  int step = -1;  // the side step: runs on the auxiliary stream
  int fork = -1;  // the last step it depends on (-1: none; it waits for the run's start)
  int join = -1;  // the one later step that reads its outputs (waits for it)
};

// reads[s] / writes[s]: the storage (root value ids) step s reads and writes; steps in run order. eligible[s]:
// the step may leave the main stream (a device kernel, small enough to leave SMs idle, no network output among
// its writes). A step becomes a side branch when every reader of its outputs is one later step `join` (so no
// step between its fork and its join depends on it), some step between them stays on the main stream, and it
// is no other side branch's fork or join. Longer windows are chosen first. Sorted by step.
std::vector<SideBranch> find_side_branches(const std::vector<std::vector<int>>& reads,
                                           const std::vector<std::vector<int>>& writes,
                                           const std::vector<bool>& eligible);

}  // namespace kiln
