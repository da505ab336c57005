"""Writes wgmma_ops.cuh: the wgmma.mma_async m64nNk16 wrappers for float16 and bfloat16 inputs, whose register
lists (32 or 64 floats a thread) are too long to write by hand. Run from this folder: python3 make_wgmma_ops.py"""

HEADER = """// wgmma.mma_async m64nNk16: float16 or bfloat16 inputs from shared memory (descriptors), float32 accumulators
// in registers, for sm_90a only (an empty body elsewhere). Written by make_wgmma_ops.py; edit that, not this.
#pragma once
#include <cstdint>

namespace kiln::cuda::wgmma {
"""

FOOTER = """
}  // namespace kiln::cuda::wgmma
"""


def wrapper(n, ptx_type, name):
    regs = n // 2
    ops = ", ".join(f"%{i}" for i in range(regs))
    cons = ", ".join(f'"+f"(d[{i}])' for i in range(regs))
    return f'''
// D (64 x {n}, {regs} floats a thread) += A (64 x 16) * B (16 x {n}), {name}, both K-major in 128-byte-swizzled
// shared memory (imm-trans 0, 0); scale-d 1: accumulates (the caller zeroes d first).
__device__ __forceinline__ void mma_m64n{n}k16_{ptx_type}(float (&d)[{regs}], uint64_t desc_a, uint64_t desc_b) {{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{{\\n"
      ".reg .pred p;\\n"
      "setp.ne.b32 p, %{regs + 2}, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ptx_type}.{ptx_type} "
      "{{{ops}}}, %{regs}, %{regs + 1}, p, 1, 1, 0, 0;\\n"
      "}}\\n"
      : {cons}
      : "l"(desc_a), "l"(desc_b), "r"(1));
#endif
}}
'''


if __name__ == "__main__":
    body = "".join(wrapper(n, t, name) for t, name in (("f16", "float16"), ("bf16", "bfloat16")) for n in (64, 128))
    with open("wgmma_ops.cuh", "w") as f:
        f.write(HEADER + body + FOOTER)
