"""Faults: training killed mid-write, then resumed into the same logdir."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import tb_cnnviz
from tests.http_api import npy
from tests.polling import wait_for
from tests.tensorboard_process import ROOT

SCRIPT = "tests.crash_training"  # run as a module from the repository root
STOP_AT = 6  # the step whose event write is cut half-way, after 6 complete steps (0 to 5)


def steps_on_disk(run_dir):
    try:
        return tb_cnnviz.read_run(run_dir).steps()
    except (ValueError, OSError):
        return []


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A run killed with SIGKILL in the middle of writing its event at step STOP_AT: the child
    (tests/crash_training.py) says when each event record starts and ends being written, writes
    half of that event's record and waits; it is killed there."""
    root = tmp_path_factory.mktemp("crash")
    logdir, checkpoint, signals = str(root / "logs"), str(root / "model.keras"), str(root / "signals")
    run_dir = os.path.join(logdir, "crashy")
    process = subprocess.Popen([sys.executable, "-m", SCRIPT, run_dir, checkpoint, "100000", "--signals", signals,
                                "--stop-in-event", str(STOP_AT)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def stopped():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            said = lines(signals) if os.path.exists(signals) else []
            return next((line.split() for line in said if line.startswith("stopped ")), None)

        _, step, offset, length = wait_for(stopped, 300, f"the training to stop in the middle of writing step {STOP_AT}")
    finally:
        process.send_signal(signal.SIGKILL)  # also when the wait above failed
        process.wait()
    # the kill landed inside the event's write: begun, never finished
    said = lines(signals)
    assert said[-2:] == [f"write {STOP_AT}", f"stopped {STOP_AT} {offset} {length}"], said[-4:]
    assert f"wrote {STOP_AT}" not in said and all(f"wrote {s}" in said for s in range(STOP_AT))
    return logdir, run_dir, checkpoint, int(offset), int(length)


@pytest.mark.slow
def test_the_kill_left_half_an_event_on_disk_and_every_complete_step_reads(killed_run):
    _, run_dir, _, offset, length = killed_run
    (name,) = [n for n in os.listdir(run_dir) if "tfevents" in n]
    assert os.path.getsize(os.path.join(run_dir, name)) == offset + length // 2  # the partial record
    run = tb_cnnviz.read_run(run_dir)  # a truncated last record is not an error
    assert run.steps() == list(range(STOP_AT))  # the partial event is not read; every complete one is
    for step in run.steps():
        assert run.event(step).gradcam.shape == (4, 32, 32)


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", [False, True], ids=["python-loader", "rust-data-server"])
def test_every_complete_step_of_a_killed_run_is_served(killed_run, tensorboard_server, load_fast):
    logdir, run_dir, *_ = killed_run
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


@pytest.mark.slow
def test_restarting_into_the_same_logdir_appends(killed_run):
    logdir, run_dir, checkpoint, *_ = killed_run
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


@pytest.mark.slow
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
