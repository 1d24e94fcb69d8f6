"""A model's 2-D convolution layers: finding them (inside nested models too), naming them by
path, reading their effective kernels, and recording their outputs during a forward pass."""

import contextlib

import keras
from keras import ops

from tb_cnnviz.storage.layer_names import UnknownLayer, resolve_layer

CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


def walk(model, prefix=""):
    """Yields (path, layer) for every layer in model order, descending into nested models."""
    for layer in model.layers:
        yield prefix + layer.name, layer
        if isinstance(layer, keras.Model):
            yield from walk(layer, prefix + layer.name + "/")


def conv_layers(model) -> dict:
    """{path: layer} of every 2-D conv layer in model order; nested models add "outer/inner"."""
    return {path: layer for path, layer in walk(model) if isinstance(layer, CONV_TYPES)}


def resolve(model, convs: dict, name: str, what: str = "layer") -> str:
    """Path in `convs` of a user-given layer name: the full path or an unambiguous short name.

    Raises:
      TypeError: `name` is not a string.
      ValueError: no conv layer has that name (the message lists them), or several do.
    """
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a layer name (str), got {type(name).__name__}")
    try:
        return resolve_layer(name, convs)
    except UnknownLayer as unknown:
        if unknown.ambiguous:
            raise ValueError(f"{what} {name!r} is ambiguous; give its full path, one of: {unknown.ambiguous}") from None
    valid = ", ".join(convs)
    other = dict(walk(model)).get(name)
    if other is not None:
        raise ValueError(
            f"{what} {name!r} is a {type(other).__name__}, not a 2-D convolution; "
            f"choose one of the conv layers: {valid}"
        )
    raise ValueError(f"{what} {name!r} is not in the model; its conv layers are: {valid}")


def effective_kernel(layer):
    """Kernel (kh, kw, in, out) that maps the layer's input to each output channel.

    Depthwise filters see one input channel each; a separable filter is its depthwise
    kernels weighted by its pointwise column.
    """
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise = ops.cast(layer.depthwise_kernel, "float32")
        kh, kw, cin, mult = depthwise.shape
        pointwise = ops.reshape(ops.cast(layer.pointwise_kernel, "float32"), (cin, mult, -1))
        return ops.einsum("hwcm,cmo->hwco", depthwise, pointwise)
    kernel = ops.cast(layer.kernel, "float32")
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, cin, mult = kernel.shape
        return ops.reshape(kernel, (kh, kw, 1, cin * mult))
    return kernel


def output_layer(model, index: int = 0):
    """The layer that produces the model's output `index`, looking inside nested functional
    and Sequential models (a nested subclassed model has no graph to look into: it is the layer)."""
    layer, tensor = model, model.outputs[index] if getattr(model, "outputs", None) else None
    while isinstance(layer, keras.Model) and hasattr(layer, "outputs"):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return layer.layers[-1]
        layer = history.operation
        # the nested model's own output that this one returned
        tensor = layer.outputs[history.tensor_index] if getattr(layer, "outputs", None) else None
    return layer


@contextlib.contextmanager
def patched(obj, name, value):
    """Sets an instance attribute for the duration of a trace, bypassing Keras' tracking."""
    had = name in obj.__dict__
    old = obj.__dict__.get(name)
    obj.__dict__[name] = value
    try:
        yield
    finally:
        if had:
            obj.__dict__[name] = old
        else:
            del obj.__dict__[name]


@contextlib.contextmanager
def recording(watched: dict, outputs: dict, transforms: dict | None = None):
    """While active, the first output of each watched layer {path: layer} goes to `outputs`,
    passed first through its function in `transforms` ({path: tensor -> tensor}, e.g. a
    backend's `watch` for gradients with respect to it), which the model then goes on with.

    Wrapping each layer's `call` works the same in functional, Sequential, nested and wrapped
    subclassed models, without building sub-models.
    """
    transforms = transforms or {}
    with contextlib.ExitStack() as stack:
        for path, layer in watched.items():
            def call(*args, _path=path, _call=layer.call, **kwargs):
                result = _call(*args, **kwargs)
                if _path not in outputs:
                    result = transforms.get(_path, _identity)(result)
                    outputs[_path] = result
                return result

            stack.enter_context(patched(layer, "call", call))
        yield


def _identity(tensor):
    return tensor


def conv_output_shapes(model, convs: dict, sample) -> dict:
    """{path: (height, width, channels)} of each conv layer's output (None for a dynamic size):
    from the model's graph, or, for layers inside a subclassed model (which keep no symbolic
    output), by running `sample` (one sample's inputs, as the model takes them) through it."""
    try:
        return {path: tuple(layer.output.shape[1:]) for path, layer in convs.items()}
    except AttributeError:
        recorded = {}
        with recording(convs, recorded):
            model(sample, training=False)
        missing = sorted(set(convs) - set(recorded))
        if missing:
            raise ValueError(f"layers {missing} are not used by the model's forward pass") from None
        return {path: tuple(recorded[path].shape[1:]) for path in convs}
