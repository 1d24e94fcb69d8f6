"""`model.fit` overhead of CNNViz, side by side in one run.

Trains each model for --epochs epochs under each setting. The overhead is the time spent
inside the callback's hooks per epoch over the epoch time with no callback — measured
directly, because on a shared machine whole-epoch times vary by +-15 % between runs (running
the same two settings twice in a row, A B A B, gave 10.4, 9.4, 10.2, 9.7 s/epoch); it is the
mean over the epochs, so that the events that also compute deletion and insertion (every
trust_every-th, 5 by default) count at their share: the default 11 epochs measure 10, two of
them with those events. The epoch-time comparison is printed too (median and mean), for what it
is worth: it is the honest end-to-end cost, where work a callback leaves running after its
hooks return would show. (The first epoch, which traces functions, is left out.)

The demo model (3,000 images 40x40, batch 32, 6 convs; ~7 s epochs here):
  - no callback (the floor);
  - CNNViz at its default frequency, once per epoch (target: <= 2 % overhead);
  - CNNViz with every_n_steps=50 (target: <= 10 %);
  - Keras' TensorBoard(histogram_freq=1, write_images=True), for reference.
A 4-second epoch (2,048 images 64x64, batch 64, a VGG-style model of 7 convs, widths 4-8-16:
~4 s epochs on this 2-core machine), where an event and its deletion and insertion passes are
a larger share of an epoch:
  - no callback; CNNViz with every default option (target: <= 2 % overhead).
The same model with its training set sized so that an epoch with no callback takes
--epoch-seconds (4) on the machine at hand, `--models sized` (a measured figure, no target: a
faster machine trains the 2,048 images in well under 4 s, bench/README.md, session 16).

    python3 -m bench.fit_overhead [--epochs 11] [--samples 3000] [--models demo,4s,sized] [--epoch-seconds 4] [--json]
"""

import gc
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
    """The callback class with the wall time of its training hooks summed per epoch. A batch hook
    the class leaves to keras.callbacks.Callback stays Keras' own: Keras dispatches batch-end
    hooks on a thread only where every callback's are its defaults (or `async_safe`), which a
    wrapper of a hook the class does not define would turn off (bench/README.md, session 15)."""

    def wrapped(name):
        def hook(self, *args, **kwargs):
            start = time.perf_counter()
            getattr(callback_class, name)(self, *args, **kwargs)
            self.hook_times[-1] += time.perf_counter() - start
        return hook

    def on_epoch_begin(self, *args, **kwargs):
        self.hook_times.append(0.0)
        wrapped("on_epoch_begin")(self, *args, **kwargs)

    def __init__(self, *args, **kwargs):
        callback_class.__init__(self, *args, **kwargs)
        self.hook_times = [0.0]

    hooks = {name: wrapped(name) for name in ("on_train_batch_begin", "on_train_batch_end", "on_epoch_end")
             if getattr(callback_class, name) is not getattr(keras.callbacks.Callback, name)}
    return type(f"Timed{callback_class.__name__}", (callback_class,),
                {"__init__": __init__, "on_epoch_begin": on_epoch_begin, **hooks})


# name: (model, image size, training images, batch size)
MODELS = {
    "demo": (lambda: vgg_style(40), 40, 3000, 32),
    "4s": (lambda: vgg_style(64, widths=(4, 8, 16), convs=(2, 2, 3)), 64, 2048, 64),
}


def epoch_time(make_model, make_callbacks, data, epochs, batch_size):
    """(seconds of each epoch, seconds inside the callback's hooks in each epoch), the first
    epoch left out."""
    gc.collect()  # the settings before this one left models and traced functions to collect, not its own hooks
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    timer = EpochTimer()
    callbacks = make_callbacks()
    # the timer runs last, so each epoch's time includes the callbacks' epoch-end work
    model.fit(*data, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[*callbacks, timer])
    return timer.times[1:], callbacks[0].hook_times[2:] if callbacks else [0.0]


def sized_samples(model, seconds):
    """Training images of `model` (a MODELS key), whole batches, for an epoch of about `seconds`
    with no callback: its default set's second epoch timed (the first traces), scaled."""
    make_model, size, samples, batch_size = MODELS[model]
    images, labels, _ = shapes(samples, size=size, seed=1)
    measured = statistics.median(epoch_time(make_model, lambda: [], (images, labels), 3, batch_size)[0])
    return max(1, round(samples * seconds / measured / batch_size)) * batch_size


