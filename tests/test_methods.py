"""The callback's `methods=`: each method's maps of the probes' target classes and their trust
figures at every event, read back by the reader, the routes and as TensorBoard scalars, equal to
`explain` and to the figures computed here."""

import hashlib
import os

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

import tb_cnnviz
from tests.helpers import assert_maps_agree, small_cnn
from tests.plugin_helpers import wsgi_client
from tests.polling import wait_for
from tb_cnnviz.explanations import trust
from tb_cnnviz.explanations.gradcam import PARAMETERS
from tb_cnnviz.storage import metadata
from tb_cnnviz.storage.tensors import METRIC_NAMES

pytestmark = pytest.mark.every_backend  # what the model computes, on each backend (.ci/run)

CHEAP = ("gradcam", "gradcam_pp", "hirescam", "xgradcam", "layercam", "eigencam")  # every event's
PROBES = 8


@pytest.fixture(scope="module")
def every_method(tmp_path_factory, data):
    """A model trained for 2 epochs, logged with all nine methods: train events at steps 0 (with
    deletion and insertion, so with the many-pass methods) and 1 (without), an eval event at 2."""
    keras.utils.set_random_seed(2)
    images, labels, masks = data
    model = small_cnn()
    model.fit(images, labels, epochs=2, batch_size=32, verbose=0)
    logdir = str(tmp_path_factory.mktemp("methods") / "run")
    callback = tb_cnnviz.CNNViz(logdir, images[:PROBES], labels[:PROBES], masks=masks[:PROBES], model=model,
                                methods=metadata.METHODS, trust_every=2, strict=True)
    for step, mode in ((0, "train"), (1, "train"), (2, "eval")):
        callback.log(step, mode=mode)
    return model, images[:PROBES], masks[:PROBES], logdir, tb_cnnviz.read_run(logdir)


def test_the_methods_are_one_list():
    assert tuple(PARAMETERS) == metadata.METHODS


@pytest.mark.slow
def test_each_event_holds_the_maps_of_its_methods_equal_to_explain(every_method):
    model, probes, _, _, run = every_method
    assert run.header.scored_methods() == list(metadata.METHODS)
    for step, mode, methods in ((0, "train", metadata.METHODS), (1, "train", CHEAP), (2, "eval", metadata.METHODS)):
        event = run.event(step, mode)
        assert event.methods == list(methods)
        target = np.asarray(event.predictions["target"])
        for method in methods:
            expected = tb_cnnviz.explain(model, probes, method, class_index=target)
            assert_maps_agree(expected, event.maps(method), (1, 2), f"{method} at {mode} step {step}")
    with pytest.raises(KeyError, match="holds no scorecam maps"):
        run.event(1).maps("scorecam")


def _energy(maps, masks):
    """The share of each map's mass on the object, written out."""
    return np.array([m[k].sum() / m.sum() if m.sum() > 0 else np.nan for m, k in zip(maps.astype(np.float64), masks)])


@pytest.mark.slow
def test_each_method_is_scored_on_its_own_maps(every_method):
    """Deletion and insertion where the event computes them, localisation at every event, the rank
    correlation with the method's first maps; the faithfulness check is Grad-CAM's alone."""
    model, probes, masks, _, run = every_method
    for step, mode, methods in ((0, "train", metadata.METHODS), (1, "train", CHEAP), (2, "eval", metadata.METHODS)):
        event = run.event(step, mode)
        target = np.asarray(event.predictions["target"])
        for method in methods:
            figures = event.metrics if method == "gradcam" else event.method_metrics(method)
            maps = tb_cnnviz.explain(model, probes, method, class_index=target)
            np.testing.assert_allclose(figures["energy_in_mask"], _energy(maps, masks), atol=2e-3, err_msg=method)
            peaks = [np.unravel_index(np.argmax(m), m.shape) for m in maps]
            near = np.array([k[max(0, y - 1):y + 2, max(0, x - 1):x + 2].any() for (y, x), k in zip(peaks, masks)])
            top = np.sort(maps.reshape(PROBES, -1), axis=1)[:, -2:]
            clear = top[:, 1] - top[:, 0] > 1e-4 * top[:, 1]  # a peak that float rounding cannot move
            np.testing.assert_array_equal(figures["pointing_game"][clear], near[clear], err_msg=method)
            assert clear.sum() >= PROBES // 2, method
            scored = step != 1  # trust_every=2: the train event at step 1 has no curves
            for name in ("deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random"):
                assert np.isfinite(figures[name]).all() == scored and np.all((figures[name] >= 0) | ~scored), method
            # the same weights at every event: each map correlates perfectly with the method's first
            corr = figures["sanity_rank_corr"]
            assert np.all(np.isnan(corr) | (corr > 0.99)) and np.isfinite(corr).any(), (method, corr)
            assert np.isnan(figures["faithfulness"]).all() != (method == "gradcam"), method
        # the random order's curves are one per probe, whichever method's map the event scores
        random = {method: event.method_metrics(method)["deletion_auc_random"] for method in methods[1:]}
        for found in random.values():
            np.testing.assert_allclose(found, event.metrics["deletion_auc_random"], atol=1e-6)
    steps, series = run.metrics(method="scorecam")
    assert list(steps) == [0] and set(series) == set(METRIC_NAMES)
    assert list(run.metrics(method="hirescam")[0]) == [0, 1]


