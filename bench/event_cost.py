"""Cost of one CNNViz logging event against the floor, and bytes per event.

Prints, measured in one run on the demo model with the default options:
  - event time / time of the bare fused forward+backward tf.function (Grad-CAM only) on the
    same probes (target: <= 3x), with the split of the event into probe call and writing;
  - bytes of event file per event (target: <= 300 KB).

    python bench/event_cost.py [--probes 8] [--repeats 30]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30)
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
    files = [os.path.join(logdir, f) for f in os.listdir(logdir) if "tfevents" in f]
    events_written = args.repeats + 1
    size = sum(os.path.getsize(f) for f in files)

    print(f"model: demo vgg_style 40x40, {len(callback._probe.convs)} conv layers, {args.probes} probes")
    print(f"bare fused forward+backward: {floor * 1e3:.1f} ms (median of {args.repeats})")
    print(f"full event: {event * 1e3:.1f} ms = probe function {probe_only * 1e3:.1f} ms "
          f"+ summaries/writing {(event - probe_only) * 1e3:.1f} ms")
    ratio = event / floor
    print(f"event / bare ratio: {ratio:.2f}  (target <= 3.0: {'PASS' if ratio <= 3 else 'FAIL'})")
    per_event = size / events_written
    print(f"bytes per event: {per_event / 1e3:.1f} KB  (target <= 300 KB: "
          f"{'PASS' if per_event <= 300e3 else 'FAIL'})")


if __name__ == "__main__":
    main()
