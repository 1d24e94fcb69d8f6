"""The stored layout of cnnviz data: what each kind of summary holds, and how arrays map onto it.

The callback packs through this module and both readers — `tb_cnnviz.reader.Run` (event files)
and the plugin's `Store` (TensorBoard's data provider) — unpack through it; no other module
slices stored arrays. Imports no TensorFlow.

Blob kinds store float maps `(items, maps, h, w, c)` as 8-bit PNG mosaics (`tb_cnnviz.codec`)
behind a JSON header; `LAYOUTS` says where each kind's arrays sit in them. The run header
(tag `probes`) holds the probe images and the `RunHeader` fields. The predictions header of a
step also indexes the step (`STEP_INDEX`): the headers of its other blob summaries and its
faithfulness value, so a step's overview is one read; format-1 runs written before the index
are read summary by summary (`read_step_index`).

Format 2 made events of large models small: Grad-CAM maps are stored at their layer's
resolution (their header's `size` is the input's, which readers upsample to: `upsample`), and
filter statistics are 8-bit rows (`pack_stats`). Format-1 data reads as before.
"""

import base64
import dataclasses
import zlib
from collections.abc import Callable

import numpy as np

from tb_cnnviz import codec
from tb_cnnviz.metadata import (ACTIVATIONS, CLASS_MAPS, FAITHFULNESS, FEATURE_VIS, FILTERS, GRADCAM, GRADCAM_PP, MASKS,
                                METRICS, MULTILABEL, PREDICTIONS, REFERENCE, RUN_HEADER, SCALAR, STATS, TOP_EXAMPLES,
                                FormatError, scalar_tag, tag)

# Rows of a STATS tensor, shape (len(STAT_NAMES), filters).
STAT_NAMES = ("norm", "cos_to_first", "cos_to_prev", "mean_activation", "dead_fraction")
# Rows of a METRICS tensor, shape (len(METRIC_NAMES), probes), NaN where an event did not
# compute one (`tb_cnnviz.trust` defines them).
METRIC_NAMES = ("faithfulness", "deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random",
                "sanity_rank_corr", "pointing_game", "energy_in_mask")
# A CLASS_MAPS item holds a probe's maps of each explained class, by method: [Grad-CAM of each
# class ..., Grad-CAM++ of each class ...]; its header's `classes` lists each probe's classes.
CLASS_MAP_METHODS = (GRADCAM, GRADCAM_PP)
# Key of the predictions header that indexes its step: {GRADCAM: header, GRADCAM_PP: header,
# ACTIVATIONS: {layer: header}, FILTERS: {layer: header}, FAITHFULNESS: value}, MASKS: header
# for a segmentation head, and TOP_EXAMPLES, FEATURE_VIS: {layer: header} at steps that have them.
STEP_INDEX = "summaries"
FILTERS_ITEM = 0  # a step's filters of one layer are one item of n maps
# Filter views: colour tiles of the first layer's kernels, or each kernel averaged over inputs.
KERNEL_VIEW, MEAN_VIEW = "kernel", "mean_over_inputs"
# A filter is dead at a step when it is <= 0 on every probe: its dead_fraction reads 1 within
# the 8-bit statistics' error; the tab takes it from the runs route (frontend/health.js says why).
DEAD_AT = 1 - 1e-4
# Where top examples' image indices point: the probe images, or the run's own reference set.
PROBES_REFERENCE, OWN_REFERENCE = "probes", "reference"


