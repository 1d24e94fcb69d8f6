"""The Evolution view in real headless Chromium inside a real TensorBoard: the heat map's axes,
colour scale and tooltips against the served filter_drift.npy, rows sorted by the value at the
current step, the list of the filters with the largest values, and the filter card opened
from the list and from a cell."""

import os
import urllib.parse

import numpy as np
import pytest

from tests.browser_helpers import frame_of, open_tab, wait_ready
from tests.plugin_helpers import HOSTILE_LAYERS, logged_steps, rename_to_hostile, rewrite_run, write_logs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server_logdir(tmp_path_factory):
    """Served by conftest's `server`: alpha and beta (tests/plugin_helpers.write_logs, 3 epochs),
    and alpha with hostile layer and class names."""
    logdir = str(tmp_path_factory.mktemp("evolution") / "logs")
    write_logs(logdir, epochs=3)
    rewrite_run(os.path.join(logdir, "alpha"), os.path.join(logdir, "hostile_names"), rename_to_hostile)
    return logdir, logged_steps(logdir)


def served(server, stat, layer="conv4", run="alpha"):
    """(steps, values (filters, steps) with NaN where undefined) as the plugin serves them."""
    steps = server.json("filter_drift", run=run, layer=layer, stat=stat)["steps"]
    return steps, server.ok("filter_drift.npy", run=run, layer=layer, stat=stat).npy()


def by_value(column):
    """Filters by value, largest first, ties in filter order, NaN last (the view's order)."""
    return np.lexsort((np.arange(len(column)), -np.nan_to_num(column, nan=0), np.isnan(column))).tolist()


def fmt(value):
    """dom.js fmt(value, 4)."""
    return f"{value:.2e}".replace("e-0", "e-").replace("e+0", "e+") if value and not 1e-3 <= abs(value) < 1e4 \
        else f"{value:.4f}"


def hover(page, row, column, shape):
    """The tooltip's data after hovering the cell at (row, column) of a heat map of `shape`."""
    canvas = page.frame_locator("iframe").locator("canvas.drift")
    box = canvas.bounding_box()
    canvas.hover(position={"x": box["width"] * (column + 0.5) / shape[1], "y": box["height"] * (row + 0.5) / shape[0]})
    return frame_of(page).eval_on_selector(".evo-tooltip", "t => ({ hidden: t.hidden, text: t.textContent, ...t.dataset })")


def assert_tooltip(tip, filter_, step, value):
    assert not tip["hidden"] and (int(tip["filter"]), int(tip["step"])) == (filter_, step), tip
    if np.isnan(value):
        assert tip["value"] == "" and "no value" in tip["text"], tip
    else:
        assert float(tip["value"]) == pytest.approx(float(value), rel=1e-4, abs=1e-7), tip
        assert fmt(float(tip["value"])) in tip["text"], tip


def hash_state(page):
    """The cv- keys of the page's URL hash."""
    parts = (part.split("=", 1) for part in page.url.split("#", 1)[1].split("&") if part.startswith("cv-"))
    return {key[3:]: urllib.parse.unquote(value) for key, value in parts}


