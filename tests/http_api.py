"""The one HTTP client of the tests and the benches for the plugin's routes, over a real
`tensorboard` (a base URL) or in process (a werkzeug test Client over TensorBoardWSGI), and the
one wait until a server lists runs and steps. Standard library only (numpy and Pillow are
imported when an answer is decoded)."""

import http.client
import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple

from tests.polling import wait_for

PREFIX = "/data/plugin/cnnviz"


class Answer(NamedTuple):
    """One answer: unpacks as (status, headers, body); headers read case-insensitively."""

    status: int
    headers: object
    body: bytes

    def json(self):
        return json.loads(self.body)

    def npy(self):
        return npy(self.body)

    def png(self):
        return png(self.body)

    def error(self, status):
        """The JSON error body of an answer that must be `status`; AssertionError otherwise."""
        assert self.status == status, (self.status, self.body[:300])
        assert self.headers["Content-Type"].startswith("application/json"), self.headers["Content-Type"]
        body = self.json()
        assert isinstance(body.get("error"), str) and body["error"], body
        return body


def npy(body):
    """The array of a .npy body."""
    import numpy as np

    return np.load(io.BytesIO(body), allow_pickle=False)


def png(body):
    """The pixels of a PNG body, as a uint8 array."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(body)))


def http_get(url, timeout=30) -> Answer:
    """(status, headers, body) of a GET on a new connection, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


class Api:
    """GETs of the plugin's routes from `target`: a server's base URL ("http://127.0.0.1:6006")
    or a werkzeug test Client of a TensorBoard app (tests/plugin_helpers.wsgi_client).

    keep_alive: over a real server, send every request on one connection, as a browser would
    (the benches time requests so); else each on a new one."""

    def __init__(self, target, timeout=30, keep_alive=False):
        self.target, self.timeout = target, timeout
        self.base = target if isinstance(target, str) else None
        self._connection = None
        if keep_alive and self.base:
            self._connection = http.client.HTTPConnection(urllib.parse.urlsplit(self.base).netloc, timeout=timeout)

    @staticmethod
    def path(route, **params) -> str:
        """The path of `route` ("event", "event?run=a", or a path from the server's root, "/data/...")
        with `params` added to its query."""
        path = route if route.startswith("/") else f"{PREFIX}/{route}"
        if params:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        return path

    def get(self, route, **params) -> Answer:
        path = self.path(route, **params)
        if self.base is None:
            response = self.target.get(path)
            return Answer(response.status_code, response.headers, response.get_data())
        if self._connection is None:
            return http_get(self.base + path, timeout=self.timeout)
        try:
            self._connection.request("GET", path)
            response = self._connection.getresponse()
        except (http.client.HTTPException, OSError):
            self._connection.close()  # the server dropped the idle connection: once more
            self._connection.request("GET", path)
            response = self._connection.getresponse()
        return Answer(response.status, response.headers, response.read())

    def ok(self, route, **params) -> Answer:
        """The answer, which must be 200."""
        answer = self.get(route, **params)
        assert answer.status == 200, (self.path(route, **params), answer.status, answer.body[:300])
        return answer

    def json(self, route, **params):
        return self.ok(route, **params).json()

    def timed(self, route, **params):
        """(seconds, body) of a GET that must answer 200 (RuntimeError otherwise): the benches' timing."""
        start = time.perf_counter()
        answer = self.get(route, **params)
        elapsed = time.perf_counter() - start
        if answer.status != 200:
            raise RuntimeError(f"GET {self.path(route, **params)}: {answer.status} {answer.body[:200]!r}")
        return elapsed, answer.body

    def runs(self) -> dict:
        """{run name: its entry in the `runs` route}; {} while the route does not answer 200."""
        answer = self.get("runs")
        return {run["run"]: run for run in answer.json()["runs"]} if answer.status == 200 else {}


def _has_steps(run, steps, mode):
    listed = run.get("steps", {}).get(mode, [])
    return steps is None or (len(listed) >= steps if isinstance(steps, int) else listed == list(steps))


def wait_for_runs(api, runs, steps=None, mode="train", timeout=120, every=0.25) -> dict:
    """Waits until `api`'s server lists `runs` with `steps`, and returns its listing
    ({run: entry}, as Api.runs). TensorBoard loads event files in the background, and its
    listing grows as it reloads; AssertionError after `timeout` seconds says what was listed.

    runs: run names, every one of which must be listed; a dict {run: steps} to give each its
    own steps; or an int, at least that many runs (each with `steps`).
    steps: of `mode`, in each of those runs: None (any, even none), an int (at least that many),
    or a list (exactly these)."""
    if isinstance(runs, int):
        def loaded(listing):
            return len(listing) >= runs and all(_has_steps(run, steps, mode) for run in listing.values())
        each = "any" if steps is None else f"at least {steps}" if isinstance(steps, int) else steps
        wanted = f"at least {runs} runs, each with {each} {mode} steps"
    else:
        expected = dict(runs) if isinstance(runs, dict) else dict.fromkeys(runs, steps)

        def loaded(listing):
            return all(name in listing and _has_steps(listing[name], want, mode) for name, want in expected.items())
        wanted = f"runs with these {mode} steps (None: any, a number: at least that many) {expected}"
    seen = {}

    def listed():
        seen["listing"] = api.runs()
        return (seen["listing"],) if loaded(seen["listing"]) else None

    def what():
        shown = {name: run.get("steps", {}).get(mode, run.get("error")) for name, run in seen.get("listing", {}).items()}
        return f"{api.base or 'the app'} to list {wanted}; it last listed {shown}"

    return wait_for(listed, timeout, what, every=every)[0]
