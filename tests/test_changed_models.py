"""Runs whose model changed between events (tests/changed_models.py: a conv layer widened, added,
removed or narrowed, fewer or more probes, a segmentation head's probes), written by the real
callback: every route of the real plugin (in process: TensorBoardWSGI over the real data provider)
answers 200 or a JSON 4xx, never 500, and a 200 holds that step's data; read_run raises KeyError or
FormatError, never a numpy error; and every view of the tab shows what it can at an old step and a
new one (Chromium)."""

import functools
import itertools
import json
import logging
import math

import numpy as np
import pytest

import tb_cnnviz
from tb_cnnviz.plugin.routes import ROUTES
from tb_cnnviz.storage.metadata import ACTIVATIONS, FILTERS, GRADCAM, FormatError
from tb_cnnviz.storage.tensors import METRIC_NAMES, STAT_NAMES
from tests.browser_helpers import assert_no_tab_fault, console_errors, open_tab, wait_ready
from tests.changed_models import CHANGES, MAX_CHANNELS, process_at, write_changed_runs
from tests.plugin_helpers import logged_steps, wsgi_client

STEP = ("mode", "step")
# What each route reads beside `run`; "?": it may be left out.
READS = {
    "runs": (), "event": STEP, "probe": ("sample",), "probes.npy": ("sample?",), "object": ("sample",),
    "gradcam": STEP + ("method", "sample", "class?"), "gradcam.npy": STEP + ("method", "sample?", "class?"),
    "mask": STEP + ("sample",), "mask.npy": STEP + ("sample?",),
    "activations": STEP + ("layer", "sample", "channel?"), "activations.npy": STEP + ("layer", "sample?", "channel?"),
    "filters": STEP + ("layer", "channel?"), "filters.npy": STEP + ("layer", "channel?"),
    "stats": STEP + ("layer",), "stats.npy": STEP + ("layer",),
    "filter_drift": ("mode", "layer", "stat"), "filter_drift.npy": ("mode", "layer", "stat"),
    "faithfulness": ("mode",), "metrics": ("mode",), "metrics.npy": ("mode", "name"), "layer_summary": ("mode",),
    **{route: STEP + ("layer", "channel") for route in ("top_examples", "top_examples.npy", "top_examples.png",
                                                         "feature_vis", "feature_vis.npy")},
    "filter_stats": ("mode", "layer", "channel"), "filter_stats.npy": ("mode", "layer", "channel"),
}
INDICES = ("sample", "channel", "class")


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("changed_models")
    write_changed_runs(str(logdir))
    return logdir


@pytest.fixture(scope="module")
def client(logdir):
    return wsgi_client(str(logdir))


@pytest.fixture(scope="module")
def reader(logdir):
    return {run: tb_cnnviz.read_run(logdir / run) for run in CHANGES}


def test_the_sweep_names_every_route():
    assert sorted(READS) == sorted(route.lstrip("/") for route in ROUTES)


def _values(client, run: str, info: dict) -> dict:
    """Every value of each parameter worth asking `run` for: the steps of each mode and one past,
    every layer the run header, a step's index or any of its models names (and one none does),
    every sample, channel and class index valid at some step and one past each."""
    processes = CHANGES[run]
    steps = {mode: [*info["steps"][mode], max(info["steps"][mode]) + 1] for mode in ("train", "eval")}
    layers = {*info["conv_layers"], *(layer for p in processes for layer in p.widths), "nope"}
    for mode in ("train", "eval"):
        for step in info["steps"][mode]:
            event = client.json("event", run=run, mode=mode, step=step)
            layers.update(layer for kind in ("activations", "filters", "top_examples", "feature_vis")
                          for layer in event.get(kind, {}))
    widest = max(p.filters(layer) or 0 for p in processes for layer in layers)
    return {"mode": ["train", "eval"], "steps": steps, "layer": sorted(layers), "method": ["gradcam", "gradcam_pp"],
            "stat": list(STAT_NAMES), "name": list(METRIC_NAMES),
            "sample": list(range(max(p.probes for p in processes) + 1)), "channel": list(range(widest + 1)),
            "class": list(range(info["num_classes"] + 1))}


