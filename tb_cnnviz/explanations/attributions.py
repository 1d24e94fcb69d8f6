"""Explanations from many passes over variants of the images: pixel attributions from the
gradient of the class score with respect to the input (SmoothGrad, Integrated Gradients) and
Score-CAM, whose channel weights are the class's probability on the image masked by each
channel. `explain` calls them; each is computed in passes of stacked variants, compiled once per
input shapes."""

import numpy as np
from keras import ops

from tb_cnnviz import backend
from tb_cnnviz.anatomy import conv_layers
from tb_cnnviz.anatomy.heads import Head
from tb_cnnviz.anatomy.model_inputs import Samples
from tb_cnnviz.explanations.cam import ClassExplainer, upsample
from tb_cnnviz.explanations.curves import blur, repeated, tiled, variant_probability


class Variants:
    """A model explaining its `head`, run over stacked variants of the images (`copies` of
    them per image, copy-major: (copies * N, H, W, C)), the other inputs repeated alike."""

    def __init__(self, model, head: Head, image_input=None, background_class: int = 0, layer: str | None = None):
        self._explainer = ClassExplainer(model, head, layer, {}, background_class=background_class)
        self._image_input, self._layer = image_input, layer
        seam = backend.current()
        self._targets = seam.compile(self._targets_graph, model)
        self.probability = seam.compile(self._probability_graph, model)
        self.gradient = seam.compile(self._gradient_graph, model)
        self.activations = seam.compile(self._activations_graph, model)

    def targets(self, inputs, target) -> tuple:
        """(the class each image is explained for: `target`, or its predicted class where -1;
        a segmentation head's region of it, else None), as tensors."""
        self._explainer.judge_logits(inputs)
        return self._targets(inputs, np.asarray(target, np.int32))

    def _targets_graph(self, inputs, target):
        explainer = self._explainer
        with explainer.linear():
            out = explainer.head.explain(*explainer.forward(inputs), target, explainer.background_class)
        return out["target"], out.get("region")

    def _probability_graph(self, inputs, variants, target, region):
        """(copies * N,) the target's probability on each variant (as the tab shows it)."""
        with self._explainer.linear():
            return variant_probability(self._explainer, Samples(inputs, self._image_input), variants, target, region)

    def _gradient_graph(self, inputs, variants, target):
        """(copies * N, H, W, C): d score / d variant of each variant's target score."""
        explainer = self._explainer
        samples = Samples(inputs, self._image_input)
        copies = variants.shape[0] // samples.images.shape[0]
        stacked = repeated(samples, copies)

        def score(images):
            with explainer.linear():
                scores, probabilities = explainer.forward(stacked.with_images(images))
            return explainer.head.explain(scores, probabilities, tiled(target, copies), explainer.background_class)["score"]

        return backend.current().input_gradient(score, variants)[1]

    def _activations_graph(self, inputs):
        """(N, h, w, K) float32: the `layer`'s output."""
        recorded = {}
        with conv_layers.recording({self._layer: conv_layers.conv_layers(self._explainer.model)[self._layer]},
                                   recorded):
            self._explainer.model(inputs, training=False)
        return ops.cast(recorded[self._layer], "float32")


