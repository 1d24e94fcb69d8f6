"""The backend seam: the one place that knows which framework Keras runs on. `current()` gives
the implementation of `base.Backend` for `keras.backend.backend()`; TensorFlow's is the only one
so far, and every other backend is refused with a message that says what to do."""

import functools

import keras

from tb_cnnviz.backend.base import Backend, RecordFile

__all__ = ["Backend", "RecordFile", "current"]


@functools.lru_cache(maxsize=None)
def _backend(name: str) -> Backend:
    if name == "tensorflow":
        from tb_cnnviz.backend.tensorflow import TensorFlowBackend

        return TensorFlowBackend()
    raise RuntimeError(
        f"tb_cnnviz needs Keras' TensorFlow backend; this process runs Keras on {name!r}. Set the environment "
        f"variable KERAS_BACKEND=tensorflow before Keras is imported (or \"backend\": \"tensorflow\" in "
        f"~/.keras/keras.json)")


def current() -> Backend:
    """The backend Keras runs on. Raises RuntimeError for one tb_cnnviz does not support."""
    return _backend(keras.backend.backend())
