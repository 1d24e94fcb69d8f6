"""Writing cnnviz summaries with tf.summary, each carrying the metadata TensorBoard needs.

An event's summaries are collected as {tag: (kind, value)} and written by one tf.function
call, so writing costs one graph execution instead of a Python round trip per summary.
"""

import functools

import numpy as np
import tensorflow as tf

from tb_cnnviz import codec, metadata


@functools.lru_cache(maxsize=None)
def _metadata(kind):
    return metadata.create_summary_metadata(kind)


def maps_value(maps, **fields):
    """(header, blob sequence [header JSON, PNG per item]) of float maps (B, n, h, w, c); the
    header as a dict too, for the step index the predictions summary carries."""
    mosaics, lo, hi, nonfinite = codec.quantise(maps)
    header = {"version": metadata.FORMAT_VERSION, "shape": list(np.shape(maps)), "lo": lo.tolist(),
              "hi": hi.tolist(), "nonfinite": nonfinite.tolist(), **fields}
    return header, np.asarray([codec.encode_header(**header), *map(codec.array_to_png, mosaics)], dtype=object)


def header_value(**fields):
    """Blob sequence holding only a JSON header (e.g. predictions, run information)."""
    return np.asarray([codec.encode_header(**fields)], dtype=object)


def tensor_value(values):
    return np.asarray(values, np.float32)


class EventWriter:
    """Writes the summaries of an event to a file writer, in one tf.function per tag layout."""

    def __init__(self, writer):
        self.writer = writer
        self._functions = {}  # ((tag, kind), ...) -> tf.function

    def write(self, items, step):
        """items: {tag: (kind, value)}; value from maps_value, header_value or tensor_value."""
        layout = tuple((tag, kind) for tag, (kind, _) in items.items())
        if layout not in self._functions:
            self._functions[layout] = tf.function(functools.partial(self._write_all, layout))
        values = [tf.constant(value) for _, value in items.values()]
        # A NumPy step, not a Python int: TF caches the tensor of every Python scalar it converts,
        # for the life of the process (~0.7 KB per logged step; bench/long_run.py).
        self._functions[layout](values, tf.constant(np.int64(step)))
        self.writer.flush()

    def _write_all(self, layout, values, step):
        with self.writer.as_default():
            for (tag, kind), value in zip(layout, values):
                tf.summary.write(tag, value, step=step, metadata=_metadata(kind))
