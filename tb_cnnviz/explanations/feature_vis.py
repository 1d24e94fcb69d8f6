"""Feature visualisation by activation maximisation (Olah, Mordvintsev and Schubert, "Feature
Visualization", Distill 2017): for chosen channels of conv layers, the image that maximises the
mean of the channel's feature map.

The images are compared across training events, so every ascent starts from the same image (a
fixed seed) and is deterministic given the weights: what changes between events is the filter.
Every channel of every layer is one item of a single batch, and the whole ascent is one compiled
loop, traced once per model; the weights are read when it runs.

Plain gradient ascent builds high-frequency patterns that excite the filter but that no one can
read; the regularisers are Olah et al.'s standard remedies (`Regularisers`): a Fourier
parameterisation scaled by 1/f (Lucid's `fft_image`), in a decorrelated colour space for RGB
(Lucid's), squashed by a sigmoid into the pixel range; transformation robustness (each step sees
the image rolled, scaled and rotated at random); and a total-variation penalty, weighed against
each item's own activation so that one weight suits layers of any activation scale.
bench/feature_vis_seeds.py measures that, on the tests' trained model, each image activates its
filter more than any training image does; bench/feature_vis_readable.py that the share of the
demo's images' spectral power above half the Nyquist frequency is at most half of what the 1/f
parameterisation and the jitter alone gave (`Regularisers` with the others off), while each
image still beats every training image.
"""

import contextlib
import dataclasses
import functools
import numbers

import keras
import numpy as np
from keras import ops

from tb_cnnviz import backend
from tb_cnnviz.anatomy import checks, conv_layers, model_inputs

# The figures in the comments are bench/feature_vis_readable's (5 seeds): the largest spectral
# ratio to the plain ascent (target <= 0.5), the least activation ratio (target >= 1); 0.29, 1.32
# with these constants.
LEARNING_RATE = 0.2  # Adam's, on the spectrum; at 128 steps 0.3 passes too (0.31, 1.34), 0.1 not (0.42, 0.93)
JITTER = 4  # pixels an image is rolled by, at most, in each direction at each step
SCALE = 0.1  # an image is scaled within 1 ± SCALE at each step; 0.05 with 3°: 0.28, 1.35; 0.2 with 10°: 0.28, 1.14
ROTATION = 5.0  # degrees an image is rotated by, at most, either way at each step; neither this nor SCALE: 0.34, 1.13
TOTAL_VARIATION = 2.0  # the penalty's weight per unit of activation; 1: 0.36, 1.47; 3: 0.25, 1.15; none: 0.95, 1.15
START_SPREAD = 0.01  # standard deviation of the start spectrum: a nearly flat image in mid-range
# Lucid's square root of ImageNet's colour correlation (columns: luminance, then two colour
# contrasts), its columns scaled to a largest norm of 1: RGB = decorrelated @ COLOUR_MIX.T.
_CORRELATION_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOUR_MIX = _CORRELATION_SQRT / np.linalg.norm(_CORRELATION_SQRT, axis=0).max()
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPSILON = 1e-8