def _index_choices(names: list, values: dict) -> list:
    """{index parameter: value} combinations: a sample with each class (the classes stored differ
    by probe), else each index over its values with the others at their default (left out if
    they may be, else 0)."""
    if {"sample", "class"} <= {name.rstrip("?") for name in names}:
        samples = values["sample"] + ([None] if "sample?" in names else [])
        return [{"sample": s, "class": c} for s in samples for c in [None, *values["class"]]]
    default = {name.rstrip("?"): None if name.endswith("?") else 0 for name in names}
    choices = [dict(default)]
    for name in names:
        plain = name.rstrip("?")
        choices += [{**default, plain: value} for value in values[plain]]
    return choices


def requests(run: str, route: str, values: dict):
    """The parameters of every request of the sweep of `route` over `run`."""
    names = READS[route]
    others = [name for name in names if name not in STEP and name.rstrip("?") not in INDICES]
    indices = [name for name in names if name.rstrip("?") in INDICES]
    seen = set()
    for mode in values["mode"] if "mode" in names else [None]:
        for step in values["steps"][mode] if "step" in names else [None]:
            for chosen in itertools.product(*(values[name] for name in others)):
                for index in _index_choices(indices, values):
                    params = {"run": run, "mode": mode, "step": step, **dict(zip(others, chosen)), **index}
                    params = {k: v for k, v in params.items() if v is not None}
                    key = tuple(sorted(params.items()))
                    if key not in seen:
                        seen.add(key)
                        yield params


def _nan_to_none(values):
    """`values` as a JSON answer has them: NaN and infinities as None."""
    if isinstance(values, dict):
        return {key: _nan_to_none(value) for key, value in values.items()}
    if isinstance(values, (list, tuple)):
        return [_nan_to_none(value) for value in values]
    return None if isinstance(values, float) and not math.isfinite(values) else values


class Expected:
    """What read_run reads for a request the plugin answered 200, each event's arrays read once."""

    def __init__(self, run):
        self.run = run
        self.cache = functools.lru_cache(maxsize=None)(self._read)

    def _read(self, mode, step, what, *args):
        event = self.run.event(step, mode)
        return getattr(event, what)(*args) if callable(getattr(type(event), what, None)) else getattr(event, what)

    def npy(self, route: str, p: dict):
        mode, step, layer, channel, sample = (p.get(k) for k in ("mode", "step", "layer", "channel", "sample"))
        mode = mode or "train"
        if route == "probes.npy":
            return self.run.probes if sample is None else self.run.probes[sample]
        if route == "gradcam.npy":
            if "class" in p:
                return self.cache(mode, step, "gradcam_for", sample, p["class"], p["method"])
            found = self.cache(mode, step, {"gradcam": "gradcam", "gradcam_pp": "gradcam_pp"}[p["method"]])
            return found if sample is None else found[sample]
        if route == "mask.npy":
            found = self.cache(mode, step, "masks")
            return found if sample is None else found[sample]
        if route in ("activations.npy", "filters.npy"):
            found, channels = self.cache(mode, step, route.split(".")[0], layer)[:2]
            found = found if sample is None else found[sample]
            if channel is None:
                return found
            return found[channels.index(channel)] if route == "filters.npy" else found[..., channels.index(channel), :, :]
        if route == "stats.npy":
            return np.stack(list(self.cache(mode, step, "stats", layer).values()))
        if route == "filter_drift.npy":
            return self.run.filter_drift(layer, p["stat"], mode)[1]
        if route == "filter_stats.npy":
            return self.run.filter_stats(layer, channel, mode)[1]
        if route == "metrics.npy":
            return self.run.metrics(mode)[1][p["name"]]
        if route == "top_examples.npy":
            return self.cache(mode, step, "top_example_patches", layer, channel)[0]
        if route == "feature_vis.npy":
            images, channels = self.cache(mode, step, "feature_vis", layer)
            return images[channels.index(channel)]
        raise AssertionError(route)

    def json(self, route: str, p: dict, body: dict):
        """Checks a JSON answer against the reader's values."""
        mode = p.get("mode", "train")
        if route == "stats":
            assert body == _nan_to_none({k: v.tolist() for k, v in self.cache(mode, p["step"], "stats", p["layer"]).items()})
        elif route == "filter_drift":
            matrix = self.run.filter_drift(p["layer"], p["stat"], mode)[1]
            assert body["filters"] == matrix.shape[0] and body["values"] == _nan_to_none(matrix.tolist())
        elif route == "filter_stats":
            matrix = self.run.filter_stats(p["layer"], p["channel"], mode)[1]
            assert body["stats"] == _nan_to_none(dict(zip(STAT_NAMES, matrix.tolist())))
        elif route == "top_examples":
            top = self.cache(mode, p["step"], "top_examples", p["layer"])
            assert {k: body[k] for k in ("images", "positions")} == {k: top.of(p["channel"])[k] for k in ("images", "positions")}
        elif route == "event":
            assert len(body["predictions"]["predicted"]) == process_at(p["run"], p["step"]).probes