# -- the run header ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RunHeader:
    """What a run logs, written once per run beside the probe images.

    Layer paths are keys of `conv_layers` ({path: {"type", "output_shape"}}, every conv layer
    of the model in model order); `layers` have activations logged (their `channels`), and the
    layers of `filter_channels` have filter images; layers in `downsampled` have their maps
    stored area-downsampled by that integer factor. `head` is the kind of output explained
    (`tb_cnnviz.heads`; a binary head shows 2 classes), `output` its name; `labels` are class
    indices, or each probe's list of true classes for a multi-label head.
    """

    layers: list
    conv_layers: dict
    channels: dict
    filter_channels: dict
    gradcam_layer: str
    stat_names: list
    model: str | None = None
    labels: list | None = None
    class_names: list | None = None
    num_classes: int | None = None
    rgb_filter_layer: str | None = None
    target: str | list | None = None
    faithfulness_fraction: float | None = None
    head: str = "softmax"  # format-1 runs explained softmax heads only
    output: str | None = None
    downsampled: dict = dataclasses.field(default_factory=dict)  # path -> factor of maps stored smaller
    background_class: int | None = None  # a segmentation head's
    gradcam_classes: int | None = None  # top classes explained beside the target and true class
    truth: str | None = None  # "masks" or "boxes": the probes' objects are known (`objects`)
    objects: dict | None = None  # `pack_objects`
    trust_every: int | None = None  # deletion and insertion on every k-th train event, counting the first
    curve_steps: int | None = None  # of deletion and insertion
    # {"k", "reference": PROBES_REFERENCE or OWN_REFERENCE, "count", "layers", "per_event": filters per layer and event}
    top_examples: dict | None = None
    receptive_fields: dict = dataclasses.field(default_factory=dict)  # path -> [h, w, jump y, x, start y, x] or None
    feature_vis: dict = dataclasses.field(default_factory=dict)  # path -> channels given images that maximise them
    filters_every: int | None = None  # own-reference top examples and feature vis: every k-th event

    @classmethod
    def from_stored(cls, stored: dict) -> "RunHeader":
        """The run header in a decoded `probes` header; raises FormatError if it is not one."""
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING and f.name not in stored]
        if "shape" not in stored:
            missing.insert(0, "shape")
        if missing:
            raise FormatError(f"not a cnnviz run header (missing {missing})")
        header = cls(**{f.name: stored[f.name] for f in fields if f.name in stored})
        expected = {"layers": list, "conv_layers": dict, "channels": dict, "filter_channels": dict,
                    "gradcam_layer": str, "stat_names": list}
        wrong = [name for name, kind in expected.items() if not isinstance(getattr(header, name), kind)]
        wrong += [name for name, ok in _filter_fields_ok(header).items() if not ok]
        if wrong:
            raise FormatError(f"not a cnnviz run header (fields of the wrong type: {wrong})")
        return header

    def stored(self) -> dict:
        return dataclasses.asdict(self)

    def filters(self, path: str) -> int:
        """How many filters (output channels) the conv layer at `path` has."""
        return self.conv_layers[path]["output_shape"][-1]


def _filter_fields_ok(header: RunHeader) -> dict:
    """{field: usable} of the run header's fields about filters, which routes index with."""
    def ints(values, least=0):
        return isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= least
                                                for v in values)

    def field_ok(field):  # [h, w, jump y, jump x, start y, start x] or None
        return field is None or (isinstance(field, list) and len(field) == 6 and ints(field[:4], 1)
                                 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in field[4:]))

    top = header.top_examples
    return {
        "receptive_fields": isinstance(header.receptive_fields, dict)
        and all(field_ok(field) for field in header.receptive_fields.values()),
        "top_examples": top is None or (isinstance(top, dict) and isinstance(top.get("layers"), list)
                                        and all(isinstance(path, str) for path in top["layers"])),
        "feature_vis": isinstance(header.feature_vis, dict) and all(ints(c) for c in header.feature_vis.values()),
    }


def pack_objects(masks: np.ndarray | None, boxes: list | None) -> dict | None:
    """The run header's record of the probes' objects: boxes as given, or masks (N, H, W) as
    deflated bits."""
    if boxes is not None:
        return {"boxes": [list(map(int, box)) for box in boxes]}
    if masks is None:
        return None
    bits = zlib.compress(np.packbits(np.asarray(masks, bool)).tobytes(), 6)
    return {"shape": list(masks.shape), "bits": base64.b64encode(bits).decode("ascii")}


