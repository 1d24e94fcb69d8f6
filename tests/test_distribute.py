"""Distributed training and remote logdirs.

Under MirroredStrategy (2 virtual CPUs) and MultiWorkerMirroredStrategy (2 local worker
processes) only the chief writes, each step once, nothing hangs, and the logged values are
those of a single-device run from the same initial weights on the same batches. A ram://
logdir (TensorFlow's in-memory filesystem) holds a whole run, as a remote one would.
"""

import json
import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_file_loader

import tb_cnnviz
from tb_cnnviz.storage import metadata
from tb_cnnviz.capture.run_state import FIRST_FILTERS_FILE, STATE_FILE, first_maps_file
from tests import distributed_worker
from tests.helpers import filter_rows, small_cnn, stats_tolerance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = "tests.distributed_worker"  # run as a module from the repository root
TIMEOUT = 300  # a collective op that waits for a worker forever fails the test instead
STEPS = [0, 1, 2, 3, 4]
# Step 0 runs the same single-device probe on the same weights: equal up to float noise.
AT_START = 1e-6
# After training the all-reduced gradient sums the replicas' halves in another order: a few
# float32 ulps per step (at most 7e-7 seen here). Training moves the values 100 times more
# than this tolerance (checked), so a missed or doubled gradient would not pass.
TRAINED = 1e-5


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """(initial weights file, the single-device run every setting must reproduce)."""
    root = tmp_path_factory.mktemp("single")
    keras.utils.set_random_seed(5)
    model = small_cnn()
    weights = str(root / "initial.weights.h5")
    model.save_weights(weights)
    distributed_worker.fit(model, str(root / "logs"))
    return weights, tb_cnnviz.read_run(str(root / "logs"))


def run_workers(tmp_path, setting, logdir, weights, cluster=None):
    """Runs the worker script once, or once per worker of `cluster`; returns their pids."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    processes, logs = [], []
    for index in range(len(cluster) if cluster else 1):
        if cluster:
            environment["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})
        logs.append(tmp_path / f"{setting}{index}.stderr")
        with open(logs[-1], "w") as stderr:
            processes.append(subprocess.Popen([sys.executable, "-m", SCRIPT, setting, logdir, weights], cwd=ROOT,
                                              env=dict(environment), stdout=subprocess.DEVNULL, stderr=stderr))
    deadline = time.monotonic() + TIMEOUT
    try:
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail(f"{setting} training did not finish in {TIMEOUT} s (a collective op waiting?)")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, log in zip(processes, logs):
        assert process.returncode == 0, log.read_text()[-3000:]
    return [process.pid for process in processes]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def written_steps(logdir):
    """{event file: steps of every train predictions record in it, rewrites included}."""
    predictions = metadata.tag(metadata.PREDICTIONS, "train")
    files = sorted(name for name in os.listdir(logdir) if "tfevents" in name)
    return {name: [event.step for event in event_file_loader.EventFileLoader(os.path.join(logdir, name)).Load()
                   for value in event.summary.value if value.tag == predictions] for name in files}


def assert_same_values(run, expected):
    """Stats, Grad-CAM and predictions of every step equal `expected`'s, within the tolerances."""
    assert run.steps() == expected.steps() == STEPS
    for step in STEPS:
        tolerance = AT_START if step == 0 else TRAINED
        got, want = run.event(step), expected.event(step)
        for layer in expected.info["conv_layers"]:
            for name, values in want.stats(layer).items():
                # each run's 8-bit statistics have their own range: one level apart at most
                np.testing.assert_allclose(got.stats(layer)[name], values, rtol=0,
                                           atol=tolerance + 2 * stats_tolerance(values),
                                           equal_nan=True, err_msg=f"step {step} {layer} {name}")
        # Maps are stored as 8 bits per map: a value at a rounding edge may move one level.
        level = 0 if step == 0 else want.gradcam.max() / 255
        np.testing.assert_allclose(got.gradcam, want.gradcam, rtol=0, atol=tolerance + level)
        assert got.predictions["predicted"] == want.predictions["predicted"]
        for key in ("top_probabilities", "masked_probability"):
            np.testing.assert_allclose(got.predictions[key], want.predictions[key], rtol=0, atol=tolerance)
    moved = expected.event(STEPS[-1]).stats("conv4")["cos_to_first"]
    assert moved.max() > 100 * TRAINED  # the comparison after training can tell a wrong update


