"""bench/kernel_code_size.py: kernels' machine code read from the cubins nvcc embeds in objects, and the build's
kernels held under the size at which two of Kiln's kernels waited on instruction fetch most of their time."""
import glob
import os
import struct
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "bench"))

import kernel_code_size  # noqa: E402


def elf(machine, sm, sections):
    """A little-endian ELF64 image: its header, then each (name, size) section's bytes, then the names' string
    table and the section headers (a null one first)."""
    names = b"\0.shstrtab\0" + b"".join(n.encode() + b"\0" for n, _ in sections)
    body = b"".join(b"\0" * size for _, size in sections)
    shoff = 64 + len(body) + len(names)
    headers = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    at, name_at = 64, names.index(b".shstrtab") + len(b".shstrtab") + 1
    for n, size in sections:
        headers.append(struct.pack("<IIQQQQIIQQ", name_at, 1, 6, 0, at, size, 0, 0, 16, 0))
        at += size
        name_at += len(n) + 1
    headers.append(struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, 64 + len(body), len(names), 0, 0, 1, 0))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0x41, 8]) + b"\0" * 7
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 0, shoff, (sm << 8) | 0x4, 64, 0, 0, 64,
                                 len(headers), len(headers) - 1)
    return header + body + names + b"".join(headers)


def test_reads_the_kernels_of_every_embedded_cuda_image():
    host = elf(62, 0, [(".text.main", 64)])  # an x86-64 object around the device code: not CUDA, skipped
    sm80 = elf(190, 80, [(".text.k_gemm", 480), (".nv.info.k_gemm", 24)])
    sm90 = elf(190, 90, [(".text.k_gemm", 512), (".text._Z4fillv", 32)])
    data = host + b"junk \x7fELF not an image" + sm80 + b"\0" * 13 + sm90
    assert sorted(kernel_code_size.kernels_in(data)) == [(80, "k_gemm", 480), (90, "_Z4fillv", 32),
                                                         (90, "k_gemm", 512)]


def test_lists_largest_first_for_one_architecture(tmp_path, capsys):
    (tmp_path / "a.cu.o").write_bytes(elf(190, 90, [(".text.small", 160), (".text.big", 4096)]))
    (tmp_path / "b.cu.o").write_bytes(elf(190, 80, [(".text.other", 8192)]))
    rows = kernel_code_size.kernel_sizes([str(tmp_path)], arch=90)
    assert [(size, name) for size, _sm, name, _path in rows] == [(4096, "big"), (160, "small")]
    assert kernel_code_size.main([str(tmp_path), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 4.0 | 256 | 90 | big | a.cu.o |" in out and "small" not in out


def build_objects():
    """The CUDA objects of the build under test. Every machine this project builds on has the CUDA toolkit
    (README), and scripts/test.sh builds the CUDA backend: finding none is a failure, not a reason to skip."""
    for tree in ("build", "build-gpu"):
        objects = glob.glob(os.path.join(ROOT, tree, "CMakeFiles", "**", "*.cu.o"), recursive=True)
        if objects:
            return objects
    pytest.fail("no CUDA objects under build/ or build-gpu/: build with the CUDA backend (scripts/setup.sh build)")


# The two kernels that waited on instruction fetch: the narrow convolution's first version (36.7k instructions,
# 587 KB) and an experimental Hopper GEMM's, since removed (81.7k, 1.3 MB). The largest of the build today is
# ~124 KB (the 7x7 depthwise convolution). 160 KB trips on that class of mistake (an epilogue unrolled over a tile
# with a run-time activation's switch inlined at every element) before a GPU is needed to see it.
MAX_KERNEL_BYTES = 160 * 1024


def test_the_builds_kernels_stay_out_of_the_instruction_fetch_stall():
    rows = kernel_code_size.kernel_sizes(build_objects(), arch=90)
    assert len(rows) > 100, "the build's sm_90 kernels were not found in its objects"
    too_big = [(size, name) for size, _sm, name, _path in rows if size > MAX_KERNEL_BYTES]
    assert not too_big, f"kernels over {MAX_KERNEL_BYTES // 1024} KB of code: {too_big}"
