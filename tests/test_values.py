"""What the callback logs equals independent computations on the same model and probes."""

import keras
import numpy as np
import pytest
import tensorflow as tf  # tf.image.resize: the independent resize the stored maps are checked against

import tb_cnnviz
from tests.backend_tools import class_scores, gradient, to_numpy
from tests.helpers import (
    cosine_distance_np, filter_rows, pearson, quantisation_ok, reference_cam,
    reference_gradients, small_cnn, stats_tolerance,
)
from tb_cnnviz.explanations import curves
from tb_cnnviz.explanations.cam import CAM_METHODS
from tb_cnnviz.storage import metadata

pytestmark = pytest.mark.every_backend  # what the model computes, on each backend (.ci/run)


class WeightHistory(keras.callbacks.Callback):
    """Filter rows of every conv layer at train begin and at each epoch end."""

    def __init__(self, layers):
        super().__init__()
        self.layers, self.history = layers, []

    def _record(self):
        self.history.append({l.name: filter_rows(l) for l in self.layers})

    def on_train_begin(self, logs=None):
        self._record()

    def on_epoch_end(self, epoch, logs=None):
        self._record()


@pytest.fixture(scope="module")
def logged(tmp_path_factory, data):
    keras.utils.set_random_seed(1)
    images, labels, _ = data
    model = small_cnn()
    convs = [model.get_layer(n) for n in ("conv1", "sep2", "dw3", "conv4")]
    history = WeightHistory(convs)
    logdir = tmp_path_factory.mktemp("values")
    callback = tb_cnnviz.CNNViz(str(logdir), images[:6], labels[:6], max_channels=5, layers="all",
                                class_names=["sq", "disc", "tri", "cross"], strict=True)
    model.fit(images, labels, epochs=3, batch_size=32, verbose=0, callbacks=[history, callback])
    run = tb_cnnviz.read_run(str(logdir))
    return model, images[:6], labels[:6], run, history.history


@pytest.mark.slow
def test_steps_follow_the_optimizer(logged):
    model, _, _, run, _ = logged
    assert run.steps("train") == [0, 3, 6, 9]
    assert run.steps("eval") == []
    assert int(model.optimizer.iterations.numpy()) == 9


@pytest.mark.slow
def test_probe_images_and_run_info(logged):
    _, probes, labels, run, _ = logged
    assert quantisation_ok(run.probes, probes, (1, 2, 3))
    assert run.info["labels"] == labels.tolist()
    assert run.info["class_names"] == ["sq", "disc", "tri", "cross"]
    assert run.layers == ["conv1", "sep2", "dw3", "conv4"]
    assert run.info["gradcam_layer"] == "conv4"
    assert run.info["channels"]["conv4"] == [0, 4, 8, 11, 15]  # spread over 16, fixed


@pytest.mark.slow
def test_activations_equal_the_layers_true_outputs(logged):
    model, probes, _, run, _ = logged
    event = run.event(run.steps()[-1])
    for name in run.layers:
        true = to_numpy(keras.Model(model.inputs, model.get_layer(name).output)(probes))
        maps, channels = event.activations(name)
        true = true[..., channels].transpose(0, 3, 1, 2)
        assert maps.shape == true.shape
        assert quantisation_ok(maps, true, (2, 3)), name


