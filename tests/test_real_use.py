"""Models as people train them: the binary model of Keras' "Image classification from scratch"
guide (a logit or a sigmoid unit; augmentation, Rescaling, separable convs, residual adds and
batch normalisation inside the model; uint8 images from a tf.data pipeline), a multi-label
sigmoid head, a classifier with an auxiliary output, and a frozen keras.applications backbone
with its preprocessing inside the model and photographs as probes. Each is logged by a real
fit, served by the plugin, and checked against a reference computed here."""


import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_cnnviz
from tests.helpers import pearson, photographs, quantisation_ok, reference_cam, unet
from tests.plugin_helpers import wsgi_client
from tb_cnnviz.datasets import shapes

SIZE = 48


@pytest.fixture(scope="module")
def data():
    images, labels, _ = shapes(64, size=SIZE, seed=7)
    return (images * 255).astype(np.uint8), labels


def scratch_guide_model(sigmoid):
    """The guide's model, made small: its layer kinds, its order, and one output unit."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)  # augmentation inside the model: identity at inference
    x = keras.layers.Rescaling(1.0 / 255)(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="entry")(x)
    x = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(x))
    previous = x
    for width in (16, 32):
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.SeparableConv2D(width, 3, padding="same", name=f"sep{width}a")(x)
        x = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(x))
        x = keras.layers.SeparableConv2D(width, 3, padding="same", name=f"sep{width}b")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = keras.layers.Conv2D(width, 1, strides=2, padding="same", name=f"residual{width}")(previous)
        x = previous = keras.layers.add([x, residual])
    x = keras.layers.SeparableConv2D(48, 3, padding="same", name="exit")(x)
    x = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(x))
    x = keras.layers.Dropout(0.25)(keras.layers.GlobalAveragePooling2D()(x))
    outputs = keras.layers.Dense(1, activation="sigmoid" if sigmoid else None, name="head")(x)
    return keras.Model(inputs, outputs, name="scratch_guide")


def features_and_grads(model, images, conv, scores_of_features, targets):
    """Activations of `conv` and d score / d activations for `targets`, with a plain tape; the
    scores are computed here from the layer before the head and the head's weights."""
    sub = keras.Model(model.inputs, [model.get_layer(conv).output, model.get_layer("head").input])
    with tf.GradientTape() as tape:
        acts, features = sub(tf.constant(images, tf.float32), training=False)
        scores = scores_of_features(features)
        score = tf.reduce_sum(tf.gather(scores, targets, batch_dims=1))
    return acts.numpy(), tape.gradient(score, acts).numpy(), scores.numpy()


def served(logdir, run, step, sample):
    """(event JSON, Grad-CAM array of one sample) as the plugin serves them."""
    client = wsgi_client(str(logdir))
    event = client.json("event", run=run, step=step)
    gradcam = client.ok("gradcam.npy", run=run, step=step, sample=sample).npy()
    return event, gradcam


def assert_gradcam(logged, acts, grads):
    expected = reference_cam(acts, grads, "gradcam", logged.shape[1:])
    assert expected.max() > 0
    assert pearson(logged, expected) >= 0.999 and quantisation_ok(logged, expected, (1, 2))


@pytest.mark.slow
@pytest.mark.parametrize("sigmoid", [False, True], ids=["logit", "sigmoid"])
def test_binary_head_of_the_from_scratch_guide(tmp_path, data, sigmoid):
    images, labels = data
    is_disc = (labels == 1).astype(np.int64)
    keras.utils.set_random_seed(1)
    model = scratch_guide_model(sigmoid)
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=not sigmoid))
    probes, targets = images[:6], [0, 1, 0, 1, 0, 1]  # Grad-CAM of either class
    callback = tb_cnnviz.CNNViz(str(tmp_path / "binary"), probes, is_disc[:6], class_names=["other", "disc"],
                                target=targets, gradcam_layer="exit", strict=True)
    dataset = tf.data.Dataset.from_tensor_slices((images, is_disc)).batch(16)
    model.fit(dataset, epochs=1, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path / "binary"))
    assert run.header.head == "binary" and run.header.num_classes == 2 and run.header.output == "head"
    step = run.steps()[-1]
    event = run.event(step)
    kernel, bias = model.get_layer("head").get_weights()

    def scores(features):  # class 1's score is the logit, class 0's its negation
        logit = tf.matmul(features, kernel) + bias
        return tf.concat([-logit, logit], axis=1)

    acts, grads, both = features_and_grads(model, probes, "exit", scores, targets)
    probability_1 = 1 / (1 + np.exp(-both[:, 1].astype(np.float64)))
    predictions = event.predictions
    assert predictions["predicted"] == (both[:, 1] > 0).astype(int).tolist()
    np.testing.assert_allclose(predictions["top_probabilities"],
                               np.sort(np.stack([1 - probability_1, probability_1], 1), axis=1)[:, ::-1], atol=1e-5)
    assert predictions["target"] == targets and predictions["label"] == is_disc[:6].tolist()
    assert_gradcam(event.gradcam, acts, grads)
    answer, gradcam = served(tmp_path, "binary", step, sample=3)
    assert answer["predictions"]["predicted"] == predictions["predicted"]
    np.testing.assert_array_equal(gradcam, event.gradcam[3])


