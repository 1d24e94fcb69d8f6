"""Writing cnnviz summaries through a tf.summary writer, each carrying the metadata TensorBoard
needs. An event's summaries are collected as {tag: (kind, value)} and written as one record."""

import functools

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from tb_cnnviz import codec, metadata


@functools.lru_cache(maxsize=None)
def _metadata(kind):
    return metadata.create_summary_metadata(kind)


def maps_value(maps, **fields):
    """Blob sequence [header, PNG per item] of float maps (B, n, h, w, c)."""
    mosaics, lo, hi, nonfinite = codec.quantise(maps)
    header = codec.encode_header(shape=list(np.shape(maps)), lo=lo.tolist(), hi=hi.tolist(),
                                 nonfinite=nonfinite.tolist(), **fields)
    return np.asarray([header, *codec.arrays_to_pngs(mosaics)], dtype=object)


def header_value(**fields):
    """Blob sequence holding only a JSON header (e.g. predictions, run information)."""
    return np.asarray([codec.encode_header(**fields)], dtype=object)


def tensor_value(values):
    return np.asarray(values, np.float32)


def _tensor_proto(value):
    """TensorProto of a blob sequence (object array of bytes) or a float32 array, built
    directly (tensor_util.make_tensor_proto inspects every element: ~2 ms per event)."""
    shape = tensor_shape_pb2.TensorShapeProto(dim=[{"size": size} for size in value.shape])
    if value.dtype == object:
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape, string_val=list(value))
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape,
                                  tensor_content=np.ascontiguousarray(value, "<f4").tobytes())


class EventWriter:
    """Writes the summaries of an event to a file writer as one record.

    One Summary proto holding every value, written by one op: cheaper than an op per summary,
    and an event is on disk whole or not at all (a record cut short by a crash is skipped by
    every reader).
    """

    def __init__(self, writer):
        self.writer = writer

    def write(self, items, step):
        """items: {tag: (kind, value)}; value from maps_value, header_value or tensor_value."""
        proto = summary_pb2.Summary()
        for tag, (kind, value) in items.items():
            proto.value.add(tag=tag, metadata=_metadata(kind), tensor=_tensor_proto(value))
        with self.writer.as_default():
            # A NumPy step, not a Python int: TF caches the tensor of every Python scalar it
            # converts, for the life of the process (~0.7 KB per logged step; bench/long_run.py).
            tf.summary.experimental.write_raw_pb(proto.SerializeToString(), step=tf.constant(np.int64(step)))
        self.writer.flush()
