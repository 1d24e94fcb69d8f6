"""What a step, or a run over its steps, holds: the lookups that `reader.Run` (event files) and the
plugin (TensorBoard's data provider) share, written once as plain functions of a `Source`, as
TensorBoard's plugins write their `*_impl` functions. Each raises `NotFound` (a KeyError) for
what is not in the data and `FormatError` for data it cannot read.
"""

from typing import Protocol

import numpy as np

from tb_cnnviz.reading import patches, series
from tb_cnnviz.storage import codec, maps, step_index
from tb_cnnviz.storage.metadata import (CLASS_MAPS, FAITHFULNESS, GRADCAM, GRADCAM_PP, METHOD_MAPS, METHOD_METRICS,
                                        METHODS, METRICS, PREDICTIONS, REFERENCE, RUN_HEADER, STATS, TOP_EXAMPLES,
                                        FormatError, tag)
from tb_cnnviz.storage.run_header import RunHeader
from tb_cnnviz.storage.top_examples import PROBES_REFERENCE, TopExamples, unpack_top_examples


class NotFound(KeyError):
    """A run, step, layer, ... that is not in the data; `valid` lists what is."""

    def __init__(self, message, valid=()):
        super().__init__(message)
        self.message = message
        self.valid = list(valid)

    def __str__(self):
        return self.message


class Source(Protocol):
    """One run's cnnviz data. `blobs` gives a blob summary's references at a step, which
    `blob` reads; the run-level summaries (run header, reference images) are `run_blobs`."""

    header: RunHeader

    def steps(self, mode: str) -> list:
        """Steps of complete events of `mode`, ascending."""

    def stored_steps(self, tag: str) -> list:
        """The steps at which a summary is stored (complete events or not)."""

    def blobs(self, tag: str, step: int) -> list:
        """The references of a blob summary at `step`; NotFound if it has none there."""

    def blob(self, reference) -> bytes:
        """The bytes of one blob."""

    def decoded(self, blobs: list) -> dict:
        """The decoded, checked JSON header (element 0) of a blob summary."""

    def tensors(self, tags: list) -> dict:
        """{tag: {step: array}} of tensor summaries, read together ({} for a tag it lacks)."""

    def run_blobs(self, kind: str) -> list | None:
        """The latest blobs of a run-level summary (RUN_HEADER, REFERENCE); None if none."""


def _tensors(source: Source, name: str) -> dict:
    return source.tensors([name])[name]


# -- one step ---------------------------------------------------------------------------------
def summary(source: Source, kind: str, mode: str, step: int, path: str | None = None) -> tuple:
    """(blobs, decoded header) of a blob summary of a step."""
    blobs = source.blobs(tag(kind, mode, path), step)
    return blobs, source.decoded(blobs)


def _item_blob(source: Source, blobs: list, item: int) -> bytes:
    """The PNG of one item of a blob summary: NotFound for an item it does not hold, FormatError
    if its header promises items that are not stored."""
    count = source.decoded(blobs)["shape"][0]
    if not 0 <= item < count:
        raise NotFound(f"item {item} is not stored: the summary holds {count}", range(count))
    if len(blobs) != 1 + count:
        raise FormatError(f"cnnviz blob sequence has {len(blobs) - 1} images, header says {count}")
    return source.blob(blobs[1 + item])


def maps_of(source: Source, kind: str, blobs: list, item: int | None = None) -> np.ndarray:
    """A map kind's array from its blobs, or one item's part of it."""
    header = source.decoded(blobs)
    if item is not None:
        return maps.unpack_item(kind, header, _item_blob(source, blobs, item), item)
    return maps.unpack_maps(kind, header, [source.blob(reference) for reference in blobs[1:]])


def png_of(source: Source, blobs: list, item: int) -> bytes:
    """The stored PNG of one item, checked against its header but not decoded."""
    return codec.check_png(source.decoded(blobs), _item_blob(source, blobs, item))


def probe_at(header: dict, sample: int, step: int) -> int:
    """`sample`, one of the probes whose maps a step's summary (its decoded `header`) holds: a
    run whose probes changed between events (a new CNNViz with other samples in its logdir)
    holds as many at each step as were probed then. NotFound naming those otherwise."""
    count = header["shape"][0]
    if not 0 <= sample < count:
        raise NotFound(f"sample {sample} is not logged at step {step}: that event probed {count} images "
                       f"(samples 0 to {count - 1})", range(count))
    return sample


