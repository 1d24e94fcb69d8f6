"""Training that logs every step and checkpoints after it: run, killed and resumed by
test_reliability. Usage, from the repository root:
python -m tests.crash_training LOGDIR CHECKPOINT MAX_STEPS"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import tb_cnnviz  # noqa: E402
from tests.helpers import small_cnn  # noqa: E402
from tb_cnnviz.datasets import shapes  # noqa: E402


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the model after every batch; a kill never leaves a half-written file."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_batch_end(self, batch, logs=None):
        partial = self.path + ".partial.keras"
        self.model.save(partial)
        os.replace(partial, self.path)


def main(logdir, checkpoint, max_steps):
    images, labels, _ = shapes(64, size=32, seed=7)
    model = keras.models.load_model(checkpoint) if os.path.exists(checkpoint) else small_cnn()
    start = int(model.optimizer.iterations.numpy())
    epochs = max(1, (max_steps - start) // 2)  # 2 batches per epoch
    callbacks = [tb_cnnviz.CNNViz(logdir, images[:4], labels[:4], every_n_steps=1, strict=True),
                 AtomicCheckpoint(checkpoint)]
    model.fit(images, labels, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks)
    print("finished at step", int(model.optimizer.iterations.numpy()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
