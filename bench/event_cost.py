"""Cost of one CNNViz logging event against the floor, and bytes per event.

Prints, measured in one run on the demo model with the default options:
  - event time / time of the bare fused forward+backward tf.function (Grad-CAM only) on the
    same probes (target: <= 3x), with the split of the event into probe call and writing;
  - bytes of event file per event (target: <= 300 KB): for the untrained model (noisy feature
    maps compress worst), and mean and max over the events of a real demo run
    (`python -m demo --no-serve`, --demo-epochs epochs).

    python bench/event_cost.py [--probes 8] [--repeats 30] [--demo-epochs 8]
"""

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from tensorboard.backend.event_processing import event_file_loader  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402

from demo.__main__ import main as demo_main  # noqa: E402

from demo.model import vgg_style  # noqa: E402
from tb_cnnviz import CNNViz  # noqa: E402
from tb_cnnviz.datasets import SHAPE_NAMES, shapes  # noqa: E402
from tb_cnnviz.probe import Probe, ProbeSpec  # noqa: E402


def median_time(fn, repeats):
    fn()  # trace / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def logdir_bytes(logdir):
    return sum(os.path.getsize(os.path.join(logdir, f)) for f in os.listdir(logdir) if "tfevents" in f)


def bytes_per_step(run_dir):
    """Serialized bytes of each (mode, step) event, from the run's event files."""
    sizes = collections.Counter()
    for name in os.listdir(run_dir):
        if "tfevents" in name:
            for event in event_file_loader.RawEventFileLoader(os.path.join(run_dir, name)).Load():
                parsed = event_pb2.Event.FromString(event)
                if parsed.HasField("summary"):
                    mode = parsed.summary.value[0].tag.split("/")[0]
                    if mode != "probes":  # logged once per run, not part of an event
                        sizes[mode, parsed.step] += len(event)
    return list(sizes.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--demo-epochs", type=int, default=8)
    args = parser.parse_args()

    model = vgg_style(40)
    model.compile("adam", "sparse_categorical_crossentropy")
    probes, labels, _ = shapes(args.probes, size=40, seed=2)
    logdir = tempfile.mkdtemp(prefix="cnnviz_bench_")
    callback = CNNViz(logdir, probes, labels, class_names=SHAPE_NAMES, model=model)
    bare = Probe(model, ProbeSpec(gradcam_layer=callback._probe.spec.gradcam_layer))
    targets = np.full(len(probes), -1)

    steps = iter(range(10**9))
    floor = median_time(lambda: bare(probes, targets), args.repeats)
    probe_only = median_time(lambda: callback._probe(probes, targets), args.repeats)
    event = median_time(lambda: callback.log(next(steps)), args.repeats)
    untrained_size = logdir_bytes(logdir) / (args.repeats + 1)

    demo_dir = tempfile.mkdtemp(prefix="cnnviz_bench_demo_")
    demo_main(["--no-serve", "--logdir", demo_dir, "--epochs", str(args.demo_epochs), "--learning-rates", "0.002"])
    demo_sizes = bytes_per_step(os.path.join(demo_dir, "vgg_style_lr0.002"))

    print(f"model: demo vgg_style 40x40, {len(callback._probe.convs)} conv layers, {args.probes} probes")
    print(f"bare fused forward+backward: {floor * 1e3:.1f} ms (median of {args.repeats})")
    print(f"full event: {event * 1e3:.1f} ms = probe function {probe_only * 1e3:.1f} ms "
          f"+ summaries/writing {(event - probe_only) * 1e3:.1f} ms")
    ratio = event / floor
    print(f"event / bare ratio: {ratio:.2f}  (target <= 3.0: {'PASS' if ratio <= 3 else 'FAIL'})")
    sizes = (
        ("untrained model", untrained_size),
        (f"demo run, mean of {len(demo_sizes)} events", statistics.mean(demo_sizes)),
        ("demo run, largest event", max(demo_sizes)),
    )
    for label, per_event in sizes:
        print(f"bytes per event, {label}: {per_event / 1e3:.1f} KB  (target <= 300 KB: "
              f"{'PASS' if per_event <= 300e3 else 'FAIL'})")


if __name__ == "__main__":
    main()
