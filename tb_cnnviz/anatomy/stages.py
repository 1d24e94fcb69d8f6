"""The conv layers that end each stage of a CNN: the ones the callback logs by default.

A stage is the run of layers at one resolution; its last conv has seen the most at that
resolution (block5_conv3 in VGG16, conv4_block6_3_conv in ResNet50). Two kinds of conv can come
last at their resolution without ending a stage, and the model's graph tells them apart:

- squeeze-excitation convs (EfficientNet's block2a_se_reduce, se_expand) work on a globally
  pooled vector, not on the feature map;
- expansion convs (MobileNetV2's block_1_expand, ResNet50V2's conv2_block3_1_conv) are 1x1
  convs that open the next stage's first block: their output goes straight, through
  normalisation, activation or padding only, to the strided conv that downsamples.
"""

import collections
import math

import keras

from tb_cnnviz.anatomy.conv_layers import CONV_TYPES, conv_layers

GLOBAL_POOLS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
# Sizes within this factor are one resolution: a "valid" conv trims a few pixels (Xception's
# block1 149 -> 147) where a stage boundary halves the size.
SAME_RESOLUTION = math.sqrt(2)


def stage_outputs(model, shapes: dict) -> list:
    """Paths, in model order, of the last conv at each resolution that is neither a
    squeeze-excitation nor an expansion conv (the last conv if every conv is one).

    Args:
      model: a Keras model. Functional and Sequential models, nested ones included, are read on
        their own graph; a subclassed one keeps no graph, so only `shapes` count for its convs.
      shapes: {path: (height, width, channels)} of every conv layer's output, as
        `layers.conv_output_shapes` gives it; a dynamic (None) size is a resolution of its own.
    """
    paths = list(conv_layers(model))
    skipped = _skipped(model)
    last = {}  # {first (height, width) seen of a resolution: its last conv}
    for path in paths:
        if path not in skipped:
            size = tuple(shapes[path][:2])
            last[next((seen for seen in last if _same_resolution(seen, size)), size)] = path
    return sorted(last.values(), key=paths.index) or paths[-1:]


def _same_resolution(a: tuple, b: tuple) -> bool:
    if a == b:
        return True
    if None in a or None in b:
        return False
    return all(max(x, y) < SAME_RESOLUTION * min(x, y) for x, y in zip(a, b))


def _skipped(model, prefix="") -> set:
    """Paths of the squeeze-excitation and expansion convs in the model and its nested models,
    each model read on its own graph."""
    edges = _edges(model)
    skipped, squeezed = set(), set()
    for layer in model.layers:  # model order: the convs upstream of a conv come before it
        path = prefix + layer.name
        if isinstance(layer, keras.Model):
            skipped |= _skipped(layer, path + "/")
        elif isinstance(layer, CONV_TYPES) and edges is not None:
            producers, consumers = edges
            upstream = _reached(layer, producers)
            if all(isinstance(op, GLOBAL_POOLS) or op in squeezed for op in upstream):
                squeezed.add(layer)
                skipped.add(path)
            elif _expands(layer, upstream, producers, consumers):
                skipped.add(path)
    return skipped


def _expands(layer, upstream: set, producers: dict, consumers: dict) -> bool:
    """Whether `layer` is an expansion conv: a 1x1 Conv2D whose output goes along a plain chain
    (one consumer after another, none merging other inputs) to a strided conv.

    A 1x1 conv right after a depthwise one is not: the two make a separable conv, which ends its
    block (MobileNet's conv_pw_1). A merge on the way (a residual Add) makes it a block's output.
    """
    if not isinstance(layer, keras.layers.Conv2D) or layer.kernel_size != (1, 1):
        return False
    if all(isinstance(op, keras.layers.DepthwiseConv2D) for op in upstream):
        return False
    op = layer
    while len(consumers[op]) == 1:
        (op,) = consumers[op]
        if op is None or len(producers[op]) != 1 or isinstance(op, GLOBAL_POOLS + (keras.Model,)):
            return False
        if isinstance(op, CONV_TYPES):
            return max(op.strides) > 1
    return False


def _reached(layer, neighbours: dict) -> set:
    """The convs, global poolings, nested models and graph ends (None) that `layer` reaches
    through other layers only, following `neighbours` (its producers or its consumers)."""
    stops = CONV_TYPES + GLOBAL_POOLS + (keras.Model,)
    reached, seen, todo = set(), set(), list(neighbours[layer])
    while todo:
        op = todo.pop()
        if op is None or isinstance(op, stops):
            reached.add(op)
        elif op not in seen:
            seen.add(op)
            todo.extend(neighbours[op])
    return reached


def _edges(model):
    """({op: producers}, {op: consumers}) of the model's own graph, None standing for its inputs
    and outputs; None for a subclassed model, which keeps no graph.

    A Sequential model is the chain of its layers. A functional one is walked back from its
    outputs to its inputs, so that calls of its layers in other graphs are left out.
    """
    producers, consumers = collections.defaultdict(list), collections.defaultdict(list)
    if isinstance(model, keras.Sequential):
        chain = [None, *model.layers, None]
        for a, b in zip(chain, chain[1:]):
            consumers[a].append(b)
            producers[b].append(a)
        return producers, consumers
    if not getattr(model, "outputs", None):
        return None
    inputs = {id(tensor) for tensor in model.inputs}
    for tensor in model.outputs:
        consumers[tensor._keras_history.operation].append(None)
    todo, seen = list(model.outputs), set()
    while todo:
        op, node_index, _ = todo.pop()._keras_history
        node = op._inbound_nodes[node_index]
        if node not in seen:
            seen.add(node)
            for tensor in node.input_tensors:
                source = None if id(tensor) in inputs else tensor._keras_history.operation
                producers[op].append(source)
                consumers[source].append(op)
                if source is not None:
                    todo.append(tensor)
    return producers, consumers
