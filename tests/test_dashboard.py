"""The dashboard in real headless Chromium, inside a real TensorBoard."""

import json
import os
import re
import shutil
import urllib.parse

import numpy as np
import pytest

from tb_cnnviz.storage.maps import upsample
from tests.browser_helpers import assert_drawn, canvas_rgba, frame_of, open_tab, wait_ready
from tests.http_api import npy, png
from tests.polling import wait_for
from tests.plugin_helpers import (HOSTILE_CLASSES, HOSTILE_LAYERS, damage_images, logged_steps, rename_to_hostile,
                                  rewrite_run, write_future_run, write_logs, write_segmentation_run,
                                  write_unlearned_run)

sync_api = pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e .[test]")
pytestmark = [pytest.mark.browser, pytest.mark.slow]
HOSTILE = "<img src=x onerror=alert(1)>"
# demo/screenshots.sh points these at a demo run and at docs/screenshots for the README and docs/tab.md
SHOT_LOGDIR = os.environ.get("CNNVIZ_SCREENSHOT_LOGDIR")
SHOT_DIR = os.environ.get("CNNVIZ_SCREENSHOT_DIR")


@pytest.fixture(scope="module")
def server_logdir(tmp_path_factory):
    """Served by conftest's `server`: alpha and beta (tests/plugin_helpers.write_logs, 4 epochs),
    a copy of alpha named with markup, a run of a newer format, alpha with hostile layer and class
    names, alpha with damaged images, a run that did not learn and one that knows its objects."""
    logdir = str(tmp_path_factory.mktemp("dash") / "logs")
    write_logs(logdir, epochs=4)
    shutil.copytree(os.path.join(logdir, "alpha"), os.path.join(logdir, HOSTILE))
    write_future_run(os.path.join(logdir, "future"))
    rewrite_run(os.path.join(logdir, "alpha"), os.path.join(logdir, "hostile_names"), rename_to_hostile)
    rewrite_run(os.path.join(logdir, "alpha"), os.path.join(logdir, "damaged"), damage_images)
    write_unlearned_run(os.path.join(logdir, "unlearned"))
    write_objects_run(os.path.join(logdir, "objects"))
    return logdir, logged_steps(logdir)


