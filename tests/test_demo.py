"""The demo trains, logs train and eval events, and reports its pointing game."""

import os
import subprocess
import sys

import pytest

import tb_cnnviz
from tb_cnnviz.storage.metadata import METHODS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_demo_trains_and_logs_without_serving(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--no-serve", "--epochs", "1", "--samples", "256", "--logdir", str(tmp_path),
         "--learning-rates", "0.002", "0.001"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pointing game" in result.stdout
    assert sorted(os.listdir(tmp_path)) == ["vgg_style_lr0.001", "vgg_style_lr0.002"]
    run = tb_cnnviz.read_run(os.path.join(tmp_path, "vgg_style_lr0.002"))
    assert run.steps("train") == [0, 8] and run.steps("eval") == [8]
    assert run.layers == ["block1_conv2", "block2_conv2", "block3_conv2"]  # one per stage
    assert run.event(8, "eval").methods == list(METHODS)  # a clean run logs every method
    assert list(run.metrics("eval", "integrated_gradients")[0]) == [8]


@pytest.mark.slow
def test_demo_vgg16_backbone_uses_the_seed_layers(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--no-serve", "--epochs", "1", "--samples", "32", "--logdir", str(tmp_path),
         "--model", "vgg16", "--learning-rates", "0.0001", "--feature-vis", "0"],  # the layers' test: no ascent
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run = tb_cnnviz.read_run(os.path.join(tmp_path, "vgg16_lr0.0001"))
    assert run.layers == [f"vgg16/{name}" for name in ("block1_conv1", "block1_conv2", "block2_conv1",
                                                       "block3_conv1", "block4_conv1", "block5_conv3")]
    assert run.info["gradcam_layer"] == "vgg16/block5_conv3"


def test_demo_refuses_a_missing_weights_file(tmp_path):
    result = subprocess.run([sys.executable, "-m", "demo", "--model", "vgg16", "--weights", str(tmp_path / "no.h5")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "no such file" in result.stderr


def test_demo_help():
    result = subprocess.run([sys.executable, "-m", "demo", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--logdir", "--epochs", "--port", "--no-serve"):
        assert option in result.stdout


@pytest.mark.slow
def test_demo_loads_a_local_vgg16_weights_file(tmp_path):
    import keras

    from tests.helpers import quantisation_ok

    backbone = keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    weights = tmp_path / "vgg16.weights.h5"
    backbone.save_weights(str(weights))
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--no-serve", "--epochs", "1", "--samples", "32", "--model", "vgg16",
         "--feature-vis", "0", "--weights", str(weights), "--learning-rates", "0.0001", "--logdir", str(tmp_path / "logs")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run = tb_cnnviz.read_run(os.path.join(tmp_path, "logs", "vgg16_lr0.0001"))
    kernels, channels, view = run.event(0).filters("block1_conv1")  # logged before any update
    expected = backbone.get_layer("block1_conv1").get_weights()[0].transpose(3, 0, 1, 2)[channels]
    assert view == "kernel" and quantisation_ok(kernels, expected, (1, 2, 3))


@pytest.mark.slow
def test_readme_quick_start_command_trains_runs_whose_gradcam_points_at_the_shapes(tmp_path):
    """The README's first command, with --no-serve: installs, trains the clean and the shortcut
    run; the clean run's Grad-CAM points at the shapes, the shortcut run's leaves them for the mark."""
    import re

    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    command = re.search(r"^(bash demo/quickstart\.sh)\s", readme, re.M).group(1)
    result = subprocess.run(f"{command} --no-serve --logdir {tmp_path}", shell=True, cwd=ROOT,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = {os.path.basename(run_dir): (float(pointing), float(energy)) for run_dir, pointing, energy in re.findall(
        r"^(\S+): .*pointing game (\d\.\d\d), energy in object (\d\.\d\d)", result.stdout, re.M)}
    assert sorted(runs) == ["vgg_style_clean", "vgg_style_shortcut"], result.stdout[-1500:]
    (clean_pointing, clean_energy), (_, shortcut_energy) = runs["vgg_style_clean"], runs["vgg_style_shortcut"]
    assert clean_pointing >= 0.9 and shortcut_energy < clean_energy, result.stdout[-1500:]
