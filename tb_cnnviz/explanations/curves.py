"""Deletion and insertion curves (Petsiuk, Das and Saenko, "RISE: Randomized Input Sampling for
Explanation of Black-box Models", BMVC 2018): the target class's probability as the pixels a map
ranks highest are blurred ("deletion", from the image) or put back into the blurred image
("insertion"). A faithful map's deletion curve falls fast and its insertion curve rises fast;
the same curves in a random order are the chance level. Blurring rather than blacking out keeps
the images within what the model has seen (ROAD, Rong et al., ICML 2022, explains why).
"""

import math

import numpy as np
from keras import ops

from tb_cnnviz import backend
from tb_cnnviz.anatomy.model_inputs import Samples
from tb_cnnviz.explanations.cam import ClassExplainer, upsample
from tb_cnnviz.storage.metadata import SEGMENTATION

BLUR_FACTOR = 8  # blurred copy: area-downsampled by this, then upsampled back


def blur(images):
    """A heavy blur (area-downsample by BLUR_FACTOR, upsample back): what removed pixels are
    replaced with. Far cheaper on CPU than a wide stride-1 pooling window."""
    height, width = images.shape[1:3]
    seam = backend.current()
    small = seam.resize(images, (max(1, height // BLUR_FACTOR), max(1, width // BLUR_FACTOR)), "area")
    return seam.resize(small, (height, width), "bilinear")


def top_pixels(maps, fraction: float):
    """(N, h, w) bool: the top `fraction` of each map's pixels (at least one), in the order the
    curves rank them (most salient first, ties to the lower pixel index). From the k-th largest
    value, without ranking every pixel: what is above it, then the first pixels equal to it."""
    n, height, width = maps.shape
    k = max(1, math.ceil(fraction * height * width))
    flat = ops.reshape(maps, (n, height * width))
    threshold = backend.current().top_k(flat, k)[0][:, -1:]
    above, level = flat > threshold, flat == threshold
    room = k - ops.sum(ops.cast(above, "int32"), axis=1, keepdims=True)
    taken = ops.logical_or(above, ops.logical_and(level, ops.cumsum(ops.cast(level, "int32"), axis=1) <= room))
    return ops.reshape(taken, (n, height, width))


def pixel_ranks(maps: np.ndarray) -> np.ndarray:
    """(..., P) int32: each pixel's place in its map's order, most salient first, ties to the
    lower pixel index. In NumPy, on the host: XLA's CPU sort of every pixel, twice in graph, cost
    a JAX event more than these maps' round trip (figures in bench/README.md, session 15)."""
    order = np.argsort(-maps, axis=-1, kind="stable")
    ranks = np.empty(order.shape, np.int32)
    np.put_along_axis(ranks, order, np.arange(maps.shape[-1], dtype=np.int32), axis=-1)
    return ranks


def tiled(value, copies):
    """`value` repeated `copies` times along its first axis, copy-major (None stays None)."""
    return None if value is None else ops.tile(value, [copies] + [1] * (len(value.shape) - 1))


def repeated(samples: Samples, copies: int) -> Samples:
    """The samples with every input `tiled`: what stacked variants of their images go with."""
    return Samples(samples.map(lambda value: tiled(value, copies)), samples.image_key)


def variant_probability(explainer: ClassExplainer, samples: Samples, variants, target, region):
    """In graph and inside `explainer.linear()`, (copies * N,) the target's probability on
    stacked variants (copies * N, H, W, C) of the samples' images, the other inputs repeated
    alike."""
    copies = variants.shape[0] // samples.images.shape[0]
    _, probabilities = explainer.forward(repeated(samples, copies).with_images(variants))
    return explainer.head.target_probability(probabilities, tiled(target, copies), tiled(region, copies))


class DeletionInsertion:
    """Computes the curves of an explainer's model (`cam.ClassExplainer`, for its head and the
    linear run of its activation) for probes given as the model takes them, the images at
    `image_input` (`model_inputs.Samples`); compiled once per input shapes."""

    def __init__(self, explainer: ClassExplainer, image_input=None):
        self._explainer, self._image_input = explainer, image_input
        seam = backend.current()
        model = explainer.model
        self._prepare, self._points = seam.compile(self._prepare_graph, model), seam.compile(self._points_graph, model)

    def __call__(self, inputs, maps: list, target, random_ranks, steps: int) -> list:
        """[{"deletion", "insertion", "deletion_random", "insertion_random": (N, steps + 1)}] of
        each of `maps` (a list of (N, h, w), one per method, any resolution) explaining `target`
        (N,), the random order `random_ranks` (N, H*W: each pixel's rank; its curves are the
        same for every map), with `steps` equal steps from none to all of the pixels."""
        images = Samples(inputs, self._image_input).images
        n, height, width = images.shape[:3]
        upsampled, region, ends = self._prepare(inputs, list(maps), target)
        orders = len(maps) + 1
        ranked = [] if upsampled is None else [pixel_ranks(ops.convert_to_numpy(upsampled))]
        ranks = np.concatenate([*ranked, np.asarray(random_ranks, np.int32)[None]])
        ranks = ops.convert_to_tensor(ranks.reshape(orders, n, height, width, 1))
        # steps per pass, in equal passes: at most the backend's pass_pixels (8 probes of 64 x 64, the
        # two default methods' maps: on TensorFlow the 9 steps in one pass; on JAX and PyTorch five)
        per_pass = max(1, backend.current().pass_pixels // (2 * orders * n * height * width))
        middle = [ops.convert_to_numpy(self._points(inputs, ranks, region, target, indices, steps))
                  for indices in np.array_split(np.arange(1, steps, dtype=np.int32), -(-(steps - 1) // per_pass))]
        return _assembled(np.concatenate(middle), ops.convert_to_numpy(ends), n)

    def _probability(self, inputs, batch_images, target, region, copies):
        """In graph, the target's probability (copies, N) on `copies` stacked variants of the probes."""
        found = variant_probability(self._explainer, Samples(inputs, self._image_input), batch_images, target, region)
        return ops.reshape(found, (copies, len(target)))

    def _prepare_graph(self, inputs, maps, target):
        """(the M maps at the images' size, (M, N, H * W), None if none; a segmentation head's
        region of the target, else None; the target's probability (2, N) on the image and on its
        blurred copy)."""
        explainer, images = self._explainer, Samples(inputs, self._image_input).images
        n, height, width = images.shape[0], images.shape[1], images.shape[2]
        upsampled = ops.stack([ops.reshape(upsample(method_maps, (height, width)), (n, -1))
                               for method_maps in maps]) if maps else None
        with explainer.linear():
            region = None
            if explainer.head.kind == SEGMENTATION:
                region = explainer.head.explain(*explainer.forward(inputs), target, explainer.background_class)["region"]
            ends = self._probability(inputs, ops.concatenate([images, blur(images)], 0), target, region, 2)
        return upsampled, region, ends

    def _points_graph(self, inputs, ranks, region, target, indices, steps):
        """(len(indices), 2 (M + 1), N): the target's probability after `indices` of `steps` steps,
        deleted in each order of `ranks` (M + 1), then inserted in each, in one forward pass."""
        images = Samples(inputs, self._image_input).images
        pixels = images.shape[1] * images.shape[2]
        cut = ops.cast(ops.round(ops.cast(indices * pixels, "float32") / steps), "int32")
        removed = ranks[None] < cut[:, None, None, None, None, None]  # (S, M + 1, N, H, W, 1)
        blurred = blur(images)
        deleted, inserted = ops.where(removed, blurred, images), ops.where(removed, images, blurred)
        count, variants = indices.shape[0], 2 * ranks.shape[0]
        batch = ops.reshape(ops.concatenate([deleted, inserted], axis=1),
                            (count * variants * images.shape[0], *images.shape[1:]))
        with self._explainer.linear():
            found = self._probability(inputs, batch, target, region, count * variants)
        return ops.reshape(found, (count, variants, images.shape[0]))


def _assembled(middle: np.ndarray, ends: np.ndarray, n: int) -> list:
    """Each map's four curves from their middle points (steps - 1, 2 (M + 1), N) and ends (2, N)."""
    orders = middle.shape[1] // 2
    original = np.broadcast_to(ends[0][None, :, None], (orders, n, 1))
    gone = np.broadcast_to(ends[1][None, :, None], (orders, n, 1))
    curves = np.transpose(middle, (1, 2, 0))  # (2 (M + 1), N, steps - 1)
    deletion = np.concatenate([original, curves[:orders], gone], axis=2)
    insertion = np.concatenate([gone, curves[orders:], original], axis=2)
    return [{"deletion": deletion[i], "deletion_random": deletion[-1],
             "insertion": insertion[i], "insertion_random": insertion[-1]} for i in range(orders - 1)]
