"""Feature visualisation by activation maximisation (Olah, Mordvintsev and Schubert, "Feature
Visualization", Distill 2017): for chosen channels of conv layers, the image that maximises the
mean of the channel's feature map.

The images are compared across training events, so every ascent starts from the same image (a
fixed seed) and is deterministic given the weights: what changes between events is the filter.
Every channel of every layer is one item of a single batch, and the whole ascent is one compiled
loop, traced once per model; the weights are read when it runs.

The regularisers are Olah et al.'s: a Fourier parameterisation scaled by 1/f (Lucid's
`fft_image`), squashed by a sigmoid into the pixel range, and random jitter. Lucid's colour
decorrelation is left out: its matrix is ImageNet's, and images here have any channel count.
bench/feature_vis_seeds.py measures what the constants give: on the tests' trained model, each
image activates its filter more than any training image does.
"""

import contextlib
import numbers

import keras
import numpy as np
import tensorflow as tf

from tb_cnnviz import checks, inputs as model_inputs, layers as layer_utils

LEARNING_RATE = 0.2  # Adam's, on the spectrum; at 128 steps 0.1 and 0.2 pass bench/feature_vis_seeds.py, 0.05 not
JITTER = 4  # pixels an image is rolled by, at most, in each direction at each step
START_SPREAD = 0.01  # standard deviation of the start spectrum: a nearly flat image in mid-range
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPSILON = 1e-8


def _frequency_scale(height: int, width: int) -> np.ndarray:
    """(height, width // 2 + 1) amplitude of each frequency of a real 2-D spectrum (Lucid's
    `fft_image`): 1/f, as natural images' spectra fall off. With parameters of one size at every
    frequency, the ascent builds smooth structure instead of high-frequency noise."""
    frequencies = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :])
    return (np.sqrt(height * width) / np.maximum(frequencies, 1.0 / max(height, width))).astype(np.float32)


@tf.custom_gradient
def _redirected_relu(x):
    """ReLU whose gradient, for an item that lets none through, passes wherever it would raise a
    negative input (Lucid's "redirected ReLU"): an image that leaves a unit at zero everywhere,
    as a flat start image leaves many, still learns which way to change."""
    def gradient(upstream):
        through = tf.where(x > 0, upstream, tf.zeros_like(upstream))
        raising = tf.where((x <= 0) & (upstream < 0), tf.zeros_like(upstream), upstream)
        blocked = tf.reduce_all(tf.equal(through, 0), axis=tuple(range(1, len(x.shape))), keepdims=True)
        return tf.where(blocked, raising, through)

    return tf.nn.relu(x), gradient


