"""Writes models/lenet.onnx: a LeNet-5-style CNN (MNIST-shaped input) with fixed random weights.
Run once to regenerate the shipped model: python3 scripts/make_lenet.py"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(seed=0):
    rng = np.random.default_rng(seed)

    def w(name, shape):
        fan_in = int(np.prod(shape[1:]))
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), name)

    inits = [w("conv1.w", (6, 1, 5, 5)), w("conv1.b", (6,)), w("conv2.w", (16, 6, 5, 5)), w("conv2.b", (16,)),
             w("fc1.w", (120, 400)), w("fc1.b", (120,)), w("fc2.w", (84, 120)), w("fc2.b", (84,)),
             w("fc3.w", (10, 84)), w("fc3.b", (10,))]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["c1"], name="conv1", pads=[2, 2, 2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc1.w", "fc1.b"], ["g1"], name="fc1", transB=1),
        helper.make_node("Relu", ["g1"], ["h1"], name="relu3"),
        helper.make_node("Gemm", ["h1", "fc2.w", "fc2.b"], ["g2"], name="fc2", transB=1),
        helper.make_node("Relu", ["g2"], ["h2"], name="relu4"),
        helper.make_node("Gemm", ["h2", "fc3.w", "fc3.b"], ["logits"], name="fc3", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(nodes, "lenet", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(__file__), "..", "models", "lenet.onnx")
    onnx.save(build(), out)
    print("wrote", os.path.normpath(out))
