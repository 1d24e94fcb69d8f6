"""Where each map kind's arrays sit in the stored (items, maps, h, w, c) of a blob sequence of 8-bit
PNG mosaics (`codec`), and how readers get them back: whole, one item, or one map of an item.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from tb_cnnviz.storage import codec
from tb_cnnviz.storage.metadata import (ACTIVATIONS, CLASS_MAPS, FEATURE_VIS, FILTERS, GRADCAM, GRADCAM_PP, MASKS,
                                        METHOD_MAPS, REFERENCE, RUN_HEADER, FormatError)

# A CLASS_MAPS item holds a probe's maps of each explained class, by method: [Grad-CAM of each
# class ..., Grad-CAM++ of each class ...]; its header's `classes` lists each probe's classes.
CLASS_MAP_METHODS = (GRADCAM, GRADCAM_PP)
FILTERS_ITEM = 0  # a step's filters of one layer are one item of n maps
# Filter views: colour tiles of the first layer's kernels, or each kernel averaged over inputs.
KERNEL_VIEW, MEAN_VIEW = "kernel", "mean_over_inputs"


@dataclasses.dataclass(frozen=True)
class Layout:
    to_stored: Callable  # the kind's array -> (items, maps, h, w, c)
    from_stored: Callable  # (items, maps, h, w, c) -> the kind's array
    item: Callable  # one item's (maps, h, w, c) -> its part of the kind's array
    channel: Callable | None = None  # (the array or an item's part, position) -> that channel's map


_HEAT_MAPS = Layout(  # (N, H, W): one map per probe
    lambda maps: maps[:, None, :, :, None], lambda stored: stored[:, 0, :, :, 0], lambda item: item[0, :, :, 0])
_PROBE_MAPS = Layout(  # (N, maps, h, w): several maps per probe
    lambda maps: maps[..., None], lambda stored: stored[..., 0], lambda item: item[..., 0],
    lambda maps, position: maps[..., position, :, :])
_IMAGES = Layout(  # (N, H, W, C): one image per item
    lambda images: images[:, None], lambda stored: stored[:, 0], lambda item: item[0])
LAYOUTS = {
    RUN_HEADER: _IMAGES,  # probe images
    REFERENCE: _IMAGES,  # reference images of top examples
    FEATURE_VIS: _IMAGES,  # one image per visualised channel (its header's `channels`)
    GRADCAM: _HEAT_MAPS,
    GRADCAM_PP: _HEAT_MAPS,
    METHOD_MAPS: _HEAT_MAPS,  # a class activation map's at its layer's resolution, a pixel attribution's at the input's
    MASKS: Layout(  # (N, H, W) class indices, exact through 8 bits for up to 256 classes
        lambda masks: masks[:, None, :, :, None].astype(np.float32),
        lambda stored: np.rint(stored[:, 0, :, :, 0]).astype(np.int64),
        lambda item: np.rint(item[0, :, :, 0]).astype(np.int64)),
    ACTIVATIONS: _PROBE_MAPS,  # (N, channels, h, w): a probe's logged channels
    CLASS_MAPS: _PROBE_MAPS,  # (N, methods x classes, h, w): CLASS_MAP_METHODS
    FILTERS: Layout(  # (filters, kh, kw, c): one item, c is 3 for colour tiles
        lambda kernels: kernels[None], lambda stored: stored[FILTERS_ITEM], lambda item: item,
        lambda kernels, position: kernels[position]),
}


def pack_maps(kind: str, array: np.ndarray, **fields) -> np.ndarray:
    """Blob sequence [JSON header, PNG per item] of a map kind's float array; `fields` go into
    the header beside the shape, ranges and non-finite counts."""
    return codec.encode_maps(LAYOUTS[kind].to_stored(array), **fields)


def unpack_maps(kind: str, header: dict, pngs: list) -> np.ndarray:
    """A map kind's float array from its decoded header and every item's PNG; heat maps at
    the size their header gives."""
    return _at_size(header, LAYOUTS[kind].from_stored(codec.decode_maps(header, pngs)))


def unpack_item(kind: str, header: dict, png: bytes, item: int) -> np.ndarray:
    """One item's part of a map kind's array (a probe's maps; FILTERS_ITEM: all filters)."""
    return _at_size(header, LAYOUTS[kind].item(codec.decode_item(header, png, item)))


def _at_size(header: dict, maps: np.ndarray) -> np.ndarray:
    """Heat maps stored at their layer's resolution, upsampled to the `size` in their header
    (format 2); other maps as they are."""
    size = header.get("size")
    if size is None:
        return maps
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(d, int) and d > 0 for d in size)):
        raise FormatError(f"cnnviz header has a bad size: {str(size)[:80]}")
    return upsample(maps, size)


def _bilinear_axis(n_in: int, n_out: int) -> tuple:
    """(low index, high index, weight of the high one) of each output position, half-pixel
    centres, clamped at the edges: tf.image.resize's bilinear sampling along one axis."""
    position = (np.arange(n_out, dtype=np.float32) + 0.5) * np.float32(n_in / n_out) - 0.5
    low = np.floor(position)
    weight = position - low
    low = low.astype(np.int64)
    return np.clip(low, 0, n_in - 1), np.clip(low + 1, 0, n_in - 1), weight


def upsample(maps: np.ndarray, size) -> np.ndarray:
    """float32 (..., h, w) maps resized to (..., H, W) = `size` as `tf.image.resize(...,
    method="bilinear")` does (half-pixel centres, no antialiasing), in NumPy."""
    maps = np.asarray(maps, np.float32)
    (h, w), (height, width) = maps.shape[-2:], tuple(size)
    if (h, w) == (height, width):
        return maps
    top, bottom, dy = _bilinear_axis(h, height)
    left, right, dx = _bilinear_axis(w, width)
    rows = maps[..., top, :] + (maps[..., bottom, :] - maps[..., top, :]) * dy[:, None]
    return rows[..., left] + (rows[..., right] - rows[..., left]) * dx


def nonfinite(header: dict) -> np.ndarray:
    """Per item and map, how many logged values were NaN or infinite (items, maps)."""
    return np.asarray(header.get("nonfinite", np.zeros(header["shape"][:2], int)))


def channel_position(header: dict, channel: int) -> int:
    """Where a channel the header lists sits among an item's maps."""
    return header["channels"].index(channel)


def channel(kind: str, array: np.ndarray, position: int) -> np.ndarray:
    """One channel's map of an ACTIVATIONS or FILTERS array (or of one item's part of it)."""
    return LAYOUTS[kind].channel(array, position)


def class_map_position(header: dict, item: int, class_index: int, method: str) -> int:
    """Where the map of `class_index`, one of the item's classes (its header's `classes`), by
    `method` sits among a CLASS_MAPS item's maps."""
    classes = header["classes"][item]
    return CLASS_MAP_METHODS.index(method) * len(classes) + classes.index(class_index)


def map_png(header: dict, png: bytes, position: int) -> bytes:
    """One map of an item's stored mosaic, as a PNG of its own."""
    return codec.array_to_png(codec.item_pixels(header, png)[position])