@pytest.mark.slow
def test_mirrored_strategy_logs_what_a_single_device_logs(tmp_path, single):
    weights, expected = single
    logdir = str(tmp_path / "logs")
    run_workers(tmp_path, "mirrored", logdir, weights)
    assert list(written_steps(logdir).values()) == [STEPS]  # one writer, each step once
    assert_same_values(tb_cnnviz.read_run(logdir), expected)


@pytest.mark.slow
def test_multi_worker_only_the_chief_writes_and_nothing_hangs(tmp_path, single):
    """Both workers get the same logdir. Worker 1 returns from every hook before the probe,
    so the chief's probe passes must run no collective op: one would wait for worker 1 (a
    hang, caught by the timeout) or pair with its next training step (an error)."""
    weights, expected = single
    logdir = str(tmp_path / "logs")
    chief, _ = run_workers(tmp_path, "multiworker", logdir, weights,
                           cluster=[f"127.0.0.1:{port}" for port in free_ports(2)])
    steps = written_steps(logdir)
    assert list(steps.values()) == [STEPS]
    assert f".{chief}." in next(iter(steps))  # the event file's name holds its writer's pid
    first_maps = [first_maps_file(method) for method in ("gradcam", "gradcam_pp")]  # the default methods
    assert sorted(os.listdir(logdir)) == sorted([FIRST_FILTERS_FILE, *first_maps, STATE_FILE, *steps])
    assert_same_values(tb_cnnviz.read_run(logdir), expected)


def copy_tree(source, target):
    """Copies a directory tree from any filesystem tf.io.gfile knows to a local directory."""
    for directory, _, files in tf.io.gfile.walk(source):
        local = os.path.join(target, directory[len(source):].lstrip("/"))
        tf.io.gfile.makedirs(local)
        for name in files:
            tf.io.gfile.copy(os.path.join(directory, name), os.path.join(local, name))


@pytest.mark.slow
def test_a_ram_logdir_holds_the_whole_run(tmp_path, data):
    images, labels, _ = data
    keras.utils.set_random_seed(6)
    model = small_cnn()
    first_filters = filter_rows(model.get_layer("conv4"))
    remote = f"ram://{tmp_path.name}/logs"
    callback = tb_cnnviz.CNNViz(remote, images[:4], labels[:4], run_name="run1", strict=True)
    try:
        model.fit(images, labels, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
        model.evaluate(images[:16], labels[:16], verbose=0, callbacks=[callback])
        local = str(tmp_path / "copy")
        copy_tree(remote, local)
        assert tf.io.gfile.exists(f"{remote}/run1/{FIRST_FILTERS_FILE}")
        assert tb_cnnviz.read_run(f"{remote}/run1").steps() == [0, 3, 6]
    finally:
        tf.io.gfile.rmtree(remote)
    assert not os.path.exists("ram:")  # nothing went to a local path named like the URL
    run = tb_cnnviz.read_run(os.path.join(local, "run1"))
    assert run.steps() == [0, 3, 6] and run.steps("eval") == [6]
    final = run.event(6, "eval")
    np.testing.assert_allclose(final.predictions["probability"], model.predict(images[:4], verbose=0).max(axis=1),
                               atol=1e-6)
    rows = filter_rows(model.get_layer("conv4"))
    norms = np.linalg.norm(rows, axis=1)
    np.testing.assert_allclose(final.stats("conv4")["norm"], norms, rtol=1e-5, atol=stats_tolerance(norms))
    with np.load(os.path.join(local, "run1", FIRST_FILTERS_FILE)) as reference:
        np.testing.assert_allclose(reference["conv4"], first_filters, atol=1e-6)
