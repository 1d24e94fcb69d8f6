"""Image resizing as two matrix products in `keras.ops`, for backends whose own resize differs
from TensorFlow's (jax.image.resize antialiases when it shrinks, for one): the same pixels as
`tf.image.resize` with "bilinear" (half-pixel centres, no antialiasing) and "area", so that
every backend stores the same maps."""

import functools

import numpy as np
from keras import ops


@functools.lru_cache(maxsize=256)
def weights(source: int, target: int, method: str) -> np.ndarray:
    """(target, source) float32: each output pixel's weights over the input pixels along one axis."""
    scale = source / target
    rows = np.arange(target)
    matrix = np.zeros((target, source), np.float64)
    if method == "bilinear":
        position = (rows + 0.5) * scale - 0.5  # half-pixel centres; beyond the edge, the edge pixel
        floor = np.floor(position)
        lerp = position - floor
        np.add.at(matrix, (rows, np.clip(floor, 0, source - 1).astype(int)), 1.0 - lerp)
        np.add.at(matrix, (rows, np.clip(floor + 1, 0, source - 1).astype(int)), lerp)
    elif method == "area":  # the mean of the input pixels each output pixel covers, by their share
        start = rows[:, None] * scale
        edges = np.arange(source)[None, :]
        matrix = np.clip(np.minimum(start + scale, edges + 1) - np.maximum(start, edges), 0.0, None) / scale
    else:
        raise ValueError(f"method must be 'bilinear' or 'area', got {method!r}")
    return matrix.astype(np.float32)


def resize(images, size, method: str):
    """(N, H, W, C) images resized to `size` (h, w) by `method`, in float32 (as tf.image.resize)."""
    height, width = images.shape[1:3]
    images = ops.cast(images, "float32")
    rows, columns = weights(height, int(size[0]), method), weights(width, int(size[1]), method)
    return ops.einsum("xw,nywc->nyxc", columns, ops.einsum("yh,nhwc->nywc", rows, images))
