"""What the callback logs for one model: the layers, channels and filters of every event (the
probe's spec) and the run header that describes them. Events too big to hold are refused here,
before any work."""

import dataclasses

import numpy as np

from tb_cnnviz import checks, format, layers as layer_utils
from tb_cnnviz.options import Options
from tb_cnnviz.probe import ProbeSpec

# Feature-map values one event may log (probes x logged maps x pixels). An event needs at most
# ~32 bytes of memory per value beyond the model's own forward pass (README, Reliability).
MAX_LOGGED_VALUES = 128 * 2**20
RGB_FILTER_TILES = 64  # colour tiles of the first layer's filters; deeper layers log max_channels


@dataclasses.dataclass(frozen=True)
class Plan:
    spec: ProbeSpec
    header: format.RunHeader


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


def _check_classes(options: Options, classes: int):
    target = None if isinstance(options.target, str) else options.target
    for name, values in (("labels", options.labels), ("target", target)):
        if values is not None and np.any(values >= classes):
            raise ValueError(f"{name} must be class indices below the model's {classes} classes")
    if options.class_names is not None and len(options.class_names) != classes:
        raise ValueError(f"class_names has {len(options.class_names)} names, the model has {classes} classes")


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


def make_plan(options: Options, model) -> Plan:
    """The plan for `model`, built (if Sequential) and checked.

    Raises:
      ValueError: a model tb_cnnviz cannot explain, options that do not fit it (a layer it does
        not have, labels beyond its classes, probe images of another size), or an event too big.
    """
    checks.build_sequential(model, options.samples)
    checks.check_model(model)
    checks.check_image_shape(options.samples, model, "samples")
    convs = layer_utils.conv_layers(model)
    shapes = layer_utils.conv_output_shapes(model, convs, options.samples)
    classes = model.outputs[0].shape[-1]
    _check_classes(options, classes)
    chosen = set(convs) if options.layers is None else {
        layer_utils.resolve(model, convs, name, "layer") for name in options.layers}
    chosen = [path for path in convs if path in chosen]  # model order, no repeats
    gradcam_layer = (layer_utils.resolve(model, convs, options.gradcam_layer, "gradcam_layer")
                     if options.gradcam_layer is not None else list(convs)[-1])
    channels = {
        p: _spread(shapes[p][-1], _kept_channels(options.max_channels, options.max_layer_pixels, _map_pixels(shapes[p])))
        for p in chosen
    }
    _check_size(options, shapes, channels)
    first = list(convs)[0]
    rgb = first if layer_utils.effective_kernel(convs[first]).shape[2] in (1, 3) else None
    filter_channels = {  # filters are small: not limited by max_layer_pixels
        p: _spread(shapes[p][-1], RGB_FILTER_TILES if p == rgb else options.max_channels) for p in chosen
    } if options.log_weights else {}
    spec = ProbeSpec(gradcam_layer=gradcam_layer, activation_channels=channels, filter_channels=filter_channels,
                     rgb_filter_layer=rgb, stats=True, faithfulness_fraction=options.faithfulness_fraction)
    header = format.RunHeader(
        layers=chosen,
        conv_layers={path: {"type": type(layer).__name__, "output_shape": list(shapes[path])}
                     for path, layer in convs.items()},
        channels=channels,
        filter_channels=filter_channels,
        gradcam_layer=gradcam_layer,
        stat_names=list(format.STAT_NAMES),
        model=model.name,
        labels=None if options.labels is None else options.labels.tolist(),
        class_names=options.class_names,
        num_classes=int(classes),
        rgb_filter_layer=rgb,
        target=options.target if isinstance(options.target, str) else options.target.tolist(),
        faithfulness_fraction=options.faithfulness_fraction,
    )
    return Plan(spec, header)
