"""The trust figures of a trained model hold over seeds, before tests rest on them.

For each seed, trains the model the tests share (tests/helpers.py `train_shapes_model`: the
demo's model on 3,000 shapes, half on nearly smooth backgrounds) and logs one event with
deletion and insertion on its 32 probes, with their object masks; then runs the cascading
sanity check. Prints each figure tests/test_trust.py and tests/test_sanity.py assert.

Targets (every seed): deletion AUC at least 0.1 below its random-order chance level, pointing
game >= 0.9 (of Grad-CAM and of Grad-CAM++), faithfulness > 0.2; the sanity check's rank
correlation at most 0.8 once the head is re-initialised and below 0.5 once the Grad-CAM layer is
too (the head alone: 0.23-0.64 over five seeds, so the issue's "below 0.5 for the top layer" is
not a property tests may rest on).
Insertion AUC above its chance level is printed without a target: over seeds 0-4 it ranges from
-0.04 (JAX, seed 4) to 0.29, on models whose maps point at the objects (bench/README.md, session
16), so it is not a property tests may rest on either.

    python3 -m bench.trust_seeds [--seeds 0 1 2 3 4] [--json]
"""

import tempfile

from bench._common import seed_arguments

import numpy as np  # noqa: E402

import tb_cnnviz  # noqa: E402
from tests.helpers import train_shapes_model  # noqa: E402


def figures(trained, logdir):
    tb_cnnviz.CNNViz(logdir, trained.probes, trained.labels, masks=trained.masks, model=trained.model,
                     strict=True).log(0)
    event = tb_cnnviz.read_run(logdir).event(0)
    means = {name: float(np.nanmean(values)) for name, values in event.metrics.items()}
    means["pointing_game_pp"] = float(np.mean(event.method_metrics("gradcam_pp")["pointing_game"]))
    cascade = tb_cnnviz.sanity_check(trained.model, trained.probes)
    means["sanity_top"], means["sanity_second"] = cascade[0][1], cascade[1][1]
    return means


def main():
    args, report = seed_arguments(__doc__)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnviz_trust_") as tmp:
        for seed in args.seeds:
            rows.append((seed, figures(train_shapes_model(seed), f"{tmp}/{seed}")))
    say = report.say
    say(f"\n{'seed':>4s} {'deletion':>8s} {'random':>6s} {'insertion':>9s} {'random':>6s} {'pointing':>8s} "
        f"{'++':>4s} {'energy':>6s} {'faithful':>8s} {'sanity top':>10s} {'2nd':>5s}")
    for seed, f in rows:
        say(f"{seed:4d} {f['deletion_auc']:8.3f} {f['deletion_auc_random']:6.3f} {f['insertion_auc']:9.3f} "
            f"{f['insertion_auc_random']:6.3f} {f['pointing_game']:8.2f} {f['pointing_game_pp']:4.2f} {f['energy_in_mask']:6.2f} {f['faithfulness']:8.2f} "
            f"{f['sanity_top']:10.2f} {f['sanity_second']:5.2f}")
    seeds = f"{len(rows)} seeds"
    report.figure("trust_seeds.min_deletion_margin", min(f["deletion_auc_random"] - f["deletion_auc"] for _, f in rows),
                  0.1, f"deletion AUC below its chance level, least over {seeds}", at_least=True)
    report.figure("trust_seeds.min_insertion_margin",
                  min(f["insertion_auc"] - f["insertion_auc_random"] for _, f in rows),
                  None, f"insertion AUC above its chance level, least over {seeds}")
    report.figure("trust_seeds.min_pointing_game", min(f["pointing_game"] for _, f in rows), 0.9,
                  f"pointing game, lowest of {seeds}", at_least=True)
    report.figure("trust_seeds.min_pointing_game_pp", min(f["pointing_game_pp"] for _, f in rows), 0.9,
                  f"pointing game of Grad-CAM++ (tests/test_pointing.py), lowest of {seeds}", at_least=True)
    report.figure("trust_seeds.min_faithfulness", min(f["faithfulness"] for _, f in rows), 0.2,
                  f"faithfulness (tests/test_pointing.py), lowest of {seeds}", at_least=True)
    report.figure("trust_seeds.max_sanity_top", max(f["sanity_top"] for _, f in rows), 0.8,
                  f"sanity check, the head re-initialised: rank correlation, highest of {seeds}")
    report.figure("trust_seeds.max_sanity_second", max(f["sanity_second"] for _, f in rows), 0.5,
                  f"sanity check, the Grad-CAM layer re-initialised too: rank correlation, highest of {seeds}")

if __name__ == "__main__":
    main()
