"""Reads what CNNViz logged in a run directory back as numpy arrays, without TensorBoard.

    run = tb_cnnviz.read_run("logs/run1")
    step = run.steps("train")[-1]
    event = run.event(step)
    event.gradcam                      # (N, H, W) float32
    event.activations("block1_conv1")  # (N, channels, h, w) and the channel indices
    run.filter_drift("block1_conv1", "cos_to_first")  # steps, (filters, steps)
    run.metrics()                      # steps, {"deletion_auc": (steps,), ...}
    event.top_examples("block3_conv2").of(5)      # filter 5's best reference images, peaks, values
    event.top_example_patches("block3_conv2", 5)  # their receptive-field patches, boxes
    run.layer_summary()                # steps, {layer: {"dead_fraction": (steps,), ...}}

A data source of its own over the event files; what the stored summaries hold is
`tb_cnnviz.format`'s to unpack.
"""

import collections

import numpy as np
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat import tf
from tensorboard.util import tensor_util

from tb_cnnviz import codec, examples, format, metadata
from tb_cnnviz.metadata import (ACTIVATIONS, CLASS_MAPS, FAITHFULNESS, FEATURE_VIS, FILTERS, GRADCAM, GRADCAM_PP, MASKS,
                                METRICS, PREDICTIONS, REFERENCE, RUN_HEADER, STATS, TOP_EXAMPLES)


