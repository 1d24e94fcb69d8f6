"""The interface every backend implements: what computing an event needs from the framework
Keras runs on, and nothing else (the rest of tb_cnnviz uses NumPy and `keras.ops`; files are
`backend.files`, the same on every backend)."""

import abc
from collections.abc import Callable

from keras import ops


class Backend(abc.ABC):
    """One Keras backend's implementation of the seam."""

    name: str  # as keras.backend.backend() names it

    @abc.abstractmethod
    def compile(self, function: Callable, model) -> Callable:
        """`function` compiled for the backend (traced once per input shapes and Python values):
        it takes and returns nested structures of tensors, numpy arrays and Python values, and
        reads `model`'s variables as they are when it runs, not when it was traced. Forward
        passes inside it build no gradient tape beyond what `layer_gradients` and
        `input_gradient` ask for."""

    @abc.abstractmethod
    def layer_gradients(self, forward: Callable) -> tuple:
        """(outputs, gradients): runs `forward(watch)`, which passes one intermediate tensor (a
        layer's output, as `anatomy.conv_layers.recording` records it) through `watch`, goes on
        with what `watch` returns (every consumer of the layer's output takes it), and returns
        (outputs, scores): a list of scalar tensors. `gradients` are d score / d watched tensor,
        one per score. `forward` may be run more than once (JAX traces it for the shape)."""

    @abc.abstractmethod
    def input_gradient(self, function: Callable, x) -> tuple:
        """(value, d value / d x) of a scalar `function(x)`."""

    @abc.abstractmethod
    def resize(self, images, size, method: str):
        """(N, H, W, C) images resized to `size` (h, w): "bilinear" (half-pixel centres, no
        antialiasing) or "area" (the mean of the pixels each output pixel covers), as
        tf.image.resize does (`backend.resizing` for the others)."""

    def top_k(self, values, k: int) -> tuple:
        """(values, indices) of the k largest along the last axis, best first, the lower index
        first among equals (what TensorFlow's and JAX's top_k do; PyTorch's does not promise it)."""
        return ops.top_k(values, k=k)

    @abc.abstractmethod
    def is_chief(self, model) -> bool:
        """Whether this process writes: under distributed training, only one does."""
