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
from keras import ops

from tb_cnnviz import backend
from tb_cnnviz.anatomy import checks, conv_layers, model_inputs

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


def _inverse_dft(size: int, frequencies: int) -> tuple:
    """(cos, sin) (size, frequencies) of the inverse discrete Fourier transform along one axis."""
    angles = 2 * np.pi * np.outer(np.arange(size), np.arange(frequencies)) / size
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def irfft2(real, imaginary, height: int, width: int):
    """The real (..., height, width) planes of a half spectrum (..., height, width // 2 + 1) given
    as its real and imaginary parts: numpy's irfft2, as two matrix products (small images)."""
    cos_y, sin_y = _inverse_dft(height, height)
    cos_x, sin_x = _inverse_dft(width, width // 2 + 1)
    weight = np.full(width // 2 + 1, 2.0, np.float32)  # each frequency stands for itself and its mirror
    weight[0] = 1.0
    if width % 2 == 0:
        weight[-1] = 1.0
    weight = ops.convert_to_tensor(weight)  # numpy * a torch tensor would turn the tensor into numpy
    rows_real = (ops.einsum("yk,...kf->...yf", cos_y, real) - ops.einsum("yk,...kf->...yf", sin_y, imaginary)) / height
    rows_imaginary = (ops.einsum("yk,...kf->...yf", sin_y, real)
                      + ops.einsum("yk,...kf->...yf", cos_y, imaginary)) / height
    return (ops.einsum("...yf,xf->...yx", rows_real * weight, cos_x)
            - ops.einsum("...yf,xf->...yx", rows_imaginary * weight, sin_x)) / width


@ops.custom_gradient
def _redirected_relu(x):
    """ReLU whose gradient, for an item that lets none through, passes wherever it would raise a
    negative input (Lucid's "redirected ReLU"): an image that leaves a unit at zero everywhere,
    as a flat start image leaves many, still learns which way to change."""
    def gradient(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        through = ops.where(x > 0, upstream, ops.zeros_like(upstream))
        raising = ops.where(ops.logical_and(x <= 0, upstream < 0), ops.zeros_like(upstream), upstream)
        blocked = ops.all(ops.equal(through, 0), axis=tuple(range(1, len(x.shape))), keepdims=True)
        return ops.where(blocked, raising, through)

    return ops.relu(x), gradient


class FeatureVisualiser:
    """Built once per model; call it at an event.

    While it runs, every ReLU activation of the model's layers (`activation="relu"`) has
    `_redirected_relu`'s gradient, so that a filter the start image leaves at zero still moves.

    Args:
      model: a built functional or Sequential Keras model.
      channels: {layer path: [channel indices]}, paths being keys of
        `tb_cnnviz.anatomy.conv_layers.conv_layers(model)` ("outer/inner" inside nested models).
      image_shape: (H, W, C) of the model's image input.
      value_range: (lo, hi) the pixels stay within (say, the reference images' min and max).
      image_input: None for a single-input model, else where the images sit in the model's
        inputs (`tb_cnnviz.anatomy.model_inputs.Samples`: a dict key or list index).
      steps: gradient-ascent steps.
      seed: of the start image and of the jitter.

    Raises:
      ValueError: a path that is no conv layer of the model (the message lists them), a channel
        out of range, or a shape, range or step count it cannot use.
    """

    def __init__(self, model, channels: dict, *, image_shape, value_range, image_input=None,
                 steps: int = 128, seed: int = 0):
        checks.check_model(model)
        convs = conv_layers.conv_layers(model)
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
        self._relus = [layer for _, layer in conv_layers.walk(model)
                       if getattr(layer, "activation", None) is keras.activations.relu]
        self._image_input = image_input
        self._low, self._high = low, high
        self._steps = int(steps)
        self._seed = int(seed)
        height, width, depth = self.image_shape
        self._scale = _frequency_scale(height, width)
        rng = np.random.default_rng(self._seed)
        # One start spectrum for every item: an item's image depends on its own channel alone.
        self._start = rng.normal(0.0, START_SPREAD, (1, depth, height, width // 2 + 1, 2)).astype(np.float32)
        self._shifts = rng.integers(-JITTER, JITTER + 1, (self._steps, 2)).astype(np.int32)  # of each step's roll
        self._ascent = backend.current().compile(self._ascend, model)

    def __call__(self, other_inputs: model_inputs.Samples | None = None) -> dict:
        """{path: float32 (len(channels[path]), H, W, C)} images within value_range.

        other_inputs: for a multi-input model, one sample (`tb_cnnviz.anatomy.model_inputs.Samples`) whose
        inputs other than the images are held fixed; None for a single-input model.
        """
        if (other_inputs is None) != (self._image_input is None):
            raise ValueError("give other_inputs (one sample of the model's inputs) exactly when image_input is set")
        if other_inputs is not None and len(other_inputs) != 1:
            raise ValueError(f"other_inputs must hold one sample, got {len(other_inputs)}")
        others = None if other_inputs is None else other_inputs.inputs
        images = ops.convert_to_numpy(self._ascent(others))
        splits = np.cumsum([len(indices) for indices in self.channels.values()])[:-1]
        return dict(zip(self.channels, np.split(images, splits)))

    def _images(self, spectrum):
        """(B, H, W, C) images of a (B, C, H, W // 2 + 1, 2) spectrum, squashed into value_range
        (clipped too: lo + (hi - lo) can round past hi in float32)."""
        height, width, _ = self.image_shape
        scale = ops.convert_to_tensor(self._scale)
        planes = irfft2(spectrum[..., 0] * scale, spectrum[..., 1] * scale, height, width) / 4.0  # Lucid's
        squashed = self._low + (self._high - self._low) * ops.sigmoid(ops.transpose(planes, (0, 2, 3, 1)))
        return ops.clip(squashed, self._low, self._high)

    def _objectives(self, images, others):
        """(B,) the mean of each item's own channel map, the model seeing `images`."""
        if others is None:
            inputs = images
        else:
            batch = images.shape[0]
            tiled = model_inputs.Samples(others, self._image_input).map(
                lambda value: ops.tile(value, [batch] + [1] * (len(value.shape) - 1)))
            inputs = model_inputs.Samples(tiled, self._image_input).with_images(images)
        recorded = {}
        with contextlib.ExitStack() as stack:
            stack.enter_context(conv_layers.recording(self._watched, recorded))
            for layer in self._relus:
                stack.enter_context(conv_layers.patched(layer, "activation", _redirected_relu))
            self._model(inputs, training=False)
        missing = set(self._watched) - set(recorded)
        if missing:
            raise ValueError(f"layers {sorted(missing)} are not used by the model's forward pass")
        objectives, start = [], 0
        for path, indices in self.channels.items():
            own = ops.cast(recorded[path][start:start + len(indices)], "float32")  # mixed precision: float16
            means = ops.mean(own, axis=(1, 2))
            objectives.append(ops.take_along_axis(means, np.asarray(indices)[:, None], axis=1)[:, 0])
            start += len(indices)
        return ops.concatenate(objectives, axis=0)

    def _ascend(self, others):
        """Adam's gradient ascent of the sum of the objectives over the spectra, each step seeing
        the images rolled by a few pixels (`JITTER`, drawn from the seed): Olah et al.'s
        transformation robustness, here mostly at the borders, as the objective is a mean over
        the map."""
        batch = sum(len(indices) for indices in self.channels.values())
        beta1, beta2 = _ADAM_BETAS
        seam = backend.current()

        def step(index, state):
            spectrum, mean, square = state
            shift = ops.take(self._shifts, index, axis=0)

            def objective(x):
                return ops.sum(self._objectives(_rolled(self._images(x), shift), others))

            try:
                _, gradient = seam.input_gradient(objective, spectrum)
            except backend.NotDifferentiable as error:
                raise backend.cannot_differentiate(
                    error, f"the activations of layers {list(self.channels)} with respect to the input image") from error
            mean = beta1 * mean + (1 - beta1) * gradient
            square = beta2 * square + (1 - beta2) * gradient**2
            count = ops.cast(index + 1, "float32")
            update = mean / (1 - beta1**count) / (ops.sqrt(square / (1 - beta2**count)) + _ADAM_EPSILON)
            return spectrum + LEARNING_RATE * update, mean, square

        spectrum = ops.tile(ops.convert_to_tensor(self._start), [batch, 1, 1, 1, 1])
        zeros = ops.zeros_like(spectrum)
        spectrum, _, _ = ops.fori_loop(0, self._steps, step, (spectrum, zeros, zeros))
        return self._images(spectrum)


def _rolled(images, shift):
    """(B, H, W, C) images rolled by `shift` (2,) pixels down and right, as ops.roll would; with
    gathers, as a shift that is a tensor (a loop's) must be a Python int to PyTorch's roll."""
    height, width = images.shape[1:3]
    rows = ops.mod(ops.arange(height) - shift[0], height)
    columns = ops.mod(ops.arange(width) - shift[1], width)
    return ops.take(ops.take(images, rows, axis=1), columns, axis=2)


def _checked_channels(convs: dict, path, indices) -> list:
    """`indices` of the layer at `path` as a list of ints.

    Raises:
      ValueError: no conv layer at that path (the message lists them), or an index that is not
        a channel of the layer.
    """
    if path not in convs:
        raise ValueError(f"channels names {path!r}, which is not a conv layer of the model; "
                         f"give paths among: {', '.join(convs)}")
    count = conv_layers.effective_kernel(convs[path]).shape[-1]
    indices = list(indices)
    if not indices or any(not isinstance(i, numbers.Integral) or isinstance(i, bool) or not 0 <= i < count
                          for i in indices):
        raise ValueError(f"channels[{path!r}] must be a non-empty list of channel indices in [0, {count}), "
                         f"got {indices!r}")
    return [int(i) for i in indices]