class Event:
    """One logging event (mode, step), decoded lazily one summary at a time."""

    def __init__(self, run: "Run", mode: str, step: int):
        self._run, self.mode, self.step = run, mode, step

    def _blobs(self, kind, layer=None):
        return self._run.blobs(metadata.tag(kind, self.mode, layer), self.step)

    def _maps(self, kind, layer=None):
        """(the kind's array, its header) of one map summary of this event."""
        blobs = self._blobs(kind, layer)
        header = codec.decode_header(blobs[0])
        return format.unpack_maps(kind, header, blobs[1:]), header

    @property
    def predictions(self) -> dict:
        """predicted, probability, target, target_probability, masked_probability,
        faithfulness_drop, label, top_classes, top_probabilities: one entry per probe; a
        multi-label head adds predicted_set, a segmentation head predicted_set (the classes
        of its mask), pixel_share and target_pixels; gradcam_classes and class_probabilities
        list the classes with maps (`gradcam_for`); an eval event of a callback with
        sanity_check=True adds sanity_check: [[layer, correlation], ...], top layer first."""
        return format.unpack_predictions(codec.decode_header(self._blobs(PREDICTIONS)[0]))[0]

    def nonfinite(self, kind: str, layer: str | None = None) -> np.ndarray:
        """Per item and map, how many logged values were NaN or infinite (items, maps): a
        diverged run's maps are stored with those values at the low end of the map's range."""
        layer = layer and self._run.layer_path(layer)
        return format.nonfinite(codec.decode_header(self._blobs(kind, layer)[0]))

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

    def _class_maps(self):
        try:
            return self._blobs(CLASS_MAPS)
        except KeyError:
            raise KeyError(f"the {self.mode} event at step {self.step} stores no maps of other classes (written "
                           f"before tb_cnnviz stored them)") from None

    def gradcam_classes(self, sample: int) -> list:
        """The classes whose maps are stored for probe `sample`: the target first."""
        return list(codec.decode_header(self._class_maps()[0])["classes"][sample])

    def gradcam_for(self, sample: int, class_index: int, method: str = "gradcam") -> np.ndarray:
        """Probe `sample`'s map (H, W) float32 for a stored class (`gradcam_classes`) by
        "gradcam" or "gradcam_pp"; KeyError listing the stored classes for another."""
        if method not in format.CLASS_MAP_METHODS:
            raise ValueError(f"method must be one of {format.CLASS_MAP_METHODS}, got {method!r}")
        blobs = self._class_maps()
        header = codec.decode_header(blobs[0])
        position = format.class_map_position(header, sample, class_index, method)
        return format.unpack_item(CLASS_MAPS, header, blobs[1 + sample], sample)[position]

    @property
    def metrics(self) -> dict:
        """{name: (N,) float32} of each trust figure per probe (`format.METRIC_NAMES`), NaN
        where this event did not compute it."""
        values = self._run.tensor(metadata.tag(METRICS, self.mode), self.step)
        return dict(zip(format.METRIC_NAMES, values))

    def activations(self, layer: str) -> tuple:
        """(maps (N, channels, h, w), channel indices) of a logged layer.

        Raises KeyError (format.UnknownLayer) for a layer that is not logged."""
        maps, header = self._maps(ACTIVATIONS, self._run.layer_path(layer))
        return maps, header["channels"]

    def filters(self, layer: str) -> tuple:
        """(kernels (n, kh, kw, c), channel indices, view): c is 3 for colour tiles."""
        kernels, header = self._maps(FILTERS, self._run.layer_path(layer))
        return kernels, header["channels"], header["view"]

    def stats(self, layer: str) -> dict:
        """{stat name: (filters,) float32} for any conv layer of the model."""
        return format.stats_by_name(self._run.tensor(metadata.tag(STATS, self.mode, self._run.layer_path(layer)),
                                                     self.step))

    def top_examples(self, layer: str) -> format.TopExamples:
        """Each filter's top-activating reference images of a logged layer at this event (`k` per
        filter, best first; `images` index `Run.reference_images`; `of(channel)` one filter's; a
        layer wider than max_example_filters holds some of its filters, from `first` on). KeyError
        if this event has none (a reference set of its own is searched every filters_every-th event)."""
        path = self._run.layer_path(layer)
        blobs, header = self._indexed(TOP_EXAMPLES, path)
        if not format.digest_matches(self._run.header, header):
            raise KeyError(f"the top examples of {path!r} at step {self.step} index other images than this run's (it "
                           f"was started again with other probes or reference images)")
        return format.unpack_top_examples(header, blobs[1])

    def _indexed(self, kind, path):
        """(blobs, decoded header) of a summary logged at some steps only, if this event indexes it
        (an earlier run in the logdir may have left one at this step); KeyError otherwise."""
        blobs = self._blobs(kind, path)
        header = codec.decode_header(blobs[0])
        index = format.unpack_predictions(codec.decode_header(self._blobs(PREDICTIONS)[0]))[1]
        if not format.indexed_by_step(index, kind, path, header):
            raise KeyError(f"the {kind} of {path!r} at step {self.step} were left by an earlier run in this logdir")
        return blobs, header

    def top_example_patches(self, layer: str, channel: int) -> tuple:
        """((k, h, w, C) receptive-field patches of one filter's top examples, zero where they
        extend past the image, and their (y0, x0, y1, x1) boxes in image pixels)."""
        path = self._run.layer_path(layer)
        top = self.top_examples(path)
        images = self._run.reference_images
        return examples.patches(images, images.shape[1:3], top, channel, self._run.header.receptive_fields.get(path))

    def feature_vis(self, layer: str) -> tuple:
        """(images (channels, H, W, C) that maximise each channel's mean activation, channel
        indices) of a layer visualised at this event (KeyError if it was not)."""
        blobs, header = self._indexed(FEATURE_VIS, self._run.layer_path(layer))
        return format.unpack_maps(FEATURE_VIS, header, blobs[1:]), header["channels"]

    @property
    def faithfulness(self) -> float:
        """Mean drop of the target's probability when the top of Grad-CAM is blurred."""
        return float(self._run.tensor(metadata.tag(FAITHFULNESS, self.mode), self.step))


