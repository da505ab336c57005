#!/usr/bin/env python3
"""Reports an ONNX backend conformance run (the JSON that tests/conformance writes when
KILN_CONFORMANCE_JSON is set): pass/fail/skip counts by suite, failure causes by count, and expected
failures whose error no longer matches the reason on the list. Also regenerates the list.

    KILN_CONFORMANCE_JSON=/tmp/conf-new.json PYTHONPATH=python python3 -m pytest -q tests/conformance
    KILN_CONFORMANCE_JSON=/tmp/conf-112.json tests/conformance/run_debian_onnx.sh
    scripts/conformance_report.py /tmp/conf-new.json /tmp/conf-112.json
    scripts/conformance_report.py --write-expected /tmp/conf-new.json /tmp/conf-112.json

--write-expected rewrites tests/conformance/expected_failures.py from the runs: tests that failed or
failed as expected get an entry whose reason is derived from the error they raised (the rules below),
tests that passed lose theirs. Review the diff: the reasons are the record of why each test fails.
"""
import argparse
import collections
import json
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
EXPECTED_PY = os.path.join(ROOT, "tests", "conformance", "expected_failures.py")

# -- from an error message to a reason -----------------------------------------------------------------
# (pattern over the error text, cause class, reason template). First match wins; the reason names the
# stage (parser / build / run / result) and keeps what the core said, without node numbers.
RULES = [
    (r"no importer for op '(?P<op>[^']+)' \(domain '(?P<dom>[^']*)'\)", "no importer for the op",
     lambda m: f"parser: no importer for op '{m['op']}'" + (f" (domain '{m['dom']}')" if m["dom"] not in ("", "ai.onnx") else "")),
    (r"the model uses ONNX opset (?P<v>\d+); Kiln supports opsets (?P<lo>\d+) to (?P<hi>\d+)", "model opset outside Kiln's range",
     lambda m: f"parser: model opset {m['v']} outside Kiln's supported opsets {m['lo']}-{m['hi']}"),
    (r"graph input '[^']*' has data type (?P<t>\w+) \(\d+\)", "graph input dtype unsupported by the parser",
     lambda m: f"parser: graph input of dtype {m['t']} (Kiln has no {m['t']} tensors)"),
    (r"graph input '[^']*' is not a dense tensor", "sequence/map/optional graph inputs",
     lambda m: "parser: sequence/map/optional graph input (Kiln supports dense tensors only)"),
    (r"\((?P<op>\w+)\): UNSUPPORTED_NODE_DATATYPE: Cast to (?P<t>\w+) \(\d+\) is not supported", "Cast target dtype unsupported",
     lambda m: f"parser: {m['op']} to {m['t']} unsupported"),
    (r"\((?P<op>\w+)\): UNSUPPORTED_NODE_DYNAMIC: (?P<msg>[^:]+: the (?P<what>[\w ]+) \('(?P<name>\w+)'\) must be known when the network is built)",
     "op parameter given as a run-time tensor",
     lambda m: f"parser: {m['op']} '{m['name']}' given as a run-time input; Kiln needs it at build time"),
    (r"\((?P<op>\w+)\): (?P<code>UNSUPPORTED_\w+|INVALID_\w+): (?P<msg>[^\n]+)", "op variant unsupported by the importer",
     lambda m: f"parser: {_clean(m['msg'])}"),
    (r"output '[^']*' has a data-dependent shape", "output shape depends on input values",
     lambda m: "build: an output shape depends on input values (a shape/size/repeat/k input fed at run time); "
               "the CPU runtime needs shapes computable from input shapes"),
    (r"layer '(?P<layer>[A-Za-z]+)_\d+' \((?P<kind>\w+)\): (?P<msg>[^\n]+)", "CPU kernel lacks a dtype or mode",
     lambda m: f"run: {m['layer']} ({m['kind']} CPU kernel): {_clean(m['msg'])}"),
    (r"set_input_shape: '(?P<n>[^']+)' has rank (?P<r>\d+), got \[(?P<g>[^\]]*)\]", "input shape differs from the model's",
     lambda m: f"test data: input '{m['n']}' declared with rank {m['r']} but given shape [{m['g']}]; Kiln checks inputs against the model"),
    (r"Items are not equal:\s*ACTUAL: dtype\('(?P<a>\w+)'\)\s*DESIRED: dtype\('(?P<d>\w+)'\)", "wrong output dtype",
     lambda m: f"result: output dtype {m['a']}, reference {m['d']}"),
    (r"Output (?P<i>\d+) has incorrect shape", "wrong output shape",
     lambda m: f"result: output {m['i']} has the wrong shape"),
    (r"Not equal to tolerance", "wrong values",
     lambda m: "result: values differ from the reference beyond rtol/atol"),
    (r"Kiln's (?P<stage>ONNX parser|builder|runtime|execution) (?:failed|raised)[^\n]*\n?(?P<msg>[^\n]*)", "other core error",
     lambda m: f"{_STAGE[m['stage']]}: {_clean(m['msg'])}"),
]
_STAGE = {"ONNX parser": "parser", "builder": "build", "runtime": "load", "execution": "run"}


