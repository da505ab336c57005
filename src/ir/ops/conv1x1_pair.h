// Conv1x1Pair (ir/OPS.md): two channels-last 1x1 convolutions back to back, the first one's output kept as well.
// Written by passes/fuse_conv1x1_pair for a backend kernel that computes both at once (ResNet's bottleneck
// blocks: a block's last 1x1 convolution, then the next block's first), so the wide tensor between them is
// read from on-chip memory instead of being read back.
//
//   inputs:  0 x [N, H, W, C0], 1 w1 [C1, 1, 1, C0], 2 b1 [C1] (optional), 3 r1 [N, H, W, C1] (optional),
//            4 w2 [C2, 1, 1, C1], 5 b2 [C2] (optional); one dtype throughout (a float type)
//   outputs: 0 y1 = act1(conv(x, w1) + b1 + r1)   [N, H, W, C1]
//            1 y2 = act2(conv(y1, w2) + b2)        [N, H, W, C2], computed from y1 as stored (in y1's dtype)
//   attrs:   `activation`, `act_alpha`, `act_beta`      the first convolution's epilogue (as Convolution's)
//            `activation2`, `act2_alpha`, `act2_beta`   the second's (same meaning)
//            `first_name`, `second_name`                the original Convolution layers' names
//            `first_fused`, `second_fused`              their `fused` lists (the layers each had absorbed)
//            `fused`                                    both convolutions and what they absorbed, for profiles
//            `allow_tf32`                               set by the builder as on Convolution
#pragma once
#include <cstddef>

#include "ir/graph.h"

namespace kiln::ir {

// Input positions of a Conv1x1Pair node (passes write all six, nullptr for an absent optional one).
enum Conv1x1PairInput : size_t { kPairX = 0, kPairW1 = 1, kPairB1 = 2, kPairR1 = 3, kPairW2 = 4, kPairB2 = 5 };

// One half of a pair (which: 0 the first convolution, 1 the second) as a standalone channels-last 1x1
// Convolution node: op "Convolution", the original layer's name (`first_name` / `second_name`; the pair's name
// with "/first" or "/second" when absent), every attribute Convolution's shape inference and kernels read
// (channels_last 1, num_output_maps where the pair's weights' shape says it, kernel/stride/dilation {1, 1},
// pre/post_padding {0, 0}, groups 1, padding_mode 0, that convolution's activation/act_alpha/act_beta and
// `fused`, the pair's allow_tf32), and the pair's precision and that output's user type.
//
// Its inputs and outputs are left empty. What it is for: running that half through a Convolution *kernel*,
// with the tensors given in the kernel's context (first: x, w1, b1, r1 -> y1; second: y1, w2, b2 -> y2). The
// CPU Convolution kernel reads only the node's attributes, its name and op (in error messages), never its
// inputs or outputs; the CUDA Convolution kernel's run is the CUDA side's to check. Not for shape inference
// nor for a backend's `supports` predicate, which read the node's values (cuDNN's reads outputs[0]'s shape),
// and never a node to put in a graph. Cheap (one small attribute map) and exact: the CPU kernel of the pair is
// these two nodes run one after the other.
Node conv1x1_pair_part(const Node& pair, int which);

}  // namespace kiln::ir
