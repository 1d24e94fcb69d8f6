"""Route fuzzing: thousands of generated requests per route against a real `tensorboard`.

For every data route of the plugin, plus its static files and random paths under
/data/plugin/cnnviz/, sends --per-route seeded random requests: values of the served runs
mixed with boundary numbers, empty and 10k-character values, unicode, malformed
percent-encoding, path traversal, markup, values valid at another step of the run, and repeated,
unknown and missing parameters. They go out over raw sockets, so malformed bytes reach the server
exactly as generated. The runs are test_plugin's two, a segmentation run and one whose model
changed between events (a layer narrowed, one added, more probes: tests/changed_models.py).
Every answer must
  - be 200, 400 or 404 (never 500) and come in time; a request made only of valid values (those
    the step asked of holds), 200;
  - on error, be JSON with an "error" field (TensorBoard's own text/plain "Not found" is
    accepted only for paths that are no plugin route);
  - be a whole answer of the promised kind: JSON without a raw <, > or & (the plugin escapes
    them, so no input comes back as markup), a PNG, a float32 .npy, or a static file's exact
    bytes, so that no other body can carry a reflected input.
Afterwards the runs list, an event and a Grad-CAM .npy must answer the same bytes as before.

    python3 -m bench.fuzz_routes [--per-route 1000] [--seed 0] [--load-fast both|true|false]
                                [--threads 4] [--json]
"""

import collections
import concurrent.futures
import http.client
import io
import json
import os
import random
import re
import socket
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from bench._common import arguments  # noqa: E402
from tests.http_api import PREFIX, wait_for_runs  # noqa: E402
from tests.changed_models import FUZZED, write_changed_run  # noqa: E402
from tests.plugin_helpers import logged_steps, write_logs, write_segmentation_run  # noqa: E402
from tests.tensorboard_process import tensorboard  # noqa: E402

STEP = ("run", "mode", "step")
ROUTES = {
    "runs": (),
    "event": STEP,
    "probe": ("run", "sample"),
    "probes.npy": ("run", "sample"),
    "gradcam": STEP + ("method", "sample"),
    "gradcam.npy": STEP + ("method", "sample"),
    "mask": STEP + ("sample",),
    "mask.npy": STEP + ("sample",),
    "activations": STEP + ("layer", "sample", "channel"),
    "activations.npy": STEP + ("layer", "sample", "channel"),
    "filters": STEP + ("layer", "channel"),
    "filters.npy": STEP + ("layer", "channel"),
    "stats": STEP + ("layer",),
    "stats.npy": STEP + ("layer",),
    "filter_drift": ("run", "mode", "layer", "stat"),
    "filter_drift.npy": ("run", "mode", "layer", "stat"),
    "faithfulness": ("run", "mode"),
    "metrics": ("run", "mode"),
    "metrics.npy": ("run", "mode", "name"),
    "object": ("run", "sample"),
    "top_examples": STEP + ("layer", "channel"),
    "top_examples.npy": STEP + ("layer", "channel"),
    "top_examples.png": STEP + ("layer", "channel"),
    "feature_vis": STEP + ("layer", "channel"),
    "feature_vis.npy": STEP + ("layer", "channel"),
    "layer_summary": ("run", "mode"),
    "filter_stats": ("run", "mode", "layer", "channel"),
    "filter_stats.npy": ("run", "mode", "layer", "channel"),
}
PNG_ROUTES = {"probe", "gradcam", "mask", "activations", "filters", "object", "top_examples.png", "feature_vis"}
KINDS = {"application/json": "json", "application/octet-stream": "npy", "image/png": "png"}
LAYER_LISTS = {"filters": "filter_channels", "stats": "conv_layers", "filter_drift": "conv_layers",
               "filter_stats": "conv_layers", "feature_vis": "feature_vis"}
PARAMS = sorted({name for names in ROUTES.values() for name in names})
METHODS = ["gradcam", "gradcam++", "gradcam_pp"]
STATIC, PATHS = "static files", "other paths"
MAX_TARGET = 60_000  # http.server answers 414 (HTML) to request lines over 64 KiB
TIMEOUT = 60
COLUMNS = ["200", "400", "404", "404 TB", "500", "other"]  # 404 TB: TensorBoard's own text/plain 404

NUMBERS = ["0", "-1", "-0", "1", str(2**31 - 1), str(2**31), str(2**63), str(2**64), "1" + "0" * 400,
           "007", "0000000000000000004", "999999999999999", "9999999999999999", "1e3", " 1", "1 ",
           "+1", "0x1", "1.0", "4.", ".5", "1_0", "１", "٤", "NaN", "inf", "-inf", "2,4", "4/"]
