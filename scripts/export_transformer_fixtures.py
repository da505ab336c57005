"""Writes tests/python/exports/: one-layer GPT-2 and BERT from transformers (random weights), exported the way
bench/gpu_bench.py exports the full models (torch.onnx.export, TorchScript exporter, opset 17, batch the one
dynamic axis, a batch-1 trace of 128 tokens). They carry the exporter's own graph around the layers (the Shape
reads, the reshape before GPT-2's output, BERT's token-type buffer) that the hand-written generators in
tests/python/models do not, and that decided whether two fusions fired on the H200 (bench/NOTES.md, twentieth
session). Needs torch and transformers: run it on the GPU machine (`device` tool), with OUT set. The committed
files came from the same export before the seed was set here: a rerun gives the same graphs, other weights.

    OUT=tests/python/exports python3 scripts/export_transformer_fixtures.py
"""
import io
import os

import torch
from transformers import BertConfig, BertModel, GPT2Config, GPT2Model


class LastHiddenState(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, x):
        return self.m(x).last_hidden_state


def export(model, x):
    f = io.BytesIO()
    torch.onnx.export(LastHiddenState(model.eval()), (x,), f, dynamo=False, input_names=["x"], output_names=["out"],
                      dynamic_axes={"x": {0: "batch"}}, opset_version=17)
    return f.getvalue()


def main():
    torch.manual_seed(0)
    out = os.environ["OUT"]
    models = {
        "gpt2_1layer": GPT2Model(GPT2Config(attn_implementation="eager", n_layer=1, n_embd=64, n_head=2,
                                            vocab_size=100)),
        "bert_1layer": BertModel(BertConfig(attn_implementation="eager", num_hidden_layers=1, hidden_size=64,
                                            num_attention_heads=2, intermediate_size=128, vocab_size=100)),
    }
    x = torch.randint(0, 100, (1, 128))
    for name, model in models.items():
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(export(model, x))


if __name__ == "__main__":
    main()
