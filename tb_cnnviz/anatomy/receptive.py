"""Receptive fields of conv layers in input pixels: where to crop an image around a filter's peak.

Coordinates are input pixel coordinates in which pixel i covers [i, i + 1) along each axis. A
field is the run of input pixels one output unit reads, following the model's graph from the
image input: output unit y of a layer reads input pixels [start - size / 2 + y * jump, ... + size).
A 3x3 'valid' conv has size 3, jump 1 and start 1.5 (unit 0 reads pixels 0, 1, 2); a 3x3 'same'
conv has start 0.5 (unit 0 reads pixels -1, 0, 1, pixel -1 being padding). Padding inside the
model (ZeroPadding2D, 'same' deeper in) counts the same way, as the pixels past that map's edge:
a unit next to it reads zeros where its box has those pixels.

Only the image input's pixels count. Where branches merge (Add, Concatenate: ResNet, Inception,
DenseNet) the field is the union of the branches' fields, which is the largest branch's field
when, as in those models, the branches' fields are nested. Branches that hold no position of the
image are left out at a merge: other inputs, and vectors made by global pooling (squeeze-excitation
gates, which weigh a position's value but do not move what it reads). For the same reason
normalisations that take statistics over the map (LayerNormalization, GroupNormalization) count as
elementwise. Any other layer this module cannot follow (UpSampling2D, Conv2DTranspose, Reshape,
Flatten, Lambda, a custom layer, a subclassed model) gives every layer after it no field (None):
it may read the whole image.
"""

import collections
import dataclasses

import keras

from tb_cnnviz.anatomy.conv_layers import CONV_TYPES, conv_layers
from tb_cnnviz.storage.run_header import unit_box

POOLS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
GLOBAL_POOLS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
MERGES = (keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
          keras.layers.Maximum, keras.layers.Minimum)
ELEMENTWISE = MERGES + (
    keras.layers.InputLayer, keras.layers.Identity, keras.layers.Activation, keras.layers.ReLU,
    keras.layers.LeakyReLU, keras.layers.PReLU, keras.layers.ELU, keras.layers.Softmax,
    keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization,
    keras.layers.UnitNormalization, keras.layers.Rescaling, keras.layers.Normalization,
    keras.layers.Dropout, keras.layers.SpatialDropout2D, keras.layers.GaussianNoise,
    keras.layers.GaussianDropout, keras.layers.AlphaDropout, keras.layers.ActivityRegularization,
    keras.layers.Dense,  # on a 4-D map it is a 1x1 conv
    # augmentations that are the identity at inference
    keras.layers.RandomFlip, keras.layers.RandomRotation, keras.layers.RandomZoom,
    keras.layers.RandomTranslation, keras.layers.RandomContrast, keras.layers.RandomBrightness,
)
# keras.ops a functional graph records for `x + 3`, `x * gate` or `keras.ops.relu(x)` (MobileNetV3)
ELEMENTWISE_OPS = {"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum",
                   "Negative", "Abs", "Square", "Sqrt", "Exp", "Log", "Clip", "Relu", "Relu6",
                   "Sigmoid", "HardSigmoid", "Silu", "HardSilu", "Gelu", "Tanh"}
# A branch that holds no position of the image: another input, or a globally pooled vector.
NO_POSITION = "no position"

_Axis = collections.namedtuple("_Axis", "size jump first n")  # first: unit 0's first pixel; n: map size


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """size: (height, width) of one output unit's field; jump: (dy, dx) input pixels between
    neighbouring units; start: (y, x) centre of unit (0, 0)'s field (see the module docstring)."""

    size: tuple
    jump: tuple
    start: tuple

    def stored(self) -> list:
        """[height, width, jump y, jump x, start y, start x]: as run headers store it."""
        return [*self.size, *self.jump, *self.start]

    def box(self, y: int, x: int) -> tuple:
        """(y0, x0, y1, x1): the half-open box of input pixels output unit (y, x) reads
        (`storage.run_header.unit_box`)."""
        return unit_box(self.stored(), (y, x))


def receptive_fields(model, paths, image_input=None) -> dict:
    """{path: ReceptiveField, or None where the field cannot be followed (the whole image)}.

    Args:
      model: a functional or Sequential Keras model taking channels-last images.
      paths: keys of `layers.conv_layers(model)`.
      image_input: for a model with several inputs, the image input as a dict key, list index
        or input name (as in `tb_cnnviz.anatomy.model_inputs`); by default the only 4-D input.

    Raises:
      ValueError: a path that is not a conv layer of the model (the message lists them), or no
        such image input.
    """
    convs = conv_layers(model)
    unknown = [path for path in paths if path not in convs]
    if unknown:
        raise ValueError(f"{unknown} are not conv layers of the model; its conv layers are: {', '.join(convs)}")
    inputs = list(getattr(model, "inputs", None) or [])
    image = _image_input(model, inputs, image_input)
    sizes = (None, None) if image is None else tuple(image.shape[1:3])
    image_field = tuple(_Axis(1, 1, 0, n) for n in sizes)
    found = {}
    _run(model, [image_field if t is image else NO_POSITION for t in inputs] or [image_field], "", found)
    return {path: _field(found.get(path)) for path in paths}


