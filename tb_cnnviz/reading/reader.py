"""Reads what CNNViz logged in a run directory back as numpy arrays, without TensorBoard.

    run = tb_cnnviz.read_run("logs/run1")
    step = run.steps("train")[-1]
    event = run.event(step)
    event.gradcam                      # (N, H, W) float32
    event.activations("block1_conv1")  # (N, channels, h, w) and the channel indices
    run.filter_drift("block1_conv1", "cos_to_first")  # steps, (filters, steps)
    run.metrics()                      # steps, {"deletion_auc": (steps,), ...} of Grad-CAM
    event.maps("hirescam")             # (N, H, W) of a method the callback's methods= logs
    run.metrics(method="hirescam")     # its trust figures
    event.top_examples("block3_conv2").of(5)      # filter 5's best reference images, peaks, values
    event.top_example_patches("block3_conv2", 5)  # their receptive-field patches, boxes
    run.layer_summary()                # steps, {layer: {"dead_fraction": (steps,), ...}}

`Run` is a `lookups.Source` over the event files (read through TensorBoard's file layer, which
uses TensorFlow's where it is installed, for remote paths); the lookups do the rest.
"""

import collections

import numpy as np
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat import tf
from tensorboard.util import tensor_util

from tb_cnnviz.reading import lookups
from tb_cnnviz.storage import codec, maps, metadata, run_header, tensors
from tb_cnnviz.storage.layer_names import UnknownLayer, resolve_layer
from tb_cnnviz.storage.metadata import (ACTIVATIONS, CLASS_MAPS, FEATURE_VIS, FILTERS, GRADCAM, GRADCAM_PP, MASKS, METRICS,
                                        PREDICTIONS, REFERENCE, RUN_HEADER, TOP_EXAMPLES)
from tb_cnnviz.storage.top_examples import OWN_REFERENCE, TopExamples


