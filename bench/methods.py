"""Every method of `tb_cnnviz.explain` on the same trained models: what each costs and how its
maps score on the trust figures, side by side, so that a user can choose.

For each seed, trains the model the tests share (tests/helpers.py `train_shapes_model`: the
demo's model on 3,000 shapes; 32 probes it was not trained on, with their object masks), then
for each method: its maps of each probe's predicted class at its default layer (the last conv),
timed (median of 3 calls after one that compiles) and scored as the callback scores Grad-CAM:
deletion and insertion AUC at `trust.CURVE_STEPS` steps with the random order's chance level
(the probe's own `deletion_insertion`), the pointing game and the energy inside the object;
and what logging it costs the callback: the median time of an event that computes deletion and
insertion (where the many-pass methods run) with `methods=("gradcam", method)` over that with
`methods=("gradcam",)` (median of 3 events after one that compiles).
Prints the per-method means over the seeds; no targets (measured).

    python3 -m bench.methods [--seeds 0 1 2] [--json]      # KERAS_BACKEND picks the backend
"""

import statistics
import tempfile

from bench._common import median_event_seconds, median_seconds, seed_arguments

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tb_cnnviz  # noqa: E402
from tb_cnnviz.explanations import trust  # noqa: E402
from tb_cnnviz.explanations.gradcam import METHODS  # noqa: E402
from tests.helpers import train_shapes_model  # noqa: E402


def scores(trained, logdir) -> dict:
    """{method: {figure: mean over the probes}} of one trained model."""
    model, probes, masks = trained.model, trained.probes, trained.masks
    callback = tb_cnnviz.CNNViz(logdir, probes, trained.labels, masks=masks, model=model, strict=True)
    probe, ranks = callback._recorder.probe, callback._recorder.plan.random_ranks
    target = model.predict(probes, verbose=0).argmax(1).astype(np.int32)
    found = {}
    for method in METHODS:
        maps = tb_cnnviz.explain(model, probes, method, class_index=target)
        curves = probe.deletion_insertion(probes, [maps], target, ranks, trust.CURVE_STEPS)[0]
        found[method] = {name: float(np.mean(trust.auc(values))) for name, values in curves.items()}
        found[method]["pointing"] = trust.pointing_game(maps, masks)
        found[method]["energy"] = float(np.nanmean(trust.energy_in_mask(maps, masks)))
        found[method]["seconds"] = median_seconds(lambda method=method: tb_cnnviz.explain(
            model, probes, method, class_index=target), 3)
    alone = event_seconds(trained, f"{logdir}/events_alone", ("gradcam",))
    for method in METHODS:
        found[method]["event"] = event_seconds(trained, f"{logdir}/events_with_{method}", ("gradcam", method)) / alone
    return found


def event_seconds(trained, logdir, methods) -> float:
    """Median seconds of a callback's event with deletion and insertion, logging `methods`."""
    callback = tb_cnnviz.CNNViz(logdir, trained.probes, trained.labels, masks=trained.masks, model=trained.model,
                                methods=methods, trust_every=1, strict=True)
    return median_event_seconds(callback, 3)


def main():
    args, report = seed_arguments(__doc__)
    runs = []
    with tempfile.TemporaryDirectory(prefix="cnnviz_methods_") as tmp:
        for seed in args.seeds:
            runs.append(scores(train_shapes_model(seed), f"{tmp}/{seed}"))
            report.say(f"seed {seed} done")
    names = ("deletion", "deletion_random", "insertion", "insertion_random", "pointing", "energy", "seconds", "event")
    report.say(f"\n{keras.backend.backend()}, {len(runs)} seeds ({' '.join(map(str, args.seeds))}), 32 probes; "
               f"means over the seeds of the means over the probes; time relative to Grad-CAM's; event: "
               f"an event with deletion and insertion logging Grad-CAM and the method over one logging Grad-CAM")
    report.say(f"{'method':22s} {'deletion':>8s} {'random':>6s} {'insertion':>9s} {'random':>6s} {'pointing':>8s} "
               f"{'energy':>6s} {'time':>9s} {'event':>7s}")
    base = statistics.mean(run["gradcam"]["seconds"] for run in runs)
    for method in METHODS:
        mean = {name: statistics.mean(run[method][name] for run in runs) for name in names}
        report.say(f"{method:22s} {mean['deletion']:8.3f} {mean['deletion_random']:6.3f} {mean['insertion']:9.3f} "
                   f"{mean['insertion_random']:6.3f} {mean['pointing']:8.2f} {mean['energy']:6.2f} "
                   f"{mean['seconds'] / base:8.1f}x {mean['event']:6.2f}x")
        report.figure(f"methods.{method}.deletion_margin", mean["deletion_random"] - mean["deletion"], None,
                      f"{method}: deletion AUC below its chance level")
        report.figure(f"methods.{method}.insertion_margin", mean["insertion"] - mean["insertion_random"], None,
                      f"{method}: insertion AUC above its chance level")
        report.figure(f"methods.{method}.time_vs_gradcam", mean["seconds"] / base, None, f"{method}: time / Grad-CAM's")
        report.figure(f"methods.{method}.event_with_over_without", mean["event"], None,
                      f"{method}: event time logging it / without it")


if __name__ == "__main__":
    main()
