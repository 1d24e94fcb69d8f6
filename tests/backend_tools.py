"""The test's own gradients, with each Keras backend's own tools (tf.GradientTape, jax.grad,
torch.autograd): the independent computation that tb_cnnviz's gradients are checked against,
under whichever backend the suite runs on (KERAS_BACKEND)."""

import keras
import numpy as np


def gradient(function, x) -> tuple:
    """(value, d sum(value) / d x) as numpy arrays, `function` taking and returning tensors."""
    name = keras.backend.backend()
    x = np.asarray(x, np.float32)
    if name == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = function(x)
            total = tf.reduce_sum(value)
        return value.numpy(), tape.gradient(total, x).numpy()
    if name == "jax":
        import jax
        import jax.numpy as jnp

        value, pullback = jax.vjp(function, jnp.asarray(x))
        return np.asarray(value), np.asarray(pullback(jnp.ones_like(value))[0])
    if name == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        value = function(x)
        (found,) = torch.autograd.grad(value.sum(), x)
        return value.detach().cpu().numpy(), found.cpu().numpy()
    raise RuntimeError(f"no gradient for Keras' {name!r} backend")


def class_scores(scores, classes):
    """(N,) each row's score of its class in `classes` (N,), as tensors of the backend."""
    indices = keras.ops.convert_to_tensor(np.asarray(classes, np.int32)[:, None])
    return keras.ops.take_along_axis(scores, indices, axis=1)[:, 0]


def to_numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


MIXED_POLICY = {"jax": "mixed_bfloat16"}  # what each backend trains in mixed precision with: float16 elsewhere


def mixed_policy() -> str:
    return MIXED_POLICY.get(keras.backend.backend(), "mixed_float16")


@keras.saving.register_keras_serializable(package="tests")  # sanity_check clones the model
def through_numpy(x):
    """tanh(x) computed in NumPy inside a layer, each backend's way (tf.numpy_function,
    jax.pure_callback, a detached PyTorch tensor): a forward pass works, no gradient passes."""
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        found = tf.numpy_function(np.tanh, [x], tf.float32)
        found.set_shape(x.shape)
        return found
    if name == "jax":
        import jax

        return jax.pure_callback(lambda a: np.tanh(a).astype(np.float32), jax.ShapeDtypeStruct(x.shape, x.dtype), x)
    if name == "torch":
        import torch

        return torch.from_numpy(np.tanh(x.detach().cpu().numpy()))
    raise RuntimeError(f"no NumPy layer for Keras' {name!r} backend")