def _in_passes(function, variants: np.ndarray, count: int, progress=None) -> np.ndarray:
    """function((copies * N, ...)) over `variants` (V, N, ...), in passes of at most the backend's
    pass_pixels (at least one variant a pass): (V, N, ...) of the results. progress: (passes) ->
    a bar updated after each pass (`progress.progress_bars`), or None."""
    per_pass = max(1, backend.current().pass_pixels // int(np.prod(variants.shape[1:4])))
    parts = np.array_split(variants, -(-len(variants) // per_pass))
    bar, found = progress(len(parts)) if progress else None, []
    for done, part in enumerate(parts, 1):
        found.append(ops.convert_to_numpy(function(np.reshape(part, (-1, *variants.shape[2:])))))
        if bar:
            bar.update(done)
    return np.concatenate(found).reshape(len(variants), count, *found[0].shape[1:])


def _shown(attributions: np.ndarray) -> np.ndarray:
    """(N, H, W) float32: the largest absolute attribution over the colour channels."""
    return np.abs(attributions).max(axis=-1).astype(np.float32)


def smoothgrad(variants: Variants, inputs, images: np.ndarray, target, samples: int, noise: float,
               progress=None) -> np.ndarray:
    """SmoothGrad (Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017): the
    gradient of the class score with respect to the input, averaged over `samples` copies of
    each image with Gaussian noise of standard deviation `noise` x (the image's max - min),
    drawn from NumPy's default_rng(0) as (samples, N, H, W, C); what is shown is the average's
    largest absolute value over the colour channels."""
    spread = noise * (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))
    draws = np.random.default_rng(0).normal(size=(samples, *images.shape)).astype(np.float32)
    noisy = images[None] + draws * spread[None, :, None, None, None].astype(np.float32)
    gradients = _in_passes(lambda batch: variants.gradient(inputs, batch, target), noisy, len(images), progress)
    return _shown(gradients.mean(axis=0))


def integrated_gradients(variants: Variants, inputs, images: np.ndarray, target, steps: int,
                         baseline: str, progress=None) -> np.ndarray:
    """Integrated Gradients (Sundararajan, Taly and Yan, "Axiomatic Attribution for Deep
    Networks", ICML 2017): (image - baseline) times the gradient of the class score averaged
    along the straight path from the baseline to the image, here over `steps` equal steps by
    the trapezoid rule; the attributions then sum to the score's change from the baseline (the
    paper's completeness). Baseline "black" (zeros) or "blur" (the faithfulness check's blurred
    image); shown as SmoothGrad's."""
    start = np.zeros_like(images) if baseline == "black" else ops.convert_to_numpy(blur(images)).astype(np.float32)
    fractions = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    path = start[None] + fractions[:, None, None, None, None] * (images - start)[None]
    gradients = _in_passes(lambda batch: variants.gradient(inputs, batch, target), path, len(images), progress)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] /= 2
    return _shown((images - start) * np.tensordot(weights, gradients, axes=1))


def scorecam(variants: Variants, inputs, images: np.ndarray, target, region, max_channels: int,
             progress=None) -> np.ndarray:
    """Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional
    Neural Networks", CVPR workshops 2020): each channel's map, upsampled to the input and
    scaled to [0, 1], masks the image (image x mask); the channel's weight is the target's
    probability on the masked image, and the map is relu(sum_k w_k A_k), at the layer's
    resolution (N, h, w) as the other class activation maps. Of more than `max_channels`
    channels, the `max_channels` of largest spatial variance per image (Faster Score-CAM's rule,
    Wang et al. 2020)."""
    activations = ops.convert_to_numpy(variants.activations(inputs))  # (N, h, w, K)
    count, channels = len(images), activations.shape[-1]
    kept = np.argsort(-activations.var(axis=(1, 2)), axis=1, kind="stable")[:, :min(channels, max_channels)]
    chosen = np.take_along_axis(activations, kept[:, None, None, :], axis=3)  # (N, h, w, kept)
    masks = ops.convert_to_numpy(upsample(np.moveaxis(chosen, 3, 1).reshape(-1, *chosen.shape[1:3]),
                                          images.shape[1:3])).reshape(count, kept.shape[1], *images.shape[1:3])
    low, high = masks.min(axis=(2, 3), keepdims=True), masks.max(axis=(2, 3), keepdims=True)
    masks = np.where(high > low, (masks - low) / np.where(high > low, high - low, 1.0), 0.0)
    masked = np.moveaxis(images[:, None] * masks[..., None], 1, 0).astype(np.float32)  # (kept, N, H, W, C)
    weights = _in_passes(lambda batch: variants.probability(inputs, batch, target, region), masked, count, progress)
    return np.maximum(np.einsum("nhwk,kn->nhw", chosen, weights), 0.0).astype(np.float32)
