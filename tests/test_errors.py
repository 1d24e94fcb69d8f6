"""Every constructor and set_model error says what is wrong and what to do."""

import keras
import numpy as np
import pytest

import tb_cnnviz
from helpers import small_cnn

IMAGES = np.zeros((4, 32, 32, 3), np.float32)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"samples": np.zeros((32, 32, 3))}, ValueError, r"\(N, height, width, channels\).*x\[None\]"),
    ({"samples": np.array([["a"]])}, TypeError, "numeric"),
    ({"samples": np.zeros((0, 32, 32, 3))}, ValueError, "samples is empty"),
    ({"samples": np.zeros((257, 8, 8, 3))}, ValueError, "between 1 and 256 probe samples, got 257"),
    ({"labels": [0, 1]}, ValueError, "4 class indices"),
    ({"labels": [0, 1, -2, 0]}, ValueError, "non-negative"),
    ({"target": "true"}, ValueError, "needs labels"),
    ({"target": "best"}, ValueError, '"predicted", "true"'),
    ({"target": [0, 1]}, ValueError, "one class per sample"),
    ({"every_n_epochs": 1, "every_n_steps": 10}, ValueError, "not both"),
    ({"every_n_steps": 0}, ValueError, "every_n_steps must be a positive int"),
    ({"max_channels": "some"}, ValueError, 'max_channels \\(or "all"\\)'),
    ({"max_layer_pixels": 0}, ValueError, r"max_layer_pixels \(or \"auto\" or None\) must be a positive int"),
    ({"faithfulness_fraction": 1.5}, ValueError, r"in \(0, 1\)"),
    ({"layers": []}, ValueError, "at least one conv layer"),
])
def test_constructor_errors(tmp_path, kwargs, error, message):
    kwargs = {"logdir": str(tmp_path), "samples": IMAGES, **kwargs}
    with pytest.raises(error, match=message):
        tb_cnnviz.CNNViz(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"layers": ["nope"]}, "'nope' is not in the model; its conv layers are: conv1, sep2, dw3, conv4"),
    ({"layers": ["head"]}, "'head' is a Dense, not a 2-D convolution; choose one of the conv layers"),
    ({"gradcam_layer": "pool"}, "gradcam_layer 'pool' is not in the model"),
    ({"samples": np.zeros((2, 28, 28, 3))}, r"samples have shape \(28, 28, 3\) per image but the model expects \(32, 32, 3\)"),
    ({"labels": [0, 1, 2, 9]}, "below the model's 4 classes"),
    ({"class_names": ["a", "b"]}, "class_names has 2 names, the model has 4 classes"),
])
def test_set_model_errors(tmp_path, kwargs, message):
    kwargs = {"logdir": str(tmp_path), "samples": IMAGES, **kwargs}
    callback = tb_cnnviz.CNNViz(**kwargs)
    with pytest.raises(ValueError, match=message):
        callback.set_model(small_cnn())


def _no_conv():
    inputs = keras.Input((32, 32, 3))
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))


def _two_outputs():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs))
    return keras.Model(inputs, [keras.layers.Dense(4)(x), keras.layers.Dense(2)(x)])


def _two_inputs():
    images, extra = keras.Input((32, 32, 3)), keras.Input((5,))
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(images))
    return keras.Model([images, extra], keras.layers.Dense(4)(keras.layers.Concatenate()([x, extra])))


def _subclassed():
    class Unbuilt(keras.Model):  # never called either (a Sequential model is built from the images)
        def __init__(self):
            super().__init__()
            self.conv, self.dense = keras.layers.Conv2D(2, 3), keras.layers.Dense(4)

        def call(self, x):
            return self.dense(keras.ops.mean(self.conv(x), axis=(1, 2)))

    return Unbuilt()


def _regression():
    inputs = keras.Input((32, 32, 3))
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs))))


@pytest.mark.parametrize("build, message", [
    (_no_conv, "no Conv2D, DepthwiseConv2D or SeparableConv2D layer"),
    (_two_outputs, "one image input and one class-score output; this model has 1 inputs and 2 outputs"),
    (_two_inputs, "this model has 2 inputs and 1 outputs"),
    (_subclassed, "Unbuilt is subclassed: wrap it as inputs = keras.Input"),
    (_regression, r"class scores \(N, classes >= 2\)"),
])
def test_models_it_cannot_handle_get_a_clear_error(tmp_path, build, message):
    with pytest.raises(ValueError, match=message):
        tb_cnnviz.CNNViz(str(tmp_path), IMAGES, model=build())
    with pytest.raises(ValueError, match=message):
        tb_cnnviz.gradcam(build(), IMAGES)


def test_log_needs_a_model_and_a_step(tmp_path):
    callback = tb_cnnviz.CNNViz(str(tmp_path), IMAGES)
    with pytest.raises(RuntimeError, match="set_model"):
        callback.log(0)
    uncompiled = small_cnn()
    uncompiled.optimizer = None
    callback.set_model(uncompiled)
    with pytest.raises(ValueError, match="log\\(step=...\\)"):
        callback.log()
    with pytest.raises(ValueError, match="mode must be one of"):
        callback.log(0, mode="test")


def test_gradcam_arguments_are_checked():
    model = small_cnn()
    with pytest.raises(ValueError, match=r"class_index must be in \[0, 4\)"):
        tb_cnnviz.gradcam(model, IMAGES, class_index=7)
    with pytest.raises(ValueError, match=r"class_index must be None, an int or one int per image \(4 ints\), got \[0, 1\]"):
        tb_cnnviz.gradcam(model, IMAGES, class_index=[0, 1])
    with pytest.raises(ValueError, match="class_index must be None, an int"):
        tb_cnnviz.gradcam(model, IMAGES, class_index=1.5)
    with pytest.raises(ValueError, match="its conv layers are"):
        tb_cnnviz.gradcam(model, IMAGES, layer="missing")
    with pytest.raises(ValueError, match=r"images must be a batch of images shaped \(N, height, width, channels\), got shape \(32, 32, 3\); for one image use x\[None\]"):
        tb_cnnviz.gradcam_plus_plus(model, IMAGES[0])
    with pytest.raises(ValueError, match=r"images have shape \(28, 28, 3\) per image but the model expects \(32, 32, 3\)"):
        tb_cnnviz.gradcam(model, np.zeros((2, 28, 28, 3)))
    with pytest.raises(ValueError, match="images is empty"):
        tb_cnnviz.gradcam(model, np.zeros((0, 32, 32, 3)))


def test_unknown_public_name():
    with pytest.raises(AttributeError):
        tb_cnnviz.does_not_exist  # noqa: B018


def test_layers_may_be_any_iterable_of_names(tmp_path):
    callback = tb_cnnviz.CNNViz(str(tmp_path), IMAGES, layers=(name for name in ["conv4", "conv1"]), model=small_cnn())
    assert callback._plan.header.layers == ["conv1", "conv4"]  # model order
    with pytest.raises(ValueError, match="at least one conv layer"):
        tb_cnnviz.CNNViz(str(tmp_path), IMAGES, layers=iter([]))
