"""Every constructor and set_model error says what is wrong and what to do."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tb_cnnviz
from tests.helpers import small_cnn

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
    ({"methods": ("gradcam", "gradcam+")}, ValueError, r"names among gradcam, gradcam_pp, hirescam.*\['gradcam\+'\]"),
    ({"methods": "hirescam"}, ValueError, "must include 'gradcam'"),
    ({"methods": None}, ValueError, "a method's name or a list of them"),
    ({"expensive_every": 0}, ValueError, r"expensive_every \(or None for the events of trust_every\) must be a positive"),
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
    return keras.Model(inputs, [keras.layers.Dense(4, activation="softmax", name="classes")(x),
                                keras.layers.Dense(2, name="aux")(x)])


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


def _sequence_output():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Reshape((30 * 30, 2))(keras.layers.Conv2D(2, 3)(inputs))
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))


@pytest.mark.parametrize("build, message", [
    (_no_conv, "no Conv2D, DepthwiseConv2D or SeparableConv2D layer"),
    (_two_outputs, r"the model has 2 outputs: pick the one to explain with output=, one of \['classes', 'aux'\]"),
    (_two_inputs, r"the model takes 2 inputs \[.*\]: give (samples|images) as a list of them"),
    (_subclassed, "Unbuilt is subclassed: wrap it as inputs = keras.Input"),
    (_sequence_output, r"explains class scores \(N, K\): head='softmax'.*\(None, 900, 5\) is not one \(regression, "
                       r"detection boxes and sequence outputs are not supported\)"),
])
def test_models_it_cannot_handle_get_a_clear_error(tmp_path, build, message):
    with pytest.raises(ValueError, match=message):
        tb_cnnviz.CNNViz(str(tmp_path), IMAGES, model=build())
    with pytest.raises(ValueError, match=message):
        tb_cnnviz.gradcam(build(), IMAGES)


def _linear_head(units, loss=None):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(units, name="scores")(x))
    if loss is not None:
        model.compile("adam", loss)
    return model


@pytest.mark.parametrize("build, kwargs, message", [
    (lambda: _linear_head(1), {}, "may be a logit of two classes \\(head='binary'\\) or a regression"),
    (lambda: _linear_head(4), {}, "may be softmax logits \\(head='softmax'\\) or multi-label logits "
                                  "\\(head='multilabel'\\): say which with head=, or compile the model"),
    (lambda: _linear_head(1, "mse"), {}, "may be a logit of two classes"),
    (lambda: _linear_head(4), {"head": "binary"}, "head='binary' needs one unit; the model output \\(None, 4\\) has 4"),
    (lambda: _linear_head(1), {"head": "softmax"}, "head='softmax' needs at least 2 classes"),
    (lambda: _linear_head(1), {"head": "multilabel"}, "head='multilabel' needs several units"),
    (_two_outputs, {"output": "nope"}, r"output='nope' names no output of the model; its outputs are \['classes', 'aux'\]"),
    (_two_outputs, {"output": 2}, r"output must be an output's name or index, one of \['classes', 'aux'\] or 0..1"),
    (lambda: _linear_head(1, keras.losses.BinaryCrossentropy(from_logits=True)),
     {"class_names": ["cat", "dog", "bird"]}, "class_names has 3 names, the model has 2 classes \\(a binary head has two"),
    (lambda: _linear_head(4, "binary_crossentropy"), {"labels": [0, 1, 2, 3]},
     "labels of a multi-label head must be multi-hot rows \\(N, 4\\)"),
    (lambda: _linear_head(4, "categorical_crossentropy"), {"labels": [[0, 1, 1, 0]] * 4},
     "label rows must be one-hot over the model's 4 classes \\(a multi-label model takes multi-hot rows"),
])
def test_heads_it_cannot_tell_or_that_do_not_fit_say_what_to_set(tmp_path, build, kwargs, message):
    callback = tb_cnnviz.CNNViz(str(tmp_path), IMAGES, **kwargs)
    with pytest.raises(ValueError, match=message):
        callback.set_model(build())


def test_gradcam_reads_an_unnamed_linear_head_as_scores():
    """Grad-CAM of K logits is the same for softmax and multi-label heads, and of one unit is
    its gradient: the function needs no head= where the callback must ask."""
    model = _linear_head(1)
    maps = tb_cnnviz.gradcam(model, IMAGES[:2] + 1, class_index=1)
    assert maps.shape == (2, 32, 32)
    with pytest.raises(ValueError, match=r"class_index must be in \[0, 2\)"):
        tb_cnnviz.gradcam(model, IMAGES[:2], class_index=2)


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



def test_explain_lists_the_methods_and_parameters_it_knows():
    model = small_cnn()
    with pytest.raises(ValueError, match="method must be one of gradcam, gradcam_pp, hirescam, xgradcam, layercam, "
                                         "eigencam, scorecam, smoothgrad, integrated_gradients; got 'grad-cam'"):
        tb_cnnviz.explain(model, IMAGES, "grad-cam")
    with pytest.raises(ValueError, match="layercam takes no parameters besides layer, class_index, head, output and "
                                         "image_input; got steps"):
        tb_cnnviz.explain(model, IMAGES, "layercam", steps=32)
    with pytest.raises(ValueError, match="its conv layers are"):
        tb_cnnviz.explain(model, IMAGES, "eigencam", layer="missing")
    with pytest.raises(ValueError, match="scorecam takes max_channels besides layer, .*; got max_channel"):
        tb_cnnviz.explain(model, IMAGES, "scorecam", max_channel=8)
    with pytest.raises(ValueError, match="samples of smoothgrad must be a positive int, got 0"):
        tb_cnnviz.explain(model, IMAGES, "smoothgrad", samples=0)
    with pytest.raises(ValueError, match=r"noise of smoothgrad must be a number >= 0 \(a share"):
        tb_cnnviz.explain(model, IMAGES, "smoothgrad", noise=-1)
    with pytest.raises(ValueError, match="baseline of integrated_gradients must be one of black, blur, got 'white'"):
        tb_cnnviz.explain(model, IMAGES, "integrated_gradients", baseline="white")
    with pytest.raises(ValueError, match="integrated_gradients attributes .* to the input's pixels: it takes no layer"):
        tb_cnnviz.explain(model, IMAGES, "integrated_gradients", layer="conv4")


def test_unknown_public_name():
    with pytest.raises(AttributeError):
        tb_cnnviz.does_not_exist  # noqa: B018


def test_layers_may_be_any_iterable_of_names(tmp_path):
    callback = tb_cnnviz.CNNViz(str(tmp_path), IMAGES, layers=(name for name in ["conv4", "conv1"]), model=small_cnn())
    assert callback._recorder.plan.header.layers == ["conv1", "conv4"]  # model order
    with pytest.raises(ValueError, match="at least one conv layer"):
        tb_cnnviz.CNNViz(str(tmp_path), IMAGES, layers=iter([]))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy"])
def test_another_keras_backend_is_refused_at_construction(tmp_path, backend):
    """A backend that cannot take gradients is refused before anything is written."""
    code = ("import numpy as np, keras, tb_cnnviz\n"
            f"assert keras.backend.backend() == {backend!r}\n"
            "for call in (lambda: tb_cnnviz.CNNViz('logs', np.zeros((2, 8, 8, 3))),\n"
            "             lambda: tb_cnnviz.gradcam(None, np.zeros((2, 8, 8, 3)))):\n"
            "    try:\n"
            "        call()\n"
            "    except RuntimeError as error:\n"
            "        print(error)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    message = (f"tb_cnnviz works on Keras' TensorFlow, JAX and PyTorch backends; this process runs Keras on "
               f"{backend!r}, which cannot train or take gradients. Set the environment variable KERAS_BACKEND to "
               f"tensorflow, jax or torch")
    assert done.stdout.count(message) == 2, done.stdout
    assert not os.path.exists(tmp_path / "logs")


def _numpy_layer_model(numpy_first):
    """A conv net with a layer computed in NumPy after its conv layer 'conv', or before it."""
    from tests.backend_tools import through_numpy

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(through_numpy, name="numpy_tanh")(inputs) if numpy_first else inputs
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    if not numpy_first:
        x = keras.layers.Lambda(through_numpy, name="numpy_tanh")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def test_a_layer_the_backend_cannot_differentiate_gets_an_error_naming_the_layer_and_the_backend(tmp_path):
    images = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    backend_name = keras.backend.backend()
    said = rf"gradient of the class scores with respect to the output of layer 'conv' on Keras' {backend_name} backend"
    reason = {"jax": "Pure callbacks do not support JVP"}.get(backend_name, "no gradient reaches it")  # the framework's
    with pytest.raises(ValueError, match=said + ": .*" + reason):
        tb_cnnviz.gradcam(_numpy_layer_model(numpy_first=False), images, layer="conv")
    with pytest.raises(ValueError, match=said):
        tb_cnnviz.sanity_check(_numpy_layer_model(numpy_first=False), images, layer="conv")
    # before the conv layer: Grad-CAM needs no gradient there, feature visualisation does
    model = _numpy_layer_model(numpy_first=True)
    assert tb_cnnviz.gradcam(model, images, layer="conv").shape == (2, 16, 16)
    callback = tb_cnnviz.CNNViz(str(tmp_path), images, feature_vis=1, strict=True)
    callback.set_model(model)
    with pytest.raises(ValueError, match=rf"activations of layers \['conv'\] with respect to the input image on "
                                         rf"Keras' {backend_name} backend"):
        callback.log(0)
