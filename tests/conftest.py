import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from tb_cnnviz.datasets import shapes  # noqa: E402
from tests.http_api import Api, wait_for_runs  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
# Fixtures that make a test slow or drive Chromium: its markers must say so (pytest.ini).
SLOW_FIXTURES = {"tensorboard_server", "server", "trained"}
BROWSER_FIXTURES = {"browser", "page"}


def pytest_collection_modifyitems(config, items):
    """Refuses a test that starts tensorboard, trains the shared model or drives Chromium without
    the `slow` or `browser` marker, so that `-m "not slow and not browser"` stays fast."""
    unmarked = []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixtures, marker in ((SLOW_FIXTURES, "slow"), (BROWSER_FIXTURES, "browser"), (BROWSER_FIXTURES, "slow")):
            if names & fixtures and item.get_closest_marker(marker) is None:
                unmarked.append(f"{item.nodeid} (uses {sorted(names & fixtures)}): mark it {marker}")
    if unmarked:
        raise pytest.UsageError("tests without the markers their fixtures need:\n  " + "\n  ".join(unmarked))


@pytest.fixture(scope="session")
def data():
    """(images, labels, masks): a small synthetic shapes set, 32x32 RGB, 4 classes."""
    return shapes(96, size=32, seed=3)


@pytest.fixture(scope="session")
def trained():
    """The demo's model trained once per test session (`helpers.train_shapes_model`: over seeds
    it learns the shapes and its maps pass deletion, the pointing game and the sanity check,
    bench/trust_seeds.py). Tests must not change its weights (sanity_check works on a copy)."""
    from tests.helpers import train_shapes_model

    return train_shapes_model(seed=0)


class Served(Api):
    """An Api on a started tensorboard (`server`: its tests/tensorboard_process.Server); leaving a
    `with` block of it stops the server."""

    def __init__(self, server, stop):
        super().__init__(server.base)
        self.server, self.stop = server, stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture(scope="module")
def tensorboard_server():
    """Starts real `tensorboard` processes (tests/tensorboard_process.py), each reloading its
    logdir every second: `tensorboard_server(logdir, load_fast=False, runs=None, steps=None,
    **options)` returns a `Served` Api once the server lists the cnnviz plugin and, if `runs` is
    given, those runs with `steps` (tests/http_api.wait_for_runs). Options: those of
    tensorboard_process.tensorboard. A server stops at the end of a `with` block of its Api, or
    when the module's tests are done."""
    from tests.tensorboard_process import tensorboard

    with contextlib.ExitStack() as servers:
        def start(logdir, load_fast=False, *, runs=None, steps=None, **options):
            stack = servers.enter_context(contextlib.ExitStack())
            api = Served(stack.enter_context(tensorboard(str(logdir), load_fast, reload_interval=1, **options)), stack.close)
            if runs is not None:
                wait_for_runs(api, runs, steps)
            return api

        yield start


@pytest.fixture(scope="module")
def server_logdir():
    """The logdir that `server` serves, and the runs to wait for ({run: steps}): a test module
    that uses `server` defines its own."""
    raise pytest.UsageError("a test module that uses the `server` fixture defines a `server_logdir` fixture")


@pytest.fixture(scope="module")
def server(tensorboard_server, server_logdir):
    """The test module's `server_logdir` served by a real tensorboard (the Python loader) once it
    lists every run of it: a `Served` Api (its `base`: the URL)."""
    logdir, runs = server_logdir
    return tensorboard_server(logdir, runs=runs)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e .[test]")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page of 1300x950; it records dialogs (`page.dialogs`) and must end without a
    script error (`page.errors`)."""
    context = browser.new_context(viewport={"width": 1300, "height": 950})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    assert page.errors == []
    context.close()