@pytest.mark.slow
def test_deletion_and_insertion_of_every_method_equal_each_maps_own_curves(every_method):
    """The event's one pass over every method's maps gives what each map's own curves give."""
    model, probes, _, logdir, run = every_method
    event = run.event(2, "eval")
    target = np.asarray(event.predictions["target"])
    callback = tb_cnnviz.CNNViz(logdir + "_alone", probes, model=model, strict=True)
    probe, ranks = callback._recorder.probe, callback._recorder.plan.random_ranks
    for method in ("hirescam", "smoothgrad"):
        maps = tb_cnnviz.explain(model, probes, method, class_index=target)
        alone = probe.deletion_insertion(probes, [maps], target, ranks, trust.CURVE_STEPS)[0]
        for curve, name in trust.CURVE_METRICS.items():
            np.testing.assert_allclose(event.method_metrics(method)[name], trust.auc(alone[curve]), atol=2e-3,
                                       err_msg=f"{method} {name}")


@pytest.mark.slow
def test_every_methods_figures_are_scalars_beside_the_loss(every_method):
    _, _, _, logdir, run = every_method
    scalars = event_accumulator.EventAccumulator(logdir, size_guidance={"tensors": 0}).Reload()
    tags = set(scalars.Tags()["tensors"])
    for method in metadata.METHODS:
        steps, series = run.metrics("eval", method)
        name = metadata.scalar_tag("eval", "insertion_auc", method)
        assert name == (f"cnnviz/eval/{method}/insertion_auc" if method != "gradcam" else "cnnviz/eval/insertion_auc")
        assert name in tags, name
        value = tensor_util.make_ndarray(scalars.Tensors(name)[0].tensor_proto)
        assert float(value) == pytest.approx(float(series["insertion_auc"][0]), abs=1e-6)
    assert "cnnviz/eval/hirescam/faithfulness" not in tags  # Grad-CAM's alone, never NaN scalars


@pytest.mark.slow
def test_the_scalars_tab_lists_every_methods_figures(every_method, tensorboard_server):
    """What TensorBoard's Scalars tab shows is what its plugin's routes serve: the tags of the run
    (/data/plugin/scalars/tags) and each tag's [wall time, step, value] rows."""
    _, _, _, logdir, run = every_method
    server = tensorboard_server(os.path.dirname(logdir), runs=["run"])
    tags = wait_for(lambda: server.json("/data/plugin/scalars/tags").get("run"), 60,
                    "the Scalars plugin to list the run's tags")
    for method in metadata.METHODS:
        steps, series = run.metrics("eval", method)
        name = metadata.scalar_tag("eval", "deletion_auc", method)
        assert name in tags, (name, sorted(tags))
        rows = server.json("/data/plugin/scalars/scalars", run="run", tag=name)
        assert [row[1] for row in rows] == steps.tolist()
        np.testing.assert_allclose([row[2] for row in rows], series["deletion_auc"], atol=1e-6)


