"""Logs written by the real callback (damaged, hostile or foreign ones too), and the plugin served
over them in process (a real `tensorboard` process: conftest's `tensorboard_server`)."""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider, event_file_loader, plugin_event_multiplexer
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test

import tb_cnnviz
from tb_cnnviz.datasets import SHAPE_NAMES, shapes
from tb_cnnviz.plugin.loader import CNNVizLoader
from tests.helpers import small_cnn, unet
from tests.http_api import Api


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


def write_unlearned_run(run_dir):
    """A run that did not learn, as issue 18 met one: 12 of conv4's 16 filters dead (bias -100),
    the other 4 nearly nothing (kernels times 1e-9), the head's bias favouring "disc", so that
    every probe predicts disc 25.9 % and every Grad-CAM map is float noise (~1e-14) at step 0.
    The 4 filters then grow, to 0.1 of their kernels at step 1 and all of them at step 2: the
    maps grow tenfold from step 1 to 2 (Grad-CAM of a linear head is linear in them)."""
    images, labels, _ = shapes(4, size=32, seed=5)
    keras.utils.set_random_seed(3)
    model = small_cnn()
    conv4, head = model.get_layer("conv4"), model.get_layer("head")
    kernel, _ = conv4.get_weights()
    alive = np.arange(16) >= 12
    bias = np.where(alive, 0.0, -100.0).astype("float32")
    head.set_weights([head.get_weights()[0], np.array([0, 0.05, 0, 0], "float32")])
    callback = tb_cnnviz.CNNViz(run_dir, images, labels, class_names=list(SHAPE_NAMES), model=model, strict=True)
    for step, scale in enumerate((1e-9, 0.1, 1.0)):
        conv4.set_weights([np.where(alive, kernel * scale, kernel), bias])
        callback.log(step)


def write_future_run(run_dir):
    """A run written by a (hypothetical) newer tb_cnnviz: format version 99."""
    metadata_ = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="cnnviz", content=b'{"version": 99}'),
        data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
    with tf.summary.create_file_writer(run_dir).as_default():
        tf.summary.write("probes", tf.constant([b'{"version": 99, "shape": [1, 1, 2, 2, 1]}']), step=0,
                         metadata=metadata_)


def logged_steps(logdir, mode="train"):
    """{run: its `mode` steps} of every run directory in `logdir` as tb_cnnviz.read_run reads
    them, None for a run it cannot read (damaged or foreign data, a newer format): what a
    server of `logdir` lists once it has loaded it (tests/http_api.wait_for_runs)."""
    steps = {}
    for name in sorted(os.listdir(logdir)):
        if os.path.isdir(os.path.join(logdir, name)):
            try:
                steps[name] = tb_cnnviz.read_run(os.path.join(logdir, name)).steps(mode)
            except Exception:  # noqa: BLE001 - the server lists it with its error, or not at all
                steps[name] = None
    return steps


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
    """An Api (tests/http_api.py) in process: a werkzeug Client over TensorBoardWSGI with a real
    MultiplexerDataProvider (whose payload reads the plugin makes are reported to `on_read`, if
    given)."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"cnnviz": 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    plugin_provider = provider if on_read is None else _Recording(provider, on_read)
    context = base_plugin.TBContext(logdir=logdir, data_provider=plugin_provider, flags=None)
    plugin = CNNVizLoader().load(context)
    return Api(werkzeug_test.Client(application.TensorBoardWSGI([plugin], data_provider=provider)))
