"""The fused probe: everything one logging event needs from the model, in one tf.function.

A single forward pass records the outputs of the layers we watch (`layers.recording`), the same
tape gives the Grad-CAM gradients, and the function also computes filter statistics and the
faithfulness check. `gradcam` and `gradcam_plus_plus` are the same computation as functions.
"""

import contextlib
import dataclasses
import math
import weakref

import numpy as np
import tensorflow as tf

from tb_cnnviz import cam, checks, heads, inputs as model_inputs, layers as layer_utils
from tb_cnnviz.format import STAT_NAMES


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    """What a probe computes; paths are keys of `layers.conv_layers(model)`."""

    gradcam_layer: str
    activation_channels: dict = dataclasses.field(default_factory=dict)  # path -> channels
    filter_channels: dict = dataclasses.field(default_factory=dict)  # path -> channels
    rgb_filter_layer: str | None = None  # logged as colour tiles of its input channels
    stats: bool = False
    faithfulness_fraction: float | None = None
    image_input: str | int | None = None  # where the images sit in the inputs (`inputs.Samples`)
    background_class: int = 0  # a segmentation head's class that is not "predicted"
    activation_sizes: dict = dataclasses.field(default_factory=dict)  # path -> (h, w) of maps stored smaller
    class_slots: int = 1  # classes explained per probe: the target, the true class, then by rank (`_classes`)
    top_examples: tuple = ()  # paths whose filters' top examples are found (`best_examples`)
    top_k: int = 0  # examples per filter
    examples_from_probes: bool = True  # each event finds them among the probes (else `reference_examples`)


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """One probe pass, as numpy arrays (N probes)."""

    probabilities: np.ndarray  # (N, classes); a segmentation head's: each class's mean over its pixels
    image_size: tuple  # (H, W) of the probe images, which the heat maps explain
    predicted: np.ndarray  # (N,) the predicted class (heads.Head.explain)
    target: np.ndarray  # (N,) the class each map explains
    classes: np.ndarray  # (N, class_slots) the classes explained: the target first
    class_gradcam: np.ndarray  # (N, class_slots, h, w) at the Grad-CAM layer's resolution, non-negative
    class_gradcam_pp: np.ndarray  # (N, class_slots, h, w)
    masked_probability: np.ndarray | None  # (N,) the target's probability with the top of the map blurred
    activations: dict  # path -> (N, logged channels, h, w)
    filters: dict  # path -> (logged filters, kh, kw, c): colour tiles or the mean over inputs (c = 1)
    stats: dict  # path -> (len(STAT_NAMES), filters)
    masks: np.ndarray | None = None  # a segmentation head's predicted class per output pixel (N, H, W)
    pixel_share: np.ndarray | None = None  # (N, classes) share of output pixels predicted as each class
    target_pixels: np.ndarray | None = None  # (N,) output pixels predicted as the target
    # path -> (images, positions, values), each (k, filters), and the (h, w) of the maps positions are in
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


def peaks(activations):
    """(N, C) peak of each image's map of each channel, and its row-major position (the first
    on ties): what a filter's top examples rank by."""
    flat = tf.reshape(activations, (tf.shape(activations)[0], -1, activations.shape[-1]))
    peak = tf.reduce_max(flat, axis=1)
    pixels = tf.shape(flat)[1]
    first = tf.reduce_min(tf.where(flat == peak[:, None], tf.range(pixels)[None, :, None], pixels), axis=1)
    return peak, tf.minimum(first, pixels - 1)  # a NaN peak matches no position


def best_examples(peak, position, k):
    """(images, positions, values), each (k, C): the k images with the highest peaks per
    channel, best first; ties go to the lower image index (top_k keeps the earlier of equals)
    and NaN peaks rank last. Positions are row-major in the layer's map."""
    rank = tf.where(tf.math.is_nan(peak), tf.constant(-np.inf, peak.dtype), peak)
    _, order = tf.math.top_k(tf.transpose(rank), k=k)  # (C, k) image indices

    def take(per_image):
        return tf.transpose(tf.gather(tf.transpose(per_image), order, batch_dims=1))

    return tf.transpose(order), take(position), take(peak)


