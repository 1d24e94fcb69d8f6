"""explain's LayerCAM, Score-CAM and SmoothGrad against tf-keras-vis (a maintained library that
implements them) with matching settings: the class's logit (tf-keras-vis' ReplaceToLinear), the
same layer, the same noise. tf-keras-vis upsamples with scipy's zoom (corners aligned) where
explain upsamples as tf.image.resize does (half-pixel centres), so the CAMs are compared at an
early layer (30 x 30 maps of 32 x 32 images), where the two differ least."""

import keras
import numpy as np
import pytest

import tb_cnnviz
from tests.helpers import pearson, small_cnn

pytestmark = [pytest.mark.slow, pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                                   reason="tf-keras-vis runs on Keras' TensorFlow backend only")]


@pytest.fixture(scope="module")
def trained(data):
    keras.utils.set_random_seed(1)
    images, labels, _ = data
    model = small_cnn()
    model.fit(images, labels, epochs=3, batch_size=32, verbose=0)
    probes = images[:6]
    return model, probes, model.predict(probes, verbose=0).argmax(1)


def _linear_score(trained):
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    return ReplaceToLinear(), CategoricalScore(list(trained[2]))


def _assert_alike(found, expected):
    for index, (one, reference) in enumerate(zip(found, expected)):
        assert np.ptp(reference) > 0, f"probe {index}: a flat reference tests nothing"
        assert pearson(one, reference) >= 0.99, f"probe {index}: {pearson(one, reference):.4f}"


def test_layercam_equals_tf_keras_vis(trained):
    from tf_keras_vis.layercam import Layercam

    model, probes, _ = trained
    modifier, score = _linear_score(trained)
    expected = Layercam(model, model_modifier=modifier, clone=True)(score, probes, penultimate_layer="conv1",
                                                                    normalize_cam=False)
    _assert_alike(tb_cnnviz.explain(model, probes, "layercam", layer="conv1"), expected)


def test_scorecam_equals_tf_keras_vis(trained):
    """tf-keras-vis weighs each channel by the softmax of the masked image's logits, the class's
    probability: issue 27's definition."""
    from tf_keras_vis.scorecam import Scorecam

    model, probes, _ = trained
    modifier, score = _linear_score(trained)
    expected = Scorecam(model, model_modifier=modifier, clone=True)(score, probes, penultimate_layer="conv1",
                                                                    normalize_cam=False)
    _assert_alike(tb_cnnviz.explain(model, probes, "scorecam", layer="conv1"), expected)


def test_smoothgrad_equals_tf_keras_vis_given_the_same_noise(trained, monkeypatch):
    """tf-keras-vis draws its noise with np.random.normal(0, sigma, (samples, N, H, W, C)); given
    explain's draws there (default_rng(0)), and no absolute value before the mean (explain takes
    it of the mean gradient), the maps are the same."""
    from tf_keras_vis.saliency import Saliency

    model, probes, _ = trained
    modifier, score = _linear_score(trained)
    draws = np.random.default_rng(0).normal(size=(20, *probes.shape))
    monkeypatch.setattr(np.random, "normal", lambda loc, scale, size: loc + np.asarray(scale) * draws)
    gradients = Saliency(model, model_modifier=modifier, clone=True)(
        score, probes, smooth_samples=20, smooth_noise=0.2, gradient_modifier=None, keepdims=True, normalize_map=False)
    expected = np.abs(gradients).max(axis=-1)
    found = tb_cnnviz.explain(model, probes, "smoothgrad")
    _assert_alike(found, expected)
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-3 * expected.max())
