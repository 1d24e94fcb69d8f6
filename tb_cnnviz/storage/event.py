"""One event as stored: {tag: (kind, value)} of every summary of a step, written as one record.

The predictions summary is packed last and indexes the step (`step_index`): a step whose
predictions are on disk is complete.
"""

import dataclasses

import numpy as np

from tb_cnnviz.storage import codec
from tb_cnnviz.storage.maps import CLASS_MAP_METHODS, KERNEL_VIEW, MEAN_VIEW, pack_maps
from tb_cnnviz.storage.metadata import (ACTIVATIONS, CLASS_MAPS, FAITHFULNESS, FEATURE_VIS, FILTERS, GRADCAM,
                                        GRADCAM_PP, MASKS, METHOD_MAPS, METHOD_METRICS, METRICS, MULTILABEL,
                                        PIXEL_METHODS, PREDICTIONS, SCALAR, STATS, TOP_EXAMPLES, scalar_tag, tag)
from tb_cnnviz.storage.run_header import RunHeader, labels_stored, shown_images
from tb_cnnviz.storage.step_index import STEP_INDEX
from tb_cnnviz.storage.tensors import METRIC_NAMES, metric_means, pack_stats, pack_tensor
from tb_cnnviz.storage.top_examples import pack_top_examples

TOP_CLASSES = 5  # classes listed per probe in the predictions, most probable first


@dataclasses.dataclass(frozen=True)
class EventData:
    """What one event logs, as numpy arrays (N probes); `probe.ProbeResult` is one.

    probabilities (N, classes); image_size (H, W); predicted, target (N,); classes (N, slots):
    the classes explained, target first; class_gradcam, class_gradcam_pp (N, slots, h, w);
    masked_probability (N,); activations {path: (N, channels, h, w)}; filters {path: (n, kh, kw,
    c)}; stats {path: (len(STAT_NAMES), filters)}; a segmentation head's masks (N, H, W),
    pixel_share (N, classes) and target_pixels (N,), else None; method_maps {method: (N, h, w)}
    of the target classes by the logged methods besides Grad-CAM and Grad-CAM++ (a class
    activation map at its layer's resolution, a pixel attribution at the input's).
    """

    probabilities: np.ndarray
    image_size: tuple
    predicted: np.ndarray
    target: np.ndarray
    classes: np.ndarray
    class_gradcam: np.ndarray
    class_gradcam_pp: np.ndarray
    masked_probability: np.ndarray
    activations: dict
    filters: dict
    stats: dict
    masks: np.ndarray | None = None
    pixel_share: np.ndarray | None = None
    target_pixels: np.ndarray | None = None
    method_maps: dict = dataclasses.field(default_factory=dict)


class _Items:
    """The summaries of one event being packed, and the step index they make."""

    def __init__(self, mode: str):
        self.mode, self.items, self.index = mode, {}, {ACTIVATIONS: {}, FILTERS: {}}

    def add(self, kind, value, path=None):
        """A blob summary, indexed by its header."""
        self.items[tag(kind, self.mode, path)] = (kind, value)
        if path is None:
            self.index[kind] = value[0]
        else:
            self.index.setdefault(kind, {})[path] = value[0]

    def add_maps(self, kind, array, path=None, **fields):
        self.add(kind, pack_maps(kind, array, **fields), path)

    def add_tensor(self, kind, value, path=None):
        self.items[tag(kind, self.mode, path)] = (kind, value)


def _pack_maps(items: _Items, result, run: RunHeader) -> None:
    """Grad-CAM maps, a segmentation head's masks, feature maps and filters."""
    size = list(result.image_size)
    target_gradcam, target_gradcam_pp = result.class_gradcam[:, 0], result.class_gradcam_pp[:, 0]
    items.add_maps(GRADCAM, target_gradcam, layer=run.gradcam_layer, size=size)
    items.add_maps(GRADCAM_PP, target_gradcam_pp, layer=run.gradcam_layer, size=size)
    items.add_maps(CLASS_MAPS, np.concatenate([result.class_gradcam, result.class_gradcam_pp], axis=1),
                   layer=run.gradcam_layer, size=size, classes=result.classes.tolist(),
                   methods=list(CLASS_MAP_METHODS))
    for method, method_maps in result.method_maps.items():
        layer = {} if method in PIXEL_METHODS else {"layer": run.gradcam_layer}
        items.add_maps(METHOD_MAPS, method_maps, method, size=size, **layer)
    if result.masks is not None:
        items.add_maps(MASKS, result.masks)
    for path, maps in result.activations.items():
        items.add_maps(ACTIVATIONS, maps, path, channels=run.channels[path])
    for path, kernels in result.filters.items():
        items.add_maps(FILTERS, kernels, path, channels=run.filter_channels[path],
                       view=KERNEL_VIEW if path == run.rgb_filter_layer else MEAN_VIEW)