def _clean(msg):
    msg = re.sub(r"^\[(ERROR|INTERNAL_ERROR|WARNING)\]\s*", "", msg.strip())
    msg = re.sub(r"^(execute|build failed): ", "", msg)
    msg = re.sub(r"\b(node|layer) '([A-Za-z]+)_\d+'", r"\1 '\2'", msg)
    return msg[:200]


def classify(error):
    """(cause class, reason) of a test's error message."""
    text = re.sub(r"^[\w.]*(KilnBackendError|Error|Exception): ?", "", error.strip())
    for pattern, cause, reason in RULES:
        m = re.search(pattern, text)
        if m:
            return cause, reason(m)
    first = text.splitlines()[0] if text else "(no message)"
    exc = re.match(r"^([\w.]+(Error|Exception))", error.strip())
    return "other", ((exc.group(1) + ": ") if exc and exc.group(1) not in first else "") + first[:200]


def base_name(test_name):
    for device in ("_cpu", "_cuda"):
        if test_name.endswith(device):
            return test_name[: -len(device)]
    return test_name


def major_minor(version):
    parts = version.split(".")
    return f"{parts[0]}.{parts[1] if len(parts) > 1 else 0}"


def load_expected_module():
    sys.path.insert(0, os.path.dirname(EXPECTED_PY))
    try:
        import expected_failures
    finally:
        sys.path.pop(0)
    return expected_failures


# -- report ----------------------------------------------------------------------------------------------
def report(run):
    version = run["onnx_version"]
    tests = [t for t in run["tests"] if not (t["name"].endswith("_cuda") and t["outcome"] == "skipped")]
    print(f"== onnx {version} (Python {run.get('python', '?')})")
    by_suite = collections.OrderedDict()
    for t in tests:
        by_suite.setdefault(t["suite"], collections.Counter())[t["outcome"]] += 1
    print(f"  {'suite':20} {'total':>6} {'passed':>7} {'xfailed':>8} {'failed':>7} {'xpassed':>8} {'skipped':>8}   pass rate")
    for suite, c in by_suite.items():
        total = sum(c.values())
        print(f"  {suite:20} {total:6} {c['passed']:7} {c['xfailed']:8} {c['failed']:7} {c['xpassed']:8} {c['skipped']:8}"
              f"   {100.0 * c['passed'] / total if total else 0:5.1f}%")

    failing = [t for t in tests if t["outcome"] in ("failed", "xfailed")]
    causes, reasons = collections.Counter(), collections.Counter()
    for t in failing:
        cause, reason = classify(t["error"])
        causes[cause] += 1
        reasons[reason] += 1
    print("  failure causes (failed + expected failures):")
    for cause, n in causes.most_common():
        print(f"    {n:5}  {cause}")
    print("  top reasons:")
    for reason, n in reasons.most_common(25):
        print(f"    {n:5}  {reason}")

    stale = [(t["name"], t["reason"], classify(t["error"])[1]) for t in tests
             if t["outcome"] == "xfailed" and t["reason"] != classify(t["error"])[1]]
    if stale:
        print(f"  {len(stale)} expected failures now fail for another reason than the list records:")
        for name, old, new in stale[:20]:
            print(f"    {name}: listed '{old}', now '{new}'")
    unexpected = [t["name"] for t in tests if t["outcome"] == "failed"]
    if unexpected:
        print(f"  {len(unexpected)} failures not on the list: " + ", ".join(unexpected[:20]) + (" ..." if len(unexpected) > 20 else ""))
    xpassed = [t["name"] for t in tests if t["outcome"] == "xpassed"]
    if xpassed:
        print(f"  {len(xpassed)} expected failures passed (remove them from the list): " + ", ".join(xpassed[:20]))
    print()