TEXT = ["", " ", "\t", "\x00", "\x7f", "alpha\x00", "\u202eahpla", "\u05d0\u05dc\u05e4\u05d0", "مرحبا",
        "😀", "👨‍👩‍👧", "\ud800", "\udfff", "\ufeff", "e\u0301", "\uffff", "\U0010ffff", "ß", "İ",
        "../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/passwd", "alpha/../beta", "./alpha",
        "alpha/", "/", ".", "..", "~", "<script>alert(1)</script>", '"onerror=alert(1)',
        "' onerror='alert(1)", "javascript:alert(1)", "<img src=x onerror=alert(1)>", "</script>",
        "&lt;", "{{7*7}}", "${7*7}", "%s%s%n", "'; DROP TABLE runs;--", "null", "None", "true",
        "[]", "{}", "\r\nSet-Cookie: x=1", "gradcam+", "train\n", "constructor", "__proto__"]
# Sent as is. Raw bytes avoid 0x85 and 0xA0: http.server (Latin-1) splits the request line at them
# and answers its own HTML 400 before TensorBoard sees the request.
RAW = [b"%", b"%%", b"%zz", b"%0", b"%00", b"%ED%A0%80", b"%ED%BF%BF", b"%C0%AE%C0%AE%2F",
       b"%2e%2e%2f%2e%2e%2fetc%2fpasswd", b"%252e%252e%252f", b"%FF%FE", b"%E2%80%AE",
       b"%F0%9F%98%80", b"%F0%9F", b"%u0041", b"+", b"++", b"a+b", b"&", b"=", b"==", b"&=&",
       b";", b"%26", b"%3D", b"%3Cscript%3Ealert(1)%3C%2Fscript%3E", b"<script>alert(1)</script>",
       b'"onerror=alert(1)', b"javascript:alert(1)", b"\xff\xfe", b"\xc3\x28", b"\xed\xb0\x80",
       b"\xf0\x9f\x98\x80", b"#", b"?", b"alpha#x", b"alpha?x", b"%61%6C%70%68%61"]
LONG = ["x" * 10_000, "9" * 10_000, "../" * 3_334, "<" * 10_000, "😀" * 1_000, "\u202e" * 2_000, "a&" * 5_000]
NAMES = ["foo", "Run", "RUN", "run ", " run", "run[]", "run.x", "__proto__", "callback", "_", "",
         "step\x00", "<script>", "😀", "\u202erun", "a" * 2_000]
RAW_NAMES = [b"%72%75%6E", b"ru%6E", b"run%00", b"%", b"%ED%A0%80", b"run%5B%5D", b"&", b"=x"]
JUNK = [b"&", b"&&", b"=", b"#frag", b";", b"&=", b"?", b"%"]
HEADS = [b"/data/plugin/cnnviz/", b"/data/plugin/cnnviz", b"/data/plugin/cnnviz//",
         b"/data/plugin/CNNVIZ/", b"/data/plugin/cnnviz%2f", b"/data/plugin/cnnviz/./",
         b"/data/plugin//cnnviz/", b"http://127.0.0.1/data/plugin/cnnviz/", b"/experiment/%00/data/plugin/cnnviz/"]
EXPERIMENTS = [b"", b"x", b"123", b"%00", b"%22", b'"', b"%5C", b"%0A", b"%C3%A9", b"\xc3\xa9", b"%ED%A0%80",
               b"..", b"%2e%2e", b"%3Cscript%3E", b"a" * 1000]
TAILS = [b"", b"/", b"..", b"../..", b"../../", b"../../../../etc/passwd", b"%2e%2e/%2e%2e/etc/passwd",
         b"..%2F..%2Fetc%2Fpasswd", b"%2e%2e%2f%2e%2e%2f", b"..;/index.js", b"%2e%2e%5c%2e%2e%5cwin.ini",
         b"..\\..\\", b"frontend/index.js", b"__init__.py", b"plugin.py", b"../../../tb_cnnviz/plugin.py",
         b"event.npy", b"probe.npy", b"gradcam.png", b"runs.json", b"%", b"%zz", b"%ED%A0%80",
         b"%F0%9F%98%80", b"\xff", b"<script>alert(1)</script>", b"%3Cscript%3Ealert(1)%3C%2Fscript%3E",
         b"a/" * 3_000]