def predictions(source: Source, mode: str, step: int) -> tuple:
    """(predictions, step index or None for a step written without one) of a step."""
    return step_index.unpack_predictions(summary(source, PREDICTIONS, mode, step)[1])


def overview(source: Source, mode: str, step: int) -> tuple:
    """(predictions, the header of every summary of the step, damaged ones as {"error": why})."""
    found, index = predictions(source, mode, step)
    if index is not None:
        return found, step_index.checked_step_index(index, source.header, step)
    references = {name: source.blobs(name, step) for name in step_index.step_tags(source.header, mode)}
    try:
        faithfulness = _tensors(source, tag(FAITHFULNESS, mode))
    except FormatError:
        faithfulness = {}  # faithfulness() says why
    value = float(faithfulness[step]) if step in faithfulness else None
    return found, step_index.read_step_index(source.header, mode, lambda name: source.decoded(references[name]), value)


def step_layers(source: Source, kind: str, mode: str, step: int) -> list:
    """The layers whose `kind` (ACTIVATIONS, FILTERS, TOP_EXAMPLES, FEATURE_VIS) a step's index
    lists: a run whose model changed since (a layer added or removed, a new CNNViz in its logdir)
    logged other layers at that step than its run header, the latest, names. [] for a step
    written without an index, or a damaged one (its own requests say why)."""
    try:
        index = predictions(source, mode, step)[1]
    except (KeyError, FormatError):
        return []
    found = index.get(kind) if isinstance(index, dict) else None
    return [path for path in found if isinstance(path, str)] if isinstance(found, dict) else []


def has_stats(source: Source, mode: str, path: str) -> bool:
    """Whether conv layer `path` has statistics at some `mode` step (a layer the run header no
    longer names, which the model had at earlier events, may)."""
    try:
        return bool(_tensors(source, tag(STATS, mode, path)))
    except FormatError:
        return True  # stored, if damaged: its requests say so


def indexed(source: Source, kind: str, mode: str, step: int, path: str) -> tuple:
    """(blobs, header) of a summary logged at some steps only (TOP_EXAMPLES, FEATURE_VIS), if its
    step's index lists it: an earlier run in the logdir may have left one at a step that a
    restart rewrote without it (steps written without an index are taken as they are)."""
    blobs, header = summary(source, kind, mode, step, path)
    index = predictions(source, mode, step)[1]
    if index is not None and index.get(kind, {}).get(path) != header:
        raise NotFound(f"the {kind} of {path!r} at step {step} were left by an earlier run in this logdir")
    return blobs, header


def class_maps(source: Source, mode: str, step: int) -> tuple:
    """(blobs, header) of the step's maps of several classes per probe; the header's `classes`
    lists each probe's."""
    try:
        return summary(source, CLASS_MAPS, mode, step)
    except NotFound:
        raise NotFound(f"the {mode} event at step {step} stores no maps of other classes (written before "
                       f"tb_cnnviz stored them)") from None


def stored_classes(header: dict, sample: int, step: int) -> list:
    """The classes whose maps a step's CLASS_MAPS summary (its decoded `header`) holds for probe
    `sample` (NotFound for a probe the step did not probe); FormatError if damaged."""
    classes = header.get("classes")
    if not isinstance(classes, list) or len(classes) != header["shape"][0]:
        raise FormatError(f"damaged cnnviz class maps at step {step}: their header lists no classes per probe")
    found = classes[probe_at(header, sample, step)]
    if not isinstance(found, list):
        raise FormatError(f"damaged cnnviz class maps at step {step}: bad classes of probe {sample}")
    return found


def class_map(source: Source, mode: str, step: int, sample: int, class_index: int, method: str) -> tuple:
    """(the step's CLASS_MAPS blobs, where probe `sample`'s map of a stored class by `method` sits
    among its maps); NotFound listing the stored classes for another."""
    blobs, header = class_maps(source, mode, step)
    classes = stored_classes(header, sample, step)
    if class_index not in classes:
        raise NotFound(f"class {class_index} of probe {sample} is not stored; stored classes: {classes}", classes)
    return blobs, maps.class_map_position(header, sample, class_index, method)


