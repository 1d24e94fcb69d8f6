"""Bytes and time of one CNNViz event on real backbones, against one training step.

The demo model is small; users log keras.applications backbones. For each of VGG16, ResNet50,
MobileNetV2, EfficientNetB0, DenseNet121 (224x224) and Xception (299x299), weights=None, nested
in a classifier (backbone -> GlobalAveragePooling2D -> Dense(10, softmax); adam, sparse
categorical crossentropy), a CNNViz with default options on 8 photographs bundled with
scikit-image (tests/helpers.py photographs: uint8, centre-cropped and resized). After a
train step and a warm-up event (which traces the probe and writes the once-per-run `probes`
header as a record of its own), three events (`--repeats`) alternate with three more train steps
on a batch of 32 synthetic images. Prints per model the layers logged and:
  - bytes of the first event after the warm-up (so no header, no tracing), as stored in the
    event file, by kind of summary (the tag's second part: train/<kind>/...; "framing" is
    the rest of the record); target <= 300 KB (1 KB = 1000 bytes, as event_cost.py counts);
  - event time / train step time, the medians of the three each (target <= 0.2).
With --methods (the callback's methods=, "all" for the nine; the many-pass ones then run at every
event, expensive_every=1), also the bytes each method other than Grad-CAM adds to the event: its
maps, its trust figures and their scalars.

    python3 -m bench.backbones [--models vgg16,resnet50] [--size 96] [--methods all] [--repeats 3] [--json]
"""

import collections
import gc
import os
import statistics
import tempfile
import time

from bench._common import Report, arguments

import keras  # noqa: E402
import numpy as np  # noqa: E402
from tensorboard.backend.event_processing import event_file_loader  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402

from tests.helpers import photographs  # noqa: E402
from tb_cnnviz import CNNViz  # noqa: E402
from tb_cnnviz.storage.metadata import METHODS  # noqa: E402

BACKBONES = {  # name: (constructor, input size)
    "vgg16": (keras.applications.VGG16, 224),
    "resnet50": (keras.applications.ResNet50, 224),
    "mobilenetv2": (keras.applications.MobileNetV2, 224),
    "efficientnetb0": (keras.applications.EfficientNetB0, 224),
    "densenet121": (keras.applications.DenseNet121, 224),
    "xception": (keras.applications.Xception, 299),
}
CLASSES, BATCH = 10, 32


def classifier(backbone, size):
    inputs = keras.Input((size, size, 3))
    features = backbone(weights=None, include_top=False, input_shape=(size, size, 3))(inputs)
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def event_bytes(logdir, step):
    """({kind: serialized bytes of its summaries}, {kind: summaries}, {method: bytes of its
    method_maps, method_metrics and scalars}) of the train event at `step`; the rest of its
    record is counted as "framing"."""
    for name in sorted(os.listdir(logdir)):
        for record in event_file_loader.RawEventFileLoader(os.path.join(logdir, name)).Load():
            event = event_pb2.Event.FromString(record)
            if event.step == step and event.summary.value and event.summary.value[0].tag.startswith("train/"):
                sizes, counts, methods = collections.Counter(), collections.Counter(), collections.Counter()
                for value in event.summary.value:
                    parts = value.tag.split("/")
                    sizes[parts[1]] += len(value.SerializeToString())
                    counts[parts[1]] += 1
                    if parts[1] in ("method_maps", "method_metrics") or (parts[0] == "cnnviz" and len(parts) == 4):
                        methods[parts[2]] += len(value.SerializeToString())
                sizes["framing"] = len(record) - sum(sizes.values())
                return sizes, counts, methods
    raise LookupError(f"no train event at step {step} in {logdir}")


def measure(report, name, size, methods, repeats):
    """(KB of one event, event time / train step time) of one backbone, with the details said."""
    start = time.perf_counter()
    model = classifier(BACKBONES[name][0], size)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (BATCH, size, size, 3)).astype(np.float32)
    labels = rng.integers(0, CLASSES, BATCH)
    # Deleted after: besides the events it holds the run's copy of the conv weights (up to ~95 MB).
    with tempfile.TemporaryDirectory(prefix=f"cnnviz_{name}_") as logdir:
        callback = CNNViz(logdir, photographs(size), np.arange(8), model=model, methods=methods, expensive_every=1)
        model.train_on_batch(images, labels)  # warm-up: traces the train step
        callback.log(1)  # warm-up: traces the probe, writes the run header
        setup = time.perf_counter() - start
        steps, events = [], []
        for step in range(2, 2 + repeats):
            steps.append(timed(lambda: model.train_on_batch(images, labels)))
            events.append(timed(lambda: callback.log(step)))
        sizes, counts, by_method = event_bytes(logdir, 2)
    event, train_step = statistics.median(events), statistics.median(steps)
    kb, ratio = sum(sizes.values()) / 1000, event / train_step

    report.say(f"\n{name} ({size}x{size}, {model.count_params() / 1e6:.1f} M parameters): logged per event: "
               + ", ".join(f"{kind} {counts[kind]}" for kind in ("activations", "filters", "stats")) + " layers")
    report.say("  KB of the event at step 2 by kind: "
               + ", ".join(f"{kind} {n / 1000:.1f}" for kind, n in sizes.most_common()) + f"; total {kb:.1f}")
    if by_method:
        report.say("  KB each method adds: " + ", ".join(f"{method} {n / 1000:.1f}" for method, n in by_method.items()))
    report.say(f"  event {event * 1e3:.0f} ms, train step {train_step * 1e3:.0f} ms (medians of {repeats}): "
               f"ratio {ratio:.3f}; build + warm-up {setup:.0f} s")
    del model, callback
    keras.backend.clear_session()
    gc.collect()
    return kb, ratio


def main():
    parser = arguments(__doc__)
    parser.add_argument("--models", default=",".join(BACKBONES),
                        help="comma-separated, of: " + ", ".join(BACKBONES))
    parser.add_argument("--size", type=int, help="input size for every model (default 224, Xception 299)")
    parser.add_argument("--repeats", type=int, default=3, help="events and train steps timed (default: 3)")
    parser.add_argument("--methods", default="gradcam,gradcam_pp",
                        help="the callback's methods=, comma-separated, or all (default: gradcam,gradcam_pp)")
    args = parser.parse_args()
    methods = METHODS if args.methods == "all" else tuple(args.methods.split(","))
    models = args.models.split(",")
    unknown = set(models) - set(BACKBONES)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose from {list(BACKBONES)}")
    report = Report(args.json)
    start = time.perf_counter()
    results = {name: measure(report, name, args.size or BACKBONES[name][1], methods, args.repeats) for name in models}
    report.say(f"\n{len(models)} models in {time.perf_counter() - start:.0f} s")
    for name, (kb, ratio) in results.items():
        report.figure(f"backbones_{name}_kb_per_event", kb, 300, f"{name}: KB per event")
        report.figure(f"backbones_{name}_event_over_step", ratio, 0.2, f"{name}: event time / train step time")


if __name__ == "__main__":
    main()