@pytest.mark.slow
def test_routes_serve_every_method_and_refuse_what_is_not_there(every_method):
    _, _, _, logdir, run = every_method
    client, name = wsgi_client(os.path.dirname(logdir)), os.path.basename(logdir)
    assert client.json("runs")["runs"][0]["methods"] == list(metadata.METHODS)
    for method in metadata.METHODS:
        stored = run.event(2, "eval").maps(method)
        found = client.ok("gradcam.npy", run=name, mode="eval", step=2, method=method).npy()
        np.testing.assert_array_equal(found, stored)
        one = client.ok("gradcam.npy", run=name, mode="eval", step=2, method=method, sample=3).npy()
        np.testing.assert_array_equal(one, stored[3])
        assert client.ok("gradcam", run=name, mode="eval", step=2, method=method, sample=3).png().ndim == 2
        body = client.json("metrics", run=name, mode="eval", method=method)
        steps, series = run.metrics("eval", method)
        assert body["method"] == method and body["steps"] == list(steps)
        assert body["series"]["deletion_auc"] == pytest.approx(series["deletion_auc"].tolist(), abs=1e-6)
        np.testing.assert_allclose(client.ok("metrics.npy", run=name, mode="eval", method=method,
                                             name="deletion_auc").npy(), series["deletion_auc"])
    missing = client.get("gradcam.npy", run=name, step=1, method="scorecam").error(404)
    assert "holds no scorecam maps" in missing["error"] and "hirescam" in missing["error"]
    assert "method" in client.get("gradcam", run=name, step=0, method="nonesuch", sample=0).error(400)["error"]
    assert "method" in client.get("metrics", run=name, method="<b>x</b>").error(400)["error"]
    other_class = client.get("gradcam", run=name, step=0, method="hirescam", sample=0, **{"class": 1}).error(404)
    assert "maps the target alone" in other_class["error"]


@pytest.mark.slow
def test_expensive_every_sets_the_many_pass_methods_events(tmp_path, data):
    images, labels, _ = data
    model = small_cnn()
    callback = tb_cnnviz.CNNViz(str(tmp_path), images[:4], labels[:4], model=model, methods=("gradcam", "smoothgrad"),
                                trust_every=None, expensive_every=3, strict=True)
    for step in range(5):
        callback.log(step)
    callback.log(5, mode="eval")
    run = tb_cnnviz.read_run(str(tmp_path))
    assert [step for step in run.steps() if "smoothgrad" in run.event(step).methods] == [0, 3]
    assert run.event(5, "eval").methods == ["gradcam", "gradcam_pp", "smoothgrad"]
    steps, series = run.metrics(method="smoothgrad")  # no curves (trust_every=None): localisation, rank correlation
    assert list(steps) == [0, 3] and np.isnan(series["deletion_auc"]).all()
    assert np.isfinite(series["sanity_rank_corr"]).all()


@pytest.mark.slow
def test_a_run_started_again_does_not_compare_with_an_earlier_starts_first_maps(tmp_path, data):
    """A method's first maps kept from an earlier start of the run (started again without that
    method, then resumed with it) are replaced, not compared with."""
    images, labels, _ = data
    model = small_cnn()
    logdir, both = str(tmp_path), ("gradcam", "hirescam")
    tb_cnnviz.CNNViz(logdir, images[:4], model=model, methods=both, strict=True).log(0)
    earlier = np.load(tmp_path / "cnnviz_first_maps_hirescam.npz")["maps"]
    model.fit(images, labels, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="already holds a cnnviz run"):
        tb_cnnviz.CNNViz(logdir, images[:4], model=model, strict=True).log(0)  # started again, without HiResCAM
    tb_cnnviz.CNNViz(logdir, images[:4], model=model, methods=both, strict=True).log(100)  # resumed, with it
    kept = np.load(tmp_path / "cnnviz_first_maps_hirescam.npz")
    assert str(kept["run"]) == hashlib.sha1((tmp_path / "cnnviz_reference.npz").read_bytes()).hexdigest()
    assert not np.allclose(kept["maps"], earlier)
    corr = tb_cnnviz.read_run(logdir).event(100).method_metrics("hirescam")["sanity_rank_corr"]
    assert np.all(np.isnan(corr) | (corr > 0.99)) and np.isfinite(corr).any()  # its own maps: the first
