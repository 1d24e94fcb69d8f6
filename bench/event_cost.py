"""Cost of one CNNViz logging event against the floor, where it goes, and bytes per event.

Prints, measured in one run on the demo model with the default options:
  - event time / time of the floor (target: <= 3x): the event's required model work in one
    tf.function, the fused forward+backward of Grad-CAM and the faithfulness check's second
    forward pass, on the same probes, with the filter statistics that every probe computes. The two are timed alternately (A B A B) and the figure is
    the median of the pair ratios, so load drifting on a shared machine cancels out; the same
    for CPU time (all cores), which no scheduling of the event's work can bring below its own
    ratio;
  - where the event's time goes: the probe tf.function (and what each of its parts adds),
    quantising and PNG-writing the maps, writing the summaries;
  - bytes of event file per event (target: <= 300 KB): for the untrained model (noisy feature
    maps compress worst), and mean and max over the events of a real demo run
    (`python -m demo --no-serve`, --demo-epochs epochs).

    python3 -m bench.event_cost [--probes 8] [--repeats 30] [--demo-epochs 8] [--json]
"""

import collections
import dataclasses
import os
import statistics
import tempfile
import time

from bench._common import Report, arguments

import numpy as np  # noqa: E402
from tensorboard.backend.event_processing import event_file_loader  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402

from demo.__main__ import main as demo_main  # noqa: E402
from demo.model import vgg_style  # noqa: E402
from tb_cnnviz import CNNViz
from tb_cnnviz.explanations import trust
from tb_cnnviz.storage import event  # noqa: E402
from tb_cnnviz.datasets import SHAPE_NAMES, shapes  # noqa: E402
from tb_cnnviz.capture.probe import Probe, ProbeSpec  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_with_cpu(fn):
    """(wall seconds, CPU seconds of the whole process) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def median_time(fn, repeats):
    fn()  # trace / warm up
    return statistics.median(timed(fn) for _ in range(repeats))


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


def breakdown(report, callback, probes, targets, repeats):
    """Milliseconds of each part of an event, and what each part of the probe adds."""
    probe = callback._recorder.probe

    def pack(result):
        return event.pack_event("train", result, callback._recorder.plan.header, callback._recorder.plan.labels,
                                 trust.event_metrics(result))

    result = probe(probes, targets)
    items = pack(result)
    steps = iter(range(10**6, 10**7))
    parts = {
        "probe tf.function": median_time(lambda: probe(probes, targets), repeats),
        "quantise + PNG-write the maps, build headers": median_time(
            lambda: pack(result), repeats),
        "write the summaries (one record) and flush": median_time(
            lambda: callback._writer.write(items, next(steps)), repeats),
    }
    report.say("where an event's time goes (medians):")
    for name, seconds in parts.items():
        report.say(f"  {name:50s} {seconds * 1e3:6.1f} ms")
    spec = probe.spec
    report.say("  of the probe function, removing one part at a time saves (median of A B pair differences):")
    for name, change in (
        ("activations", {"activation_channels": {}}), ("filter images", {"filter_channels": {}}),
    ):  # the statistics and the faithfulness pass are in every probe, the floor's too
        variant = Probe(callback.model, dataclasses.replace(spec, **change), probe.head)
        variant(probes, targets)  # trace
        saved = statistics.median(timed(lambda: probe(probes, targets)) - timed(lambda: variant(probes, targets))
                                  for _ in range(repeats))
        report.say(f"    {name:48s} {saved * 1e3:6.1f} ms")


def main():
    parser = arguments(__doc__)
    parser.add_argument("--probes", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--demo-epochs", type=int, default=8)
    args = parser.parse_args()
    report = Report(args.json)

    model = vgg_style(40)
    model.compile("adam", "sparse_categorical_crossentropy")
    probes, labels, _ = shapes(args.probes, size=40, seed=2)
    logdir = tempfile.mkdtemp(prefix="cnnviz_bench_")
    callback = CNNViz(logdir, probes, labels, class_names=SHAPE_NAMES, model=model)
    spec = callback._recorder.probe.spec
    floor_probe = Probe(model, ProbeSpec(gradcam_layer=spec.gradcam_layer, faithfulness_fraction=spec.faithfulness_fraction),
                        callback._recorder.probe.head)
    targets = np.full(len(probes), -1)

    steps = iter(range(10**6))
    floor_probe(probes, targets)
    callback.log(next(steps))  # traces both
    measured = [(timed_with_cpu(lambda: floor_probe(probes, targets)), timed_with_cpu(lambda: callback.log(next(steps))))
                for _ in range(args.repeats)]
    pairs = [(b[0], e[0]) for b, e in measured]
    untrained_size = logdir_bytes(logdir) / (args.repeats + 1)
    floor = statistics.median(b for b, _ in pairs)
    event = statistics.median(e for _, e in pairs)
    report.say(f"model: demo vgg_style 40x40, {len(callback._recorder.probe.convs)} conv layers, {args.probes} probes")
    report.say(f"floor (fused forward+backward, faithfulness pass) {floor * 1e3:.1f} ms, full event {event * 1e3:.1f} ms "
               f"(medians of {args.repeats} alternating pairs)")
    floor_cpu = statistics.median(b[1] for b, _ in measured)
    event_cpu = statistics.median(e[1] for _, e in measured)
    report.say(f"CPU time (all cores): floor {floor_cpu * 1e3:.1f} ms ({floor_cpu / floor:.2f} cores), event "
               f"{event_cpu * 1e3:.1f} ms ({event_cpu / event:.2f} cores); event / floor CPU time "
               f"{statistics.median(e[1] / b[1] for b, e in measured):.2f} (median of pair ratios)")
    breakdown(report, callback, probes, targets, args.repeats)
    report.figure("event / floor (forward+backward, faithfulness pass)", statistics.median(e / b for b, e in pairs), 3,
                  "event / floor ratio (median of pair ratios)")

    demo_dir = tempfile.mkdtemp(prefix="cnnviz_bench_demo_")
    demo_main(["--no-serve", "--logdir", demo_dir, "--epochs", str(args.demo_epochs), "--learning-rates", "0.002"])
    demo_sizes = bytes_per_step(os.path.join(demo_dir, "vgg_style_lr0.002"))
    for name, per_event in (
        ("KB per event, untrained model", untrained_size),
        (f"KB per event, demo run mean of {len(demo_sizes)}", statistics.mean(demo_sizes)),
        ("KB per event, demo run largest (the first)", max(demo_sizes)),
    ):
        report.figure(name, per_event / 1e3, 300, name)


if __name__ == "__main__":
    main()
