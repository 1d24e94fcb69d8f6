"""Top-activating examples (Zeiler and Fergus, ECCV 2014; Yosinski et al.'s deep-visualization
toolbox, 2015): for each filter, the images whose map of it peaks highest, and where it peaks.
In graph, so that an event hands only k examples per filter back to the host."""

import numpy as np
from keras import ops

from tb_cnnviz import backend


def peaks(activations):
    """(N, C) peak of each image's map of each channel, and its row-major position (the first
    on ties): what a filter's top examples rank by."""
    flat = ops.reshape(activations, (ops.shape(activations)[0], -1, activations.shape[-1]))
    peak = ops.max(flat, axis=1)
    pixels = ops.shape(flat)[1]
    first = ops.min(ops.where(flat == peak[:, None], ops.arange(pixels)[None, :, None], pixels), axis=1)
    return peak, ops.minimum(first, pixels - 1)  # a NaN peak matches no position


def best_examples(peak, position, k: int):
    """(images, positions, values), each (k, C): the k images with the highest peaks per
    channel, best first; ties go to the lower image index and NaN peaks rank last. Positions
    are row-major in the layer's map."""
    rank = ops.where(ops.isnan(peak), -np.inf, peak)
    order = backend.current().top_k(ops.transpose(rank), k)[1]  # (C, k) image indices

    def take(per_image):
        return ops.transpose(ops.take_along_axis(ops.transpose(per_image), order, axis=1))

    return ops.transpose(order), take(position), take(peak)