def _check(client, expected: Expected, route: str, params: dict, problems: list):
    answer = client.get(route, **params)
    if answer.status != 200:
        if not 400 <= answer.status < 500:
            problems.append((route, params, answer.status, answer.body[:200]))
            return answer.status
        answer.error(answer.status)  # JSON with its "error"
        return answer.status
    if route.endswith(".npy"):
        np.testing.assert_array_equal(answer.npy(), expected.npy(route, params), err_msg=f"{route} {params}")
    elif answer.headers["Content-Type"] == "image/png":
        assert answer.png().size > 0
    else:
        expected.json(route, params, answer.json())
    return 200


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(CHANGES))
def test_every_route_answers_200_or_a_json_4xx_and_a_200_is_what_the_reader_reads(client, reader, run, caplog):
    info = client.runs()[run]
    values = _values(client, run, info)
    expected, problems, counts = Expected(reader[run]), [], {}
    with caplog.at_level(logging.ERROR, logger="tb_cnnviz"):
        for route in READS:
            for params in requests(run, route, values):
                status = _check(client, expected, route, params, problems)
                counts[status] = counts.get(status, 0) + 1
    assert problems == []
    assert [r.getMessage() for r in caplog.records if "failed" in r.getMessage()] == []
    assert counts[200] > 300 and counts[404] > 300, counts  # both kinds of answer were met


def _process_layers(run: str) -> list:
    return sorted({layer for p in CHANGES[run] for layer in p.widths})


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(CHANGES))
def test_each_step_answers_with_the_model_and_probes_it_had(client, run):
    """The structure of each answer from CHANGES alone: a step's samples, a layer's filters and
    channels at that step, 404 naming what that step has."""
    info = client.runs()[run]
    assert info["samples"] == CHANGES[run][-1].probes  # the latest run header wins
    for mode in ("train", "eval"):
        for step in info["steps"][mode]:
            process = process_at(run, step)
            event = client.json("event", run=run, mode=mode, step=step)
            params = {"run": run, "mode": mode, "step": step}
            assert client.ok("gradcam.npy", **params, method="gradcam").npy().shape[0] == process.probes
            error = client.get("gradcam", **params, sample=process.probes).error(404)
            assert error["valid"] == list(range(process.probes)) and f"at step {step}" in error["error"]
            for layer in _process_layers(run):
                width = process.filters(layer)
                answer = client.get("activations.npy", **params, layer=layer)
                stats = client.get("stats.npy", **params, layer=layer)
                if width is None:  # a layer this step's model did not have
                    assert answer.status == stats.status == 404
                    assert "error" in event["activations"].get(layer, {"error": "not listed"})
                    continue
                assert answer.npy().shape[:2] == (process.probes, min(MAX_CHANNELS, width))
                assert stats.npy().shape == (len(STAT_NAMES), width)
                assert client.ok("filters.npy", **params, layer=layer).npy().shape[0] == min(MAX_CHANNELS, width)
                # the steps whose model had that filter, with top examples of these probes (the
                # latest callback's); none, and no step had it: the layer's filters at its widest
                error = client.get("top_examples", **params, layer=layer, channel=width).error(404)
                held = [s for s in info["steps"][mode] if (process_at(run, s).filters(layer) or 0) > width
                        and process_at(run, s).probes == info["samples"]]
                widest = max(p.filters(layer) or 0 for p in CHANGES[run])
                assert error.get("valid", []) == (held or (list(range(widest)) if width == widest else [])), error
                assert f"{width} filters" in error["error"], error


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(CHANGES))
def test_filter_drift_has_a_row_per_filter_of_the_widest_step_and_nan_where_a_step_had_fewer(client, reader, run):
    info = client.runs()[run]
    for mode in ("train", "eval"):
        for layer in _process_layers(run):
            steps = [s for s in info["steps"][mode] if process_at(run, s).filters(layer)]
            widest = max(process_at(run, s).filters(layer) for s in steps)
            answer = client.json("filter_drift", run=run, mode=mode, layer=layer, stat="norm")
            assert answer["steps"] == steps and answer["filters"] == widest
            matrix = np.array(answer["values"], float)  # None -> NaN
            assert matrix.shape == (widest, len(steps))
            for column, step in enumerate(steps):
                assert np.isfinite(matrix[:, column]).sum() == process_at(run, step).filters(layer), (layer, step)
            steps_read, values = reader[run].filter_drift(layer, "norm", mode)
            assert steps_read.tolist() == steps
            np.testing.assert_array_equal(values, client.ok("filter_drift.npy", run=run, mode=mode, layer=layer,
                                                            stat="norm").npy())
            error = client.get("filter_stats", run=run, mode=mode, layer=layer, channel=widest).error(404)
            assert error["valid"] == list(range(widest))


