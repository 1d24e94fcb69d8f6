"""Shared by the benches: generated cnnviz runs, median event times and the output format (text,
or one JSON line per headline figure for bench/run_all). The HTTP client and the wait until a
server lists runs are the tests' (tests/http_api.py: `Api(base, keep_alive=True).timed(path)`,
`wait_for_runs`), and so is the real `tensorboard` process (tests/tensorboard_process.py).
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def arguments(doc):
    """The argument parser of a bench script: described by its docstring's first line, with
    the --json that bench/run_all.py passes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--json", action="store_true",
                        help="one JSON line per headline figure on stdout, the details on stderr")
    return parser


def seed_arguments(doc):
    """(arguments, Report) of a bench script that trains over seeds: --seeds (default 0-4), --json."""
    parser = arguments(doc)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    return args, Report(args.json)


def median_seconds(function, repeats):
    """Median seconds of `repeats` calls of `function()`, after one that traces and compiles."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_event_seconds(callback, repeats, mode="train"):
    """Median seconds of `repeats` events of `callback` (a CNNViz with its model), after one
    that traces its functions."""
    callback.log(0, mode)
    times = []
    for step in range(1, repeats + 1):
        start = time.perf_counter()
        callback.log(step, mode)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_run(run_dir, steps, probes=8, size=16, widths=(4,)):
    """A cnnviz run of `steps` train events: the real callback logs step 0, then the items of
    one real event (`event.pack_event`) are written again at every later step, which costs a
    file write per step instead of a model pass. The defaults make a tiny model (2 conv layers
    of 4 channels) so that thousands of events stay cheap to write and to load."""
    from demo.model import vgg_style
    from tb_cnnviz import CNNViz
    from tb_cnnviz.explanations import trust
    from tb_cnnviz.storage import event
    from tb_cnnviz.datasets import SHAPE_NAMES, shapes

    images, labels, _ = shapes(probes, size=size, seed=1)
    callback = CNNViz(run_dir, images, labels, class_names=SHAPE_NAMES, model=vgg_style(size, widths=widths))
    callback.log(0)
    result = callback._recorder.probe(images, callback._recorder.plan.targets)
    items = event.pack_event("train", result, callback._recorder.plan.header, callback._recorder.plan.labels, trust.event_metrics(result))
    for step in range(1, steps):
        callback._writer.write(items, step)
    callback._writer.close()


class DemoTraining:
    """The demo model (demo/model.py vgg_style, 40x40) with a CNNViz of default options on 8
    probes, and 512 training images to take train steps on between events."""

    def __init__(self, logdir):
        from demo.model import vgg_style
        from tb_cnnviz import CNNViz
        from tb_cnnviz.datasets import SHAPE_NAMES, shapes

        self.model = vgg_style(40)
        self.model.compile("adam", "sparse_categorical_crossentropy")
        self.images, self.labels, _ = shapes(512, size=40, seed=1)
        probes, probe_labels, _ = shapes(8, size=40, seed=2)
        self.callback = CNNViz(logdir, probes, probe_labels, class_names=SHAPE_NAMES, model=self.model)

    def train_step(self, index):
        """One train_on_batch on the index-th batch of 32 images (cycling)."""
        start = index * 32 % len(self.images)
        self.model.train_on_batch(self.images[start:start + 32], self.labels[start:start + 32])


def p50(values):
    return statistics.median(values)


def p90(values):
    return statistics.quantiles(values, n=10)[-1]


class Report:
    """Headline figures against their targets: a line of text each, or with --json one JSON
    line each on stdout (details then go to stderr)."""

    def __init__(self, as_json):
        self.as_json = as_json

    def say(self, text=""):
        print(text, file=sys.stderr if self.as_json else sys.stdout, flush=True)

    def figure(self, name, value, limit, text, at_least=False):
        """A figure that passes at or below `limit` (at or above it if `at_least`); with no
        limit, a measurement that has no target."""
        value = float(value)  # numpy scalars are not JSON
        if limit is None:
            passed, target, verdict = None, "-", "measured, no target"
        else:
            passed = value >= limit if at_least else value <= limit
            target = f"{'>=' if at_least else '<='} {limit:g}"
            verdict = f"target {target}: {'PASS' if passed else 'FAIL'}"
        if self.as_json:
            print(json.dumps({"name": name, "value": round(value, 3), "target": target, "pass": passed}), flush=True)
        self.say(f"{text}: {value:.2f}  ({verdict})")
