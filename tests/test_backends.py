"""The same answer on every Keras backend: a model's weights written under one backend and
loaded under each of TensorFlow, JAX and PyTorch (a subprocess each, tests/backend_run.py) give
events whose stored arrays agree, read back through the reader.

The bound (docs/guide/backends.md): every stored map within one quantisation step of its own
range (range / 255: a value that float rounding moves across a rounding boundary lands one
level away) plus 1e-3 of its largest value (tests.helpers.assert_maps_agree); predictions the same classes, probabilities within
1e-5; statistics within 1e-4 relative (1e-5 absolute); trust figures within 1e-3; top examples
the same images but where two peaks tie within 1e-4 of the layer's largest peak, and
the peaks within that. Not compared: the sanity check's
correlations (its random weights are drawn by each backend's own generator) and feature
visualisations (a 128-step gradient ascent that float rounding steers apart; each backend's are
checked to activate their filter in tests/test_feature_vis.py).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from tb_cnnviz import read_run
from tests.helpers import assert_maps_agree
from tests.tensorboard_process import ROOT
OTHERS = ("jax", "torch")
# the backend each model's weights are written under: every backend writes some
SAVED_UNDER = {"demo": "jax", "nested": "tensorflow", "multi_output": "torch"}

pytestmark = pytest.mark.slow


def start_under(backend, *arguments):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, "-m", "tests.backend_run", *map(str, arguments)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(backend, process):
    _, errors = process.communicate(timeout=900)
    assert process.returncode == 0, f"under {backend}: {errors[-3000:]}"


@pytest.fixture(scope="module", params=sorted(SAVED_UNDER))
def runs(request, tmp_path_factory):
    """{backend: Run} of one model's events, the weights written under SAVED_UNDER's backend."""
    folder = tmp_path_factory.mktemp(request.param)
    weights = folder / "model.weights.h5"
    finish(SAVED_UNDER[request.param], start_under(SAVED_UNDER[request.param], "save", request.param, weights))
    logging = {backend: start_under(backend, "log", request.param, weights, folder / backend)
               for backend in ("tensorflow", *OTHERS)}  # side by side: each is mostly one core's start-up
    for backend, process in logging.items():
        finish(backend, process)
    return {backend: read_run(str(folder / backend)) for backend in ("tensorflow", *OTHERS)}


def events(runs, backend):
    """[(TensorFlow's event, the backend's)] of both modes."""
    return [(runs["tensorflow"].event(0, mode), runs[backend].event(0, mode)) for mode in ("train", "eval")]


@pytest.mark.parametrize("backend", OTHERS)
def test_predictions_are_the_same(runs, backend):
    for expected, found in events(runs, backend):
        want, got = expected.predictions, found.predictions
        assert set(got) == set(want)
        for key, value in want.items():
            if key == "sanity_check":  # random weights of each backend's generator
                assert [layer for layer, _ in got[key]] == [layer for layer, _ in value]
                continue
            value = np.asarray(value)
            if value.dtype.kind == "f":
                np.testing.assert_allclose(got[key], value, atol=1e-5, err_msg=f"{backend} {key}")
            else:
                np.testing.assert_array_equal(got[key], value, err_msg=f"{backend} {key}")


@pytest.mark.parametrize("backend", OTHERS)
def test_maps_within_one_quantisation_step(runs, backend):
    for expected, found in events(runs, backend):
        where = f"{backend} {expected.mode}"
        assert_maps_agree(expected.gradcam, found.gradcam, (1, 2), f"{where} gradcam")
        assert_maps_agree(expected.gradcam_pp, found.gradcam_pp, (1, 2), f"{where} gradcam_pp")
        for sample in range(len(expected.gradcam)):
            classes = expected.gradcam_classes(sample)
            assert found.gradcam_classes(sample) == classes
            for class_index in classes:
                for method in ("gradcam", "gradcam_pp"):
                    assert_maps_agree(expected.gradcam_for(sample, class_index, method),
                                      found.gradcam_for(sample, class_index, method), None,
                                      f"{where} probe {sample} class {class_index} {method}")
        for layer in runs["tensorflow"].layers:
            maps, channels = expected.activations(layer)
            found_maps, found_channels = found.activations(layer)
            assert list(found_channels) == list(channels)
            assert_maps_agree(maps, found_maps, (2, 3), f"{where} {layer} activations")
            kernels, channels, view = expected.filters(layer)
            found_kernels, found_channels, found_view = found.filters(layer)
            assert (list(found_channels), found_view) == (list(channels), view)
            assert_maps_agree(kernels, found_kernels, (1, 2, 3), f"{where} {layer} filters")


@pytest.mark.parametrize("backend", OTHERS)
def test_statistics_and_trust_figures(runs, backend):
    for expected, found in events(runs, backend):
        for layer in runs["tensorflow"].layers:
            for name, values in expected.stats(layer).items():
                np.testing.assert_allclose(found.stats(layer)[name], values, rtol=1e-4, atol=1e-5,
                                           err_msg=f"{backend} {layer} {name}")
        for name, values in expected.metrics.items():
            np.testing.assert_allclose(found.metrics[name], values, atol=1e-3, err_msg=f"{backend} {name}")


@pytest.mark.parametrize("backend", OTHERS)
def test_top_examples_the_same_but_for_ties(runs, backend):
    for expected, found in events(runs, backend):
        for layer in runs["tensorflow"].layers:
            want, got = expected.top_examples(layer), found.top_examples(layer)
            values = want.values.astype(np.float64)
            tolerance = 1e-4 * np.max(np.abs(values))  # of the layer's scale
            np.testing.assert_allclose(got.values, values, rtol=0, atol=tolerance)
            tied = np.zeros(values.shape, bool)  # near a neighbour in rank: rounding may swap them
            tied[1:] |= np.abs(values[1:] - values[:-1]) <= tolerance
            tied[:-1] |= np.abs(values[:-1] - values[1:]) <= tolerance
            differ = got.images != want.images
            assert np.all(tied[differ]), f"{backend} {layer}: other images at untied ranks {np.argwhere(differ & ~tied)}"
