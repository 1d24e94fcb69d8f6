"""Logs written by the real callback, and a plugin served over them in-process or by a real
`tensorboard` process."""

import contextlib
import io
import json
import os

import keras
import numpy as np
import tensorflow as tf
from PIL import Image
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider, event_file_loader, plugin_event_multiplexer
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test

import tb_cnnviz
from tests.helpers import small_cnn, unet
from tests.tensorboard_process import tensorboard
from tb_cnnviz.datasets import SHAPE_NAMES, shapes
from tb_cnnviz.plugin_loader import CNNVizLoader

PREFIX = "/data/plugin/cnnviz"


def write_logs(logdir, epochs=2):
    """Two runs: "alpha" (train + eval events, its probes' object masks, feature visualisations
    of 2 channels per layer at its first train and eval events) and "beta"; returns {run: (model, probes)}."""
    images, labels, masks = shapes(64, size=32, seed=5)
    models = {}
    for index, run in enumerate(("alpha", "beta")):
        keras.utils.set_random_seed(index)
        model = small_cnn()
        probes = images[:5]
        callback = tb_cnnviz.CNNViz(os.path.join(logdir, run), probes, labels[:5], max_channels=6, layers="all",
                                    class_names=list(SHAPE_NAMES), strict=True,
                                    masks=masks[:5] if run == "alpha" else None,
                                    feature_vis=2 if run == "alpha" else 0)
        model.fit(images, labels, epochs=epochs, batch_size=32, verbose=0, callbacks=[callback])
        if run == "alpha":
            model.evaluate(images[:16], labels[:16], verbose=0, callbacks=[callback])
        models[run] = (model, probes)
    return models


def write_segmentation_run(run_dir):
    """A run of a small U-Net (tests/helpers.py unet) on the shapes' masks: 3 probes, 2 train events."""
    images, labels, masks = shapes(32, size=32, seed=6)
    truth = np.where(masks, labels[:, None, None] + 1, 0)
    keras.utils.set_random_seed(6)
    model = unet()
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = tb_cnnviz.CNNViz(run_dir, images[:3], truth[:3], class_names=["background", *SHAPE_NAMES], strict=True)
    model.fit(images, truth, epochs=1, batch_size=32, verbose=0, callbacks=[callback])


def write_future_run(run_dir):
    """A run written by a (hypothetical) newer tb_cnnviz: format version 99."""
    metadata_ = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="cnnviz", content=b'{"version": 99}'),
        data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
    with tf.summary.create_file_writer(run_dir).as_default():
        tf.summary.write("probes", tf.constant([b'{"version": 99, "shape": [1, 1, 2, 2, 1]}']), step=0,
                         metadata=metadata_)


def rewrite_run(source, target, transform):
    """Copies a run's events into `target`, passing each summary value through `transform`
    (which edits it in place): damaged or hand-crafted data as anyone could write it."""
    os.makedirs(target)
    for name in os.listdir(source):
        if "tfevents" not in name:
            continue
        with tf.io.TFRecordWriter(os.path.join(target, name)) as writer:
            for record in event_file_loader.RawEventFileLoader(os.path.join(source, name)).Load():
                event = event_pb2.Event.FromString(record)
                for value in event.summary.value:
                    transform(value)
                writer.write(event.SerializeToString())


def damage_images(value):
    """Grad-CAM PNGs become garbage; conv1's activation header (and its copy in the step index)
    loses its ranges."""
    if value.tag == "train/gradcam":
        for index in range(1, len(value.tensor.string_val)):
            value.tensor.string_val[index] = b"\x89PNG not really"
    if value.tag == "train/activations/conv1":
        header = json.loads(value.tensor.string_val[0])
        del header["lo"]
        value.tensor.string_val[0] = json.dumps(header).encode()
    if value.tag == "train/predictions":
        header = json.loads(value.tensor.string_val[0])
        del header["summaries"]["activations"]["conv1"]["lo"]
        value.tensor.string_val[0] = json.dumps(header).encode()


def edit_step_index(edit):
    """Transform for rewrite_run: `edit(predictions header)` on every predictions summary."""
    def transform(value):
        if value.tag.endswith("/predictions"):
            header = json.loads(value.tensor.string_val[0])
            edit(header)
            value.tensor.string_val[0] = json.dumps(header).encode()
    return transform


HOSTILE_LAYERS = {"conv1": "<img src=x onerror=alert(1)>", "sep2": "\"'><svg onload=alert(2)>"}
HOSTILE_CLASSES = ["<script>alert(3)</script>", '" onmouseover="alert(4)', "javascript:alert(5)", "&lt;b&gt;"]


def rename_to_hostile(value):
    """Transform for rewrite_run: layer and class names full of markup (TensorFlow refuses
    such layer names, but a logdir on a shared host can hold anything)."""
    for old, new in HOSTILE_LAYERS.items():
        if value.tag.endswith("/" + old):
            value.tag = value.tag[: -len(old)] + new
    blobs = value.tensor.string_val
    if value.metadata.plugin_data.plugin_name == "cnnviz" and blobs and blobs[0].startswith(b"{"):
        text = blobs[0].decode()
        for old, new in HOSTILE_LAYERS.items():
            text = text.replace(json.dumps(old), json.dumps(new))
        header = json.loads(text)
        if "class_names" in header:
            header["class_names"] = HOSTILE_CLASSES
        blobs[0] = json.dumps(header).encode()


class _Recording:
    """A data provider that reports each payload read (read_blob, read_tensors) to `on_read`."""

    def __init__(self, inner, on_read):
        self._inner, self._on_read = inner, on_read

    def read_blob(self, ctx=None, *, blob_key):
        self._on_read(("read_blob", None))
        return self._inner.read_blob(ctx, blob_key=blob_key)

    def read_tensors(self, ctx=None, **kwargs):
        self._on_read(("read_tensors", tuple(kwargs["run_tag_filter"].tags)))
        return self._inner.read_tensors(ctx, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def wsgi_client(logdir, on_read=None):
    """werkzeug Client over TensorBoardWSGI with a real MultiplexerDataProvider (whose payload
    reads the plugin makes are reported to `on_read`, if given)."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"cnnviz": 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    plugin_provider = provider if on_read is None else _Recording(provider, on_read)
    context = base_plugin.TBContext(logdir=logdir, data_provider=plugin_provider, flags=None)
    plugin = CNNVizLoader().load(context)
    return werkzeug_test.Client(application.TensorBoardWSGI([plugin], data_provider=provider))


def npy(body):
    return np.load(io.BytesIO(body), allow_pickle=False)


def png(body):
    return np.asarray(Image.open(io.BytesIO(body)))


@contextlib.contextmanager
def tensorboard_server(logdir, load_fast, logdir_spec=None, require_plugin=True):
    """A real `tensorboard` process reloading `logdir` every second; yields its base URL."""
    with tensorboard(logdir, load_fast, logdir_spec=logdir_spec, reload_interval=1,
                     require_plugin=require_plugin) as server:
        yield server.base
