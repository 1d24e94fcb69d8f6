"""The demo trains, logs train and eval events, and reports its pointing game."""

import os
import subprocess
import sys

import tb_cnnviz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_trains_and_logs_without_serving(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--no-serve", "--epochs", "1", "--samples", "256", "--logdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pointing game" in result.stdout
    run = tb_cnnviz.read_run(os.path.join(tmp_path, "vgg_style"))
    assert run.steps("train") == [0, 8] and run.steps("eval") == [8]
    assert run.layers[:3] == ["block1_conv1", "block1_conv2", "block2_conv1"]


def test_demo_help():
    result = subprocess.run([sys.executable, "-m", "demo", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--logdir", "--epochs", "--port", "--no-serve"):
        assert option in result.stdout
