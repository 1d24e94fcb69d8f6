"""A built wheel carries the tab: installed in a fresh virtualenv, `tensorboard` lists it."""

import subprocess
import sys
import zipfile

import pytest

from tests.plugin_helpers import write_logs
from tests.tensorboard_process import ROOT, tensorboard


@pytest.mark.slow
def test_wheel_in_a_fresh_virtualenv_serves_the_plugin(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), ROOT],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("tb_cnnviz-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("tb_cnnviz/frontend/index.js", "tb_cnnviz/frontend/style.css", "tb_cnnviz/plugin/loader.py",
                 "tb_cnnviz/reading/lookups.py"):
        assert name in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # The plugin needs no TensorFlow to serve: install the wheel without its training deps.
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True)
    subprocess.run([*pip, "tensorboard", "numpy", "pillow", "werkzeug"], check=True)
    logdir = str(tmp_path / "logs")
    write_logs(logdir, epochs=1)
    with tensorboard(logdir, False, python=python) as server:  # waits for the plugin to be active
        status, headers, body = server.api.get("index.js")
        assert status == 200 and b"export async function render" in body
        assert [r["run"] for r in server.api.json("runs")["runs"]] == ["alpha", "beta"]
    # and it did so without TensorFlow in that environment
    assert subprocess.run([python, "-c", "import tensorflow"], capture_output=True).returncode != 0
