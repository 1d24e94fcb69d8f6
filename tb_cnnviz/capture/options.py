"""The callback's options, checked once when it is made: each bad value gets an error that says
what to give instead. Checks that need the model are `plan`'s."""

import dataclasses
import numbers
import os

import numpy as np

from tb_cnnviz.anatomy import checks, model_inputs
from tb_cnnviz.storage.metadata import HEAD_KINDS, METHODS

ALL_LAYERS = "all"  # layers= value that logs every conv layer
# Feature-map pixels per probe and layer that max_layer_pixels="auto" keeps (with an int
# max_channels): early high-resolution layers would otherwise dominate an event's size and time.
# A map larger than this alone is stored area-downsampled (`tb_cnnviz.capture.plan`). 64 x 64 keeps an
# event of a keras.applications backbone at 224 x 224 within 300 KB (bench/backbones.py).
AUTO_LAYER_PIXELS = 4096
TARGET_CHOICES = '"predicted", "true", an int or a list of ints'
MAX_REFERENCE = 1024  # reference images of top examples
# Reference image values stored once per run (8-bit PNGs, about one byte each before deflate):
# 1,024 images of 144 x 144 x 3, or 445 of 224 x 224 x 3.
MAX_REFERENCE_VALUES = 64 * 2**20


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _count(value, message) -> int:
    """`value` as an int >= 0; a ValueError with `message` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(message)
    return int(value)


def _labels(labels, count):
    """Class indices (N,), rows (N, K) that the model's head reads (one-hot rows of a softmax
    head, multi-hot rows of a multi-label one) or a segmentation head's masks (N, H, W) of class
    indices (`tb_cnnviz.capture.plan`)."""
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:  # a column of indices, as keras.datasets.cifar10 gives
        array = array[:, 0]
    if array.ndim not in (1, 2, 3) or len(array) != count or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"labels must be {count} class indices (or one-hot or multi-hot rows, or masks of class indices), one "
            f"per sample; got shape {np.shape(labels)}"
        )
    if array.ndim == 2:
        if not np.all(np.isin(array, (0, 1))):
            raise ValueError("label rows must be one-hot or multi-hot: 0s and 1s")
    elif np.any(array != np.round(array)) or np.any(array < 0):
        raise ValueError("labels must be non-negative class indices")
    return array.astype(np.int64)


def objects(masks, boxes, images):
    """The probes' objects as given: masks (N, H, W) of booleans, or boxes [y0, x0, y1, x1]
    (half-open, in input pixels) as an (N, 4) int array; (None, None) for neither. Checked
    against the probe images (again by `plan` where a list's image input is named)."""
    count, height, width = images.shape[:3]
    if masks is not None and boxes is not None:
        raise ValueError("give masks= or boxes= for the probes' objects, not both")
    if masks is not None:
        array = np.asarray(masks)
        if array.shape != (count, height, width) or not (array.dtype == bool or np.isin(array, (0, 1)).all()):
            raise ValueError(f"masks must be {count} boolean masks of the probe images' size, shape "
                             f"({count}, {height}, {width}); got shape {array.shape} of {array.dtype}")
        if not array.reshape(count, -1).any(axis=1).all():
            empty = np.flatnonzero(~array.reshape(count, -1).any(axis=1)).tolist()
            raise ValueError(f"masks of probes {empty} are empty: each probe's mask must mark its object")
        return array.astype(bool), None
    if boxes is not None:
        array = np.asarray(boxes)
        if array.shape != (count, 4) or not np.issubdtype(array.dtype, np.number) or np.any(array != np.round(array)):
            raise ValueError(f"boxes must be {count} boxes [y0, x0, y1, x1] of whole input pixels, shape ({count}, 4);"
                             f" got shape {array.shape}")
        y0, x0, y1, x1 = array.T
        if np.any((y0 < 0) | (x0 < 0) | (y1 > height) | (x1 > width) | (y0 >= y1) | (x0 >= x1)):
            raise ValueError(f"boxes [y0, x0, y1, x1] are half-open and must lie in the {height}x{width} image "
                             f"with y0 < y1 and x0 < x1")
        return None, array.astype(np.int64)
    return None, None


def _reference(reference, image_input, probes: model_inputs.Samples) -> model_inputs.Samples:
    """The reference images of top examples, shaped as the probes (checked against the model
    with them by `plan`) and small enough to store once per run."""
    given = model_inputs.samples(reference, image_input, "reference", limit=MAX_REFERENCE)
    if isinstance(given.inputs, list) and isinstance(given.image_key, str):  # an input's name: `plan` checks it
        return given
    if given.images.shape[1:] != probes.images.shape[1:]:
        raise ValueError(f"reference images must be shaped as the probe images {probes.images.shape[1:]}, got "
                         f"{given.images.shape[1:]}")
    values = given.images.size
    if values > MAX_REFERENCE_VALUES:
        fit = MAX_REFERENCE_VALUES // int(np.prod(given.images.shape[1:]))
        raise ValueError(f"reference images are stored once per run, up to {MAX_REFERENCE_VALUES // 2**20} M values; "
                         f"{len(given)} images of {given.images.shape[1:]} are {values / 2**20:.0f} M: pass at most {fit}")
    return given


def _target(target, labels, count):
    if isinstance(target, str):
        if target not in ("predicted", "true"):
            raise ValueError(f"target must be {TARGET_CHOICES}, got {target!r}")
        if target == "true" and labels is None:
            raise ValueError('target="true" needs labels=')
        return target
    return checks.class_indices(target, count, "target", TARGET_CHOICES,
                                count_error=f"target lists one class per sample: need {count}, got {{got}}")


@dataclasses.dataclass(frozen=True, eq=False)
class Options:
    """CNNViz's options, normalised: see `CNNViz` for what each means.

    Raises (when made):
      ValueError, TypeError: an option it cannot use; the message says what to give instead.
    """

    logdir: str
    samples: model_inputs.Samples  # given as the model takes them: images, or a dict or list of inputs
    labels: np.ndarray | None = None
    layers: list | str | None = None  # None: one per stage; ALL_LAYERS
    gradcam_layer: str | None = None
    every_n_epochs: int | None = None
    every_n_steps: int | None = None
    class_names: list | None = None
    target: str | np.ndarray = "predicted"
    max_channels: int | str = 16
    max_layer_pixels: int | str | None = "auto"
    log_weights: bool = True
    run_name: str | None = None
    faithfulness_fraction: float = 0.2
    log_on_train_begin: bool = True
    strict: bool = False
    head: str | None = None
    output: str | int | None = None
    image_input: str | int | None = None
    background_class: int = 0
    gradcam_classes: int = 3
    masks: np.ndarray | None = None
    boxes: np.ndarray | None = None
    trust_every: int | None = 5
    sanity_check: bool = False
    methods: tuple = ("gradcam", "gradcam_pp")
    expensive_every: int | None = None  # None: at the events that compute deletion and insertion
    reference: model_inputs.Samples | None = None  # None: the probes
    feature_vis: int = 0
    filters_every: int = 5
    max_example_filters: int | None = 256

    def __post_init__(self):
        self._check_where()
        self._check_what()
        self._check_when()
        self._check_how_much()
        self._check_how_to_explain()
        self._check_filters_learned()

    def _set(self, name, value):
        object.__setattr__(self, name, value)

    def _check_where(self):
        if not isinstance(self.logdir, (str, os.PathLike)) or not str(self.logdir):
            raise ValueError(f"logdir must be a directory path, got {self.logdir!r}")
        if self.run_name is not None:  # the run's own directory
            self._set("logdir", os.path.join(str(self.logdir), str(self.run_name)))
        self._set("logdir", str(self.logdir))

    def _check_what(self):
        """The probes, their labels and objects, the layers and classes to log."""
        self._set("samples", model_inputs.samples(self.samples, self.image_input))
        self._set("labels", _labels(self.labels, len(self.samples)))
        if self.layers is not None and not (isinstance(self.layers, str) and self.layers == ALL_LAYERS):
            self._set("layers", [self.layers] if isinstance(self.layers, str) else list(self.layers))
            if not self.layers:
                raise ValueError(f"layers must name at least one conv layer (or be None for one per stage, "
                                 f"{ALL_LAYERS!r} for all of them)")
        if self.class_names is not None:
            self._set("class_names", [str(name) for name in self.class_names])
        self._set("target", _target(self.target, self.labels, len(self.samples)))
        if not (isinstance(self.samples.inputs, list) and isinstance(self.samples.image_key, str)):
            masks, boxes = objects(self.masks, self.boxes, self.samples.images)
            self._set("masks", masks)
            self._set("boxes", boxes)

    def _check_when(self):
        if self.every_n_epochs is not None and self.every_n_steps is not None:
            raise ValueError("give every_n_epochs or every_n_steps, not both")
        if self.every_n_steps is not None:
            self._set("every_n_steps", _positive_int(self.every_n_steps, "every_n_steps"))
        elif self.every_n_epochs is not None:
            self._set("every_n_epochs", _positive_int(self.every_n_epochs, "every_n_epochs"))
        else:
            self._set("every_n_epochs", 1)
        self._set("log_on_train_begin", bool(self.log_on_train_begin))
        self._set("strict", bool(self.strict))
        if self.trust_every is not None:
            self._set("trust_every", _positive_int(self.trust_every, "trust_every (or None for eval events only)"))
        self._set("sanity_check", bool(self.sanity_check))
        self._set("filters_every", _positive_int(self.filters_every, "filters_every"))

    def _check_how_much(self):
        if self.max_channels != "all":
            self._set("max_channels", _positive_int(self.max_channels, 'max_channels (or "all")'))
        if self.max_layer_pixels == "auto":  # max_channels="all" asks for every channel
            self._set("max_layer_pixels", None if self.max_channels == "all" else AUTO_LAYER_PIXELS)
        elif self.max_layer_pixels is not None:
            self._set("max_layer_pixels", _positive_int(self.max_layer_pixels, 'max_layer_pixels (or "auto" or None)'))
        self._set("log_weights", bool(self.log_weights))

    def _check_how_to_explain(self):
        if not 0.0 < float(self.faithfulness_fraction) < 1.0:
            raise ValueError(f"faithfulness_fraction must be in (0, 1), got {self.faithfulness_fraction!r}")
        self._set("faithfulness_fraction", float(self.faithfulness_fraction))
        if self.head is not None and self.head not in HEAD_KINDS:
            raise ValueError(f"head must be one of {HEAD_KINDS} (or None to infer it from the model), got {self.head!r}")
        if not (self.output is None or isinstance(self.output, str)
                or (isinstance(self.output, numbers.Integral) and not isinstance(self.output, bool))):
            raise ValueError(f"output must be the name or index of a model output, got {self.output!r}")
        self._set("background_class", _count(self.background_class, f"background_class must be a class index, got "
                                                                    f"{self.background_class!r}"))
        self._set("gradcam_classes", _count(self.gradcam_classes, f"gradcam_classes must be how many top classes to "
                                                                  f"explain beside the target, an int >= 0; got "
                                                                  f"{self.gradcam_classes!r}"))
        self._check_methods()

    def _check_methods(self):
        if not isinstance(self.methods, (str, list, tuple)):
            raise ValueError(f"methods must be a method's name or a list of them (of {', '.join(METHODS)}); "
                             f"got {self.methods!r}")
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        unknown = [method for method in methods if method not in METHODS]
        if unknown:
            raise ValueError(f"methods must be names among {', '.join(METHODS)}; got {unknown}")
        if "gradcam" not in methods:
            raise ValueError(f"methods must include 'gradcam' (the faithfulness check and the maps of other classes "
                             f"are Grad-CAM's); got {list(methods)}")
        self._set("methods", tuple(method for method in METHODS if method in methods))  # one order for every run
        if self.expensive_every is not None:
            self._set("expensive_every", _positive_int(self.expensive_every, "expensive_every (or None for the "
                                                                             "events of trust_every)"))

    def _check_filters_learned(self):
        if self.reference is not None:
            self._set("reference", _reference(self.reference, self.image_input, self.samples))
        if self.feature_vis is None or self.feature_vis is False:
            self._set("feature_vis", 0)
        self._set("feature_vis", _count(self.feature_vis, f"feature_vis must be how many of each logged layer's channels "
                                                          f"to visualise, an int >= 0 (0: none); got {self.feature_vis!r}"))
        if self.max_example_filters is not None:
            self._set("max_example_filters", _positive_int(self.max_example_filters, "max_example_filters (or None)"))
