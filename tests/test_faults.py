"""Damaged logdirs: garbage, foreign and truncated data, and runs broken while being served.

Every damaged run must get a JSON answer saying what is wrong (never a 500), and the other
runs must keep being served unchanged.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

from tests.http_api import npy, wait_for_runs
from tests.plugin_helpers import damage_images, edit_step_index, logged_steps, rewrite_run, write_logs, wsgi_client
from tests.polling import wait_for

GOOD = ("alpha", "beta")


def stats_as_strings(value):
    """Another writer's strings where cnnviz keeps float statistics."""
    if value.tag.startswith("train/stats/") or value.tag == "train/faithfulness":
        value.tensor.CopyFrom(tensor_util.make_tensor_proto(np.asarray([b"not", b"floats"], dtype=object)))


def write_foreign(run_dir, header):
    """A summary under the cnnviz plugin name that cnnviz did not write."""
    foreign = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="cnnviz", content=b"someone else's"),
        data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
    with tf.summary.create_file_writer(run_dir).as_default():
        tf.summary.write("probes", tf.constant([header, b"\x00\x01"]), step=0, metadata=foreign)
        tf.summary.write("train/predictions", tf.constant([header]), step=0, metadata=foreign)


def event_file(run_dir):
    return os.path.join(run_dir, next(n for n in os.listdir(run_dir) if "tfevents" in n))


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("faults") / "logs")
    write_logs(root)
    alpha = os.path.join(root, "alpha")
    rewrite_run(alpha, os.path.join(root, "damaged_images"), damage_images)
    rewrite_run(alpha, os.path.join(root, "foreign_stats"), stats_as_strings)
    rewrite_run(alpha, os.path.join(root, "damaged_index"),
                edit_step_index(lambda header: header.update(summaries=["not", "an", "index"])))
    rewrite_run(alpha, os.path.join(root, "partial_index"), edit_step_index(
        lambda header: [header["summaries"].pop(key) for key in ("faithfulness", "gradcam_pp")]
        + [header["summaries"]["activations"].pop("conv1")]))
    write_foreign(os.path.join(root, "foreign"), b"hello")
    write_foreign(os.path.join(root, "foreign_json"), b'{"version": 1, "hello": "world"}')
    os.makedirs(os.path.join(root, "garbage"))
    with open(os.path.join(root, "garbage", "events.out.tfevents.1.garbage"), "wb") as f:
        f.write(np.random.default_rng(0).bytes(50_000))
    shutil.copytree(alpha, os.path.join(root, "garbage_tail"))
    with open(event_file(os.path.join(root, "garbage_tail")), "ab") as f:
        f.write(np.random.default_rng(1).bytes(5_000))
    return root


def runs_by_name(api):
    return {run["run"]: run for run in api.json("runs")["runs"]}


def routes(run, info):
    """One request per data route for `run` (info: its entry in a healthy copy's `runs`)."""
    step = info["steps"]["train"][-1]
    layer = info["layers"][0]
    common = {"run": run, "step": step}
    return [
        ("event", common), ("probe", {"run": run, "sample": 0}), ("probes.npy", {"run": run}),
        ("gradcam", {**common, "sample": 0}), ("gradcam.npy", {**common, "sample": 0}),
        ("activations", {**common, "layer": layer, "sample": 0}),
        ("activations.npy", {**common, "layer": layer, "sample": 0}),
        ("activations", {**common, "layer": info["layers"][-1], "sample": 0}),
        ("filters", {**common, "layer": layer}), ("filters.npy", {**common, "layer": layer}),
        ("stats", {**common, "layer": layer}), ("stats.npy", {**common, "layer": layer}),
        ("filter_drift", {"run": run, "layer": layer, "stat": "norm"}),
        ("filter_drift.npy", {"run": run, "layer": layer, "stat": "norm"}),
        ("faithfulness", {"run": run}),
    ]


def answers(api, run, info):
    """{(route, params): (status, body)} of every route for `run`."""
    result = {}
    for route, params in routes(run, info):
        status, _, body = api.get(route, **params)
        result[route, json.dumps(params)] = status, body
    return result


def assert_json_error(status, body, *codes):
    assert status in codes, (status, body[:300])
    assert "error" in json.loads(body), body[:300]


