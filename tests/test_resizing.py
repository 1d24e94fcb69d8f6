"""backend.resizing, what JAX and PyTorch resize with: the same pixels as tf.image.resize."""

import numpy as np
import pytest
import tensorflow as tf

from tb_cnnviz.backend import resizing


@pytest.mark.parametrize("method", ["bilinear", "area"])
@pytest.mark.parametrize("source, target", [((32, 32), (4, 4)), ((7, 7), (224, 224)), ((30, 17), (8, 5)),
                                            ((13, 11), (40, 33)), ((224, 224), (28, 28)), ((5, 9), (5, 9))])
def test_equals_tensorflows_resize(source, target, method):
    images = np.random.default_rng(0).normal(size=(2, *source, 3)).astype(np.float32)
    expected = tf.image.resize(images, target, method=method).numpy()
    found = np.asarray(resizing.resize(images, target, method))
    np.testing.assert_allclose(found, expected, rtol=0, atol=2e-5 * np.abs(images).max())


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="'bilinear' or 'area'"):
        resizing.weights(4, 2, "nearest")
