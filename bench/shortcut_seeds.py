"""The demo's shortcut-learning story holds from any initialisation: its clean and shortcut runs over seeds.

For each seed, trains the demo's two default runs exactly as `python -m demo --seed N` does
(demo/__main__.py train_planned_run: 3,000 synthetic shapes 40x40, 8 epochs, batch 32, Adam
at 2e-3 decaying to 0, CNNViz logging, clean validation images): *clean*, and *shortcut*, whose training images
and probes carry the class-giving corner mark (`shapes(..., mark=True)`). Prints what the demo
reports of each run's last train event on its 8 probes (probe accuracy, Grad-CAM pointing game,
energy in the object), the same of `tb_cnnviz.gradcam` of the trained model on 32 probes drawn
the same way (and how often the peak lies in the corner: within one cell of Grad-CAM's 10x10
layer, 4 pixels, of the mark), the shortcut run's
last-epoch training accuracy and accuracy on clean images, and its energy in the object at each
train event (untrained first). The quick start and its test train seed 0; a story that held for
it alone would be luck.

Targets: the clean run's pointing game >= 0.9 on its 8 probes, and the shortcut run's energy in
the object below the clean run's (the README quick start test asserts both; here it must be at
most half of it); the story: the shortcut run's accuracy on clean images at least 0.5 below its
training accuracy (it learned the mark, not the shapes).

    python3 -m bench.shortcut_seeds [--seeds 0 1 2 3 4] [--json]
"""

import os
import tempfile

from bench._common import seed_arguments

import numpy as np  # noqa: E402

from demo.__main__ import parse, planned_runs, report as demo_report, train_planned_run  # noqa: E402
from tb_cnnviz import gradcam, read_run  # noqa: E402
from tb_cnnviz.datasets import mark_side, shapes  # noqa: E402
from tb_cnnviz.explanations.trust import energy_in_mask, pointing_game


def run_figures(args, run_name, learning_rate, mark):
    """Trains one of the demo's runs; what the demo reports of it, and Grad-CAM on 32 probes."""
    run_dir, model, probe_labels, probe_masks = train_planned_run(args, run_name, learning_rate, mark)
    figures = demo_report(run_dir, probe_labels, probe_masks)
    probes, _, masks = shapes(32, size=40, seed=2, mark=mark)
    maps = gradcam(model, probes)
    side = mark_side(40)  # 4 pixels: one cell of block3_conv2's 10x10 map, which Grad-CAM cannot split
    on_mark = np.zeros_like(masks)
    on_mark[:, :side, :side] = True
    events = read_run(run_dir)
    return {**figures, "train_accuracy": model.history.history["accuracy"][-1],
            "pointing_game_32": pointing_game(maps, masks),
            "energy_in_object_32": np.nanmean(energy_in_mask(maps, masks)),
            "peak_in_corner_32": pointing_game(maps, on_mark, tolerance=side),
            "energy_by_event": [np.nanmean(energy_in_mask(events.event(step).gradcam, probe_masks))
                                for step in events.steps()]}


def main():
    args, report = seed_arguments(__doc__)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnviz_shortcut_") as tmp:
        for seed in args.seeds:
            demo_args = parse(["--no-serve", "--seed", str(seed), "--logdir", os.path.join(tmp, str(seed))])
            clean, shortcut = (run_figures(demo_args, *run) for run in planned_runs(demo_args))
            rows.append((seed, clean, shortcut))
    say = report.say
    say(f"\n{'':4s} | {'clean run: 8 probes':24s} | {'32 probes':15s} | {'shortcut run':19s} | {'8 probes':15s} | "
        f"32 probes")
    say(f"{'seed':4s} | {'accuracy':>8s} {'pointing':>8s} {'energy':>6s} | {'pointing':>8s} {'energy':>6s} | "
        f"{'train acc':>9s} {'clean acc':>9s} | {'pointing':>8s} {'energy':>6s} | {'pointing':>8s} {'energy':>6s} "
        f"{'corner':>6s}")
    for seed, clean, shortcut in rows:
        say(f"{seed:4d} | {clean['accuracy']:8.2f} {clean['pointing_game']:8.2f} "
            f"{clean['energy_in_object']:6.2f} | "
            f"{clean['pointing_game_32']:8.2f} {clean['energy_in_object_32']:6.2f} | "
            f"{shortcut['train_accuracy']:9.2f} {shortcut['clean_accuracy']:9.2f} | "
            f"{shortcut['pointing_game']:8.2f} {shortcut['energy_in_object']:6.2f} | "
            f"{shortcut['pointing_game_32']:8.2f} {shortcut['energy_in_object_32']:6.2f} "
            f"{shortcut['peak_in_corner_32']:6.2f}")
    say("\nenergy in the object at each train event (8 probes), clean / shortcut:")
    for seed, clean, shortcut in rows:
        say(f"{seed:4d}: " + " ".join(f"{e:.2f}" for e in clean["energy_by_event"]) + " / "
            + " ".join(f"{e:.2f}" for e in shortcut["energy_by_event"]))
    seeds = f"{len(rows)} seeds"
    report.figure("shortcut_seeds.min_clean_pointing_game", min(c["pointing_game"] for _, c, _ in rows), 0.9,
                  f"clean run: lowest pointing game (8 probes) of {seeds}", at_least=True)
    report.figure("shortcut_seeds.max_energy_ratio",
                  max(s["energy_in_object"] / c["energy_in_object"] for _, c, s in rows), 0.5,
                  f"shortcut / clean run's energy in the object (8 probes): highest of {seeds}")
    report.figure("shortcut_seeds.min_clean_accuracy_drop",
                  min(s["train_accuracy"] - s["clean_accuracy"] for _, _, s in rows), 0.5,
                  f"shortcut run: training accuracy - accuracy on clean images, lowest of {seeds}", at_least=True)


if __name__ == "__main__":
    main()