def _image_input(model, inputs: list, image_input):
    """The model's image input tensor (None for a model built without inputs)."""
    if image_input is None:
        four_d = [tensor for tensor in inputs if len(tensor.shape) == 4]
        if len(inputs) > 1 and len(four_d) != 1:
            raise ValueError(f"the model has {len(four_d)} image inputs among {[t.name for t in inputs]}: "
                             f"name one with image_input=")
        return four_d[0] if four_d else None
    structure = getattr(model, "_inputs_struct", None)
    if isinstance(structure, dict) and image_input in structure:
        return structure[image_input]
    if isinstance(image_input, int) and 0 <= image_input < len(inputs):
        return inputs[image_input]
    named = [tensor for tensor in inputs if tensor.name == image_input]
    if not named:
        raise ValueError(f"image_input={image_input!r} names no input of the model; its inputs are "
                         f"{sorted(structure) if isinstance(structure, dict) else [t.name for t in inputs]}")
    return named[0]


def _field(axes):
    if not isinstance(axes, tuple):
        return None
    return ReceptiveField(size=tuple(a.size for a in axes), jump=tuple(a.jump for a in axes),
                          start=tuple(a.first + a.size / 2 for a in axes))


def _run(model, fields: list, prefix: str, found: dict) -> list:
    """The fields of the model's outputs given those of its inputs, recording each conv's
    output field in `found` under its path; None for a subclassed model, which keeps no graph."""
    if isinstance(model, keras.Sequential):
        field = fields[0]
        for layer in model.layers:
            (field,) = _call(layer, [field], 1, prefix, found)
        return [field]
    if not getattr(model, "outputs", None) or len(fields) != len(model.inputs):
        return None
    known = {id(tensor): field for tensor, field in zip(model.inputs, fields)}
    todo = list(model.outputs)
    while todo:  # depth first without recursion: DenseNet201's graph is 700 layers deep
        tensor = todo[-1]
        if id(tensor) in known:
            todo.pop()
            continue
        op, node_index, _ = tensor._keras_history
        node = op._inbound_nodes[node_index]
        waiting = [t for t in node.input_tensors if id(t) not in known]
        if waiting:
            todo.extend(waiting)
            continue
        todo.pop()
        outputs = _call(op, [known[id(t)] for t in node.input_tensors], len(node.output_tensors), prefix, found)
        known.update(zip(map(id, node.output_tensors), outputs))
    return [known[id(tensor)] for tensor in model.outputs]


def _call(op, fields: list, count: int, prefix: str, found: dict) -> list:
    """The fields of `op`'s `count` outputs given its inputs' fields."""
    path = prefix + op.name
    if isinstance(op, keras.Model):
        outputs = _run(op, fields, path + "/", found)
        return outputs if outputs and len(outputs) == count else [None] * count
    field = _through(op, fields)
    if isinstance(op, CONV_TYPES) and not isinstance(found.get(path), tuple):
        found[path] = field  # a shared layer keeps its call on the image
    return [field] * count


def _through(op, fields: list):
    """The field of a layer's output: axes, None (cannot follow), or NO_POSITION."""
    if isinstance(op, GLOBAL_POOLS):
        return NO_POSITION
    spatial = [field for field in fields if field is not NO_POSITION]
    if not spatial:
        return NO_POSITION
    if None in spatial:
        return None
    if isinstance(op, CONV_TYPES + POOLS):
        if isinstance(op, POOLS):
            kernel, dilation = op.pool_size, (1, 1)
        else:
            kernel, dilation = op.kernel_size, op.dilation_rate
        axes = [_window(axis, (k - 1) * d + 1, s, op.padding.lower())
                for axis, k, d, s in zip(spatial[0], kernel, dilation, op.strides)]
        return None if None in axes else tuple(axes)
    if isinstance(op, keras.layers.ZeroPadding2D):
        return tuple(_pad(axis, before, after) for axis, (before, after) in zip(spatial[0], op.padding))
    if isinstance(op, keras.layers.Cropping2D):
        return tuple(_pad(axis, -before, -after) for axis, (before, after) in zip(spatial[0], op.cropping))
    channels = isinstance(op, keras.layers.Concatenate) and op.axis in (-1, 3)
    elementwise_op = type(op).__name__ in ELEMENTWISE_OPS and type(op).__module__.startswith("keras.src.ops.")
    if isinstance(op, ELEMENTWISE) or channels or elementwise_op:
        return _union(spatial)
    return None


def _window(axis: _Axis, kernel: int, stride: int, padding: str):
    """The axis after a conv or pooling window; None for 'same' padding on a map of unknown
    size with a stride, where the padding (and so the offset) depends on the size."""
    if padding == "valid":
        before = 0
        n = None if axis.n is None else (axis.n - kernel) // stride + 1
    elif axis.n is None:
        if stride != 1:
            return None
        before, n = (kernel - 1) // 2, None
    else:  # TensorFlow's 'same': the padding total split with the odd pixel after
        n = -(-axis.n // stride)
        before = max((n - 1) * stride + kernel - axis.n, 0) // 2
    return _Axis(axis.size + (kernel - 1) * axis.jump, axis.jump * stride, axis.first - before * axis.jump, n)


def _pad(axis: _Axis, before: int, after: int) -> _Axis:
    """The axis after padding (or, negative, cropping) the map."""
    n = None if axis.n is None else axis.n + before + after
    return axis._replace(first=axis.first - before * axis.jump, n=n)


def _union(fields: list):
    """The union of the merged branches' fields (None if their units are spaced differently)."""
    merged = []
    for axes in zip(*fields):
        if len({axis.jump for axis in axes}) != 1:
            return None
        first = min(axis.first for axis in axes)
        last = max(axis.first + axis.size for axis in axes)
        merged.append(_Axis(last - first, axes[0].jump, first, axes[0].n))
    return tuple(merged)
