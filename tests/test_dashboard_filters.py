"""The filter card and the Layers view (issue 19, items 3 and 5) in real headless Chromium,
inside a real TensorBoard, over runs written by the real callback."""

import json

import keras
import numpy as np
import pytest

import tb_cnnviz
from tb_cnnviz.datasets import SHAPE_NAMES, shapes
from tests.browser_helpers import canvas_rgba, open_tab, wait_ready
from tests.helpers import small_cnn
from tests.plugin_helpers import HOSTILE_LAYERS, logged_steps, rename_to_hostile, rewrite_run, write_unlearned_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server_logdir(tmp_path_factory):
    """Served by conftest's `server`. alpha: 4 train events (steps 0, 2, 4, 6) of the small CNN
    logging conv1 and conv4 (sep2 and dw3 have statistics only), feature visualisations of 2
    filters per logged layer on every 2nd event (steps 0 and 4); unlearned: test_dashboard's run
    whose conv4 is 75 % dead and whose layers do not move after its first event; hostile_names:
    alpha with conv1 and sep2 renamed to markup."""
    logdir = tmp_path_factory.mktemp("cards") / "logs"
    images, labels, _ = shapes(64, size=32, seed=5)
    keras.utils.set_random_seed(0)
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(str(logdir / "alpha"), images[:5], labels[:5], max_channels=6, layers=["conv1", "conv4"],
                                class_names=list(SHAPE_NAMES), feature_vis=2, filters_every=2, strict=True)
    model.fit(images, labels, epochs=3, batch_size=32, verbose=0, callbacks=[callback])
    write_unlearned_run(str(logdir / "unlearned"))
    rewrite_run(str(logdir / "alpha"), str(logdir / "hostile_names"), rename_to_hostile)
    return str(logdir), logged_steps(str(logdir))


def shown(value, text):
    """A value as the dashboard prints it (dom.js fmt: 3 decimals, or 3 significant digits)."""
    return text == "—" if value is None else float(text) == pytest.approx(value, rel=6e-3, abs=5e-4)


def card_ready(frame, layer, channel, step):
    frame.locator(f"aside.filter-card[data-ready={json.dumps(f'{layer}:{channel}:{step}')}]").wait_for(timeout=30000)
    return frame.locator("aside.filter-card")


