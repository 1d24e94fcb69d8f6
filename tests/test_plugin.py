"""The plugin in-process: TensorBoardWSGI over a real MultiplexerDataProvider."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tb_cnnviz
from tb_cnnviz.storage.maps import upsample
from tests.helpers import quantisation_ok
from tests.http_api import npy, png
from tests.plugin_helpers import (edit_step_index, rewrite_run, write_future_run, write_logs,
                                  write_segmentation_run, wsgi_client)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("plugin_logs"))
    models = write_logs(logdir)
    write_future_run(f"{logdir}/future")
    return wsgi_client(logdir), logdir, models


@pytest.fixture(scope="module")
def segmentation_served(tmp_path_factory):
    """A segmentation run ("seg", tests/plugin_helpers.write_segmentation_run), the only kind of
    run the mask routes answer, and a run of a newer format ("future"), served in process."""
    logdir = str(tmp_path_factory.mktemp("segmentation_logs"))
    write_segmentation_run(f"{logdir}/seg")
    write_future_run(f"{logdir}/future")
    return wsgi_client(logdir)


def ok(client, route, **params):
    status, headers, body = client.get(route, **params)
    assert status == 200, (route, params, body[:300])
    assert headers["X-Content-Type-Options"] == "nosniff"
    return headers, body


def test_entry_point_module_imports_no_tensorflow():
    code = "import sys, tb_cnnviz.plugin.loader, tb_cnnviz.plugin.cnnviz_plugin; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


@pytest.mark.slow
def test_runs_lists_layers_steps_and_classes(served):
    client, logdir, _ = served
    runs = json.loads(ok(client, "runs")[1])["runs"]
    assert [r["run"] for r in runs] == ["alpha", "beta", "future"]
    assert "upgrade" in runs[2]["error"] and "layers" not in runs[2]
    alpha = runs[0]
    reader = tb_cnnviz.read_run(f"{logdir}/alpha")
    assert alpha["steps"] == {"train": reader.steps("train"), "eval": reader.steps("eval")}
    assert alpha["steps"]["eval"] == [4]
    assert alpha["layers"] == ["conv1", "sep2", "dw3", "conv4"]
    assert alpha["samples"] == 5 and alpha["image_shape"] == [32, 32, 3]
    assert alpha["class_names"] == ["square", "disc", "triangle", "cross"]
    assert alpha["gradcam_layer"] == "conv4"
    assert alpha["faithfulness_fraction"] == 0.2


@pytest.mark.slow
def test_index_js_is_served_as_javascript(served):
    client, _, _ = served
    headers, body = ok(client, "index.js")
    assert headers["Content-Type"].startswith("text/javascript")
    assert b"export async function render" in body


@pytest.mark.slow
def test_event_metadata_and_faithfulness(served):
    client, logdir, _ = served
    reader = tb_cnnviz.read_run(f"{logdir}/alpha")
    step = reader.steps()[-1]
    event = json.loads(ok(client, "event", run="alpha", step=step)[1])
    assert event["predictions"]["predicted"] == reader.event(step).predictions["predicted"]
    assert event["faithfulness"] == pytest.approx(reader.event(step).faithfulness)
    assert event["activations"]["sep2"]["channels"] == reader.event(step).activations("sep2")[1]
    assert event["filters"]["conv1"]["view"] == "kernel"
    faith = json.loads(ok(client, "faithfulness", run="alpha")[1])
    assert faith["steps"] == reader.steps()
    np.testing.assert_allclose(faith["values"], reader.faithfulness()[1], rtol=1e-6)


@pytest.mark.slow
def test_event_reads_one_stored_payload_and_runs_written_without_a_step_index_still_open(served, tmp_path):
    _, logdir, _ = served
    copies = str(tmp_path / "logs")
    rewrite_run(f"{logdir}/alpha", f"{copies}/indexed", lambda value: None)
    rewrite_run(f"{logdir}/alpha", f"{copies}/unindexed", edit_step_index(lambda header: header.pop("summaries")))
    reads = []
    client = wsgi_client(copies, on_read=reads.append)
    runs = {run["run"]: run for run in json.loads(ok(client, "runs")[1])["runs"]}
    for mode in ("train", "eval"):
        for step in runs["indexed"]["steps"][mode]:
            reads.clear()
            indexed = json.loads(ok(client, "event", run="indexed", mode=mode, step=step)[1])
            assert reads == [("read_blob", None)], reads  # the predictions summary of that step, nothing else
            reads.clear()
            unindexed = json.loads(ok(client, "event", run="unindexed", mode=mode, step=step)[1])
            assert len(reads) > 10  # every summary of the step, the faithfulness series
            assert "summaries" not in indexed["predictions"]
            newer = {"class_maps", "top_examples", "feature_vis"}  # kinds newer than the index: older steps lack them
            assert "class_maps" in indexed and "top_examples" in indexed
            assert unindexed == {**{k: v for k, v in indexed.items() if k not in newer}, "run": "unindexed"}


@pytest.mark.slow
def test_npy_routes_equal_the_reader_and_the_model(served):
    client, logdir, models = served
    model, probes = models["alpha"]
    reader = tb_cnnviz.read_run(f"{logdir}/alpha")
    step = reader.steps()[-1]  # the model still has these weights
    event = reader.event(step)
    common = {"run": "alpha", "step": step}
    np.testing.assert_array_equal(npy(ok(client, "probes.npy", run="alpha")[1]), reader.probes)
    gradcam = npy(ok(client, "gradcam.npy", **common)[1])
    np.testing.assert_array_equal(gradcam, event.gradcam)
    assert quantisation_ok(gradcam, tb_cnnviz.gradcam(model, probes, class_index=event.predictions["target"]), (1, 2))
    np.testing.assert_array_equal(npy(ok(client, "gradcam.npy", method="gradcam++", **common)[1]), event.gradcam_pp)
    np.testing.assert_array_equal(npy(ok(client, "gradcam.npy", sample=2, **common)[1]), event.gradcam[2])
    for layer in reader.layers:
        maps, channels = event.activations(layer)
        served_maps = npy(ok(client, "activations.npy", layer=layer, **common)[1])
        np.testing.assert_array_equal(served_maps, maps)
        true = keras.Model(model.inputs, model.get_layer(layer).output)(tf.constant(probes)).numpy()
        assert quantisation_ok(served_maps, true[..., channels].transpose(0, 3, 1, 2), (2, 3))
        one = npy(ok(client, "activations.npy", layer=layer, sample=1, channel=channels[-1], **common)[1])
        np.testing.assert_array_equal(one, maps[1, -1])
    kernels, channels, _ = event.filters("conv4")
    np.testing.assert_array_equal(npy(ok(client, "filters.npy", layer="conv4", **common)[1]), kernels)
    stats = npy(ok(client, "stats.npy", layer="dw3", **common)[1])
    np.testing.assert_array_equal(stats, np.stack(list(event.stats("dw3").values())))
    steps, drift = reader.filter_drift("sep2", "cos_to_first")
    np.testing.assert_array_equal(npy(ok(client, "filter_drift.npy", run="alpha", layer="sep2", stat="cos_to_first")[1]), drift)
    body = json.loads(ok(client, "filter_drift", run="alpha", layer="sep2", stat="cos_to_prev")[1])
    assert body["steps"] == steps.tolist() and body["filters"] == 12
    assert body["values"][0][0] is None  # NaN (no previous event) is JSON null
    # a mode with no events (beta only trained): an empty series, as the reader gives and faithfulness serves
    empty = json.loads(ok(client, "filter_drift", run="beta", layer="sep2", stat="norm", mode="eval")[1])
    assert (empty["steps"], empty["filters"], empty["values"]) == ([], 12, [[]] * 12)
    assert npy(ok(client, "filter_drift.npy", run="beta", layer="sep2", stat="norm", mode="eval")[1]).shape == (12, 0)
    assert json.loads(ok(client, "faithfulness", run="beta", mode="eval")[1]) == {"steps": [], "values": []}
    stats_json = json.loads(ok(client, "stats", layer="dw3", **common)[1])
    np.testing.assert_allclose(stats_json["norm"], event.stats("dw3")["norm"])


@pytest.mark.slow
def test_png_routes_decode_to_the_logged_pixels(served):
    client, logdir, _ = served
    reader = tb_cnnviz.read_run(f"{logdir}/alpha")
    step = reader.steps()[-1]
    event = reader.event(step)
    headers, body = ok(client, "gradcam", run="alpha", step=step, sample=0)
    assert headers["Content-Type"] == "image/png" and "max-age" in headers.get("Cache-Control", "")
    pixels = png(body).astype(np.float32)
    assert pixels.shape == (16, 16)  # the Grad-CAM layer's resolution: the tab scales it to the probe's
    gradcam = event.gradcam[0]
    assert gradcam.shape == (32, 32)  # the reader upsamples to the input's
    stored = json.loads(ok(client, "event", run="alpha", step=step)[1])["gradcam"]
    lo, hi = stored["lo"][0][0], stored["hi"][0][0]
    upsampled = upsample(lo + pixels / 255 * (hi - lo), gradcam.shape)
    np.testing.assert_allclose(upsampled, gradcam, rtol=1e-5, atol=1e-9)
    assert png(ok(client, "probe", run="alpha", sample=4)[1]).shape == (32, 32, 3)
    maps, channels = event.activations("sep2")
    mosaic = png(ok(client, "activations", run="alpha", step=step, layer="sep2", sample=0)[1])
    assert mosaic.shape == (2 * 16, 3 * 16)  # 6 maps of 16x16 on a 2x3 grid
    single = png(ok(client, "activations", run="alpha", step=step, layer="sep2", sample=0, channel=channels[1])[1])
    assert single.shape == (16, 16)
    np.testing.assert_array_equal(single, mosaic[:16, 16:32])
    rgb = png(ok(client, "filters", run="alpha", step=step, layer="conv1")[1])
    assert rgb.ndim == 3 and rgb.shape[2] == 3
    assert png(ok(client, "filters", run="alpha", step=step, layer="conv1", channel=7)[1]).shape == (3, 3, 3)


@pytest.mark.slow
def test_eval_mode_is_served_separately(served):
    client, logdir, _ = served
    reader = tb_cnnviz.read_run(f"{logdir}/alpha")
    body = npy(ok(client, "gradcam.npy", run="alpha", step=4, mode="eval")[1])
    np.testing.assert_array_equal(body, reader.event(4, "eval").gradcam)


STEP_ROUTES = ["event", "gradcam", "gradcam.npy", "activations", "activations.npy", "filters",
               "filters.npy", "stats", "stats.npy"]
ALL_ROUTES = STEP_ROUTES + ["probe", "probes.npy", "filter_drift", "filter_drift.npy", "faithfulness", "mask",
                            "mask.npy", "metrics", "metrics.npy", "object", "top_examples", "top_examples.npy",
                            "top_examples.png", "feature_vis", "feature_vis.npy", "layer_summary", "filter_stats",
                            "filter_stats.npy"]
GOOD = {"run": "alpha", "step": "4", "sample": "0", "layer": "sep2", "stat": "norm", "name": "deletion_auc",
        "channel": "0"}
# where GOOD is not in the data of a route: feature visualisations are made at the first of every 5
# events (step 0), masks only by a segmentation run (the `segmentation_served` fixture's "seg")
GOOD_FOR = {"feature_vis": {"step": "0"}, "feature_vis.npy": {"step": "0"},
            "mask": {"run": "seg", "step": "1"}, "mask.npy": {"run": "seg", "step": "1"}}
BAD_VALUES = ["", "-1", "abc", "1.5", "99999999999999999999", "４", "../../etc/passwd", "x" * 5000,
              "<script>alert(1)</script>", "\u202e\u0000", "12345"]
MISSING = None
# The parameters each route reads (web.py, routes.py): what kind of value, and whether it may be
# omitted. A parameter a route does not read is ignored: the answer is the good request's.
RUN, INDEX, NAME, CHOICE = "run", "index", "name", "choice"
_STEP = {"run": (RUN, True), "step": (INDEX, True), "mode": (CHOICE, False)}
PARAMETERS = {
    "event": _STEP,
    "gradcam": {**_STEP, "sample": (INDEX, True), "method": (CHOICE, False), "class": (INDEX, False)},
    "gradcam.npy": {**_STEP, "sample": (INDEX, False), "method": (CHOICE, False), "class": (INDEX, False)},
    "activations": {**_STEP, "layer": (NAME, True), "sample": (INDEX, True), "channel": (INDEX, False)},
    "activations.npy": {**_STEP, "layer": (NAME, True), "sample": (INDEX, False), "channel": (INDEX, False)},
    "filters": {**_STEP, "layer": (NAME, True), "channel": (INDEX, False)},
    "filters.npy": {**_STEP, "layer": (NAME, True), "channel": (INDEX, False)},
    "stats": {**_STEP, "layer": (NAME, True)},
    "stats.npy": {**_STEP, "layer": (NAME, True)},
    "probe": {"run": (RUN, True), "sample": (INDEX, True)},
    "probes.npy": {"run": (RUN, True), "sample": (INDEX, False)},
    "filter_drift": {"run": (RUN, True), "mode": (CHOICE, False), "layer": (NAME, True), "stat": (CHOICE, True)},
    "filter_drift.npy": {"run": (RUN, True), "mode": (CHOICE, False), "layer": (NAME, True), "stat": (CHOICE, True)},
    "faithfulness": {"run": (RUN, True), "mode": (CHOICE, False)},
    "mask": {**_STEP, "sample": (INDEX, True)},
    "mask.npy": {**_STEP, "sample": (INDEX, False)},
    "metrics": {"run": (RUN, True), "mode": (CHOICE, False), "method": (CHOICE, False)},
    "metrics.npy": {"run": (RUN, True), "mode": (CHOICE, False), "name": (CHOICE, True), "method": (CHOICE, False)},
    "object": {"run": (RUN, True), "sample": (INDEX, True)},
    **{route: {**_STEP, "layer": (NAME, True), "channel": (INDEX, True)}
       for route in ("top_examples", "top_examples.npy", "top_examples.png", "feature_vis", "feature_vis.npy")},
    "layer_summary": {"run": (RUN, True), "mode": (CHOICE, False)},
    "filter_stats": {"run": (RUN, True), "mode": (CHOICE, False), "layer": (NAME, True), "channel": (INDEX, True)},
    "filter_stats.npy": {"run": (RUN, True), "mode": (CHOICE, False), "layer": (NAME, True), "channel": (INDEX, True)},
}


def expected_status(route, name, value):
    """What `route` must answer when parameter `name` is `value` (MISSING: not given) and the
    others are good: 400 for a malformed value (web.py: empty, over 1,000 characters, not an
    index, not one of the choices), 404 for a well-formed one that is not in the data (a run,
    layer or index that was not logged), 200 for a parameter it does not read or may omit."""
    if name not in PARAMETERS[route]:
        return 200
    kind, required = PARAMETERS[route][name]
    if value is MISSING:
        return 400 if required else 200
    if value == "" or len(value) > 1000:
        return 400
    if kind in (RUN, NAME):
        return 404
    if kind == INDEX:
        return 404 if value.isascii() and value.isdigit() and len(value) <= 15 else 400
    return 400


def test_the_parameter_table_names_every_route():
    assert sorted(PARAMETERS) == sorted(ALL_ROUTES)


@pytest.mark.slow
@pytest.mark.parametrize("route", ALL_ROUTES)
def test_malformed_parameters_get_400_or_404_json(served, segmentation_served, route):
    client = segmentation_served if route.startswith("mask") else served[0]
    good = {**GOOD, **GOOD_FOR.get(route, {})}
    status, _, good_body = client.get(route, **good)
    assert status == 200, (route, good, good_body[:300])  # else every case below would test nothing
    checked = 0
    for name in ("run", "step", "sample", "layer", "stat", "channel", "mode", "method", "name", "class"):
        values = BAD_VALUES + ([MISSING] if name in good else [])
        for value in values:
            params = {k: v for k, v in good.items() if k != name}
            if value is not MISSING:
                params[name] = value
            expected = expected_status(route, name, value)
            status, headers, body = client.get(route, **params)
            assert status == expected, (route, name, value if value is None else value[:40], status, body[:200])
            assert b"<script>" not in body and b"Traceback" not in body
            if expected != 200:
                client.get(route, **params).error(expected)  # a JSON body with its "error"
                checked += 1
            elif name not in PARAMETERS[route]:
                assert body == good_body, (route, name)  # ignored, not read
    assert checked >= len(PARAMETERS[route]) * len(BAD_VALUES)
    # data that cannot be read: a run written by a newer tb-cnnviz
    assert "upgrade" in client.get(route, **{**good, "run": "future"}).error(422)["error"]


@pytest.mark.slow
def test_repeated_parameter_and_unknown_names_say_what_is_valid(served):
    client, _, _ = served
    status, _, body = client.get("gradcam", run="alpha", step="4", sample="0")
    assert status == 200
    assert "once" in client.get("gradcam?run=alpha&step=4&step=5&sample=0").error(400)["error"]
    status, _, body = client.get("gradcam", run="nope", step="4", sample="0")
    assert status == 404 and json.loads(body)["valid"] == ["alpha", "beta", "future"]
    status, _, body = client.get("gradcam", run="future", step="0", sample="0")
    assert status == 422 and "upgrade" in json.loads(body)["error"]
    status, _, body = client.get("activations", run="alpha", step="4", sample="0", layer="nope")
    assert status == 404 and json.loads(body)["valid"] == ["conv1", "sep2", "dw3", "conv4"]
    status, _, body = client.get("gradcam", run="alpha", step="3", sample="0")
    assert status == 404 and json.loads(body)["valid"] == [0, 2, 4]
    status, _, body = client.get("gradcam", run="alpha", step="4", sample="9")
    assert status == 404 and json.loads(body)["valid"] == [0, 1, 2, 3, 4]


def test_header_cache_is_bounded_by_bytes_least_recent_out_first():
    from tb_cnnviz.plugin.store import _LRU
    cache, computed = _LRU(10), []

    def compute(key, size):
        return lambda: (computed.append(key) or key.upper(), size)

    for key in ("a", "b", "a", "c", "b"):  # "c" pushes the total over 10: "b", least recent, goes
        assert cache.get(key, compute(key, 4)) == key.upper()
    assert computed == ["a", "b", "c", "b"]
    assert cache.get("big", compute("big", 50)) == "BIG"  # larger than the bound: kept alone
    assert cache.get("big", compute("big", 50)) == "BIG" and computed[-1] == "big" and len(computed) == 5
