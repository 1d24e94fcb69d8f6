"""Huge inputs: either logged within the memory docs/reliability.md states, or refused up front."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import tb_cnnviz
from tests.tensorboard_process import ROOT

# docs/reliability.md: an event needs at most this much memory beyond the model's forward pass.
BYTES_PER_VALUE, FIXED_BYTES = 32, 150 * 2**20


@pytest.mark.slow
def test_64_probes_of_224x224_and_2048_channels_fit_in_the_stated_memory(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tests.huge_event", str(tmp_path / "run"), "64"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["shape"] == [64, 2048, 7, 7]
    assert measured["max_error_of_range"] <= 1 / 510 + 1e-6  # 8-bit quantisation
    assert measured["extra_peak_bytes"] <= BYTES_PER_VALUE * measured["values"] + FIXED_BYTES, measured


def test_an_event_too_big_for_memory_is_refused_before_any_work():
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.Conv2D(512, 3, padding="same", name="full_res")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    probes = np.zeros((64, 224, 224, 3), np.float32)
    with pytest.raises(ValueError, match=r"1568 M feature-map values .*'full_res'.*lower max_channels \(now 'all'\) "
                                         r"or max_layer_pixels \(now None\)"):
        tb_cnnviz.CNNViz("unused", probes, max_channels="all", max_layer_pixels=None, model=model)
    tb_cnnviz.CNNViz("unused", probes, max_channels=16, max_layer_pixels=None, model=model)  # 49 M values: accepted