SUFFIXES = [b"/", b"//", b"/..", b"/../..", b"/.", b"%00", b"%00.png", b"%2500", b".map", b";x=1",
            b"%3Frun=alpha", b"%23x", b"%2F..%2F..", b"/../../../../etc/passwd", b"~", b".bak",
            b"%20", b"%ED%A0%80", b"\xc3\xa9"]
PREFIXES = [b"", b"", b"../", b"%2e%2e%2f", b"./", b".%2f", b"/"]

Job = collections.namedtuple("Job", "group expect target valid")


def _every_byte(data):
    return b"".join(b"%%%02X" % b for b in data)


def _raw(data):
    """Percent-encodes only what would end or split the request line; the rest goes raw."""
    return b"".join(bytes([b]) if 0x20 < b < 0x7F or (b >= 0x80 and b not in (0x85, 0xA0))
                    else b"%%%02X" % b for b in data)


def _kind(route):
    return "npy" if route.endswith(".npy") else "png" if route in PNG_ROUTES else "json"


def _step_layers(event, kind):
    """{layer: header} of the summaries of `kind` that a step's `event` answer holds (not the
    layers of the run header that it lacks: a run whose model changed between events)."""
    return {layer: header for layer, header in event.get(kind, {}).items() if "error" not in header}


class Requests:
    """Seeded request targets over the runs a server lists; `events` holds each step's `event`
    answer {(run, mode, step): answer}, which says what a valid request may ask of that step."""

    def __init__(self, seed, runs, static, events):
        self.rng = random.Random(seed)
        self.runs = {r["run"]: r for r in runs if "error" not in r}
        self.static, self.events = static, events
        pool = {"train", "eval", *METHODS, *static}
        for run, info in self.runs.items():
            pool.update([run, *info["layers"], *info["stat_names"], *map(str, range(info["samples"]))])
            pool.update(str(s) for steps in info["steps"].values() for s in steps)
            pool.update(str(c) for key in ("channels", "filter_channels")
                        for channels in info[key].values() for c in channels)
        self.pool = sorted(pool)

    def encode(self, text):
        """Mostly proper encoding; also every byte escaped, '+' for space, and raw UTF-8."""
        data, roll = text.encode("utf-8", "surrogatepass"), self.rng.random()
        if roll < 0.5:
            return urllib.parse.quote(data, safe="").encode()
        if roll < 0.6:
            return urllib.parse.quote_plus(data, safe="").encode()
        if roll < 0.7:
            return _every_byte(data)
        return _raw(data)

    def _at_step(self, base, run, mode, step):
        """{layer: its channels} that a valid request of route `base` may name at a step: those
        the step holds (a run's model may have changed since), for a route over steps the run's."""
        info, event = self.runs[run], self.events[(run, mode, step)]
        if base in ("activations", "filters", "feature_vis"):
            return {layer: header["channels"] for layer, header in _step_layers(event, base).items()}
        if base == "top_examples":  # those of the run's current probes or reference images
            return {layer: list(range(header["first"], header["first"] + header["filters"]))
                    for layer, header in _step_layers(event, base).items()
                    if header.get("digest") == info["top_examples"]["digest"]}
        if base == "stats":  # a conv layer the step's model had: not one it lacks, but one only it had
            lacking = {layer for kind in ("activations", "filters") for layer, header in event[kind].items()
                       if "error" in header}
            return {layer: [0] for layer in [*info["conv_layers"], *_step_layers(event, "filters")]
                    if layer not in lacking}
        # a layer with statistics only (not logged) has no channels: any filter of it is valid
        return {layer: info["channels"].get(layer, [0]) for layer in info[LAYER_LISTS.get(base, "layers")]}

    def valid(self, route, of_run=None):
        """{name: value} a correct client could send for `route` (to run `of_run`, if it can)."""
        rng, base = self.rng, route.split(".")[0]
        candidates = [(run, mode, step) for run, info in sorted(self.runs.items())  # masks: a segmentation run's
                      if (not route.startswith("mask") or info.get("head") == "segmentation")
                      and (route != "object" or info.get("truth"))  # objects: a run given them
                      for mode, steps in info["steps"].items() for step in steps
                      if self._at_step(base, run, mode, step)]  # feature vis: at every filters_every-th event
        run, mode, step = rng.choice([c for c in candidates if c[0] == of_run] or candidates)
        info, layers = self.runs[run], self._at_step(base, run, mode, step)
        layer = rng.choice(sorted(layers))
        probes = self.events[(run, mode, step)].get("gradcam", {}).get("shape", [info["samples"]])[0]  # the step's
        samples = info["samples"] if route in ("probe", "probes.npy", "object") else probes
        return {"run": run, "mode": mode, "step": str(step), "sample": str(rng.randrange(samples)), "layer": layer,
                "channel": str(rng.choice(layers[layer])), "method": rng.choice(METHODS),
                "stat": rng.choice(info["stat_names"]), "name": rng.choice(info["metric_names"])}

    def mutate(self, value):
        rng = self.rng
        return rng.choice([value + rng.choice(TEXT), rng.choice(TEXT) + value, value.upper(), value * 2,
                           "0" + value, value + "0", "-" + value, value[:-1], "../" + value, value + "/"])

    def fuzz(self, good):
        """A value for a parameter whose valid value is `good`."""
        rng, roll = self.rng, self.rng.random()
        if roll < 0.15:
            return self.encode(rng.choice(self.pool))
        if roll < 0.3:
            return self.encode(self.mutate(good))
        if roll < 0.5:
            return self.encode(rng.choice(NUMBERS))
        if roll < 0.75:
            return self.encode(rng.choice(TEXT))
        if roll < 0.9:
            return rng.choice(RAW)
        if roll < 0.96:
            return self.encode(rng.choice(LONG))
        return b""

    def name(self):
        roll = self.rng.random()
        if roll < 0.4:
            return self.rng.choice(PARAMS).encode()
        if roll < 0.8:
            return self.encode(self.rng.choice(NAMES))
        return self.rng.choice(RAW_NAMES)

    def query(self, route):
        """(raw query, whether it holds only valid values, each once)."""
        rng, names, good = self.rng, ROUTES[route], self.valid(route)
        # values valid at another step of the run: its model may have had other layers, filters, probes
        elsewhere = self.valid(route, good["run"])
        roll = rng.random()  # fuzz no parameter, one, or each with probability 1/2
        fuzzed = (set() if roll < 0.25 else {rng.choice(names)} if roll < 0.6 and names
                  else {n for n in names if rng.random() < 0.5})
        pairs = []
        for name in names:
            value = good[name].encode()
            value = urllib.parse.quote(value, safe="").encode() if rng.random() < 0.9 else _every_byte(value)
            if name in fuzzed:
                value = self.encode(elsewhere[name]) if rng.random() < 0.2 else self.fuzz(good[name])
            pairs.append([name.encode(), value])
        valid = not fuzzed
        if pairs and rng.random() < 0.1:  # missing
            del pairs[rng.randrange(len(pairs))]
            valid = False
        if pairs and rng.random() < 0.1:  # repeated
            name, value = rng.choice(pairs)
            pairs.append([name, rng.choice([value, self.fuzz(rng.choice(self.pool))])])
            valid = False
        chance = 0.8 if not names else 0.15
        while rng.random() < chance:  # unknown or foreign
            pairs.append([self.name(), self.fuzz(rng.choice(self.pool))])
            chance, valid = chance / 2, False
        if rng.random() < 0.1:
            rng.shuffle(pairs)
        if pairs and rng.random() < 0.03:  # a name without "="
            pairs[rng.randrange(len(pairs))][1] = None
            valid = False
        query = b"&".join(n if v is None else n + b"=" + v for n, v in pairs)
        if rng.random() < 0.05:
            query, valid = query + rng.choice(JUNK), False
        return query, valid

    def job(self, group):
        """One Job of `group`: a route name, STATIC or PATHS."""
        rng = self.rng
        if group == PATHS:
            roll = rng.random()
            if roll < 0.4:
                tail = rng.choice(TAILS)
            elif roll < 0.8:
                tail = rng.choice(PREFIXES) + rng.choice(list(ROUTES) + self.static).encode() + rng.choice(SUFFIXES)
            else:
                tail = self.encode(rng.choice(TEXT + LONG + self.pool))
            target = rng.choice(HEADS) + tail
            if rng.random() < 0.5:
                target += b"?" + self.query(rng.choice(list(ROUTES)))[0]
            return Job(group, None, target, False)
        route = rng.choice(self.static) if group == STATIC else group
        query, valid = self.query(rng.choice(list(ROUTES)) if group == STATIC else route)
        target = f"{PREFIX}/{route}".encode()
        if rng.random() < 0.05:  # TensorBoard strips this prefix and passes the id on to the plugin
            target, valid = b"/experiment/" + rng.choice(EXPERIMENTS) + target, False
        if query or rng.random() < 0.3:
            target += b"?" + query
        if group == STATIC:  # whatever the query and experiment: still the file
            return Job(group, route, target, True)
        return Job(group, _kind(route), target, valid)

    def jobs(self, per_route):
        jobs = []
        for group in [*ROUTES, STATIC, PATHS]:
            count = 0
            while count < per_route:
                job = self.job(group)
                if len(job.target) <= MAX_TARGET:
                    jobs.append(job)
                    count += 1
        return jobs


