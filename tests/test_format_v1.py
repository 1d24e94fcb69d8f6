"""Format-1 runs written by an earlier tb_cnnviz (tests/data/v1/README.md), with and without
the step index: the reader and the plugin read them as that version did."""

import json
import os

import numpy as np
import pytest

import tb_cnnviz
from tests.plugin_helpers import wsgi_client

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "v1")
RUNS = ["indexed", "unindexed"]


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(DATA, "expected.npz")) as saved:
        return dict(saved)


@pytest.mark.parametrize("name", RUNS)
def test_the_reader_reads_format_1(expected, name):
    run = tb_cnnviz.read_run(os.path.join(DATA, name))
    np.testing.assert_array_equal(run.probes, expected["probes"])
    assert run.info == json.loads(str(expected["info"]))
    assert run.header.gradcam_layer == "conv4" and run.layers == ["conv1", "sep2", "dw3", "conv4"]
    for mode, steps in (("train", [0, 2, 4]), ("eval", [4])):
        assert run.steps(mode) == steps == expected[f"steps/{mode}"].tolist()
        for step in steps:
            event, key = run.event(step, mode), f"{mode}/{step}"
            np.testing.assert_array_equal(event.gradcam, expected[f"{key}/gradcam"])
            np.testing.assert_array_equal(event.gradcam_pp, expected[f"{key}/gradcam_pp"])
            assert event.predictions == json.loads(str(expected[f"{key}/predictions"]))
            assert event.faithfulness == expected[f"{key}/faithfulness"]
            for layer in run.layers:
                maps, channels = event.activations(layer)
                np.testing.assert_array_equal(maps, expected[f"{key}/activations/{layer}"])
                assert channels == expected[f"{key}/activation_channels/{layer}"].tolist()
                np.testing.assert_array_equal(event.nonfinite("activations", layer), expected[f"{key}/nonfinite/{layer}"])
                kernels, _, view = event.filters(layer)
                np.testing.assert_array_equal(kernels, expected[f"{key}/filters/{layer}"])
                assert view == str(expected[f"{key}/filter_view/{layer}"])
                np.testing.assert_array_equal(np.stack(list(event.stats(layer).values())),
                                              expected[f"{key}/stats/{layer}"])
        for layer in run.info["conv_layers"]:
            for stat in ("norm", "cos_to_first", "cos_to_prev", "mean_activation", "dead_fraction"):
                np.testing.assert_array_equal(run.filter_drift(layer, stat, mode)[1],
                                              expected[f"{mode}/drift/{layer}/{stat}"])


def test_the_plugin_serves_format_1_as_before(expected):
    client = wsgi_client(DATA)
    with open(os.path.join(DATA, "expected_answers.json")) as f:
        answers = json.load(f)
    for path, answer in answers.items():
        got = client.json(path)
        if path.startswith("runs"):  # every field that version served, with its value
            assert [run["run"] for run in got["runs"]] == RUNS
            for old, new in zip(answer["runs"], got["runs"]):
                assert {key: new[key] for key in old} == old
        else:
            assert got == answer, path
    for name in RUNS:
        for mode, step in (("train", 2), ("eval", 4)):
            key = f"{mode}/{step}"
            for route, params, value in (
                    ("gradcam.npy", {}, expected[f"{key}/gradcam"]),
                    ("gradcam.npy", {"method": "gradcam_pp"}, expected[f"{key}/gradcam_pp"]),
                    ("activations.npy", {"layer": "sep2"}, expected[f"{key}/activations/sep2"]),
                    ("filters.npy", {"layer": "conv1"}, expected[f"{key}/filters/conv1"]),
                    ("probes.npy", {}, expected["probes"])):
                np.testing.assert_array_equal(client.ok(route, run=name, mode=mode, step=step, **params).npy(), value)
