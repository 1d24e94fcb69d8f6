"""The dashboard in real headless Chromium, inside a real TensorBoard."""

import contextlib
import json
import os
import shutil
import urllib.parse

import numpy as np
import pytest

from plugin_helpers import (HOSTILE_CLASSES, HOSTILE_LAYERS, PREFIX, damage_images, npy, png, rename_to_hostile,
                            rewrite_run, tensorboard_server, write_future_run, write_logs, write_segmentation_run)
from tensorboard_process import http_get

from tb_cnnviz import format

sync_api = pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e .[test]")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
HOSTILE = "<img src=x onerror=alert(1)>"
# demo/screenshots.sh points these at a demo run and at docs/screenshots for the README
SHOT_LOGDIR = os.environ.get("CNNVIZ_SCREENSHOT_LOGDIR")
SHOT_DIR = os.environ.get("CNNVIZ_SCREENSHOT_DIR")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    logdir = str(tmp_path_factory.mktemp("dash") / "logs")
    write_logs(logdir, epochs=4)
    shutil.copytree(os.path.join(logdir, "alpha"), os.path.join(logdir, HOSTILE))
    write_future_run(os.path.join(logdir, "future"))
    rewrite_run(os.path.join(logdir, "alpha"), os.path.join(logdir, "hostile_names"), rename_to_hostile)
    rewrite_run(os.path.join(logdir, "alpha"), os.path.join(logdir, "damaged"), damage_images)
    with tensorboard_server(logdir, load_fast=False) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 950})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    assert page.errors == []
    context.close()


def open_tab(page, base, **state):
    """The tab loaded afresh with `state` in its URL. A page that differs only in its hash is not
    reloaded, and the old tab would answer wait_ready for the same view and step (a diverged
    run's captions were once read from the run shown before it)."""
    hash_ = "".join(f"&cv-{k}={urllib.parse.quote(str(v))}" for k, v in state.items())
    page.goto("about:blank")
    page.goto(f"{base}/#cnnviz{hash_}")
    return page.frame_locator("iframe")


def frame_of(page):
    return next(f for f in page.frames if f.url.endswith("plugin_entry.html?name=cnnviz"))


def wait_ready(frame, view, step=None):
    selector = f"main[data-ready='{view}:{step}']" if step is not None else f"main[data-ready^='{view}:']"
    frame.locator(selector).wait_for(timeout=60000)


def ready_step(page):
    return int(frame_of(page).eval_on_selector("main", "m => m.dataset.ready.split(':')[1]"))


def canvas_data(page, selector):
    return frame_of(page).eval_on_selector(selector, "c => c.toDataURL()")


def runs(base):
    return {r["run"]: r for r in json.loads(http_get(f"{base}{PREFIX}/runs")[2])["runs"]}


def test_every_view_renders_and_the_step_slider_changes_the_image(page, server):
    steps = runs(server)["alpha"]["steps"]["train"]
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
    step = runs(server)["alpha"]["steps"]["train"][-1]
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
    levels = png(http_get(f"{server}{PREFIX}/gradcam?run=alpha&step={step}&sample=2")[2]).astype(int)
    np.testing.assert_array_equal(rgba[..., :3], lut[levels])
    assert np.all(rgba[..., 3] == 255)
    # and the served array is those levels upsampled to the probe's 32x32, as tf.image.resize would
    values = npy(http_get(f"{server}{PREFIX}/gradcam.npy?run=alpha&step={step}&sample=2")[2])
    event = json.loads(http_get(f"{server}{PREFIX}/event?run=alpha&step={step}")[2])
    lo, hi = event["gradcam"]["lo"][2][0], event["gradcam"]["hi"][2][0]
    np.testing.assert_allclose(values, format.upsample(lo + levels / 255 * (hi - lo), (32, 32)), rtol=1e-5, atol=1e-9)
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
    steps = runs(server)["alpha"]["steps"]["train"]
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


