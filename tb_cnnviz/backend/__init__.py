"""The backend seam: the one place that knows which framework Keras runs on. `current()` gives
the implementation of `base.Backend` for `keras.backend.backend()`: TensorFlow's, JAX's or
PyTorch's; any other is refused with a message that names them. `files` is the logdir's file
system, the same on every backend."""

import functools
import importlib

import keras

from tb_cnnviz.backend.base import Backend, NotDifferentiable

__all__ = ["Backend", "NotDifferentiable", "SUPPORTED", "current", "cannot_differentiate"]

SUPPORTED = {"tensorflow": "TensorFlowBackend", "jax": "JaxBackend", "torch": "TorchBackend"}


@functools.lru_cache(maxsize=None)
def _backend(name: str) -> Backend:
    if name not in SUPPORTED:
        raise RuntimeError(
            f"tb_cnnviz works on Keras' TensorFlow, JAX and PyTorch backends; this process runs Keras on "
            f"{name!r}, which cannot train or take gradients. Set the environment variable KERAS_BACKEND to "
            f"tensorflow, jax or torch before Keras is imported (or \"backend\" in ~/.keras/keras.json)")
    return getattr(importlib.import_module(f"tb_cnnviz.backend.{name}"), SUPPORTED[name])()


def current() -> Backend:
    """The backend Keras runs on. Raises RuntimeError for one tb_cnnviz does not support."""
    return _backend(keras.backend.backend())


def cannot_differentiate(error: NotDifferentiable, what: str) -> NotDifferentiable:
    """`error` told the user: `what` could not be differentiated (a phrase that names the layers),
    on which backend, and what to do."""
    name = keras.backend.backend()
    return NotDifferentiable(
        f"tb_cnnviz cannot take the gradient of {what} on Keras' {name} backend: {str(error).rstrip('.')}. Every layer on "
        f"that path must be made of operations {name} can differentiate (keras.ops or {name}'s own; no "
        f"NumPy inside a layer)")
