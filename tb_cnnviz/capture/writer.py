"""Writing cnnviz events to an event file of the callback's own.

An event's summaries come packed by `storage.event.pack_event` as {tag: (kind, value)}; each
gets the summary metadata TensorBoard needs (`metadata.create_summary_metadata`), and the whole
event is one record of a TFRecord file (`backend.files.RecordFile`).
"""

import functools
import itertools
import os
import socket
import threading
import time
import uuid

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata

from tb_cnnviz.backend import files
from tb_cnnviz.storage import metadata

_file_numbers = itertools.count()  # two writers of one process never share a file name


@functools.lru_cache(maxsize=None)
def _metadata(kind):
    if kind == metadata.SCALAR:
        return scalar_metadata.create_summary_metadata(display_name="", description="")
    return metadata.create_summary_metadata(kind)


def _tensor_proto(value):
    """TensorProto of a blob sequence (object array of bytes), a uint8 or a float32 array,
    built directly: tensor_util.make_tensor_proto would inspect every element."""
    shape = tensor_shape_pb2.TensorShapeProto(dim=[{"size": size} for size in value.shape])
    if value.dtype == object:
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape, string_val=list(value))
    if value.dtype == np.uint8:
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_shape=shape,
                                      tensor_content=np.ascontiguousarray(value).tobytes())
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape,
                                  tensor_content=np.ascontiguousarray(value, "<f4").tobytes())


class EventWriter:
    """Appends events to an event file of its own in `logdir`, each as one record.

    Written as records rather than through a summary writer: one Event proto holding every
    summary of a step, serialized once, and free of tf.summary's global state (a default writer
    or `record_if` set by other code cannot redirect or drop our events). An event is flushed as
    soon as it is written, and is on disk whole or not at all: a record cut short by a crash is
    skipped by every reader. `close` releases the file; a closed writer writes no more.
    """

    def __init__(self, logdir: str):
        files.makedirs(logdir)
        # Time first and a padded counter: readers take files in name order. The random part
        # keeps a restarted container (same host name, same pid) from truncating an old file.
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_file_numbers):04d}.{uuid.uuid4().hex[:8]}.cnnviz.v2")
        self._file = files.RecordFile(os.path.join(logdir, name))
        self._lock = threading.Lock()  # records from log() calls on two threads must not interleave
        self._append(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, items: dict, step: int) -> None:
        """items: {tag: (kind, value)}, values packed by `storage.event.pack_event`."""
        proto = summary_pb2.Summary()
        for tag, (kind, value) in items.items():
            proto.value.add(tag=tag, metadata=_metadata(kind), tensor=_tensor_proto(value))
        self._append(event_pb2.Event(wall_time=time.time(), step=int(step), summary=proto))

    def _append(self, event):
        record = event.SerializeToString()
        with self._lock:
            self._file.write(record)
            self._file.flush()

    def close(self) -> None:
        self._file.close()
