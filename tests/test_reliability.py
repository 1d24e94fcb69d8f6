"""Faults: training killed mid-write, then resumed into the same logdir."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tb_cnnviz
from tests.http_api import npy
from tests.tensorboard_process import ROOT

SCRIPT = "tests.crash_training"  # run as a module from the repository root


def steps_on_disk(run_dir):
    try:
        return tb_cnnviz.read_run(run_dir).steps()
    except (ValueError, OSError):
        return []


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    logdir, checkpoint = str(root / "logs"), str(root / "model.keras")
    run_dir = os.path.join(logdir, "crashy")
    process = subprocess.Popen([sys.executable, "-m", SCRIPT, run_dir, checkpoint, "100000"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while len(steps_on_disk(run_dir)) < 6:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "training logged too few steps"
            time.sleep(0.05)
        time.sleep(0.13)  # land the kill somewhere inside an event
    finally:
        process.send_signal(signal.SIGKILL)  # also when the wait above failed
        process.wait()
    return logdir, run_dir, checkpoint


@pytest.mark.parametrize("load_fast", [False, True], ids=["python-loader", "rust-data-server"])
def test_every_complete_step_of_a_killed_run_is_served(killed_run, tensorboard_server, load_fast):
    logdir, run_dir, _ = killed_run
    run = tb_cnnviz.read_run(run_dir)  # a truncated last record is not an error
    steps = run.steps()
    assert steps == list(range(steps[0], steps[0] + len(steps)))
    with tensorboard_server(logdir, load_fast, runs={"crashy": steps}) as api:
        assert api.runs()["crashy"]["steps"]["train"] == steps
        for step in steps:
            status, _, body = api.get("gradcam.npy", run="crashy", step=step)
            assert status == 200, body[:200]
            np.testing.assert_array_equal(npy(body), run.event(step).gradcam)
            assert api.get("event", run="crashy", step=step).status == 200


def test_restarting_into_the_same_logdir_appends(killed_run):
    logdir, run_dir, checkpoint = killed_run
    before = tb_cnnviz.read_run(run_dir).steps()
    result = subprocess.run([sys.executable, "-m", SCRIPT, run_dir, checkpoint, str(before[-1] + 6)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tb_cnnviz.read_run(run_dir)
    after = run.steps()
    assert after[: len(before)] == before and after[-1] >= before[-1] + 4
    assert after == sorted(set(after))
    # the resumed process measured drift from the run's first event, not its own
    assert run.event(after[-1]).stats("conv4")["cos_to_first"].max() > run.event(before[0]).stats("conv4")["cos_to_first"].max()


def test_a_diverged_model_is_logged_with_its_bad_values_marked(tmp_path):
    import json

    import keras

    from tb_cnnviz.datasets import shapes
    from tests.helpers import small_cnn
    from tests.plugin_helpers import wsgi_client

    images, labels, _ = shapes(32, size=32, seed=8)
    model = small_cnn(diverged=True)  # conv4's channel 0 and the output are NaN on every CPU
    kernel = model.get_layer("conv4").kernel
    kernel.assign(keras.ops.where(keras.ops.arange(16) == 0, float("nan"), kernel))  # and filter 0's weights
    callback = tb_cnnviz.CNNViz(str(tmp_path / "nan"), images[:3], labels[:3], strict=True)
    model.fit(images, labels, epochs=1, batch_size=32, verbose=0, callbacks=[callback])  # must not raise
    event = tb_cnnviz.read_run(str(tmp_path / "nan")).event(0)
    assert np.all(event.nonfinite("activations", "conv4")[:, 0] == 16 * 16)  # channel 0: every value
    assert np.all(event.nonfinite("activations", "conv1") == 0)
    assert np.all(np.isfinite(event.activations("conv4")[0]))
    assert np.isnan(event.stats("conv4")["norm"][0])
    body = wsgi_client(str(tmp_path)).ok("event", run="nan", step=0).body.decode()
    assert "NaN" not in body  # browsers' JSON.parse rejects NaN: they become null
    assert json.loads(body)["predictions"]["probability"][0] is None