class FeatureVisualiser:
    """Built once per model; call it at an event.

    While it runs, every ReLU activation of the model's layers (`activation="relu"`) has
    `_redirected_relu`'s gradient, so that a filter the start image leaves at zero still moves.

    Args:
      model: a built functional or Sequential Keras model.
      channels: {layer path: [channel indices]}, paths being keys of
        `tb_cnnviz.layers.conv_layers(model)` ("outer/inner" inside nested models).
      image_shape: (H, W, C) of the model's image input.
      value_range: (lo, hi) the pixels stay within (say, the reference images' min and max).
      image_input: None for a single-input model, else where the images sit in the model's
        inputs (`tb_cnnviz.inputs.Samples`: a dict key or list index).
      steps: gradient-ascent steps.
      seed: of the start image and of the jitter.

    Raises:
      ValueError: a path that is no conv layer of the model (the message lists them), a channel
        out of range, or a shape, range or step count it cannot use.
    """

    def __init__(self, model, channels: dict, *, image_shape, value_range, image_input=None,
                 steps: int = 128, seed: int = 0):
        checks.check_model(model)
        convs = layer_utils.conv_layers(model)
        self.channels = {path: _checked_channels(convs, path, indices) for path, indices in channels.items()}
        if not self.channels:
            raise ValueError(f"channels is empty: give {{layer path: [channel indices]}}, paths among {list(convs)}")
        self.image_shape = tuple(int(size) for size in image_shape)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be (height, width, channels), got {image_shape!r}")
        low, high = (float(value) for value in value_range)
        if not low < high:
            raise ValueError(f"value_range must be (lo, hi) with lo < hi, got {value_range!r}")
        if not isinstance(steps, numbers.Integral) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        self._model = model
        self._watched = {path: convs[path] for path in self.channels}
        self._relus = [layer for _, layer in layer_utils.walk(model)
                       if getattr(layer, "activation", None) is keras.activations.relu]
        self._image_input = image_input
        self._low, self._high = low, high
        self._steps = int(steps)
        self._seed = int(seed)
        height, width, depth = self.image_shape
        self._scale = tf.constant(_frequency_scale(height, width).astype(np.complex64))
        # One start spectrum for every item: an item's image depends on its own channel alone.
        self._start = tf.random.stateless_normal((1, depth, height, width // 2 + 1, 2), (self._seed, 0),
                                                 stddev=START_SPREAD)
        self._ascent = None  # the traced ascent, made at the first call

    def __call__(self, other_inputs: model_inputs.Samples | None = None) -> dict:
        """{path: float32 (len(channels[path]), H, W, C)} images within value_range.

        other_inputs: for a multi-input model, one sample (`tb_cnnviz.inputs.Samples`) whose
        inputs other than the images are held fixed; None for a single-input model.
        """
        if (other_inputs is None) != (self._image_input is None):
            raise ValueError("give other_inputs (one sample of the model's inputs) exactly when image_input is set")
        if other_inputs is not None and len(other_inputs) != 1:
            raise ValueError(f"other_inputs must hold one sample, got {len(other_inputs)}")
        others = None if other_inputs is None else other_inputs.map(tf.convert_to_tensor)
        if self._ascent is None:
            self._ascent = tf.function(self._ascend).get_concrete_function(others)
        images = self._ascent(others).numpy()
        splits = np.cumsum([len(indices) for indices in self.channels.values()])[:-1]
        return dict(zip(self.channels, np.split(images, splits)))

    def _images(self, spectrum):
        """(B, H, W, C) images of a (B, C, H, W // 2 + 1, 2) spectrum, squashed into value_range
        (clipped too: lo + (hi - lo) can round past hi in float32)."""
        height, width, _ = self.image_shape
        complex_spectrum = tf.complex(spectrum[..., 0], spectrum[..., 1]) * self._scale
        planes = tf.signal.irfft2d(complex_spectrum, fft_length=(height, width)) / 4.0  # Lucid's scale
        squashed = self._low + (self._high - self._low) * tf.sigmoid(tf.transpose(planes, (0, 2, 3, 1)))
        return tf.clip_by_value(squashed, self._low, self._high)

    def _objectives(self, images, others):
        """(B,) the mean of each item's own channel map, the model seeing `images`."""
        if others is None:
            inputs = images
        else:
            batch = images.shape[0]
            tiled = model_inputs.Samples(others, self._image_input).map(
                lambda value: tf.tile(value, [batch] + [1] * (len(value.shape) - 1)))
            inputs = model_inputs.Samples(tiled, self._image_input).with_images(images)
        recorded = {}
        with contextlib.ExitStack() as stack:
            stack.enter_context(layer_utils.recording(self._watched, recorded))
            for layer in self._relus:
                stack.enter_context(layer_utils.patched(layer, "activation", _redirected_relu))
            self._model(inputs, training=False)
        missing = set(self._watched) - set(recorded)
        if missing:
            raise ValueError(f"layers {sorted(missing)} are not used by the model's forward pass")
        objectives, start = [], 0
        for path, indices in self.channels.items():
            own = tf.cast(recorded[path][start:start + len(indices)], tf.float32)  # mixed precision: float16
            objectives.append(tf.gather(tf.reduce_mean(own, axis=(1, 2)), indices, batch_dims=1))
            start += len(indices)
        return tf.concat(objectives, axis=0)

    def _ascend(self, others):
        """Adam's gradient ascent of the sum of the objectives over the spectra, each step seeing
        the images rolled by a few pixels (`JITTER`, drawn from the seed and the step): Olah et
        al.'s transformation robustness, here mostly at the borders, as the objective is a mean
        over the map."""
        batch = sum(len(indices) for indices in self.channels.values())
        spectrum = tf.tile(self._start, [batch, 1, 1, 1, 1])
        beta1, beta2 = _ADAM_BETAS

        def step(index, spectrum, mean, square):
            shift = tf.random.stateless_uniform((2,), (self._seed, index), -JITTER, JITTER + 1, tf.int32)
            with tf.GradientTape() as tape:
                tape.watch(spectrum)
                images = tf.roll(self._images(spectrum), shift, axis=(1, 2))
                objective = tf.reduce_sum(self._objectives(images, others))
            gradient = tape.gradient(objective, spectrum)
            mean = beta1 * mean + (1 - beta1) * gradient
            square = beta2 * square + (1 - beta2) * gradient**2
            count = tf.cast(index + 1, tf.float32)
            update = mean / (1 - beta1**count) / (tf.sqrt(square / (1 - beta2**count)) + _ADAM_EPSILON)
            return index + 1, spectrum + LEARNING_RATE * update, mean, square

        zeros = tf.zeros_like(spectrum)
        _, spectrum, _, _ = tf.while_loop(lambda index, *_: index < self._steps, step,
                                          (tf.constant(0), spectrum, zeros, zeros))
        return self._images(spectrum)


def _checked_channels(convs: dict, path, indices) -> list:
    """`indices` of the layer at `path` as a list of ints.

    Raises:
      ValueError: no conv layer at that path (the message lists them), or an index that is not
        a channel of the layer.
    """
    if path not in convs:
        raise ValueError(f"channels names {path!r}, which is not a conv layer of the model; "
                         f"give paths among: {', '.join(convs)}")
    count = layer_utils.effective_kernel(convs[path]).shape[-1]
    indices = list(indices)
    if not indices or any(not isinstance(i, numbers.Integral) or isinstance(i, bool) or not 0 <= i < count
                          for i in indices):
        raise ValueError(f"channels[{path!r}] must be a non-empty list of channel indices in [0, {count}), "
                         f"got {indices!r}")
    return [int(i) for i in indices]
