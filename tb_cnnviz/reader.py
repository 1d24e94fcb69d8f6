"""Reads what CNNViz logged in a run directory back as numpy arrays, without TensorBoard.

    run = tb_cnnviz.reader.read_run("logs/run1")
    step = run.steps("train")[-1]
    event = run.event(step)
    event.gradcam                      # (N, H, W) float32
    event.activations("block1_conv1")  # (N, channels, h, w) and the channel indices
    run.filter_drift("block1_conv1", "cos_to_first")  # steps, (filters, steps)
"""

import collections

import numpy as np
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat import tf
from tensorboard.util import tensor_util

from tb_cnnviz import codec, metadata


def decode_blob_maps(blobs):
    """A map blob sequence -> (float array (B, n, h, w, c), header)."""
    header = codec.decode_header(blobs[0])
    return codec.decode_maps(header, blobs[1:]), header


class Event:
    """One logging event (mode, step): decoded lazily, one summary at a time."""

    def __init__(self, run, mode, step):
        self._run, self.mode, self.step = run, mode, step

    def _blobs(self, kind, layer=None):
        return self._run.blobs(metadata.tag(kind, self.mode, layer), self.step)

    def _maps(self, kind, layer=None):
        return decode_blob_maps(self._blobs(kind, layer))

    @property
    def predictions(self):
        """dict: predicted, probability, target, target_probability, label, top classes, ..."""
        header = codec.decode_header(self._blobs(metadata.PREDICTIONS)[0])
        return {key: value for key, value in header.items() if key != metadata.STEP_INDEX}

    def nonfinite(self, kind, layer=None):
        """Per item and map, how many logged values were NaN or infinite (B, n) — a diverged
        run's maps are stored with those values at the low end of the map's range."""
        header = codec.decode_header(self._blobs(kind, layer and self._run.layer_path(layer))[0])
        return np.asarray(header.get("nonfinite", np.zeros(header["shape"][:2], int)))

    @property
    def gradcam(self):
        return self._maps(metadata.GRADCAM)[0][:, 0, :, :, 0]

    @property
    def gradcam_pp(self):
        return self._maps(metadata.GRADCAM_PP)[0][:, 0, :, :, 0]

    def activations(self, layer):
        """(maps (N, channels, h, w), channel indices) of a logged layer."""
        maps, header = self._maps(metadata.ACTIVATIONS, self._run.layer_path(layer))
        return maps[..., 0], header["channels"]

    def filters(self, layer):
        """(kernels (n, kh, kw, c), channel indices, view): c is 3 for colour tiles."""
        maps, header = self._maps(metadata.FILTERS, self._run.layer_path(layer))
        return maps[0], header["channels"], header["view"]

    def stats(self, layer):
        """{stat name: (filters,) float32} for any conv layer of the model."""
        values = self._run.tensor(metadata.tag(metadata.STATS, self.mode, self._run.layer_path(layer)), self.step)
        return dict(zip(metadata.STAT_NAMES, values))

    @property
    def faithfulness(self):
        return float(self._run.tensor(metadata.tag(metadata.FAITHFULNESS, self.mode), self.step))


class Run:
    """Everything cnnviz logged in one run directory (the event files directly inside it)."""

    def __init__(self, path):
        self.path = str(path)
        self._series = collections.defaultdict(dict)  # tag -> {step: TensorProto}
        if not tf.io.gfile.isdir(self.path):
            raise FileNotFoundError(f"no run directory {self.path!r}")
        names = sorted(n for n in tf.io.gfile.listdir(self.path) if "tfevents" in n)
        for name in names:
            self._load(tf.io.gfile.join(self.path, name.rstrip("/")))
        if metadata.PROBES not in self._series:
            raise ValueError(f"no cnnviz data in {self.path!r}: was CNNViz given this logdir?")
        latest = max(self._series[metadata.PROBES])
        probes, self.info = decode_blob_maps(self.blobs(metadata.PROBES, latest))
        self.probes = probes[:, 0]

    def _load(self, path):
        ours = set()
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
                    metadata.parse_plugin_content(value.metadata.plugin_data.content)
                    ours.add(value.tag)
                if value.tag in ours:
                    self._series[value.tag][event.step] = value.tensor  # a rewrite wins

    @property
    def layers(self):
        """Layers with activations logged, in model order."""
        return list(self.info["layers"])

    def layer_path(self, layer):
        return metadata.resolve_layer(layer, list(self.info["conv_layers"]))

    def steps(self, mode="train"):
        """Steps of complete events: predictions are the last summary an event writes."""
        return sorted(self._series.get(metadata.tag(metadata.PREDICTIONS, mode), {}))

    def event(self, step, mode="train"):
        if step not in self._series.get(metadata.tag(metadata.PREDICTIONS, mode), {}):
            raise KeyError(f"no {mode} event at step {step}; logged steps: {self.steps(mode)}")
        return Event(self, mode, step)

    def _proto(self, tag, step):
        try:
            return self._series[tag][step]
        except KeyError:
            raise KeyError(f"nothing logged under {tag!r} at step {step}") from None

    def blobs(self, tag, step):
        return list(tensor_util.make_ndarray(self._proto(tag, step)))

    def tensor(self, tag, step):
        return tensor_util.make_ndarray(self._proto(tag, step))

    def filter_drift(self, layer, stat, mode="train"):
        """(steps, matrix (filters, steps)) of one filter statistic of one layer."""
        if stat not in metadata.STAT_NAMES:
            raise KeyError(f"unknown stat {stat!r}; choose one of {metadata.STAT_NAMES}")
        path = self.layer_path(layer)
        series = self._series.get(metadata.tag(metadata.STATS, mode, path), {})
        steps = [s for s in self.steps(mode) if s in series]  # complete events only
        if not steps:  # e.g. a mode with no events: no columns, as faithfulness() gives
            filters = self.info["conv_layers"][path]["output_shape"][-1]
            return np.asarray(steps, np.int64), np.empty((filters, 0), np.float32)
        row = metadata.STAT_NAMES.index(stat)
        matrix = np.stack([tensor_util.make_ndarray(series[s])[row] for s in steps], axis=1)
        return np.asarray(steps), matrix

    def faithfulness(self, mode="train"):
        steps = self.steps(mode)
        return np.asarray(steps), np.asarray([self.event(s, mode).faithfulness for s in steps])


def read_run(path):
    return Run(path)