def measure(report, model, settings, targets, epochs, rounds, samples=None, label=None):
    """Trains `model` (a MODELS key) under each of `settings` {name: (logdir, probes, labels) ->
    callbacks}, the settings in turn `rounds` times (their epochs pooled), prints each setting's
    figures and reports `targets` {name: % limit} (None: measured, no target); `label` names the
    model in the figures (default its key)."""
    make_model, size, default_samples, batch_size = MODELS[model]
    samples = samples or default_samples
    label = label or model
    images, labels, _ = shapes(samples, size=size, seed=1)
    probes, probe_labels, _ = shapes(8, size=size, seed=2)
    root = tempfile.mkdtemp(prefix=f"cnnviz_fit_{model}_")
    times = {name: ([], []) for name in settings}
    for round_ in range(rounds):
        for index, (name, make) in enumerate(settings.items()):
            logdir = os.path.join(root, f"{round_}_{index}")
            seconds, hooks = epoch_time(make_model, lambda make=make, logdir=logdir: make(logdir, probes, probe_labels),
                                        (images, labels), epochs, batch_size)
            times[name][0].extend(seconds)
            times[name][1].extend(hooks)
    floor, floor_mean = statistics.median(times["no callback"][0]), statistics.mean(times["no callback"][0])
    report.say(f"{label} model, {samples} images {size}x{size}, {-(-samples // batch_size)} steps of {batch_size} per "
               f"epoch, {rounds} x {epochs - 1} epochs: hook time their mean over the no-callback epoch's median; "
               f"'own' over the same epochs' time outside the hooks (free of load drifting between settings)")
    overhead = {}
    for name, (seconds, hooks) in times.items():
        median, mean, overhead[name] = statistics.median(seconds), statistics.mean(seconds), statistics.mean(hooks)
        report.say(f"{name:56s} hooks {overhead[name] * 1e3:7.1f} ms/epoch = {overhead[name] / floor:6.2%} of an "
                   f"epoch ({overhead[name] / (mean - overhead[name]):.2%} own); epoch median {median:5.2f} s "
                   f"({median / floor - 1:+.1%} vs no callback), mean {mean:5.2f} s ({mean / floor_mean - 1:+.1%})")
        if name != "no callback":
            report.say(f"{'':56s} hooks of each epoch, ms: {' '.join(f'{hook * 1e3:.0f}' for hook in hooks)}")
    report.figure(f"epoch s, {label}, no callback", floor, None, f"{label} model, no callback: epoch median, seconds")
    for name, limit in targets.items():
        report.figure(f"fit overhead %, {name}", 100 * overhead[name] / floor, limit, f"{name}, % of an epoch")


def four_second_epoch(report, name, limit, args, samples=None, label=None):
    """`measure` of the 4-second epoch's model with no callback and with CNNViz's defaults, as
    `name`, against `limit` (None: measured, no target)."""
    measure(report, "4s", {
        "no callback": lambda *_: [],
        name: lambda logdir, probes, labels: [timed(CNNViz)(logdir, probes, labels, class_names=SHAPE_NAMES)],
    }, {name: limit}, args.epochs, args.rounds, samples, label)


def main():
    parser = arguments(__doc__)
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--samples", type=int, default=3000, help="training images of the demo model")
    parser.add_argument("--models", default="demo,4s", help="comma-separated, of: " + ", ".join([*MODELS, "sized"]))
    parser.add_argument("--rounds", type=int, default=2, help="of the 4 s epoch's settings, in turn")
    parser.add_argument("--epoch-seconds", type=float, default=4.0, help="the no-callback epoch of --models sized")
    args = parser.parse_args()
    report = Report(args.json)
    models = args.models.split(",")
    if "demo" in models:
        measure(report, "demo", {
            "no callback": lambda *_: [],
            "CNNViz once per epoch": lambda logdir, probes, labels: [timed(CNNViz)(logdir, probes, labels,
                                                                                   class_names=SHAPE_NAMES)],
            "CNNViz every_n_steps=50": lambda logdir, probes, labels: [timed(CNNViz)(
                logdir, probes, labels, class_names=SHAPE_NAMES, every_n_steps=50)],
            "Keras TensorBoard(histogram_freq=1, write_images=True)": lambda logdir, *_: [
                timed(keras.callbacks.TensorBoard)(logdir, histogram_freq=1, write_images=True)],
        }, {"CNNViz once per epoch": 2, "CNNViz every_n_steps=50": 10}, args.epochs, 1, args.samples)
    if "4s" in models:
        four_second_epoch(report, "CNNViz, 4 s epoch, 7 convs 64x64, defaults", 2, args)
    if "sized" in models:
        four_second_epoch(report, f"CNNViz, the 4 s epoch's model sized to {args.epoch_seconds:g} s here, defaults",
                          None, args, sized_samples("4s", args.epoch_seconds), "sized")


if __name__ == "__main__":
    main()