def write_objects_run(run_dir):
    """A run that knows its 4 probes' objects (the shapes' masks) and computes every trust figure
    at each of its 3 train events (steps 0, 2, 4) and its eval event (step 4, with the cascading
    sanity check); each probe stores the maps of 3 of the 4 classes: its target, its true class
    and the most probable other."""
    import keras

    import tb_cnnviz
    from tests.helpers import small_cnn
    from tb_cnnviz.datasets import SHAPE_NAMES, shapes

    images, labels, masks = shapes(64, size=32, seed=5)
    keras.utils.set_random_seed(1)
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(run_dir, images[:4], labels[:4], class_names=list(SHAPE_NAMES), masks=masks[:4],
                                trust_every=1, gradcam_classes=1, strict=True, sanity_check=True)
    model.fit(images, labels, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    model.evaluate(images[:8], labels[:8], verbose=0, callbacks=[callback])  # an eval event with the cascade


def ready_step(page):
    return int(frame_of(page).eval_on_selector("main", "m => m.dataset.ready.split(':')[1]"))


def canvas_data(page, selector):
    return frame_of(page).eval_on_selector(selector, "c => c.toDataURL()")


def test_every_view_renders_and_the_step_slider_changes_the_image(page, server):
    steps = server.runs()["alpha"]["steps"]["train"]
    frame = open_tab(page, server, run="alpha")
    wait_ready(frame, "gradcam", steps[-1])
    last = canvas_data(page, "canvas.heat[data-sample='0']")
    frame.locator("input.step-slider").focus()
    page.keyboard.press("Home")
    wait_ready(frame, "gradcam", steps[0])
    assert canvas_data(page, "canvas.heat[data-sample='0']") != last
    page.keyboard.press("ArrowRight")
    wait_ready(frame, "gradcam", steps[1])
    for view, selector in (("activations", "canvas.mosaic"), ("filters", "canvas.filters"), ("evolution", "canvas.drift")):
        frame.locator(f"button[data-view={view}]").click()
        wait_ready(frame, view)
        assert frame.locator(selector).count() > 0
    frame.locator("button[data-view=activations]").click()
    wait_ready(frame, "activations")
    before = canvas_data(page, "canvas.mosaic[data-sample='0']")
    frame.locator("input.step-slider").focus()
    page.keyboard.press("End")
    wait_ready(frame, "activations", steps[-1])
    assert canvas_data(page, "canvas.mosaic[data-sample='0']") != before


def test_drawn_heat_map_matches_the_served_array(page, server):
    step = server.runs()["alpha"]["steps"]["train"][-1]
    frame = open_tab(page, server, run="alpha", cmap="viridis", step=step)
    wait_ready(frame, "gradcam", step)
    # drawn at the Grad-CAM layer's resolution (16x16) and scaled by the browser over the probe
    rgba = np.asarray(frame_of(page).eval_on_selector(
        "canvas.heat[data-sample='2']", "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"),
        np.uint8).reshape(16, 16, 4)
    boxes = frame_of(page).eval_on_selector_all(
        "figure.card:nth-child(3) .stack > *", "nodes => nodes.map(n => n.getBoundingClientRect().toJSON())")
    assert len(boxes) == 2 and boxes[0] == boxes[1]  # the heat map covers the probe image exactly
    lut = np.asarray(frame_of(page).evaluate(
        "async () => Array.from((await import('./colormap.js')).COLORMAPS.viridis)"), np.uint8).reshape(256, 3)
    levels = png(server.get(f"gradcam?run=alpha&step={step}&sample=2").body).astype(int)
    np.testing.assert_array_equal(rgba[..., :3], lut[levels])
    assert np.all(rgba[..., 3] == 255)
    # and the served array is those levels upsampled to the probe's 32x32, as tf.image.resize would
    values = npy(server.get(f"gradcam.npy?run=alpha&step={step}&sample=2").body)
    event = server.json(f"event?run=alpha&step={step}")
    lo, hi = event["gradcam"]["lo"][2][0], event["gradcam"]["hi"][2][0]
    np.testing.assert_allclose(values, upsample(lo + levels / 255 * (hi - lo), (32, 32)), rtol=1e-5, atol=1e-9)
    # viridis runs from dark purple to yellow (a polynomial fit: within 5 levels of matplotlib)
    assert lut[0].tolist() == pytest.approx([68, 1, 84], abs=5) and lut[255].tolist() == pytest.approx([253, 231, 37], abs=5)


def test_run_comparison_side_by_side(page, server):
    frame = open_tab(page, server, run="alpha", view="activations")
    wait_ready(frame, "activations")
    frame.locator("select[name=cmp]").select_option("beta")
    frame.locator(".panels.compare").wait_for()
    wait_ready(frame, "activations")
    titles = frame.locator(".panel-title > span:first-child").all_text_contents()
    assert titles == ["alpha", "beta"]
    assert frame.locator("section.panel[data-run=beta] canvas.mosaic").count() == 5
    frame.locator("select[name=run]").select_option("beta")
    frame.locator("select[name=cmp]").select_option("alpha")
    frame.locator(".panels.compare").wait_for()
    frame.locator("section.panel[data-run=alpha]").wait_for()
    assert frame.locator(".panel-title > span:first-child").all_text_contents() == ["beta", "alpha"]


def test_a_deep_link_reloads_to_the_same_view(page, server):
    steps = server.runs()["alpha"]["steps"]["train"]
    frame = open_tab(page, server, run="alpha")
    wait_ready(frame, "gradcam")
    frame.locator("button[data-view=activations]").click()
    wait_ready(frame, "activations")
    frame.locator("select[name=layer]").select_option("dw3")
    frame.locator("select[name=norm]").select_option("layer")
    frame.locator("input.step-slider").focus()
    page.keyboard.press("Home")
    wait_ready(frame, "activations", steps[0])
    link = page.url
    assert "cv-view=activations" in link and "cv-layer=dw3" in link
    page.reload()
    frame = page.frame_locator("iframe")
    wait_ready(frame, "activations", steps[0])
    assert frame.locator("select[name=layer]").input_value() == "dw3"
    assert frame.locator("select[name=norm]").input_value() == "layer"
    assert page.url == link


def test_evolution_cell_opens_that_filters_card_at_that_step(page, server):
    steps = server.runs()["alpha"]["steps"]["train"]
    frame = open_tab(page, server, run="alpha", view="evolution", evolayer="conv4")
    wait_ready(frame, "evolution", steps[-1])
    box = frame.locator("canvas.drift").bounding_box()
    # conv4 has 16 filters: click the row of filter 15, the column of the first step
    frame.locator("canvas.drift").click(position={"x": box["width"] * 0.5 / len(steps), "y": box["height"] * 15.5 / 16})
    wait_ready(frame, "evolution", steps[0])
    assert re.search(rf"cv-step={steps[0]}(&|$)", page.url)
    assert "cv-cardlayer=conv4" in page.url and "cv-cardchannel=15" in page.url


def test_hostile_run_name_is_shown_as_text(page, server):
    frame = open_tab(page, server, run=HOSTILE)
    wait_ready(frame, "gradcam")
    assert frame.locator(".panel-title > span:first-child").text_content() == HOSTILE
    assert frame.locator("img[src=x]").count() == 0
    assert HOSTILE in frame.locator("select[name=run]").inner_text()
    assert page.dialogs == []


def test_an_unreadable_run_is_named_and_the_others_still_work(page, server):
    frame = open_tab(page, server, run="alpha")
    wait_ready(frame, "gradcam")
    assert "Run future:" in frame.locator(".broken").text_content()
    assert "upgrade" in frame.locator(".broken").text_content()
    assert "future" not in frame.locator("select[name=run]").inner_text()


def test_hostile_layer_and_class_names_are_shown_as_text(page, server):
    hostile_layer = HOSTILE_LAYERS["conv1"]
    frame = open_tab(page, server, run="hostile_names", layer=hostile_layer)
    wait_ready(frame, "gradcam")
    captions = frame.locator("figcaption").all_text_contents()
    assert any(name in text for text in captions for name in HOSTILE_CLASSES)
    for view in ("activations", "filters", "evolution"):
        frame.locator(f"button[data-view={view}]").click()
        wait_ready(frame, view)
        if view == "activations":
            options = frame.locator("select[name=layer] option").all_text_contents()
            assert options[:2] == [HOSTILE_LAYERS["conv1"], HOSTILE_LAYERS["sep2"]]
            assert frame.locator("canvas.mosaic").count() == 5
        if view == "filters":
            assert hostile_layer in frame.locator("section.filter-layer h3").first.text_content()
    frame.locator("select[name=evolayer]").select_option(label=HOSTILE_LAYERS["sep2"])
    wait_ready(frame, "evolution")
    # nothing the names hold became markup, and no script ran
    assert frame.locator("img[src=x], svg[onload], script:not([type=module]), [onmouseover]").count() == 0
    assert page.dialogs == []


def test_a_damaged_summary_is_reported_where_it_is_shown(page, server):
    frame = open_tab(page, server, run="damaged")
    frame.locator("main .message.error").wait_for()
    assert "damaged cnnviz image" in frame.locator("main .message.error").text_content()
    frame.locator("button[data-view=activations]").click()  # conv1's header lost its ranges
    frame.locator("main .message.error").wait_for()
    assert "ranges do not match" in frame.locator("main .message.error").text_content()
    frame.locator("select[name=layer]").select_option("conv4")  # the other layers still show
    frame.locator("canvas.mosaic").nth(4).wait_for()  # (data-ready already says activations)
    assert frame.locator("canvas.mosaic").count() == 5
    assert frame.locator("main .message.error").count() == 0
    frame.locator("button[data-view=filters]").click()
    wait_ready(frame, "filters")
    assert "ranges do not match" not in frame.locator("main").text_content()
    assert frame.locator("canvas.filters").count() == 4


def test_keyboard_and_play_move_through_steps(page, server):
    steps = server.runs()["alpha"]["steps"]["train"]
    frame = open_tab(page, server, run="alpha", step=steps[0])
    wait_ready(frame, "gradcam", steps[0])
    frame.locator("h2.panel-title").click()
    page.keyboard.press("ArrowRight")
    wait_ready(frame, "gradcam", steps[1])
    page.keyboard.press("ArrowLeft")
    wait_ready(frame, "gradcam", steps[0])
    # two presses before the tab draws again (one task: no animation frame between them) move two
    # steps, as a key held down on a busy machine does
    frame_of(page).evaluate("""() => { for (let i = 0; i < 2; i += 1) {
        document.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight', bubbles: true })); } }""")
    wait_ready(frame, "gradcam", steps[2])
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    wait_ready(frame, "gradcam", steps[0])
    frame.locator("button.play").click()
    wait_ready(frame, "gradcam", steps[1])
    frame.locator("button.play").click()
    assert frame.locator("button.play").text_content().endswith("Play")


def test_eval_switch_and_error_state(page, server):
    frame = open_tab(page, server, run="alpha")
    wait_ready(frame, "gradcam")
    frame.locator("button[data-mode=eval]").click()
    # the eval step is the last train step: data-ready says the same before and after the switch
    frame.locator(".panel-title .note", has_text=" · eval").wait_for()
    wait_ready(frame, "gradcam", server.runs()["alpha"]["steps"]["eval"][0])
    # the backend's JSON message is what the user sees when a request fails
    page.route("**/data/plugin/cnnviz/filter_drift*", lambda route: route.fulfill(
        status=404, content_type="application/json", body=json.dumps({"error": "layer 'x' is not logged"})))
    frame.locator("button[data-view=evolution]").click()
    frame.locator("main .message.error").wait_for()
    assert "layer 'x' is not logged" in frame.locator("main .message.error").text_content()


def test_empty_state_tells_how_to_log(browser, tensorboard_server, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with tensorboard_server(empty, require_plugin=False) as server:
        page = browser.new_page()
        page.goto(f"{server.base}/#cnnviz")
        frame = page.frame_locator("iframe")
        frame.locator(".message.empty").wait_for(timeout=60000)
        assert "CNNViz(" in frame.locator(".message.empty pre").text_content()
        page.close()


def assert_charted(card_locator, what):
    """Each chart card has at least one point, and one of its series a line between points."""
    assert card_locator.count() > 0, f"{what}: no chart"
    for index in range(card_locator.count()):
        card = card_locator.nth(index)
        assert card.locator("g.series circle").count() > 0, f"{what}: chart {index} has no point"
    lines = [d for d in card_locator.locator("g.series path").evaluate_all("ps => ps.map(p => p.getAttribute('d') || '')")]
    assert any("L" in d for d in lines), f"{what}: no chart draws a line: {lines}"


def screenshot(page, path, regions, full_page=False):
    """Saves a screenshot; each locator of `regions` ({what: locator}) must be on it, in more
    than one colour (a view that drew nothing there would be one background colour)."""
    page.screenshot(path=path, full_page=full_page)
    assert os.path.getsize(path) > 10_000
    shot = png(open(path, "rb").read())[..., :3]
    scroll = page.evaluate("() => [window.scrollX, window.scrollY]") if full_page else [0, 0]
    for what, locator in regions.items():
        assert locator.count() > 0, f"{what}: nothing on {path}"
        box = locator.first.bounding_box()
        x0, y0 = max(0, int(box["x"] + scroll[0])), max(0, int(box["y"] + scroll[1]))
        x1 = min(shot.shape[1], int(box["x"] + scroll[0] + box["width"]))
        y1 = min(shot.shape[0], int(box["y"] + scroll[1] + box["height"]))
        assert x1 - x0 > 4 and y1 - y0 > 4, f"{what} is not on {path}: {box}"
        region = shot[y0:y1, x0:x1].reshape(-1, 3)
        assert len(np.unique(region, axis=0)) > 1, f"{what} is one colour on {path}"


def images_loaded(page):
    """Waits until every image of the tab (the probes) has loaded."""
    frame_of(page).wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")


def test_screenshots_of_every_view(page, request, tensorboard_server, tmp_path):
    """Saves a screenshot of each view (of a demo run when demo/screenshots.sh asks), once what
    the view is for is drawn: each probe's heat map, its maps by each method and their ranking,
    feature maps, each layer's filters, the Evolution heat map and charts, the trust charts, the
    layer table's sparklines, the filter card's kernel, patches, feature visualisation and
    charts, and two runs side by side."""
    out = SHOT_DIR or str(tmp_path)
    os.makedirs(out, exist_ok=True)
    if SHOT_LOGDIR:
        base = tensorboard_server(SHOT_LOGDIR, runs=logged_steps(SHOT_LOGDIR))
    else:
        base = request.getfixturevalue("server")
    run = sorted(base.runs())[0]
    info = base.runs()[run]
    samples = info["samples"]
    frame = open_tab(page, base, run=run)
    main = frame.locator("main")
    checks = {
        "gradcam": lambda: (assert_drawn(page, "canvas.heat", samples, "Grad-CAM heat maps", varied="any"),
                            {"the first probe and its map": frame.locator("figure.card")}),
        "methods": lambda: (assert_drawn(page, "table.methods-maps canvas.heat", None, "every method's maps",
                                         varied="any"),
                            {"the ranking table": frame.locator("table.ranking"),
                             "the maps by method": frame.locator("table.methods-maps")}),
        "activations": lambda: (assert_drawn(page, "canvas.mosaic", samples, "feature maps", varied="any"),
                                {"the first feature maps": frame.locator("canvas.mosaic")}),
        "filters": lambda: (assert_drawn(page, "canvas.filters", len(info["filter_channels"]), "filters"),
                            {"the first layer's filters": frame.locator("canvas.filters")}),
        "evolution": lambda: (assert_drawn(page, "canvas.drift", 1, "Evolution heat map"),
                              assert_charted(frame.locator("figure.chart-card"), "Evolution charts"),
                              {"the Evolution heat map": frame.locator("canvas.drift")}),
        "trust": lambda: (assert_charted(frame.locator("figure.chart-card"), "trust charts"),
                          {"the first trust chart": frame.locator("figure.chart-card")}),
        "layers": lambda: (assert_layer_table(frame, info), {"the layer table": frame.locator("table.layers")}),
    }
    for view, check in checks.items():
        frame.locator(f"button[data-view={view}]").click()
        wait_ready(frame, view)
        evaluated = view == "methods" and info["steps"]["eval"]  # an eval event runs and scores every method
        if evaluated:
            frame.locator("button[data-mode=eval]").click()
            main.locator("p.note", has_text="at eval step").wait_for(timeout=60000)
        assert main.locator(".message.error").count() == 0, main.locator(".message.error").all_text_contents()
        images_loaded(page)
        *_, regions = check()
        screenshot(page, os.path.join(out, f"{view}.png"), regions)
        if evaluated:
            frame.locator("button[data-mode=train]").click()
            main.locator("p.note", has_text="at train step").wait_for(timeout=60000)
    # the card of a visualised filter of the Grad-CAM layer, at the last step that visualised it
    layer = info["gradcam_layer"]
    channel = info["feature_vis"].get(layer, [0])[0]
    steps = info["steps"]["train"]
    status, _, body = base.get("feature_vis.npy", run=run, layer=layer, channel=channel, step=steps[-1])
    step = steps[-1] if status == 200 else json.loads(body)["valid"][-1]
    frame = open_tab(page, base, run=run, view="evolution", step=step, cardlayer=layer, cardchannel=channel)
    card = frame.locator(f"aside.filter-card[data-ready='{layer}:{channel}:{step}']")
    card.wait_for(timeout=60000)
    assert card.locator(".message.error").count() == 0, card.locator(".message.error").all_text_contents()
    assert_drawn(page, "aside.filter-card canvas.kernel", 1, "the card's kernel")
    assert_drawn(page, "aside.filter-card canvas.patch", info["top_examples"]["k"], "the card's top examples", varied="any")
    assert_drawn(page, "aside.filter-card canvas.feature-vis", 1, "the card's feature visualisation")
    assert card.locator("figure.chart-card").count() == 5
    assert_charted(card.locator("figure.chart-card"), "the card's statistics")
    screenshot(page, os.path.join(out, "filter_card.png"), {"the filter card": card})
    others = sorted(base.runs())[1:]
    if others:  # the demo's clean run beside its shortcut run, objects outlined
        frame = open_tab(page, base, run=run, cmp=others[0], outline=1)
        wait_ready(frame, "gradcam")
        images_loaded(page)
        panels = frame.locator("section.panel")
        assert panels.count() == 2 and main.locator(".message.error").count() == 0
        compared = base.runs()[others[0]]
        assert_drawn(page, "canvas.heat", samples + compared["samples"], "both runs' heat maps", varied="any")
        outlined = sum(r["samples"] for r in (info, compared) if r.get("truth"))
        if outlined:
            assert_drawn(page, "canvas.outline", outlined, "the objects' outlines", varied=None)
        screenshot(page, os.path.join(out, "compare.png"), {"the first run": panels.nth(0), "the second run": panels.nth(1)},
                   full_page=True)


def assert_layer_table(frame, info):
    """A row per conv layer, each with sparklines, one of which at least draws a line."""
    rows = frame.locator("table.layers tbody tr")
    assert rows.count() == len(info["conv_layers"]), rows.all_text_contents()
    for row in rows.all():
        lines = row.locator("svg.spark path").evaluate_all("ps => ps.map(p => p.getAttribute('d') || '')")
        assert lines and (len(info["steps"]["train"]) < 2 or any("L" in d for d in lines)), (row.text_content(), lines)


def test_follows_tensorboards_dark_mode(page, server):
    page.goto(f"{server.base}/?darkMode=true#cnnviz")
    frame = page.frame_locator("iframe")
    wait_ready(frame, "gradcam")
    assert page.evaluate("() => document.body.classList.contains('dark-mode')")
    background = frame_of(page).evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(48, 48, 48)"


def test_steps_fetched_while_moving_on_are_drawn_as_they_arrive(page, server):
    """Moving through steps faster than they load draws each one that arrives (the newest
    arrived so far), instead of nothing until the last one has loaded."""
    steps = server.runs()["alpha"]["steps"]["train"]
    samples = server.runs()["alpha"]["samples"]
    frame = open_tab(page, server, run="alpha", step=steps[0])
    wait_ready(frame, "gradcam", steps[0])
    # the neighbours' prefetches (steps[1], steps[2]: their event and heat maps) have finished
    frame_of(page).wait_for_function("""([steps, samples]) => steps.every((step) => {
        const loaded = performance.getEntriesByType('resource').map((entry) => new URL(entry.name))
            .filter((url) => url.searchParams.get('run') === 'alpha' && url.searchParams.get('step') === String(step));
        return loaded.some((url) => url.pathname.endsWith('/event'))
            && loaded.filter((url) => url.pathname.endsWith('/gradcam')).length >= samples;
    })""", arg=[steps[1:3], samples])
    frame_of(page).evaluate("""() => {
        window.drawnSteps = [];
        new MutationObserver(() => window.drawnSteps.push(document.querySelector('main').dataset.ready))
            .observe(document.querySelector('main'), { attributes: true, attributeFilter: ['data-ready'] });
    }""")
    held = []
    page.route("**/data/plugin/cnnviz/event?*", lambda route: held.append(route))  # answered below, in turn

    def held_step(route):
        return int(urllib.parse.parse_qs(urllib.parse.urlsplit(route.request.url).query)["step"][0])

    frame.locator("h2.panel-title").first.click()
    for index in range(1, 5):  # each move taken in (the link follows it) before the next
        page.keyboard.press("ArrowRight")
        page.wait_for_function("step => new RegExp(`cv-step=${step}(&|$)`).test(location.hash)", arg=steps[index])
    # the events of steps[3] and steps[4] are asked for, and held (a call into the page lets
    # Playwright run the route handler)
    wait_for(lambda: page.evaluate("() => true") and {steps[3], steps[4]} <= {held_step(r) for r in held}, 30,
             lambda: f"the events of steps {steps[3]} and {steps[4]} to be asked for; held: {[held_step(r) for r in held]}")
    while held:  # in the order they were asked for
        route = held.pop(0)
        route.continue_()
        if held_step(route) == steps[3]:  # it arrives while steps[4] is still held: drawn now
            try:
                frame_of(page).wait_for_function("step => window.drawnSteps.includes(`gradcam:${step}`)", arg=steps[3],
                                                 timeout=20000)
            except sync_api.TimeoutError:
                raise AssertionError(f"step {steps[3]} was not drawn when it arrived while step {steps[4]} was loading: "
                                     f"drawn {frame_of(page).evaluate('() => window.drawnSteps')}") from None
        page.evaluate("() => true")  # route handlers of requests asked meanwhile
    wait_ready(frame, "gradcam", steps[4])
    drawn = frame_of(page).evaluate("() => window.drawnSteps")
    assert f"gradcam:{steps[3]}" in drawn, drawn  # drawn while steps[4] was still loading
    assert drawn.index(f"gradcam:{steps[3]}") < drawn.index(f"gradcam:{steps[4]}")
    page.unroute("**/data/plugin/cnnviz/event?*")


def test_eval_only_no_steps_diverged_and_multilabel_runs(browser, tensorboard_server, tmp_path):
    """An evaluate-only run opens on its eval steps; a run killed in its first event (probe
    images on disk, no step) says so; NaN probabilities show no prediction; the faithfulness
    note names the run's own fraction; a multi-label run shows each probe's predicted and true
    class sets."""
    import keras
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.proto import event_pb2

    import tb_cnnviz
    from tests.helpers import small_cnn
    from tb_cnnviz.datasets import shapes

    images, labels, _ = shapes(4, size=32, seed=5)
    logdir = tmp_path / "logs"
    keras.utils.set_random_seed(0)
    tb_cnnviz.CNNViz(str(logdir / "eval_only"), images, labels, faithfulness_fraction=0.5, model=small_cnn(),
                     strict=True).log(0, mode="eval")
    diverged = small_cnn(diverged=True)  # its output is NaN on every CPU
    tb_cnnviz.CNNViz(str(logdir / "diverged"), images, labels, model=diverged, strict=True).log(0)
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    tagger = keras.Model(inputs, keras.layers.Dense(4, activation="sigmoid")(pooled))
    multi_hot = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    tb_cnnviz.CNNViz(str(logdir / "multilabel"), images, multi_hot, class_names=list("abcd"), model=tagger,
                     strict=True).log(0)
    predicted_sets = tb_cnnviz.read_run(str(logdir / "multilabel")).event(0).predictions["predicted_set"]
    write_segmentation_run(str(logdir / "segmentation"))
    segmentation = tb_cnnviz.read_run(str(logdir / "segmentation"))
    segmentation_step = segmentation.steps()[-1]
    masks = segmentation.event(segmentation_step).masks
    (logdir / "no_steps").mkdir()
    for name in os.listdir(logdir / "diverged"):  # the probe images only: a run killed in its first event
        if "tfevents" in name:
            with tf.io.TFRecordWriter(str(logdir / "no_steps" / name)) as writer:
                for record in event_file_loader.RawEventFileLoader(str(logdir / "diverged" / name)).Load():
                    event = event_pb2.Event.FromString(record)
                    if all(value.tag == "probes" for value in event.summary.value):
                        writer.write(record)
    with tensorboard_server(logdir, runs=logged_steps(str(logdir))) as base:
        page = browser.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        frame = open_tab(page, base, run="eval_only")
        wait_ready(frame, "gradcam", 0)
        assert frame.locator(".panel-title .note").text_content() == " · eval step 0"
        assert frame.locator("main .message").count() == 0
        assert "top 50 % of Grad-CAM is blurred" in frame.locator("main p.note").first.text_content()
        frame = open_tab(page, base, run="diverged")
        wait_ready(frame, "gradcam", 0)
        captions = frame.locator("figcaption > div:first-child").all_text_contents()
        assert captions == ["no prediction: the output is NaN"] * 4, captions
        frame = open_tab(page, base, run="multilabel")
        wait_ready(frame, "gradcam", 0)
        captions = frame.locator("figcaption > div:first-child").all_text_contents()
        assert frame.locator("figcaption > div.label").all_text_contents() == [
            "labels: a, c", "labels: b", "labels: none", "labels: a, b, c, d"]
        for caption, predicted, true in zip(captions, predicted_sets, multi_hot):
            names = ", ".join("abcd"[i] for i in predicted) or "none"
            mark = "✓" if predicted == np.flatnonzero(true).tolist() else "✗"
            assert caption.startswith(f"{mark} predicted: {names} (top "), caption
        frame = open_tab(page, base, run="segmentation", step=segmentation_step)
        wait_ready(frame, "gradcam", segmentation_step)
        assert frame.locator("canvas.mask").count() == 3
        names = ["background", "square", "disc", "triangle", "cross"]
        for sample, mask in enumerate(masks):  # each probe's predicted mask in its classes' colours
            legend = frame.locator(f"figure.card:nth-child({sample + 1}) .legend .swatch").all_text_contents()
            assert legend == [names[c] for c in np.unique(mask)]
            rgba = np.asarray(frame_of(page).eval_on_selector(
                f"canvas.mask[data-sample='{sample}']",
                "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"), np.uint8)
            palette = np.asarray(frame_of(page).evaluate("async () => (await import('./masks.js')).PALETTE"), np.uint8)
            np.testing.assert_array_equal(rgba.reshape(32, 32, 4)[..., :3], palette[mask % len(palette)])
        frame = open_tab(page, base, run="no_steps")
        frame.locator("main .message.error").wait_for(timeout=60000)
        assert "no steps logged yet" in frame.locator("main .message.error").text_content()
        assert page.errors == []
        page.close()


def colormap(page, name):
    return np.asarray(frame_of(page).evaluate(
        f"async () => Array.from((await import('./colormap.js')).COLORMAPS.{name})"), np.uint8).reshape(256, 3)


def assert_drawn_levels(rgba, lut, levels):
    """Each pixel has the colour of its expected level, give or take one level (JavaScript and
    NumPy may round a value that falls half-way between two levels apart)."""
    levels = np.asarray(levels, int)
    near = np.zeros(levels.shape, bool)
    for step in (-1, 0, 1):
        near |= np.all(rgba[..., :3] == lut[np.clip(levels + step, 0, 255)], axis=-1)
    assert near.all(), f"{(~near).sum()} pixels off: drawn {rgba[~near][:3, :3].tolist()}, expected levels {levels[~near][:3].tolist()}"
    assert np.all(rgba[..., 3] == 255)


def event_json(base, run, step, mode="train"):
    return base.json(f"event?run={run}&step={step}&mode={mode}")


def test_a_run_that_did_not_learn_says_so_and_draws_its_noise_flat(page, server):
    """Issue 18 item 7: every probe predicting one class and a layer of dead filters are said at
    the top of the tab; Grad-CAM and feature maps of float noise are drawn flat, not stretched."""
    dead_fraction = npy(server.get("stats.npy?run=unlearned&step=0&layer=conv4").body)[4]
    assert (dead_fraction >= 1 - 1e-4).sum() == 12  # the 12 filters with bias -100
    frame = open_tab(page, server, run="unlearned", step=0, cmap="viridis")
    wait_ready(frame, "gradcam", 0)
    assert frame.locator(".banner p").all_text_contents() == [
        "⚠ all 4 probes predicted disc", "⚠ conv4: 75 % of filters dead (12 of 16, ≤ 0 on every probe)"]
    marks = ["✓" if label == 1 else "✗" for label in server.runs()["unlearned"]["labels"]]
    assert frame.locator("figcaption > div:first-child").all_text_contents() == [f"{mark} disc 25.9%" for mark in marks]
    his = [hi[0] for hi in event_json(server, "unlearned", 0)["gradcam"]["hi"]]
    notes = frame.locator("figcaption .flat").all_text_contents()
    assert len(notes) == 4
    lut = colormap(page, "viridis")
    for sample, (note, hi) in enumerate(zip(notes, his)):
        shown, = re.fullmatch(r"flat: max (\S+), below 1e-7 — drawn without stretching", note).groups()
        assert float(shown) == pytest.approx(hi, rel=0.05) and hi < 1e-13
        # the stored map is that noise stretched over all 256 levels; the tab draws level 0
        assert png(server.get(f"gradcam?run=unlearned&step=0&sample={sample}").body).max() == 255
        assert_drawn_levels(canvas_rgba(page, f"canvas.heat[data-sample='{sample}']"), lut, np.zeros((16, 16)))
    # the same rule for feature maps: conv4's 4 live filters (~1e-11) are flat; the 12 dead
    # ones are 0 everywhere, which no scale stretches
    frame = open_tab(page, server, run="unlearned", step=0, view="activations", layer="conv4")
    wait_ready(frame, "activations", 0)
    assert frame.locator(".banner p").count() == 2
    assert frame.locator("figcaption .flat").all_text_contents() == [
        "4 maps flat: range negligible (max below 1e-7), drawn without stretching"] * 4
    header = event_json(server, "unlearned", 0)["activations"]["conv4"]
    assert header["channels"] == list(range(16)) and 0 < header["hi"][0][12] < 1e-10
    stored = png(server.get("activations?run=unlearned&step=0&layer=conv4&sample=0").body)
    drawn = canvas_rgba(page, "canvas.mosaic[data-sample='0']")
    assert stored[48:64, 0:16].max() == 255  # channel 12: tile 12 of the 4x4 grid of 16x16 maps
    assert_drawn_levels(drawn[48:64, 0:16], lut, np.zeros((16, 16)))
    # a map is negligible beside the others at its step: below 1e-3 of their median maximum
    tests = frame_of(page).evaluate("""async () => {
        const { negligibleRule } = await import('./scale.js');
        const rule = negligibleRule([0, 0, 0, 0], [2, 1, 3, 0.001]);
        return [rule.test(0, 0.001), rule.test(0, 0.0025), rule.test(0, 0), rule.test(-2, 0.5)];
    }""")
    assert tests == ["max 0.001, below 1e-3 × this step's median max (1.5)", "", "zero everywhere", ""]


def test_the_shared_scale_spans_every_probe_and_step(page, server):
    """Grad-CAM on one scale over the run: maps that grow tenfold from step 1 to step 2 look it,
    where each map on its own range looks the same at both steps."""
    events = {step: event_json(server, "unlearned", step) for step in (0, 1, 2)}
    los = [lo[0] for event in events.values() for lo in event["gradcam"]["lo"]]
    his = [hi[0] for event in events.values() for hi in event["gradcam"]["hi"]]
    low, high = min(0.0, min(los)), max(his)

    def stored(step, sample):
        return png(server.get(f"gradcam?run=unlearned&step={step}&sample={sample}").body).astype(float)

    frame = open_tab(page, server, run="unlearned", step=1, cmap="viridis")
    wait_ready(frame, "gradcam", 1)
    lut = colormap(page, "viridis")
    assert frame.locator("figcaption .flat").count() == 0  # ~1e-6: small, but not noise
    for sample in range(4):  # per map: the stored levels, each map over its own range
        assert_drawn_levels(canvas_rgba(page, f"canvas.heat[data-sample='{sample}']"), lut, stored(1, sample))
    frame.locator("select[name=scale]").select_option("shared")
    note = frame.locator("main p.note", has_text="shared by every probe")
    note.wait_for()
    shown_low, shown_high = re.search(r"shared by every probe and step: (\S+) … (\S+) \(the largest value over 12 maps at 3 steps\)",
                                      note.text_content()).groups()
    assert float(shown_low) == 0 and float(shown_high) == pytest.approx(high, rel=0.05)
    assert "cv-scale=shared" in page.url
    for step in (1, 2, 0):
        if step != 1:
            frame = open_tab(page, server, run="unlearned", step=step, cmap="viridis", scale="shared")
            wait_ready(frame, "gradcam", step)
        event = events[step]["gradcam"]
        top = 0
        for sample in range(4):
            lo, hi = event["lo"][sample][0], event["hi"][sample][0]
            values = lo + stored(step, sample) / 255 * (hi - lo)
            levels = np.clip(np.floor((values - low) / (high - low) * 255 + 0.5), 0, 255)
            assert_drawn_levels(canvas_rgba(page, f"canvas.heat[data-sample='{sample}']"), lut, levels)
            top = max(top, levels.max())
        assert top in {0: [0], 1: [25, 26], 2: [255]}[step]  # nothing at step 0, a tenth of step 2's at step 1
    assert frame.locator("figcaption .flat").count() == 4  # step 0's noise is still said to be flat


def drawn_levels(rgba, lut):
    """The colormap level of each drawn pixel (the nearest of the map's 256 colours)."""
    distance = np.abs(rgba[..., None, :3].astype(int) - lut[None, None].astype(int)).sum(axis=-1)
    return distance.argmin(axis=-1)


def test_the_class_picker_draws_each_probes_stored_map_of_that_class(page, server):
    run = server.runs()["objects"]
    step = run["steps"]["train"][-1]
    event = event_json(server, "objects", step)
    predictions, header = event["predictions"], event["class_maps"]
    assert run["gradcam_classes"] == 1 and all(len(stored) == 3 for stored in predictions["gradcam_classes"])
    frame = open_tab(page, server, run="objects", step=step, cmap="viridis")
    wait_ready(frame, "gradcam", step)
    lut = colormap(page, "viridis")
    names = run["class_names"]
    targets = [canvas_rgba(page, f"canvas.heat[data-sample='{sample}']") for sample in range(4)]
    # per probe: the most probable class other than its target, which every probe stores
    frame.locator("select[name=cls]").select_option("other")
    frame.locator("figcaption .map-class").nth(3).wait_for()
    captions = frame.locator("figcaption .map-class").all_text_contents()
    changed = 0
    for sample in range(4):
        other = next(c for c in predictions["top_classes"][sample] if c != predictions["target"][sample])
        slot = predictions["gradcam_classes"][sample].index(other)
        probability = predictions["class_probabilities"][sample][slot]
        assert captions[sample] == f"map for: {names[other]} {probability * 100:.1f}%"
        rgba = canvas_rgba(page, f"canvas.heat[data-sample='{sample}']")
        levels = drawn_levels(rgba, lut)
        stored = png(server.get(f"gradcam?run=objects&step={step}&sample={sample}&class={other}").body)
        np.testing.assert_array_equal(levels, stored)
        # those levels are the class's map: its .npy, upsampled to the probe's size
        lo, hi = header["lo"][sample][slot], header["hi"][sample][slot]  # Grad-CAM: the first 3 maps
        values = npy(server.get(f"gradcam.npy?run=objects&step={step}&sample={sample}&class={other}").body)
        np.testing.assert_allclose(values, upsample(lo + levels / 255 * (hi - lo), (32, 32)), rtol=1e-5, atol=1e-9)
        changed += not np.array_equal(rgba, targets[sample])
    assert changed >= 1
    # by name: the same class on every probe, "not stored" where a probe did not explain it
    lacking = next((sample, c) for sample in range(4) for c in range(4) if c not in predictions["gradcam_classes"][sample])
    sample, missing = lacking
    frame.locator("select[name=cls]").select_option(f"c{missing}")
    frame.locator("figcaption .missing").first.wait_for()
    card = frame.locator("figure.card").nth(sample)
    stored_names = ", ".join(names[c] for c in predictions["gradcam_classes"][sample])
    assert card.locator(".missing").text_content() == f"not stored: no map of {names[missing]} for this probe (stored: {stored_names})"
    assert "cv-cls=c" in page.url
    for other in range(4):
        if missing in predictions["gradcam_classes"][other]:
            assert frame.locator("figure.card").nth(other).locator(".map-class").text_content().startswith(f"map for: {names[missing]} ")
    status, _, body = server.get(f"gradcam?run=objects&step={step}&sample={sample}&class={missing}")
    assert status == 404 and json.loads(body)["valid"] == predictions["gradcam_classes"][sample]


def test_the_object_outline_is_drawn_over_each_probe(page, server):
    frame = open_tab(page, server, run="objects")
    wait_ready(frame, "gradcam")
    assert frame.locator("canvas.outline").count() == 0
    frame.locator("input[name=outline]").check()
    frame.locator("canvas.outline").nth(3).wait_for()
    assert "cv-outline=1" in page.url
    for sample in range(4):
        inside = png(server.get(f"object?run=objects&sample={sample}").body) >= 128
        padded = np.pad(inside, 1)
        edge = inside & ~(padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
        assert 0 < edge.sum() < inside.sum()
        rgba = canvas_rgba(page, f"canvas.outline[data-sample='{sample}']")
        np.testing.assert_array_equal(rgba[..., 3] > 0, edge)
        boxes = frame_of(page).eval_on_selector_all(
            f"figure.card:nth-child({sample + 1}) .stack > *", "nodes => nodes.map(n => n.getBoundingClientRect().toJSON())")
        assert len(boxes) == 3 and boxes[0] == boxes[2]  # over the probe image exactly
    frame.locator("input[name=outline]").uncheck()
    frame.locator("canvas.outline").first.wait_for(state="detached")
    status, _, body = server.get("object?run=unlearned&sample=0")  # a run without objects: no toggle
    assert status == 404
    frame = open_tab(page, server, run="unlearned")
    wait_ready(frame, "gradcam")
    assert frame.locator("input[name=outline]").count() == 0


def test_the_trust_view_charts_each_figure_over_training(page, server):
    metrics = server.json("metrics?run=objects")
    steps = metrics["steps"]
    assert steps == server.runs()["objects"]["steps"]["train"]
    frame = open_tab(page, server, run="objects", view="trust")
    wait_ready(frame, "trust")
    cards = frame.locator("figure.chart-card")
    assert cards.locator("figcaption").all_text_contents() == [
        "Deletion AUC", "Insertion AUC", "Faithfulness", "Sanity check (model randomisation)", "Pointing game",
        "Energy in the object"]
    sentences = frame.locator("p.chart-caption").all_text_contents()
    assert "Good: below the dashed random order's" in sentences[0] and "Good: above the dashed random order's" in sentences[1]
    assert "Good: falling away from 1 as the model learns" in sentences[3]
    assert all("Good: high" in sentence for sentence in (sentences[2], sentences[4], sentences[5]))
    for index in range(6):  # a line through a point per step, with axes and a legend
        card = cards.nth(index)
        assert card.locator("g.series path").first.get_attribute("d").count("L") == len(steps) - 1
        assert card.locator("g.series").first.locator("circle").count() == len(steps)
        assert card.locator("text.x-tick").count() >= 2 and card.locator("text.y-tick").count() >= 2
    for index in (0, 1, 4, 5):  # the chance level, dashed in the colour of its series
        solid, dashed = cards.nth(index).locator("g.series path").all()
        assert dashed.get_attribute("stroke-dasharray") == "5 4" and dashed.get_attribute("stroke") == solid.get_attribute("stroke")
    # hovering a step shows each series' value there, as the route gives it
    masks = [png(server.get(f"object?run=objects&sample={s}").body) >= 128 for s in range(4)]
    padded = [np.pad(mask, 1) for mask in masks]  # grown by the pointing game's 1 pixel
    grown = [np.any([p[1 + dy:p.shape[0] - 1 + dy, 1 + dx:p.shape[1] - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)],
                    axis=0) for p in padded]
    chance = float(np.mean([mask.mean() for mask in grown]))
    for index, name, key, step in ((0, "deletion AUC", "deletion_auc", steps[-1]), (1, "insertion AUC", "insertion_auc", steps[1]),
                                   (4, "pointing game", "pointing_game", steps[0])):
        card = cards.nth(index)
        card.scroll_into_view_if_needed()
        box = card.locator(f"g.series[data-series='{name}'] circle[data-step='{step}']").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tooltip = card.locator(".chart-tooltip")
        tooltip.wait_for()
        assert tooltip.locator(".tooltip-step").text_content() == f"step {step}"
        value = metrics["series"][key][steps.index(step)]
        assert float(tooltip.locator(f".tooltip-row[data-series='{name}'] .tooltip-value").text_content()) == pytest.approx(value, abs=5e-4)
        if key == "deletion_auc":
            random = metrics["series"]["deletion_auc_random"][steps.index(step)]
            shown = tooltip.locator(".tooltip-row[data-series='random order (chance)'] .tooltip-value").text_content()
            assert float(shown) == pytest.approx(random, abs=5e-4)
        if key == "pointing_game":
            shown = tooltip.locator(".tooltip-row[data-series='share within 1 pixel of the object (chance)'] .tooltip-value").text_content()
            assert float(shown) == pytest.approx(chance, abs=5e-4)
        page.mouse.move(0, 0)
        tooltip.wait_for(state="hidden")

    # a run without objects, computing deletion and insertion on every 5th event: one point each
    unlearned = server.json("metrics?run=unlearned")["series"]
    computed = [value is not None for value in unlearned["deletion_auc"]]
    frame = open_tab(page, server, run="unlearned", view="trust")
    wait_ready(frame, "trust")
    cards = frame.locator("figure.chart-card")
    assert cards.nth(0).locator("g.series").first.locator("circle").count() == sum(computed) == 1
    assert cards.nth(0).locator("p.chart-caption").text_content().count("every 5th train event from the first") == 1
    missing = frame.locator("figure.missing-chart p").all_text_contents()
    assert missing == ["Needs the probes' objects: log with CNNViz(masks=…) or CNNViz(boxes=…)."] * 2


def test_the_trust_view_charts_an_eval_steps_cascading_sanity_check(page, server):
    event = event_json(server, "objects", 4, mode="eval")
    results = event["predictions"]["sanity_check"]
    frame = open_tab(page, server, run="objects", view="trust", mode="eval", step=4)
    wait_ready(frame, "trust")
    card = frame.locator("figure.chart-card", has_text="Cascading randomisation at eval step 4")
    assert card.locator("g.series").first.locator("circle").count() == len(results)
    caption = card.locator("p.chart-caption").text_content()
    assert all(name in caption for name, _ in results)
    card.scroll_into_view_if_needed()
    box = card.locator("g.series circle[data-step='1']").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    tooltip = card.locator(".chart-tooltip")
    tooltip.wait_for()
    value = tooltip.locator(".tooltip-value").first.text_content()
    assert float(value) == pytest.approx(results[0][1], abs=5e-4)


def test_the_line_chart_module(page, server):
    """chart.js on its own: gaps at null, a dashed series in its pair's colour, ticks, a legend
    and a tooltip set as text."""
    frame = open_tab(page, server, run="alpha")
    wait_ready(frame, "gradcam")
    drawn = frame_of(page).evaluate("""async () => {
        const { lineChart, ticks } = await import('./chart.js');
        const figure = lineChart({ title: 'title', steps: [0, 10, 20, 30, 40], yLabel: 'y', yRange: [0, 1], marker: 20,
            series: [{ name: '<b>a</b>', values: [0.1, null, 0.3, 0.4, null] },
                     { name: 'chance', values: [0.5, 0.5, 0.5, 0.5, 0.5], dashed: true, pair: '<b>a</b>' },
                     { name: 'c', values: [1.5, 1, 1, 1, 1] }] });
        document.body.append(figure);
        const area = figure.querySelector('rect.hover');
        const dot = figure.querySelector('circle[data-step="30"]').getBoundingClientRect();
        area.dispatchEvent(new MouseEvent('mousemove', { clientX: dot.x + dot.width / 2, clientY: dot.y + dot.height / 2 }));
        const text = (selector) => [...figure.querySelectorAll(selector)].map((node) => node.textContent);
        const result = {
            paths: [...figure.querySelectorAll('g.series path')].map((p) => [p.getAttribute('d'), p.getAttribute('stroke'), p.getAttribute('stroke-dasharray')]),
            legend: text('.legend-item > span'), yTicks: text('text.y-tick'), xTicks: text('text.x-tick'),
            tooltip: text('.chart-tooltip > div'), markup: figure.querySelectorAll('b').length,
            marker: figure.querySelectorAll('line.marker').length, auto: ticks(0.013, 0.087),
        };
        figure.remove();
        return result;
    }""")
    (gapped, colour, solid), (dashed, dashed_colour, dash), _ = drawn["paths"]
    assert gapped.count("M") == 2 and gapped.count("L") == 1  # 0.1 alone, then 0.3 to 0.4
    assert dashed.count("M") == 1 and dashed.count("L") == 4
    assert dashed_colour == colour and solid is None and dash == "5 4"
    assert drawn["legend"] == ["<b>a</b>", "chance", "c"] and drawn["markup"] == 0
    assert drawn["yTicks"] == ["0.00", "0.50", "1.00", "1.50"]  # [0, 1] widened to take 1.5
    assert drawn["xTicks"] == ["0", "10", "20", "30", "40"] and drawn["marker"] == 1
    assert drawn["tooltip"] == ["step 30", "<b>a</b>: 0.400", "chance: 0.500", "c: 1.000"]
    assert drawn["auto"] == [0.02, 0.04, 0.06, 0.08]
