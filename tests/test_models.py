"""Model shapes people use: nested backbones, Sequential, mixed precision."""

import keras
import numpy as np
import pytest

import tb_cnnviz
from tb_cnnviz.explanations.gradcam import METHODS
from tests.backend_tools import class_scores, gradient, mixed_policy, to_numpy
from tests.helpers import pearson, quantisation_ok, reference_cam, stats_tolerance

pytestmark = pytest.mark.every_backend  # what the model computes, on each backend (.ci/run)


@pytest.mark.slow
def test_nested_vgg16_backbone_with_path_names(tmp_path, data):
    images, labels, _ = data
    backbone = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(features))  # logits
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], labels[:4],
                                layers=["block1_conv1", "vgg16/block3_conv1", "block5_conv3"],
                                gradcam_layer="vgg16/block4_conv3", max_channels=4, strict=True)
    model.fit(images[:32], labels[:32], epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path))
    assert run.layers == ["vgg16/block1_conv1", "vgg16/block3_conv1", "vgg16/block5_conv3"]
    assert len(run.info["conv_layers"]) == 13  # stats cover every conv layer of the backbone
    event = run.event(run.steps()[-1])
    x = images[:4]
    for name in ("block1_conv1", "block3_conv1", "block5_conv3"):
        true = to_numpy(keras.Model(backbone.inputs, backbone.get_layer(name).output)(x))
        maps, channels = event.activations(name)
        assert quantisation_ok(maps, true[..., channels].transpose(0, 3, 1, 2), (2, 3)), name
    # Grad-CAM at a layer inside the backbone, against a tape over an explicit split model
    conv = keras.Model(backbone.inputs, backbone.get_layer("block4_conv3").output)
    rest_input = keras.Input(conv.output.shape[1:])
    y = rest_input
    for layer in backbone.layers[backbone.layers.index(backbone.get_layer("block4_conv3")) + 1:]:
        y = layer(y)
    rest = keras.Model(rest_input, model.get_layer("head")(model.layers[2](y)))
    targets = np.asarray(event.predictions["target"])
    acts = to_numpy(conv(x))
    _, grads = gradient(lambda a: class_scores(rest(a), targets), acts)
    expected = reference_cam(acts, grads, "gradcam", (32, 32))
    assert pearson(event.gradcam, expected) >= 0.999
    assert event.stats("vgg16/block2_conv2")["norm"].shape == (128,)


@pytest.mark.slow
def test_sequential_model(tmp_path, data):
    images, labels, _ = data
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
        keras.layers.Conv2D(6, 3, activation="relu", name="c2"),
        keras.layers.Flatten(),
        keras.layers.Dense(4, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:3], labels[:3], max_layer_pixels=None, strict=True)
    model.fit(images[:32], labels[:32], epochs=1, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path))
    event = run.event(run.steps()[-1])
    true = to_numpy(keras.Model(model.inputs, model.get_layer("c2").output)(images[:3]))
    maps, channels = event.activations("c2")
    assert channels == list(range(6))
    assert quantisation_ok(maps, true.transpose(0, 3, 1, 2), (2, 3))
    assert event.gradcam.shape == (3, 32, 32)


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy(mixed_policy())  # mixed_bfloat16 on JAX
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_mixed_precision(tmp_path, data, mixed_precision):
    images, labels, _ = data
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.SeparableConv2D(8, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(4, name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], labels[:4], max_layer_pixels=None, strict=True)
    model.fit(images[:32], labels[:32], epochs=1, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path))
    event = run.event(run.steps()[-1])
    true = keras.Model(model.inputs, model.get_layer("c2").output)(images[:4])
    assert keras.backend.standardize_dtype(true.dtype) == mixed_policy().removeprefix("mixed_")
    maps, channels = event.activations("c2")
    true = to_numpy(keras.ops.cast(true, "float32")).transpose(0, 3, 1, 2)
    # The probe's half-precision kernels are not the sub-model's: besides the 8-bit quantisation,
    # allow float16 rounding (a few units in the last place, 1 % of the map's largest value; 4 %
    # for bfloat16, with 3 fewer bits).
    peak = np.abs(true).max(axis=(2, 3), keepdims=True)
    span = true.max(axis=(2, 3), keepdims=True) - true.min(axis=(2, 3), keepdims=True)
    rounding = 0.04 if mixed_policy() == "mixed_bfloat16" else 0.01
    assert np.all(np.abs(maps - true) <= span / 255 + rounding * peak + 1e-6)
    assert np.all(np.isfinite(event.gradcam)) and event.gradcam.max() > 0
    probabilities = model.predict(images[:4], verbose=0)
    assert event.predictions["predicted"] == probabilities.argmax(1).tolist()


