"""`model.fit` overhead of CNNViz, side by side in one run.

Trains the demo model for --epochs epochs under each setting. The overhead is the time spent
inside the callback's hooks per epoch over the epoch time with no callback — measured
directly, because on a shared machine whole-epoch times vary by +-15 % between runs (running
the same two settings twice in a row, A B A B, gave 10.4, 9.4, 10.2, 9.7 s/epoch); it is the
mean over the epochs, so that the events that also compute deletion and insertion (every
trust_every-th, 5 by default) count at their share: the default 11 epochs measure 10, two of
them with those events. The epoch-median comparison is printed too, for what it is worth. (The
first epoch, which traces functions, is left out.)
  - no callback (the floor);
  - CNNViz at its default frequency, once per epoch (target: <= 2 % overhead);
  - CNNViz with every_n_steps=50 (target: <= 10 %);
  - Keras' TensorBoard(histogram_freq=1, write_images=True), for reference.

    python3 -m bench.fit_overhead [--epochs 11] [--samples 3000] [--json]
"""

import os
import statistics
import tempfile
import time

from bench._common import Report, arguments

import keras  # noqa: E402

from demo.model import vgg_style  # noqa: E402
from tb_cnnviz import CNNViz  # noqa: E402
from tb_cnnviz.datasets import SHAPE_NAMES, shapes  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def timed(callback_class):
    """The callback class with the wall time of its training hooks summed per epoch."""

    class Timed(callback_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.hook_times = [0.0]

        def _time(self, hook, *args, **kwargs):
            start = time.perf_counter()
            hook(*args, **kwargs)
            self.hook_times[-1] += time.perf_counter() - start

        def on_train_batch_begin(self, *args, **kwargs):
            self._time(super().on_train_batch_begin, *args, **kwargs)

        def on_train_batch_end(self, *args, **kwargs):
            self._time(super().on_train_batch_end, *args, **kwargs)

        def on_epoch_begin(self, *args, **kwargs):
            self.hook_times.append(0.0)
            self._time(super().on_epoch_begin, *args, **kwargs)

        def on_epoch_end(self, *args, **kwargs):
            self._time(super().on_epoch_end, *args, **kwargs)

    return Timed


def epoch_time(make_callbacks, data, epochs):
    """(median epoch seconds, mean seconds per epoch inside the callback's hooks)."""
    keras.utils.set_random_seed(0)
    model = vgg_style(40)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    timer = EpochTimer()
    callbacks = make_callbacks()
    # the timer runs last, so each epoch's time includes the callbacks' epoch-end work
    model.fit(*data, epochs=epochs, batch_size=32, verbose=0, callbacks=[*callbacks, timer])
    hooks = statistics.mean(callbacks[0].hook_times[2:]) if callbacks else 0.0
    return statistics.median(timer.times[1:]), hooks


def main():
    parser = arguments(__doc__)
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--samples", type=int, default=3000)
    args = parser.parse_args()
    report = Report(args.json)
    images, labels, _ = shapes(args.samples, size=40, seed=1)
    probes, probe_labels, _ = shapes(8, size=40, seed=2)
    root = tempfile.mkdtemp(prefix="cnnviz_fit_")
    settings = {
        "no callback": lambda: [],
        "CNNViz once per epoch": lambda: [timed(CNNViz)(os.path.join(root, "epoch"), probes, probe_labels,
                                                        class_names=SHAPE_NAMES)],
        "CNNViz every_n_steps=50": lambda: [timed(CNNViz)(os.path.join(root, "steps"), probes, probe_labels,
                                                          class_names=SHAPE_NAMES, every_n_steps=50)],
        "Keras TensorBoard(histogram_freq=1, write_images=True)": lambda: [timed(keras.callbacks.TensorBoard)(
            os.path.join(root, "keras"), histogram_freq=1, write_images=True)],
    }
    times = {name: epoch_time(make, (images, labels), args.epochs) for name, make in settings.items()}
    floor = times["no callback"][0]
    targets = {"CNNViz once per epoch": 2, "CNNViz every_n_steps=50": 10}
    steps = -(-args.samples // 32)
    report.say(f"demo model, {args.samples} images, {steps} steps per epoch, {args.epochs - 1} epochs: hook time "
               f"their mean, epoch time their median")
    for name, (seconds, hooks) in times.items():
        report.say(f"{name:56s} hooks {hooks * 1e3:7.1f} ms/epoch = {hooks / floor:6.2%} of an epoch;"
                   f" epoch {seconds:5.2f} s ({seconds / floor - 1:+.1%} vs no callback)")
    for name, limit in targets.items():
        report.figure(f"fit overhead %, {name}", 100 * times[name][1] / floor, limit, f"{name}, % of an epoch")


if __name__ == "__main__":
    main()
