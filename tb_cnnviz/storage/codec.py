"""cnnviz blob sequences: a JSON header followed by 8-bit PNG mosaics.

A blob sequence stores a float array of shape (B, n, h, w, c): element 0 is a JSON header,
element 1 + b is one PNG holding the n maps of item b tiled on a `grid_shape(n)` grid. Each
map is quantised to 8 bits over its own [lo, hi] range (kept in the header), so a decoded
value is within (hi - lo) / 510 of the value that was logged.

numpy, zlib and Pillow (and ISA-L's deflate where installed): used by the writer, the reader
and the TensorBoard plugin. What each kind stores in these maps is `maps`' business.
"""

import dataclasses
import functools
import io
import json
import math
import struct
import zlib

import numpy as np
from PIL import Image

from tb_cnnviz.storage import metadata

try:  # ISA-L's deflate: faster than zlib's fastest setting on feature maps (bench/README.md)
    from isal import isal_zlib
except ImportError:  # platforms without an isal wheel (setup.py installs it where there is one)
    isal_zlib = None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def grid_shape(n: int) -> tuple:
    """(rows, cols) of the near-square grid that tiles n maps."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def encode_header(**fields) -> bytes:
    """JSON header bytes. A bytes value is JSON text already (another summary's header) and is
    embedded as it is, not decoded and encoded again."""
    return _json_text({"version": metadata.FORMAT_VERSION, **fields}).encode()


def float32_json(array: np.ndarray) -> bytes:
    """JSON text (bytes) of a 2-D float32 array as nested lists, each value written with the 9
    significant digits that give back the same float32 (json's repr writes up to 17);
    `encode_header` embeds it as it is."""
    if not np.isfinite(array).all():  # written as json writes them (NaN, Infinity)
        return json.dumps(array.tolist()).encode()
    return (_float32_json_format(*array.shape) % tuple(array.ravel().tolist())).encode()


@functools.lru_cache(maxsize=64)
def _float32_json_format(rows, cols):
    """%-format string of a rows x cols nested list, so that an array is one format call."""
    row = "[" + ",".join(["%.9g"] * cols) + "]"
    return "[" + ",".join([row] * rows) + "]"


def _json_text(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict) and any(isinstance(v, (bytes, dict)) for v in value.values()):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_json_text(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def decode_header(blob: bytes) -> dict:
    """Parses element 0 of a blob sequence.

    Raises:
      metadata.FormatError: not a cnnviz header, one from a newer format, or one whose shape
        and ranges do not fit.
    """
    return check_header(metadata.parse_plugin_content(blob))


def check_header(header) -> dict:
    """`header` if its shape and ranges are usable; raises metadata.FormatError otherwise."""
    if not isinstance(header, dict):
        raise metadata.FormatError(f"not a cnnviz header: {str(header)[:80]}")
    if "shape" in header:
        shape = header["shape"]
        if not (isinstance(shape, list) and len(shape) == 5
                and all(isinstance(d, int) and d > 0 for d in shape)):
            raise metadata.FormatError(f"cnnviz header has a bad shape: {str(shape)[:80]}")
        b, n = shape[:2]
        try:
            ranges_ok = np.shape(header["lo"]) == (b, n) and np.shape(header["hi"]) == (b, n)
        except (KeyError, ValueError):
            ranges_ok = False
        if not ranges_ok:
            raise metadata.FormatError("cnnviz header ranges do not match its shape")
    return header


def check_png(header: dict, png: bytes) -> bytes:
    """`png` if it starts like the PNG mosaic `header` describes: a cheap check for images
    served without decoding. Raises metadata.FormatError otherwise."""
    _, n, h, w, _ = header["shape"]
    rows, cols = grid_shape(n)
    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR" or len(png) < 33:
        raise metadata.FormatError("damaged cnnviz image data: not a PNG")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    if (width, height) != (cols * w, rows * h):
        raise metadata.FormatError(
            f"damaged cnnviz image data: {width}x{height} image, header says {cols * w}x{rows * h}")
    return png


def png_to_array(png: bytes) -> np.ndarray:
    """Pixels of a PNG as uint8 (H, W, channels); FormatError if the bytes are not one."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            pixels = np.asarray(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:  # damaged
        raise metadata.FormatError(f"damaged cnnviz image data: {error}") from None
    if pixels.dtype != np.uint8:
        raise metadata.FormatError(f"cnnviz images are 8-bit, got {pixels.dtype}")
    return pixels if pixels.ndim == 3 else pixels[..., None]


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_IEND = _chunk(b"IEND", b"")


def deflate(data) -> bytes:
    """zlib stream of `data` at the fastest setting that still compresses feature maps."""
    if isal_zlib is not None:
        return isal_zlib.compress(data, 1)
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)  # run-length: fastest here
    return compressor.compress(data) + compressor.flush()


def array_to_png(pixels: np.ndarray) -> bytes:
    """uint8 (H, W, 1 or 3) -> PNG bytes."""
    return arrays_to_pngs(pixels[None])[0]


def arrays_to_pngs(images: np.ndarray) -> list:
    """uint8 (B, H, W, 1 or 3) -> B PNGs, written directly: no row filter (feature maps are
    noise-like; filters made them larger), one deflate call each, the rest shared."""
    count, height, width, channels = images.shape
    rows = np.zeros((count, height, 1 + width * channels), np.uint8)  # filter byte 0 (none) per row
    rows[:, :, 1:] = images.reshape(count, height, width * channels)
    colour_type = {1: 0, 3: 2}[channels]  # grey or RGB, 8 bits each
    start = PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
    return [start + _chunk(b"IDAT", deflate(item.data)) + _IEND for item in rows]


def finite_range(values: np.ndarray, finite: np.ndarray) -> tuple:
    """(lo, hi) over the last axis of the `finite` values; (0, 0) where there is none."""
    lo = np.where(finite, values, np.inf).min(axis=-1)
    hi = np.where(finite, values, -np.inf).max(axis=-1)
    empty = lo > hi
    lo[empty], hi[empty] = 0.0, 0.0
    return lo, hi


@dataclasses.dataclass(frozen=True)
class Quantised:
    """Maps as stored: 8-bit mosaics and, per item and map, the range and non-finite count."""

    mosaics: np.ndarray  # uint8 (B, rows*h, cols*w, c)
    lo: np.ndarray  # float32 (B, n)
    hi: np.ndarray  # float32 (B, n)
    nonfinite: np.ndarray  # int64 (B, n)


def quantise(maps) -> Quantised:
    """Float maps (B, n, h, w, c) -> Quantised: each map scaled over its own [lo, hi], the n
    maps of an item tiled on a `grid_shape(n)` grid.

    Non-finite values (a diverged run) are left out of the range, stored as its low end and
    counted, so readers can mark the map.
    """
    maps = np.asarray(maps, np.float32)
    flat = maps.reshape(maps.shape[0], maps.shape[1], -1)
    lo, hi = flat.min(axis=2), flat.max(axis=2)
    nonfinite = np.zeros(lo.shape, np.int64)
    finite = None
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):  # min/max see any NaN or inf
        finite = np.isfinite(flat)
        nonfinite = flat.shape[2] - finite.sum(axis=2)
        lo, hi = finite_range(flat, finite)
    span = hi - lo
    with np.errstate(invalid="ignore"):  # inf - inf and inf / x in maps marked non-finite
        levels = np.subtract(flat, lo[..., None])
        # Dividing by the span (not multiplying by 255 / span, which overflows for spans below
        # ~1e-36) keeps every value in [0, 1].
        levels /= np.where(span > 0, span, np.float32(1))[..., None]
    if finite is not None:
        levels[~finite] = 0.0
    levels *= np.float32(255)
    levels += 0.5  # in [0.5, 255.5]: truncation rounds to the nearest level, no clipping needed
    return Quantised(tile(levels.astype(np.uint8).reshape(maps.shape)), lo, hi, nonfinite)