class Run:
    """Everything cnnviz logged in one run directory (the event files directly inside it).

    Attributes:
      path: the directory.
      header: the run header (format.RunHeader): layers, channels, classes, ...
      info: the run header as stored, with the probe images' shape and ranges.
      probes: the probe images (N, H, W, C) float32, as logged.

    Raises (when made):
      FileNotFoundError: no such directory.
      ValueError: no cnnviz data in it.
      metadata.FormatError: data this version cannot read (e.g. from a newer tb_cnnviz).
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
        blobs = self.blobs(RUN_HEADER, max(self._series[RUN_HEADER]))
        self.info = codec.decode_header(blobs[0])
        self.header = format.unpack_run_header(self.info, len(blobs))
        self.probes = format.unpack_maps(RUN_HEADER, self.info, blobs[1:])

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

    def layer_path(self, layer: str) -> str:
        """The path of a conv layer given by path or unambiguous short name (KeyError if none)."""
        return format.resolve_layer(layer, self.header.conv_layers)

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
            raise KeyError(f"nothing logged under {tag!r} at step {step}") from None

    def blobs(self, tag: str, step: int) -> list:
        """The stored blobs of a blob summary at `step`."""
        return list(tensor_util.make_ndarray(self._proto(tag, step)))

    def tensor(self, tag: str, step: int) -> np.ndarray:
        """A tensor summary at `step`, checked to be numbers."""
        return format.unpack_tensor(tensor_util.make_ndarray(self._proto(tag, step)), repr(tag))

    def filter_drift(self, layer: str, stat: str, mode: str = "train") -> tuple:
        """(steps, matrix (filters, steps)) of one filter statistic of one conv layer; a mode
        without events gives no columns. KeyError for an unknown layer or statistic."""
        path = self.layer_path(layer)
        return format.filter_drift(self.header, path, self.steps(mode), self._tensors(metadata.tag(STATS, mode, path), mode),
                                   stat)

    def _tensors(self, tag: str, mode: str) -> dict:
        """{step: tensor} of a tensor summary at the complete events of `mode` that have it."""
        series = self._series.get(tag, {})
        return {step: self.tensor(tag, step) for step in self.steps(mode) if step in series}

    def faithfulness(self, mode: str = "train") -> tuple:
        """(steps, values) of the faithfulness score of each event of `mode`."""
        steps, values = format.scalar_series(self.steps(mode), self._tensors(metadata.tag(FAITHFULNESS, mode), mode))
        return np.asarray(steps), np.asarray(values)

    def metrics(self, mode: str = "train") -> tuple:
        """(steps, {name: (steps,) mean over the probes, NaN where not computed}) of the trust
        figures (`format.METRIC_NAMES`) of each event of `mode` that has them."""
        steps, series = format.metric_series(self.steps(mode), self._tensors(metadata.tag(METRICS, mode), mode))
        return np.asarray(steps), series

    def filter_stats(self, layer: str, channel: int, mode: str = "train") -> tuple:
        """(steps, (len(format.STAT_NAMES), steps) matrix) of one filter's statistics."""
        path = self.layer_path(layer)
        return format.filter_stats(self.header, path, self.steps(mode), self._tensors(metadata.tag(STATS, mode, path), mode),
                                   channel)

    def layer_summary(self, mode: str = "train") -> tuple:
        """(steps, {layer: {"dead_fraction", "drift", "change", "norm_trend": (steps,)}}) of every
        conv layer (`format.layer_summary`)."""
        steps = self.steps(mode)
        return np.asarray(steps), {path: format.layer_summary(steps, self._tensors(metadata.tag(STATS, mode, path), mode))
                                   for path in self.header.conv_layers}

    @property
    def reference_images(self) -> np.ndarray:
        """The images top examples index: the run's own reference set, or the probes."""
        if (self.header.top_examples or {}).get("reference") != format.OWN_REFERENCE:
            return self.probes
        blobs = self.blobs(REFERENCE, max(self._series[REFERENCE]))
        return format.unpack_maps(REFERENCE, codec.decode_header(blobs[0]), blobs[1:])

    @property
    def objects(self) -> np.ndarray | None:
        """(N, H, W) bool masks of the probes' objects (boxes drawn as masks), None if not given."""
        return format.object_masks(self.header, self.probes.shape[:3])


def read_run(path) -> Run:
    """Reads a run directory written by CNNViz; see `Run` for what it holds and raises."""
    return Run(path)