@pytest.mark.slow
def test_multilabel_head_reads_sigmoids_and_multi_hot_labels(tmp_path, data):
    images, labels = data
    rng = np.random.default_rng(2)
    multi_hot = (rng.random((len(images), 4)) < 0.4).astype(np.int64)
    multi_hot[np.arange(len(images)), labels] = 1  # the shape drawn, and some others
    keras.utils.set_random_seed(2)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="sigmoid", name="head")(x))
    model.compile("adam", "binary_crossentropy")
    probes = images[:5]
    callback = tb_cnnviz.CNNViz(str(tmp_path / "multi"), probes, multi_hot[:5], target="true", strict=True)
    model.fit(images, multi_hot, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path / "multi"))
    assert run.header.head == "multilabel" and run.header.num_classes == 4
    true_classes = [np.flatnonzero(row).tolist() for row in multi_hot[:5]]
    assert run.header.labels == true_classes
    event = run.event(run.steps()[-1])
    kernel, bias = model.get_layer("head").get_weights()
    targets = [classes[0] for classes in true_classes]  # target="true": each probe's lowest true class
    acts, grads, logits = features_and_grads(model, probes, "c2", lambda f: tf.matmul(f, kernel) + bias, targets)
    sigmoids = 1 / (1 + np.exp(-logits.astype(np.float64)))  # per class, never a softmax over them
    predictions = event.predictions
    assert predictions["target"] == targets and predictions["label"] == true_classes
    assert predictions["predicted"] == sigmoids.argmax(1).tolist()
    assert predictions["predicted_set"] == [np.flatnonzero(row > 0.5).tolist() for row in sigmoids]
    np.testing.assert_allclose(predictions["target_probability"], sigmoids[np.arange(5), targets], atol=1e-5)
    np.testing.assert_allclose(predictions["top_probabilities"], -np.sort(-sigmoids, axis=1), atol=1e-5)
    assert_gradcam(event.gradcam, acts, grads)


@pytest.mark.slow
def test_auxiliary_output_is_picked_by_name(tmp_path, data):
    images, labels = data
    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2")(x))
    shape = keras.layers.Dense(4, activation="softmax", name="head")(x)
    area = keras.layers.Dense(1, name="area")(x)  # an auxiliary regression
    model = keras.Model(inputs, {"shape": shape, "area": area})
    model.compile("adam", {"shape": "sparse_categorical_crossentropy", "area": "mse"})
    with pytest.raises(ValueError, match=r"2 outputs: pick the one to explain with output=, one of \['area', 'shape'\]"):
        tb_cnnviz.CNNViz(str(tmp_path / "x"), images[:4], model=model)
    with pytest.raises(ValueError, match=r"output 'area' of shape \(None, 1\) may be a logit of two classes"):
        tb_cnnviz.CNNViz(str(tmp_path / "x"), images[:4], output="area", model=model)
    callback = tb_cnnviz.CNNViz(str(tmp_path / "aux"), images[:4], labels[:4], output="shape", strict=True)
    model.fit(images, {"shape": labels, "area": labels.astype(np.float32)}, epochs=1, batch_size=16, verbose=0,
              callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path / "aux"))
    assert run.header.head == "softmax" and run.header.output == "shape"
    event = run.event(run.steps()[-1])
    probabilities = model(tf.constant(images[:4], tf.float32))["shape"].numpy()
    assert event.predictions["predicted"] == probabilities.argmax(1).tolist()
    np.testing.assert_allclose(event.predictions["probability"], probabilities.max(1), atol=1e-5)
    kernel, bias = model.get_layer("head").get_weights()
    acts, grads, _ = features_and_grads(model, images[:4], "c2", lambda f: tf.matmul(f, kernel) + bias,
                                        probabilities.argmax(1))
    assert_gradcam(event.gradcam, acts, grads)
    np.testing.assert_allclose(tb_cnnviz.gradcam(model, images[:4], output="shape"), event.gradcam,
                               atol=event.gradcam.max() / 255 + 1e-6)


