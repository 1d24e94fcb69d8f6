"""What each filter has learned: top-activating examples (against an independent top-k on the
layer's output), their receptive-field patches, feature visualisations, the layer health table
and one filter's statistics, through the reader and the plugin's routes."""

import json
import os

import keras
import numpy as np
import pytest

import tb_cnnviz
from tests.helpers import small_cnn
from tests.http_api import npy, png
from tests.plugin_helpers import wsgi_client
from tb_cnnviz.reading.patches import patches as cropped_patches
from tb_cnnviz.storage import metadata, tensors, top_examples
from tb_cnnviz.datasets import SHAPE_NAMES, shapes

LAYERS = ["conv1", "sep2", "conv4"]


def layer_outputs(model, images, layers):
    """{layer: (N, h, w, C)} the conv layers' own outputs, from a sub-model."""
    outputs = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])(images, training=False)
    return {layer: keras.ops.convert_to_numpy(output)
            for layer, output in zip(layers, outputs if len(layers) > 1 else [outputs])}


def independent_top_k(outputs, k):
    """(images, positions (y, x), values, peaks) each filter's k best images by their map's peak,
    ties to the lower image index, the peak's first position row-major, in NumPy."""
    outputs = np.asarray(outputs, np.float32)
    n, h, w, c = outputs.shape
    flat = outputs.reshape(n, h * w, c)
    peaks, first = flat.max(axis=1), flat.argmax(axis=1)  # argmax: the first of equal values
    order = np.argsort(-peaks, axis=0, kind="stable")[:k]
    positions = np.take_along_axis(first, order, axis=0)
    return order, np.stack([positions // w, positions % w], axis=-1), np.take_along_axis(peaks, order, axis=0), \
        (peaks, flat)


def distinct(values, others, tolerance=1e-5):
    """Where `values` differs from every one of `others` by more than `tolerance` relative."""
    scale = np.maximum(np.abs(values), 1e-12)
    return np.all(np.abs(values[None] - np.asarray(others)) > tolerance * scale[None], axis=0)


def check_against_independent(top, outputs, count):
    """The stored examples equal NumPy's top-k wherever the ranking is decided by more than 1e-5
    relative: the image at each rank where its peak differs from its neighbours' and the next
    one's, the position where the map's peak differs from the map's other values."""
    k = top.images.shape[0]
    images, positions, values, (peaks, flat) = independent_top_k(outputs, k)
    ranked = -np.sort(-peaks, axis=0)  # every image's peak, best first, per filter
    padded = np.concatenate([np.full_like(ranked[:1], np.inf), ranked, np.full_like(ranked[:1], -np.inf)])
    clear = distinct(ranked[:k], [padded[:k], padded[2:k + 2]])  # rank r vs r - 1 and r + 1
    assert clear.mean() > 0.5, "too few decided ranks to test"
    np.testing.assert_array_equal(top.images[clear], images[clear])
    second = np.sort(flat, axis=1)[:, -2]  # each image's and filter's second-largest map value
    unique = distinct(peaks, [second])  # (N, C): a single peak
    decided = clear & np.take_along_axis(unique, images, axis=0)
    np.testing.assert_array_equal(top.positions[decided], positions[decided])
    span = np.nanmax(top.values) - np.nanmin(top.values)
    np.testing.assert_allclose(top.values[clear], values[clear], atol=span / 131068 + 1e-5 * np.abs(values).max())
    assert top.images.max() < count


@pytest.mark.slow
@pytest.mark.every_backend
def test_top_examples_of_the_probes_equal_an_independent_top_k(trained, tmp_path):
    model, probes = trained.model, trained.probes
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    callback = tb_cnnviz.CNNViz(str(tmp_path), probes, trained.labels, layers="all", model=model, strict=True)
    callback.log(0)
    run = tb_cnnviz.read_run(str(tmp_path))
    assert {key: value for key, value in run.header.top_examples.items() if key != "digest"} == {
        "k": 9, "layers": convs, "count": 32, "reference": "probes", "per_event": 256}
    outputs = layer_outputs(model, probes, convs)
    for layer in convs:
        top = run.event(0).top_examples(layer)
        assert top.images.shape == (9, outputs[layer].shape[-1]) and top.reference == "probes"
        check_against_independent(top, outputs[layer], 32)


@pytest.mark.slow
def test_a_reference_set_is_stored_once_and_searched_every_kth_event(trained, tmp_path):
    model = trained.model
    reference, _, _ = shapes(100, size=40, seed=11)
    callback = tb_cnnviz.CNNViz(str(tmp_path), trained.probes[:4], layers=["block2_conv2", "block3_conv2"],
                                reference=reference, filters_every=2, model=model, strict=True)
    for step in range(5):
        callback.log(step)
    callback.log(4, "eval")
    run = tb_cnnviz.read_run(str(tmp_path))
    assert run.header.top_examples["reference"] == "reference" and run.header.top_examples["count"] == 100
    np.testing.assert_allclose(run.reference_images, reference, atol=0.5 / 255 + 1e-6)
    outputs = layer_outputs(model, reference, ["block3_conv2"])
    for step in range(5):
        event = run.event(step)
        if step % 2:  # every 2nd event, counting the first
            with pytest.raises(KeyError):
                event.top_examples("block3_conv2")
            continue
        top = event.top_examples("block3_conv2")
        assert top.images.shape[0] == 9 and top.reference == "reference"
        check_against_independent(top, outputs["block3_conv2"], 100)
    check_against_independent(run.event(4, "eval").top_examples("block3_conv2"), outputs["block3_conv2"], 100)


@pytest.mark.slow
def test_a_wide_layers_filters_take_turns_and_each_turn_equals_the_whole_top_k(trained, tmp_path):
    model, probes = trained.model, trained.probes[:12]
    callback = tb_cnnviz.CNNViz(str(tmp_path / "wide"), probes, layers=["block1_conv1", "block3_conv2"],
                                max_example_filters=24, model=model, strict=True)
    for step in range(6):
        callback.log(step)
    run = tb_cnnviz.read_run(str(tmp_path / "wide"))
    outputs = np.asarray(layer_outputs(model, probes, ["block3_conv2"])["block3_conv2"])
    filters = outputs.shape[-1]  # 64: in turns of 24, 24 and 16
    for step in range(6):
        top = run.event(step).top_examples("block3_conv2")
        assert top.first == [0, 24, 48][step % 3] and top.images.shape == (9, [24, 24, 16][step % 3])
        check_against_independent(top, outputs[..., top.first:top.first + top.images.shape[1]], 12)
        narrow = run.event(step).top_examples("block1_conv1")  # 16 filters: all at every event
        assert narrow.first == 0 and narrow.images.shape[1] == run.header.filters("block1_conv1") <= 24
        with pytest.raises(KeyError, match="take turns"):
            top.of((top.first + top.images.shape[1]) % filters)
    client = wsgi_client(str(tmp_path))
    status, _, body = client.get("top_examples", run="wide", step=0, layer="block3_conv2", channel=30)
    assert status == 404 and json.loads(body)["valid"] == [1, 4]
    status, _, body = client.get("top_examples", run="wide", step=1, layer="block3_conv2", channel=30)
    assert status == 200 and json.loads(body)["images"] == run.event(1).top_examples("block3_conv2").of(30)["images"]


@pytest.mark.slow
def test_patches_are_the_receptive_field_around_the_peak_padded_with_zeros(tmp_path):
    images, labels, _ = shapes(6, size=32, seed=4)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, name="c1"),
                              keras.layers.MaxPooling2D(2), keras.layers.Conv2D(5, 3, padding="same", name="c2"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, activation="softmax")])
    callback = tb_cnnviz.CNNViz(str(tmp_path), images, labels, layers="all", model=model, strict=True)
    callback.log(0)
    run = tb_cnnviz.read_run(str(tmp_path))
    # c2, by hand: c1 (3x3 valid) sees 3 pixels centred on 1.5; the 2x2 pool 4, jump 2, centred on 2;
    # c2 (3x3 same, one pixel of padding before) 4 + 2 * 2 = 8, centred on 2 + (1 - 1) * 2 = 2
    field = run.header.receptive_fields["c2"]
    assert field == [8, 8, 2, 2, 2.0, 2.0]
    event = run.event(0)
    top = event.top_examples("c2")
    for channel in range(5):
        patches, boxes = event.top_example_patches("c2", channel)
        assert patches.shape == (6, 8, 8, 3)
        for rank, (patch, box) in enumerate(zip(patches, boxes)):
            y, x = top.positions[rank, channel]
            y0, x0, y1, x1 = box
            assert (y1 - y0, x1 - x0) == (8, 8)
            # the box is centred on the unit: its centre is start + position * jump
            assert (y0 + y1) / 2 == field[4] + y * 2 and (x0 + x1) / 2 == field[5] + x * 2
            image = run.probes[top.images[rank, channel]]
            inside = np.zeros((8, 8), bool)
            inside[max(0, -y0):min(8, 32 - y0), max(0, -x0):min(8, 32 - x0)] = True
            np.testing.assert_array_equal(patch[~inside], 0)
            np.testing.assert_array_equal(patch[inside], image[max(0, y0):min(32, y1), max(0, x0):min(32, x1)].reshape(-1, 3))


