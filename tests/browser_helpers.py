"""Reading the CNN Viz tab in Chromium (Playwright), for the browser tests: conftest's `browser`
and `page` fixtures give the page."""

import re
import urllib.parse

import numpy as np

# what a panel or card section says when the tab itself failed (api.js errorText), not the plugin
TAB_FAULT = re.compile(r"^(TypeError|RangeError|ReferenceError|SyntaxError|Error|InternalError)\b")
NOT_FOUND = "Failed to load resource: the server responded with a status of 404"


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


CANVASES_JS = """nodes => nodes.map(c => {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, colours = new Set();
    let opaque = 0;
    for (let i = 0; i < data.length && colours.size < 3; i += 4) {
        if (data[i + 3] > 0) { opaque += 1; colours.add(data.slice(i, i + 4).join()); }
    }
    const box = c.getBoundingClientRect();
    return { size: [c.width, c.height], shown: [box.width, box.height], drawn: opaque > 0, colours: colours.size };
})"""


def canvases(page, selector):
    """Per canvas matching `selector` in the tab: its size, its size on screen, whether anything
    is drawn on it (an undrawn canvas is transparent) and how many colours (up to 3) it has."""
    return frame_of(page).eval_on_selector_all(selector, CANVASES_JS)


def assert_drawn(page, selector, count, what, varied="each"):
    """`count` canvases match `selector` (at least one if None), each shown on screen with something
    drawn, in more than one colour: `varied` "each", "any" (one of them at least) or None (no
    matter: an outline is drawn in one colour)."""
    found = canvases(page, selector)
    assert found and (count is None or len(found) == count), f"{what}: {len(found)} canvases {selector}, expected {count}"
    for index, canvas in enumerate(found):
        assert min(canvas["size"]) > 0 and min(canvas["shown"]) > 0 and canvas["drawn"], f"{what}: {selector} #{index}: {canvas}"
    several = [canvas["colours"] > 1 for canvas in found]
    assert {"each": all, "any": any, None: lambda _: True}[varied](several), f"{what}: {selector} in one colour: {found}"


def assert_no_tab_fault(frame, where="main"):
    """No panel under `where` says that the tab's own code failed."""
    said = frame.locator(f"{where} .message.error").all_text_contents()
    assert not [text for text in said if TAB_FAULT.match(text)], said


def console_errors(page):
    """The console errors of `page` from now on, but for the 404s the tab asks for knowingly (a
    step without a layer's statistics, top examples ...), which say so in its panels."""
    errors = []
    page.on("console", lambda message: message.type == "error" and not message.text.startswith(NOT_FOUND)
            and errors.append(message.text))
    return errors
