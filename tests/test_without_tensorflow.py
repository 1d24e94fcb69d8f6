"""A JAX or PyTorch user needs no TensorFlow: in a fresh virtual environment with tb-cnnviz's
[jax] and [torch] extras and no TensorFlow, `fit` with the callback under each backend imports
no TensorFlow (tests/without_tensorflow_run.py), and that environment's own `tensorboard`
serves both runs through the plugin, the maps those of the event files."""

import os
import subprocess
import sys

import numpy as np
import pytest

import tb_cnnviz
from tests.http_api import wait_for_runs
from tests.tensorboard_process import ROOT, tensorboard

pytestmark = pytest.mark.slow
BACKENDS = ("jax", "torch")


def test_fit_and_serve_under_jax_and_torch_without_tensorflow(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # PyTorch's CPU build first (.ci/run says why), then the project with the two extras
    subprocess.run([*pip, "torch==2.13.0"], check=True, capture_output=True)
    subprocess.run([*pip, f"{ROOT}[jax,torch]"], check=True, capture_output=True)
    assert subprocess.run([python, "-c", "import tensorflow"], capture_output=True).returncode != 0
    logdir = tmp_path / "logs"
    for backend in BACKENDS:
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        done = subprocess.run([python, os.path.join(ROOT, "tests", "without_tensorflow_run.py"), str(logdir / backend)],
                              cwd=str(tmp_path), env={**env, "KERAS_BACKEND": backend}, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"{backend} ok" in done.stdout
    with tensorboard(str(logdir), False, python=python) as server:
        wait_for_runs(server.api, list(BACKENDS))
        for backend in BACKENDS:
            run = tb_cnnviz.read_run(str(logdir / backend))
            step = run.steps()[-1]
            np.testing.assert_array_equal(server.api.ok("gradcam.npy", run=backend, step=step).npy(),
                                          run.event(step).gradcam)