@pytest.mark.slow
def test_frozen_backbone_with_preprocessing_inside_and_photographs_as_probes(tmp_path):
    """Transfer learning as Keras' guide does it: keras.applications.MobileNetV2 frozen and
    called with training=False, preprocess_input inside the model, a new head."""
    size = 96
    keras.utils.set_random_seed(4)
    backbone = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(size, size, 3))
    backbone.trainable = False
    inputs = keras.Input((size, size, 3))
    x = backbone(keras.applications.mobilenet_v2.preprocess_input(inputs), training=False)
    x = keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    probes = photographs(size)  # uint8 photographs: astronaut, chelsea, coffee, ...
    callback = tb_cnnviz.CNNViz(str(tmp_path / "transfer"), probes, class_names=["a", "b", "c"], strict=True)
    rng = np.random.default_rng(4)
    train = tf.data.Dataset.from_tensor_slices(
        (rng.integers(0, 256, (32, size, size, 3)).astype(np.uint8), rng.integers(0, 3, 32))).batch(8)
    model.fit(train, epochs=1, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path / "transfer"))
    prefix = backbone.name + "/"
    assert run.layers == [prefix + name for name in (  # one per stage, the last being Grad-CAM's
        "expanded_conv_project", "block_2_project", "block_5_project", "block_12_project", "Conv_1")]
    assert run.header.gradcam_layer == prefix + "Conv_1"
    step = run.steps()[-1]
    client = wsgi_client(str(tmp_path))
    preprocessed = keras.applications.mobilenet_v2.preprocess_input(tf.constant(probes, tf.float32))
    for name in ("block_2_project", "Conv_1"):  # served activations are the layer's true output
        maps = client.ok("activations.npy", run="transfer", step=step, layer=name).npy()
        channels = run.header.channels[prefix + name]
        true = keras.Model(backbone.inputs, backbone.get_layer(name).output)(preprocessed, training=False).numpy()
        assert quantisation_ok(maps, true[..., channels].transpose(0, 3, 1, 2), (2, 3)), name
    sub = keras.Model(backbone.inputs, [backbone.get_layer("Conv_1").output, backbone.output])
    kernel, bias = model.get_layer("head").get_weights()
    event = run.event(step)
    with tf.GradientTape() as tape:
        acts, features = sub(preprocessed, training=False)
        logits = tf.matmul(tf.reduce_mean(features, axis=(1, 2)), kernel) + bias
        score = tf.reduce_sum(tf.gather(logits, event.predictions["target"], batch_dims=1))
    assert event.predictions["predicted"] == logits.numpy().argmax(1).tolist()
    assert_gradcam(event.gradcam, acts.numpy(), tape.gradient(score, acts).numpy())
    served_map = client.ok("gradcam.npy", run="transfer", step=step, sample=1).npy()
    np.testing.assert_array_equal(served_map, event.gradcam[1])
    assert served_map.shape == (size, size)


def image_and_metadata_model(as_dict):
    """An image and a metadata vector, joined after the convs (image + tabular data)."""
    image = keras.Input((SIZE, SIZE, 3), name="image")
    meta = keras.Input((5,), name="meta")
    x = keras.layers.Rescaling(1.0 / 255)(image)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2")(x))
    x = keras.layers.Concatenate()([x, keras.layers.Dense(4, activation="relu", name="meta_dense")(meta)])
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(x)
    return keras.Model({"image": image, "meta": meta} if as_dict else [meta, image], outputs)


