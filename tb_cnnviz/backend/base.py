"""The interface every backend implements: what computing an event needs from the framework
Keras runs on, and nothing else (the rest of tb_cnnviz uses NumPy and `keras.ops`; files are
`backend.files`, the same on every backend)."""

import abc
import contextlib
import re
from collections.abc import Callable

from keras import ops


class NotDifferentiable(ValueError):
    """Raised by `layer_gradients` and `input_gradient` when the backend cannot take the gradient
    asked for; the message says why, in the framework's words or `UNCONNECTED`'s."""

    @classmethod
    def because(cls, error: Exception) -> "NotDifferentiable":
        """The framework's `error` on one line (Keras' layer-call notes and terminal colours out)."""
        said = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split("Arguments received by")[0]
        said = " ".join(said.replace("Exception encountered when calling", "in").split())
        return cls(f"{type(error).__name__}: {said[:600]}")


@contextlib.contextmanager
def differentiating(*errors):
    """Turns the `errors` (default: any Exception) raised inside into NotDifferentiable."""
    try:
        yield
    except NotDifferentiable:
        raise
    except errors or Exception as error:
        raise NotDifferentiable.because(error) from error


UNCONNECTED = ("no gradient reaches it: an operation after it has none (a value taken out of the "
               "framework, e.g. into NumPy, or cast to integers)")


class Backend(abc.ABC):
    """One Keras backend's implementation of the seam."""

    name: str  # as keras.backend.backend() names it
    # At most the input pixels of one forward-only pass over many images (the curves' points),
    # which bounds its memory: oneDNN convolutions (TensorFlow) run fastest in one large pass,
    # XLA's and PyTorch's on CPU in passes whose activations stay a few MB (bench/README.md).
    pass_pixels: int = 2**21

    @abc.abstractmethod
    def compile(self, function: Callable, model) -> Callable:
        """`function` compiled for the backend (traced once per input shapes and Python values):
        it takes nested structures of tensors, numpy arrays and Python values, returns nested
        structures of tensors, and
        reads `model`'s variables as they are when it runs, not when it was traced. Forward
        passes inside it build no gradient tape beyond what `layer_gradients` and
        `input_gradient` ask for."""

    @abc.abstractmethod
    def layer_gradients(self, forward: Callable) -> tuple:
        """(outputs, gradients): runs `forward(watch)`, which passes one intermediate tensor (a
        layer's output, as `anatomy.conv_layers.recording` records it) through `watch`, goes on
        with what `watch` returns (every consumer of the layer's output takes it), and returns
        (outputs, scores): a list of scalar tensors. `gradients` are d score / d watched tensor,
        one per score. `forward` may be run more than once (JAX traces it for the shape).
        Raises NotDifferentiable when a score's gradient cannot be taken or does not reach the
        watched tensor (JAX cannot tell the latter: it differentiates a cut path as zero)."""

    @abc.abstractmethod
    def input_gradient(self, function: Callable, x) -> tuple:
        """(value, d value / d x) of a scalar `function(x)`; NotDifferentiable as `layer_gradients`."""

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
