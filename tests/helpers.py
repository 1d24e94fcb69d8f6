"""Models and reference computations shared by the tests."""

import keras
import numpy as np
import tensorflow as tf


class NaNChannelConv(keras.layers.Conv2D):
    """A Conv2D whose output channel 0 is NaN, set after the convolution by assignment, where no
    kernel can hide it (oneDNN's fused ReLU reads a NaN kernel's output as 0 on some CPUs)."""

    def call(self, inputs):
        outputs = super().call(inputs)
        return keras.ops.where(keras.ops.arange(self.filters) == 0, float("nan"), outputs)


class NaNDense(keras.layers.Dense):
    """A Dense head whose output is NaN, set after its own call (its softmax, or the linear run
    Grad-CAM makes of it) by assignment: a NaN reaching it through pooling was read as finite
    ("class 3 25.4 %") in some runs of the probe's fused graph."""

    def call(self, inputs):
        outputs = super().call(inputs)
        return keras.ops.where(keras.ops.ones_like(outputs) > 0, float("nan"), outputs)


def stats_tolerance(values) -> float:
    """How far 8-bit statistics (format.pack_stats) may be from `values`: half a level of
    their range, with 1 % to spare for the range being taken of the logged values."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    return 0.0 if finite.size == 0 else float(finite.max() - finite.min()) / 508 * 1.01


def small_cnn(size=32, classes=4, softmax=True, name="small", diverged=False):
    """Conv, separable and depthwise layers, with a pooling step between them.

    diverged: conv4's channel 0 and the head's output are NaN (NaNChannelConv, NaNDense)."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.SeparableConv2D(12, 3, padding="same", activation="relu", name="sep2")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu", name="dw3")(x)
    conv4 = NaNChannelConv if diverged else keras.layers.Conv2D
    x = conv4(16, 3, padding="same", activation="relu", name="conv4")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    head = NaNDense if diverged else keras.layers.Dense
    outputs = head(classes, activation="softmax" if softmax else None, name="head")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    return model


def unet(classes=5, softmax=True):
    """A small U-Net: two resolutions, a skip connection, a 1x1 classifier conv per pixel."""
    inputs = keras.Input((32, 32, 3))
    skip = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="enc1")(inputs)
    x = keras.layers.MaxPooling2D()(skip)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="enc2")(x)
    x = keras.layers.Conv2DTranspose(8, 2, strides=2, name="up")(x)
    x = keras.layers.Concatenate()([x, skip])
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="dec1")(x)
    outputs = keras.layers.Conv2D(classes, 1, activation="softmax" if softmax else None, name="classes")(x)
    return keras.Model(inputs, outputs, name="unet")