@pytest.mark.slow
@pytest.mark.parametrize("as_dict", [True, False], ids=["dict", "list"])
def test_several_inputs_with_the_image_input_named(tmp_path, data, as_dict):
    images, labels = data
    meta = np.random.default_rng(5).normal(size=(len(images), 5)).astype(np.float32)
    keras.utils.set_random_seed(5)
    model = image_and_metadata_model(as_dict)
    model.compile("adam", "sparse_categorical_crossentropy")
    x = {"image": images, "meta": meta} if as_dict else [meta, images]
    probes = {"image": images[:4], "meta": meta[:4]} if as_dict else [meta[:4], images[:4]]
    options = {} if as_dict else {"image_input": "image"}  # a dict's only 4-D input is found; a list's named
    callback = tb_cnnviz.CNNViz(str(tmp_path / "multi_input"), probes, labels[:4], strict=True, **options)
    model.fit(x, labels, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path / "multi_input"))
    assert quantisation_ok(run.probes, images[:4].astype(np.float32), (1, 2, 3))  # the image input's
    event = run.event(run.steps()[-1])
    probabilities = model(probes, training=False).numpy()
    assert event.predictions["predicted"] == probabilities.argmax(1).tolist()
    np.testing.assert_allclose(event.predictions["probability"], probabilities.max(1), atol=1e-5)
    sub = keras.Model(model.inputs, [model.get_layer("c2").output, model.get_layer("head").input])
    kernel, bias = model.get_layer("head").get_weights()
    with tf.GradientTape() as tape:
        acts, features = sub(probes, training=False)
        logits = tf.matmul(features, kernel) + bias
        score = tf.reduce_sum(tf.gather(logits, probabilities.argmax(1), batch_dims=1))
    assert_gradcam(event.gradcam, acts.numpy(), tape.gradient(score, acts).numpy())
    public = tb_cnnviz.gradcam(model, probes, **options)
    np.testing.assert_allclose(public, event.gradcam, atol=event.gradcam.max() / 255 + 1e-6)


@pytest.mark.parametrize("samples, options, message", [
    (lambda x, m: {"image": x}, {}, r"the model takes a dict of inputs \['image', 'meta'\]; samples give \['image'\]"),
    (lambda x, m: {"image": x, "meta": m[:, :3]}, {},
     r"samples for input 'meta' have shape \(3,\) per sample but the model's input expects \(5,\)"),
    (lambda x, m: {"image": x, "meta": m[:3]}, {}, r"one row per sample in every input; got \{'image': 4, 'meta': 3\}"),
    (lambda x, m: {"image": x, "meta": m}, {"image_input": "meta"},
     r"samples for input 'meta' must be a batch of images shaped \(N, height, width, channels\), got shape \(4, 5\)"),
    (lambda x, m: {"image": x, "meta": m}, {"image_input": "picture"},
     r"image_input='picture' is not one of the samples' inputs: \['image', 'meta'\]"),
    (lambda x, m: {"a": x, "b": x}, {}, r"samples have several image inputs \(N, H, W, C\) among \['a', 'b'\]: name the "
                                        r"one whose maps to show with image_input=, one of \['a', 'b'\]"),
    (lambda x, m: x, {}, r"the model takes 2 inputs \['image', 'meta'\]: give samples as a dict of them"),
])
def test_samples_that_do_not_fit_the_inputs_say_which_input(tmp_path, samples, options, message):
    x, m = np.zeros((4, SIZE, SIZE, 3), np.float32), np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match=message):
        tb_cnnviz.CNNViz(str(tmp_path), samples(x, m), model=image_and_metadata_model(True), **options)


