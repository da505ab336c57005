"""The model zoo: torchvision and transformers architectures with random weights (torch.manual_seed),
exported to ONNX, parsed, built and run on Kiln and compared with PyTorch's own output (fp32: max abs
error / max |torch output| <= 1e-4). A table (model, parsed, built, max error, status) is printed at the
end and, with KILN_ZOO_REPORT=FILE, written there.

    pytest tests/python/test_zoo.py                 # every model whose package is installed
    pytest tests/python/test_zoo.py -m "not slow"   # the quick subset
    scripts/zoo.sh                                  # Debian's CPU torch under /usr/bin/python3

Skipped when torch is missing; the transformers models are skipped where transformers is missing."""
import contextlib
import importlib.util
import os

import pytest

if importlib.util.find_spec("torch") is None:
    pytest.skip("the model zoo needs PyTorch (torch, torchvision; transformers for the language models): "
                "not installed for this Python (scripts/zoo.sh runs it with Debian's python3-torch)",
                allow_module_level=True)

from zoo import catalog, harness  # noqa: E402

RESULTS = []


def _params():
    chosen = os.environ.get("KILN_ZOO_MODELS")
    for case in catalog.CASES:
        if chosen and case.name not in chosen.split(","):
            continue  # KILN_ZOO_MODELS picks the cases: the others are not generated at all
        marks = [pytest.mark.slow] if case.slow else []
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.fixture(scope="module", autouse=True)
def zoo_table(request):
    yield
    if not RESULTS:
        return
    text = harness.table(RESULTS)
    report = os.environ.get("KILN_ZOO_REPORT")
    if report:
        with open(report, "w") as f:
            f.write(text + "\n")
    # Shown even without -s: the table is the point of a zoo run.
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        print("\n== model zoo: Kiln vs PyTorch ==\n" + text, flush=True)


@pytest.mark.parametrize("case", _params())
def test_zoo_model(case):
    if importlib.util.find_spec(case.source) is None:
        pytest.skip(f"{case.source} is not installed for this Python (the {case.source} models run where it is)")
    result = harness.run_case(case)
    RESULTS.append(result)
    # An export failure is the catalog's to fix (GPT-2 needed an explicit attention mask): it fails the case.
    assert result.passed, f"{case.name}: {result.status}: {result.reason}"
