"""The model-parameter randomisation test of Grad-CAM (Adebayo et al., "Sanity Checks for Saliency
Maps", NeurIPS 2018): re-initialise the weighted layers one by one from the output down and
measure how much of the original maps survives. Maps that explain the model fall apart as soon
as the top layers are random; maps that stay alike come from the input or the architecture,
not from what the model learnt.

It works on a copy of the model, so the one that trains never changes.
"""

import random
import zlib

import keras
import numpy as np

from tb_cnnviz.anatomy import conv_layers, heads
from tb_cnnviz.explanations.gradcam import MethodMaps, check_method, prepare
from tb_cnnviz.explanations.progress import progress_bars
from tb_cnnviz.explanations.similarity import rank_correlations


def _source(layer, previous):
    """The layer whose output `layer` takes: from its model's graph, or, in a subclassed model,
    which keeps none, `previous`, the layer listed before it."""
    try:
        history = getattr(layer.input, "_keras_history", None)
    except AttributeError:  # never called on a graph's tensors
        return previous
    return history.operation if history is not None else None


def cascade(model) -> list:
    """[(path, [(path, layer), ...])] the randomisation steps, top (output) first: each layer
    with weights, in model order reversed and inside nested models, named by path as
    `layers.conv_layers` names them. A BatchNormalization that takes a conv's output is
    re-initialised in that conv's step, which has the conv's name. A Normalization layer's
    weights are statistics of the data (`adapt`), not parameters: it is no step."""
    steps = []
    conv_steps = {}  # id(conv layer) -> its step
    previous = None
    for path, layer in conv_layers.walk(model):
        source = _source(layer, previous) if isinstance(layer, keras.layers.BatchNormalization) else None
        previous = layer
        if not layer.weights or isinstance(layer, (keras.Model, keras.layers.Normalization)):
            continue
        if source is not None and id(source) in conv_steps:
            conv_steps[id(source)][1].append((path, layer))
            continue
        steps.append((path, [(path, layer)]))
        if isinstance(layer, conv_layers.CONV_TYPES):
            conv_steps[id(layer)] = steps[-1]
    return steps[::-1]


def _initializer(layer, variable):
    """The layer's own initialiser of one of its weights: `kernel_initializer` for `kernel`,
    `depthwise_initializer` for `depthwise_kernel` and a DepthwiseConv2D's `kernel` (None if it
    has none)."""
    names = [variable.name, variable.name.removesuffix("_kernel")]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        names.append("depthwise")
    for name in names:
        initializer = getattr(layer, f"{name}_initializer", None)
        if callable(initializer):
            return initializer
    return None


def _seeded(initializer, key: str):
    """`initializer` drawing from a seed of its own for `key`, so that a step gives the same
    weights whichever steps ran before it."""
    config = initializer.get_config()
    if "seed" not in config:  # not random: zeros, ones, constants
        return initializer
    return type(initializer).from_config({**config, "seed": zlib.crc32(key.encode()) & 0x7FFFFFFF})


def _reinitialisations(steps: list, seed: int) -> list:
    """[(name, [(variable, initializer)])] for the steps, checked before any runs.

    Raises:
      ValueError: a weight whose layer has no initialiser for it (a custom layer's).
    """
    planned = []
    for name, layers in steps:
        assignments = []
        for path, layer in layers:
            for variable in layer.weights:
                initializer = _initializer(layer, variable)
                if initializer is None:
                    raise ValueError(
                        f"sanity_check re-initialises each layer with its own initialisers, and {path!r} "
                        f"({type(layer).__name__}) has no {variable.name}_initializer for its weight "
                        f"{variable.name!r}: give the layer that attribute, or stop the cascade above it "
                        f"with max_steps (it is step {len(planned) + 1} from the top)")
                assignments.append((variable, _seeded(initializer, f"{seed}/{path}/{variable.name}")))
        planned.append((name, assignments))
    return planned


