"""Several execution contexts of one engine on several threads and streams at once give the results each
would alone (each context owns its activation memory; the weights are shared)."""
import os
import threading

import numpy as np

import kiln as trt
from gpu_helpers import build
from kiln_helpers import ort_run

MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "models", "lenet.onnx")


def test_four_contexts_four_threads_four_streams():
    import torch
    data = open(MODEL, "rb").read()
    engine, _ = build(data, shapes={"input": ((1, 1, 28, 28), (8, 1, 28, 28), (16, 1, 28, 28))})
    errors = []

    def worker(k):
        try:
            ctx = engine.create_execution_context()
            stream = torch.cuda.Stream()
            rng = np.random.default_rng(k)
            for it in range(20):
                b = 1 + (k + it) % 16
                x = rng.standard_normal((b, 1, 28, 28)).astype(np.float32)
                with torch.cuda.stream(stream):
                    tx = torch.from_numpy(x).cuda(non_blocking=False)
                    ty = torch.full((b, 10), float("nan"), device="cuda")
                stream.synchronize()
                ctx.set_input_shape("input", x.shape)
                ctx.set_tensor_address("input", tx.data_ptr())
                ctx.set_tensor_address("probs", ty.data_ptr())
                assert ctx.execute_async_v3(stream.cuda_stream)
                stream.synchronize()
                ref = ort_run(data, {"input": x})["probs"]
                np.testing.assert_allclose(ty.cpu().numpy(), ref, rtol=1e-4, atol=1e-6)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {k}: {e!r}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, "\n".join(errors)
