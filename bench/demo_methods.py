"""The nine methods' trust figures on the demo's clean run, over seeds: what the Methods view
shows at the quick start's eval event, shown not to be one seed's luck.

For each seed, trains the demo's clean run exactly as `python -m demo --seed N` does
(demo/__main__.py train_planned_run: 3,000 synthetic shapes, 8 epochs, CNNViz logging every
method on its 8 probes, an eval event after fit) and reads each method's figures at that eval
event: deletion and insertion AUC with their random orders' chance levels, and the pointing game.
Prints each seed's and the means over the seeds, and the rank of each method by mean deletion AUC
(as shown, to 3 decimals: methods tied there share a rank, as the Methods view's marks do).
No targets (measured); bench/methods.py times what each costs.

    python3 -m bench.demo_methods [--seeds 0 1 2 3 4] [--json]     # KERAS_BACKEND picks the backend
"""

import tempfile

from bench._common import seed_arguments

import keras  # noqa: E402
import numpy as np  # noqa: E402

from demo.__main__ import LEARNING_RATE, parse, train_planned_run  # noqa: E402
from tb_cnnviz import read_run  # noqa: E402
from tb_cnnviz.storage.metadata import METHODS  # noqa: E402

FIGURES = ("deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random", "pointing_game")


def eval_figures(run_dir) -> dict:
    """{method: {figure: mean over the probes}} at the run's last eval event."""
    run = read_run(run_dir)
    event = run.event(run.steps("eval")[-1], "eval")
    found = {}
    for method in METHODS:
        figures = event.metrics if method == "gradcam" else event.method_metrics(method)
        found[method] = {name: float(np.nanmean(figures[name])) for name in FIGURES}
    return found


def main():
    args, report = seed_arguments(__doc__)
    per_seed = []
    with tempfile.TemporaryDirectory(prefix="cnnviz_demo_methods_") as tmp:
        for seed in args.seeds:
            demo_args = parse(["--no-serve", "--seed", str(seed), "--logdir", tmp])
            run_dir = train_planned_run(demo_args, f"clean_{seed}", LEARNING_RATE, mark=False)[0]
            per_seed.append(eval_figures(run_dir))
    say = report.say
    say(f"\n{keras.backend.backend()}, demo clean run's eval event (8 probes), seeds {args.seeds}: "
        f"deletion AUC per seed, then means over the seeds")
    say(f"{'method':22s} " + " ".join(f"{'s' + str(seed):>6s}" for seed in args.seeds)
        + f" | {'deletion':>8s} {'random':>6s} {'insertion':>9s} {'random':>6s} {'pointing':>8s} {'rank':>4s}")
    means = {method: {name: float(np.mean([found[method][name] for found in per_seed])) for name in FIGURES}
             for method in METHODS}
    shown = {method: round(means[method]["deletion_auc"], 3) for method in METHODS}
    for method in METHODS:
        mean = means[method]
        say(f"{method:22s} " + " ".join(f"{found[method]['deletion_auc']:6.3f}" for found in per_seed)
            + f" | {mean['deletion_auc']:8.3f} {mean['deletion_auc_random']:6.3f} {mean['insertion_auc']:9.3f} "
            f"{mean['insertion_auc_random']:6.3f} {mean['pointing_game']:8.2f} {1 + sum(other < shown[method] for other in shown.values()):4d}")
    for method in METHODS:
        report.figure(f"demo_methods.{method}.deletion_auc", means[method]["deletion_auc"], None,
                      f"{method}: mean deletion AUC at the demo's eval event")


if __name__ == "__main__":
    main()
