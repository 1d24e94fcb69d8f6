"""A JAX or PyTorch user needs no TensorFlow: in a fresh virtual environment with tb-cnnviz's
[jax] and [torch] extras and no TensorFlow, `fit` with the callback under each backend imports
no TensorFlow (tests/without_tensorflow_run.py), the installed `tb-cnnviz` command replays the
checkpoints of that fit, and that environment's own `tensorboard` serves every run through the
plugin, the maps those of the event files."""

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
        replayed = subprocess.run([str(venv / "bin" / "tb-cnnviz"), "replay", f"{logdir / backend}_checkpoints",
                                   "--images", f"{logdir / backend}_probes.npy", "--logdir",
                                   str(logdir / f"{backend}_replay")], cwd=str(tmp_path),
                                  env={**env, "KERAS_BACKEND": backend}, capture_output=True, text=True, timeout=600)
        assert replayed.returncode == 0, replayed.stderr[-3000:]
    runs = [*BACKENDS, *(f"{backend}_replay" for backend in BACKENDS)]
    with tensorboard(str(logdir), False, python=python) as server:
        wait_for_runs(server.api, runs)
        for name in runs:
            run = tb_cnnviz.read_run(str(logdir / name))
            step = run.steps()[-1]
            np.testing.assert_array_equal(server.api.ok("gradcam.npy", run=name, step=step).npy(),
                                          run.event(step).gradcam)
    for backend in BACKENDS:  # a checkpoint's event is the one the callback logged in fit at the end of its epoch
        fitted, replayed = tb_cnnviz.read_run(str(logdir / backend)), tb_cnnviz.read_run(str(logdir / f"{backend}_replay"))
        assert replayed.steps() == fitted.steps()[1:]
        for step in replayed.steps():
            np.testing.assert_allclose(replayed.event(step).gradcam, fitted.event(step).gradcam, atol=1 / 255 + 1e-6)