def object_masks(run: RunHeader, shape: tuple) -> np.ndarray | None:
    """(N, H, W) bool masks of the probes' objects (None: not known); `shape` is (N, H, W) of
    the probe images, which boxes ([y0, x0, y1, x1], half-open) are drawn on."""
    objects = run.objects
    if objects is None:
        return None
    try:
        if "boxes" in objects:
            masks = np.zeros(shape, bool)
            for mask, (y0, x0, y1, x1) in zip(masks, objects["boxes"]):
                mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
            return masks
        count = int(np.prod(objects["shape"]))
        bits = np.frombuffer(zlib.decompress(base64.b64decode(objects["bits"])), np.uint8)
        return np.unpackbits(bits, count=count).astype(bool).reshape(objects["shape"])
    except (KeyError, TypeError, ValueError, zlib.error) as error:
        raise FormatError(f"damaged object masks in the cnnviz run header: {error}") from None


def probe_shape(stored: dict) -> tuple:
    """(probe count, image shape [H, W, C] as stored) of a decoded run header summary."""
    shape = stored["shape"]
    return shape[0], shape[2:]


def shown_images(images: np.ndarray) -> np.ndarray:
    """Images (N, H, W, C) as stored and shown: grey or RGB as they are, other channel counts
    as their mean."""
    return images if images.shape[-1] in (1, 3) else images.mean(axis=-1, keepdims=True)


def pack_run_header(images: np.ndarray, header: RunHeader) -> np.ndarray:
    """The run header summary: probe images (N, H, W, C, `shown_images`) and the header's fields."""
    return pack_maps(RUN_HEADER, shown_images(images), **header.stored())


def unpack_run_header(stored: dict, blob_count: int) -> RunHeader:
    """The RunHeader of a decoded `probes` header whose summary holds `blob_count` blobs."""
    header = RunHeader.from_stored(stored)
    if blob_count != 1 + stored["shape"][0]:
        raise FormatError("not a cnnviz run header (missing 'probe images')")
    return header


# -- maps: where each kind's arrays sit in the stored (items, maps, h, w, c) --------------------
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
    """Where the map of `class_index` by `method` sits among a CLASS_MAPS item's maps; KeyError
    (its message lists the stored classes) if that probe's class was not explained."""
    classes = header["classes"][item]
    if class_index not in classes:
        raise KeyError(f"class {class_index} of probe {item} is not stored; stored classes: {classes}")
    return CLASS_MAP_METHODS.index(method) * len(classes) + classes.index(class_index)


def map_png(header: dict, png: bytes, position: int) -> bytes:
    """One map of an item's stored mosaic, as a PNG of its own."""
    return codec.array_to_png(codec.item_pixels(header, png)[position])


# -- tensors ----------------------------------------------------------------------------------
# A STATS tensor (format 2) is a uint8 zlib stream of len(STAT_NAMES) 8-bit rows: each row its
# float32 [lo, hi] range (8 bytes, little-endian), then one level per filter: 0-254 over the
# range (a value is within (hi - lo) / 508 of the logged one), STATS_NONFINITE for NaN or
# infinite (read back as NaN). Deflate saves about a third, half of that on dead_fraction.
STATS_RANGE_BYTES = 8
STATS_NONFINITE = 255


def pack_tensor(values) -> np.ndarray:
    return np.asarray(values, np.float32)


def pack_stats(stats: np.ndarray) -> np.ndarray:
    """The STATS tensor of float (len(STAT_NAMES), filters) statistics: each row quantised over
    its own finite range, deflated."""
    stats = np.asarray(stats, np.float32)
    finite = np.isfinite(stats)
    lo, hi = codec.finite_range(stats, finite)
    span = np.where(hi > lo, hi - lo, np.float32(1))[:, None]
    with np.errstate(invalid="ignore"):
        levels = np.where(finite, np.round((stats - lo[:, None]) / span * 254), STATS_NONFINITE)
    ranges = np.stack([lo, hi], axis=1).astype("<f4").view(np.uint8)
    rows = np.concatenate([ranges, levels.astype(np.uint8)], axis=1)
    return np.frombuffer(zlib.compress(rows.tobytes(), 1), np.uint8)