def click_tile(canvas, tile, header, gap=0):
    """Clicks the middle of one tile of a mosaic canvas (mosaic.js: a near-square grid of the
    header's n tiles of h x w)."""
    _, n, h, w = header["shape"][:4]
    cols = int(np.ceil(np.sqrt(n)))
    box = canvas.bounding_box()
    width = cols * (w + gap) - gap
    scale = box["width"] / width
    x, y = (tile % cols) * (w + gap) + w / 2, (tile // cols) * (h + gap) + h / 2
    canvas.click(position={"x": x * scale, "y": y * scale})


def assert_top_examples(page, card, base, step, layer, channel):
    top = base.json("top_examples", run="alpha", step=step, layer=layer, channel=channel)
    assert len(top["images"]) == base.runs()["alpha"]["top_examples"]["k"]
    examples = card.locator("figure.example")
    assert examples.locator(".example-image").all_text_contents() == [f"probe {i}" for i in top["images"]]
    for value, text in zip(top["values"], examples.locator(".example-value").all_text_contents(), strict=True):
        assert shown(value, text)
    strip = base.ok("top_examples.png", run="alpha", step=step, layer=layer, channel=channel).png()
    h, w = top["size"]
    assert strip.shape[:2] == (h, w * len(top["images"]))
    for i in range(len(top["images"])):  # each patch is its slice of the served strip, in order
        drawn = canvas_rgba(page, f"aside.filter-card figure.example:nth-child({i + 1}) canvas.patch")
        np.testing.assert_array_equal(drawn[..., :3], strip[:, i * w:(i + 1) * w, :3])


def test_the_card_opens_from_a_kernel_and_follows_the_step(page, server):
    steps = server.runs()["alpha"]["steps"]["train"]
    assert steps == [0, 2, 4, 6]
    frame = open_tab(page, server, run="alpha", view="filters", step=6)
    wait_ready(frame, "filters", 6)
    header = server.json("event", run="alpha", step=6)["filters"]["conv4"]
    click_tile(frame.locator("canvas.filters[data-layer=conv4]"), 1, header, gap=1)  # filter 3
    card = card_ready(frame, "conv4", 3, 6)
    assert "cv-cardlayer=conv4" in page.url and "cv-cardchannel=3" in page.url
    assert card.locator("h2").text_content() == "conv4 · filter 3"
    kernel = server.ok("filters", run="alpha", step=6, layer="conv4", channel=3).png()
    np.testing.assert_array_equal(canvas_rgba(page, "aside.filter-card canvas.kernel")[..., 0], kernel)
    assert_top_examples(page, card, server, 6, "conv4", 3)
    # no feature visualisation at step 6 (every 2nd event: steps 0 and 4): a link to step 4
    vis = card.locator("section[data-part=feature-vis]")
    assert "none at step 6" in vis.text_content()
    vis.locator("button.goto").click()
    card = card_ready(frame, "conv4", 3, 4)
    wait_ready(frame, "filters", 4)
    expected = server.ok("feature_vis", run="alpha", step=4, layer="conv4", channel=3).png()
    assert expected.shape == (32, 32, 3)
    np.testing.assert_array_equal(canvas_rgba(page, "aside.filter-card canvas.feature-vis")[..., :3], expected)
    # the step bar and the arrow keys move the card through training
    card.locator("h2").click()
    page.keyboard.press("ArrowLeft")
    card = card_ready(frame, "conv4", 3, 2)
    assert_top_examples(page, card, server, 2, "conv4", 3)
    frame.locator("input.step-slider").focus()
    page.keyboard.press("Home")
    card_ready(frame, "conv4", 3, 0)
    # Escape closes it, and the link forgets it
    card.locator("h2").click()
    page.keyboard.press("Escape")
    card.wait_for(state="hidden")
    assert "cv-cardlayer" not in page.url and "cv-cardchannel" not in page.url
    assert frame.locator("canvas.filters").count() == 2  # the view stayed


def test_the_card_opens_from_a_feature_map_with_its_statistics_over_training(page, server):
    frame = open_tab(page, server, run="alpha", view="activations", layer="conv4", step=4)
    wait_ready(frame, "activations", 4)
    header = server.json("event", run="alpha", step=4)["activations"]["conv4"]
    assert header["channels"] == [0, 3, 6, 9, 12, 15]
    click_tile(frame.locator("canvas.mosaic[data-sample='2']"), 4, header)  # channel 12
    card = card_ready(frame, "conv4", 12, 4)
    assert frame.locator("canvas.large").count() == 0  # a click no longer enlarges the map
    stats = server.json("filter_stats", run="alpha", layer="conv4", channel=12)
    assert stats["steps"] == [0, 2, 4, 6]
    charts = card.locator("figure.chart-card")
    assert charts.count() == 5
    for index, name in enumerate(("norm", "cos_to_first", "cos_to_prev", "mean_activation", "dead_fraction")):
        chart = charts.nth(index)
        assert chart.locator("g.series circle").count() == sum(v is not None for v in stats["stats"][name])
        assert chart.locator("line.marker").count() == 1  # at the card's step
        for step in (2, 6):
            # the tooltip names the step nearest the pointer's x: hover the plot at the dot's x,
            # a pixel inside (the last step's dot is centred on the plot's edge, and dots at the
            # plot's top or bottom cover its edge)
            dot = chart.locator(f"g.series[data-series='{name}'] circle[data-step='{step}']").bounding_box()
            area = chart.locator("rect.hover")
            plot = area.bounding_box()
            area.hover(position={"x": min(dot["x"] + dot["width"] / 2 - plot["x"], plot["width"] - 1), "y": plot["height"] / 2})
            tooltip = chart.locator(".chart-tooltip")
            tooltip.wait_for()
            assert tooltip.locator(".tooltip-step").text_content() == f"step {step}"
            text = tooltip.locator(f".tooltip-row[data-series='{name}'] .tooltip-value").text_content()
            assert shown(stats["stats"][name][stats["steps"].index(step)], text), (name, step, text)
    page.mouse.move(0, 0)
    # its links: the Evolution heat map of the layer, the layer's feature maps with it outlined
    card.locator("button.link", has_text="evolution").click()
    wait_ready(frame, "evolution", 4)
    assert "cv-evolayer=conv4" in page.url
    card.locator("button.link", has_text="feature maps").click()
    wait_ready(frame, "activations", 4)
    assert "cv-channel=12" in page.url and frame.locator(".highlight").count() == 5


def test_a_deep_link_opens_the_card_of_a_filter_whose_kernel_is_not_logged(page, server):
    frame = open_tab(page, server, run="alpha", step=2, cardlayer="sep2", cardchannel=5)
    wait_ready(frame, "gradcam", 2)
    card = card_ready(frame, "sep2", 5, 2)
    assert card.locator("section[data-part=kernel] p").text_content() == (
        "kernel not logged: log_weights logs 0 of this layer's 12 filters; CNNViz(layers=\"all\") logs every conv "
        "layer (or name this one in layers=).")
    assert card.locator("section[data-part=examples] p").text_content() == "not logged for this layer"
    assert card.locator("figure.chart-card").count() == 5  # statistics cover every conv layer
    assert card.locator("button.link", has_text="feature maps").count() == 0
    # a filter the layer does not have, or a layer the run does not have: no card
    for layer, channel in (("sep2", 12), ("nope", 0)):
        frame = open_tab(page, server, run="alpha", step=2, cardlayer=layer, cardchannel=channel)
        wait_ready(frame, "gradcam", 2)
        assert frame.locator("aside.filter-card").is_hidden() and "cv-cardlayer" not in page.url


def test_the_card_of_a_dead_filter_says_its_examples_are_ties(page, server):
    # unlearned: conv4's filters 0-11 have bias -100, never > 0; filter 12 is alive at step 2
    dead = server.json("top_examples", run="unlearned", step=2, layer="conv4", channel=3)
    assert max(dead["values"]) <= 0
    for channel, silent in ((3, True), (12, False)):
        frame = open_tab(page, server, run="unlearned", step=2, view="evolution", evolayer="conv4", cardlayer="conv4",
                         cardchannel=channel)
        card = card_ready(frame, "conv4", channel, 2)
        message = card.locator("section[data-part=examples] p.message")
        assert message.count() == (1 if silent else 0)
        if silent:
            assert "dead here" in message.text_content()


def test_the_layer_table_shows_each_conv_layer_at_the_step(page, server):
    summary = server.json("layer_summary", run="alpha")
    assert [layer["layer"] for layer in summary["layers"]] == ["conv1", "sep2", "dw3", "conv4"]
    frame = open_tab(page, server, run="alpha", view="layers", step=4)
    wait_ready(frame, "layers", 4)
    rows = frame.locator("table.layers tbody tr")
    assert rows.count() == 4
    index = summary["steps"].index(4)
    for row, layer in zip(rows.all(), summary["layers"], strict=True):
        assert row.locator("td.layer-name").text_content() == layer["layer"]
        assert row.locator("td.filters").text_content() == (f"{layer['filters']} · logged" if layer["logged"] else str(layer["filters"]))
        for key in ("dead_fraction", "drift", "change", "norm_trend"):
            assert shown(layer[key][index], row.locator(f"td[data-stat={key}] .number").text_content()), (layer["layer"], key)
            assert row.locator(f"td[data-stat={key}] svg.spark line.now").count() == 1
    rows.nth(3).locator("button.link").click()
    wait_ready(frame, "evolution", 4)
    assert "cv-evolayer=conv4" in page.url
    # a run whose conv4 died, and whose layers stop moving after its first event
    frame = open_tab(page, server, run="unlearned", view="layers", step=0)
    wait_ready(frame, "layers", 0)
    assert frame.locator("table.layers tbody tr").nth(3).locator(".flag").all_text_contents() == ["dead"]
    assert frame.locator("tr.flagged").count() == 1
    frame.locator("input.step-slider").focus()
    page.keyboard.press("End")
    wait_ready(frame, "layers", 2)
    flags = [row.locator(".flag").all_text_contents() for row in frame.locator("table.layers tbody tr").all()]
    assert flags == [["frozen"], ["frozen"], ["frozen"], ["dead", "frozen"]]


def test_hostile_layer_names_stay_text_in_the_card_and_the_table(page, server):
    names = [HOSTILE_LAYERS["conv1"], HOSTILE_LAYERS["sep2"], "dw3", "conv4"]
    frame = open_tab(page, server, run="hostile_names", view="layers")
    wait_ready(frame, "layers")
    assert frame.locator("table.layers td.layer-name").all_text_contents() == names
    frame = open_tab(page, server, run="hostile_names", view="filters", step=0)
    wait_ready(frame, "filters", 0)
    header = server.json("event", run="hostile_names", step=0)["filters"][names[0]]
    click_tile(frame.locator("canvas.filters").first, 2, header, gap=1)
    card = card_ready(frame, names[0], 2, 0)
    assert card.locator(".card-layer").text_content() == names[0]
    assert card.locator("figure.example").count() == 5 and card.locator("canvas.feature-vis").count() == 1
    frame = open_tab(page, server, run="hostile_names", step=0, cardlayer=names[1], cardchannel=0)
    card = card_ready(frame, names[1], 0, 0)
    assert card.locator(".card-layer").text_content() == names[1]
    assert frame.locator("img[src=x], svg[onload], script:not([type=module])").count() == 0
    assert page.dialogs == []