@pytest.mark.slow
def test_gradcam_on_any_image_size_and_without_keeping_the_model_alive():
    import gc
    import weakref

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    for size in (32, 48):
        maps = tb_cnnviz.gradcam(model, np.random.rand(2, size, size, 3).astype("float32"))
        assert maps.shape == (2, size, size)
    alive = weakref.ref(model)
    del model, x, inputs
    gc.collect()
    assert alive() is None


def test_gradients_reach_a_layer_through_every_consumer_and_around_a_skip():
    """The explained layer's output feeds a conv, an identity add and a sigmoid gate, and a
    1x1 conv from the layer before it bypasses it (a ResNet shortcut): Grad-CAM equals the one
    written here from the test's own gradients of the model's rest, called layer by layer."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((16, 16, 3))
    stem = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    explained = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="explained")(stem)
    branch = keras.layers.Conv2D(6, 3, padding="same", name="branch")(explained)
    bypass = keras.layers.Conv2D(6, 1, name="bypass")(stem)
    merged = keras.layers.Add()([branch, bypass, explained])
    gated = keras.layers.Multiply()([merged, keras.layers.Activation("sigmoid")(explained)])
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(gated))
    model = keras.Model(inputs, logits)
    images = np.random.default_rng(5).random((4, 16, 16, 3), dtype=np.float32)
    targets = np.array([0, 1, 2, 1])
    stem_out = to_numpy(keras.Model(inputs, stem)(images))
    acts = to_numpy(keras.Model(inputs, explained)(images))

    def scores(a):
        merged = model.get_layer("branch")(a) + model.get_layer("bypass")(keras.ops.convert_to_tensor(stem_out)) + a
        pooled = keras.ops.mean(merged * keras.ops.sigmoid(a), axis=(1, 2))
        return class_scores(model.get_layer("logits")(pooled), targets)

    _, grads = gradient(scores, acts)
    expected = reference_cam(acts, grads, "gradcam", (16, 16))
    found = tb_cnnviz.gradcam(model, images, layer="explained", class_index=targets)
    assert pearson(found, expected) >= 0.9999
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5 * expected.max())


def _head_models():
    """Three heads on the same layers: Dense(softmax), Dense then a Softmax layer, and an
    all-convolutional net whose head is global pooling of class maps (logits)."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inputs)
    class_maps = keras.layers.Conv2D(4, 1, name="class_maps")(features)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    dense_softmax = keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="head")(pooled))
    logits = keras.layers.Dense(4, name="head")
    softmax_layer = keras.Model(inputs, keras.layers.Softmax()(logits(pooled)))
    softmax_layer.get_layer("head").set_weights(dense_softmax.get_layer("head").get_weights())
    pooled_class_maps = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(class_maps))
    for layer in ("c1", "class_maps"):  # large logits, far from rows of probabilities
        weights = pooled_class_maps.get_layer(layer).get_weights()
        pooled_class_maps.get_layer(layer).set_weights([w * 5 for w in weights])
    return dense_softmax, softmax_layer, pooled_class_maps


