// CPU kernel for TensorScatter: present = past, then for every prefix (dims before the sequence axis,
// batch first) update step s goes to cache step write_indices[batch] + s (modulo the cache length when
// circular). Dtype-generic: rows after the sequence axis are copied as bytes.
#include <cstring>
#include <string>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

void k_tensor_scatter(KernelContext& ctx) {
  const TensorRef& past = ctx.input(0);
  const TensorRef& upd = ctx.input(1);
  const TensorRef& y = ctx.out[0];
  const int64_t rank = static_cast<int64_t>(past.shape.size());
  int64_t axis = ctx.attrs().i("axis", -2);
  if (axis < 0) axis += rank;
  const bool circular = ctx.attrs().i("circular", 0) != 0;
  const int64_t batch = past.shape[0], max_seq = past.shape[axis], seq = upd.shape[axis];
  int64_t prefix = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) prefix *= past.shape[d];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= past.shape[d];
  const size_t row = static_cast<size_t>(inner) * dtype_size(past.dtype);
  if (y.nbytes()) std::memcpy(y.data, past.data, y.nbytes());
  const int64_t per_batch = batch ? prefix / batch : 0;
  for (int64_t p = 0; p < prefix; ++p) {
    const int64_t b = p / per_batch;
    const int64_t start = ctx.has_input(2) ? ctx.input(2).get_i64(b) : 0;
    for (int64_t s = 0; s < seq; ++s) {
      int64_t dst = start + s;
      if (circular) dst = ((dst % max_seq) + max_seq) % max_seq;
      else if (dst < 0 || dst >= max_seq)
        ctx.fail("write index " + std::to_string(start) + " + step " + std::to_string(s) + " of batch " +
                 std::to_string(b) + " is outside the cache length " + std::to_string(max_seq));
      std::memcpy(static_cast<char*>(y.data) + (p * max_seq + dst) * row,
                  static_cast<const char*>(upd.data) + (p * seq + s) * row, row);
    }
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("TensorScatter", &k_tensor_scatter);

}  // namespace kiln::cpu