def test_evolution_cell_jumps_to_that_filter_at_that_step(page, server):
    steps = runs(server)["alpha"]["steps"]["train"]
    frame = open_tab(page, server, run="alpha", view="evolution", evolayer="conv4")
    wait_ready(frame, "evolution")
    box = frame.locator("canvas.drift").bounding_box()
    # conv4 has 16 filters: click the row of filter 15, the column of the first step
    frame.locator("canvas.drift").click(position={"x": box["width"] * 0.5 / len(steps), "y": box["height"] * 15.5 / 16})
    wait_ready(frame, "activations", steps[0])
    assert "cv-channel=15" in page.url and "cv-layer=conv4" in page.url
    assert frame.locator(".highlight").count() == 5  # the filter is outlined on every probe
    assert frame.locator("svg.chart").count() == 0


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
    steps = runs(server)["alpha"]["steps"]["train"]
    frame = open_tab(page, server, run="alpha", step=steps[0])
    wait_ready(frame, "gradcam", steps[0])
    frame.locator("h2.panel-title").click()
    page.keyboard.press("ArrowRight")
    wait_ready(frame, "gradcam", steps[1])
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
    wait_ready(frame, "gradcam", runs(server)["alpha"]["steps"]["eval"][0])
    assert frame.locator(".panel-title .note").text_content().startswith(" · eval")
    # the backend's JSON message is what the user sees when a request fails
    page.route("**/data/plugin/cnnviz/filter_drift*", lambda route: route.fulfill(
        status=404, content_type="application/json", body=json.dumps({"error": "layer 'x' is not logged"})))
    frame.locator("button[data-view=evolution]").click()
    frame.locator("main .message.error").wait_for()
    assert "layer 'x' is not logged" in frame.locator("main .message.error").text_content()


def test_empty_state_tells_how_to_log(browser, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with tensorboard_server(str(empty), load_fast=False, require_plugin=False) as base:
        page = browser.new_page()
        page.goto(f"{base}/#cnnviz")
        frame = page.frame_locator("iframe")
        frame.locator(".message.empty").wait_for(timeout=60000)
        assert "CNNViz(" in frame.locator(".message.empty pre").text_content()
        page.close()


def test_screenshots_of_every_view(page, server, tmp_path):
    """Saves a screenshot of each view (of a demo run when demo/screenshots.sh asks)."""
    out = SHOT_DIR or str(tmp_path)
    os.makedirs(out, exist_ok=True)
    with (tensorboard_server(SHOT_LOGDIR, load_fast=False) if SHOT_LOGDIR else contextlib.nullcontext(server)) as base:
        run = sorted(runs(base))[0]
        frame = open_tab(page, base, run=run)
        for view in ("gradcam", "activations", "filters", "evolution"):
            frame.locator(f"button[data-view={view}]").click()
            wait_ready(frame, view)
            page.wait_for_timeout(300)
            path = os.path.join(out, f"{view}.png")
            page.screenshot(path=path)
            assert os.path.getsize(path) > 10_000


def test_follows_tensorboards_dark_mode(page, server):
    page.goto(f"{server}/?darkMode=true#cnnviz")
    frame = page.frame_locator("iframe")
    wait_ready(frame, "gradcam")
    assert page.evaluate("() => document.body.classList.contains('dark-mode')")
    background = frame_of(page).evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(48, 48, 48)"


def test_steps_fetched_while_moving_on_are_drawn_as_they_arrive(page, server):
    """Moving through steps faster than they load draws each one that arrives (the newest
    arrived so far), instead of nothing until the last one has loaded."""
    steps = runs(server)["alpha"]["steps"]["train"]
    frame = open_tab(page, server, run="alpha", step=steps[0])
    wait_ready(frame, "gradcam", steps[0])
    page.wait_for_timeout(500)  # the neighbours' prefetches (steps[1], steps[2]) have finished
    frame_of(page).evaluate("""() => {
        window.drawnSteps = [];
        new MutationObserver(() => window.drawnSteps.push(document.querySelector('main').dataset.ready))
            .observe(document.querySelector('main'), { attributes: true, attributeFilter: ['data-ready'] });
    }""")
    held = []
    page.route("**/data/plugin/cnnviz/event?*", lambda route: held.append(route))  # answered below, in turn
    frame.locator("h2.panel-title").first.click()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(150)
    while held:  # in the order they were asked for
        held.pop(0).continue_()
        page.wait_for_timeout(300)
    wait_ready(frame, "gradcam", steps[4])
    drawn = frame_of(page).evaluate("() => window.drawnSteps")
    assert f"gradcam:{steps[3]}" in drawn, drawn  # drawn while steps[4] was still loading
    assert drawn.index(f"gradcam:{steps[3]}") < drawn.index(f"gradcam:{steps[4]}")
    page.unroute("**/data/plugin/cnnviz/event?*")


def test_eval_only_no_steps_diverged_and_multilabel_runs(browser, tmp_path):
    """An evaluate-only run opens on its eval steps; a run killed in its first event (probe
    images on disk, no step) says so; NaN probabilities show no prediction; the faithfulness
    note names the run's own fraction; a multi-label run shows each probe's predicted and true
    class sets."""
    import keras
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.proto import event_pb2

    import tb_cnnviz
    from helpers import small_cnn
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
    with tensorboard_server(str(logdir), load_fast=False) as base:
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
