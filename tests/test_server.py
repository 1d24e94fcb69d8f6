"""End to end: a real `tensorboard` process serves the plugin, in both load modes."""

import os

import keras
import numpy as np
import pytest

import tb_cnnviz
from tb_cnnviz.datasets import shapes
from tests.helpers import small_cnn
from tests.http_api import npy, wait_for_runs
from tests.plugin_helpers import logged_steps, write_logs

pytestmark = pytest.mark.slow  # every test starts a `tensorboard`


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    logs = root / "logs"
    # more events than TensorBoard keeps per series of a third-party plugin by default (10)
    write_logs(str(logs), epochs=12)
    return str(logs)


@pytest.mark.parametrize("load_fast", [False, True], ids=["python-loader", "rust-data-server"])
def test_every_route_in_a_real_tensorboard(logdir, tensorboard_server, load_fast):
    reader = tb_cnnviz.read_run(os.path.join(logdir, "alpha"))
    steps = reader.steps()
    assert len(steps) == 13
    with tensorboard_server(logdir, load_fast, runs=logged_steps(logdir)) as base:
        listing = base.json("/data/plugins_listing")["cnnviz"]
        assert listing["enabled"] and listing["tab_name"] == "CNN Viz"
        assert listing["loading_mechanism"]["module_path"].endswith("index.js")
        status, headers, body = base.get("index.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        runs = base.json("runs")["runs"]
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
            status, _, body = base.get(route, **common, **dict(extra))
            assert status == 200, (route, body[:200])
            np.testing.assert_array_equal(npy(body), expected)
        status, _, body = base.get("filter_drift.npy", run="alpha", layer="conv4", stat="norm")
        np.testing.assert_array_equal(npy(body), reader.filter_drift("conv4", "norm")[1])
        for route, extra in (("event", {}), ("gradcam", {"sample": 1}), ("probe", {"sample": 0}),
                             ("activations", {"layer": "conv1", "sample": 2, "channel": 0}),
                             ("filters", {"layer": "conv4"}), ("stats", {"layer": "conv4"}),
                             ("faithfulness", {}), ("filter_drift", {"layer": "dw3", "stat": "dead_fraction"})):
            status, _, body = base.get(route, **common, **extra)
            assert status == 200, (route, body[:200])
        first = reader.event(steps[0])
        np.testing.assert_array_equal(base.ok("gradcam.npy", run="alpha", step=steps[0]).npy(), first.gradcam)
        status, headers, body = base.get("gradcam", run="alpha", step="x", sample=0)
        assert status == 400 and headers["Content-Type"].startswith("application/json")
        error = base.get("activations", run="../alpha", step=step, layer="conv1", sample=0).error(404)
        assert error["valid"] == ["alpha", "beta"]


def test_docs_npy_example_against_a_real_server(logdir, tensorboard_server):
    """The HTTP API page's Python example (tests/test_docs.py runs the other pages')."""
    from tests.test_docs import DOCS, python_blocks

    (example,) = python_blocks(DOCS / "http-api.md")
    assert "urlopen" in example
    with tensorboard_server(logdir, runs=logged_steps(logdir)) as server:
        code = example.replace("http://localhost:6006", server.base).replace("run=vgg_style_lr0.002", "run=alpha")
        namespace = {}
        exec(code, namespace)  # noqa: S102
    expected = tb_cnnviz.read_run(os.path.join(logdir, "alpha")).event(0).gradcam
    np.testing.assert_array_equal(namespace["maps"], expected)


def test_logdir_spec_names_runs_by_experiment(logdir, tensorboard_server):
    with tensorboard_server(logdir, logdir_spec="exp", runs=["exp/alpha", "exp/beta"]) as base:
        runs = base.json("runs")["runs"]
        assert [r["run"] for r in runs] == ["exp/alpha", "exp/beta"]
        reader = tb_cnnviz.read_run(os.path.join(logdir, "beta"))
        body = base.ok("gradcam.npy", run="exp/beta", step=reader.steps()[-1]).body
        np.testing.assert_array_equal(npy(body), reader.event(reader.steps()[-1]).gradcam)


@pytest.mark.parametrize("load_fast", [False, True], ids=["python-loader", "rust-data-server"])
def test_a_run_still_being_written_is_served_as_it_grows(tmp_path, tensorboard_server, load_fast):
    logdir = str(tmp_path / "live")
    images, labels, _ = shapes(32, size=32, seed=6)
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(os.path.join(logdir, "live"), images[:3], labels[:3], strict=True)
    model.fit(images, labels, epochs=1, batch_size=32, verbose=0, callbacks=[callback])
    with tensorboard_server(logdir, load_fast, runs={"live": [0, 1]}) as base:
        def served_steps():
            runs = base.json("runs")["runs"]
            return runs[0]["steps"]["train"] if runs else []

        assert served_steps() == [0, 1]
        model.fit(images, labels, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
        wait_for_runs(base, {"live": [0, 1, 2, 3]}, timeout=60)
        assert served_steps() == [0, 1, 2, 3]
        reader = tb_cnnviz.read_run(os.path.join(logdir, "live"))
        body = base.ok("gradcam.npy", run="live", step=3).body
        np.testing.assert_array_equal(npy(body), reader.event(3).gradcam)
    keras.backend.clear_session()