def pearson(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(np.corrcoef(a, b)[0, 1])


def effective_kernel_np(layer):
    """Reference: kernel (kh, kw, in, out) from get_weights()."""
    weights = layer.get_weights()
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise, pointwise = weights[0], weights[1]
        kh, kw, cin, mult = depthwise.shape
        full = np.zeros((kh, kw, cin, pointwise.shape[-1]), np.float64)
        for c in range(cin):
            for m in range(mult):
                full[:, :, c, :] += depthwise[:, :, c, m, None] * pointwise[0, 0, c * mult + m][None, None, :]
        return full
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, cin, mult = weights[0].shape
        return weights[0].reshape(kh, kw, 1, cin * mult)
    return weights[0]


def filter_rows(layer):
    kernel = effective_kernel_np(layer).astype(np.float64)
    return kernel.transpose(3, 0, 1, 2).reshape(kernel.shape[3], -1)


def cosine_distance_np(a, b):
    dot = (a * b).sum(1)
    return 1 - dot / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _eigencam_np(a):
    """Eigen-CAM per image: the centred (pixels, channels) activations on their first right
    singular vector, signed to correlate positively with the channels' mean map."""
    maps = []
    for image in a:
        flat = image.reshape(-1, image.shape[-1])
        centred = flat - flat.mean(axis=0)
        projection = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
        if np.corrcoef(projection, flat.mean(axis=1))[0, 1] < 0:
            projection = -projection
        maps.append(projection.reshape(image.shape[:2]))
    return np.stack(maps)


def reference_cam(activations, grads, method, size):
    """Each class activation map method written out in numpy, following its paper (for
    "gradcam++" or "gradcam_pp": Grad-CAM++), ReLU'd and upsampled by tf.image.resize."""
    a = activations.astype(np.float64)
    g = grads.astype(np.float64)
    if method == "gradcam":
        maps = (a * g.mean(axis=(1, 2))[:, None, None, :]).sum(-1)
    elif method in ("gradcam++", "gradcam_pp"):
        g2, g3 = g**2, g**3
        alpha = g2 / (2 * g2 + a.sum(axis=(1, 2), keepdims=True) * g3 + 1e-6)
        alpha = np.where(g != 0, alpha, 0)
        maps = (a * (np.maximum(g, 0) * alpha).sum(axis=(1, 2))[:, None, None, :]).sum(-1)
    elif method == "hirescam":
        maps = (g * a).sum(-1)
    elif method == "xgradcam":
        weights = (g * a).sum(axis=(1, 2)) / (a.sum(axis=(1, 2)) + 1e-7)
        maps = (a * weights[:, None, None, :]).sum(-1)
    elif method == "layercam":
        maps = (np.maximum(g, 0) * a).sum(-1)
    elif method == "eigencam":
        maps = _eigencam_np(a)
    else:
        raise ValueError(f"no reference for {method!r}")
    maps = np.maximum(maps, 0)
    return tf.image.resize(maps[..., None].astype(np.float32), size, method="bilinear").numpy()[..., 0]


def reference_gradients(model, images, conv_output, score_fn, targets):
    """Activations of `conv_output` and d score / d activations, with the backend's own
    gradients (tests/backend_tools.py) through the model cut in two at `conv_output`.

    conv_output: a KerasTensor of the model graph; score_fn maps the output of the model's
    last-but-one layer to the class scores Grad-CAM differentiates (logits).
    """
    from tests.backend_tools import class_scores, gradient, to_numpy

    rest = keras.Model(conv_output, model.layers[-2].output)
    acts = to_numpy(keras.Model(model.inputs, conv_output)(images, training=False))
    _, grads = gradient(lambda a: class_scores(score_fn(rest(a, training=False)), targets), acts)
    return acts, grads


def quantisation_ok(decoded, true, per_map_axes):
    """|decoded - true| <= (range of that map) / 255, with float32 slack."""
    lo = true.min(axis=per_map_axes, keepdims=True)
    hi = true.max(axis=per_map_axes, keepdims=True)
    bound = (hi - lo) / 255.0 + 1e-6 * (1 + np.abs(true))
    return bool(np.all(np.abs(decoded - true) <= bound))


PHOTOGRAPHS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
               "camera")  # scikit-image ships these: no download


def photographs(size, count=8):
    """`count` photographs shipped inside scikit-image, centre-cropped square and resized to
    size x size, as uint8 RGB (count, size, size, 3): real probe images that need no download."""
    import skimage.data
    from PIL import Image

    images = []
    for name in PHOTOGRAPHS[:count]:
        pixels = getattr(skimage.data, name)()
        pixels = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels[..., :3]
        height, width = pixels.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = Image.fromarray(pixels[top:top + side, left:left + side])
        images.append(np.asarray(square.resize((size, size), Image.BILINEAR)))
    return np.stack(images)


def train_shapes_model(seed=0):
    """The demo's model trained on 3,000 shapes, half on nearly smooth backgrounds (the demo: a
    third; `datasets.training_shapes`), 8 epochs; bench/trust_seeds.py trains it over seeds. SimpleNamespace(model, probes, labels, masks) with 32 probes it was not trained on."""
    import types

    from demo.model import vgg_style
    from tb_cnnviz.datasets import shapes, training_shapes

    keras.utils.set_random_seed(seed)
    images, labels, _ = training_shapes(3000, size=40, smooth=0.5)
    probes, probe_labels, probe_masks = shapes(32, size=40, seed=2)
    model = vgg_style(40)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=8, batch_size=32, verbose=0)
    return types.SimpleNamespace(model=model, probes=probes, labels=probe_labels, masks=probe_masks)


def assert_maps_agree(expected, found, map_axes, what):
    """Within one quantisation step of each map's range, plus 1e-3 of its largest value (a
    quarter of a step): float rounding moves a map whose terms cancel (a class the model barely
    sees: largest value 9e-4) by 3e-4 of that value between backends."""
    expected, found = np.asarray(expected, np.float64), np.asarray(found, np.float64)
    assert found.shape == expected.shape, what
    step = np.ptp(expected, axis=map_axes, keepdims=True) / 255
    scale = np.max(np.abs(expected), axis=map_axes, keepdims=True)
    excess = np.abs(found - expected) - (step * (1 + 1e-6) + 1e-3 * scale)
    assert np.all(excess <= 0), f"{what}: off by up to {excess.max():.3g} beyond the bound"