@pytest.mark.slow
def test_softmax_layer_and_logit_heads(tmp_path, data):
    images, labels, _ = data
    x = images[:4]
    dense_softmax, softmax_layer, pooled_class_maps = _head_models()
    # a Softmax layer says what the head is; pooled class maps may be softmax or multi-label logits: say which
    for name, model, logits_model, head in (
            ("softmax_layer", softmax_layer, keras.Model(softmax_layer.inputs, softmax_layer.get_layer("head").output), None),
            ("pooled_class_maps", pooled_class_maps, pooled_class_maps, "softmax")):
        callback = tb_cnnviz.CNNViz(str(tmp_path / name), images[:4], labels[:4], gradcam_layer="c1", model=model,
                                    strict=True, head=head)
        callback.log(0)
        event = tb_cnnviz.read_run(str(tmp_path / name)).event(0)
        probabilities = to_numpy(keras.ops.softmax(logits_model(x)))
        predicted = probabilities.argmax(axis=1)
        assert event.predictions["predicted"] == predicted.tolist(), name
        np.testing.assert_allclose(event.predictions["probability"], probabilities.max(axis=1), rtol=1e-5)
        # Grad-CAM of the pre-softmax score, against a tape written here
        conv = keras.Model(model.inputs, model.get_layer("c1").output)
        acts = to_numpy(conv(x))

        def rest(a, model=model):
            return (softmax_layer.get_layer("head")(keras.layers.GlobalAveragePooling2D()(a)) if model is softmax_layer
                    else keras.layers.GlobalAveragePooling2D()(model.get_layer("class_maps")(a)))

        _, grads = gradient(lambda a: class_scores(rest(a), predicted), acts)
        expected = reference_cam(acts, grads, "gradcam", (32, 32))
        assert pearson(event.gradcam, expected) >= 0.999, name
    # the public function: a Softmax layer head gives the map of a Dense(softmax) head with the same weights
    np.testing.assert_allclose(tb_cnnviz.gradcam(softmax_layer, images[:4], layer="c1", class_index=0),
                               tb_cnnviz.gradcam(dense_softmax, images[:4], layer="c1", class_index=0), rtol=1e-4, atol=1e-7)



@pytest.mark.parametrize("method", METHODS)
def test_every_method_reads_a_softmax_layer_head_as_a_dense_softmax_one(data, method):
    """The same weights with the softmax in the Dense layer or in a Softmax layer after it: each
    explanation method differentiates the same logit and weighs by the same probabilities."""
    images = data[0][:3]
    dense_softmax, softmax_layer, _ = _head_models()
    layer = {"smoothgrad": None, "integrated_gradients": None}.get(method, "c1")
    flat = []
    for class_index in range(4):  # an untrained model: some classes' maps are ReLU'd to nothing
        found = tb_cnnviz.explain(softmax_layer, images, method, layer=layer, class_index=class_index)
        expected = tb_cnnviz.explain(dense_softmax, images, method, layer=layer, class_index=class_index)
        assert found.shape == (3, 32, 32)
        np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
        flat.append(np.ptp(expected) == 0)
    assert not all(flat)

