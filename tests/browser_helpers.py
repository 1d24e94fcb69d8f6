"""Reading the CNN Viz tab in Chromium (Playwright), for the browser tests: conftest's `browser`
and `page` fixtures give the page."""

import urllib.parse

import numpy as np


def open_tab(page, base, **state):
    """The tab of the server at `base` (its URL, or an Api on it) loaded afresh with `state` in
    its URL. A page that differs only in its hash is not
    reloaded, and the old tab would answer wait_ready for the same view and step (a diverged
    run's captions were once read from the run shown before it)."""
    base = getattr(base, "base", base)
    hash_ = "".join(f"&cv-{k}={urllib.parse.quote(str(v))}" for k, v in state.items())
    page.goto("about:blank")
    page.goto(f"{base}/#cnnviz{hash_}")
    return page.frame_locator("iframe")


def frame_of(page):
    return next(f for f in page.frames if f.url.endswith("plugin_entry.html?name=cnnviz"))


def wait_ready(frame, view, step=None):
    """Waits until the tab says it has drawn `view` (at `step`, if given)."""
    selector = f"main[data-ready='{view}:{step}']" if step is not None else f"main[data-ready^='{view}:']"
    frame.locator(selector).wait_for(timeout=60000)


def canvas_rgba(page, selector):
    """The drawn pixels of a canvas, (h, w, 4) uint8."""
    drawn = frame_of(page).eval_on_selector(
        selector, "c => ({w: c.width, h: c.height, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)})")
    return np.asarray(drawn["data"], np.uint8).reshape(drawn["h"], drawn["w"], 4)