@pytest.mark.slow
def test_damaged_and_foreign_runs_get_clear_errors_and_the_others_are_untouched(logdir):
    api = wsgi_client(logdir)
    runs = runs_by_name(api)
    assert "garbage" not in runs  # no readable record: TensorBoard has no run to list
    assert "unreadable cnnviz metadata" in runs["foreign"]["error"]
    assert "not a cnnviz run header" in runs["foreign_json"]["error"]
    assert runs["garbage_tail"]["steps"] == runs["alpha"]["steps"]  # the damaged tail is skipped
    for run in ("foreign", "foreign_json"):
        for (route, _), (status, body) in answers(api, run, runs["alpha"]).items():
            assert_json_error(status, body, 422)

    damaged = answers(api, "damaged_images", runs["alpha"])
    for (route, params), (status, body) in damaged.items():
        if route.startswith("gradcam") or (route.startswith("activations") and "conv1" in params):
            assert_json_error(status, body, 422)
            # each names its own damage: garbage Grad-CAM PNGs, conv1's header without its ranges
            assert (b"damaged cnnviz image" if route.startswith("gradcam") else b"ranges do not match") in body, body
        else:
            assert status == 200, (route, params, body[:300])
    event = api.json("event", run="damaged_images", step=runs["alpha"]["steps"]["train"][-1])
    assert "ranges do not match" in event["activations"]["conv1"]["error"]  # the rest of the step is usable
    assert "error" not in event["activations"]["sep2"] and "error" not in event["gradcam"]

    for (route, params), (status, body) in answers(api, "damaged_index", runs["alpha"]).items():
        if route == "event":
            assert_json_error(status, body, 422)
            assert b"damaged cnnviz step index" in body
        else:
            assert status == 200, (route, params, body[:300])

    step = runs["alpha"]["steps"]["train"][-1]
    partial = api.json("event", run="partial_index", step=step)  # a step index missing parts
    assert partial["faithfulness"] is None and "error" in partial["gradcam_pp"]
    assert partial["activations"]["conv1"] == {"error": f"no activations of 'conv1' at step {step}"}
    assert "error" not in partial["activations"]["sep2"] and "error" not in partial["gradcam"]

    foreign_stats = answers(api, "foreign_stats", runs["alpha"])
    for (route, params), (status, body) in foreign_stats.items():
        if route.startswith(("stats", "filter_drift", "faithfulness")):
            assert_json_error(status, body, 422)
        else:
            assert status == 200, (route, params, body[:300])

    healthy = list(answers(api, "alpha", runs["alpha"]).values())
    assert all(status == 200 for status, _ in healthy)
    tail = [(status, body.replace(b"garbage_tail", b"alpha"))
            for status, body in answers(api, "garbage_tail", runs["alpha"]).values()]
    assert tail == healthy


def wait_for_full_reloads(api, live, source, cycles=2):
    """Waits until the server at `api` has reloaded `live` from start to end `cycles` times since
    this call, by copying run `source` into `live` as marker runs, one after another. TensorBoard
    reloads in a loop, each reload finding the runs then loading them (both load modes): the first
    marker is found by a reload that began after this call; each next one, copied once the one
    before is listed, by a later reload, so the reload that listed the one before has finished."""
    for index in range(cycles + 1):
        marker = f"reload_marker_{index}"
        shutil.copytree(source, os.path.join(live, marker))
        wait_for_runs(api, [marker], timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", [False, True], ids=["python-loader", "rust-data-server"])
def test_runs_broken_while_served_do_not_disturb_the_others(logdir, tmp_path, tensorboard_server, load_fast):
    live = str(tmp_path / "live")
    for run in ("alpha", "beta"):
        shutil.copytree(os.path.join(logdir, run), os.path.join(live, run))
    for copy in ("deleted", "truncated", "overwritten"):
        shutil.copytree(os.path.join(logdir, "alpha"), os.path.join(live, copy))
    with tensorboard_server(live, load_fast, runs=logged_steps(live)) as api:
        runs = runs_by_name(api)
        assert sorted(runs) == ["alpha", "beta", "deleted", "overwritten", "truncated"]
        before = {run: answers(api, run, runs[run]) for run in GOOD}

        shutil.rmtree(os.path.join(live, "deleted"))
        with open(event_file(os.path.join(live, "truncated")), "r+b") as f:
            f.truncate(os.path.getsize(f.name) // 2)
        with open(event_file(os.path.join(live, "overwritten")), "r+b") as f:
            f.write(np.random.default_rng(2).bytes(os.path.getsize(f.name) + 10_000))
        # TensorBoard has read the damage: two whole reloads since, and it no longer lists the deleted run
        wait_for_full_reloads(api, live, os.path.join(logdir, "beta"))
        wait_for(lambda: "deleted" not in runs_by_name(api), 60, "tensorboard to drop the deleted run")

        after = runs_by_name(api)
        for run in GOOD:
            assert after[run] == runs[run]
            assert answers(api, run, runs[run]) == before[run]
        assert "deleted" not in after  # TensorBoard drops a deleted run: its routes say so
        for (route, params), (status, body) in answers(api, "deleted", runs["alpha"]).items():
            assert_json_error(status, body, 404)
            assert b"no cnnviz data for run 'deleted'" in body
        for run in ("truncated", "overwritten"):  # what was loaded stays served; no error page
            assert after[run] == {**runs["alpha"], "run": run}
            for (route, params), (status, body) in answers(api, run, runs["alpha"]).items():
                assert status == 200, (run, route, params, status, body[:300])
        status, _, body = api.get("gradcam.npy", run="alpha", step=runs["alpha"]["steps"]["train"][-1], sample=1)
        assert status == 200 and npy(body).shape == (32, 32)
