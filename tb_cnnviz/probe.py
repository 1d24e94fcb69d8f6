"""The fused probe: everything one logging event needs from the model, in one tf.function.

A single forward pass records the outputs of the layers we watch by wrapping their `call`
while the function is traced (so nested models, Sequential models and subclassed ones
wrapped in a functional model all work without building sub-models), the same tape gives
the Grad-CAM gradients, and the function also computes filter statistics and the
faithfulness check.
"""

import contextlib
import dataclasses
import math
import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf

from tb_cnnviz import cam, layers as layer_utils
from tb_cnnviz.metadata import STAT_NAMES


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    """What a probe computes; paths are keys of `layers.conv_layers(model)`."""

    gradcam_layer: str
    activation_channels: dict = dataclasses.field(default_factory=dict)  # path -> channels
    filter_channels: dict = dataclasses.field(default_factory=dict)  # path -> channels
    rgb_filter_layer: str | None = None  # logged as colour tiles of its input channels
    stats: bool = False
    faithfulness_fraction: float | None = None


def output_layer(model):
    """The layer that produces the model's output, looking inside nested functional and
    Sequential models (a nested subclassed model has no graph to look into: it is the layer)."""
    layer = model
    while isinstance(layer, keras.Model) and hasattr(layer, "outputs"):
        history = getattr(layer.outputs[0], "_keras_history", None) if layer.outputs else None
        layer = history.operation if history is not None else layer.layers[-1]
    return layer


def build_sequential(model, images):
    """Builds a Sequential model given no Input for `images`, as Keras would at its first batch
    (after the callbacks' set_model)."""
    if isinstance(model, keras.Sequential) and not model.built:
        model.build((None, *np.shape(images)[1:]))


