"""The fused probe: everything one logging event needs from the model, in one compiled pass.

A single forward pass explains the probes' classes (`explanations.cam.ClassExplainer`: the
outputs of the watched layers, and the Grad-CAM gradients from the same pass), and the same
function computes filter statistics, the faithfulness check and each filter's top examples.
"""

import dataclasses

import numpy as np
from keras import ops

from tb_cnnviz import backend
from tb_cnnviz.anatomy import checks, conv_layers
from tb_cnnviz.anatomy.heads import Head
from tb_cnnviz.anatomy.model_inputs import Samples
from tb_cnnviz.explanations import ranking
from tb_cnnviz.explanations.cam import ClassExplainer, upsample
from tb_cnnviz.explanations.curves import DeletionInsertion, blur, top_pixels
from tb_cnnviz.storage.event import EventData
from tb_cnnviz.storage.tensors import STAT_NAMES


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    """What a probe computes; paths are keys of `conv_layers.conv_layers(model)`."""

    gradcam_layer: str
    activation_channels: dict = dataclasses.field(default_factory=dict)  # path -> channels
    filter_channels: dict = dataclasses.field(default_factory=dict)  # path -> channels
    rgb_filter_layer: str | None = None  # logged as colour tiles of its input channels
    faithfulness_fraction: float = 0.2
    image_input: str | int | None = None  # where the images sit in the inputs (`model_inputs.Samples`)
    background_class: int = 0  # a segmentation head's class that is not "predicted"
    activation_sizes: dict = dataclasses.field(default_factory=dict)  # path -> (h, w) of maps stored smaller
    class_slots: int = 1  # classes explained per probe: the target, the true class, then by rank
    top_examples: tuple = ()  # paths whose filters' top examples are found (`ranking.best_examples`)
    top_k: int = 0  # examples per filter
    examples_from_probes: bool = True  # each event finds them among the probes (else `reference_examples`)
    target_methods: tuple = ()  # `cam.CAM_METHODS` mapping the target only, beside every slot's EVENT_METHODS


@dataclasses.dataclass(frozen=True)
class ProbeResult(EventData):
    """One probe pass, as numpy arrays (N probes): what an event stores (`storage.event.EventData`)
    and, by layer path, the top examples found among the probes: (images, positions, values),
    each (k, filters), and the (h, w) of the map the positions are in."""

    top_examples: dict = dataclasses.field(default_factory=dict)

    @property
    def gradcam(self) -> np.ndarray:
        """(N, h, w) Grad-CAM maps of the target classes."""
        return self.class_gradcam[:, 0]

    @property
    def gradcam_pp(self) -> np.ndarray:
        return self.class_gradcam_pp[:, 0]

    @property
    def target_probability(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self.target)), self.target]

    @property
    def faithfulness_drop(self) -> np.ndarray:
        """(N,) how much the target's probability drops with the top of its map blurred."""
        return self.target_probability - self.masked_probability


def _flat_filters(layer):
    """(filters, kh*kw*in) rows, one per output channel."""
    kernel = conv_layers.effective_kernel(layer)
    return ops.reshape(ops.transpose(kernel, (3, 0, 1, 2)), (kernel.shape[3], -1))


def _cosine_distance(a, b):
    dot = ops.sum(a * b, axis=1)
    norms = ops.norm(a, axis=1) * ops.norm(b, axis=1)
    distance = ops.where(norms > 0, 1.0 - dot / ops.where(norms > 0, norms, 1.0), 0.0)
    return ops.clip(distance, 0.0, 2.0)  # rounding must not give negative distances


def _stats(filters, first, previous, activations):
    """(len(STAT_NAMES), filters) statistics of one layer's filter rows and activations."""
    stats = [
        ops.norm(filters, axis=1),
        _cosine_distance(filters, first),
        _cosine_distance(filters, previous),
        ops.mean(activations, axis=(0, 1, 2)),
        ops.mean(ops.cast(ops.max(activations, axis=(1, 2)) <= 0, "float32"), axis=0),
    ]
    assert len(stats) == len(STAT_NAMES)
    return ops.stack(stats)


def _mask_top(images, maps, fraction):
    """Images whose top `fraction` of map pixels are replaced by a blurred copy."""
    return ops.where(top_pixels(maps, fraction)[..., None], blur(images), images)


def _numpy(structure):
    return {key: _numpy(value) if isinstance(value, dict) else ops.convert_to_numpy(value)
            for key, value in structure.items()}