@pytest.mark.slow
def test_segmentation_head_explains_the_pixels_predicted_as_each_class(tmp_path):
    images, labels, masks = shapes(48, size=32, seed=9)
    truth = np.where(masks, labels[:, None, None] + 1, 0)  # 0 is the background, 1-4 the shapes
    keras.utils.set_random_seed(9)
    model = unet()
    model.compile("adam", "sparse_categorical_crossentropy")
    probes = images[:4]
    callback = tb_cnnviz.CNNViz(str(tmp_path / "seg"), probes, truth[:4], target="predicted",
                                class_names=["background", "square", "disc", "triangle", "cross"], strict=True)
    model.fit(images, truth, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    run = tb_cnnviz.read_run(str(tmp_path / "seg"))
    assert run.header.head == "segmentation" and run.header.background_class == 0
    assert run.header.gradcam_layer == "dec1"  # the last conv before the 1x1 classifier
    assert run.header.labels == [sorted({0, int(label) + 1}) for label in labels[:4]]
    step = run.steps()[-1]
    event = run.event(step)
    probabilities = model(tf.constant(probes), training=False).numpy()
    predicted_masks = probabilities.argmax(-1)
    np.testing.assert_array_equal(event.masks, predicted_masks)
    counts = np.stack([np.bincount(mask.ravel(), minlength=5) for mask in predicted_masks])
    foreground = np.where(np.arange(5) == 0, -1, counts)
    predictions = event.predictions
    assert predictions["predicted"] == foreground.argmax(1).tolist()  # the most pixels other than the background
    assert predictions["predicted_set"] == [np.flatnonzero(row).tolist() for row in counts]
    targets = np.asarray(predictions["target"])
    region = predicted_masks == targets[:, None, None]
    assert predictions["target_pixels"] == region.sum(axis=(1, 2)).tolist()
    mean_probability = [probabilities[i][..., t][region[i]].mean() if region[i].any() else 0.0
                        for i, t in enumerate(targets)]
    np.testing.assert_allclose(predictions["target_probability"], mean_probability, atol=1e-5)
    # Grad-CAM of the target's pre-softmax score summed over the pixels predicted as it
    kernel, bias = model.get_layer("classes").get_weights()
    sub = keras.Model(model.inputs, model.get_layer("dec1").output)
    with tf.GradientTape() as tape:
        acts = sub(tf.constant(probes), training=False)
        tape.watch(acts)
        logits = tf.einsum("nhwc,ck->nhwk", acts, kernel[0, 0]) + bias
        score = tf.reduce_sum(tf.gather(logits, targets, axis=3, batch_dims=1) * region)
    assert_gradcam(event.gradcam, acts.numpy(), tape.gradient(score, acts).numpy())
    client = wsgi_client(str(tmp_path))
    served_masks = client.ok("mask.npy", run="seg", step=step).npy()
    np.testing.assert_array_equal(served_masks, predicted_masks)
    assert client.ok("mask.npy", run="seg", step=step, sample=2).npy().shape == (32, 32)
    assert client.ok("mask", run="seg", step=step, sample=2).headers["Content-Type"] == "image/png"


@pytest.mark.slow
def test_segmentation_target_with_no_pixels_gets_a_zero_map_and_says_so(tmp_path):
    images, labels, masks = shapes(4, size=32, seed=10)
    keras.utils.set_random_seed(10)
    model = unet(classes=3, softmax=False)  # logits: a (N, H, W, K) linear output says which with head=
    with pytest.raises(ValueError, match=r"may be per-pixel class scores \(head='segmentation'\)"):
        tb_cnnviz.CNNViz(str(tmp_path / "x"), images, model=model)
    kernel, bias = model.get_layer("classes").get_weights()
    model.get_layer("classes").set_weights([kernel, np.asarray([0.0, 0.0, -1e4], np.float32)])  # class 2: no pixel
    assert not np.any(model(tf.constant(images), training=False).numpy().argmax(-1) == 2)
    callback = tb_cnnviz.CNNViz(str(tmp_path / "seg"), images, head="segmentation", target=2, model=model,
                                strict=True)
    callback.log(0)
    event = tb_cnnviz.read_run(str(tmp_path / "seg")).event(0)
    assert event.predictions["target_pixels"] == [0, 0, 0, 0]
    assert np.all(event.gradcam == 0) and event.predictions["target_probability"] == [0.0] * 4
    for labels_, message in ((np.zeros((4, 16, 16), int), r"masks \(N, 32, 32\) of class indices at the output's"),
                             (np.full((4, 32, 32), 3), "class indices below the model's 3 classes"),
                             (np.zeros(4, int), r"labels of a segmentation head must be masks")):
        with pytest.raises(ValueError, match=message):
            tb_cnnviz.CNNViz(str(tmp_path / "x"), images, labels_, head="segmentation", model=model)
    with pytest.raises(ValueError, match="background_class must be below the model's 3 classes, got 5"):
        tb_cnnviz.CNNViz(str(tmp_path / "x"), images, head="segmentation", background_class=5, model=model)