def step_methods(source: Source, mode: str, step: int) -> list:
    """The methods whose maps of the target classes a step holds, in `metadata.METHODS`' order:
    Grad-CAM's and Grad-CAM++'s at every step, the others' where its index lists them (a
    many-pass method is logged at some steps only)."""
    try:
        index = predictions(source, mode, step)[1]
    except (KeyError, FormatError):
        index = None
    listed = index.get(METHOD_MAPS) if isinstance(index, dict) else None
    logged = {GRADCAM, GRADCAM_PP, *(listed if isinstance(listed, dict) else ())}
    return [method for method in METHODS if method in logged]


def method_maps(source: Source, mode: str, step: int, method: str) -> tuple:
    """(kind, blobs, decoded header) of a step's maps of the target classes by `method`; NotFound
    listing the step's methods for one it did not log."""
    held = step_methods(source, mode, step)
    if method not in held:
        raise NotFound(f"the {mode} event at step {step} holds no {method} maps; it holds the maps of "
                       f"{', '.join(held)}", held)
    kind, name = (method, None) if method in (GRADCAM, GRADCAM_PP) else (METHOD_MAPS, method)
    blobs, header = summary(source, kind, mode, step, name)
    return kind, blobs, header


def stats(source: Source, mode: str, step: int, path: str) -> np.ndarray:
    """(len(STAT_NAMES), filters) statistics of a conv layer at a step."""
    by_step = _tensors(source, tag(STATS, mode, path))
    if step not in by_step:
        raise NotFound(f"no statistics for {path!r} at step {step}", sorted(by_step))
    return by_step[step]


def filters_at(source: Source, mode: str, step: int, path: str) -> int | None:
    """How many filters conv layer `path` had at a step: its statistics' count there (a model
    widened or narrowed between events), else the run header's; None if neither says."""
    try:
        found = stats(source, mode, step, path)
        if found.ndim == 2:
            return found.shape[1]
    except (KeyError, FormatError):
        pass
    return source.header.filters(path) if path in source.header.conv_layers else None


def check_filter(channel: int, path: str, count: int | None, step: int | None = None) -> int:
    """`channel`, one of the `count` filters of conv layer `path` (None: not known, any) at `step`
    (None: at its widest step); NotFound naming them otherwise."""
    if count is not None and not 0 <= channel < count:
        when = f" at step {step}: it had {count} filters then" if step is not None else \
            f": it has {count} filters (at its widest step)"
        raise NotFound(f"channel {channel} is not a filter of {path!r}{when}", range(count))
    return channel


# -- what filters learned ---------------------------------------------------------------------
def _holds_reference(source: Source, header: dict) -> bool:
    """Whether a TOP_EXAMPLES header indexes the run's current reference images (a run started
    again with other probes or another reference set leaves older examples behind)."""
    return header.get("digest") == (source.header.top_examples or {}).get("digest")


def top_examples(source: Source, mode: str, step: int, path: str) -> TopExamples:
    """A logged layer's top examples at a step (a wide layer's hold some of its filters)."""
    blobs, header = indexed(source, TOP_EXAMPLES, mode, step, path)
    if not _holds_reference(source, header):
        raise NotFound(f"the top examples of {path!r} at step {step} index other images than this run's (it was "
                       f"started again with other probes or reference images)")
    return unpack_top_examples(header, source.blob(blobs[1]))


def steps_holding(source: Source, mode: str, path: str, channel: int) -> list:
    """The steps whose top examples of `path` hold filter `channel` of the current reference images."""
    held = []
    stored = set(source.stored_steps(tag(TOP_EXAMPLES, mode, path)))
    for step in (step for step in source.steps(mode) if step in stored):
        try:
            header = summary(source, TOP_EXAMPLES, mode, step, path)[1]
            first, filters = int(header.get("first", 0)), int(header["filters"])
        except (KeyError, TypeError, ValueError, FormatError):
            continue  # none at that step, or damaged: its own request says so
        if first <= channel < first + filters and _holds_reference(source, header):
            held.append(step)
    return held