def _outputs_agree(first, second) -> bool:
    pairs = ((keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
             for a, b in zip(keras.tree.flatten(first), keras.tree.flatten(second)))
    return all(np.allclose(a, b, rtol=1e-4, atol=1e-5 * max(1.0, float(np.max(np.abs(a))))) for a, b in pairs)


def _copy(model, inputs) -> tuple:
    """(copy, {path in `model`: path in the copy}): a copy of `model` with variables of its own
    holding the same values, checked to compute the same outputs on `inputs`. Layers a nested
    subclassed model makes get new names in the copy."""
    fix = ("give every custom layer and nested subclassed model a get_config() returning its "
           "constructor's arguments (and from_config() if they are not plain values)")
    seeds = random.getstate()
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    except (NotImplementedError, TypeError, ValueError) as error:
        raise ValueError(f"sanity_check randomises a copy of the model, and keras.models.clone_model could not "
                         f"copy it ({type(error).__name__}: {error}): {fix}") from error
    finally:  # the copy's unseeded initialisers drew seeds from Python's generator, which is the user's
        random.setstate(seeds)
    for _, layer in conv_layers.walk(copy):
        if hasattr(layer, "finalize_state"):  # as loading weights does: a Normalization reads its statistics
            layer.finalize_state()
    layers, copied = list(conv_layers.walk(model)), list(conv_layers.walk(copy))
    if [type(layer) for _, layer in layers] != [type(layer) for _, layer in copied]:
        raise ValueError(f"keras.models.clone_model's copy of the model has other layers than the model: {fix}")
    if {id(v) for v in copy.weights} & {id(v) for v in model.weights}:
        raise ValueError(f"keras.models.clone_model's copy of the model shares weights with it, which sanity_check "
                         f"would randomise: {fix}, and no layer that holds another's weights")
    if not _outputs_agree(model(inputs, training=False), copy(inputs, training=False)):
        raise ValueError(f"keras.models.clone_model's copy of the model computes other outputs than the model: "
                         f"a layer's get_config() leaves out something it is built with; {fix}")
    return copy, {path: copied_path for (path, _), (copied_path, _) in zip(layers, copied)}


def sanity_check(model, images, layer: str | None = None, class_index=None, *, head: str | None = None,
                 output=None, image_input=None, background_class: int = 0, max_steps: int = 20,
                 seed: int = 0, method: str = "gradcam", verbose="auto", **params) -> list:
    """The cascading model-parameter randomisation test of Grad-CAM (Adebayo et al. 2018), or of
    another of `explain`'s methods.

    On a copy of the model, re-initialises the layers that have weights one step at a time from
    the output down (`cascade`: a batch normalisation that follows a conv goes with it), each
    with its own initialisers seeded from `seed`, keeping the earlier steps random, and after
    each step compares the Grad-CAM maps of `images` with the trained model's, for the same
    classes. Maps that explain what the model learnt lose their likeness at the first steps.
    A model with more than `max_steps` steps has only its top `max_steps` re-initialised.

    Args:
      model: a built functional or Sequential Keras model ending in class scores (nested models
        are copied and randomised too). It is not changed, nor is its optimizer.
      images, layer, head, output, image_input: as for `tb_cnnviz.gradcam`.
      background_class: a segmentation head's class that is not "predicted" (as `CNNViz`'s).
      class_index: as for `tb_cnnviz.gradcam`; None explains each image's class as the trained
        model predicts it, at every step.
      max_steps: at most this many steps, from the top.
      seed: the re-initialised weights depend on it (and on the layer) alone.
      method, **params: whose maps are compared: one of `explain`'s methods and its parameters
        ("gradcam" and the others; "eigencam" uses no gradients, so randomising the layers
        above its layer leaves its maps as they were).

    Returns:
      [(step name, mean over images of the Spearman rank correlation of its maps with the
      trained model's)], top step first. A step is named by its layer's path; a map that is
      constant (all zero) on either side correlates 0.

    Raises:
      ValueError, TypeError: what `gradcam` raises; a max_steps that is not a positive int or a
        seed that is not an int; a model keras.models.clone_model cannot copy faithfully, or a
        weight with no initialiser of its layer's (the message says what to do).
      RuntimeError: Keras runs on a backend other than TensorFlow, JAX and PyTorch.
    """
    if not isinstance(max_steps, (int, np.integer)) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    chosen = check_method(method, params, layer)
    bars = progress_bars(verbose, "step")
    prepared = prepare(model, images, layer, class_index, head, output, image_input)
    inputs = prepared.samples.float32_inputs()
    copy, copy_paths = _copy(model, inputs)
    copy_layers = dict(conv_layers.walk(copy))
    steps = _reinitialisations([(name, [(path, copy_layers[copy_paths[path]]) for path, _ in layers])
                                for name, layers in cascade(model)[:max_steps]], int(seed))
    explain = MethodMaps(copy, heads.find_head(copy, prepared.head.kind, prepared.head.output),
                         copy_paths[prepared.layer], prepared.samples.image_key, method, chosen, background_class)
    target, original = explain(inputs, prepared.target)
    results, bar = [], bars(len(steps)) if bars else None
    for name, assignments in steps:
        for variable, initializer in assignments:
            variable.assign(initializer(variable.shape, dtype=variable.dtype))
        maps = explain(inputs, target)[1]
        results.append((name, float(np.mean(rank_correlations(maps, original)))))
        if bar:
            bar.update(len(results))
    return results
