"""Shared by the server benches: generated cnnviz runs, a real `tensorboard` process, HTTP
timing and the output format (text, or one JSON line per headline figure for bench/run_all).
"""

import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PREFIX = "/data/plugin/cnnviz"


def write_run(run_dir, steps, probes=8, size=16, widths=(4,)):
    """A cnnviz run of `steps` train events: the real callback logs step 0, then the items of
    one real event (`CNNViz._event_items`) are written again at every later step, which costs
    a file write per step instead of a model pass. The defaults make a tiny model (2 conv
    layers of 4 channels) so that thousands of events stay cheap to write and to load."""
    import numpy as np

    from demo.model import vgg_style
    from tb_cnnviz import CNNViz
    from tb_cnnviz.datasets import SHAPE_NAMES, shapes

    images, labels, _ = shapes(probes, size=size, seed=1)
    callback = CNNViz(run_dir, images, labels, class_names=SHAPE_NAMES, model=vgg_style(size, widths=widths))
    callback.log(0)
    items = callback._event_items(callback._probe(images, np.full(probes, -1)), "train")
    for step in range(1, steps):
        callback._writer.write(items, step)
    callback._writer.close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


class Server:
    def __init__(self, base, process):
        self.base, self.process, self.started = base, process, time.perf_counter()

    def rss_mb(self):
        """Resident memory of tensorboard and its children (the Rust data server)."""
        pids, total = [self.process.pid], 0
        while pids:
            pid = pids.pop()
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/status") as status:
                    total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as children:
                        pids += [int(child) for child in children.read().split()]
        return total / 1024


@contextlib.contextmanager
def tensorboard(logdir, load_fast, keep=0):
    """A real `tensorboard` serving this checkout's plugin; yields a Server once it answers
    (the data may still be loading: see wait_loaded).

    keep: cnnviz steps kept per series, 0 for all (the plugin's default, made explicit). Only
    cnnviz is set: the image plugin passes its value on as `downsample`, where 0 lists nothing.
    """
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1",
               "--port", str(port), f"--load_fast={str(load_fast).lower()}",
               f"--samples_per_plugin=cnnviz={keep}"]
    log = open(os.path.join(os.path.dirname(logdir.rstrip("/")), f"tensorboard_{port}.log"), "wb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"tensorboard exited with {process.returncode}; see {log.name}")
            with contextlib.suppress(OSError, RuntimeError, http.client.HTTPException):
                if Client(server.base).json("/data/plugins_listing").get("cnnviz", {}).get("enabled"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"tensorboard did not list an active cnnviz plugin; see {log.name}")
            time.sleep(0.2)
        server.answering = time.perf_counter() - server.started
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


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
        """A figure that passes at or below `limit` (at or above it if `at_least`)."""
        value = float(value)  # numpy scalars are not JSON
        passed = value >= limit if at_least else value <= limit
        target = f"{'>=' if at_least else '<='} {limit:g}"
        if self.as_json:
            print(json.dumps({"name": name, "value": round(value, 3), "target": target, "pass": passed}), flush=True)
        self.say(f"{text}: {value:.2f}  (target {target}: {'PASS' if passed else 'FAIL'})")
