"""The Methods view in real headless Chromium inside a real TensorBoard: a run logged with all
nine methods shows each probe's map by each method, the ranking table's figures equal the
metrics route's at the step with the best of each column marked, and the sentence names the
method the figures favour; the Grad-CAM view offers every logged method."""

import keras
import pytest

import tb_cnnviz
from tb_cnnviz.storage import metadata
from tests.browser_helpers import assert_drawn, open_tab, wait_ready
from tests.helpers import small_cnn
from tests.plugin_helpers import logged_steps

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NAMES = {"gradcam": "Grad-CAM", "gradcam_pp": "Grad-CAM++", "hirescam": "HiResCAM", "xgradcam": "XGrad-CAM",
         "layercam": "LayerCAM", "eigencam": "Eigen-CAM", "scorecam": "Score-CAM", "smoothgrad": "SmoothGrad",
         "integrated_gradients": "Integrated Gradients"}
PROBES = 4
FIGURES = {"deletion_auc": "low", "insertion_auc": "high", "pointing_game": "high", "energy_in_mask": "high",
           "sanity_rank_corr": "low"}


@pytest.fixture(scope="module")
def server_logdir(tmp_path_factory, data):
    """Served by conftest's `server`: "nine", a model trained for 2 epochs logged with every
    method at train steps 0 (with deletion and insertion) and 1 (without), and "two", the default
    methods."""
    keras.utils.set_random_seed(4)
    images, labels, masks = data
    model = small_cnn()
    model.fit(images, labels, epochs=2, batch_size=32, verbose=0)
    logdir = tmp_path_factory.mktemp("methods_view") / "logs"
    nine = tb_cnnviz.CNNViz(str(logdir / "nine"), images[:PROBES], labels[:PROBES], masks=masks[:PROBES], model=model,
                            methods=metadata.METHODS, trust_every=2, strict=True)
    nine.log(0)
    nine.log(1)
    tb_cnnviz.CNNViz(str(logdir / "two"), images[:PROBES], labels[:PROBES], model=model, strict=True).log(0)
    return str(logdir), logged_steps(str(logdir))


def fmt(value):
    """dom.js fmt(value, 3)."""
    return f"{value:.2e}" if value and not 1e-3 <= abs(value) < 1e4 else f"{value:.3f}"


def figures_at(server, step):
    """{method: {figure: mean over the probes at `step`, or None}} as the metrics route serves them."""
    found = {}
    for method in metadata.METHODS:
        body = server.json("metrics", run="nine", method=method)
        index = body["steps"].index(step) if step in body["steps"] else None
        found[method] = {name: None if index is None else values[index] for name, values in body["series"].items()}
    return found


def possessive(method):
    return NAMES[method] + ("'" if NAMES[method].endswith("s") else "'s")


def sentence(figures, name, title, better, step):
    """The view's sentence about one figure, written out: the methods tied for the best, beside
    them Grad-CAM (or the next best), how many beat their random order."""
    order = sorted(((m, f[name]) for m, f in figures.items() if f[name] is not None),
                   key=lambda pair: pair[1] if better == "low" else -pair[1])
    value = order[0][1]
    leaders = [possessive(m) for m, v in order if fmt(v) == fmt(value)]  # tied as shown
    rest = [(m, v) for m, v in order if fmt(v) != fmt(value)]
    other = next((pair for pair in rest if pair[0] == "gradcam"), rest[0] if rest else None)
    beside = f", {possessive(other[0])} {fmt(other[1])}" if other else ""
    chance = figures["gradcam"][f"{name}_random"]
    beat = sum((v < chance) if better == "low" else (v > chance) for _, v in order)
    side = "below" if better == "low" else "above"
    share = f"; all are {side}" if beat == len(order) else f"; none is {side}" if beat == 0 else \
        f"; {beat} of {len(order)} are {side}"
    named = f"{', '.join(leaders[:-1])} and {leaders[-1]}" if len(leaders) > 1 else leaders[0]
    return (f"At step {step}, {named} {title} {fmt(value)} is the {'lowest' if better == 'low' else 'highest'}"
            f"{beside}{share} their random order's {fmt(chance)}.")