@pytest.mark.slow
def test_sequential_without_input_and_subclassed_models(tmp_path, data):
    images, labels, _ = data
    # A Sequential model with no Input: Keras builds it at its first batch, after set_model.
    sequential = keras.Sequential([keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
                                   keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, activation="softmax")])
    sequential.compile("adam", "sparse_categorical_crossentropy")
    callback = tb_cnnviz.CNNViz(str(tmp_path / "sequential"), images[:3], labels[:3], strict=True)
    sequential.fit(images[:32], labels[:32], epochs=1, verbose=0, callbacks=[callback])
    assert tb_cnnviz.read_run(str(tmp_path / "sequential")).steps() == [0, 1]
    unbuilt = keras.Sequential([keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(4)])
    assert tb_cnnviz.gradcam(unbuilt, images[:2]).shape == (2, 32, 32)
    # sanity_check takes what gradcam takes: it builds an unbuilt Sequential model the same way
    unbuilt_too = keras.Sequential([keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
                                    keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, name="head")])
    steps = tb_cnnviz.sanity_check(unbuilt_too, images[:2])
    assert [name for name, _ in steps] == ["head", "c1"] and all(np.isfinite(c) for _, c in steps)

    class Classifier(keras.Model):  # subclassed, ending in logits
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3, activation="relu", name="c1")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.logits = keras.layers.Dense(4)

        def call(self, x):
            return self.logits(self.pool(self.conv(x)))

    keras.utils.set_random_seed(4)
    classifier = Classifier()
    classifier(images[:1])
    with pytest.raises(ValueError, match=r"Classifier is subclassed: wrap it as inputs = keras.Input"):
        tb_cnnviz.CNNViz(str(tmp_path / "bare"), images[:3], model=classifier)
    inputs = keras.Input((32, 32, 3))
    wrapped = keras.Model(inputs, classifier(inputs))
    wrapped.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # says the head is softmax
    tb_cnnviz.CNNViz(str(tmp_path / "wrapped"), images[:3], labels[:3], model=wrapped, strict=True).log(0)
    event = tb_cnnviz.read_run(str(tmp_path / "wrapped")).event(0)
    x = images[:3]
    probabilities = to_numpy(keras.ops.softmax(wrapped(x)))
    np.testing.assert_allclose(event.predictions["probability"], probabilities.max(axis=1), rtol=1e-5)
    acts = to_numpy(classifier.conv(x))  # Grad-CAM of the logit, against gradients taken here
    _, grads = gradient(lambda a: class_scores(classifier.logits(classifier.pool(a)), probabilities.argmax(1)), acts)
    expected = reference_cam(acts, grads, "gradcam", (32, 32))
    assert expected.max() > 0 and quantisation_ok(event.gradcam, expected, (1, 2))

    class SoftmaxClassifier(Classifier):  # its softmax is inside call: it cannot be switched off
        def call(self, x):
            return keras.ops.softmax(super().call(x))

    inputs = keras.Input((32, 32, 3))
    wrapped_softmax = keras.Model(inputs, SoftmaxClassifier()(inputs))
    with pytest.warns(UserWarning, match="SoftmaxClassifier.*post-softmax score"):
        tb_cnnviz.gradcam(wrapped_softmax, images[:2])


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="its premise, float16 gradients that overflow and make the optimizer skip steps, "
                           "holds on TensorFlow (JAX trains in bfloat16; Keras' PyTorch loss scaling counted every step)")
def test_mixed_precision_every_n_steps_events_carry_the_optimizers_step(tmp_path, data, mixed_precision):
    images, labels, _ = data
    keras.utils.set_random_seed(5)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32")(x))
    model.compile("sgd", "sparse_categorical_crossentropy")  # a LossScaleOptimizer under mixed_float16
    seen = {}  # optimizer step -> conv filters, at the start of each batch

    class Spy(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.setdefault(int(self.model.optimizer.iterations.numpy()), np.linalg.norm(
                model.get_layer("c1").kernel.numpy().reshape(-1, 8), axis=0))

    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], labels[:4], every_n_steps=4, strict=True)
    # images scaled up: the first steps' float16 gradients overflow and the optimizer skips them
    model.fit(images * 1000, labels, epochs=1, batch_size=8, verbose=0, callbacks=[Spy(), callback])
    batches, steps = 12, int(model.optimizer.iterations.numpy())
    assert steps < batches  # some steps were skipped, so batch counts and steps differ
    run = tb_cnnviz.read_run(str(tmp_path))
    for step in run.steps():
        norms = seen.get(step, np.linalg.norm(model.get_layer("c1").kernel.numpy().reshape(-1, 8), axis=0))
        np.testing.assert_allclose(run.event(step).stats("c1")["norm"], norms, rtol=1e-4, atol=stats_tolerance(norms))