class Event:
    """One logging event (mode, step), decoded lazily one summary at a time."""

    def __init__(self, run: "Run", mode: str, step: int):
        self._run, self.mode, self.step = run, mode, step

    def _path(self, layer: str, kind: str) -> str:
        """The path of a conv layer (`Run.layer_path`), or of a layer whose `kind` this event's
        index lists that the run header no longer names (a model changed since this event)."""
        try:
            return self._run.layer_path(layer, self.mode)
        except UnknownLayer as unknown:
            if not unknown.ambiguous and layer in lookups.step_layers(self._run, kind, self.mode, self.step):
                return layer
            raise

    def _maps(self, kind, layer=None):
        """(the kind's array, its header) of one map summary of this event."""
        blobs, header = lookups.summary(self._run, kind, self.mode, self.step, layer)
        return lookups.maps_of(self._run, kind, blobs), header

    @property
    def predictions(self) -> dict:
        """predicted, probability, target, target_probability, masked_probability,
        faithfulness_drop, label, top_classes, top_probabilities: one entry per probe; a
        multi-label head adds predicted_set, a segmentation head predicted_set (the classes
        of its mask), pixel_share and target_pixels; gradcam_classes and class_probabilities
        list the classes with maps (`gradcam_for`); an eval event of a callback with
        sanity_check=True adds sanity_check: [[layer, correlation], ...], top layer first."""
        return lookups.predictions(self._run, self.mode, self.step)[0]

    def nonfinite(self, kind: str, layer: str | None = None) -> np.ndarray:
        """Per item and map, how many logged values were NaN or infinite (items, maps): a
        diverged run's maps are stored with those values at the low end of the map's range."""
        layer = layer and self._path(layer, kind)
        return maps.nonfinite(lookups.summary(self._run, kind, self.mode, self.step, layer)[1])

    @property
    def gradcam(self) -> np.ndarray:
        """Grad-CAM maps (N, H, W) float32 at the input resolution."""
        return self._maps(GRADCAM)[0]

    @property
    def masks(self) -> np.ndarray:
        """A segmentation head's predicted class per output pixel (N, H, W) int64."""
        return self._maps(MASKS)[0]

    @property
    def gradcam_pp(self) -> np.ndarray:
        """Grad-CAM++ maps (N, H, W) float32."""
        return self._maps(GRADCAM_PP)[0]

    @property
    def methods(self) -> list:
        """The methods whose maps this event holds (`maps`): the callback's `methods` (with
        Grad-CAM++ always), the many-pass ones at the events that ran them."""
        return lookups.step_methods(self._run, self.mode, self.step)

    def maps(self, method: str = "gradcam") -> np.ndarray:
        """The target classes' maps (N, H, W) float32 by one of `methods`, at the input
        resolution; KeyError listing this event's methods for another."""
        kind, blobs, _ = lookups.method_maps(self._run, self.mode, self.step, method)
        return lookups.maps_of(self._run, kind, blobs)

    def method_metrics(self, method: str) -> dict:
        """`metrics` of a method's maps: {name: (N,) float32}, NaN where not computed (faithfulness
        is Grad-CAM's alone); KeyError if this event did not score that method."""
        return dict(zip(tensors.METRIC_NAMES, self._run.tensor(lookups.metrics_tag(self.mode, method), self.step)))

    def gradcam_classes(self, sample: int) -> list:
        """The classes whose maps are stored for probe `sample`: the target first."""
        return list(lookups.stored_classes(lookups.class_maps(self._run, self.mode, self.step)[1], sample, self.step))

    def gradcam_for(self, sample: int, class_index: int, method: str = "gradcam") -> np.ndarray:
        """Probe `sample`'s map (H, W) float32 for a stored class (`gradcam_classes`) by
        "gradcam" or "gradcam_pp"; KeyError listing the stored classes for another."""
        if method not in maps.CLASS_MAP_METHODS:
            raise ValueError(f"method must be one of {maps.CLASS_MAP_METHODS}, got {method!r}")
        blobs, position = lookups.class_map(self._run, self.mode, self.step, sample, class_index, method)
        return lookups.maps_of(self._run, CLASS_MAPS, blobs, sample)[position]

    @property
    def metrics(self) -> dict:
        """{name: (N,) float32} of each trust figure per probe (`storage.tensors.METRIC_NAMES`),
        NaN where this event did not compute it."""
        return dict(zip(tensors.METRIC_NAMES, self._run.tensor(metadata.tag(METRICS, self.mode), self.step)))

    def activations(self, layer: str) -> tuple:
        """(maps (N, channels, h, w), channel indices) of a logged layer.

        Raises KeyError (`storage.layer_names.UnknownLayer`) for a layer that is not logged."""
        found, header = self._maps(ACTIVATIONS, self._path(layer, ACTIVATIONS))
        return found, header["channels"]

    def filters(self, layer: str) -> tuple:
        """(kernels (n, kh, kw, c), channel indices, view): c is 3 for colour tiles."""
        kernels, header = self._maps(FILTERS, self._path(layer, FILTERS))
        return kernels, header["channels"], header["view"]

    def stats(self, layer: str) -> dict:
        """{stat name: (filters,) float32} for any conv layer of the model."""
        return tensors.stats_by_name(lookups.stats(self._run, self.mode, self.step, self._run.layer_path(layer, self.mode)))

    def top_examples(self, layer: str) -> TopExamples:
        """Each filter's top-activating reference images of a logged layer at this event (`k` per
        filter, best first; `images` index `Run.reference_images`; `of(channel)` one filter's; a
        layer wider than max_example_filters holds some of its filters, from `first` on). KeyError
        if this event has none (a reference set of its own is searched every filters_every-th event)."""
        return lookups.top_examples(self._run, self.mode, self.step, self._path(layer, TOP_EXAMPLES))

    def top_example_patches(self, layer: str, channel: int) -> tuple:
        """((k, h, w, C) receptive-field patches of one filter's top examples, zero where they
        extend past the image, and their (y0, x0, y1, x1) boxes in image pixels)."""
        _, found, boxes = lookups.filter_examples(self._run, self.mode, self.step, self._path(layer, TOP_EXAMPLES), channel)
        return found, boxes

    def feature_vis(self, layer: str) -> tuple:
        """(images (channels, H, W, C) that maximise each channel's mean activation, channel
        indices) of a layer visualised at this event (KeyError if it was not)."""
        blobs, header = lookups.indexed(self._run, FEATURE_VIS, self.mode, self.step, self._path(layer, FEATURE_VIS))
        return lookups.maps_of(self._run, FEATURE_VIS, blobs), header["channels"]

    @property
    def faithfulness(self) -> float:
        """Mean drop of the target's probability when the top of Grad-CAM is blurred."""
        return float(self._run.tensor(metadata.tag(metadata.FAITHFULNESS, self.mode), self.step))


