"""How far each kernel's first global load is from its start, and from its wait for the previous kernel.

At batch 1 a kernel's time is mostly its chain of dependent latencies, and ptxas is free to move arithmetic
past `griddepcontrol.wait` (SASS ACQBULK): a kernel launched programmatically then does its index math after
the previous kernel has ended, not while it runs (sixteenth session: the split-K kernel had 114 instructions
between its wait and its first load of x, 33 after its fix). This lists, for each kernel in cuobjdump's SASS,
the instructions before its first global load (LDG, LDGSTS, LD.E, a TMA copy) and, where it waits, the
instructions between the wait and the first load after it.

    python3 bench/sass_prologue.py [--top N] [--match REGEX] FILE...

FILE: an object or binary with SASS (cuobjdump -sass -arch sm_90 is run on it; cuobjdump must be on PATH), or
a text file of cuobjdump's output (.sass or .txt)."""
import argparse
import re
import subprocess
import sys

INSTRUCTION = re.compile(r"^\s+/\*[0-9a-f]{4,}\*/\s+(.*?)\s*;")
GLOBAL_LOAD = re.compile(r"^(?:@!?U?P\w+\s+)?(LDG|LDGSTS|LD\.E|UBLKCP|UTMALDG)\b")


def kernels(sass):
    """[(kernel name, [instruction text, ...])] of cuobjdump -sass output, in its order."""
    out = []
    for part in sass.split("Function : ")[1:]:
        name, _, body = part.partition("\n")
        ops = [m.group(1) for m in map(INSTRUCTION.match, body.split("\n")) if m]
        out.append((name.strip(), ops))
    return out


def prologue(ops):
    """(instructions before the first global load, index of the wait or None, instructions from the wait to the
    first global load after it or None); a kernel with no global load gives None for the first."""
    first = next((i for i, op in enumerate(ops) if GLOBAL_LOAD.match(op)), None)
    wait = next((i for i, op in enumerate(ops) if op.startswith("ACQBULK")), None)
    after = None
    if wait is not None:
        after = next((i - wait for i in range(wait + 1, len(ops)) if GLOBAL_LOAD.match(ops[i])), None)
    return first, wait, after


def demangled(names):
    """The names through c++filt where it exists (binutils); as they are otherwise."""
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
        lines = out.split("\n")
        return lines[:len(names)] if len(lines) >= len(names) else names
    except (OSError, subprocess.CalledProcessError):
        return names


def sass_of(path):
    if path.endswith((".sass", ".txt")):
        with open(path, errors="replace") as f:
            return f.read()
    return subprocess.run(["cuobjdump", "-sass", "-arch", "sm_90", path], capture_output=True, text=True,
                          check=True).stdout


def main(argv=None):
    ap = argparse.ArgumentParser(description="instructions before each kernel's first global load, from its SASS")
    ap.add_argument("files", nargs="+", metavar="FILE", help="objects or binaries (cuobjdump), or saved SASS text")
    ap.add_argument("--top", type=int, default=20, help="rows per table")
    ap.add_argument("--match", type=re.compile, default=None, help="only kernels whose name matches this regex")
    args = ap.parse_args(argv)
    top, match = args.top, args.match
    rows = []
    for path in args.files:
        for name, ops in kernels(sass_of(path)):
            if match and not match.search(name):
                continue
            first, wait, after = prologue(ops)
            rows.append((path, name, len(ops), first, wait, after))
    names = demangled([r[1] for r in rows])
    rows = [(r[0], n) + r[2:] for r, n in zip(rows, names)]
    if not rows:
        print("no kernel with SASS found" + (" matching " + match.pattern if match else ""), file=sys.stderr)
        return 1
    waiting = sorted((r for r in rows if r[5] is not None), key=lambda r: -r[5])[:top]
    if waiting:
        print("| kernel | instructions from the wait to the first load | before the wait | file |")
        print("|---|---|---|---|")
        for path, name, _, _, wait, after in waiting:
            print(f"| {name[:100]} | {after} | {wait} | {path} |")
        print()
    plain = sorted((r for r in rows if r[4] is None and r[3] is not None), key=lambda r: -r[3])[:top]
    if plain:
        print("| kernel (no wait) | instructions before the first load | instructions | file |")
        print("|---|---|---|---|")
        for path, name, n, first, _, _ in plain:
            print(f"| {name[:100]} | {first} | {n} | {path} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
