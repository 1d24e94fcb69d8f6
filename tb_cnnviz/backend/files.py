"""The logdir's file system, on every Keras backend: local paths through Python's own files;
a path with a scheme (gs://, s3://, hdfs://, ...) through TensorFlow's `tf.io.gfile`, which is
imported only for such a path, so that a JAX or PyTorch user without TensorFlow writes local
logdirs without it.

Event files are TFRecord files (what TensorBoard reads): each record is its length (uint64,
little-endian), the length's masked CRC-32C, the bytes, and their masked CRC-32C, as
TensorBoard's own `summary.writer.record_writer` frames them; the CRC is google-crc32c's
(C, where it has a wheel), as TensorBoard's pure-Python CRC takes ~50 ms on a 300 KB event.
"""

import contextlib
import os
import re
import struct
import threading

import google_crc32c

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def _gfile():
    """tf.io.gfile, for a path with a scheme; an error naming what to install where TensorFlow is not."""
    try:
        import tensorflow as tf
    except ImportError:
        raise RuntimeError(
            "a logdir with a scheme (gs://, s3://, hdfs://, ...) is opened through TensorFlow's file system, "
            "and TensorFlow is not installed: pip install tensorflow-cpu (or tensorflow), or give a local "
            "path") from None
    return tf.io.gfile


def _remote(path: str) -> bool:
    return bool(_SCHEME.match(str(path))) and not str(path).startswith("file://")


def _local(path: str) -> str:
    path = str(path)
    return path[len("file://"):] if path.startswith("file://") else path


def makedirs(path: str) -> None:
    if _remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(_local(path), exist_ok=True)


def exists(path: str) -> bool:
    return _gfile().exists(path) if _remote(path) else os.path.exists(_local(path))


def read_file(path: str) -> bytes:
    """The file's bytes; FileNotFoundError if there is none."""
    if not _remote(path):
        with open(_local(path), "rb") as file:
            return file.read()
    gfile = _gfile()
    if not gfile.exists(path):
        raise FileNotFoundError(path)
    with gfile.GFile(path, "rb") as file:
        return file.read()


def write_file(path: str, data: bytes) -> None:
    """Replaces the file's content; a local file is renamed into place once written, so that a
    process that dies on the way leaves the old content (and a failed write no partial file)."""
    if _remote(path):
        with _gfile().GFile(path, "wb") as file:
            file.write(data)
        return
    local = _local(path)
    partial = f"{local}.{os.getpid()}.{threading.get_ident()}.partial"
    try:
        with open(partial, "wb") as file:
            file.write(data)
        os.replace(partial, local)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def framed(record: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the bytes, their masked CRC."""
    length = struct.pack("<Q", len(record))
    return length + _masked_crc(length) + record + _masked_crc(record)


class RecordFile:
    """A new event file being written: one TFRecord per `write`, handed to the operating system
    (readable by TensorBoard) once `flush` returns."""

    def __init__(self, path: str):
        self._file = _gfile().GFile(path, "wb") if _remote(path) else open(_local(path), "wb")

    def write(self, record: bytes) -> None:
        self._file.write(framed(record))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