def _no_examples(source: Source, mode: str, step: int, path: str, channel: int, why: str) -> NotFound:
    """The NotFound of a step without filter `channel`'s top examples (`why`), listing the steps
    that hold them; for a channel beyond every step's filters, naming the layer's filters."""
    held = steps_holding(source, mode, path, channel)
    count = filters_at(source, mode, step, path)
    if count is not None and channel >= count:  # a model widened or narrowed between events
        if not held:
            check_filter(channel, path, series.widest(source.header, path,
                                                      _tensors(source, tag(STATS, mode, path)).values()))
        why = f"filter {channel} of {path!r} has no top examples at step {step}, when the layer had {count} filters"
    return NotFound(why, held)


def filter_examples(source: Source, mode: str, step: int, path: str, channel: int) -> tuple:
    """(one filter's top examples, their receptive-field patches (k, h, w, C), their boxes);
    NotFound listing the steps that hold that filter where the step does not (naming the layer's
    filters instead for a channel beyond them at every step)."""
    try:
        top = top_examples(source, mode, step, path)
    except NotFound as missing:
        raise _no_examples(source, mode, step, path, channel, missing.message) from None
    if not top.holds(channel):  # a wide layer's filters take turns
        raise _no_examples(source, mode, step, path, channel, f"filter {channel} of {path!r} has no top examples at "
                                                              f"step {step}: this layer's filters take turns")
    kind = RUN_HEADER if top.reference == PROBES_REFERENCE else REFERENCE
    stored = source.run_blobs(kind)
    wanted = set(top.images[:, top.column(channel)].tolist())
    if stored is None or max(wanted) >= len(stored) - 1 or len(stored) - 1 != source.decoded(stored)["shape"][0]:
        raise FormatError(f"damaged cnnviz top examples of {path!r} at step {step}: they name images that are "
                          f"not stored")
    images = {index: maps_of(source, kind, stored, index) for index in wanted}
    size = source.decoded(stored)["shape"][2:4]
    found, boxes = patches.patches(images, size, top, channel, source.header.receptive_fields.get(path))
    return top, found, boxes


# -- series over steps ------------------------------------------------------------------------
def filter_drift(source: Source, mode: str, path: str, stat: str) -> tuple:
    """(steps, (filters, steps) matrix) of one statistic of a conv layer's filters: as many rows
    as the layer had filters at its widest."""
    return series.filter_drift(source.header, path, source.steps(mode), _tensors(source, tag(STATS, mode, path)), stat)


def filter_stats(source: Source, mode: str, path: str, channel: int) -> tuple:
    """(steps, (len(STAT_NAMES), steps) matrix) of one filter's statistics, NaN where a step had
    fewer filters; NotFound for a channel beyond the layer's widest step (and run header)."""
    steps, by_step = source.steps(mode), _tensors(source, tag(STATS, mode, path))
    check_filter(channel, path, series.widest(source.header, path, [by_step[s] for s in steps if s in by_step]))
    return series.filter_stats(steps, by_step, channel)


def layer_summaries(source: Source, mode: str) -> dict:
    """{path: `series.layer_summary` over the steps of `mode`, or the FormatError of a layer whose
    statistics are damaged} of every conv layer, their statistics read together."""
    paths, steps = list(source.header.conv_layers), source.steps(mode)
    found = source.tensors([tag(STATS, mode, path) for path in paths]) if steps else {}
    summaries = {}
    for path in paths:
        try:
            summaries[path] = series.layer_summary(steps, found.get(tag(STATS, mode, path), {}))
        except FormatError as error:
            summaries[path] = error
    return summaries


def metrics_tag(mode: str, method: str) -> str:
    """The tag of a method's trust figures: Grad-CAM's are METRICS, the others' METHOD_METRICS."""
    return tag(METRICS, mode) if method == GRADCAM else tag(METHOD_METRICS, mode, method)


def metrics(source: Source, mode: str, method: str = GRADCAM) -> tuple:
    """(steps, {name: mean over the probes per step}) of a method's trust figures, over the
    steps that logged them."""
    if method not in METHODS:
        raise NotFound(f"no method {method!r}; methods: {', '.join(METHODS)}", METHODS)
    return series.metric_series(source.steps(mode), _tensors(source, metrics_tag(mode, method)))


def faithfulness(source: Source, mode: str) -> tuple:
    """(steps, values) of the faithfulness score of each event."""
    return series.scalar_series(source.steps(mode), _tensors(source, tag(FAITHFULNESS, mode)))
