"""What the callback logs for one model: the layers, channels and filters of every event (the
probe's spec) and the run header that describes them. Events too big to hold are refused here,
before any work."""

import dataclasses
import hashlib
import math

import numpy as np

from tb_cnnviz.anatomy import checks, conv_layers, heads, model_inputs, receptive, stages
from tb_cnnviz.capture.options import ALL_LAYERS, Options, objects as checked_objects
from tb_cnnviz.capture.probe import ProbeSpec
from tb_cnnviz.explanations import trust
from tb_cnnviz.explanations.cam import CAM_METHODS, EVENT_METHODS
from tb_cnnviz.storage import run_header
from tb_cnnviz.storage.tensors import STAT_NAMES
from tb_cnnviz.storage.top_examples import OWN_REFERENCE, PROBES_REFERENCE

# Feature-map values one event may log (probes x logged maps x pixels). An event needs at most
# ~32 bytes of memory per value beyond the model's own forward pass (docs/reliability.md, "Memory").
MAX_LOGGED_VALUES = 128 * 2**20
RGB_FILTER_TILES = 64  # colour tiles of the first layer's filters; deeper layers log max_channels
MAX_EXAMPLES = 9  # top examples per filter, as deep-visualization-toolbox shows them


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    spec: ProbeSpec
    header: run_header.RunHeader
    samples: model_inputs.Samples  # checked against the model's inputs
    head: heads.Head
    labels: np.ndarray | None  # class indices (N,), or rows (N, K) of each probe's true classes (_labels)
    targets: np.ndarray  # the class each probe's map explains, -1 for the predicted class
    true: np.ndarray | None  # each probe's true class (_true_classes), -1 where it has none
    objects: np.ndarray | None  # (N, H, W) bool masks of the probes' objects
    random_ranks: np.ndarray  # (N, H*W) each pixel's rank in the random order deletion and insertion compare with
    source: str  # the probes and the Grad-CAM layer, whose first maps sanity_rank_corr compares with
    reference: model_inputs.Samples | None  # top examples' own reference images (None: the probes), checked


def _kept_channels(max_channels, max_layer_pixels, map_pixels):
    """How many maps of a layer to log: max_channels, fewer for large maps so that a probe logs
    at most max_layer_pixels pixels of the layer (always at least one map)."""
    if max_layer_pixels is None or map_pixels is None:
        return max_channels
    budget = max(1, max_layer_pixels // map_pixels)
    return budget if max_channels == "all" else min(max_channels, budget)


def _spread(count, keep):
    """`keep` channel indices spread evenly over `count`, fixed for the whole run."""
    if keep == "all" or keep >= count:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, keep)})


def _map_pixels(shape):
    """Pixels of one feature map of a conv layer's output shape, or None if its size is dynamic."""
    height, width = shape[:2]
    return None if height is None or width is None else int(height * width)


def _downsampling(shape, max_layer_pixels) -> int:
    """The smallest integer factor by which a layer's maps are area-downsampled so that one
    map fits in max_layer_pixels (1: stored as they are)."""
    pixels = _map_pixels(shape)
    if max_layer_pixels is None or pixels is None or pixels <= max_layer_pixels:
        return 1
    return math.ceil(math.sqrt(pixels / max_layer_pixels))


