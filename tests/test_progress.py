"""Progress bars of long standalone work: on when asked (or where standard output is a terminal),
one tick per pass or step; off where it is not a terminal, as under pytest."""

import re

import keras
import numpy as np
import pytest

import tb_cnnviz
from tb_cnnviz.explanations.progress import progress_bars
from tests.helpers import small_cnn


def last_line(said: str) -> str:
    """The bar as last drawn over itself, without its colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", said).strip().split("\r")[-1].strip()


@pytest.fixture(scope="module")
def model_and_images():
    keras.utils.set_random_seed(0)
    return small_cnn(16, classes=3), np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)


def test_a_many_pass_method_counts_its_passes(model_and_images, capsys):
    model, images = model_and_images
    shown = tb_cnnviz.explain(model, images, "smoothgrad", samples=4, verbose=True)
    said = capsys.readouterr().out
    quiet = tb_cnnviz.explain(model, images, "smoothgrad", samples=4)  # "auto": pytest's output is no terminal
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(shown, quiet)
    assert re.fullmatch(r"(\d+)/\1 \S+ .*/pass", last_line(said)), said


def test_the_sanity_check_counts_its_steps(model_and_images, capsys):
    model, images = model_and_images
    found = tb_cnnviz.sanity_check(model, images, verbose=True)
    last = last_line(capsys.readouterr().out)
    assert last.startswith(f"{len(found)}/{len(found)} ") and last.endswith("/step"), last


def test_verbose_takes_auto_true_or_false():
    assert progress_bars(False, "step") is None
    with pytest.raises(ValueError, match="verbose must be 'auto', True or False"):
        progress_bars("yes", "step")