def _pack_filters_learned(items: _Items, run: RunHeader, top_examples, feature_vis) -> None:
    """Top examples {path: (images, positions, values, map size, first filter)} and feature
    visualisations {path: (channels, H, W, C)}, at the events that have them."""
    stored = run.top_examples
    for path, (images, positions, values, map_size, first) in (top_examples or {}).items():
        items.add(TOP_EXAMPLES, pack_top_examples(images, positions, values, map_size, stored["count"],
                                                  stored["reference"], first, stored["digest"]), path)
    for path, images in (feature_vis or {}).items():
        items.add_maps(FEATURE_VIS, shown_images(images), path, channels=run.feature_vis[path])


def _head_fields(result, run: RunHeader, cascade) -> dict:
    """What a multi-label or segmentation head, or the sanity check, adds to the predictions."""
    fields = {}
    if result.masks is not None:
        fields = {"predicted_set": [np.flatnonzero(row > 0).tolist() for row in result.pixel_share],
                  "pixel_share": result.pixel_share.tolist(), "target_pixels": result.target_pixels.tolist()}
    elif run.head == MULTILABEL:
        fields = {"predicted_set": [np.flatnonzero(row > 0.5).tolist() for row in result.probabilities]}
    if cascade is not None:
        fields["sanity_check"] = [[name, correlation] for name, correlation in cascade]
    return fields


def _predictions(result, labels, head_fields: dict, index: dict) -> bytes:
    """The predictions header: per probe what the model predicts and what the maps explain."""
    probabilities, predicted = result.probabilities, result.predicted
    target_probability = probabilities[np.arange(len(result.target)), result.target]
    # classes ranked by probability; a segmentation head's by their share of the pixels
    ranked = probabilities if result.pixel_share is None else result.pixel_share
    top = np.argsort(-ranked, axis=1, kind="stable")[:, :TOP_CLASSES]
    return codec.encode_header(
        predicted=predicted.tolist(),
        probability=probabilities[np.arange(len(predicted)), predicted].tolist(),
        target=result.target.tolist(),
        target_probability=target_probability.tolist(),
        masked_probability=result.masked_probability.tolist(),
        faithfulness_drop=(target_probability - result.masked_probability).tolist(),
        label=labels_stored(labels),
        **head_fields,
        top_classes=top.tolist(),
        top_probabilities=np.take_along_axis(probabilities, top, axis=1).tolist(),
        gradcam_classes=result.classes.tolist(),
        class_probabilities=np.take_along_axis(probabilities, result.classes, axis=1).tolist(),
        **{STEP_INDEX: index},
    )


def pack_event(mode: str, result: EventData, run: RunHeader, labels, metrics: np.ndarray,
               cascade: list | None = None, top_examples: dict | None = None,
               feature_vis: dict | None = None, method_metrics: dict | None = None) -> dict:
    """{tag: (kind, value)} of every summary of one event.

    labels: as `capture.plan.Plan` holds them; metrics: (len(METRIC_NAMES), N) of
    `explanations.trust.event_metrics`; cascade: `sanity_check`'s result, if run; top_examples:
    {path: (images, positions, values, map size, first filter)} of the filters whose examples
    this event stores; feature_vis: {path: (channels, H, W, C)} of the run header's
    `feature_vis` channels, if made at this event; method_metrics: {method: (len(METRIC_NAMES),
    N)} of the other logged methods (`metrics` are Grad-CAM's).
    """
    items = _Items(mode)
    _pack_maps(items, result, run)
    for path, stats in result.stats.items():
        items.add_tensor(STATS, pack_stats(stats), path)
    _pack_filters_learned(items, run, top_examples, feature_vis)
    drop = result.probabilities[np.arange(len(result.target)), result.target] - result.masked_probability
    items.add_tensor(FAITHFULNESS, pack_tensor(drop.mean()))
    items.add_tensor(METRICS, pack_tensor(metrics))
    for method, values in (method_metrics or {}).items():
        items.add_tensor(METHOD_METRICS, pack_tensor(values), method)
    for method, values in {"gradcam": metrics, **(method_metrics or {})}.items():
        for name, mean in zip(METRIC_NAMES, metric_means(values)):  # beside the loss in the Scalars tab
            if np.isfinite(mean):
                items.items[scalar_tag(mode, name, method)] = (SCALAR, pack_tensor(mean))
    items.index[FAITHFULNESS] = float(drop.mean())
    header = _predictions(result, labels, _head_fields(result, run, cascade), items.index)
    items.items[tag(PREDICTIONS, mode)] = (PREDICTIONS, np.asarray([header], dtype=object))
    return items.items
