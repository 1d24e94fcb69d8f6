"""End to end: a real `tensorboard` process serves the plugin, in both load modes."""

import json
import os
import time
import urllib.parse

import keras
import numpy as np
import pytest

import tb_cnnviz
from tests.helpers import small_cnn
from tests.plugin_helpers import PREFIX, npy, tensorboard_server, write_logs
from tests.tensorboard_process import http_get
from tb_cnnviz.datasets import shapes


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    logs = root / "logs"
    # more events than TensorBoard keeps per series of a third-party plugin by default (10)
    write_logs(str(logs), epochs=12)
    return str(logs)


def fetch(base, route, **params):
    return http_get(f"{base}{PREFIX}/{route}?{urllib.parse.urlencode(params)}")


@pytest.mark.parametrize("load_fast", [False, True], ids=["python-loader", "rust-data-server"])
def test_every_route_in_a_real_tensorboard(logdir, load_fast):
    reader = tb_cnnviz.read_run(os.path.join(logdir, "alpha"))
    steps = reader.steps()
    assert len(steps) == 13
    with tensorboard_server(logdir, load_fast) as base:
        status, _, body = http_get(base + "/data/plugins_listing")
        listing = json.loads(body)["cnnviz"]
        assert listing["enabled"] and listing["tab_name"] == "CNN Viz"
        assert listing["loading_mechanism"]["module_path"].endswith("index.js")
        status, headers, body = fetch(base, "index.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        runs = json.loads(fetch(base, "runs")[2])["runs"]
        alpha = next(r for r in runs if r["run"] == "alpha")
        assert alpha["steps"]["train"] == steps  # every logged step, not 10 samples
        step = steps[-1]
        event = reader.event(step)
        common = {"run": "alpha", "step": step}
        checks = {
            ("gradcam.npy", ()): event.gradcam,
            ("gradcam.npy", (("method", "gradcam++"),)): event.gradcam_pp,
            ("activations.npy", (("layer", "dw3"),)): event.activations("dw3")[0],
            ("filters.npy", (("layer", "conv1"),)): event.filters("conv1")[0],
            ("stats.npy", (("layer", "sep2"),)): np.stack(list(event.stats("sep2").values())),
            ("probes.npy", ()): reader.probes,
        }
        for (route, extra), expected in checks.items():
            status, _, body = fetch(base, route, **common, **dict(extra))
            assert status == 200, (route, body[:200])
            np.testing.assert_array_equal(npy(body), expected)
        status, _, body = fetch(base, "filter_drift.npy", run="alpha", layer="conv4", stat="norm")
        np.testing.assert_array_equal(npy(body), reader.filter_drift("conv4", "norm")[1])
        for route, extra in (("event", {}), ("gradcam", {"sample": 1}), ("probe", {"sample": 0}),
                             ("activations", {"layer": "conv1", "sample": 2, "channel": 0}),
                             ("filters", {"layer": "conv4"}), ("stats", {"layer": "conv4"}),
                             ("faithfulness", {}), ("filter_drift", {"layer": "dw3", "stat": "dead_fraction"})):
            status, _, body = fetch(base, route, **common, **extra)
            assert status == 200, (route, body[:200])
        first = reader.event(steps[0])
        np.testing.assert_array_equal(npy(fetch(base, "gradcam.npy", run="alpha", step=steps[0])[2]), first.gradcam)
        status, headers, body = fetch(base, "gradcam", run="alpha", step="x", sample=0)
        assert status == 400 and headers["Content-Type"].startswith("application/json")
        status, _, body = fetch(base, "activations", run="../alpha", step=step, layer="conv1", sample=0)
        assert status == 404 and json.loads(body)["valid"] == ["alpha", "beta"]


def test_readme_npy_example_against_a_real_server(logdir):
    from tests.test_readme import python_blocks

    example = next(block for block in python_blocks() if "urlopen" in block)
    with tensorboard_server(logdir, load_fast=False) as base:
        code = example.replace("http://localhost:6006", base).replace("run=vgg_style_lr0.002", "run=alpha")
        namespace = {}
        exec(code, namespace)  # noqa: S102
    expected = tb_cnnviz.read_run(os.path.join(logdir, "alpha")).event(0).gradcam
    np.testing.assert_array_equal(namespace["maps"], expected)


def test_logdir_spec_names_runs_by_experiment(logdir):
    with tensorboard_server(logdir, load_fast=False, logdir_spec="exp") as base:
        runs = json.loads(fetch(base, "runs")[2])["runs"]
        assert [r["run"] for r in runs] == ["exp/alpha", "exp/beta"]
        reader = tb_cnnviz.read_run(os.path.join(logdir, "beta"))
        body = fetch(base, "gradcam.npy", run="exp/beta", step=reader.steps()[-1])[2]
        np.testing.assert_array_equal(npy(body), reader.event(reader.steps()[-1]).gradcam)


@pytest.mark.parametrize("load_fast", [False, True], ids=["python-loader", "rust-data-server"])
def test_a_run_still_being_written_is_served_as_it_grows(tmp_path, load_fast):
    logdir = str(tmp_path / "live")
    images, labels, _ = shapes(32, size=32, seed=6)
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(os.path.join(logdir, "live"), images[:3], labels[:3], strict=True)
    model.fit(images, labels, epochs=1, batch_size=32, verbose=0, callbacks=[callback])
    with tensorboard_server(logdir, load_fast) as base:
        def served_steps():
            runs = json.loads(fetch(base, "runs")[2])["runs"]
            return runs[0]["steps"]["train"] if runs else []

        assert served_steps() == [0, 1]
        model.fit(images, labels, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
        deadline = time.monotonic() + 60
        while served_steps() != [0, 1, 2, 3] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert served_steps() == [0, 1, 2, 3]
        reader = tb_cnnviz.read_run(os.path.join(logdir, "live"))
        body = fetch(base, "gradcam.npy", run="live", step=3)[2]
        np.testing.assert_array_equal(npy(body), reader.event(3).gradcam)
    keras.backend.clear_session()