def _unpack_stats(values: np.ndarray, where: str) -> np.ndarray:
    try:
        rows = np.frombuffer(zlib.decompress(values.tobytes()), np.uint8) if values.ndim == 1 else None
    except zlib.error:
        rows = None
    if rows is None or rows.size % len(STAT_NAMES) or rows.size // len(STAT_NAMES) < STATS_RANGE_BYTES:
        raise FormatError(f"{where} holds 8-bit data that is not cnnviz statistics")
    values = rows.reshape(len(STAT_NAMES), -1)
    lo, hi = np.ascontiguousarray(values[:, :STATS_RANGE_BYTES]).view("<f4").T
    levels = values[:, STATS_RANGE_BYTES:]
    stats = lo[:, None] + levels.astype(np.float32) * ((hi - lo) / np.float32(254))[:, None]
    stats[levels == STATS_NONFINITE] = np.nan
    return stats.astype(np.float32)


def unpack_tensor(values: np.ndarray, where: str) -> np.ndarray:
    """A STATS, FAITHFULNESS or METRICS tensor as read (8-bit statistics as float32); FormatError if
    another writer put other data there."""
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return _unpack_stats(values, where)
    if not np.issubdtype(values.dtype, np.number):
        raise FormatError(f"{where} holds non-numeric data: not written by cnnviz")
    return values


def stats_by_name(values: np.ndarray) -> dict:
    """{stat name: (filters,)} of a STATS tensor."""
    return dict(zip(STAT_NAMES, values))


def filter_drift(run: RunHeader, path: str, steps: list, stats: dict, stat: str) -> tuple:
    """(steps, (filters, steps) matrix) of one filter statistic of the conv layer at `path`
    over the `steps` of complete events; `stats` is {step: STATS tensor}. Steps without
    statistics are left out; with none the matrix has no columns. Raises KeyError for an
    unknown statistic."""
    if stat not in STAT_NAMES:
        raise KeyError(f"unknown stat {stat!r}; choose one of {STAT_NAMES}")
    steps = [step for step in steps if step in stats]
    if not steps:
        return np.asarray(steps, np.int64), np.empty((run.filters(path), 0), np.float32)
    row = STAT_NAMES.index(stat)
    return np.asarray(steps, np.int64), np.stack([stats[step][row] for step in steps], axis=1)


def metric_series(steps: list, metrics: dict) -> tuple:
    """(steps, {name: mean over the probes per step, NaN where not computed}) over the `steps`
    of complete events that have METRICS tensors ({step: tensor})."""
    steps = [step for step in steps if step in metrics]
    rows = np.stack([metric_means(metrics[step]) for step in steps]) if steps else \
        np.empty((0, len(METRIC_NAMES)), np.float32)
    return steps, {name: rows[:, i] for i, name in enumerate(METRIC_NAMES)}


def metric_means(values: np.ndarray) -> np.ndarray:
    """(len(METRIC_NAMES),) means over probes of one METRICS tensor, ignoring NaN (NaN where
    every probe's is)."""
    if values.ndim != 2 or values.shape[0] != len(METRIC_NAMES):
        raise FormatError(f"cnnviz metrics of shape {values.shape}, not ({len(METRIC_NAMES)}, probes)")
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        return (np.where(finite, values, 0).sum(axis=1) / finite.sum(axis=1)).astype(np.float32)


def scalar_series(steps: list, values: dict) -> tuple:
    """(steps, values) of a scalar per step over the `steps` of complete events that have one."""
    steps = [step for step in steps if step in values]
    return steps, [float(values[step]) for step in steps]


def filter_stats(run: RunHeader, path: str, steps: list, stats: dict, channel: int) -> tuple:
    """(steps, (len(STAT_NAMES), steps) matrix) of every statistic of one filter over the
    `steps` of complete events that have statistics ({step: STATS tensor})."""
    steps = [step for step in steps if step in stats]
    matrix = np.full((len(STAT_NAMES), len(steps)), np.nan, np.float32)  # NaN where a step had fewer filters
    for i, step in enumerate(steps):
        values = _checked_stats(stats[step], step)
        if channel < values.shape[1]:
            matrix[:, i] = values[:, channel]
    return np.asarray(steps, np.int64), matrix


