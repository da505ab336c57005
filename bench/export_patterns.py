"""Exports the benchmark's transformer models at a tiny size, exactly as bench/gpu_bench.py exports them
(the same constructors and configs but for the sizes, the same torch.onnx.export call), so the ONNX patterns
of the GPU machine's torch and transformers can be read where those versions are not installed. For each
model it writes, under OUT/patterns/: NAME.onnx, NAME.nodes.txt (every node: op, name, inputs, outputs,
attributes) and NAME.kiln.txt (Kiln's FP16 engine for a dynamic batch, engine.describe(): which layers the
passes left), then packs the folder into OUT/patterns.tar.gz (the device returns few files). Each Kiln build
runs in a child process, so a crash in one still leaves the others, and the crash's native stack is written
to NAME.kiln.txt where gdb is installed. Run by `scripts/gpu_check.sh patterns`; a minute at most."""
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import onnx
from onnx import numpy_helper

# The GPU target's passes for the engine description, also where no GPU is (the engine is only described).
os.environ.setdefault("KILN_CPU_RUNS_GPU_PIPELINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_bench  # noqa: E402  (imports kiln as trt)

trt = gpu_bench.trt


def tiny_model(name, torch):
    torch.manual_seed(0)
    if name == "vit-b16":
        import torchvision
        m = torchvision.models.VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=2,
                                                 hidden_dim=128, mlp_dim=256)
        return m, (torch.randn(2, 3, 64, 64),)
    if name == "bert-base":
        from transformers import BertConfig, BertModel
        cfg = BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=256, attn_implementation="eager")
        return BertModel(cfg), (torch.randint(0, 1000, (2, 128)),)
    if name == "gpt2":
        from transformers import GPT2Config, GPT2Model
        cfg = GPT2Config(vocab_size=1000, n_embd=128, n_layer=2, n_head=2, attn_implementation="eager")
        return GPT2Model(cfg), (torch.randint(0, 1000, (2, 128)),)
    raise KeyError(name)


def node_lines(model):
    lines = []
    for n in model.graph.node:
        attrs = {}
        for a in n.attribute:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, onnx.TensorProto):
                arr = numpy_helper.to_array(v)
                v = arr.tolist() if arr.size <= 8 else f"tensor{list(arr.shape)}"
            attrs[a.name] = v
        lines.append(f"{n.op_type} {n.name} in={list(n.input)} out={list(n.output)} {attrs}")
    return lines


def kiln_layers(onnx_bytes, shape, verbose=False):
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        return "parse failed: " + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1,) + shape, (4,) + shape, (8,) + shape)
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        return "build failed"
    return trt.Runtime(logger).deserialize_cuda_engine(plan).describe()


def describe_in_child(onnx_path, shape):
    """Kiln's engine description of one export, built in a child process; on a crash, what killed it and,
    where gdb is installed, the native stack of a second run under gdb."""
    cmd = [sys.executable, os.path.abspath(__file__), "--describe", onnx_path] + [str(d) for d in shape]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 0:
        return r.stdout, True
    text = f"kiln build crashed or failed (exit {r.returncode})\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr[-20000:]}\n"
    if r.returncode < 0:  # killed by a signal: again with the build's log, under a debugger where there is one
        verbose = [sys.executable, "-X", "faulthandler"] + cmd[1:] + ["--verbose"]
        gdb = shutil.which("gdb") or shutil.which("cuda-gdb") or (
            "/usr/local/cuda/bin/cuda-gdb" if os.path.exists("/usr/local/cuda/bin/cuda-gdb") else None)
        if gdb:
            verbose = [gdb, "-batch", "-ex", "run", "-ex", "bt 40", "--args"] + verbose
        g = subprocess.run(verbose, capture_output=True, text=True)
        text += f"--- again: {' '.join(verbose[:3])} ...\n" + (g.stdout + g.stderr)[-40000:]
    return text, False


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--describe":
        verbose = sys.argv[-1] == "--verbose"
        dims = sys.argv[3:-1] if verbose else sys.argv[3:]
        with open(sys.argv[2], "rb") as f:
            print(kiln_layers(f.read(), tuple(int(d) for d in dims), verbose), flush=True)
        return 0
    import torch
    root = os.environ.get("OUT", "/tmp/kiln-gpu")
    out = os.path.join(root, "patterns")
    os.makedirs(out, exist_ok=True)
    print("torch", torch.__version__)
    ok = True
    for name in ("vit-b16", "bert-base", "gpt2"):
        model, args = tiny_model(name, torch)
        data = gpu_bench.export(gpu_bench.first_output(model.eval(), torch).eval(), args, ["x"], torch)
        onnx_path = os.path.join(out, name + ".onnx")
        with open(onnx_path, "wb") as f:
            f.write(data)
        with open(os.path.join(out, name + ".nodes.txt"), "w") as f:
            f.write("\n".join(node_lines(onnx.load_from_string(data))) + "\n")
        text, built = describe_in_child(onnx_path, tuple(np.asarray(args[0].shape[1:]).tolist()))
        with open(os.path.join(out, name + ".kiln.txt"), "w") as f:
            f.write(text + "\n")
        ok = ok and built
        print(name, "exported:", len(data), "bytes;", "described" if built else "KILN BUILD FAILED (see kiln.txt)")
    with tarfile.open(os.path.join(root, "patterns.tar.gz"), "w:gz") as tar:
        tar.add(out, arcname="patterns")
    shutil.rmtree(out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