@dataclasses.dataclass(frozen=True)
class Regularisers:
    """What keeps the images readable (Olah et al.); the defaults are the module's constants,
    which bench/feature_vis_seeds.py and bench/feature_vis_readable.py measure.

    learning_rate: Adam's, on the spectrum. decorrelate: 3-channel images are made in Lucid's
    decorrelated colour space (`COLOUR_MIX`); other channel counts as they are. jitter: pixels
    of the random roll at each step, at most. scale: the random scale is within 1 ± scale.
    rotation: degrees of the random rotation, at most; with scale and rotation 0 each step rolls
    the image alone (no resampling). total_variation: w, the penalty's weight: each item
    ascends a - w * |a| * TV, a being its activation (held constant in |a|) and TV its image's
    `total_variation`; its gradient is a's less w * |a| times TV's, that of log a - w * TV
    scaled by a, so that w trades the same share of the activation for smoothness in a layer
    of large activations as in one of small.
    """

    learning_rate: float = LEARNING_RATE
    decorrelate: bool = True
    jitter: int = JITTER
    scale: float = SCALE
    rotation: float = ROTATION
    total_variation: float = TOTAL_VARIATION

    def __post_init__(self):
        if not (self.learning_rate > 0 and isinstance(self.jitter, numbers.Integral) and self.jitter >= 0
                and 0 <= self.scale < 1 and self.rotation >= 0 and self.total_variation >= 0):
            raise ValueError(f"regularisers must have learning_rate > 0, an int jitter >= 0, 0 <= scale < 1, "
                             f"rotation >= 0 and total_variation >= 0; got {self!r}")


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
    """Images that maximise chosen channels' mean activation (Olah, Mordvintsev and Schubert,
    "Feature Visualization", Distill 2017). Built once per model; call it at an event.

    Each image is a spectrum, scaled by 1/f and brought to pixels by an inverse DFT, mapped from
    a decorrelated colour space to RGB and squashed by a sigmoid into value_range. Adam ascends
    its channel's mean activation, less a total-variation penalty, from a fixed start, each step
    seeing the images rolled, scaled and rotated at random (drawn from the seed): what excites
    the filter whatever the sub-pixel phase and orientation survives, high-frequency noise not.

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
      seed: of the start image and of each step's random roll, scale and rotation.
      regularisers: `Regularisers`; the default is what the benches measure.

    Raises:
      ValueError: a path that is no conv layer of the model (the message lists them), a channel
        out of range, or a shape, range or step count it cannot use.
    """

    def __init__(self, model, channels: dict, *, image_shape, value_range, image_input=None,
                 steps: int = 128, seed: int = 0, regularisers: Regularisers = Regularisers()):
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
        if not isinstance(regularisers, Regularisers):
            raise ValueError(f"regularisers must be a feature_vis.Regularisers, got {regularisers!r}")
        self._model = model
        self._watched = {path: convs[path] for path in self.channels}
        self._relus = [layer for _, layer in conv_layers.walk(model)
                       if getattr(layer, "activation", None) is keras.activations.relu]
        self._image_input = image_input
        self._low, self._high = low, high
        self._steps = int(steps)
        self._seed = int(seed)
        self.regularisers = regularisers
        height, width, depth = self.image_shape
        self._scale = _frequency_scale(height, width)
        self._colours = COLOUR_MIX if regularisers.decorrelate and depth == 3 else None
        rng = np.random.default_rng(self._seed)
        # One start spectrum for every item: an item's image depends on its own channel alone.
        self._start = rng.normal(0.0, START_SPREAD, (1, depth, height, width // 2 + 1, 2)).astype(np.float32)
        self._transforms = _random_transforms(rng, self._steps, regularisers)
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
        """(B, H, W, C) images of a (B, C, H, W // 2 + 1, 2) spectrum, mapped from the decorrelated
        colour space to RGB (3 channels, `Regularisers.decorrelate`), squashed into value_range
        (clipped too: lo + (hi - lo) can round past hi in float32)."""
        height, width, _ = self.image_shape
        scale = ops.convert_to_tensor(self._scale)
        planes = irfft2(spectrum[..., 0] * scale, spectrum[..., 1] * scale, height, width) / 4.0  # Lucid's
        planes = ops.transpose(planes, (0, 2, 3, 1))
        if self._colours is not None:
            planes = ops.einsum("...k,ck->...c", planes, self._colours)
        squashed = self._low + (self._high - self._low) * ops.sigmoid(planes)
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
        """Adam's gradient ascent over the spectra of the sum of the objectives less the
        total-variation penalty, each step seeing the images rolled, scaled and rotated at random
        (drawn from the seed): Olah et al.'s transformation robustness. A pattern that excites the
        filter only at one sub-pixel phase or orientation, high-frequency noise, does not survive
        the resampling."""
        batch = sum(len(indices) for indices in self.channels.values())
        beta1, beta2 = _ADAM_BETAS
        settings = self.regularisers
        variation = functools.partial(total_variation, value_range=(self._low, self._high))

        def step(index, state):
            spectrum, mean, square = state
            transform = ops.take(self._transforms, index, axis=0)

            def objective(x):
                images = self._images(x)
                seen = _transformed(images, transform, resample=settings.scale > 0 or settings.rotation > 0)
                value = self._objectives(seen, others)
                if not settings.total_variation:
                    return ops.sum(value)
                return ops.sum(value - settings.total_variation * ops.stop_gradient(ops.abs(value)) * variation(images))

            gradient = self._gradient(objective, spectrum)
            mean = beta1 * mean + (1 - beta1) * gradient
            square = beta2 * square + (1 - beta2) * gradient**2
            count = ops.cast(index + 1, "float32")
            update = mean / (1 - beta1**count) / (ops.sqrt(square / (1 - beta2**count)) + _ADAM_EPSILON)
            return spectrum + settings.learning_rate * update, mean, square

        spectrum = ops.tile(ops.convert_to_tensor(self._start), [batch, 1, 1, 1, 1])
        if settings.total_variation:  # the activations' own gradient, once: the penalty's reaches the spectrum
            # even where theirs cannot (compiled, the unused result is dropped; PyTorch runs it: one pass more)
            self._gradient(lambda x: ops.sum(self._objectives(self._images(x), others)), spectrum)
        zeros = ops.zeros_like(spectrum)
        spectrum, _, _ = ops.fori_loop(0, self._steps, step, (spectrum, zeros, zeros))
        return self._images(spectrum)

    def _gradient(self, objective, spectrum):
        """d objective / d spectrum; an error naming the layers and the backend where none reaches it."""
        try:
            return backend.current().input_gradient(objective, spectrum)[1]
        except backend.NotDifferentiable as error:
            raise backend.cannot_differentiate(
                error, f"the activations of layers {list(self.channels)} with respect to the input image") from error


def _random_transforms(rng, steps: int, settings: Regularisers) -> np.ndarray:
    """(steps, 4) float32 each step's (rows down, columns right, scale, angle in radians): a roll
    of at most `jitter` pixels, a scale within 1 ± `scale`, an angle within ± `rotation` degrees."""
    shifts = rng.integers(-settings.jitter, settings.jitter + 1, (steps, 2))  # drawn first: the plain ascent's rolls
    scales = rng.uniform(1 - settings.scale, 1 + settings.scale, steps)
    angles = np.radians(rng.uniform(-settings.rotation, settings.rotation, steps))
    return np.column_stack([shifts, scales, angles]).astype(np.float32)


def _transformed(images, transform, resample: bool):
    """(B, H, W, C) images seen through `transform` (4,), as `_random_transforms` draws it: rolled
    down and right by its shift, then (if `resample`) scaled by its scale and rotated by its angle
    about the centre, each pixel taking the bilinear interpolation of the four around its source.
    Sources wrap around the edges, as a roll does and as the Fourier image is periodic. With
    gathers, as a shift that is a tensor (a loop's) must be a Python int to PyTorch's roll."""
    height, width = images.shape[1:3]
    if not resample:
        rows = ops.mod(ops.arange(height) - ops.cast(transform[0], "int32"), height)
        columns = ops.mod(ops.arange(width) - ops.cast(transform[1], "int32"), width)
        return ops.take(ops.take(images, rows, axis=1), columns, axis=2)
    y = ops.arange(height, dtype="float32")[:, None] - (height - 1) / 2
    x = ops.arange(width, dtype="float32")[None, :] - (width - 1) / 2
    cos, sin = ops.cos(transform[3]) / transform[2], ops.sin(transform[3]) / transform[2]
    source_y = cos * y - sin * x + (height - 1) / 2 - transform[0]  # (H, W): where each pixel samples
    source_x = sin * y + cos * x + (width - 1) / 2 - transform[1]
    top, left = ops.floor(source_y), ops.floor(source_x)
    down, right = (source_y - top)[..., None], (source_x - left)[..., None]  # (H, W, 1) bilinear weights
    top, left = ops.cast(top, "int32"), ops.cast(left, "int32")
    flat = ops.reshape(images, (-1, height * width, images.shape[3]))

    def at(row, column):
        index = ops.mod(row, height) * width + ops.mod(column, width)
        return ops.reshape(ops.take(flat, ops.reshape(index, (-1,)), axis=1), (-1, height, width, images.shape[3]))

    return ((1 - down) * ((1 - right) * at(top, left) + right * at(top, left + 1))
            + down * ((1 - right) * at(top + 1, left) + right * at(top + 1, left + 1)))


def total_variation(images, value_range=(0.0, 1.0)):
    """(B,) each (B, H, W, C) image's total variation, in value ranges (hi - lo): the mean absolute
    difference between neighbouring pixels down, plus that across (not across the edges), over
    its channels."""
    down = ops.mean(ops.abs(images[:, 1:] - images[:, :-1]), axis=(1, 2, 3))
    across = ops.mean(ops.abs(images[:, :, 1:] - images[:, :, :-1]), axis=(1, 2, 3))
    return (down + across) / (value_range[1] - value_range[0])


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
