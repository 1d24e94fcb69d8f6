"""Top-activating examples as served: each example's receptive-field patch of its reference
image, cropped when asked for (events store only image, peak position and value per filter).
A field the run header does not know (None) gives the whole image."""

import numpy as np

from tb_cnnviz.storage.run_header import unit_box
from tb_cnnviz.storage.top_examples import TopExamples


def patch_box(field, position, image_size) -> tuple:
    """The box of the patch around a peak at `position` (y, x) of the layer's map: the unit's
    box (`unit_box`), but the whole image along an axis where the field is no smaller than
    the image or unknown (`field` None)."""
    unit = unit_box(field, position) if field is not None else None
    y0, x0, y1, x1 = (0, 0, *image_size) if unit is None else unit
    if unit is None or field[0] >= image_size[0]:
        y0, y1 = 0, image_size[0]
    if unit is None or field[1] >= image_size[1]:
        x0, x1 = 0, image_size[1]
    return y0, x0, y1, x1


def crop(image: np.ndarray, box) -> np.ndarray:
    """The pixels of `image` (H, W, C) in `box`, zero where it lies outside the image: what a
    conv layer's zero padding shows the filter there."""
    y0, x0, y1, x1 = box
    height, width = image.shape[:2]
    patch = np.zeros((y1 - y0, x1 - x0, image.shape[2]), np.float32)
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y1, height), min(x1, width)
    if bottom > top and right > left:
        patch[top - y0:bottom - y0, left - x0:right - x0] = image[top:bottom, left:right]
    return patch


def patches(images, size, top: TopExamples, channel: int, field) -> tuple:
    """((k, h, w, C) patches of one filter's top examples, best first, their boxes): `images`
    maps (at least) the examples' image indices to the reference images (H, W, C) = `size` + (C,).
    KeyError if `top` does not hold that filter."""
    column = top.column(channel)
    boxes = [patch_box(field, position, size) for position in top.positions[:, column]]
    return np.stack([crop(images[i], box) for i, box in zip(top.images[:, column], boxes)]), boxes
