"""Deletion and insertion in fewer steps: how far their AUCs move, over seeds.

For each seed, trains the model the tests share (tests/helpers.py `train_shapes_model`) and an
untrained one of the same shape, takes Grad-CAM of each of its 32 probes' predicted class, and
computes the curves at `trust.CURVE_STEPS` steps and at --compare steps (20, the count before
session 10) through the callback's own probe, on the same maps and the same random order.
Prints per seed the mean and largest per-probe difference of each AUC, and the AUC margins over
the random order's chance level at both step counts. Target: the margins move by at most 0.02
(tests and bench/trust_seeds.py rest on margins of at least 0.1).

    python3 -m bench.curve_steps [--seeds 0 1 2] [--compare 20] [--json]
"""

import tempfile

from bench._common import arguments, Report

import numpy as np  # noqa: E402

import tb_cnnviz  # noqa: E402
from demo.model import vgg_style  # noqa: E402
from tb_cnnviz.explanations import trust  # noqa: E402
from tests.helpers import train_shapes_model  # noqa: E402


def aucs(model, probes, labels, steps):
    """{steps: {curve name: (N,) AUC}} of the model's Grad-CAM maps of its predicted classes."""
    callback = tb_cnnviz.CNNViz(tempfile.mkdtemp(prefix="cnnviz_steps_"), probes, labels, model=model, strict=True)
    probe, ranks = callback._recorder.probe, callback._recorder.plan.random_ranks
    target = np.argmax(model.predict(probes, verbose=0), axis=1).astype(np.int32)
    maps = tb_cnnviz.gradcam(model, probes, class_index=target)
    return {count: {name: trust.auc(curve) for name, curve in
                    probe.deletion_insertion(probes, [maps], target, ranks, count)[0].items()} for count in steps}


def margins(found):
    return (float(np.mean(found["deletion_random"] - found["deletion"])),
            float(np.mean(found["insertion"] - found["insertion_random"])))


def main():
    parser = arguments(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--compare", type=int, default=20)
    args = parser.parse_args()
    report = Report(args.json)
    steps = (trust.CURVE_STEPS, args.compare)
    moved = []
    for seed in args.seeds:
        trained = train_shapes_model(seed)
        for kind, model in (("trained", trained.model), ("untrained", vgg_style(40))):
            found = aucs(model, trained.probes, trained.labels, steps)
            for name in ("deletion", "insertion", "deletion_random", "insertion_random"):
                difference = found[steps[0]][name] - found[steps[1]][name]
                report.say(f"seed {seed} {kind:9s} {name:16s} AUC at {steps[1]} steps {found[steps[1]][name].mean():.3f},"
                           f" at {steps[0]} {found[steps[0]][name].mean():.3f}: difference mean {difference.mean():+.4f},"
                           f" largest {np.abs(difference).max():.4f}")
            (deletion, insertion), (deletion_was, insertion_was) = margins(found[steps[0]]), margins(found[steps[1]])
            report.say(f"seed {seed} {kind:9s} margins over chance, deletion {deletion_was:.3f} -> {deletion:.3f}, "
                       f"insertion {insertion_was:.3f} -> {insertion:.3f}")
            moved += [abs(deletion - deletion_was), abs(insertion - insertion_was)]
    report.figure("curve_steps.max_margin_moved", max(moved), 0.02,
                  f"AUC margin over chance, largest move from {steps[1]} to {steps[0]} steps over {len(args.seeds)} seeds")


if __name__ == "__main__":
    main()
