"""Runs whose model changed between events, written by the real callback: one process's model logs
some steps, then another model (a layer widened, added, removed or narrowed, or other probes)
logs later steps into the same logdir with a new CNNViz, whose run header then wins.

Each process logs train events at STEPS_PER_PROCESS steps of its own (its weights nudged between
them, so that they differ) and an eval event at its last; deletion and insertion curves at its
first train event (the every-k-th options count the run's events: k = STEPS_PER_PROCESS) and at
every eval event; in the runs of FEATURE_VIS (they take a few seconds) feature visualisations of 1
channel per layer at each process's first train event and at the eval events of every other
process."""

import os
from typing import NamedTuple

import keras
import numpy as np

import tb_cnnviz
from tb_cnnviz.datasets import SHAPE_NAMES, shapes

SIZE = 16
MAX_CHANNELS = 6
STEPS_PER_PROCESS = 2


class Process(NamedTuple):
    """One process's model and probes."""

    widths: dict  # {conv layer name: filters}, in model order
    probes: int
    segmentation: bool = False  # a per-pixel head (a 1x1 conv "classes" after the conv layers)

    def filters(self, layer: str) -> int | None:
        """How many filters conv layer `layer` has in this model (None: it has no such layer)."""
        return {**self.widths, **({"classes": len(SHAPE_NAMES) + 1} if self.segmentation else {})}.get(layer)


# run -> its processes, in order
CHANGES = {
    "widened": [Process({"conv1": 4, "conv2": 5, "conv3": 6}, 3), Process({"conv1": 4, "conv2": 9, "conv3": 6}, 3)],
    "added": [Process({"conv1": 4, "conv2": 5}, 3), Process({"conv1": 4, "conv2": 5, "conv3": 6}, 3)],
    "removed": [Process({"conv1": 4, "conv2": 5, "conv3": 6}, 3), Process({"conv1": 4, "conv3": 6}, 3)],
    # fewer probes, then more than at first
    "probes": [Process({"conv1": 4, "conv2": 5}, 3), Process({"conv1": 4, "conv2": 5}, 2),
               Process({"conv1": 4, "conv2": 5}, 5)],
    # a layer narrowed, one added and fewer probes at once
    "narrowed": [Process({"conv1": 6, "conv2": 8}, 4), Process({"conv1": 3, "conv2": 8, "conv3": 5}, 2)],
    "segmentation": [Process({"conv1": 4, "conv2": 5}, 2, True), Process({"conv1": 4, "conv2": 7}, 3, True)],
}

FEATURE_VIS = {"widened", "removed"}
# the fuzzer's (bench/fuzz_routes.py): a layer narrowed, one added and more probes at once
FUZZED = [Process({"conv1": 6, "conv2": 8}, 2), Process({"conv1": 3, "conv2": 8, "conv3": 5}, 4)]


def tiny_cnn(widths: dict, segmentation: bool = False, size: int = SIZE):
    """Conv layers of `widths` ({name: filters}, in order) and a softmax head: a pooling step after
    the first and a dense head, or (segmentation) no pooling and a 1x1 conv per pixel."""
    inputs = keras.Input((size, size, 3))
    x = inputs
    for index, (name, filters) in enumerate(widths.items()):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
        if index == 0 and not segmentation:
            x = keras.layers.MaxPooling2D()(x)
    if segmentation:
        outputs = keras.layers.Conv2D(len(SHAPE_NAMES) + 1, 1, activation="softmax", name="classes")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(len(SHAPE_NAMES), activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="tiny")


def process_steps(process: int) -> list:
    """The train steps that process number `process` of a run logs (its eval event: at the last)."""
    return list(range(process * STEPS_PER_PROCESS, (process + 1) * STEPS_PER_PROCESS))


def process_at(run: str, step: int) -> Process:
    """The process of run `run` that logged `step` (train or eval)."""
    return CHANGES[run][step // STEPS_PER_PROCESS]


def _nudge(model, rng):
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()])


def write_changed_run(run_dir, processes, seed=0, feature_vis=1):
    """Logs each Process of `processes` in turn into `run_dir`, a new model and CNNViz each."""
    images, labels, masks = shapes(8, size=SIZE, seed=seed)
    rng = np.random.default_rng(seed)
    for number, process in enumerate(processes):
        keras.utils.set_random_seed(seed + number)
        model = tiny_cnn(process.widths, process.segmentation)
        truth = np.where(masks, labels[:, None, None] + 1, 0) if process.segmentation else labels
        names = ["background", *SHAPE_NAMES] if process.segmentation else list(SHAPE_NAMES)
        callback = tb_cnnviz.CNNViz(str(run_dir), images[:process.probes], truth[:process.probes], layers="all",
                                    max_channels=MAX_CHANNELS, class_names=names, feature_vis=feature_vis,
                                    filters_every=STEPS_PER_PROCESS, trust_every=STEPS_PER_PROCESS, model=model,
                                    strict=True)
        for step in process_steps(number):
            callback.log(step)
            _nudge(model, rng)
        callback.log(process_steps(number)[-1], mode="eval")
        callback.close()


def write_changed_runs(logdir, runs=None) -> dict:
    """Writes the runs of CHANGES (or those named in `runs`) under `logdir`; returns {run: processes}."""
    for index, run in enumerate(runs or CHANGES):
        write_changed_run(os.path.join(logdir, run), CHANGES[run], seed=index, feature_vis=int(run in FEATURE_VIS))
    return {run: CHANGES[run] for run in runs or CHANGES}
