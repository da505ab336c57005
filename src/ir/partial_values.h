// What is known, at build time, about the values of a small integer tensor (a shape tensor) whose value is
// computed at run time. Exporters build reshape targets from Shape ops: nn.MultiheadAttention's
// Reshape(q, Concat(Gather(Shape(x), 0), Mul(Gather(Shape(x), 1), H), D)) has a dynamic batch in one entry, yet
// the other entries are fixed by dims the graph knows. Reading them makes the reshape's output dims known
// where they are, so shape-derived constants fold (the attention scale 1/sqrt(head size)) and the fusion
// passes can see shapes match (a residual add after a reshape back to [B, S, E]).
//
// Entries are std::nullopt where unknown. Looks through Constant, Shape (with start/end), Gather (axis 0,
// constant indices), Slice and DynamicSlice (constant parameters), Concatenation, Unsqueeze/Squeeze/reshape-only
// Shuffle (the values in order) and integer Casts, up to a fixed depth; anything else is unknown.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir {

// One entry with where it came from: dim `dim` of tensor `dim_of` when it was read from a Shape (known or not):
// a reshape whose target entry i is dim i of its own input copies that dim, whatever the batch size.
struct PartialEntry {
  std::optional<int64_t> value;
  const Value* dim_of = nullptr;
  int64_t dim = -1;
};
using PartialEntries = std::vector<PartialEntry>;

// The entries of integer tensor v (0-D or 1-D, int32/int64), in row-major order; false when not even its length
// is known.
bool partial_entries(const Value* v, PartialEntries* out);

// Every entry's value known.
bool all_known(const PartialEntries& p);

// Whether dim d of a is dim d of b at run time, read from the layers between them: both reach one tensor
// through layers that keep their input's dim d (a Split along another axis, a GEMM's rows and batch dims
// against a matrix, an elementwise op whose other operands do not broadcast into d, casts, activations,
// normalizations). Exporters read the batch size from a block's input and reshape its projections with it
// (view(*hidden_states.shape[:-1], -1, D)), or reshape one Split output with another's dims (GPT-2's v with
// k's).
bool same_dim_at_run_time(const Value* a, const Value* b, int64_t d);

}  // namespace kiln::ir