def _checked_stats(values: np.ndarray, step) -> np.ndarray:
    if values.ndim != 2 or values.shape[0] != len(STAT_NAMES):
        raise FormatError(f"cnnviz statistics at step {step} of shape {values.shape}, not ({len(STAT_NAMES)}, filters)")
    return values


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        return np.where(finite, values, 0).sum(axis=-1) / finite.sum(axis=-1)


def layer_summary(steps: list, stats: dict) -> dict:
    """Per-step health of one conv layer from its {step: STATS tensor} at the `steps` of complete
    events: "dead_fraction" (share of its filters dead on every probe, `DEAD_AT`), "drift" and
    "change" (mean cosine distance of its filters to the first event and to the previous one),
    "norm_trend" (mean filter norm over that at the layer's first step with statistics); NaN
    where a step has none."""
    columns = np.full((len(STAT_NAMES), len(steps)), np.nan, np.float32)
    dead = np.full(len(steps), np.nan, np.float32)
    for i, step in enumerate(steps):
        if step in stats:
            values = _checked_stats(stats[step], step)
            columns[:, i] = _nanmean_rows(values)
            dead_row = values[STAT_NAMES.index("dead_fraction")]
            dead[i] = np.mean(np.nan_to_num(dead_row, nan=0.0) >= DEAD_AT)
    norms = columns[STAT_NAMES.index("norm")]
    first = norms[np.isfinite(norms)][:1]
    with np.errstate(invalid="ignore", divide="ignore"):
        trend = norms / first[0] if len(first) and first[0] > 0 else np.full_like(norms, np.nan)
    return {"dead_fraction": dead, "drift": columns[STAT_NAMES.index("cos_to_first")],
            "change": columns[STAT_NAMES.index("cos_to_prev")], "norm_trend": trend}


# -- top examples -----------------------------------------------------------------------------
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


def indexed_by_step(index: dict | None, kind: str, path: str, header: dict) -> bool:
    """Whether a summary of a kind logged at some steps only (TOP_EXAMPLES, FEATURE_VIS) is the
    one its step's index lists: an earlier run in the logdir may have left one at a step that a
    restart rewrote without it. Steps written without an index are taken as they are."""
    return index is None or index.get(kind, {}).get(path) == header


def digest_matches(run: RunHeader, header: dict) -> bool:
    """Whether a TOP_EXAMPLES header indexes the run's current reference images (a run started
    again with other probes or another reference set leaves older examples behind)."""
    return header.get("digest") == (run.top_examples or {}).get("digest")


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


# -- one event --------------------------------------------------------------------------------
def labels_stored(labels: np.ndarray | None) -> list | None:
    """Labels as runs store them: class indices, or for multi-hot rows each probe's true classes."""
    if labels is None:
        return None
    if labels.ndim == 2:
        return [np.flatnonzero(row).tolist() for row in labels]
    return labels.tolist()


