"""Shared by the benches: generated cnnviz runs, HTTP timing and the output format (text, or one
JSON line per headline figure for bench/run_all). A real `tensorboard` process is started by
tests/tensorboard_process.py, which the server benches import too.
"""

import argparse
import contextlib
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PREFIX = "/data/plugin/cnnviz"


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
    one real event (`format.pack_event`) are written again at every later step, which costs a
    file write per step instead of a model pass. The defaults make a tiny model (2 conv layers
    of 4 channels) so that thousands of events stay cheap to write and to load."""
    from demo.model import vgg_style
    from tb_cnnviz import CNNViz, format, trust
    from tb_cnnviz.datasets import SHAPE_NAMES, shapes

    images, labels, _ = shapes(probes, size=size, seed=1)
    callback = CNNViz(run_dir, images, labels, class_names=SHAPE_NAMES, model=vgg_style(size, widths=widths))
    callback.log(0)
    result = callback._probe(images, callback._plan.targets)
    items = format.pack_event("train", result, callback._plan.header, callback._plan.labels, trust.event_metrics(result))
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


class Client:
    """GETs on one keep-alive connection (as a browser would), each timed."""

    def __init__(self, base):
        self.connection = http.client.HTTPConnection(urllib.parse.urlsplit(base).netloc, timeout=120)

    def get(self, path):
        """(seconds, body); raises on any status but 200."""
        start = time.perf_counter()
        try:
            self.connection.request("GET", path)
            response = self.connection.getresponse()
            body = response.read()
        except (http.client.HTTPException, OSError):
            self.connection.close()  # the server dropped the idle connection: once more
            self.connection.request("GET", path)
            response = self.connection.getresponse()
            body = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return elapsed, body

    def json(self, path):
        return json.loads(self.get(path)[1])


def wait_loaded(client, runs, steps, every=0.25, timeout=3600):
    """Polls cnnviz `runs` until it lists `runs` runs with `steps` train steps each."""
    deadline = time.perf_counter() + timeout
    while True:
        with contextlib.suppress(RuntimeError):
            listed = client.json(f"{PREFIX}/runs")["runs"]
            if len(listed) >= runs and all(len(r.get("steps", {}).get("train", [])) >= steps for r in listed):
                return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"data not loaded after {timeout} s")
        time.sleep(every)


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
