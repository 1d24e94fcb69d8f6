"""Training that logs every step and checkpoints after it: run, killed and resumed by
test_reliability. From the repository root:

    python -m tests.crash_training LOGDIR CHECKPOINT MAX_STEPS [--signals FILE --stop-in-event STEP]

--signals: append a line to FILE when each event record starts being written ("write STEP") and
when it is on disk ("wrote STEP"). --stop-in-event: the record of the event at STEP is cut half-way:
its first half is written and flushed, "stopped STEP OFFSET LENGTH" says where (OFFSET: the file's
size before it, LENGTH: the whole record's) and the process waits there, in the middle of writing an
event, until it is killed."""

import argparse
import io
import os
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402
from tensorboard.summary.writer.record_writer import RecordWriter  # noqa: E402

import tb_cnnviz  # noqa: E402
from tb_cnnviz.backend import files  # noqa: E402
from tb_cnnviz.datasets import shapes  # noqa: E402
from tests.helpers import small_cnn  # noqa: E402


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the model after every batch; a kill never leaves a half-written file."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_batch_end(self, batch, logs=None):
        partial = self.path + ".partial.keras"
        self.model.save(partial)
        os.replace(partial, self.path)


def signal_records(signals, stop_step):
    """Makes tb_cnnviz's record file, which its event files are written with on every backend, say
    in file `signals` when each record starts and ends, and stop in the middle of the event at
    `stop_step`."""
    real = files.RecordFile

    def say(line):
        with open(signals, "a") as f:
            f.write(line + "\n")

    class SignallingRecordFile:
        def __init__(self, path):
            self._path, self._file = path, real(path)

        def write(self, record):
            step = event_pb2.Event.FromString(record).step
            say(f"write {step}")
            if step == stop_step:
                self._file.flush()
                framed = io.BytesIO()
                RecordWriter(framed).write(record)  # the record as TensorBoard frames it: length, CRCs
                offset, length = os.path.getsize(self._path), len(framed.getvalue())
                with open(self._path, "ab") as f:
                    f.write(framed.getvalue()[: length // 2])
                say(f"stopped {step} {offset} {length}")
                threading.Event().wait()  # until the test kills this process
            self._file.write(record)
            self._file.flush()  # on disk before it says so
            say(f"wrote {step}")

        def flush(self):
            self._file.flush()

        def close(self):
            self._file.close()

    files.RecordFile = SignallingRecordFile


def main(logdir, checkpoint, max_steps):
    images, labels, _ = shapes(64, size=32, seed=7)
    model = keras.models.load_model(checkpoint) if os.path.exists(checkpoint) else small_cnn()
    start = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    epochs = max(1, (max_steps - start) // 2)  # 2 batches per epoch
    callbacks = [tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], every_n_steps=1, strict=True),
                 AtomicCheckpoint(checkpoint)]
    model.fit(images, labels, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks)
    print("finished at step", int(keras.ops.convert_to_numpy(model.optimizer.iterations)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir")
    parser.add_argument("checkpoint")
    parser.add_argument("max_steps", type=int)
    parser.add_argument("--signals")
    parser.add_argument("--stop-in-event", type=int)
    args = parser.parse_args()
    if args.signals:
        signal_records(args.signals, args.stop_in_event)
    main(args.logdir, args.checkpoint, args.max_steps)
