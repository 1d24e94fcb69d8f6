"""Writing cnnviz summaries with tf.summary, each carrying the metadata TensorBoard needs."""

import functools

import numpy as np
import tensorflow as tf

from tb_cnnviz import codec, metadata


@functools.lru_cache(maxsize=None)
def _metadata(kind):
    return metadata.create_summary_metadata(kind)


def write_maps(kind, tag, encoded, step, **fields):
    """A blob sequence [header, PNG per item] from `probe.encode_maps` output."""
    header = codec.encode_header(
        shape=encoded["shape"].tolist(), lo=encoded["lo"].tolist(), hi=encoded["hi"].tolist(), **fields
    )
    blobs = [header, *encoded["png"]]
    tf.summary.write(tag, tf.constant(blobs, tf.string), step=step, metadata=_metadata(kind))


def write_header(kind, tag, step, **fields):
    """A blob sequence with only a JSON header (e.g. predictions)."""
    blob = codec.encode_header(**fields)
    tf.summary.write(tag, tf.constant([blob], tf.string), step=step, metadata=_metadata(kind))


def write_tensor(kind, tag, values, step):
    tensor = tf.constant(np.asarray(values, np.float32))
    tf.summary.write(tag, tensor, step=step, metadata=_metadata(kind))
