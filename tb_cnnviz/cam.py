"""Class activation maps: one base computation, methods differ only in channel weights.

As in pytorch-grad-cam's base_cam.py: map = relu(sum_k w_k * A_k), where A are the target
layer's activations and the weights w come from the gradients of the class score with respect
to A. Maps are computed and stored at the layer's resolution; `upsample` brings them to the
input's (bilinear, half-pixel centres: what `tb_cnnviz.format.upsample` repeats in NumPy).
"""

import tensorflow as tf


def gradcam_weights(activations, grads):
    """Grad-CAM (Selvaraju et al.): global-average-pooled gradients."""
    del activations
    return tf.reduce_mean(grads, axis=(1, 2))


def gradcam_pp_weights(activations, grads):
    """Grad-CAM++ (Chattopadhyay et al.), with the exponential-score simplification."""
    grads_2 = tf.square(grads)
    grads_3 = grads_2 * grads
    activation_sums = tf.reduce_sum(activations, axis=(1, 2), keepdims=True)
    alpha = grads_2 / (2.0 * grads_2 + activation_sums * grads_3 + 1e-6)
    alpha = tf.where(grads != 0.0, alpha, 0.0)
    return tf.reduce_sum(tf.nn.relu(grads) * alpha, axis=(1, 2))


METHODS = {"gradcam": gradcam_weights, "gradcam_pp": gradcam_pp_weights}


def class_activation_map(activations, grads, method):
    """Non-negative, unnormalised maps (N, h, w) from the layer's (N, h, w, K) activations."""
    weights = METHODS[method](activations, grads)
    return tf.nn.relu(tf.einsum("nhwk,nk->nhw", activations, weights))


def upsample(maps, size):
    """(N, h, w) maps -> (N, H, W) at `size`, bilinear."""
    return tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]