def tile(maps: np.ndarray) -> np.ndarray:
    """uint8 maps (B, n, h, w, c) -> mosaics (B, rows*h, cols*w, c), row by row, zero-padded."""
    b, n, h, w, c = maps.shape
    rows, cols = grid_shape(n)
    if rows * cols > n:
        maps = np.concatenate([maps, np.zeros((b, rows * cols - n, h, w, c), np.uint8)], axis=1)
    grid = maps.reshape(b, rows, cols, h, w, c).transpose(0, 1, 3, 2, 4, 5)
    return grid.reshape(b, rows * h, cols * w, c)


def untile(pixels: np.ndarray, n: int, h: int, w: int) -> np.ndarray:
    """Inverse of `tile` for one item: (rows*h, cols*w, c) -> (n, h, w, c); FormatError if
    the image does not have the size the header says."""
    rows, cols = grid_shape(n)
    c = pixels.shape[-1]
    if pixels.shape != (rows * h, cols * w, c):
        raise metadata.FormatError(
            f"cnnviz image is {pixels.shape[1]}x{pixels.shape[0]}, its header says "
            f"{cols * w}x{rows * h}")
    grid = pixels.reshape(rows, h, cols, w, c).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * cols, h, w, c)[:n]


def dequantise(q: np.ndarray, lo, hi) -> np.ndarray:
    """uint8 maps (n, h, w, c) and per-map ranges (n,) -> float32 values."""
    lo = np.asarray(lo, np.float32).reshape(-1, 1, 1, 1)
    hi = np.asarray(hi, np.float32).reshape(-1, 1, 1, 1)
    return lo + q.astype(np.float32) * ((hi - lo) / 255.0)


def item_pixels(header: dict, png: bytes) -> np.ndarray:
    """uint8 maps (n, h, w, c) of one item's PNG; FormatError if it is damaged."""
    _, n, h, w, _ = header["shape"]
    return untile(png_to_array(png), n, h, w)


def decode_item(header: dict, png: bytes, index: int) -> np.ndarray:
    """Float maps (n, h, w, c) of item `index` of a blob sequence, from its PNG; FormatError
    if it is damaged."""
    return dequantise(item_pixels(header, png), header["lo"][index], header["hi"][index])


def encode_maps(maps, **fields) -> np.ndarray:
    """Blob sequence [JSON header, PNG per item] of float maps (B, n, h, w, c); `fields` go into
    the header beside the shape, ranges and non-finite counts."""
    quantised = quantise(maps)
    header = encode_header(shape=list(np.shape(maps)), lo=float32_json(quantised.lo), hi=float32_json(quantised.hi),
                           nonfinite=quantised.nonfinite.tolist(), **fields)
    return np.asarray([header, *arrays_to_pngs(quantised.mosaics)], dtype=object)


def decode_maps(header: dict, pngs: list) -> np.ndarray:
    """Float array (B, n, h, w, c) of a whole blob sequence; FormatError if an image is
    damaged or missing."""
    if len(pngs) != header["shape"][0]:
        raise metadata.FormatError(
            f"cnnviz blob sequence has {len(pngs)} images, header says {header['shape'][0]}"
        )
    return np.stack([decode_item(header, png, i) for i, png in enumerate(pngs)])
