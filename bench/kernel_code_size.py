"""The machine code size of each GPU kernel in objects or binaries, read from their embedded cubins.

Why: a kernel whose code outgrows the SM's instruction caches waits on instruction fetch. Twice a Kiln kernel
did: the narrow convolution (tenth session) and an experimental Hopper GEMM kernel, since removed (twenty-second
session, 81,704 instructions; its warps waited on fetch 37 of every 45 cycles). Both times an epilogue unrolled
over a tile, with a run-time activation's whole switch inlined at every element, was the cause. This finds such
kernels without a GPU and without cuobjdump: nvcc embeds each architecture's cubin uncompressed as an ELF image
(machine EM_CUDA, the SM version in bits 8-15 of e_flags), whose .text.<kernel> sections are the kernels' code
(16 bytes an instruction).

    python3 bench/kernel_code_size.py [--arch 90] [--top 20] PATH...

PATH: an object or binary, or a folder searched for *.o (a build tree)."""
import argparse
import os
import struct
import sys

ELF_MAGIC = b"\x7fELF"
EM_CUDA = 190
INSTRUCTION_BYTES = 16


def cuda_elf_kernels(data, offset):
    """(sm, [(kernel, text bytes)]) of the CUDA ELF image at `offset` of `data`, or None if it is not one."""
    if data[offset + 4] != 2 or data[offset + 5] != 1:  # 64-bit, little-endian: nvcc's cubins
        return None
    (machine,) = struct.unpack_from("<H", data, offset + 0x12)
    if machine != EM_CUDA:
        return None
    (flags,) = struct.unpack_from("<I", data, offset + 0x30)
    (shoff,) = struct.unpack_from("<Q", data, offset + 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, offset + 0x3A)
    sections = []
    for k in range(shnum):
        name, _type, _flags, _addr, sec_off, size = struct.unpack_from("<IIQQQQ", data, offset + shoff + k * shentsize)
        sections.append((name, sec_off, size))
    strtab = offset + sections[shstrndx][1]

    def section_name(name):
        return data[strtab + name:data.index(b"\0", strtab + name)].decode("ascii", "replace")

    kernels = []
    for name, _off, size in sections:
        text = section_name(name)
        if text.startswith(".text."):
            kernels.append((text[len(".text."):], size))
    return (flags >> 8) & 0xFF, kernels


def kernels_in(data):
    """[(sm, kernel, text bytes)] of every CUDA ELF image embedded in `data` (an object, a library, a cubin)."""
    out = []
    at = data.find(ELF_MAGIC)
    while at >= 0:
        try:
            found = cuda_elf_kernels(data, at)
        except (struct.error, IndexError, ValueError):
            found = None  # the magic inside other bytes, not an image
        if found:
            sm, kernels = found
            out += [(sm, name, size) for name, size in kernels]
        at = data.find(ELF_MAGIC, at + 1)
    return out


def files_under(paths):
    for path in paths:
        if os.path.isdir(path):
            for folder, _dirs, names in os.walk(path):
                for name in sorted(names):
                    if name.endswith(".o"):
                        yield os.path.join(folder, name)
        else:
            yield path


def kernel_sizes(paths, arch=None):
    """[(text bytes, sm, kernel, file)] of every kernel in `paths`, largest first (sm == arch only, if given)."""
    rows = []
    for path in files_under(paths):
        with open(path, "rb") as f:
            data = f.read()
        rows += [(size, sm, name, path) for sm, name, size in kernels_in(data) if arch is None or sm == arch]
    rows.sort(key=lambda r: (-r[0], r[2]))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--arch", type=int, default=90, help="SM version (default 90; 0: every one)")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    rows = kernel_sizes(args.paths, args.arch or None)
    if not rows:
        print("no kernels found", file=sys.stderr)
        return 1
    print("| KB | instructions | sm | kernel | file |\n|---|---|---|---|---|")
    for size, sm, name, path in rows[:args.top]:
        print(f"| {size / 1024:.1f} | {size // INSTRUCTION_BYTES} | {sm} | {name} | {os.path.basename(path)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
