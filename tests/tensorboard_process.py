"""A real `tensorboard` process serving this checkout's plugin on 127.0.0.1, for the tests and
the benches (bench/ imports this module; the tests start it through conftest's
`tensorboard_server` fixture). Standard library only."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time

from tests.http_api import Api, http_get
from tests.polling import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def checkout_env() -> dict:
    """This process's environment with this checkout first on PYTHONPATH: a child process imports
    this checkout's tb_cnnviz, whichever copy is installed."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A running tensorboard: `base` URL, `api` (tests/http_api.Api) on it, its `process`, and
    seconds from start to answering."""

    def __init__(self, base, process):
        self.base, self.process, self.started = base, process, time.perf_counter()
        self.api = Api(base)
        self.answering = None

    def rss_mb(self) -> float:
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
def tensorboard(logdir, load_fast, *, samples=None, logdir_spec=None, reload_interval=None, require_plugin=True,
                python=None):
    """Starts `tensorboard` and yields a Server once it lists the cnnviz plugin (the data may
    still be loading); stops it on exit. Its output goes to tensorboard_<port>.log beside logdir.

    samples: `--samples_per_plugin=cnnviz=N` (None: the plugin's default, every step);
    logdir_spec: serve `--logdir_spec NAME:logdir` instead of `--logdir logdir`;
    reload_interval: seconds between TensorBoard's reloads of the logdir;
    require_plugin: wait until the plugin is active (False for a logdir without cnnviz data);
    python: another environment's interpreter (a virtual environment's): its tensorboard serves
    the tb_cnnviz installed there, run outside this checkout and without its PYTHONPATH.
    """
    port = free_port()
    source = ["--logdir_spec", f"{logdir_spec}:{logdir}"] if logdir_spec else ["--logdir", logdir]
    command = [python or sys.executable, "-m", "tensorboard.main", *source, "--host", "127.0.0.1", "--port", str(port),
               f"--load_fast={'true' if load_fast else 'false'}"]
    if samples is not None:  # only cnnviz: the image plugin passes 0 on as `downsample`, which lists nothing
        command.append(f"--samples_per_plugin=cnnviz={samples}")
    if reload_interval is not None:
        command += ["--reload_interval", str(reload_interval)]
    log = open(os.path.join(os.path.dirname(logdir.rstrip("/")), f"tensorboard_{port}.log"), "wb")
    if python:  # the other environment's installed code
        env, cwd = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}, os.path.dirname(log.name)
    else:  # this checkout's code, whichever copy of tb_cnnviz is installed
        env, cwd = checkout_env(), ROOT
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    server = Server(f"http://127.0.0.1:{port}", process)

    def plugin_listed():
        if process.poll() is not None:
            raise RuntimeError(f"tensorboard exited with {process.returncode}; see {log.name}")
        with contextlib.suppress(OSError, ValueError):
            status, _, body = http_get(server.base + "/data/plugins_listing", timeout=5)
            listing = json.loads(body) if status == 200 else {}
            return "cnnviz" in listing and (listing["cnnviz"].get("enabled") or not require_plugin)
        return False

    try:
        wait_for(plugin_listed, 120, f"tensorboard to list {'an active' if require_plugin else 'the'} cnnviz plugin "
                 f"(its log: {log.name})", every=0.2)
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