def test_axes_colour_scale_and_tooltips_show_the_served_values(page, server):
    steps, values = served(server, "cos_to_prev")  # undefined at the first step: grey
    frame = open_tab(page, server, run="alpha", view="evolution", evolayer="conv4", stat="cos_to_prev", step=steps[-1])
    wait_ready(frame, "evolution", steps[-1])
    # the step axis: round steps, increasing left to right, within the logged steps
    ticks = frame_of(page).eval_on_selector_all(".evo-column-tick", "ts => ts.map(t => [t.textContent, t.getBoundingClientRect().x])")
    numbers = [int(text) for text, _ in ticks]
    assert len(numbers) >= 3 and numbers == sorted(numbers) and steps[0] <= numbers[0] and numbers[-1] <= steps[-1]
    assert all(a[1] < b[1] for a, b in zip(ticks, ticks[1:]))
    assert frame.locator(".evo-row-tick").all_text_contents() == [str(f) for f in range(16)]  # 16 rows: each named
    # the colour scale spans the values; grey, and only grey, where a value is undefined
    scale = frame_of(page).eval_on_selector(".evo-scale", "s => s.dataset")
    assert float(scale["min"]) == pytest.approx(float(np.nanmin(values)), rel=1e-4)
    assert float(scale["max"]) == pytest.approx(float(np.nanmax(values)), rel=1e-4)
    assert frame.locator(".evo-scale-max").text_content() == fmt(float(scale["max"]))
    assert frame.locator(".evo-scale-min").text_content() == fmt(float(scale["min"]))
    assert frame.locator(".evo-legend .evo-none").count() == 1
    rgba = np.asarray(frame_of(page).eval_on_selector(
        "canvas.drift", "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"), np.uint8)
    rgb = rgba.reshape(*values.shape, 4)[..., :3].astype(int)
    assert np.isnan(values[:, 0]).all()
    np.testing.assert_array_equal(np.all(rgb == 128, axis=-1), np.isnan(values))
    # the current (last) step is marked over its column
    marker, canvas = (frame.locator(sel).bounding_box() for sel in (".evo-marker", "canvas.drift"))
    column_width = canvas["width"] / len(steps)
    assert marker["x"] + marker["width"] / 2 == pytest.approx(canvas["x"] + canvas["width"] - column_width / 2, abs=1.5)
    for row, column in ((0, 0), (15, len(steps) - 1), (3, 1), (7, len(steps) // 2), (12, 2)):
        assert_tooltip(hover(page, row, column, values.shape), row, steps[column], values[row, column])


def test_rows_sorted_by_the_value_at_the_current_step(page, server):
    steps, values = served(server, "norm")
    frame = open_tab(page, server, run="alpha", view="evolution", evolayer="conv4", stat="norm", step=steps[1])
    wait_ready(frame, "evolution", steps[1])
    frame.locator("select[name=evosort]").select_option("value")
    frame.locator(".evo-head .note", has_text="largest first").wait_for()
    assert "cv-evosort=value" in page.url
    order = by_value(values[:, 1])
    assert frame.locator(".evo-row-tick").all_text_contents() == [str(f) for f in order]
    for row in (0, 1, 2, 15):  # hovering a row names the filter drawn there, at any step
        assert_tooltip(hover(page, row, 1, values.shape), order[row], steps[1], values[order[row], 1])
    assert_tooltip(hover(page, 0, len(steps) - 1, values.shape), order[0], steps[-1], values[order[0], -1])
    rgba = np.asarray(frame_of(page).eval_on_selector(
        "canvas.drift", "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"), np.uint8)
    rgb = rgba.reshape(*values.shape, 4)[..., :3].astype(int)
    # moving the step sorts the rows again, by the new step's values
    frame.locator("input.step-slider").focus()
    page.keyboard.press("ArrowRight")
    wait_ready(frame, "evolution", steps[2])
    order = by_value(values[:, 2])
    assert frame.locator(".evo-rows").get_attribute("data-order") == ",".join(map(str, order))
    sorted_rgb = np.asarray(frame_of(page).eval_on_selector(
        "canvas.drift", "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"),
        np.uint8).reshape(*values.shape, 4)[..., :3]
    np.testing.assert_array_equal(sorted_rgb, rgb[np.argsort(by_value(values[:, 1]))][order])
    # the line charts, kept from step to step, mark the new step where they plot its points
    markers = frame_of(page).eval_on_selector_all("figure.chart-card", f"""cards => cards.map(card => [
        card.querySelector('line.marker').getAttribute('x1'), card.querySelector('line.marker').getAttribute('visibility'),
        card.querySelector('circle[data-step="{steps[2]}"]').getAttribute('cx')])""")
    assert len(markers) == 2
    for x, visibility, cx in markers:
        assert visibility == "visible" and float(x) == pytest.approx(float(cx), abs=0.01)
    # a cell of a sorted row opens the card of the filter drawn there, at the cell's step
    box = frame.locator("canvas.drift").bounding_box()
    frame.locator("canvas.drift").click(position={"x": box["width"] * 0.5 / len(steps), "y": box["height"] * 0.5 / 16})
    wait_ready(frame, "evolution", steps[0])
    state = hash_state(page)
    assert (state["step"], state["cardlayer"], state["cardchannel"]) == (str(steps[0]), "conv4", str(order[0]))


def test_the_largest_values_are_listed_and_open_the_filters_card(page, server):
    steps, values = served(server, "cos_to_first")
    frame = open_tab(page, server, run="alpha", view="evolution", evolayer="conv4", step=steps[-2])
    wait_ready(frame, "evolution", steps[-2])
    top = by_value(values[:, -2])[:10]
    entries = frame_of(page).eval_on_selector_all(".evo-top-entry", "es => es.map(e => ({ ...e.dataset, text: e.textContent }))")
    assert [int(entry["filter"]) for entry in entries] == top
    for entry, filter_ in zip(entries, top):
        assert float(entry["value"]) == pytest.approx(float(values[filter_, -2]), rel=1e-4, abs=1e-7)
        assert entry["text"] == f"filter {filter_}{fmt(float(entry['value']))}"
    assert frame.locator(".evo-top h4").text_content() == f"Top 10 at step {steps[-2]}: furthest from their start"
    frame.locator(".evo-top-entry").nth(3).click()
    page.wait_for_function("n => location.hash.includes(`cv-cardchannel=${n}`)", arg=top[3])
    state = hash_state(page)
    assert (state["cardlayer"], state["cardchannel"], state["step"]) == ("conv4", str(top[3]), str(steps[-2]))


def test_hostile_layer_names_stay_text(page, server):
    layer = HOSTILE_LAYERS["conv1"]
    frame = open_tab(page, server, run="hostile_names", view="evolution", evolayer=layer)
    wait_ready(frame, "evolution")
    assert frame.locator(".evo-head h3").text_content().startswith(layer)
    frame.locator(".evo-top-entry").first.click()
    page.wait_for_function("() => location.hash.includes('cv-cardchannel=')")
    assert hash_state(page)["cardlayer"] == layer
    assert frame.locator("img[src=x], svg[onload], [onerror], [onload]").count() == 0
    assert page.dialogs == []


def test_compared_runs_each_draw_their_own_heat_map(page, server):
    frame = open_tab(page, server, run="alpha", cmp="beta", view="evolution", evolayer="conv4")
    frame.locator("section.panel[data-run=beta] canvas.drift").wait_for()
    for run in ("alpha", "beta"):
        _, values = served(server, "cos_to_first", run=run)
        top = frame.locator(f"section.panel[data-run={run}] .evo-top-entry").first.get_attribute("data-filter")
        assert int(top) == by_value(values[:, -1])[0]
    assert frame.locator("canvas.drift").count() == 2
