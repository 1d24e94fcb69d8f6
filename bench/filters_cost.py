"""What explaining filters costs: top examples from the probes (every event, the default), from a
reference set of its own, and feature visualisations, against a default event.

For the demo model (40x40, 8 probes of the synthetic shapes, its 3 default layers) and VGG16 at
224x224 (weights=None, nested in a classifier, 8 photographs bundled with scikit-image, 5 default
layers), CNNViz callbacks on the same model log events after a warm-up event each (which traces):
  - default: top examples among the probes, found in the event's own forward pass;
  - reference: top examples among a reference set of its own (the demo: 256 and 1,024 shapes;
    VGG16: 64 and 256 photographs, flipped and shifted copies), a forward pass over it in
    batches of 32 (made at every filters_every-th event);
  - feature_vis=4: 4 channels of each logged layer visualised, 128 steps of gradient ascent.
Prints the medians of three events each, the ratios to the default event and, for the default
event, the bytes its top examples add (of the event's total). No targets here: fit_overhead.py
(<= 2 % of an epoch with the defaults) and event_cost.py (<= 300 KB) check the defaults; these
ratios say what filters_every buys.

    python3 -m bench.filters_cost [--models demo,vgg16] [--json]
"""

import os
import tempfile

from bench._common import Report, arguments, median_event_seconds

import keras  # noqa: E402
import numpy as np  # noqa: E402

from demo.model import vgg16_backbone, vgg_style  # noqa: E402
from tests.helpers import photographs  # noqa: E402
from tb_cnnviz import CNNViz, read_run  # noqa: E402
from tb_cnnviz.datasets import shapes  # noqa: E402

REPEATS = 3


def demo_model():
    model = vgg_style(40)
    model.compile("adam", "sparse_categorical_crossentropy")
    probes, labels, _ = shapes(8, size=40, seed=2)
    return model, probes, labels, lambda count: shapes(count, size=40, seed=3)[0]


def copies(images, count):
    """`count` flipped and shifted copies of `images`, for a reference set larger than them."""
    rng = np.random.default_rng(0)
    picked = images[rng.integers(0, len(images), count)]
    flips = rng.random(count) < 0.5
    picked[flips] = picked[flips, :, ::-1]
    return np.stack([np.roll(image, rng.integers(-20, 20, 2), axis=(0, 1)) for image in picked])


def vgg16_model():
    model = vgg16_backbone(224, classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    probes = photographs(224).astype("float32")
    return model, probes, None, lambda count: copies(probes, count)


MODELS = {"demo": (demo_model, (256, 1024)), "vgg16": (vgg16_model, (64, 256))}


def event_seconds(model, probes, labels, logdir, **options):
    callback = CNNViz(logdir, probes, labels, model=model, strict=True, trust_every=None, filters_every=1, **options)
    return median_event_seconds(callback, REPEATS)


def top_example_bytes(logdir):
    """(bytes of the top examples, bytes of the whole event) of the run's last event, without
    the once-per-run header."""
    run = read_run(logdir)
    step = run.steps()[-1]
    total = sum(os.path.getsize(os.path.join(logdir, name)) for name in os.listdir(logdir) if "tfevents" in name)
    ours = sum(len(blob) for layer in run.layers for blob in run.blobs(f"train/top_examples/{layer}", step))
    header = sum(len(blob) for blob in run.blobs("probes", step=0))
    return ours, (total - header) / len(run.steps())


def main():
    parser = arguments(__doc__)
    parser.add_argument("--models", default="demo,vgg16", help="comma-separated, of: " + ", ".join(MODELS))
    args = parser.parse_args()
    report = Report(args.json)
    for name in args.models.split(","):
        build, sizes = MODELS[name]
        keras.utils.set_random_seed(0)
        model, probes, labels, reference = build()
        with tempfile.TemporaryDirectory(prefix="cnnviz_filters_cost_") as tmp:
            default = event_seconds(model, probes, labels, f"{tmp}/default")
            ours, event = top_example_bytes(f"{tmp}/default")
            with_reference = {count: event_seconds(model, probes, labels, f"{tmp}/r{count}", reference=reference(count))
                              for count in sizes}
            visualised = event_seconds(model, probes, labels, f"{tmp}/vis", feature_vis=4)
        report.say(f"{name}: default event {default * 1000:.0f} ms, its top examples {ours / 1000:.1f} KB of "
                   f"{event / 1000:.1f} KB; " + ", ".join(f"with a reference of {count} images {seconds * 1000:.0f} ms"
                                                         for count, seconds in with_reference.items())
                   + f"; with feature_vis=4 {visualised * 1000:.0f} ms")
        report.figure(f"filters_cost.{name}.top_examples_kb", ours / 1000, None,
                      f"{name}: KB of top examples in a default event")
        for count, seconds in with_reference.items():
            report.figure(f"filters_cost.{name}.reference_{count}_ratio", seconds / default, None,
                          f"{name}: event with a reference set of {count} images / default event")
        report.figure(f"filters_cost.{name}.feature_vis_ratio", visualised / default, None,
                      f"{name}: event with feature_vis=4 / default event")


if __name__ == "__main__":
    main()