class Run:
    """Everything cnnviz logged in one run directory (the event files directly inside it).

    Attributes:
      path: the directory.
      header: the run header (`storage.run_header.RunHeader`): layers, channels, classes, ...
      info: the run header as stored, with the probe images' shape and ranges.
      probes: the probe images (N, H, W, C) float32, as logged.

    Raises (when made):
      FileNotFoundError: no such directory.
      ValueError: no cnnviz data in it.
      storage.metadata.FormatError: data this version cannot read (e.g. from a newer tb_cnnviz).
    """

    def __init__(self, path):
        self.path = str(path)
        self._series = collections.defaultdict(dict)  # tag -> {step: TensorProto}
        if not tf.io.gfile.isdir(self.path):
            raise FileNotFoundError(f"no run directory {self.path!r}")
        names = sorted(n for n in tf.io.gfile.listdir(self.path) if "tfevents" in n)
        for name in names:
            self._load(tf.io.gfile.join(self.path, name.rstrip("/")))
        if RUN_HEADER not in self._series:
            raise ValueError(f"no cnnviz data in {self.path!r}: was CNNViz given this logdir?")
        blobs = self.run_blobs(RUN_HEADER)
        self.info = codec.decode_header(blobs[0])
        self.header = run_header.unpack_run_header(self.info, len(blobs))
        self.probes = maps.unpack_maps(RUN_HEADER, self.info, blobs[1:])

    def _load(self, path):
        ours = set()
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
                    metadata.check_kind(metadata.parse_plugin_content(value.metadata.plugin_data.content))
                    ours.add(value.tag)
                if value.tag in ours:
                    self._series[value.tag][event.step] = value.tensor  # a rewrite wins

    @property
    def layers(self) -> list:
        """Layers with activations logged, in model order."""
        return list(self.header.layers)

    def layer_path(self, layer: str, mode: str | None = None) -> str:
        """The path of a conv layer given by path or unambiguous short name, or by its path one
        with statistics at some `mode` step that the run header no longer names (a model changed
        since); KeyError (`storage.layer_names.UnknownLayer`) if none."""
        try:
            return resolve_layer(layer, self.header.conv_layers)
        except UnknownLayer as unknown:
            if not unknown.ambiguous and mode is not None and lookups.has_stats(self, mode, layer):
                return layer
            raise

    def steps(self, mode: str = "train") -> list:
        """Steps of complete events (whose predictions, written with the rest, are on disk)."""
        return sorted(self._series.get(metadata.tag(PREDICTIONS, mode), {}))

    def event(self, step: int, mode: str = "train") -> Event:
        """The event at `step`; KeyError listing the logged steps if there is none."""
        if step not in self._series.get(metadata.tag(PREDICTIONS, mode), {}):
            raise KeyError(f"no {mode} event at step {step}; logged steps: {self.steps(mode)}")
        return Event(self, mode, step)

    def _proto(self, tag, step):
        try:
            return self._series[tag][step]
        except KeyError:
            raise lookups.NotFound(f"nothing logged under {tag!r} at step {step}", sorted(self._series.get(tag, {}))) \
                from None

    # -- lookups.Source ---------------------------------------------------------------------------
    def stored_steps(self, tag: str) -> list:
        return sorted(self._series.get(tag, {}))

    def blobs(self, tag: str, step: int) -> list:
        """The stored blobs of a blob summary at `step`."""
        return list(tensor_util.make_ndarray(self._proto(tag, step)))

    @staticmethod
    def blob(reference: bytes) -> bytes:
        return reference

    @staticmethod
    def decoded(blobs: list) -> dict:
        return codec.decode_header(blobs[0])

    def tensor(self, tag: str, step: int) -> np.ndarray:
        """A tensor summary at `step`, checked to be numbers."""
        return tensors.unpack_tensor(tensor_util.make_ndarray(self._proto(tag, step)), repr(tag))

    def tensors(self, tags: list) -> dict:
        """{tag: {step: tensor}} of tensor summaries at every step that has them."""
        return {tag: {step: self.tensor(tag, step) for step in self._series.get(tag, {})} for tag in tags}

    def run_blobs(self, kind: str) -> list | None:
        series = self._series.get(kind)
        return self.blobs(kind, max(series)) if series else None

    # -- series over steps --------------------------------------------------------------------
    def filter_drift(self, layer: str, stat: str, mode: str = "train") -> tuple:
        """(steps, matrix (filters, steps)) of one filter statistic of one conv layer, NaN where
        a step had fewer filters; a mode without events gives no columns. KeyError for an
        unknown layer or statistic."""
        return lookups.filter_drift(self, mode, self.layer_path(layer, mode), stat)

    def faithfulness(self, mode: str = "train") -> tuple:
        """(steps, values) of the faithfulness score of each event of `mode`."""
        steps, values = lookups.faithfulness(self, mode)
        return np.asarray(steps), np.asarray(values)

    def metrics(self, mode: str = "train", method: str = "gradcam") -> tuple:
        """(steps, {name: (steps,) mean over the probes, NaN where not computed}) of the trust
        figures (`storage.tensors.METRIC_NAMES`) of a method's maps (one the run logs,
        `header.scored_methods()`) at each event of `mode` that scored it."""
        steps, found = lookups.metrics(self, mode, method)
        return np.asarray(steps), found

    def filter_stats(self, layer: str, channel: int, mode: str = "train") -> tuple:
        """(steps, (len(STAT_NAMES), steps) matrix) of one filter's statistics."""
        return lookups.filter_stats(self, mode, self.layer_path(layer, mode), channel)

    def layer_summary(self, mode: str = "train") -> tuple:
        """(steps, {layer: {"dead_fraction", "drift", "change", "norm_trend": (steps,)}}) of every
        conv layer (`reading.series.layer_summary`)."""
        summaries = lookups.layer_summaries(self, mode)
        for damaged in (found for found in summaries.values() if isinstance(found, Exception)):
            raise damaged
        return np.asarray(self.steps(mode)), summaries

    @property
    def reference_images(self) -> np.ndarray:
        """The images top examples index: the run's own reference set, or the probes."""
        if (self.header.top_examples or {}).get("reference") != OWN_REFERENCE:
            return self.probes
        blobs = self.run_blobs(REFERENCE)
        return maps.unpack_maps(REFERENCE, codec.decode_header(blobs[0]), blobs[1:])

    @property
    def objects(self) -> np.ndarray | None:
        """(N, H, W) bool masks of the probes' objects (boxes drawn as masks), None if not given."""
        return run_header.object_masks(self.header, self.probes.shape[:3])


def read_run(path) -> Run:
    """Reads a run directory written by CNNViz; see `Run` for what it holds and raises."""
    return Run(path)