def _blur(images):
    """Heavy blur (area-downsample by 8, upsample back): replaces the masked pixels in the
    faithfulness check. Far cheaper on CPU than a wide stride-1 pooling window."""
    height, width = images.shape[1:3]
    small = tf.image.resize(images, (max(1, height // 8), max(1, width // 8)), method="area")
    return tf.image.resize(small, (height, width), method="bilinear")


class Probe:
    """Runs a ProbeSpec on a model whose output `head` it explains; call it with the inputs (as
    the model takes them) and targets (-1 = predicted class)."""

    def __init__(self, model, spec: ProbeSpec, head: heads.Head):
        checks.check_model(model)
        self._model = weakref.ref(model)  # weak: gradcam()'s cache must not keep models alive
        self.spec = spec
        self.head = head
        self._logits = head.logits  # None until judged from the first outputs (Head.judge_logits)
        self.convs = layer_utils.conv_layers(model)
        watched = {spec.gradcam_layer, *spec.activation_channels}
        if spec.stats:
            watched.update(self.convs)
        self._watched = {p: self.convs[p] for p in self.convs if p in watched}
        # path -> filters of the first event, and mode -> path -> filters of that mode's
        # previous event. Tensors passed into the function, not tf.Variables: under a
        # distribution strategy making a variable is a collective op, which only the chief
        # (the one worker that logs) would run.
        self._reference = {}
        self._previous = {}
        self._kernel_shapes = {  # (kh, kw, inputs) of each filter, to unflatten filter rows
            path: tuple(layer_utils.effective_kernel(self.convs[path]).shape[:3]) for path in spec.filter_channels}
        self._fn = tf.function(self._event, reduce_retracing=True)
        self._traced = {}  # input shapes -> the concrete function tf.function chose for them

    def _traced_for(self, inputs, target, true):
        """The concrete function for these input shapes, called directly to skip tf.function's
        per-call dispatch."""
        key = (*(tuple(t.shape) for t in tf.nest.flatten(inputs)), tuple(target.shape))
        if key not in self._traced:
            self._traced[key] = self._fn.get_concrete_function(inputs, target, true, self._reference, self._reference)
        return self._traced[key]

    def _samples(self, inputs) -> model_inputs.Samples:
        return model_inputs.Samples(inputs, self.spec.image_input)

    @property
    def model(self):
        return self._model()

    def current_filters(self) -> dict:
        """{path: (filters, kh*kw*in)} rows of every conv layer's current weights."""
        return {path: _flat_filters(layer).numpy() for path, layer in self.convs.items()}

    def set_reference(self, reference: dict | None = None) -> None:
        """Distances are measured from `reference` {path: filter rows} (default: current weights)."""
        current = self.current_filters()
        reference = reference or current
        for path, filters in current.items():
            ref = reference.get(path)
            ref = filters if ref is None or ref.shape != filters.shape else ref
            self._reference[path] = tf.constant(ref)

    def continue_mode(self, mode: str) -> None:
        """The next event of `mode` measures change from the current weights: a resumed run's
        previous event was written by the process that saved these weights."""
        self._previous[mode] = {path: tf.constant(rows) for path, rows in self.current_filters().items()}

    def _tensors(self, inputs):
        """The inputs as tensors, images as float32 (what the traced functions take)."""
        samples = self._samples(inputs)
        inputs = self._samples(samples.with_images(np.asarray(samples.images, np.float32))).map(tf.convert_to_tensor)
        if self._logits is None:  # a head with no activation of its own: judged by its outputs
            self._logits = self.head.judge_logits(self.head.select(self.model(inputs, training=False)))
        return inputs

    def __call__(self, inputs, target, mode: str = "train", true=None) -> ProbeResult:
        """Events of the same mode measure filter change (cos_to_prev) from one another; the
        first of a mode has none. `true`: each probe's true class, -1 where none (None: none)."""
        if self.spec.stats and not self._reference:
            self.set_reference()
        samples = self._samples(inputs)
        inputs = self._tensors(inputs)
        target = tf.convert_to_tensor(np.asarray(target, np.int32))
        true = tf.convert_to_tensor(np.full(len(samples), -1, np.int32) if true is None else np.asarray(true, np.int32))
        first_of_mode = mode not in self._previous
        previous = self._previous.get(mode, self._reference)
        out = self._traced_for(inputs, target, true)(inputs, target, true, self._reference, previous)
        rows = out.pop("filter_rows")
        if self.spec.stats:
            self._previous[mode] = rows
        out = tf.nest.map_structure(lambda t: t.numpy(), out)
        stats = out.get("stats", {})
        if first_of_mode:  # no previous event to measure change from
            stats = {path: values.copy() for path, values in stats.items()}
            for values in stats.values():
                values[STAT_NAMES.index("cos_to_prev")] = np.nan
        # Selecting and arranging a few small arrays is cheaper in numpy than as graph ops.
        return ProbeResult(
            probabilities=out["probabilities"],
            image_size=tuple(samples.images.shape[1:3]),
            predicted=out["predicted"],
            target=out["target"],
            classes=out["classes"],
            class_gradcam=out["gradcam"],
            class_gradcam_pp=out["gradcam_pp"],
            masked_probability=out.get("masked_probability"),
            activations={path: np.moveaxis(self._logged_channels(path, out["activations"][path]), -1, 1)
                         for path in self.spec.activation_channels},
            filters={path: self._filter_images(path, rows[path].numpy(), channels)
                     for path, channels in self.spec.filter_channels.items()},
            stats=stats,
            masks=out.get("masks"),
            pixel_share=out.get("pixel_share"),
            target_pixels=out.get("target_pixels"),
            top_examples=out["top_examples"],
        )

    def reference_examples(self, inputs, batch: int = 32) -> dict:
        """{path: (images, positions, values, map size)} (as `ProbeResult.top_examples`) of the
        spec's top-example layers over reference `inputs` (as the model takes them): the peaks
        of each batch in one traced pass (no gradients), the best k over all of them in another."""
        samples = self._samples(inputs)
        if "reference" not in self._traced:
            watched = {path: self.convs[path] for path in self.spec.top_examples}

            def batch_peaks(batch_inputs):
                recorded = {}  # recorded as the event's forward pass records them (a head's own conv: its scores)
                with self.head.linear() or contextlib.nullcontext(), layer_utils.recording(watched, recorded):
                    self.model(batch_inputs, training=False)
                return {path: (*peaks(tf.cast(recorded[path], tf.float32)), tf.shape(recorded[path])[1:3])
                        for path in watched}

            self._traced["reference"] = (tf.function(batch_peaks, reduce_retracing=True),
                                         tf.function(lambda p, q: best_examples(p, q, self.spec.top_k),
                                                     reduce_retracing=True))
        batch_peaks, best = self._traced["reference"]
        found = [batch_peaks(self._tensors(samples.map(lambda array, s=start: array[s:s + batch])))
                 for start in range(0, len(samples), batch)]
        result = {}
        for path in self.spec.top_examples:
            peak, position = (tf.concat([one[path][i] for one in found], axis=0) for i in (0, 1))
            result[path] = (*(t.numpy() for t in best(peak, position)), found[0][path][2].numpy())
        return result

    def _forward(self, inputs):
        """(class scores, probabilities) of the explained output."""
        return self.head.scores_and_probabilities(self.head.select(self.model(inputs, training=False)), self._logits)

    def _classes(self, out, true):
        """(N, class_slots) classes to explain per probe, in graph: the target, the true class
        (-1: none), then the others from the most probable (a segmentation head's: the most
        predicted pixels), each once."""
        ranked = out["probabilities"] if "pixel_share" not in out else out["pixel_share"]
        order = tf.math.top_k(ranked, k=min(ranked.shape[1], self.spec.class_slots)).indices  # ties: lower first
        target = out["target"]
        candidates = tf.concat([target[:, None], tf.where(true < 0, target, true)[:, None], order], axis=1)
        count = candidates.shape[1]
        same = tf.equal(candidates[:, :, None], candidates[:, None, :])
        before = tf.linalg.band_part(tf.ones((count, count), tf.bool), 0, -1) & ~tf.eye(count, dtype=tf.bool)  # i < j
        repeated = tf.reduce_any(same & before[None], axis=1)  # equals an earlier candidate
        first = tf.argsort(tf.where(repeated, count, 0) + tf.range(count)[None], axis=1, stable=True)
        return tf.gather(candidates, first[:, :self.spec.class_slots], batch_dims=1)

    def _event(self, inputs, target, true, reference, previous):
        spec = self.spec
        recorded = {}
        samples = self._samples(inputs)
        with self.head.linear() or contextlib.nullcontext():
            with tf.GradientTape(persistent=spec.class_slots > 1) as tape, layer_utils.recording(self._watched, recorded):
                scores, probabilities = self._forward(inputs)
                out = self.head.explain(scores, probabilities, target, spec.background_class)
                region = out.pop("region", None)
                out["classes"] = self._classes(out, true)
                slot_scores = [out.pop("score")] + [  # slot 0 is the target
                    self.head.explain(scores, probabilities, out["classes"][:, slot], spec.background_class)["score"]
                    for slot in range(1, spec.class_slots)]
            missing = set(self._watched) - set(recorded)
            if missing:
                raise ValueError(f"layers {sorted(missing)} are not used by the model's forward pass")
            acts = {p: tf.cast(a, tf.float32) for p, a in recorded.items()}
            layer_acts = acts[spec.gradcam_layer]
            grads = [tf.cast(tape.gradient(score, recorded[spec.gradcam_layer]), tf.float32) for score in slot_scores]
            del tape
            for method in cam.METHODS:  # (N, class_slots, h, w)
                out[method] = tf.stack([cam.class_activation_map(layer_acts, g, method) for g in grads], axis=1)
            if spec.faithfulness_fraction is not None:
                upsampled = cam.upsample(out["gradcam"][:, 0], tf.shape(samples.images)[1:3])
                masked = self._mask_top(samples.images, upsampled, spec.faithfulness_fraction)
                _, masked_probabilities = self._forward(samples.with_images(masked))
                out["masked_probability"] = self.head.target_probability(masked_probabilities, out["target"], region)
        out["filter_rows"] = {
            path: _flat_filters(layer) for path, layer in self.convs.items()
            if spec.stats or path in spec.filter_channels
        }
        if spec.stats:
            out["stats"] = {path: _stats(out["filter_rows"][path], reference[path], previous[path], acts[path])
                            for path in self.convs}
        out["activations"] = {path: acts[path] for path in spec.activation_channels}
        out["top_examples"] = {path: (*best_examples(*peaks(acts[path]), spec.top_k), tf.shape(acts[path])[1:3])
                               for path in (spec.top_examples if spec.examples_from_probes else ())}
        for path, size in spec.activation_sizes.items():  # the logged channels, area-downsampled
            channels = tf.gather(acts[path], spec.activation_channels[path], axis=-1)
            out["activations"][path] = tf.image.resize(channels, size, method="area")
        return out

    def deletion_insertion(self, inputs, maps, target, random_ranks, steps: int) -> dict:
        """Deletion and insertion curves (Petsiuk et al., RISE): (N, steps + 1) probabilities of
        the target class as the pixels are blurred ("deletion", from the image) or put back
        ("insertion", from the blurred image) in the order of `maps` (N, h, w), most salient
        first (ties by pixel index), and in the order of `random_ranks` (N, H*W: each pixel's
        rank) for "deletion_random" and "insertion_random". A segmentation head's probability
        is the mean over the pixels predicted as the target in the image."""
        inputs = self._tensors(inputs)
        key = ("trust", *(tuple(t.shape) for t in tf.nest.flatten(inputs)), tuple(np.shape(maps)), steps)
        if key not in self._traced:
            def curves(inputs, maps, target, random_ranks):
                return self._curves(inputs, maps, target, random_ranks, steps)

            self._traced[key] = tf.function(curves).get_concrete_function(
                inputs, tf.TensorSpec(np.shape(maps), tf.float32), tf.TensorSpec((len(maps),), tf.int32),
                tf.TensorSpec(np.shape(random_ranks), tf.int32))
        curves = self._traced[key](inputs, tf.constant(maps, tf.float32), tf.constant(target, tf.int32),
                                   tf.constant(random_ranks, tf.int32))
        return {name: curve.numpy() for name, curve in curves.items()}

    def _curves(self, inputs, maps, target, random_ranks, steps):
        samples = self._samples(inputs)
        images = samples.images
        n, height, width = images.shape[0], images.shape[1], images.shape[2]
        blurred = _blur(images)
        with self.head.linear() or contextlib.nullcontext():
            region = None  # a segmentation head's: the pixels predicted as the target in the image
            if self.head.kind == heads.SEGMENTATION:
                region = self.head.explain(*self._forward(inputs), target, self.spec.background_class)["region"]

            def probability(batch_images, copies):
                """The target's probability on `copies` stacked variants of the probes."""
                def tile(t):
                    return None if t is None else tf.tile(t, [copies] + [1] * (len(t.shape) - 1))

                _, probabilities = self._forward(self._samples(samples.map(tile)).with_images(batch_images))
                return tf.reshape(self.head.target_probability(probabilities, tile(target), tile(region)), (copies, n))

            flat = tf.reshape(cam.upsample(maps, (height, width)), (n, -1))
            ranks = tf.argsort(tf.argsort(-flat, axis=1, stable=True), axis=1, stable=True)
            ranks = tf.reshape(tf.stack([ranks, random_ranks]), (2, n, height, width, 1))
            pixels = height * width

            def step(i):
                removed = ranks < tf.cast(tf.round(tf.cast(i * pixels, tf.float32) / steps), tf.int32)
                deleted = tf.where(removed, blurred, images)  # (2, N, H, W, C): map's order, random order
                inserted = tf.where(removed, images, blurred)
                return probability(tf.reshape(tf.concat([deleted, inserted], 0), (4 * n, *images.shape[1:])), 4)

            middle = tf.map_fn(step, tf.range(1, steps), fn_output_signature=tf.TensorSpec((4, n), tf.float32),
                               parallel_iterations=1)  # (steps - 1, 4, N)
            ends = probability(tf.concat([images, blurred], 0), 2)  # (2, N): the image, all blurred
        original, gone = ends[0][None], ends[1][None]
        curves = tf.transpose(middle, (1, 2, 0))  # (4, N, steps - 1)
        deletion = tf.concat([tf.broadcast_to(original[..., None], (2, n, 1)), curves[:2],
                              tf.broadcast_to(gone[..., None], (2, n, 1))], axis=2)
        insertion = tf.concat([tf.broadcast_to(gone[..., None], (2, n, 1)), curves[2:],
                               tf.broadcast_to(original[..., None], (2, n, 1))], axis=2)
        return {"deletion": deletion[0], "deletion_random": deletion[1],
                "insertion": insertion[0], "insertion_random": insertion[1]}

    def _logged_channels(self, path, activations):
        """(N, h, w, logged channels) of a layer; downsampled layers have them selected in graph."""
        if path in self.spec.activation_sizes:
            return activations
        return activations[..., self.spec.activation_channels[path]]

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
        """(n, kh, kw, c) from filter rows: colour tiles for the RGB layer, else the mean over
        input channels."""
        kernels = rows[channels].reshape(len(channels), *self._kernel_shapes[path])
        if path != self.spec.rgb_filter_layer:
            kernels = kernels.mean(axis=-1, keepdims=True)
        return kernels


_GRADCAM_PROBES = weakref.WeakKeyDictionary()  # model -> {(layer path, head, output): Probe}


def _cam(model, images, layer, class_index, method, head, output, image_input):
    checks.check_backend()
    samples = model_inputs.samples(images, image_input, "images")
    checks.build_sequential(model, samples)
    checks.check_model(model)
    samples = model_inputs.for_model(samples, model, "images")
    convs = layer_utils.conv_layers(model)
    explained = heads.find_head(model, head, output, guess=True)
    path = layer_utils.resolve(model, convs, layer, "layer") if layer is not None else explained.gradcam_layer(convs)
    probes = _GRADCAM_PROBES.setdefault(model, {})
    key = (path, head, output, samples.image_key)
    if key not in probes:
        spec = ProbeSpec(gradcam_layer=path, image_input=samples.image_key)
        probes[key] = Probe(model, spec, explained)
    probe = probes[key]
    count = len(samples)
    target = np.full(count, -1) if class_index is None else checks.class_indices(
        class_index, count, "class_index", f"None, an int or one int per image ({count} ints)",
        classes=probe.head.classes)
    maps = getattr(probe(samples.inputs, target), method)
    return cam.upsample(maps, samples.images.shape[1:3]).numpy()


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
      RuntimeError: Keras runs on another backend than TensorFlow.
    """
    return _cam(model, images, layer, class_index, "gradcam", head, output, image_input)


def gradcam_plus_plus(model, images, layer: str | None = None, class_index=None, *, head: str | None = None,
                      output=None, image_input=None) -> np.ndarray:
    """Grad-CAM++ maps; same arguments, result and errors as `gradcam`."""
    return _cam(model, images, layer, class_index, "gradcam_pp", head, output, image_input)
