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
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from tb_cnnviz import codec
from tb_cnnviz.metadata import (ACTIVATIONS, FAITHFULNESS, FILTERS, GRADCAM, GRADCAM_PP, PREDICTIONS, RUN_HEADER,
                                STATS, FormatError, tag)

# Rows of a STATS tensor, shape (len(STAT_NAMES), filters).
STAT_NAMES = ("norm", "cos_to_first", "cos_to_prev", "mean_activation", "dead_fraction")
# Key of the predictions header that indexes its step: {GRADCAM: header, GRADCAM_PP: header,
# ACTIVATIONS: {layer: header}, FILTERS: {layer: header}, FAITHFULNESS: value}.
STEP_INDEX = "summaries"
FILTERS_ITEM = 0  # a step's filters of one layer are one item of n maps
# Filter views: colour tiles of the first layer's kernels, or each kernel averaged over inputs.
KERNEL_VIEW, MEAN_VIEW = "kernel", "mean_over_inputs"


# -- the run header ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RunHeader:
    """What a run logs, written once per run beside the probe images.

    Layer paths are keys of `conv_layers` ({path: {"type", "output_shape"}}, every conv layer
    of the model in model order); `layers` have activations logged (their `channels`), and the
    layers of `filter_channels` have filter images.
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

    @classmethod
    def from_stored(cls, stored: dict) -> "RunHeader":
        """The run header in a decoded `probes` header; raises FormatError if it is not one."""
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if f.default is dataclasses.MISSING and f.name not in stored]
        if "shape" not in stored:
            missing.insert(0, "shape")
        if missing:
            raise FormatError(f"not a cnnviz run header (missing {missing})")
        header = cls(**{f.name: stored[f.name] for f in fields if f.name in stored})
        expected = {"layers": list, "conv_layers": dict, "channels": dict, "filter_channels": dict,
                    "gradcam_layer": str, "stat_names": list}
        wrong = [name for name, kind in expected.items() if not isinstance(getattr(header, name), kind)]
        if wrong:
            raise FormatError(f"not a cnnviz run header (fields of the wrong type: {wrong})")
        return header

    def stored(self) -> dict:
        return dataclasses.asdict(self)

    def filters(self, path: str) -> int:
        """How many filters (output channels) the conv layer at `path` has."""
        return self.conv_layers[path]["output_shape"][-1]


def probe_shape(stored: dict) -> tuple:
    """(probe count, image shape [H, W, C] as stored) of a decoded run header summary."""
    shape = stored["shape"]
    return shape[0], shape[2:]


def pack_run_header(images: np.ndarray, header: RunHeader) -> np.ndarray:
    """The run header summary: probe images (N, H, W, C) and the header's fields. Images that
    are neither grey nor RGB are stored as their channel mean."""
    if images.shape[-1] not in (1, 3):
        images = images.mean(axis=-1, keepdims=True)
    return pack_maps(RUN_HEADER, images, **header.stored())


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
LAYOUTS = {
    RUN_HEADER: Layout(  # probe images (N, H, W, C)
        lambda images: images[:, None], lambda stored: stored[:, 0], lambda item: item[0]),
    GRADCAM: _HEAT_MAPS,
    GRADCAM_PP: _HEAT_MAPS,
    ACTIVATIONS: Layout(  # (N, channels, h, w): a probe's logged channels
        lambda maps: maps[..., None], lambda stored: stored[..., 0], lambda item: item[..., 0],
        lambda maps, position: maps[..., position, :, :]),
    FILTERS: Layout(  # (filters, kh, kw, c): one item, c is 3 for colour tiles
        lambda kernels: kernels[None], lambda stored: stored[FILTERS_ITEM], lambda item: item,
        lambda kernels, position: kernels[position]),
}


def pack_maps(kind: str, array: np.ndarray, **fields) -> np.ndarray:
    """Blob sequence [JSON header, PNG per item] of a map kind's float array; `fields` go into
    the header beside the shape, ranges and non-finite counts."""
    return codec.encode_maps(LAYOUTS[kind].to_stored(array), **fields)


def unpack_maps(kind: str, header: dict, pngs: list) -> np.ndarray:
    """A map kind's float array from its decoded header and every item's PNG."""
    return LAYOUTS[kind].from_stored(codec.decode_maps(header, pngs))


def unpack_item(kind: str, header: dict, png: bytes, item: int) -> np.ndarray:
    """One item's part of a map kind's array (a probe's maps; FILTERS_ITEM: all filters)."""
    return LAYOUTS[kind].item(codec.decode_item(header, png, item))


def nonfinite(header: dict) -> np.ndarray:
    """Per item and map, how many logged values were NaN or infinite (items, maps)."""
    return np.asarray(header.get("nonfinite", np.zeros(header["shape"][:2], int)))


def channel_position(header: dict, channel: int) -> int:
    """Where a channel the header lists sits among an item's maps."""
    return header["channels"].index(channel)


def channel(kind: str, array: np.ndarray, position: int) -> np.ndarray:
    """One channel's map of an ACTIVATIONS or FILTERS array (or of one item's part of it)."""
    return LAYOUTS[kind].channel(array, position)


def map_png(header: dict, png: bytes, position: int) -> bytes:
    """One map of an item's stored mosaic, as a PNG of its own."""
    return codec.array_to_png(codec.item_pixels(header, png)[position])


# -- tensors ----------------------------------------------------------------------------------
def pack_tensor(values) -> np.ndarray:
    return np.asarray(values, np.float32)


def unpack_tensor(values: np.ndarray, where: str) -> np.ndarray:
    """A STATS or FAITHFULNESS tensor as read; FormatError if another writer put other data there."""
    values = np.asarray(values)
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


def scalar_series(steps: list, values: dict) -> tuple:
    """(steps, values) of a scalar per step over the `steps` of complete events that have one."""
    steps = [step for step in steps if step in values]
    return steps, [float(values[step]) for step in steps]


# -- one event --------------------------------------------------------------------------------
def pack_event(mode: str, result, run: RunHeader, labels) -> dict:
    """{tag: (kind, value)} of every summary of one event, from a `probe.ProbeResult`."""
    probabilities = result.probabilities
    predicted = probabilities.argmax(axis=1)
    rows = np.arange(len(result.target))
    target_probability = probabilities[rows, result.target]
    drop = target_probability - result.masked_probability
    top = np.argsort(-probabilities, axis=1)[:, :5]
    items = {}
    index = {ACTIVATIONS: {}, FILTERS: {}}

    def add_maps(kind, array, path=None, **fields):
        value = pack_maps(kind, array, **fields)
        items[tag(kind, mode, path)] = (kind, value)
        if path is None:
            index[kind] = value[0]
        else:
            index[kind][path] = value[0]

    add_maps(GRADCAM, result.gradcam, layer=run.gradcam_layer)
    add_maps(GRADCAM_PP, result.gradcam_pp, layer=run.gradcam_layer)
    for path, maps in result.activations.items():
        add_maps(ACTIVATIONS, maps, path, channels=run.channels[path])
    for path, kernels in result.filters.items():
        add_maps(FILTERS, kernels, path, channels=run.filter_channels[path],
                 view=KERNEL_VIEW if path == run.rgb_filter_layer else MEAN_VIEW)
    for path, stats in result.stats.items():
        items[tag(STATS, mode, path)] = (STATS, pack_tensor(stats))
    items[tag(FAITHFULNESS, mode)] = (FAITHFULNESS, pack_tensor(drop.mean()))
    index[FAITHFULNESS] = float(drop.mean())
    # A step whose predictions are on disk is complete: the event is written as one record.
    items[tag(PREDICTIONS, mode)] = (PREDICTIONS, np.asarray([codec.encode_header(
        predicted=predicted.tolist(),
        probability=probabilities[rows, predicted].tolist(),
        target=result.target.tolist(),
        target_probability=target_probability.tolist(),
        masked_probability=result.masked_probability.tolist(),
        faithfulness_drop=drop.tolist(),
        label=None if labels is None else labels.tolist(),
        top_classes=top.tolist(),
        top_probabilities=np.take_along_axis(probabilities, top, axis=1).tolist(),
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

