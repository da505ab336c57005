"""One-layer GPT-2 and BERT as transformers' TorchScript exporter writes them (tests/python/exports, made by
scripts/export_transformer_fixtures.py): Kiln's CPU engine matches ONNX Runtime on them, and the half-precision
GPU graph rewrites (applied to a CPU plan, KILN_CPU_RUNS_GPU_PIPELINE=1) fuse GPT-2's token and position
embedding into one Gather and let both models' last LayerNorm store the float32 output, with no Cast left. On
the H200 both had silently not fired on GPT-2 (a dead reader of the token embedding, a reshape before the Cast;
bench/NOTES.md, twentieth session)."""
import os
import re
import subprocess

import numpy as np
import pytest

from kiln_helpers import assert_close, build_engine, ort_run, run_engine
from test_compare import _kiln_cli

EXPORTS = os.path.join(os.path.dirname(__file__), "exports")


def _path(name):
    return os.path.join(EXPORTS, name + ".onnx")


def _tokens(batch, seed=0):
    return {"x": np.random.default_rng(seed).integers(0, 100, size=(batch, 128), dtype=np.int64)}


@pytest.mark.parametrize("name", ["gpt2_1layer", "bert_1layer"])
def test_cpu_engine_matches_onnxruntime(name):
    model = open(_path(name), "rb").read()
    engine = build_engine(model, shapes={"x": ((1, 128), (2, 128), (3, 128))})
    for batch in (1, 3):
        inputs = _tokens(batch, seed=batch)
        got = run_engine(engine, inputs)["out"]
        assert_close(got, ort_run(model, inputs)["out"], rtol=1e-4, atol=1e-5, what=f"{name} batch {batch}")


def _fp16_gpu_graph_layers(name, tmp_path):
    """The layer lines of `kiln inspect` for a half-precision plan built with the GPU graph rewrites."""
    plan = str(tmp_path / (name + ".plan"))
    env = dict(os.environ, KILN_CPU_RUNS_GPU_PIPELINE="1")
    built = subprocess.run([_kiln_cli(), "build", _path(name), "-o", plan, "--fp16", "--device", "cpu",
                            "--shapes", "x:1x128"], capture_output=True, text=True, env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    info = subprocess.run([_kiln_cli(), "inspect", plan], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    layers = info.stdout.split("\nlayers:", 1)[1].split("\nactivation memory", 1)[0]
    return [line.strip() for line in layers.splitlines()[1:] if line.strip()]


def _compute_layers(layers):
    """The layers that move tensor data (not the int64 shape arithmetic the export carries)."""
    return [line for line in layers if "-> int64[" not in line]


def test_gpt2_embedding_add_and_last_cast_fold(tmp_path):
    layers = _compute_layers(_fp16_gpu_graph_layers("gpt2_1layer", tmp_path))
    assert re.match(r"Gather '/m/wte/Gather' \(fused: /m/Add\) -> float16\[-1, 128, 64\]", layers[0]), layers
    assert not any(line.startswith("ElementWise '/m/Add'") for line in layers), layers
    assert not any(line.startswith("Cast ") for line in layers), layers
    assert re.match(r"Normalization '/m/ln_f/LayerNormalization' \(fused: out__to_float\) -> float32", layers[-2]), layers
    assert re.match(r"Shuffle '/m/Reshape_2' -> float32\[-1, 128, 64\]", layers[-1]), layers


def test_bert_last_cast_folds(tmp_path):
    layers = _compute_layers(_fp16_gpu_graph_layers("bert_1layer", tmp_path))
    assert not any(line.startswith("Cast ") for line in layers), layers
    assert re.match(r"Normalization '.*output/LayerNorm/LayerNormalization' \(fused: out__to_float\) -> float32",
                    layers[-1]), layers


def test_switches_keep_the_layers_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_FUSE_GATHER_ADDEND", "0")
    monkeypatch.setenv("KILN_FOLD_NORMALIZATION_CAST", "0")
    layers = _compute_layers(_fp16_gpu_graph_layers("gpt2_1layer", tmp_path))
    assert any(line.startswith("ElementWise '/m/Add'") for line in layers), layers
    assert layers[-1].startswith("Cast ") and layers[-1].endswith("float32[-1, 128, 64]"), layers