def test_a_layer_the_receptive_field_cannot_follow_gives_the_whole_image():
    images = np.random.default_rng(0).random((3, 12, 12, 3), np.float32)
    top = top_examples.TopExamples(np.array([[0], [2]]), np.array([[[1, 1]], [[0, 3]]]), np.array([[2.0], [1.0]], np.float32),
                             "probes")
    patches, boxes = cropped_patches(dict(enumerate(images)), (12, 12), top, 0, None)
    assert boxes == [(0, 0, 12, 12)] * 2
    np.testing.assert_array_equal(patches, images[[0, 2]])
    # a field larger than the image along an axis: that axis whole
    _, boxes = cropped_patches(dict(enumerate(images)), (12, 12), top, 0, [20, 3, 4, 1, 5.5, 1.5])
    assert boxes == [(0, 1, 12, 4), (0, 3, 12, 6)]  # x: centred on 1.5 + x, 3 wide


def test_top_examples_pack_exactly_and_refuse_damage():
    rng = np.random.default_rng(2)
    images, positions = rng.integers(0, 300, (9, 7)), rng.integers(0, 70000, (9, 7))
    values = rng.normal(size=(9, 7)).astype(np.float32)
    values[3, 2] = np.nan
    header, payload = top_examples.pack_top_examples(images, positions, values, (200, 350), 300, "reference")
    top = top_examples.unpack_top_examples(json.loads(header), payload)
    np.testing.assert_array_equal(top.images, images)
    np.testing.assert_array_equal(top.positions, np.stack([positions // 350, positions % 350], axis=-1))
    span = np.nanmax(values) - np.nanmin(values)
    assert np.isnan(top.values[3, 2])
    np.testing.assert_allclose(np.nan_to_num(top.values), np.nan_to_num(values), atol=span / 131068 + 1e-6)
    with pytest.raises(metadata.FormatError, match="damaged"):
        top_examples.unpack_top_examples(json.loads(header), payload[:-3])
    with pytest.raises(metadata.FormatError, match="damaged"):
        top_examples.unpack_top_examples({**json.loads(header), "k": 8}, payload)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A run with top examples from the probes and feature visualisations of 2 channels per layer
    at the first of every 2 events, served in process."""
    logdir = str(tmp_path_factory.mktemp("filters"))
    images, labels, _ = shapes(48, size=32, seed=5)
    keras.utils.set_random_seed(0)
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(os.path.join(logdir, "run"), images[:6], labels[:6], layers=LAYERS, feature_vis=2,
                                filters_every=2, class_names=list(SHAPE_NAMES), strict=True)
    model.fit(images, labels, epochs=3, batch_size=16, verbose=0, callbacks=[callback])
    return wsgi_client(logdir), tb_cnnviz.read_run(os.path.join(logdir, "run"))


@pytest.mark.slow
def test_top_example_routes_serve_what_the_reader_reads(served):
    client, run = served
    step = run.steps()[-1]
    for layer in LAYERS:
        top = run.event(step).top_examples(layer)
        for channel in (0, run.header.filters(layer) - 1):
            params = {"run": "run", "step": step, "layer": layer, "channel": channel}
            status, _, body = client.get("top_examples", **params)
            assert status == 200, body
            answer = json.loads(body)
            patches, boxes = run.event(step).top_example_patches(layer, channel)
            assert answer["images"] == top.images[:, channel].tolist()
            assert answer["positions"] == top.positions[:, channel].tolist()
            np.testing.assert_allclose(answer["values"], top.values[:, channel], rtol=1e-6)
            assert answer["boxes"] == [list(box) for box in boxes] and answer["size"] == list(patches.shape[1:3])
            status, _, body = client.get("top_examples.npy", **params)
            np.testing.assert_array_equal(npy(body), patches)
            status, _, body = client.get("top_examples.png", **params)
            strip = png(body).astype(np.float32)
            k, h, w, c = patches.shape
            assert strip.shape == (h, k * w, c)
            lo, hi = patches.min(), patches.max()
            expected = np.concatenate(list(patches), axis=1)
            np.testing.assert_allclose(strip / 255 * (hi - lo) + lo, expected, atol=(hi - lo) / 255 * 0.51 + 1e-6)


@pytest.mark.slow
def test_feature_visualisations_are_served_at_the_steps_that_have_them(served):
    client, run = served
    steps = run.steps()
    with_vis = steps[::2]  # every 2nd event, counting the first
    for step in steps:
        status, _, body = client.get("feature_vis.npy", run="run", step=step, layer="sep2", channel=run.header.feature_vis["sep2"][1])
        if step not in with_vis:
            assert status == 404 and json.loads(body)["valid"] == with_vis
            continue
        images, channels = run.event(step).feature_vis("sep2")
        assert channels == run.header.feature_vis["sep2"] == run.header.channels["sep2"][:2]
        np.testing.assert_array_equal(npy(body), images[1])
        assert images.shape == (2, 32, 32, 3)
        status, _, body = client.get("feature_vis", run="run", step=step, layer="sep2", channel=channels[0])
        assert status == 200 and png(body).shape == (32, 32, 3)
    status, _, body = client.get("feature_vis", run="run", step=steps[0], layer="sep2", channel=run.header.channels["sep2"][2])
    assert status == 404 and json.loads(body)["valid"] == run.header.feature_vis["sep2"]
    status, _, body = client.get("feature_vis", run="run", step=steps[0], layer="dw3", channel=0)
    assert status == 404 and json.loads(body)["valid"] == LAYERS


@pytest.mark.slow
def test_a_step_without_top_examples_answers_404_listing_the_steps_with_them(served):
    client, run = served
    status, _, body = client.get("top_examples", run="run", step=run.steps()[0], layer="conv4", channel=99)
    assert status == 404 and json.loads(body)["valid"][-1] == run.header.filters("conv4") - 1
    status, _, body = client.get("top_examples", run="run", step=run.steps()[0], layer="dw3", channel=0)
    assert status == 404 and json.loads(body)["valid"] == LAYERS


@pytest.mark.slow
def test_layer_summary_and_filter_stats_are_the_statistics_over_steps(served):
    client, run = served
    status, _, body = client.get("layer_summary", run="run")
    answer = json.loads(body)
    steps, summary = run.layer_summary()
    assert answer["steps"] == steps.tolist()
    assert [layer["layer"] for layer in answer["layers"]] == list(run.header.conv_layers)
    for layer in answer["layers"]:
        path = layer["layer"]
        assert layer["filters"] == run.header.filters(path) and layer["logged"] == (path in LAYERS)
        for key, values in summary[path].items():
            np.testing.assert_allclose(np.array(layer[key], float), values, rtol=1e-6, equal_nan=True)
        # the figures from the statistics themselves, recomputed here
        dead = np.array([np.mean(run.event(s).stats(path)["dead_fraction"] >= 1 - 1e-4) for s in steps])
        np.testing.assert_allclose(layer["dead_fraction"], dead)
        norms = np.array([run.event(s).stats(path)["norm"].mean() for s in steps])
        np.testing.assert_allclose(layer["norm_trend"], norms / norms[0], rtol=1e-5)
        drift = np.array([run.event(s).stats(path)["cos_to_first"].mean() for s in steps])
        np.testing.assert_allclose(layer["drift"], drift, rtol=1e-5, atol=1e-7)
        assert layer["change"][0] is None
    for layer, channel in (("dw3", 3), ("conv4", 0)):
        status, _, body = client.get("filter_stats", run="run", layer=layer, channel=channel)
        answer = json.loads(body)
        assert answer["names"] == list(tensors.STAT_NAMES) and answer["steps"] == steps.tolist()
        matrix = client.ok("filter_stats.npy", run="run", layer=layer, channel=channel).npy()
        assert matrix.shape == (5, len(steps))
        for row, name in enumerate(tensors.STAT_NAMES):
            drift = client.ok("filter_drift.npy", run="run", layer=layer, stat=name).npy()
            np.testing.assert_array_equal(matrix[row], drift[channel])
            np.testing.assert_array_equal(np.array(answer["stats"][name], float), np.where(np.isnan(matrix[row]), np.nan, matrix[row]))
    status, _, body = client.get("filter_stats", run="run", layer="conv4", channel=16)
    assert status == 404 and json.loads(body)["valid"] == list(range(16))


@pytest.mark.parametrize("kwargs, message", [
    ({"reference": np.zeros((4, 16, 16, 3))}, r"reference images must be shaped as the probe images \(32, 32, 3\)"),
    ({"reference": np.zeros((1025, 2, 2, 3))}, "between 1 and 1024 reference, got 1025"),
    ({"feature_vis": -1}, "feature_vis must be how many"),
    ({"feature_vis": 1.5}, "feature_vis must be how many"),
    ({"filters_every": 0}, "filters_every must be a positive int"),
    ({"max_example_filters": 0}, r"max_example_filters \(or None\) must be a positive int"),
])
def test_bad_filter_options_say_what_to_give(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tb_cnnviz.CNNViz(str(tmp_path), np.zeros((4, 32, 32, 3), np.float32), **kwargs)


@pytest.mark.slow
def test_a_restart_with_other_reference_images_leaves_no_stale_examples_behind(tmp_path):
    """Read from the event files. (TensorBoard's Python loader serves a step's first write where
    a restart rewrote it, of every kind alike: the routes then show the first run's steps.)"""
    images, labels, _ = shapes(40, size=32, seed=7)
    keras.utils.set_random_seed(0)
    model = small_cnn()
    first = tb_cnnviz.CNNViz(str(tmp_path / "run"), images[:3], reference=images[:20], filters_every=2,
                             layers=["conv4"], feature_vis=1, model=model, strict=True)
    for step in range(4):  # top examples and feature visualisations at steps 0 and 2
        first.log(step)
    with pytest.warns(UserWarning, match="replace the earlier ones"):
        again = tb_cnnviz.CNNViz(str(tmp_path / "run"), images[:3], reference=images[20:], filters_every=3,
                                 layers=["conv4"], feature_vis=1, model=model, strict=True)
        for step in range(4):  # at steps 0 and 3: step 2 keeps the first run's summaries on disk
            again.log(step)
    run = tb_cnnviz.read_run(str(tmp_path / "run"))
    np.testing.assert_allclose(run.reference_images, images[20:], atol=0.5 / 255 + 1e-6)
    with pytest.raises(KeyError, match="earlier run"):
        run.event(2).top_examples("conv4")
    with pytest.raises(KeyError, match="earlier run"):
        run.event(2).feature_vis("conv4")
    check_against_independent(run.event(3).top_examples("conv4"), layer_outputs(model, images[20:], ["conv4"])["conv4"], 20)


@pytest.mark.slow
def test_images_of_four_channels_and_a_failing_visualisation_still_log_every_event(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.random((6, 16, 16, 4), np.float32)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:2], reference=images, feature_vis=1, filters_every=1,
                                layers=["c1", "c2"], model=model)
    callback.log(0)
    recorder = callback._recorder
    visualise = recorder._visualise

    def fails_once():  # a fault in the visualisation (say, out of memory) at step 1 only
        monkeypatch.setattr(recorder, "_visualise", visualise)
        raise MemoryError("no room for the ascent")

    monkeypatch.setattr(recorder, "_visualise", fails_once)
    with pytest.warns(UserWarning, match="the feature visualisation at train step 1 failed and is left out"):
        callback.log(1)
    callback.log(2)
    run = tb_cnnviz.read_run(str(tmp_path))
    assert run.steps() == [0, 1, 2] and run.reference_images.shape == (6, 16, 16, 1)  # the channel mean
    patches, _ = run.event(2).top_example_patches("c2", 1)
    assert patches.shape[0] == 6 and patches.shape[-1] == 1
    assert run.event(2).feature_vis("c2")[0].shape == (1, 16, 16, 1)
    with pytest.raises(KeyError):
        run.event(1).feature_vis("c2")