def _reader_calls(run, values):
    """(what, call) of every method of read_run's Run and Event over the sweep's values."""
    for mode in ("train", "eval"):
        yield f"{mode} steps", lambda mode=mode: run.steps(mode)
        yield f"layer_summary {mode}", lambda mode=mode: run.layer_summary(mode)
        yield f"metrics {mode}", lambda mode=mode: run.metrics(mode)
        yield f"faithfulness {mode}", lambda mode=mode: run.faithfulness(mode)
        for layer, stat in itertools.product(values["layer"], STAT_NAMES):
            yield f"filter_drift {layer} {stat} {mode}", lambda a=(layer, stat, mode): run.filter_drift(*a)
        for layer, channel in itertools.product(values["layer"], values["channel"]):
            yield f"filter_stats {layer} {channel} {mode}", lambda a=(layer, channel, mode): run.filter_stats(*a)
        for step in values["steps"][mode]:
            yield f"event {step} {mode}", lambda a=(step, mode): run.event(*a)
    yield "reference_images", lambda: run.reference_images
    yield "objects", lambda: run.objects


def _event_calls(event, values):
    """(what, call) of every method of one Event over the sweep's values."""
    for name in ("predictions", "gradcam", "gradcam_pp", "masks", "metrics", "faithfulness"):
        yield name, lambda name=name: getattr(event, name)
    yield "nonfinite gradcam", lambda: event.nonfinite(GRADCAM)
    for sample in values["sample"]:
        yield f"gradcam_classes {sample}", lambda s=sample: event.gradcam_classes(s)
        for class_index, method in itertools.product(values["class"], ("gradcam", "gradcam_pp")):
            yield f"gradcam_for {sample} {class_index} {method}", lambda a=(sample, class_index, method): event.gradcam_for(*a)
    for layer in values["layer"]:
        for kind in (ACTIVATIONS, FILTERS):
            yield f"nonfinite {kind} {layer}", lambda a=(kind, layer): event.nonfinite(*a)
        for name in ("activations", "filters", "stats", "top_examples", "feature_vis"):
            yield f"{name} {layer}", lambda name=name, layer=layer: getattr(event, name)(layer)
        for channel in values["channel"]:
            yield f"top_example_patches {layer} {channel}", lambda a=(layer, channel): event.top_example_patches(*a)


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(CHANGES))
def test_the_reader_answers_or_raises_key_or_format_errors_with_a_message(client, reader, run):
    values = _values(client, run, client.runs()[run])
    unclear, answered = [], 0
    calls = list(_reader_calls(reader[run], values))
    for mode in ("train", "eval"):
        for step in reader[run].steps(mode):
            calls += [(f"{what} at {mode} step {step}", call)
                      for what, call in _event_calls(reader[run].event(step, mode), values)]
    for what, call in calls:
        try:
            call()
            answered += 1
        except (KeyError, FormatError) as error:
            if not str(error).strip("'\""):
                unclear.append((what, repr(error)))
        except Exception as error:  # noqa: BLE001 - what this test looks for
            unclear.append((what, repr(error)))
    assert unclear == []
    assert answered > len(calls) / 4


# -- the tab (Chromium, in a real tensorboard) ---------------------------------------------------
# the layer each run's views and filter card are opened at: the one that changed
CHANGED_LAYER = {"widened": "conv2", "added": "conv3", "removed": "conv3", "probes": "conv2", "narrowed": "conv1",
                 "segmentation": "conv2"}