# -- regenerate the list ---------------------------------------------------------------------------------
HEADER = '''"""The ONNX backend tests Kiln fails today, each with the reason (what the core reports), per onnx version.

Generated by `scripts/conformance_report.py --write-expected RUN.json...` from the errors the tests raised;
reviewed by hand. Keys are test names without the device suffix (_cpu/_cuda): the entry holds on every
device. A key with the suffix holds on that device only (a float16 test the CPU kernels fail and the CUDA
kernels pass is 'test_x_float16_cpu'); it wins over an entry without one. test_onnx_backend.py marks
each listed test xfail(strict=True): it still runs, and when it starts passing the run fails until the
entry is removed. An entry in COMMON holds for every onnx version; VERSION_SPECIFIC adds the entries of
one onnx major.minor (tests that only that version has, or that fail there for another reason).
"""

'''

FOOTER = '''

def expected_failures(onnx_version):
    """{test name without device suffix: reason} for an onnx version string ("1.12.0", "1.23.2")."""
    parts = str(onnx_version).split(".")
    key = f"{parts[0]}.{parts[1] if len(parts) > 1 else 0}"
    if key not in VERSION_SPECIFIC:  # an onnx we have no run of: the newest list is the closest
        key = max(VERSION_SPECIFIC, key=lambda k: tuple(int(x) for x in k.split(".")))
    out = dict(COMMON)
    out.update(VERSION_SPECIFIC[key])
    return out
'''


def _dict_literal(d, indent="    "):
    lines = ["{"]
    for name in sorted(d):
        lines.append(f"{indent}{name!r}: {d[name]!r},")
    lines.append("}")
    return "\n".join(lines)


def write_expected(runs, path):
    """Updates the list from the runs: a test that ran and failed gets the reason of its error, one that
    passed loses its entry, one that did not run (deselected, other suites) keeps what the list had."""
    per_version = {}
    if os.path.exists(path):
        existing = load_expected_module()
        for v in existing.VERSION_SPECIFIC:
            per_version[v] = existing.expected_failures(v)
    for run in runs:
        mm = major_minor(run["onnx_version"])
        entries = per_version.setdefault(mm, {})
        for t in run["tests"]:
            # An entry for one device (named with its suffix) stays one; new entries hold for every device.
            name = t["name"] if t["name"] in entries else base_name(t["name"])
            if t["outcome"] in ("failed", "xfailed"):
                entries[name] = classify(t["error"])[1]
            elif t["outcome"] in ("passed", "xpassed"):
                entries.pop(name, None)
    versions = sorted(per_version, key=lambda k: tuple(int(x) for x in k.split(".")))
    common = {}
    if len(versions) > 1:
        first = per_version[versions[0]]
        common = {n: r for n, r in first.items() if all(per_version[v].get(n) == r for v in versions[1:])}
    specific = {v: {n: r for n, r in per_version[v].items() if n not in common} for v in versions}
    with open(path, "w") as f:
        f.write(HEADER)
        f.write(f"COMMON = {_dict_literal(common)}\n\n")
        f.write("VERSION_SPECIFIC = {\n")
        for v in versions:
            body = _dict_literal(specific[v], indent="        ").replace("\n}", "\n    }")
            f.write(f"    {v!r}: {body},\n")
        f.write("}\n")
        f.write(FOOTER)
    print(f"wrote {path}: {len(common)} common entries, "
          + ", ".join(f"onnx {v}: {len(specific[v])} more" for v in versions))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="JSON files written with KILN_CONFORMANCE_JSON")
    ap.add_argument("--write-expected", action="store_true", help=f"rewrite {os.path.relpath(EXPECTED_PY, ROOT)}")
    ap.add_argument("--output", default=EXPECTED_PY, help="where --write-expected writes")
    args = ap.parse_args()
    runs = []
    for p in args.runs:
        with open(p) as f:
            runs.append(json.load(f))
    if args.write_expected:
        write_expected(runs, args.output)
    else:
        for run in runs:
            report(run)


if __name__ == "__main__":
    main()
