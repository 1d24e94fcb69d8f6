"""Top-activating examples as stored: per logged layer and event, each filter's k best
reference images, the peak's position in the layer's map and its value."""

import dataclasses
import zlib

import numpy as np

from tb_cnnviz.storage import codec
from tb_cnnviz.storage.metadata import FormatError

# Where top examples' image indices point: the probe images, or the run's own reference set.
PROBES_REFERENCE, OWN_REFERENCE = "probes", "reference"

# A TOP_EXAMPLES summary (per logged layer and event) is [JSON header, payload]. The payload
# deflates three (k, filters) arrays, stored filter by filter (a filter's k values, best first,
# side by side deflate best): the reference image and the peak's position in the layer's map,
# row-major (each 8 bits up to 256 images or pixels, else 16, 32 beyond 65,536), and the peak value as a 16-bit level over the header's
# [lo, hi] (TOP_NONFINITE for NaN or infinite): within (hi - lo) / 131068 of the logged value.
TOP_LEVELS = 65534
TOP_NONFINITE = 65535


@dataclasses.dataclass(frozen=True)
class TopExamples:
    """One layer's top examples at one event; `images` index the run's reference images."""

    images: np.ndarray  # (k, filters) int64, best first
    positions: np.ndarray  # (k, filters, 2) int64: (y, x) of each peak in the layer's map
    values: np.ndarray  # (k, filters) float32 peak values
    reference: str  # PROBES_REFERENCE or OWN_REFERENCE
    first: int = 0  # the layer's filter in column 0: a wide layer's filters are stored in turns

    def holds(self, channel: int) -> bool:
        return self.first <= channel < self.first + self.images.shape[1]

    def column(self, channel: int) -> int:
        """Where filter `channel` sits; KeyError if this event did not store it."""
        if not self.holds(channel):
            raise KeyError(f"filter {channel}'s top examples are not stored at this event, which stores filters "
                           f"{self.first} to {self.first + self.images.shape[1] - 1} of the layer (wider layers take turns)")
        return channel - self.first

    def of(self, channel: int) -> dict:
        """{"images", "values", "positions"} of one filter, as the route serves them."""
        column = self.column(channel)
        return {"images": self.images[:, column].tolist(), "values": self.values[:, column].tolist(),
                "positions": self.positions[:, column].tolist()}


def _index_dtype(count: int):
    return np.uint8 if count <= 256 else np.uint16 if count <= 65536 else np.uint32


def pack_top_examples(images, positions, values, map_size, count: int, reference: str, first: int = 0,
                      digest: str | None = None) -> np.ndarray:
    """Blob sequence [header, payload] of one layer's (k, filters) top examples: reference image
    indices among `count` images, flat peak positions in maps of `map_size` (h, w), values, of
    the layer's filters from `first` on; `digest` names the images they index (`digest_matches`)."""
    values = np.asarray(values, np.float32)
    finite = np.isfinite(values)
    lo, hi = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 0.0)
    span = hi - lo if hi > lo else 1.0
    with np.errstate(invalid="ignore"):
        levels = np.where(finite, np.round((values - lo) / span * TOP_LEVELS), TOP_NONFINITE).astype("<u2")
    pixels = int(np.prod(map_size))
    payload = b"".join([np.asarray(images).T.astype(np.dtype(_index_dtype(count)).newbyteorder("<")).tobytes(),
                        np.asarray(positions).T.astype(np.dtype(_index_dtype(pixels)).newbyteorder("<")).tobytes(),
                        levels.T.tobytes()])
    header = codec.encode_header(k=int(values.shape[0]), filters=int(values.shape[1]), count=int(count),
                                 map_size=[int(d) for d in map_size], reference=reference, lo=lo, hi=hi,
                                 first=int(first), digest=digest)
    return np.asarray([header, zlib.compress(payload, 9)], dtype=object)


def unpack_top_examples(header: dict, payload: bytes) -> TopExamples:
    """The TopExamples of a decoded TOP_EXAMPLES header and its payload; FormatError if damaged."""
    try:
        k, filters, count = (int(header[name]) for name in ("k", "filters", "count"))
        height, width = (int(d) for d in header["map_size"])
        lo, hi, reference = float(header["lo"]), float(header["hi"]), str(header["reference"])
        first = int(header.get("first", 0))
        index_type = np.dtype(_index_dtype(count)).newbyteorder("<")
        position_type = np.dtype(_index_dtype(height * width)).newbyteorder("<")
        sizes = [k * filters * t.itemsize for t in (index_type, position_type, np.dtype("<u2"))]
        stream = zlib.decompressobj()
        data = stream.decompress(payload, sum(sizes) + 1)  # no more than the header promises
        if not stream.eof or len(data) != sum(sizes) or min(k, filters, count, height, width) < 1 or first < 0:
            raise ValueError(f"{len(data)} bytes for k={k}, filters={filters}")
        images = np.frombuffer(data, index_type, k * filters).reshape(filters, k).T
        flat = np.frombuffer(data, position_type, k * filters, sizes[0]).reshape(filters, k).T
        levels = np.frombuffer(data, "<u2", k * filters, sizes[0] + sizes[1]).reshape(filters, k).T
    except (KeyError, TypeError, ValueError, zlib.error) as error:
        raise FormatError(f"damaged cnnviz top examples: {str(error)[:80]}") from None
    values = (lo + levels.astype(np.float64) * ((hi - lo) / TOP_LEVELS)).astype(np.float32)
    values[levels == TOP_NONFINITE] = np.nan
    positions = np.stack([flat // width, flat % width], axis=-1).astype(np.int64)
    return TopExamples(images.astype(np.int64), positions, values, reference, first)