@pytest.fixture(scope="module")
def server_logdir(logdir):
    return str(logdir), logged_steps(str(logdir))


def _check_view(frame, server, run, view, step):
    """The view at `step` draws what that step has, and says what it lacks."""
    assert_no_tab_fault(frame)
    process, info, layer = process_at(run, step), server.runs()[run], CHANGED_LAYER[run]
    errors = frame.locator("main .message.error").all_text_contents()
    if view == "gradcam":
        assert frame.locator("canvas.heat").count() == min(process.probes, info["samples"])
        assert frame.locator("p.probe-count").count() == (process.probes != info["samples"])
    elif view == "methods":  # Grad-CAM's and Grad-CAM++'s maps of each probe the step probed, and their figures
        assert frame.locator("table.methods-maps canvas.heat").count() == 2 * min(process.probes, info["samples"])
        assert frame.locator("table.ranking tbody tr").count() == 2
    elif view == "activations":
        drawn = frame.locator("canvas.mosaic").count()
        assert (drawn, errors) == ((process.probes, []) if process.filters(layer) else
                                   (0, [f"no activations of '{layer}' at step {step}"]))
    elif view == "filters":  # every layer of the step's model, and for each the latest model has besides, why not
        shown = frame.locator("canvas.filters").evaluate_all("cs => cs.map(c => c.dataset.layer)")
        assert sorted(shown) == sorted([*process.widths, *(["classes"] if process.segmentation else [])])
        assert sorted(errors) == sorted(f"no filters of '{other}' at step {step}" for other in info["filter_channels"]
                                        if other not in shown)
    elif view == "evolution":
        assert frame.locator("canvas.drift").count() == 1
        absent = frame.locator("main .message.empty").all_text_contents()
        assert absent == ([] if process.filters(layer) else
                          [f"{layer} has no statistics at step {step}: the model logged then had no such layer"])
    elif view == "layers":
        assert frame.locator("table.layers tbody tr").count() == len(info["conv_layers"])
    elif view == "trust":
        assert frame.locator("figure.chart-card").count() >= 4


def _move(page, frame, key, view, step):
    frame.locator("input.step-slider").focus()
    page.keyboard.press(key)
    wait_ready(frame, view, step)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("run", sorted(CHANGES))
def test_every_view_shows_what_each_step_has(page, server, run):
    errors = console_errors(page)
    steps = server.runs()[run]["steps"]["train"]
    layer = CHANGED_LAYER[run]
    for view in ("gradcam", "methods", "activations", "filters", "evolution", "layers", "trust"):
        frame = open_tab(page, server, run=run, view=view, step=steps[0], layer=layer, evolayer=layer)
        wait_ready(frame, view, steps[0])
        _check_view(frame, server, run, view, steps[0])
        for key, step in (("End", steps[-1]), ("Home", steps[0])):
            _move(page, frame, key, view, step)
            _check_view(frame, server, run, view, step)
    assert errors == []


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("run", sorted(CHANGES))
def test_the_filter_card_shows_what_each_step_has(page, server, run):
    """The card of the changed layer's last filter (in the latest model): each section drawn, or
    saying what that step lacks."""
    errors = console_errors(page)
    info = server.runs()[run]
    steps, layer = info["steps"]["train"], CHANGED_LAYER[run]
    channel = info["conv_layers"][layer]["output_shape"][-1] - 1
    frame = open_tab(page, server, run=run, view="filters", step=steps[0], cardlayer=layer, cardchannel=channel)
    for key, step in ((None, steps[0]), ("End", steps[-1]), ("Home", steps[0])):
        if key:
            _move(page, frame, key, "filters", step)
        card = frame.locator(f"aside.filter-card[data-ready={json.dumps(f'{layer}:{channel}:{step}')}]")
        card.wait_for(timeout=30000)
        assert_no_tab_fault(frame, "aside.filter-card")
        for part in ("kernel", "examples", "feature-vis", "stats"):
            section = card.locator(f"section[data-part={part}]")
            assert section.locator("canvas, svg, p").count() > 0, (part, step, section.text_content())
        logged = server.json("event", run=run, step=step)["filters"][layer].get("channels", [])  # at that step
        drawn = channel in info["filter_channels"][layer] and channel in logged
        assert card.locator("section[data-part=kernel] canvas.kernel").count() == drawn, (step, logged)
    assert errors == []
