"""The public explanation functions, `explain` (the class activation maps of `cam.CAM_METHODS`
and the many-pass methods of `attributions`) and its shortcuts `gradcam` and
`gradcam_plus_plus`, and what they share with `sanity.sanity_check` (`prepare`, `check_method`,
`MethodMaps`): the same checks, the same defaults, the same maps as the callback logs."""

import dataclasses
import weakref

import numpy as np
from keras import ops

from tb_cnnviz import backend
from tb_cnnviz.anatomy import checks, conv_layers, heads, model_inputs
from tb_cnnviz.explanations import attributions
from tb_cnnviz.explanations.cam import CAM_METHODS, ClassExplainer, upsample
from tb_cnnviz.explanations.progress import progress_bars
from tb_cnnviz.storage.metadata import METHODS, PIXEL_METHODS  # PARAMETERS names them in this order

_EXPLAINERS = weakref.WeakKeyDictionary()  # model -> {(layer path, head, output, image input, method,
#                                                     its parameters): MethodMaps}


@dataclasses.dataclass(frozen=True, eq=False)
class Prepared:
    """What explaining a model's images needs, checked: the samples as the model takes them,
    the head explained, the Grad-CAM layer's path and the classes (-1: each image's predicted)."""

    samples: model_inputs.Samples
    head: heads.Head
    layer: str
    target: np.ndarray


def prepare(model, images, layer, class_index, head, output, image_input) -> Prepared:
    """Checks the arguments of `gradcam` (and `sanity_check`); a Sequential model given no Input
    is built for the images first, as Keras would at its first batch."""
    backend.current()
    samples = model_inputs.samples(images, image_input, "images")
    checks.build_sequential(model, samples)
    checks.check_model(model)
    samples = model_inputs.for_model(samples, model, "images")
    convs = conv_layers.conv_layers(model)
    explained = heads.find_head(model, head, output, guess=True)  # the original's compiled loss tells its kind
    path = conv_layers.resolve(model, convs, layer, "layer") if layer is not None else explained.gradcam_layer(convs)
    count = len(samples)
    target = np.full(count, -1) if class_index is None else checks.class_indices(
        class_index, count, "class_index", f"None, an int or one int per image ({count} ints)",
        classes=explained.classes)
    return Prepared(samples, explained, path, target)


class TargetMaps:
    """The `methods`' maps (names of `cam.CAM_METHODS`) of one class per image, at the input
    resolution; compiled once per input shapes."""

    def __init__(self, model, head: heads.Head, layer: str, image_input, background_class: int, methods: tuple):
        watched = {layer: conv_layers.conv_layers(model)[layer]}
        self._explainer = ClassExplainer(model, head, layer, watched, background_class=background_class,
                                         methods=methods)
        self._image_input = image_input
        self._compiled = backend.current().compile(self._graph, model)

    def __call__(self, inputs, target) -> tuple:
        """(the classes explained (N,), {method: (N, H, W) float32}) of `inputs` (as the model
        takes them) for `target` (N,), -1 for each image's predicted class."""
        inputs = model_inputs.Samples(inputs, self._image_input).float32_inputs()
        self._explainer.judge_logits(inputs)
        explained, found = self._compiled(inputs, np.asarray(target, np.int32))
        return ops.convert_to_numpy(explained), {name: ops.convert_to_numpy(maps) for name, maps in found.items()}

    def _graph(self, inputs, target):
        out, _ = self._explainer(inputs, target, ops.full_like(target, -1))
        size = model_inputs.Samples(inputs, self._image_input).images.shape[1:3]
        return out["target"], {name: upsample(out[name][:, 0], size) for name in self._explainer.methods}


# each method's own parameters and their defaults; the CAM methods of cam.CAM_METHODS have none
PARAMETERS = {**{name: {} for name in CAM_METHODS}, "scorecam": {"max_channels": 256},
              "smoothgrad": {"samples": 20, "noise": 0.2}, "integrated_gradients": {"steps": 32, "baseline": "black"}}
_BASELINES = ("black", "blur")