def send(port, target):
    """(status, headers, body) of a GET of the raw request target."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(sock, method="GET")
        response.begin()
        return response.status, response.headers, response.read()


def _no_constant(name):
    raise ValueError(f"{name} in JSON")


def problem(job, status, headers, body, static):
    """Why an answer is wrong, or None."""
    content_type = headers.get("Content-Type", "").split(";")[0]
    if status not in (200, 400, 404):
        return f"status {status}"
    if headers.get("X-Content-Type-Options") != "nosniff":
        return "no X-Content-Type-Options: nosniff"
    if job.valid and status != 200:
        return f"a valid request got {status}"
    if job.group == PATHS and status == 404 and content_type == "text/plain" and body == b"Not found":
        return None  # TensorBoard's own answer to a path that is no route
    expect = "json" if status != 200 else job.expect or KINDS.get(content_type) or next(
        (name for name, text in static.items() if text == body), content_type)
    if expect in static:
        ok = body == static[expect] and content_type in ("text/javascript", "text/css")
        return None if ok else f"{expect} answered {content_type!r} {body[:40]!r}"
    if expect == "json":
        if content_type != "application/json":
            return f"{status} answered as {content_type!r}"
        try:
            data = json.loads(body, parse_constant=_no_constant)
        except ValueError as error:
            return f"unparseable JSON: {error}"
        if re.search(rb"[<>&]", body):
            return "raw <, > or & in JSON"
        if status != 200 and not (isinstance(data, dict) and isinstance(data.get("error"), str)):
            return "error without an 'error' text"
        return None
    if expect == "npy":
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except ValueError as error:
            return f"unreadable .npy: {error}"
        return None if content_type == "application/octet-stream" and array.dtype == np.float32 else "bad .npy"
    if expect == "png":
        ok = content_type == "image/png" and body.startswith(b"\x89PNG\r\n\x1a\n") and body.endswith(b"IEND\xaeB`\x82")
        return None if ok else "not a whole PNG"
    return f"200 answered as {content_type!r}"


def _outcome(job, port, static):
    """(answer kind for the table, problem or None, seconds)."""
    start = time.perf_counter()
    try:
        status, headers, body = send(port, job.target)
    except (OSError, http.client.HTTPException) as error:
        return "other", f"no answer: {error!r}", time.perf_counter() - start
    seconds = time.perf_counter() - start
    kind = "404 TB" if status == 404 and headers.get("Content-Type", "").startswith("text/plain") else str(status)
    return kind if kind in COLUMNS else "other", problem(job, status, headers, body, static), seconds



def _events(port, runs):
    """{(run, mode, step): its `event` answer} of every step: what a valid request may ask of it
    (a run whose model changed between events holds other layers, channels and probes at each)."""
    events = {}
    for run in (r for r in runs if "error" not in r):
        for mode, steps in run["steps"].items():
            for step in steps:
                query = urllib.parse.urlencode({"run": run["run"], "mode": mode, "step": step})
                events[(run["run"], mode, step)] = json.loads(send(port, f"{PREFIX}/event?{query}".encode())[2])
    return events


def fuzz_server(base, per_route=1000, seed=0, threads=4):
    """Fuzzes the server at `base`; returns a report dict (see `table`)."""
    port = int(base.rsplit(":", 1)[1])
    runs = json.loads(send(port, f"{PREFIX}/runs".encode())[2])["runs"]
    names = sorted(n for n in os.listdir(os.path.join(ROOT, "frontend")) if n.endswith((".js", ".css")))
    static = {name: send(port, f"{PREFIX}/{name}".encode())[2] for name in names}
    requests = Requests(seed, runs, names, _events(port, runs))
    run = next(r for r in runs if r.get("steps", {}).get("train"))
    query = urllib.parse.urlencode({"run": run["run"], "step": run["steps"]["train"][-1]})
    known = [f"{PREFIX}/runs", f"{PREFIX}/event?{query}", f"{PREFIX}/gradcam.npy?{query}"]
    before = [send(port, t.encode())[::2] for t in known]
    jobs = requests.jobs(per_route)
    counts, failures, slowest = collections.defaultdict(collections.Counter), [], collections.Counter()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for job, (kind, reason, seconds) in zip(jobs, pool.map(lambda j: _outcome(j, port, static), jobs)):
            counts[job.group][kind] += 1
            slowest[job.group] = max(slowest[job.group], seconds)
            if reason:
                failures.append((job.group, job.target, reason))
    elapsed = time.perf_counter() - start
    after = [send(port, t.encode())[::2] for t in known]
    unhealthy = [t for t, b, a in zip(known, before, after) if b[0] != 200 or a != b]
    return {"counts": counts, "failures": failures, "slowest": slowest, "seconds": elapsed,
            "requests": len(jobs), "unhealthy": unhealthy, "runs": [r["run"] for r in runs]}


def table(report, title, out=sys.stdout):
    """Prints the per-route table and the first failures."""
    failed = collections.Counter(group for group, _, _ in report["failures"])
    print(f"\n{title}: {report['requests']} requests in {report['seconds']:.1f} s "
          f"({report['requests'] / report['seconds']:.0f}/s)", file=out)
    print(f"| route | requests | {' | '.join(COLUMNS)} | failures | slowest ms |", file=out)
    print("|---" * (len(COLUMNS) + 4) + "|", file=out)
    total = collections.Counter()
    for group, counts in report["counts"].items():
        total.update(counts)
        cells = " | ".join(str(counts[c]) for c in COLUMNS)
        print(f"| {group} | {sum(counts.values())} | {cells} | {failed[group]} | "
              f"{report['slowest'][group] * 1000:.0f} |", file=out)
    cells = " | ".join(str(total[c]) for c in COLUMNS)
    print(f"| total | {sum(total.values())} | {cells} | {len(report['failures'])} | |", file=out)
    for group, target, reason in report["failures"][:10]:
        print(f"FAIL {group}: {reason}: {target[:300]!r}", file=out)
    print("server afterwards: " + (f"UNHEALTHY at {report['unhealthy']}" if report["unhealthy"] else
                                   "healthy (runs, an event and a Grad-CAM .npy answer the same bytes as before)"),
          file=out)


def main():
    parser = arguments(__doc__)
    parser.add_argument("--per-route", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--load-fast", choices=["both", "true", "false"], default="both")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    modes = {"both": [False, True], "true": [True], "false": [False]}[args.load_fast]
    reports = []
    with tempfile.TemporaryDirectory() as root:
        logdir = os.path.join(root, "logs")
        write_logs(logdir)
        write_segmentation_run(os.path.join(logdir, "gamma"))
        write_changed_run(os.path.join(logdir, "delta"), FUZZED)  # a model changed between events
        for load_fast in modes:
            with tensorboard(logdir, load_fast, reload_interval=1) as server:
                wait_for_runs(server.api, logged_steps(logdir))
                report = fuzz_server(server.base, args.per_route, args.seed, args.threads)
            table(report, f"--load_fast={str(load_fast).lower()}", sys.stderr if args.json else sys.stdout)
            reports.append(report)
    fewest = min(min(sum(c.values()) for c in r["counts"].values()) for r in reports)
    errors = sum(r["counts"][g]["500"] for r in reports for g in r["counts"])
    failures = sum(len(r["failures"]) for r in reports)
    healthy = all(not r["unhealthy"] and r["runs"] == ["alpha", "beta", "delta", "gamma"] for r in reports)
    figures = [
        {"name": "fuzz requests", "value": sum(r["requests"] for r in reports),
         "target": f">= {args.per_route} per route", "pass": fewest >= args.per_route},
        {"name": "fuzz 500s", "value": errors, "target": "== 0", "pass": errors == 0},
        {"name": "fuzz failures", "value": failures, "target": "== 0", "pass": failures == 0},
        {"name": "fuzz server healthy afterwards", "value": healthy, "target": "true", "pass": healthy},
    ]
    passed = all(f["pass"] for f in figures)
    if args.json:
        for figure in figures:
            print(json.dumps(figure))
    else:
        print(f"\n{'PASS' if passed else 'FAIL'}: {figures[0]['value']} requests, {errors} answered 500, "
              f"{failures} failures, server {'healthy' if healthy else 'UNHEALTHY'} afterwards")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