@pytest.mark.slow
def test_predictions_equal_the_model(logged):
    model, probes, labels, run, _ = logged
    probabilities = model.predict(probes, verbose=0)
    predictions = run.event(run.steps()[-1]).predictions
    assert predictions["predicted"] == probabilities.argmax(1).tolist()
    np.testing.assert_allclose(predictions["probability"], probabilities.max(1), rtol=1e-4, atol=1e-6)
    assert predictions["label"] == labels.tolist()
    assert predictions["target"] == predictions["predicted"]
    drops = np.asarray(predictions["target_probability"]) - predictions["masked_probability"]
    np.testing.assert_allclose(predictions["faithfulness_drop"], drops, atol=1e-6)
    assert run.event(run.steps()[-1]).faithfulness == pytest.approx(drops.mean(), abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("method, attribute", [("gradcam", "gradcam"), ("gradcam++", "gradcam_pp")])
def test_gradcam_matches_a_reference_implementation(logged, method, attribute):
    model, probes, _, run, _ = logged
    event = run.event(run.steps()[-1])
    targets = np.asarray(event.predictions["target"])
    kernel, bias = model.get_layer("head").get_weights()
    acts, grads = reference_gradients(
        model, probes, model.get_layer("conv4").output, lambda f: keras.ops.add(keras.ops.matmul(f, kernel), bias), targets)
    expected = reference_cam(acts, grads, method, probes.shape[1:3])
    logged_maps = getattr(event, attribute)
    assert logged_maps.shape == expected.shape
    assert pearson(logged_maps, expected) >= 0.999
    assert quantisation_ok(logged_maps, expected, (1, 2)) or pearson(logged_maps, expected) >= 0.9999
    public = (tb_cnnviz.gradcam if method == "gradcam" else tb_cnnviz.gradcam_plus_plus)(
        model, probes, class_index=targets)
    assert public.dtype == np.float32 and public.min() >= 0
    assert quantisation_ok(logged_maps, public, (1, 2))



@pytest.mark.slow
@pytest.mark.parametrize("method, layer", [  # and LayerCAM at an early layer, what it is for
    *((method, layer) for layer in ("conv4", "sep2") for method in CAM_METHODS), ("layercam", "conv1")])
def test_explain_matches_a_reference_implementation(logged, method, layer):
    """Each method's maps against its formula in NumPy, on the activations and gradients taken
    with the backend's own tools (tests/helpers.reference_cam), each probe's map on its own: at
    sep2, where the gradients vary over the map, the methods differ from one another by 5 % to
    100x of a map's largest value; each agrees with its own formula within 1e-6 of it."""
    model, probes, _, _, _ = logged
    targets = model.predict(probes, verbose=0).argmax(1)
    kernel, bias = model.get_layer("head").get_weights()
    acts, grads = reference_gradients(
        model, probes, model.get_layer(layer).output, lambda f: keras.ops.add(keras.ops.matmul(f, kernel), bias), targets)
    expected = reference_cam(acts, grads, method, probes.shape[1:3])
    _assert_maps_match(tb_cnnviz.explain(model, probes, method, layer=layer), expected)


def _logits(model):
    """images -> the pre-softmax class scores of small_cnn (the scores the methods differentiate)."""
    features = keras.Model(model.inputs, model.layers[-2].output)
    kernel, bias = model.get_layer("head").get_weights()
    return lambda x: keras.ops.add(keras.ops.matmul(features(x, training=False), kernel), bias)


def _assert_maps_match(found, expected, share=1e-3):
    """Each map: Pearson >= 0.99 and within `share` of its largest value."""
    assert found.dtype == np.float32 and found.shape == expected.shape and found.min() >= 0
    for index, (one, reference) in enumerate(zip(found, expected)):
        assert np.ptp(reference) > 0, f"probe {index}: the reference map is flat, which tests nothing"
        assert pearson(one, reference) >= 0.99, f"probe {index}: {pearson(one, reference):.4f}"
        np.testing.assert_allclose(one, reference, rtol=0, atol=share * reference.max(), err_msg=f"probe {index}")


@pytest.mark.slow
@pytest.mark.parametrize("max_channels", [256, 5])
def test_scorecam_matches_its_definition_channel_by_channel(logged, max_channels):
    """Score-CAM written out: each channel's upsampled map scaled to [0, 1] masks the image; its
    weight is the class's probability (the softmax) on the masked image; with fewer channels
    than the layer's 16, those of largest spatial variance per image."""
    model, probes, _, _, _ = logged
    targets = model.predict(probes, verbose=0).argmax(1)
    acts = to_numpy(keras.Model(model.inputs, model.get_layer("conv4").output)(probes, training=False))
    maps = []
    for image, activations, target in zip(probes, acts, targets):
        kept = np.argsort(-activations.var(axis=(0, 1)), kind="stable")[:max_channels]
        masks = tf.image.resize(activations[..., kept], probes.shape[1:3], method="bilinear").numpy()
        low, high = masks.min(axis=(0, 1)), masks.max(axis=(0, 1))
        masks = np.where(high > low, (masks - low) / np.where(high > low, high - low, 1), 0)
        masked = image[None] * np.moveaxis(masks, 2, 0)[..., None]
        weights = model.predict(masked.astype(np.float32), verbose=0)[:, target]
        maps.append(np.maximum((activations[..., kept] * weights).sum(-1), 0))
    expected = tf.image.resize(np.stack(maps)[..., None], probes.shape[1:3], method="bilinear").numpy()[..., 0]
    _assert_maps_match(tb_cnnviz.explain(model, probes, "scorecam", max_channels=max_channels), expected)


@pytest.mark.slow
def test_smoothgrad_matches_its_definition(logged):
    """The mean input gradient of the class logit over 20 copies with noise of 0.2 x (max - min),
    drawn as the docstring says, taken with the backend's own gradients."""
    model, probes, _, _, _ = logged
    targets = model.predict(probes, verbose=0).argmax(1)
    spread = 0.2 * (probes.max(axis=(1, 2, 3)) - probes.min(axis=(1, 2, 3)))
    draws = np.random.default_rng(0).normal(size=(20, *probes.shape)).astype(np.float32)
    logits = _logits(model)
    total = np.zeros(probes.shape)
    for draw in draws:
        total += gradient(lambda x: class_scores(logits(x), targets), probes + draw * spread[:, None, None, None])[1]
    _assert_maps_match(tb_cnnviz.explain(model, probes, "smoothgrad"), np.abs(total / 20).max(-1))


@pytest.mark.slow
@pytest.mark.parametrize("baseline", ["black", "blur"])
def test_integrated_gradients_match_their_definition_and_sum_to_the_score_change(logged, baseline):
    """(x - baseline) times the path-averaged gradient (32 steps, trapezoid rule), whose sum is
    the logit's change from the baseline (completeness, within the rule's error)."""
    model, probes, _, _, _ = logged
    targets = model.predict(probes, verbose=0).argmax(1)
    # the blurred baseline as the library makes it (its resizing is tests/test_resizing.py's): where
    # the image is close to its blur, another resize's rounding would move (x - baseline) by 1 %
    start = np.zeros_like(probes) if baseline == "black" else to_numpy(curves.blur(probes))
    logits = _logits(model)
    score = lambda x: class_scores(logits(x), targets)  # noqa: E731
    path = [gradient(score, start + fraction * (probes - start))[1] for fraction in np.linspace(0, 1, 33)]
    average = (np.sum(path, axis=0) - (path[0] + path[-1]) / 2) / 32
    attributions = (probes - start) * average
    change = to_numpy(score(probes)) - to_numpy(score(start.astype(np.float32)))
    np.testing.assert_allclose(attributions.sum(axis=(1, 2, 3)), change, rtol=0.05, atol=1e-3)
    # a ReLU that float rounding flips at one point of the path (the library's batched pass against
    # these single steps) moves a pixel by up to 2e-3 of the map's largest value (JAX, blur)
    _assert_maps_match(tb_cnnviz.explain(model, probes, "integrated_gradients", baseline=baseline),
                       np.abs(attributions).max(-1), share=5e-3)


@pytest.mark.slow
def test_filter_statistics_equal_numpy_on_get_weights(logged):
    model, probes, _, run, history = logged
    steps = run.steps()
    for index, step in enumerate(steps):
        event = run.event(step)
        for name in ("conv1", "sep2", "dw3", "conv4"):
            stats = event.stats(name)
            rows = history[index][name]
            norms = np.linalg.norm(rows, axis=1)
            np.testing.assert_allclose(stats["norm"], norms, rtol=1e-5, atol=stats_tolerance(norms))
            to_first = np.clip(cosine_distance_np(rows, history[0][name]), 0, 2)
            np.testing.assert_allclose(stats["cos_to_first"], to_first, atol=2e-6 + stats_tolerance(to_first))
            if index == 0:
                assert np.all(np.isnan(stats["cos_to_prev"]))
            else:
                to_prev = np.clip(cosine_distance_np(rows, history[index - 1][name]), 0, 2)
                np.testing.assert_allclose(stats["cos_to_prev"], to_prev, atol=2e-6 + stats_tolerance(to_prev))
    # activation statistics at the last step, where the model still has those weights
    event = run.event(steps[-1])
    for name in ("conv1", "sep2", "dw3", "conv4"):
        true = to_numpy(keras.Model(model.inputs, model.get_layer(name).output)(probes))
        stats = event.stats(name)
        means, dead = true.mean(axis=(0, 1, 2)), (true.max(axis=(1, 2)) <= 0).mean(0)
        np.testing.assert_allclose(stats["mean_activation"], means, rtol=1e-4, atol=1e-6 + stats_tolerance(means))
        np.testing.assert_allclose(stats["dead_fraction"], dead, atol=stats_tolerance(dead))


@pytest.mark.slow
def test_filter_drift_is_the_stat_over_steps(logged):
    _, _, _, run, _ = logged
    steps, matrix = run.filter_drift("sep2", "cos_to_first")
    assert steps.tolist() == run.steps()
    assert matrix.shape == (12, len(steps))
    assert np.all(matrix[:, 0] < 1e-6) and np.all(matrix[:, -1] > 1e-6)


@pytest.mark.slow
def test_filter_images_equal_the_kernels(logged):
    model, _, _, run, _ = logged
    event = run.event(run.steps()[-1])
    kernels, channels, view = event.filters("conv1")
    assert view == "kernel" and channels == list(range(8))
    true = model.get_layer("conv1").get_weights()[0].transpose(3, 0, 1, 2)
    assert quantisation_ok(kernels, true, (1, 2, 3))
    kernels, channels, view = event.filters("conv4")
    assert view == "mean_over_inputs"
    true = model.get_layer("conv4").get_weights()[0].mean(axis=2).transpose(2, 0, 1)[channels][..., None]
    assert quantisation_ok(kernels, true, (1, 2, 3))


@pytest.mark.slow
def test_event_is_compact(logged):
    _, _, _, run, _ = logged
    import os
    size = sum(os.path.getsize(os.path.join(run.path, f)) for f in os.listdir(run.path) if "tfevents" in f)
    assert size / len(run.steps()) < 300_000
    assert metadata.FORMAT_VERSION == run.info["version"]


@pytest.mark.slow
def test_layers_with_large_maps_log_fewer_channels(tmp_path):
    model = small_cnn(size=64)  # conv1 maps 64x64, the others 32x32
    probes = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    logged = {}
    for options in ({}, {"max_layer_pixels": 2048}, {"max_layer_pixels": 500}, {"max_layer_pixels": None},
                    {"max_channels": "all"}):
        logdir = str(tmp_path / str(len(logged)))
        tb_cnnviz.CNNViz(logdir, probes, **options, layers="all", model=model, strict=True).log(0)
        run = tb_cnnviz.read_run(logdir)
        event = run.event(0)
        logged[str(options)] = [(len(event.activations(layer)[1]), event.activations(layer)[0].shape[-1])
                                for layer in run.layers]
        assert run.info["filter_channels"]["conv4"] == list(range(16))  # filters are not limited
        for layer, factor in run.header.downsampled.items():  # stored area-downsampled by an integer factor
            maps, channels = event.activations(layer)
            true = to_numpy(keras.Model(model.inputs, model.get_layer(layer).output)(probes))[..., channels]
            size = maps.shape[-2:]
            assert size == (true.shape[1] // factor, true.shape[2] // factor)
            expected = tf.image.resize(true, size, method="area").numpy().transpose(0, 3, 1, 2)
            assert quantisation_ok(maps, expected, (2, 3)), (options, layer)
    assert run.layers == ["conv1", "sep2", "dw3", "conv4"]
    assert logged == {  # (channels, stored width) per layer
        "{}": [(1, 64), (4, 32), (4, 32), (4, 32)],  # "auto": <= 4096 pixels per probe and layer
        "{'max_layer_pixels': 2048}": [(2, 32), (2, 32), (2, 32), (2, 32)],  # conv1 stored at 32x32
        "{'max_layer_pixels': 500}": [(1, 21), (1, 16), (1, 16), (1, 16)],  # 64 // 3, 32 // 2
        "{'max_layer_pixels': None}": [(8, 64), (12, 32), (16, 32), (16, 32)],  # max_channels=16 alone
        "{'max_channels': 'all'}": [(8, 64), (12, 32), (24, 32), (16, 32)],  # every channel: no pixel limit then
    }
