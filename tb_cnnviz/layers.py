"""Finding a model's 2-D convolution layers, including inside nested models, by path name."""

import keras
import tensorflow as tf

CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


def walk(model, prefix=""):
    """Yields (path, layer) for every layer in model order, descending into nested models."""
    for layer in model.layers:
        yield prefix + layer.name, layer
        if isinstance(layer, keras.Model):
            yield from walk(layer, prefix + layer.name + "/")


def conv_layers(model):
    """{path: layer} of every 2-D conv layer in model order; nested models add "outer/inner"."""
    return {path: layer for path, layer in walk(model) if isinstance(layer, CONV_TYPES)}


def resolve(model, convs, name, what="layer"):
    """Path in `convs` of a user-given layer name: the full path or an unambiguous short name."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a layer name (str), got {type(name).__name__}")
    if name in convs:
        return name
    by_short = [path for path in convs if path.rsplit("/", 1)[-1] == name]
    if len(by_short) == 1:
        return by_short[0]
    valid = ", ".join(convs)
    if len(by_short) > 1:
        raise ValueError(f"{what} {name!r} is ambiguous; give its full path, one of: {by_short}")
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
        depthwise = tf.cast(layer.depthwise_kernel, tf.float32)
        kh, kw, cin, mult = depthwise.shape
        pointwise = tf.reshape(tf.cast(layer.pointwise_kernel, tf.float32), (cin, mult, -1))
        return tf.einsum("hwcm,cmo->hwco", depthwise, pointwise)
    kernel = tf.cast(layer.kernel, tf.float32)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, cin, mult = kernel.shape
        return tf.reshape(kernel, (kh, kw, 1, cin * mult))
    return kernel