def pack_event(mode: str, result, run: RunHeader, labels, metrics: np.ndarray, cascade: list | None = None,
               top_examples: dict | None = None, feature_vis: dict | None = None) -> dict:
    """{tag: (kind, value)} of every summary of one event, from a `probe.ProbeResult`; labels
    as `tb_cnnviz.plan.Plan` holds them; `metrics` (len(METRIC_NAMES), N) from
    `tb_cnnviz.trust.event_metrics`; `cascade` `tb_cnnviz.sanity_check`'s result, if run;
    `top_examples` {path: (images, positions, values, map size, first filter)} of the filters
    whose top examples this event stores (`tb_cnnviz.examples.in_turn`); `feature_vis`
    {path: (channels, H, W, C)} images of the run header's `feature_vis` channels, if made at
    this event."""
    probabilities, predicted = result.probabilities, result.predicted
    rows = np.arange(len(result.target))
    target_probability, drop = result.target_probability, result.faithfulness_drop
    # classes ranked by probability; a segmentation head's by their share of the pixels
    top = np.argsort(-(probabilities if result.pixel_share is None else result.pixel_share), axis=1, kind="stable")[:, :5]
    items = {}
    index = {ACTIVATIONS: {}, FILTERS: {}}

    def add(kind, value, path=None):
        items[tag(kind, mode, path)] = (kind, value)
        if path is None:
            index[kind] = value[0]
        else:
            index.setdefault(kind, {})[path] = value[0]

    def add_maps(kind, array, path=None, **fields):
        add(kind, pack_maps(kind, array, **fields), path)

    size = list(result.image_size)
    add_maps(GRADCAM, result.gradcam, layer=run.gradcam_layer, size=size)
    add_maps(GRADCAM_PP, result.gradcam_pp, layer=run.gradcam_layer, size=size)
    add_maps(CLASS_MAPS, np.concatenate([result.class_gradcam, result.class_gradcam_pp], axis=1),
             layer=run.gradcam_layer, size=size, classes=result.classes.tolist(), methods=list(CLASS_MAP_METHODS))
    head_fields = {}  # what a multi-label or segmentation head, or the sanity check, adds to the predictions
    if result.masks is not None:
        add_maps(MASKS, result.masks)
        head_fields = {"predicted_set": [np.flatnonzero(row > 0).tolist() for row in result.pixel_share],
                       "pixel_share": result.pixel_share.tolist(), "target_pixels": result.target_pixels.tolist()}
    elif run.head == MULTILABEL:
        head_fields = {"predicted_set": [np.flatnonzero(row > 0.5).tolist() for row in probabilities]}
    if cascade is not None:
        head_fields["sanity_check"] = [[name, correlation] for name, correlation in cascade]
    for path, maps in result.activations.items():
        add_maps(ACTIVATIONS, maps, path, channels=run.channels[path])
    for path, kernels in result.filters.items():
        add_maps(FILTERS, kernels, path, channels=run.filter_channels[path],
                 view=KERNEL_VIEW if path == run.rgb_filter_layer else MEAN_VIEW)
    for path, stats in result.stats.items():
        items[tag(STATS, mode, path)] = (STATS, pack_stats(stats))
    for path, (images, positions, values, map_size, first) in (top_examples or {}).items():
        add(TOP_EXAMPLES, pack_top_examples(images, positions, values, map_size, run.top_examples["count"],
                                            run.top_examples["reference"], first, run.top_examples["digest"]), path)
    for path, images in (feature_vis or {}).items():
        add_maps(FEATURE_VIS, shown_images(images), path, channels=run.feature_vis[path])
    items[tag(FAITHFULNESS, mode)] = (FAITHFULNESS, pack_tensor(drop.mean()))
    items[tag(METRICS, mode)] = (METRICS, pack_tensor(metrics))
    for name, mean in zip(METRIC_NAMES, metric_means(metrics)):  # beside the loss in the Scalars tab
        if np.isfinite(mean):
            items[scalar_tag(mode, name)] = (SCALAR, pack_tensor(mean))
    index[FAITHFULNESS] = float(drop.mean())
    # A step whose predictions are on disk is complete: the event is written as one record.
    items[tag(PREDICTIONS, mode)] = (PREDICTIONS, np.asarray([codec.encode_header(
        predicted=predicted.tolist(),
        probability=probabilities[rows, predicted].tolist(),
        target=result.target.tolist(),
        target_probability=target_probability.tolist(),
        masked_probability=result.masked_probability.tolist(),
        faithfulness_drop=drop.tolist(),
        label=labels_stored(labels),
        **head_fields,
        top_classes=top.tolist(),
        top_probabilities=np.take_along_axis(probabilities, top, axis=1).tolist(),
        gradcam_classes=result.classes.tolist(),
        class_probabilities=np.take_along_axis(probabilities, result.classes, axis=1).tolist(),
        **{STEP_INDEX: index},
    )], dtype=object))
    return items


def unpack_predictions(header: dict) -> tuple:
    """(predictions, step index or None for a step written without one) of a predictions
    summary's decoded header."""
    predictions = dict(header)
    return predictions, predictions.pop(STEP_INDEX, None)


