"""--per-layer: every intermediate tensor of the model becomes a graph output (the same modified model
runs on both sides), and the layers are listed in topological order so the first one that diverges
can be named."""
import heapq
from dataclasses import dataclass

from . import CompareError


@dataclass
class Layer:
    index: int          # position in topological order
    op_type: str
    name: str           # node name ("" when the model gives none)
    outputs: list       # the tensors compared for this layer
    inputs: list        # its non-empty inputs

    def label(self):
        return self.name or f"<unnamed {self.op_type} #{self.index}>"


def topo_order(nodes, available):
    """Node indices in a topological order that keeps the file's order where it can (ONNX requires files
    to be sorted already; some writers do not). `available`: tensors that exist before any node runs."""
    producers = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o:
                producers[o] = i
    waiting = []
    users = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        deps = {producers[x] for x in n.input if x and x not in available and x in producers and producers[x] != i}
        waiting.append(len(deps))
        for p in deps:
            users[p].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        done = set(order)
        stuck = [nodes[i].name or nodes[i].op_type for i in range(len(nodes)) if i not in done]
        raise CompareError(f"the graph has a cycle (or nodes whose inputs are never produced): {stuck[:5]}")
    return order


def mark_all_outputs(model):
    """A copy of `model` whose graph outputs are its own outputs followed by every node output, and the
    layers in topological order. Constant nodes are left out: both sides read the same attribute."""
    import onnx
    from onnx import helper

    marked = onnx.ModelProto()
    marked.CopyFrom(model)
    graph = marked.graph
    inits = {t.name for t in graph.initializer}
    inputs = {i.name for i in graph.input}
    existing = {o.name for o in graph.output}
    types = _known_types(marked)
    order = topo_order(list(graph.node), inits | inputs)
    layers, added = [], set()
    for pos, i in enumerate(order):
        node = graph.node[i]
        outs = [o for o in node.output if o and o not in inits and o not in inputs]
        if not outs or (node.op_type == "Constant" and node.domain in ("", "ai.onnx")):
            continue
        for o in outs:
            if o in existing or o in added:
                continue
            elem = types.get(o, 0)
            if elem:
                graph.output.append(helper.make_tensor_value_info(o, elem, None))  # rank left open
            else:
                graph.output.append(helper.make_empty_tensor_value_info(o))
            added.add(o)
        layers.append(Layer(pos, node.op_type, node.name, outs, [x for x in node.input if x]))
    return marked, layers


def _known_types(model):
    """Element types of intermediate tensors: from the model's value_info, completed by ONNX shape
    inference where it succeeds (a model it cannot infer still runs; its outputs are then untyped)."""
    import onnx

    types = {vi.name: vi.type.tensor_type.elem_type for vi in model.graph.value_info
             if vi.type.HasField("tensor_type")}
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is a convenience here
        return types
    for vi in inferred.graph.value_info:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types.setdefault(vi.name, vi.type.tensor_type.elem_type)
    return types