def test_the_methods_view_ranks_every_method_by_the_served_figures(page, server):
    frame = open_tab(page, server, run="nine", view="methods", step=0)
    wait_ready(frame, "methods", 0)
    heads = frame.locator("table.methods-maps thead th").all_text_contents()
    assert heads[0] == "probe" and heads[1:] == [NAMES[m] + ("the same map for every class" if m == "eigencam" else "")
                                                 for m in metadata.METHODS]
    assert_drawn(page, "table.methods-maps canvas.heat", PROBES * len(metadata.METHODS), "every method's maps",
                 varied="any")
    figures = figures_at(server, 0)
    rows = frame.locator("table.ranking tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.method)") == list(metadata.METHODS)
    for name, better in FIGURES.items():
        cells = frame.locator(f"table.ranking td[data-figure={name}] span.number").all_text_contents()
        values = {m: figures[m][name] for m in metadata.METHODS if figures[m][name] is not None}
        top = (min if better == "low" else max)(values.values())
        best = {m for m, v in values.items() if fmt(v) == fmt(top)}  # tied as shown
        best = set() if len(best) == len(values) else best  # all equal: nothing ranked
        assert cells == [("—" if m not in values else fmt(values[m])) + (" ★" if m in best else "")
                         for m in metadata.METHODS], name
    assert frame.locator("table.ranking svg.spark").count() == len(metadata.METHODS) * len(FIGURES)
    chance = fmt(figures["gradcam"]["deletion_auc_random"])
    assert f"deletion AUC (chance {chance})" in frame.locator("table.ranking thead").text_content()
    assert frame.locator("p.verdict").all_text_contents() == [
        sentence(figures, "deletion_auc", "deletion AUC", "low", 0),
        sentence(figures, "insertion_auc", "insertion AUC", "high", 0)]


def test_a_step_without_the_many_pass_methods_says_so(page, server):
    frame = open_tab(page, server, run="nine", view="methods", step=1)
    wait_ready(frame, "methods", 1)
    missing = frame.locator("table.methods-maps td.missing").all_text_contents()
    assert missing == ["not computed at this step"] * (PROBES * 3)  # scorecam, smoothgrad, integrated_gradients
    assert_drawn(page, "table.methods-maps canvas.heat", PROBES * 6, "the other methods' maps", varied="any")
    assert frame.locator("p.verdict").count() == 0
    assert "Deletion and insertion were not computed at step 1" in frame.locator(".methods-ranking").text_content()
    cells = frame.locator("table.ranking tr[data-method=scorecam] td[data-figure=pointing_game]").text_content()
    assert cells.startswith("—")


def test_the_gradcam_view_offers_the_logged_methods(page, server):
    frame = open_tab(page, server, run="nine", view="gradcam", step=0)
    wait_ready(frame, "gradcam", 0)
    options = frame.locator("select[name=method] option").all_text_contents()
    assert options == [NAMES[m] for m in metadata.METHODS]
    frame.locator("select[name=method]").select_option("smoothgrad")
    wait_ready(frame, "gradcam", 0)
    frame.locator("p.note", has_text="SmoothGrad on the input's pixels").wait_for()
    assert frame.locator("select[name=cls]").count() == 0  # SmoothGrad maps the target alone
    assert_drawn(page, "canvas.heat", PROBES, "SmoothGrad maps", varied="any")
    assert "cv-method=smoothgrad" in page.url
    two = open_tab(page, server, run="two", view="gradcam", method="hirescam")  # a run that did not log it
    wait_ready(two, "gradcam")
    assert two.locator("select[name=method] option").all_text_contents() == ["Grad-CAM", "Grad-CAM++"]
    assert two.locator("select[name=method]").input_value() == "gradcam"


def test_the_trust_view_charts_the_chosen_method(page, server):
    frame = open_tab(page, server, run="nine", view="trust", method="hirescam")
    wait_ready(frame, "trust")
    assert frame.locator("select[name=method]").input_value() == "hirescam"
    assert "the target class's HiResCAM" in frame.locator("main p.note").first.text_content()
    assert frame.locator("figure.missing-chart", has_text="Faithfulness").text_content().endswith(
        "Grad-CAM's alone: choose Grad-CAM.")
    deletion = frame.locator("figure.chart-card", has_text="Deletion AUC")
    assert deletion.locator("g.series circle").count() >= 1  # step 0 has it, step 1 not
