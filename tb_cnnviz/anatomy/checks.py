"""Checks of what users hand to tb_cnnviz — models, images, class indices — each failing with
an error that says what to do."""

import keras
import numpy as np

from tb_cnnviz.anatomy import conv_layers


def build_sequential(model, samples) -> None:
    """Builds a Sequential model given no Input for the images of `samples` (`inputs.Samples`),
    as Keras would at its first batch (after the callbacks' set_model)."""
    if isinstance(model, keras.Sequential) and not model.built and samples.image_key is None:
        model.build((None, *np.shape(samples.images)[1:]))


def check_model(model) -> None:
    """Raises a ValueError saying what to do if tb_cnnviz cannot explain `model`; its output is
    `tb_cnnviz.anatomy.heads`' to check."""
    if isinstance(model, keras.Sequential) and not model.built:
        raise ValueError(
            "the model is not built yet: call it on a batch or give it an Input shape "
            "(e.g. keras.Input((64, 64, 3))) before passing it to tb_cnnviz"
        )
    if not getattr(model, "inputs", None):
        raise ValueError(
            f"tb_cnnviz needs a functional or Sequential model, and {type(model).__name__} is "
            f"subclassed: wrap it as inputs = keras.Input((height, width, channels)); "
            f"model = keras.Model(inputs, your_model(inputs)), and pass that"
        )
    if not any(len(tensor.shape) == 4 for tensor in model.inputs):
        raise ValueError(f"the model has no image input (N, H, W, C): {[tuple(t.shape) for t in model.inputs]}")
    if not conv_layers.conv_layers(model):
        raise ValueError("the model has no Conv2D, DepthwiseConv2D or SeparableConv2D layer")


def check_image_batch(images, name: str = "images") -> np.ndarray:
    """`images` as float32 (N, height, width, channels), N >= 1.

    Raises:
      TypeError: not numbers.
      ValueError: not a 4-D batch, or empty.
    """
    array = np.asarray(images)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array of images, got dtype {array.dtype}")
    if array.ndim != 4:
        raise ValueError(
            f"{name} must be a batch of images shaped (N, height, width, channels), got "
            f"shape {array.shape}; for one image use x[None], for grayscale x[..., None]"
        )
    if len(array) == 0:
        raise ValueError(f"{name} is empty: give at least one image")
    return array.astype(np.float32)


def check_image_shape(images: np.ndarray, model, name: str = "images") -> None:
    """Raises a ValueError if the model does not take images of this size."""
    expected = tuple(model.inputs[0].shape[1:])
    got = images.shape[1:]
    if any(e is not None and e != g for e, g in zip(expected, got)):
        raise ValueError(
            f"{name} have shape {got} per image but the model expects "
            f"{tuple('any' if e is None else e for e in expected)}"
        )


def class_indices(value, count: int, name: str, allowed: str, classes: int | None = None,
                  count_error: str | None = None) -> np.ndarray:
    """`value` — one int for every item, or one int per item — as `count` int64 class indices.

    allowed: how the error names the values `name` takes; classes: the model's class count, if
    known, which the indices must be below; count_error: the message for a list of the wrong
    length, with `{got}` for its length (default: the `allowed` message).

    Raises:
      ValueError: not ints, the wrong count, or an index out of range.
    """
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer) or array.ndim > 1:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if array.ndim == 1 and len(array) != count:
        raise ValueError(count_error.format(got=len(array)) if count_error else f"{name} must be {allowed}, got {value!r}")
    if np.any(array < 0) or (classes is not None and np.any(array >= classes)):
        raise ValueError(f"{name} must be in [0, {classes}), got {value!r}" if classes is not None
                         else f"{name} classes must be non-negative, got {value!r}")
    return np.broadcast_to(array, (count,)).astype(np.int64)