def _layer_groups(run: RunHeader) -> dict:
    """{ACTIVATIONS: layer paths, FILTERS: layer paths} that the run header says a step logs."""
    return {ACTIVATIONS: list(run.layers), FILTERS: list(run.filter_channels)}


def _header_or_error(read: Callable) -> dict:
    try:
        return read()
    except FormatError as error:
        return {"error": str(error)}


def checked_step_index(index, run: RunHeader, step: int) -> dict:
    """A step index with each summary's header checked: a damaged one, or a layer of the run
    header the step lacks, becomes {"error": why}, so the rest of the step stays usable.
    Raises FormatError if the index itself is damaged."""
    groups = _layer_groups(run)
    if not (isinstance(index, dict) and all(isinstance(index.get(g), dict) for g in groups)
            and isinstance(index.get(FAITHFULNESS), (int, float, type(None)))):
        raise FormatError("damaged cnnviz step index in the predictions summary")
    summaries = {
        GRADCAM: _header_or_error(lambda: codec.check_header(index.get(GRADCAM))),
        GRADCAM_PP: _header_or_error(lambda: codec.check_header(index.get(GRADCAM_PP))),
        **{group: {str(path): _header_or_error(lambda h=h: codec.check_header(h)) for path, h in index[group].items()}
           for group in groups},
        FAITHFULNESS: index.get(FAITHFULNESS),
    }
    for kind in (MASKS, CLASS_MAPS):  # a segmentation head's masks; class maps since they were added
        if kind in index:
            summaries[kind] = _header_or_error(lambda k=kind: codec.check_header(index[k]))
    for kind in (TOP_EXAMPLES, FEATURE_VIS):  # at some steps only
        if isinstance(index.get(kind), dict):
            summaries[kind] = {str(path): _header_or_error(lambda h=h: codec.check_header(h))
                               for path, h in index[kind].items()}
    for group, paths in groups.items():
        for path in paths:  # e.g. a resumed run that logs other layers than this step did
            summaries[group].setdefault(path, {"error": f"no {group} of {path!r} at step {step}"})
    return summaries


def step_tags(run: RunHeader, mode: str) -> list:
    """Tags of the blob summaries a step indexes."""
    return [tag(GRADCAM, mode), tag(GRADCAM_PP, mode),
            *(tag(group, mode, path) for group, paths in _layer_groups(run).items() for path in paths)]


def read_step_index(run: RunHeader, mode: str, read_header: Callable, faithfulness: float | None) -> dict:
    """The step index of a step written without one, built from each of its summaries:
    `read_header(tag)` gives a summary's decoded header (raising FormatError if damaged, which
    makes that summary {"error": why}); `faithfulness` is the step's value, if any."""
    summaries = {GRADCAM: _header_or_error(lambda: read_header(tag(GRADCAM, mode))),
                 GRADCAM_PP: _header_or_error(lambda: read_header(tag(GRADCAM_PP, mode)))}
    for group, paths in _layer_groups(run).items():
        summaries[group] = {path: _header_or_error(lambda g=group, p=path: read_header(tag(g, mode, p)))
                            for path in paths}
    summaries[FAITHFULNESS] = faithfulness
    return summaries


# -- names ------------------------------------------------------------------------------------
class UnknownLayer(KeyError):
    """A layer name that matches no path, or several (`ambiguous`); `valid` lists the paths."""

    def __init__(self, name: str, valid: list, ambiguous: list):
        super().__init__(name)
        self.name, self.valid, self.ambiguous = name, list(valid), list(ambiguous)

    def __str__(self):
        if self.ambiguous:
            return f"layer {self.name!r} is ambiguous; give its full path, one of: {self.ambiguous}"
        return f"layer {self.name!r} not logged; choose one of {self.valid}"


def resolve_layer(name: str, paths) -> str:
    """The path among `paths` of a full layer path or an unambiguous short name (the part after
    the last '/'). Raises UnknownLayer."""
    paths = list(paths)
    if name in paths:
        return name
    matches = [path for path in paths if path.rsplit("/", 1)[-1] == name]
    if len(matches) != 1:
        raise UnknownLayer(name, paths, matches)
    return matches[0]