def _stored_shape(shape, factor: int) -> tuple:
    """(height, width, channels) of a layer's maps as stored, downsampled by `factor`."""
    height, width, channels = shape
    return (max(1, height // factor), max(1, width // factor), channels) if factor > 1 else tuple(shape)


def _check_classes(options: Options, head: heads.Head):
    if head.kind == heads.SEGMENTATION and options.background_class >= head.classes:
        raise ValueError(f"background_class must be below the model's {head.classes} classes, "
                         f"got {options.background_class}")
    if options.class_names is not None and len(options.class_names) != head.classes:
        raise ValueError(f"class_names has {len(options.class_names)} names, the model has {head.classes} classes"
                         + (" (a binary head has two: class 0 and class 1)" if head.kind == heads.BINARY else ""))


def _labels(options: Options, head: heads.Head):
    """The labels as the head reads them: indices, or multi-hot rows (N, K) of each probe's
    true classes for a multi-label head and for a segmentation head (the classes in its mask)."""
    labels, classes = options.labels, head.classes
    if labels is None:
        return None
    if head.kind == heads.SEGMENTATION:
        size = head.shape[1:3]
        if labels.ndim != 3 or any(s is not None and s != m for s, m in zip(size, labels.shape[1:])):
            raise ValueError(f"labels of a segmentation head must be masks (N, {size[0]}, {size[1]}) of class "
                             f"indices at the output's resolution; got shape {labels.shape}")
        if np.any(labels >= classes):
            raise ValueError(f"label masks must hold class indices below the model's {classes} classes")
        return np.stack([np.isin(np.arange(classes), mask) for mask in labels]).astype(np.int64)
    if labels.ndim == 3:
        raise ValueError(f"label masks (N, H, W) are for a segmentation head; this model's head is {head.kind!r}")
    if head.kind == heads.MULTILABEL:
        if labels.ndim != 2 or labels.shape[1] != classes:
            raise ValueError(f"labels of a multi-label head must be multi-hot rows (N, {classes}), one 0/1 per "
                             f"class; got shape {labels.shape}")
        return labels
    if labels.ndim == 2:
        if labels.shape[1] != classes or np.any(labels.sum(axis=1) != 1):
            raise ValueError(f"label rows must be one-hot over the model's {classes} classes (a multi-label "
                             f"model takes multi-hot rows with head='multilabel'); got shape {labels.shape}")
        labels = labels.argmax(axis=1)
    if np.any(labels >= classes):
        raise ValueError(f"labels must be class indices below the model's {classes} classes")
    return labels


def _true_classes(options: Options, head: heads.Head, labels) -> np.ndarray | None:
    """Each probe's true class, -1 where it has none (None without labels): a multi-label
    probe's lowest-numbered true class, a segmentation probe's class with the most pixels in
    its mask other than the background."""
    if labels is None:
        return None
    if head.kind == heads.SEGMENTATION:
        counts = np.stack([np.bincount(mask.ravel(), minlength=head.classes) for mask in options.labels])
        counts[:, options.background_class] = 0
        return np.where(counts.any(axis=1), counts.argmax(axis=1), -1)
    if labels.ndim == 2:
        return np.where(labels.any(axis=1), labels.argmax(axis=1), -1)
    return labels


def _targets(options: Options, head: heads.Head, true) -> np.ndarray:
    """-1 (the predicted class) or a class per probe; "true" is `_true_classes` (the predicted
    class where a probe has none)."""
    if isinstance(options.target, np.ndarray):
        if np.any(options.target >= head.classes):
            raise ValueError(f"target must be class indices below the model's {head.classes} classes")
        return options.target
    if options.target != "true":
        return np.full(len(options.samples), -1)
    return true


def _check_size(options: Options, shapes, channels):
    """Refuses, before any work, an event too big to hold in memory."""
    pixels = {p: _map_pixels(shapes[p]) for p in channels}
    sizes = {  # logged values per layer (layers with a dynamic map size cannot be told)
        p: len(options.samples) * pixels[p] * len(channels[p]) for p in channels if pixels[p] is not None
    }
    values = sum(sizes.values())
    if values > MAX_LOGGED_VALUES:
        biggest = max(sizes, key=sizes.get)
        raise ValueError(
            f"one event would log {values / 2**20:.0f} M feature-map values ({len(options.samples)} probes; "
            f"layer {biggest!r} alone {sizes[biggest] / 2**20:.0f} M), more than the "
            f"{MAX_LOGGED_VALUES // 2**20} M an event may hold (~32 bytes of memory each): lower "
            f"max_channels (now {options.max_channels!r}) or max_layer_pixels (now "
            f"{options.max_layer_pixels!r}), log fewer layers with layers=[...], or pass fewer samples"
        )


def _digest(images) -> str:
    """A digest of images: what stored maps or examples computed from them are checked against."""
    return hashlib.sha1(np.ascontiguousarray(images, np.float32).tobytes()).hexdigest()


@dataclasses.dataclass(frozen=True)
class _Logged:
    """What events log of a model's conv layers {path: ...}: every conv layer's output shape,
    the layers whose maps are logged (model order), the factor of those stored smaller, their
    stored shape and channels, the channels of the filters logged, and the layer shown as colour
    tiles."""

    shapes: dict
    gradcam_layer: str
    layers: list
    downsampled: dict
    stored: dict
    channels: dict
    filter_channels: dict
    rgb: str | None


def _logged(options: Options, model, convs: dict, shapes: dict, head: heads.Head) -> _Logged:
    gradcam_layer = (conv_layers.resolve(model, convs, options.gradcam_layer, "gradcam_layer")
                     if options.gradcam_layer is not None else head.gradcam_layer(convs))
    if options.layers == ALL_LAYERS:
        chosen = set(convs)
    elif options.layers is None:  # each stage's output, and the layer Grad-CAM explains
        chosen = {*stages.stage_outputs(model, shapes), gradcam_layer}
    else:
        chosen = {conv_layers.resolve(model, convs, name, "layer") for name in options.layers}
    chosen = [path for path in convs if path in chosen]  # model order, no repeats
    downsampled = {p: factor for p in chosen if (factor := _downsampling(shapes[p], options.max_layer_pixels)) > 1}
    stored = {p: _stored_shape(shapes[p], downsampled.get(p, 1)) for p in chosen}
    channels = {
        p: _spread(shapes[p][-1], _kept_channels(options.max_channels, options.max_layer_pixels, _map_pixels(stored[p])))
        for p in chosen
    }
    _check_size(options, stored, channels)
    first = list(convs)[0]
    rgb = first if conv_layers.effective_kernel(convs[first]).shape[2] in (1, 3) else None
    filter_channels = {  # filters are small: not limited by max_layer_pixels
        p: _spread(shapes[p][-1], RGB_FILTER_TILES if p == rgb else options.max_channels) for p in chosen
    } if options.log_weights else {}
    return _Logged(shapes, gradcam_layer, chosen, downsampled, stored, channels, filter_channels, rgb)


def _reference(options: Options, model, samples: model_inputs.Samples) -> model_inputs.Samples | None:
    """Top examples' own reference images, checked against the model (None: the probes)."""
    if options.reference is None:
        return None
    reference = model_inputs.for_model(options.reference, model, "reference")
    if reference.images.shape[1:] != samples.images.shape[1:]:
        raise ValueError(f"reference images must be shaped as the probe images {samples.images.shape[1:]}, got "
                         f"{reference.images.shape[1:]}")
    return reference


def _run_header(options: Options, model, convs: dict, head: heads.Head, logged: _Logged, labels,
                samples: model_inputs.Samples, reference, top_k: int) -> run_header.RunHeader:
    searched = samples if reference is None else reference
    fields = receptive.receptive_fields(model, logged.layers, samples.image_key)
    return run_header.RunHeader(
        layers=logged.layers,
        conv_layers={path: {"type": type(layer).__name__, "output_shape": list(logged.shapes[path])}
                     for path, layer in convs.items()},
        channels=logged.channels,
        downsampled=logged.downsampled,
        filter_channels=logged.filter_channels,
        gradcam_layer=logged.gradcam_layer,
        stat_names=list(STAT_NAMES),
        model=model.name,
        labels=run_header.labels_stored(labels),
        class_names=options.class_names,
        num_classes=head.classes,
        head=head.kind,
        output=head.output_name,
        background_class=options.background_class if head.kind == heads.SEGMENTATION else None,
        rgb_filter_layer=logged.rgb,
        target=options.target if isinstance(options.target, str) else options.target.tolist(),
        faithfulness_fraction=options.faithfulness_fraction,
        gradcam_classes=options.gradcam_classes,
        truth="boxes" if options.boxes is not None else "masks" if options.masks is not None else None,
        objects=run_header.pack_objects(*checked_objects(options.masks, options.boxes, samples.images)),
        trust_every=options.trust_every,
        curve_steps=trust.CURVE_STEPS,
        top_examples={"k": top_k, "layers": logged.layers, "count": len(searched),
                      "reference": PROBES_REFERENCE if reference is None else OWN_REFERENCE,
                      "per_event": options.max_example_filters, "digest": _digest(searched.images)},
        receptive_fields={path: None if field is None else field.stored() for path, field in fields.items()},
        feature_vis={path: logged.channels[path][:options.feature_vis] for path in logged.layers}
        if options.feature_vis else {},
        filters_every=options.filters_every,
        methods=list(options.methods),
        expensive_every=options.expensive_every,
    )


def make_plan(options: Options, model) -> Plan:
    """The plan for `model`, built (if Sequential) and checked.

    Raises:
      ValueError: a model tb_cnnviz cannot explain, options that do not fit it (a layer it does
        not have, labels beyond its classes, probe images of another size), or an event too big.
    """
    checks.build_sequential(model, options.samples)
    checks.check_model(model)
    samples = model_inputs.for_model(options.samples, model)
    head = heads.find_head(model, options.head, options.output)
    _check_classes(options, head)
    labels = _labels(options, head)
    true = _true_classes(options, head, labels)
    convs = conv_layers.conv_layers(model)
    logged = _logged(options, model, convs, conv_layers.conv_output_shapes(model, convs, samples.map(lambda a: a[:1])),
                     head)
    reference = _reference(options, model, samples)
    top_k = min(MAX_EXAMPLES, len(samples if reference is None else reference))
    spec = ProbeSpec(gradcam_layer=logged.gradcam_layer, activation_channels=logged.channels,
                     filter_channels=logged.filter_channels, rgb_filter_layer=logged.rgb,
                     faithfulness_fraction=options.faithfulness_fraction, image_input=samples.image_key,
                     background_class=options.background_class,
                     activation_sizes={p: logged.stored[p][:2] for p in logged.downsampled},
                     class_slots=min(head.classes, 1 + options.gradcam_classes + (true is not None)),
                     target_methods=tuple(m for m in options.methods if m in CAM_METHODS and m not in EVENT_METHODS),
                     top_examples=tuple(logged.layers), top_k=top_k, examples_from_probes=reference is None)
    header = _run_header(options, model, convs, head, logged, labels, samples, reference, top_k)
    images = samples.images
    return Plan(spec, header, samples, head, labels, _targets(options, head, true), true,
                run_header.object_masks(header, images.shape[:3]),
                trust.random_ranks(len(images), images.shape[1] * images.shape[2]),
                f"{logged.gradcam_layer}:{_digest(images)}", reference)