class Probe:
    """Runs a ProbeSpec on a model whose output `head` it explains; call it with the inputs (as
    the model takes them) and targets (-1 = predicted class)."""

    def __init__(self, model, spec: ProbeSpec, head: Head):
        checks.check_model(model)
        self.spec, self.head = spec, head
        self.convs = conv_layers.conv_layers(model)
        watched = {spec.gradcam_layer, *spec.activation_channels, *self.convs}  # statistics: every conv layer
        self._explainer = ClassExplainer(model, head, spec.gradcam_layer,
                                         {path: self.convs[path] for path in self.convs if path in watched},
                                         spec.class_slots, spec.background_class,
                                         target_methods=spec.target_methods)
        # path -> filter rows of the first event, and mode -> path -> rows of that mode's previous
        # event. Arrays passed into the compiled function, not variables: under a distribution
        # strategy making a variable is a collective op, which only the chief (the one worker
        # that logs) would run.
        self._first_filters = {}
        self._previous = {}
        self._kernel_shapes = {  # (kh, kw, inputs) of each filter, to unflatten filter rows
            path: tuple(conv_layers.effective_kernel(self.convs[path]).shape[:3]) for path in spec.filter_channels}
        self._event = backend.current().compile(self._event_graph, model)
        self._curves = DeletionInsertion(self._explainer, spec.image_input)
        self._examples_pass = None  # (peaks of a batch, best over all), compiled at the first search

    def current_filters(self) -> dict:
        """{path: (filters, kh*kw*in)} rows of every conv layer's current weights."""
        return {path: ops.convert_to_numpy(_flat_filters(layer)) for path, layer in self.convs.items()}

    def set_first_filters(self, first: dict | None = None) -> None:
        """Filter drift is measured from `first` {path: filter rows} (default: current weights);
        a layer whose filters changed shape since (a model widened) is measured from now."""
        current = self.current_filters()
        first = first or current
        for path, filters in current.items():
            kept = first.get(path)
            self._first_filters[path] = filters if kept is None or kept.shape != filters.shape else kept

    def continue_mode(self, mode: str) -> None:
        """The next event of `mode` measures change from the current weights: a resumed run's
        previous event was written by the process that saved these weights."""
        self._previous[mode] = self.current_filters()

    def _inputs(self, inputs):
        """The inputs with float32 images, the head's logits judged (once) from them."""
        inputs = Samples(inputs, self.spec.image_input).float32_inputs()
        self._explainer.judge_logits(inputs)
        return inputs

    def __call__(self, inputs, target, mode: str = "train", true=None) -> ProbeResult:
        """Events of the same mode measure filter change (cos_to_prev) from one another; the
        first of a mode has none. `true`: each probe's true class, -1 where none (None: none)."""
        if not self._first_filters:
            self.set_first_filters()
        images = Samples(inputs, self.spec.image_input).images
        inputs = self._inputs(inputs)
        true = np.full(len(images), -1, np.int32) if true is None else np.asarray(true, np.int32)
        first_of_mode = mode not in self._previous
        previous = self._previous.get(mode, self._first_filters)
        out = _numpy(self._event(inputs, np.asarray(target, np.int32), true, self._first_filters, previous))
        rows = out.pop("filter_rows")
        self._previous[mode] = rows
        stats = out["stats"]
        if first_of_mode:  # no previous event to measure change from
            stats = {path: values.copy() for path, values in stats.items()}
            for values in stats.values():
                values[STAT_NAMES.index("cos_to_prev")] = np.nan
        # Selecting and arranging a few small arrays is cheaper in numpy than as graph ops.
        return ProbeResult(
            probabilities=out["probabilities"], image_size=tuple(images.shape[1:3]), predicted=out["predicted"],
            target=out["target"], classes=out["classes"], class_gradcam=out["gradcam"],
            class_gradcam_pp=out["gradcam_pp"], masked_probability=out["masked_probability"],
            activations={path: np.moveaxis(self._logged_channels(path, out["activations"][path]), -1, 1)
                         for path in self.spec.activation_channels},
            filters={path: self._filter_images(path, rows[path], channels)
                     for path, channels in self.spec.filter_channels.items()},
            stats=stats, masks=out.get("masks"), pixel_share=out.get("pixel_share"),
            target_pixels=out.get("target_pixels"), method_maps=out["method_maps"],
            top_examples={path: tuple(found[name] for name in ("images", "positions", "values", "size"))
                          for path, found in out["top_examples"].items()},
        )

    def _event_graph(self, inputs, target, true, first, previous):
        spec = self.spec
        out, recorded = self._explainer(inputs, target, true)
        acts = {path: ops.cast(output, "float32") for path, output in recorded.items()}
        images = Samples(inputs, spec.image_input).images
        masked = _mask_top(images, upsample(out["gradcam"][:, 0], images.shape[1:3]), spec.faithfulness_fraction)
        with self._explainer.linear():
            _, masked_probabilities = self._explainer.forward(Samples(inputs, spec.image_input).with_images(masked))
        out["masked_probability"] = self.head.target_probability(masked_probabilities, out["target"],
                                                                 out.pop("region", None))
        out["filter_rows"] = {path: _flat_filters(layer) for path, layer in self.convs.items()}
        out["stats"] = {path: _stats(out["filter_rows"][path], first[path], previous[path], acts[path])
                        for path in self.convs}
        out["activations"] = {path: acts[path] for path in spec.activation_channels}
        for path, size in spec.activation_sizes.items():  # the logged channels, area-downsampled
            channels = ops.take(acts[path], spec.activation_channels[path], axis=-1)
            out["activations"][path] = backend.current().resize(channels, size, "area")
        out["top_examples"] = {path: _top_examples(acts[path], spec.top_k)
                               for path in (spec.top_examples if spec.examples_from_probes else ())}
        return out

    def deletion_insertion(self, inputs, maps: list, target, random_ranks, steps: int) -> list:
        """`curves.DeletionInsertion` of each of the probes' `maps` [(N, h, w), ...] of `target` (N,)."""
        return self._curves(self._inputs(inputs), maps, target, random_ranks, steps)

    def reference_examples(self, inputs, batch: int = 32) -> dict:
        """{path: (images, positions, values, map size)} (as `ProbeResult.top_examples`) of the
        spec's top-example layers over reference `inputs` (as the model takes them): the peaks
        of each batch in one compiled pass (no gradients), the best k over all of them in another."""
        if self._examples_pass is None:
            seam, model = backend.current(), self._explainer.model
            self._examples_pass = (seam.compile(self._batch_peaks, model),
                                   seam.compile(lambda peak, position: ranking.best_examples(peak, position,
                                                                                             self.spec.top_k), model))
        batch_peaks, best = self._examples_pass
        samples = Samples(inputs, self.spec.image_input)
        found = [_numpy(batch_peaks(self._inputs(samples.map(lambda array, s=start: array[s:s + batch]))))
                 for start in range(0, len(samples), batch)]
        result = {}
        for path in self.spec.top_examples:
            peak, position = (np.concatenate([one[path][name] for one in found]) for name in ("peak", "position"))
            result[path] = (*(ops.convert_to_numpy(t) for t in best(peak, position)), found[0][path]["size"])
        return result

    def _batch_peaks(self, inputs):
        """{path: peaks, their positions and the map size} of one batch of reference images, as
        the event's forward pass records them (a head's own conv: its scores)."""
        watched = {path: self.convs[path] for path in self.spec.top_examples}
        recorded = {}
        with self._explainer.linear(), conv_layers.recording(watched, recorded):
            self._explainer.model(inputs, training=False)
        found = {}
        for path in watched:
            peak, position = ranking.peaks(ops.cast(recorded[path], "float32"))
            found[path] = {"peak": peak, "position": position, "size": ops.convert_to_tensor(ops.shape(recorded[path])[1:3])}
        return found

    def _logged_channels(self, path, activations):
        """(N, h, w, logged channels) of a layer; downsampled layers have them selected in graph."""
        if path in self.spec.activation_sizes:
            return activations
        return activations[..., self.spec.activation_channels[path]]

    def _filter_images(self, path, rows, channels):
        """(n, kh, kw, c) from filter rows: colour tiles for the RGB layer, else the mean over
        input channels."""
        kernels = rows[channels].reshape(len(channels), *self._kernel_shapes[path])
        if path != self.spec.rgb_filter_layer:
            kernels = kernels.mean(axis=-1, keepdims=True)
        return kernels


def _top_examples(activations, k: int) -> dict:
    """In graph: a layer's best k probes per filter (`ranking.best_examples`) and its map size."""
    images, positions, values = ranking.best_examples(*ranking.peaks(activations), k)
    return {"images": images, "positions": positions, "values": values,
            "size": ops.convert_to_tensor(ops.shape(activations)[1:3])}