def check_method(method: str, params: dict, layer=None) -> dict:
    """The method's parameters, `params` over its defaults. Raises ValueError, listing what is
    valid, for a method it does not know, a parameter or value the method does not take, or a
    layer given to a pixel attribution."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if layer is not None and method in PIXEL_METHODS:
        raise ValueError(f"{method} attributes the class score to the input's pixels: it takes no layer, got {layer!r}")
    known = PARAMETERS[method]
    unknown = sorted(set(params) - set(known))
    if unknown:
        takes = f"takes {', '.join(known)}" if known else "takes no parameters"
        raise ValueError(f"{method} {takes} besides layer, class_index, head, output and image_input; "
                         f"got {', '.join(unknown)}")
    chosen = {**known, **params}
    for name in ("max_channels", "samples", "steps"):
        value = chosen.get(name, 1)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} of {method} must be a positive int, got {value!r}")
    if not isinstance(chosen.get("noise", 0.0), (int, float)) or chosen.get("noise", 0.0) < 0:
        raise ValueError(f"noise of {method} must be a number >= 0 (a share of each image's max - min), "
                         f"got {chosen['noise']!r}")
    if chosen.get("baseline", "black") not in _BASELINES:
        raise ValueError(f"baseline of {method} must be one of {', '.join(_BASELINES)}, got {chosen['baseline']!r}")
    return chosen


def explain(model, images, method: str = "gradcam", layer: str | None = None, class_index=None, *,
            head: str | None = None, output=None, image_input=None, verbose="auto", **params) -> np.ndarray:
    """An explanation method's maps of `images` for a class.

    Class activation maps (A: the layer's activations, G: the gradients of the class score
    with respect to them; each map ReLU'd, then upsampled to the input as Grad-CAM's):
    "gradcam", "gradcam_pp" (Grad-CAM++), "hirescam" (sum over channels of G * A), "xgradcam"
    (channel weights sum(G * A) / sum(A)), "layercam" (sum over channels of relu(G) * A:
    fine-grained at shallow layers too), "eigencam" (A's first principal component: the same
    map for every class) and "scorecam" (channel weights: the class's probability on the image
    masked by each channel's map; `max_channels=256`). Pixel attributions, at the input's
    resolution, shown as the largest absolute value over the colour channels: "smoothgrad"
    (the input gradient averaged over `samples=20` noisy copies, noise `noise=0.2` of each
    image's max - min) and "integrated_gradients" (`steps=32`, `baseline="black"` or "blur").
    The docstrings in `tb_cnnviz.explanations.cam` and `.attributions` cite the papers.

    Args:
      model, images, layer, class_index, head, output, image_input: as for `gradcam` (`layer`:
        the class activation maps' layer; the pixel attributions take none).
      method: one of the names above.
      verbose: a progress bar over a many-pass method's passes ("scorecam", "smoothgrad",
        "integrated_gradients"): "auto" where standard output is a terminal, True, False.
      **params: the method's own parameters, named above.

    Returns:
      float32 (N, H, W) at the input resolution: non-negative, not normalised.

    Raises:
      ValueError: a method, parameter or value it does not take (the message lists the valid
        ones); and what `gradcam` raises.
    """
    chosen = check_method(method, params, layer)
    bars = progress_bars(verbose, "pass")
    prepared = prepare(model, images, layer, class_index, head, output, image_input)
    cached = _EXPLAINERS.setdefault(model, {})
    key = (prepared.layer, head, output, prepared.samples.image_key, method, tuple(sorted(chosen.items())))
    if key not in cached:
        cached[key] = MethodMaps(model, prepared.head, prepared.layer, prepared.samples.image_key, method, chosen)
    return cached[key](prepared.samples.inputs, prepared.target, progress=bars)[1]


class MethodMaps:
    """One method's maps (N, H, W) of one class per image, with its parameters `chosen`
    (`check_method`); its compiled passes kept for later calls."""

    def __init__(self, model, head: heads.Head, layer: str, image_input, method: str, chosen: dict,
                 background_class: int = 0):
        self._method, self._chosen, self._image_input = method, chosen, image_input
        if method in CAM_METHODS:
            self._maps = TargetMaps(model, head, layer, image_input, background_class, methods=(method,))
        else:
            self._variants = attributions.Variants(model, head, image_input, background_class, layer=layer)

    def __call__(self, inputs, target, at_input: bool = True, progress=None) -> tuple:
        """(the classes explained (N,), the maps) of `inputs` (as the model takes them) for
        `target` (N,), -1 for each image's predicted class; Score-CAM's maps at the layer's
        resolution unless `at_input` (the other class activation maps are always at the input's).
        progress: a many-pass method's bar over its passes (`progress.progress_bars`), or None."""
        method, chosen = self._method, self._chosen
        if method in CAM_METHODS:
            explained, maps = self._maps(inputs, target)
            return explained, maps[method]
        inputs = model_inputs.Samples(inputs, self._image_input).float32_inputs()
        pixels = np.asarray(model_inputs.Samples(inputs, self._image_input).images, np.float32)
        variants = self._variants
        explained, region = variants.targets(inputs, target)
        if method == "scorecam":
            maps = attributions.scorecam(variants, inputs, pixels, explained, region, chosen["max_channels"], progress)
            if at_input:
                maps = ops.convert_to_numpy(upsample(maps, pixels.shape[1:3]))
        elif method == "smoothgrad":
            maps = attributions.smoothgrad(variants, inputs, pixels, explained, chosen["samples"], chosen["noise"],
                                           progress)
        else:
            maps = attributions.integrated_gradients(variants, inputs, pixels, explained, chosen["steps"],
                                                     chosen["baseline"], progress)
        return ops.convert_to_numpy(explained), maps


def gradcam(model, images, layer: str | None = None, class_index=None, *, head: str | None = None,
            output=None, image_input=None) -> np.ndarray:
    """Grad-CAM maps of `images` for a class, as the callback logs them.

    Args:
      model: a built functional or Sequential Keras model ending in class scores.
      images: (N, H, W, C) numbers, shaped as the model takes them; for a model with several
        inputs, a dict or list of them, as the model takes them.
      layer: a conv layer name or path (default: the last conv layer that is not the output
        layer itself).
      class_index: None for each image's predicted class, an int for all images, or one int
        per image. A binary head (one unit) has classes 0 and 1.
      head: "softmax", "binary" or "multilabel" (default: inferred as `CNNViz` does; where it
        cannot be told, K linear outputs are read as class scores and one as a binary logit,
        which give the same maps).
      output: the name or index of the output to explain, for a model with several.
      image_input: which of several inputs holds the images (default: the only 4-D one).

    Returns:
      float32 (N, H, W) at the input resolution: non-negative, not normalised.

    Raises:
      ValueError, TypeError: a model, images, layer or class index it cannot use; the message
        says what to give instead.
      RuntimeError: Keras runs on a backend other than TensorFlow, JAX and PyTorch.
    """
    return explain(model, images, "gradcam", layer, class_index, head=head, output=output, image_input=image_input)


def gradcam_plus_plus(model, images, layer: str | None = None, class_index=None, *, head: str | None = None,
                      output=None, image_input=None) -> np.ndarray:
    """Grad-CAM++ maps; same arguments, result and errors as `gradcam`."""
    return explain(model, images, "gradcam_pp", layer, class_index, head=head, output=output,
                   image_input=image_input)
