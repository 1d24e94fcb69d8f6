"""JAX with Keras' distribution API: `DataParallel` over two CPU devices (forced with XLA_FLAGS)
logs one event per due step, in one event file, with the maps one device logs from the same
weights (tests/jax_distributed_run.py, in subprocesses)."""

import collections
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

import tb_cnnviz
from tests.helpers import assert_maps_agree
from tests.tensorboard_process import ROOT

pytestmark = pytest.mark.slow


def run_jax(*arguments, devices):
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": ROOT,
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    done = subprocess.run([sys.executable, "-m", "tests.jax_distributed_run", *map(str, arguments)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def test_data_parallel_logs_each_step_once_with_one_devices_maps(tmp_path):
    weights = tmp_path / "model.weights.h5"
    run_jax("fit", tmp_path / "parallel", weights, devices=2)
    run_jax("log", tmp_path / "single", weights, devices=1)
    (event_file,) = glob.glob(str(tmp_path / "parallel" / "events.out.tfevents.*"))
    records = collections.Counter(event.step for event in EventFileLoader(event_file).Load()
                                  if any(value.tag.startswith("train/") for value in event.summary.value))
    assert records == {0: 1, 2: 1, 4: 1}  # each due step's event written once, not once per device
    parallel = tb_cnnviz.read_run(str(tmp_path / "parallel"))
    assert parallel.steps() == [0, 2, 4]
    expected, found = tb_cnnviz.read_run(str(tmp_path / "single")).event(4), parallel.event(4)
    assert found.predictions["predicted"] == expected.predictions["predicted"]
    np.testing.assert_allclose(found.predictions["probability"], expected.predictions["probability"], atol=1e-5)
    assert_maps_agree(expected.gradcam, found.gradcam, (1, 2), "gradcam")
    for layer in parallel.layers:
        assert_maps_agree(expected.activations(layer)[0], found.activations(layer)[0], (2, 3), layer)
    np.testing.assert_allclose(found.metrics["deletion_auc"], expected.metrics["deletion_auc"], atol=1e-3)
