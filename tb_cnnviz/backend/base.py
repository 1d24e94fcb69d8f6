"""The interface every backend implements: what computing and writing an event needs from the
framework Keras runs on, and nothing else (the rest of tb_cnnviz uses NumPy and `keras.ops`)."""

import abc
from collections.abc import Callable


class RecordFile(abc.ABC):
    """An event file being written: one TFRecord per `write`, on disk once `flush` returns."""

    @abc.abstractmethod
    def write(self, record: bytes) -> None: ...

    @abc.abstractmethod
    def flush(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class Backend(abc.ABC):
    """One Keras backend's implementation of the seam."""

    name: str  # as keras.backend.backend() names it

    @abc.abstractmethod
    def compile(self, function: Callable) -> Callable:
        """`function` compiled for the backend (traced once per input shapes): it takes and
        returns nested structures of tensors, numpy arrays and Python values."""

    @abc.abstractmethod
    def layer_gradients(self, forward: Callable) -> tuple:
        """(outputs, gradients): runs `forward(watch)`, which passes one intermediate tensor (a
        layer's output, as `anatomy.conv_layers.recording` records it) through `watch` and goes
        on with what `watch` returns, and returns (outputs, scores): a list of scalar tensors.
        `gradients` are d score / d watched tensor, one per score."""

    @abc.abstractmethod
    def input_gradient(self, function: Callable, x) -> tuple:
        """(value, d value / d x) of a scalar `function(x)`."""

    @abc.abstractmethod
    def resize(self, images, size, method: str):
        """(N, H, W, C) images resized to `size` (h, w): "bilinear" (half-pixel centres, no
        antialiasing) or "area" (the mean of the pixels each output pixel covers)."""

    @abc.abstractmethod
    def is_chief(self, model) -> bool:
        """Whether this process writes: under distributed training, only one does."""

    @abc.abstractmethod
    def record_file(self, path: str) -> RecordFile:
        """A new event file at `path` (any path the backend's file system opens)."""

    @abc.abstractmethod
    def makedirs(self, path: str) -> None: ...

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def read_file(self, path: str) -> bytes:
        """The file's bytes; FileNotFoundError if there is none."""

    @abc.abstractmethod
    def write_file(self, path: str, data: bytes) -> None: ...