def check_model(model):
    """Raises a ValueError saying what to do if the probe cannot handle `model`."""
    if isinstance(model, keras.Sequential) and not model.built:
        raise ValueError(
            "the model is not built yet: call it on a batch or give it an Input shape "
            "(e.g. keras.Input((64, 64, 3))) before passing it to tb_cnnviz"
        )
    if not getattr(model, "inputs", None):
        raise ValueError(
            f"tb_cnnviz needs a functional or Sequential model, and {type(model).__name__} is "
            f"subclassed: wrap it as inputs = keras.Input((height, width, channels)); "
            f"model = keras.Model(inputs, your_model(inputs)), and pass that"
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"tb_cnnviz needs a model with one image input and one class-score output; this "
            f"model has {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    if len(model.inputs[0].shape) != 4:
        raise ValueError(f"the model input must be images (N, H, W, C), not {model.inputs[0].shape}")
    if len(model.outputs[0].shape) != 2 or (model.outputs[0].shape[-1] or 0) < 2:
        raise ValueError(
            f"the model output must be class scores (N, classes >= 2), not "
            f"{model.outputs[0].shape}"
        )
    if not layer_utils.conv_layers(model):
        raise ValueError("the model has no Conv2D, DepthwiseConv2D or SeparableConv2D layer")


def check_image_batch(images, name="images"):
    """`images` as float32 (N, height, width, channels), N >= 1; else an error saying what to do."""
    array = np.asarray(images)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array of images, got dtype {array.dtype}")
    if array.ndim != 4:
        raise ValueError(
            f"{name} must be a batch of images shaped (N, height, width, channels), got "
            f"shape {array.shape}; for one image use x[None], for grayscale x[..., None]"
        )
    if len(array) == 0:
        raise ValueError(f"{name} is empty: give at least one image")
    return array.astype(np.float32)


def check_image_shape(images, model, name="images"):
    """Raises a ValueError if the model does not take images of this size."""
    expected = tuple(model.inputs[0].shape[1:])
    got = images.shape[1:]
    if any(e is not None and e != g for e, g in zip(expected, got)):
        raise ValueError(
            f"{name} have shape {got} per image but the model expects "
            f"{tuple('any' if e is None else e for e in expected)}"
        )


@contextlib.contextmanager
def _patched(obj, name, value):
    """Sets an instance attribute for the duration of a trace, bypassing Keras' tracking."""
    had = name in obj.__dict__
    old = obj.__dict__.get(name)
    obj.__dict__[name] = value
    try:
        yield
    finally:
        if had:
            obj.__dict__[name] = old
        else:
            del obj.__dict__[name]


@contextlib.contextmanager
def recording(watched, outputs):
    """While active, the first output of each watched layer {path: layer} goes to `outputs`."""
    with contextlib.ExitStack() as stack:
        for path, layer in watched.items():
            def call(*args, _path=path, _call=layer.call, **kwargs):
                result = _call(*args, **kwargs)
                outputs.setdefault(_path, result)
                return result

            stack.enter_context(_patched(layer, "call", call))
        yield


def conv_output_shapes(model, convs, images):
    """{path: (height, width, channels)} of each conv layer's output (None for a dynamic size):
    from the model's graph, or, for layers inside a subclassed model (which keep no symbolic
    output), by running one of `images` through the model."""
    try:
        return {path: tuple(layer.output.shape[1:]) for path, layer in convs.items()}
    except AttributeError:
        recorded = {}
        with recording(convs, recorded):
            model(tf.convert_to_tensor(images[:1]), training=False)
        missing = sorted(set(convs) - set(recorded))
        if missing:
            raise ValueError(f"layers {missing} are not used by the model's forward pass") from None
        return {path: tuple(recorded[path].shape[1:]) for path in convs}


def _identity(inputs, *args, **kwargs):
    return inputs


def _flat_filters(layer):
    """(filters, kh*kw*in) rows, one per output channel."""
    kernel = layer_utils.effective_kernel(layer)
    return tf.reshape(tf.transpose(kernel, (3, 0, 1, 2)), (kernel.shape[3], -1))


def _cosine_distance(a, b):
    dot = tf.reduce_sum(a * b, axis=1)
    norms = tf.norm(a, axis=1) * tf.norm(b, axis=1)
    distance = tf.where(norms > 0, 1.0 - dot / tf.where(norms > 0, norms, 1.0), 0.0)
    return tf.clip_by_value(distance, 0.0, 2.0)  # rounding must not give negative distances


def _stats(filters, reference, previous, activations):
    """(len(STAT_NAMES), filters) statistics of one layer's filter rows and activations."""
    stats = [
        tf.norm(filters, axis=1),
        _cosine_distance(filters, reference),
        _cosine_distance(filters, previous),
        tf.reduce_mean(activations, axis=(0, 1, 2)),
        tf.reduce_mean(tf.cast(tf.reduce_max(activations, axis=(1, 2)) <= 0, tf.float32), 0),
    ]
    assert len(stats) == len(STAT_NAMES)
    return tf.stack(stats)


def _blur(images):
    """Heavy blur (area-downsample by 8, upsample back): replaces the masked pixels in the
    faithfulness check. Far cheaper on CPU than a wide stride-1 pooling window."""
    height, width = images.shape[1:3]
    small = tf.image.resize(images, (max(1, height // 8), max(1, width // 8)), method="area")
    return tf.image.resize(small, (height, width), method="bilinear")


class Probe:
    """Runs a ProbeSpec on a model; call it with images and targets (-1 = predicted class)."""

    def __init__(self, model, spec):
        check_model(model)
        self._model = weakref.ref(model)  # weak: gradcam()'s cache must not keep models alive
        self.spec = spec
        self.convs = layer_utils.conv_layers(model)
        watched = {spec.gradcam_layer, *spec.activation_channels}
        if spec.stats:
            watched.update(self.convs)
        self._watched = {p: self.convs[p] for p in self.convs if p in watched}
        head = output_layer(model)
        activation = getattr(head, "activation", None)
        # Grad-CAM needs the pre-softmax score: a softmax head runs as linear while tracing.
        self._linear_head = (
            (head, "activation", keras.activations.linear) if activation is keras.activations.softmax
            else (head, "call", _identity) if isinstance(head, keras.layers.Softmax)
            else None
        )
        # Whether the (linear-run) output is logits, shown through a softmax. A head with no
        # activation of its own (pooling of class maps, a reshape, an op) is judged by its
        # first output: see _decide_logits.
        self._logits_model = (
            True if self._linear_head is not None or activation is keras.activations.linear
            else None if activation is None
            else False
        )
        # path -> filters of the first event, and series -> path -> filters of that series'
        # previous event (train and eval events each measure change since their own previous
        # one), as tensors passed into the function rather than tf.Variables: a variable made
        # inside a tf.distribute scope is distributed, and under MultiWorkerMirroredStrategy
        # making one is a collective op that only the chief (the one worker that logs) would
        # run, which breaks training on every worker.
        self._reference = {}
        self._previous = {}
        self._kernel_shapes = {  # (kh, kw, inputs) of each filter, to unflatten filter rows
            path: tuple(layer_utils.effective_kernel(self.convs[path]).shape[:3]) for path in spec.filter_channels}
        self._fn = tf.function(self._event, reduce_retracing=True)
        self._traced = {}  # input shapes -> the concrete function tf.function chose for them

    def _traced_for(self, images, target):
        """The concrete function for these input shapes. Calling it directly skips tf.function's
        dispatch, which costs ~0.8 ms a call here (A B against calling self._fn)."""
        key = (tuple(images.shape), tuple(target.shape))
        if key not in self._traced:
            self._traced[key] = self._fn.get_concrete_function(images, target, self._reference, self._reference)
        return self._traced[key]

    @property
    def model(self):
        return self._model()

    def current_filters(self):
        return {path: _flat_filters(layer).numpy() for path, layer in self.convs.items()}

    def set_reference(self, reference=None):
        """Distances are measured from `reference` {path: filters} (default: current weights)."""
        current = self.current_filters()
        reference = reference or current
        for path, filters in current.items():
            ref = reference.get(path)
            ref = filters if ref is None or ref.shape != filters.shape else ref
            self._reference[path] = tf.constant(ref)

    def continue_series(self, series):
        """The next event of `series` measures change from the current weights: a resumed run's
        previous event was written by the process that saved these weights."""
        self._previous[series] = {path: tf.constant(rows) for path, rows in self.current_filters().items()}

    def reference(self):
        return {path: tensor.numpy() for path, tensor in self._reference.items()}

    def __call__(self, images, target, series="train"):
        """series: events whose filter change (cos_to_prev) is measured from one another; the
        first of a series is measured from the reference."""
        if self.spec.stats and not self._reference:
            self.set_reference()
        images = tf.convert_to_tensor(np.asarray(images, np.float32))
        if self._logits_model is None:
            self._decide_logits(images)
        target = tf.convert_to_tensor(np.asarray(target, np.int32))
        first_of_series = series not in self._previous
        previous = self._previous.get(series, self._reference)
        out = self._traced_for(images, target)(images, target, self._reference, previous)
        rows = out.pop("filter_rows")
        if self.spec.stats:
            self._previous[series] = rows
        out = tf.nest.map_structure(lambda t: t.numpy(), out)
        if self.spec.stats and first_of_series:  # no previous event to measure change from
            out["stats"] = {path: stats.copy() for path, stats in out["stats"].items()}
            for stats in out["stats"].values():
                stats[STAT_NAMES.index("cos_to_prev")] = np.nan
        # Selecting and arranging a few small arrays is cheaper in numpy than as graph ops.
        out["activations"] = {
            path: np.moveaxis(out["activations"][path][..., channels], -1, 1)[..., None]
            for path, channels in self.spec.activation_channels.items()
        }
        out["filters"] = {
            path: self._filter_images(path, rows[path].numpy(), channels)
            for path, channels in self.spec.filter_channels.items()
        }
        return out

    def _decide_logits(self, images):
        """Outputs that are not non-negative rows summing to 1 are logits."""
        outputs = np.asarray(self.model(images, training=False), np.float64)
        self._logits_model = not (outputs.min() >= 0 and np.allclose(outputs.sum(axis=1), 1, atol=1e-2))
        if not self._logits_model:
            warnings.warn(
                f"tb_cnnviz: the model's output ({type(output_layer(self.model)).__name__}) gives "
                f"probabilities through a softmax tb_cnnviz cannot switch off, so Grad-CAM uses the "
                f"post-softmax score, whose gradients vanish on confident predictions. End the model "
                f"in Dense(activation='softmax'), a Softmax layer or logits for the pre-softmax score.",
                stacklevel=3)

    def _forward(self, images):
        outputs = self.model(images, training=False)
        outputs = tf.cast(outputs, tf.float32)
        probabilities = tf.nn.softmax(outputs) if self._logits_model else outputs
        return outputs, probabilities

    def _event(self, images, target, reference, previous):
        spec = self.spec
        recorded = {}
        head = _patched(*self._linear_head) if self._linear_head is not None else contextlib.nullcontext()
        with head:
            with tf.GradientTape() as tape, recording(self._watched, recorded):
                scores, probabilities = self._forward(images)
                predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
                target = tf.where(target < 0, predicted, target)
                score = tf.reduce_sum(tf.gather(scores, target, batch_dims=1))
            missing = set(self._watched) - set(recorded)
            if missing:
                raise ValueError(f"layers {sorted(missing)} are not used by the model's forward pass")
            acts = {p: tf.cast(a, tf.float32) for p, a in recorded.items()}
            grads = tf.cast(tape.gradient(score, recorded[spec.gradcam_layer]), tf.float32)
            size = tf.shape(images)[1:3]
            maps = {
                name: cam.class_activation_map(acts[spec.gradcam_layer], grads, name, size)
                for name in cam.METHODS
            }
            out = {
                "probabilities": probabilities,
                "target": target,
                "gradcam": maps["gradcam"],
                "gradcam++": maps["gradcam++"],
            }
            if spec.faithfulness_fraction is not None:
                masked = self._mask_top(images, maps["gradcam"], spec.faithfulness_fraction)
                _, masked_probabilities = self._forward(masked)
                out["masked_probability"] = tf.gather(masked_probabilities, target, batch_dims=1)
        out["filter_rows"] = {
            path: _flat_filters(layer) for path, layer in self.convs.items()
            if spec.stats or path in spec.filter_channels
        }
        if spec.stats:
            out["stats"] = {path: _stats(out["filter_rows"][path], reference[path], previous[path], acts[path])
                            for path in self.convs}
        out["activations"] = {path: acts[path] for path in spec.activation_channels}
        return out

    def _mask_top(self, images, maps, fraction):
        """Images whose top `fraction` of map pixels are replaced by a blurred copy."""
        n, h, w = maps.shape
        k = max(1, math.ceil(fraction * h * w))
        _, top = tf.math.top_k(tf.reshape(maps, (n, h * w)), k=k)
        rows = tf.repeat(tf.range(n), k)
        index = tf.stack([rows, tf.reshape(top, (-1,))], axis=1)
        mask = tf.scatter_nd(index, tf.ones((n * k,)), (n, h * w))
        mask = tf.reshape(mask, (n, h, w, 1))
        return images * (1.0 - mask) + _blur(images) * mask

    def _filter_images(self, path, rows, channels):
        """(1, n, kh, kw, c) from filter rows: colour tiles for the RGB layer, else the mean
        over input channels."""
        kernels = rows[channels].reshape(len(channels), *self._kernel_shapes[path])
        if path != self.spec.rgb_filter_layer:
            kernels = kernels.mean(axis=-1, keepdims=True)
        return kernels[None]


_GRADCAM_PROBES = weakref.WeakKeyDictionary()  # model -> {layer path: Probe}


def _cam(model, images, layer, class_index, method):
    images = check_image_batch(images)
    build_sequential(model, images)
    check_model(model)
    convs = layer_utils.conv_layers(model)
    path = layer_utils.resolve(model, convs, layer, "layer") if layer is not None else list(convs)[-1]
    probes = _GRADCAM_PROBES.setdefault(model, {})
    if path not in probes:
        probes[path] = Probe(model, ProbeSpec(gradcam_layer=path))
    check_image_shape(images, model)
    if class_index is None:
        target = np.full(len(images), -1)
    else:
        target = np.asarray(class_index)
        if not np.issubdtype(target.dtype, np.integer) or target.ndim > 1 or (
                target.ndim == 1 and len(target) != len(images)):
            raise ValueError(f"class_index must be None, an int or one int per image ({len(images)} ints), "
                             f"got {class_index!r}")
        target = np.broadcast_to(target.astype(np.int64), (len(images),))
        classes = model.outputs[0].shape[-1]
        if np.any((target < 0) | (target >= classes)):
            raise ValueError(f"class_index must be in [0, {classes}), got {class_index!r}")
    return probes[path](images, target)[method]


def gradcam(model, images, layer=None, class_index=None):
    """Grad-CAM maps (N, H, W) float32 at the input resolution: non-negative, not normalised.

    layer: a conv layer name or path (default: the last conv layer); class_index: None for
    each image's predicted class, an int for all images, or one int per image.
    """
    return _cam(model, images, layer, class_index, "gradcam")


def gradcam_plus_plus(model, images, layer=None, class_index=None):
    """Grad-CAM++ maps; same arguments and result as `gradcam`."""
    return _cam(model, images, layer, class_index, "gradcam++")
