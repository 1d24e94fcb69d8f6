"""Train CNNs on synthetic shapes with CNNViz logging, then serve the logs with TensorBoard.

    python -m demo [--logdir logs] [--epochs 8] [--port 6006] [--no-serve] [--seed 0]
                   [--model vgg_style|vgg16] [--weights FILE] [--learning-rates RATE ...]
                   [--feature-vis N]

Two runs tell the shortcut-learning story: *clean* learns the shapes; *shortcut* trains on
images whose corner mark gives the class away (its probes carry the mark too), and Grad-CAM
shows it looking at the corner, while its accuracy on clean validation images (Keras' own
scalars, beside the cnnviz ones) shows what it really learned. `--learning-rates` trains one
clean run per learning rate instead, to compare them. Clean runs log all nine explanation
methods (the tab's Methods view ranks them); the shortcut run Grad-CAM and Grad-CAM++.
"""

import argparse
import os
import shutil
import subprocess
import sys

LEARNING_RATE = 2e-3
BATCH_SIZE = 32
SEED_LAYERS = ["block1_conv1", "block1_conv2", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv3"]


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="logs", help="where runs are written (default: logs)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per run (default: 8)")
    parser.add_argument("--samples", type=int, default=3000, help="training images (default: 3000)")
    parser.add_argument("--port", type=int, default=6006, help="TensorBoard port (default: 6006)")
    parser.add_argument("--no-serve", action="store_true", help="train only, do not start TensorBoard")
    parser.add_argument("--model", choices=("vgg_style", "vgg16"), default="vgg_style",
                        help="vgg_style: small, trains in minutes (default); vgg16: "
                             "keras.applications.VGG16 as a nested backbone (slow on a CPU)")
    parser.add_argument("--weights", help="local VGG16 weights file (.h5) for --model vgg16")
    parser.add_argument("--learning-rates", type=float, nargs="+",
                        help="train one clean run per learning rate instead of the clean and shortcut "
                             f"runs (both at {LEARNING_RATE:g}; Adam, each rate decaying to 0 over the run)")
    parser.add_argument("--feature-vis", type=int, default=4,
                        help="channels of each logged layer given an image that excites them, every 5th event "
                             "(default: 4; 0 for none: VGG16's take minutes on a CPU)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the initial weights and the batch order (default: 0)")
    args = parser.parse_args(argv)
    if args.weights and args.model != "vgg16":
        parser.error("--weights needs --model vgg16")
    if args.weights and not os.path.isfile(args.weights):
        parser.error(f"--weights: no such file {args.weights!r}")
    return args


def planned_runs(args):
    """(run name, learning rate, whether its images carry the class-giving mark) of each run."""
    if args.learning_rates:
        return [(f"{args.model}_lr{rate:g}", rate, False) for rate in args.learning_rates]
    return [(f"{args.model}_clean", LEARNING_RATE, False), (f"{args.model}_shortcut", LEARNING_RATE, True)]


def train_run(args, learning_rate, data, probes, run_name=None, probe_masks=None, methods=("gradcam", "gradcam_pp")):
    """Trains one run (`run_name`, default {model}_lr{rate}) with CNNViz logging (`methods`) and
    Keras' TensorBoard scalars, validated on clean images; returns (its logdir, the trained model)."""
    import keras

    from demo.model import vgg16_backbone, vgg_style
    from tb_cnnviz import CNNViz
    from tb_cnnviz.datasets import SHAPE_NAMES, shapes

    keras.utils.set_random_seed(args.seed)
    images, labels = data
    probe_images, probe_labels = probes
    size = images.shape[1]
    clean_images, clean_labels, _ = shapes(512, size=size, seed=3)  # no mark: what the run really learned
    if args.model == "vgg16":
        model = vgg16_backbone(size, weights=args.weights)
        options = {"layers": SEED_LAYERS, "gradcam_layer": "block5_conv3"}
    else:
        model = vgg_style(size)
        options = {}
    steps = args.epochs * -(-len(images) // BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)  # to 0: the last epochs settle
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    run_dir = os.path.join(args.logdir, run_name or f"{args.model}_lr{learning_rate:g}")
    shutil.rmtree(run_dir, ignore_errors=True)
    callback = CNNViz(run_dir, probe_images, probe_labels, class_names=SHAPE_NAMES, masks=probe_masks,
                      feature_vis=args.feature_vis, methods=methods, **options)
    print(f"\n== {run_dir}: {args.model}, Adam, learning rate {learning_rate:g} decaying to 0", flush=True)
    verbose = 1 if sys.stdout.isatty() else 2  # a progress bar in a terminal, a line per epoch in logs
    model.fit(images, labels, epochs=args.epochs, batch_size=BATCH_SIZE, verbose=verbose,
              validation_data=(clean_images, clean_labels),
              callbacks=[callback, keras.callbacks.TensorBoard(log_dir=run_dir)])
    model.evaluate(probe_images, probe_labels, verbose=0, callbacks=[callback])
    return run_dir, model


def clean_accuracy(run_dir):
    """The last epoch's accuracy on the clean validation images, read from Keras' TensorBoard
    scalars (run_dir/validation, epoch_accuracy)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    scalars = EventAccumulator(os.path.join(run_dir, "validation")).Reload()
    return float(tensor_util.make_ndarray(scalars.Tensors("epoch_accuracy")[-1].tensor_proto))


def report(run_dir, probe_labels, probe_masks):
    """Prints, and returns, what a run's last train event says (probe accuracy, Grad-CAM
    pointing game, mean energy in the object) and its last accuracy on clean images."""
    import numpy as np

    from tb_cnnviz import read_run
    from tb_cnnviz.explanations.trust import energy_in_mask, pointing_game

    run = read_run(run_dir)
    last = run.event(run.steps()[-1])
    figures = {"accuracy": float(np.mean(np.asarray(last.predictions["predicted"]) == probe_labels)),
               "pointing_game": pointing_game(last.gradcam, probe_masks),
               "energy_in_object": float(np.nanmean(energy_in_mask(last.gradcam, probe_masks))),
               "clean_accuracy": clean_accuracy(run_dir)}
    print(f"{run_dir}: probe accuracy {figures['accuracy']:.2f}, "
          f"Grad-CAM pointing game {figures['pointing_game']:.2f}, "
          f"energy in object {figures['energy_in_object']:.2f}, "
          f"accuracy on clean images {figures['clean_accuracy']:.2f}, faithfulness {last.faithfulness:.2f}, "
          f"{len(run.steps())} train and {len(run.steps('eval'))} eval events")
    if run.steps("eval") and len(run.header.scored_methods()) > 2:  # the Methods view's figures, at the last eval event
        final = run.event(run.steps("eval")[-1], "eval")
        for method in (m for m in run.header.scored_methods() if m in final.methods):
            figures_of = final.metrics if method == "gradcam" else final.method_metrics(method)
            found = {name: float(np.nanmean(figures_of[name])) for name in (
                "deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random", "pointing_game")}
            print(f"  {method:22s} deletion AUC {found['deletion_auc']:.3f} (random {found['deletion_auc_random']:.3f}), "
                  f"insertion AUC {found['insertion_auc']:.3f} (random {found['insertion_auc_random']:.3f}), "
                  f"pointing game {found['pointing_game']:.2f}")
    return figures


def train_planned_run(args, run_name, learning_rate, mark):
    """Makes a run's images and 8 probes (with the class-giving mark or without) and trains
    it; returns (its logdir, the trained model, the probes' labels, the probes' object masks)."""
    from tb_cnnviz.datasets import shapes, training_shapes
    from tb_cnnviz.storage.metadata import METHODS

    size = 64 if args.model == "vgg16" else 40
    images, labels, _ = training_shapes(args.samples, size=size, mark=mark)
    probe_images, probe_labels, probe_masks = shapes(8, size=size, seed=2, mark=mark)
    run_dir, model = train_run(args, learning_rate, (images, labels), (probe_images, probe_labels),
                               run_name, probe_masks, methods=("gradcam", "gradcam_pp") if mark else METHODS)
    return run_dir, model, probe_labels, probe_masks


def main(argv=None):
    args = parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    trained = [train_planned_run(args, *run) for run in planned_runs(args)]
    print()
    for run_dir, _, probe_labels, probe_masks in trained:
        report(run_dir, probe_labels, probe_masks)
    if args.no_serve:
        return 0
    print(f"\nTensorBoard: open http://localhost:{args.port}/#cnnviz (Ctrl-C to stop)", flush=True)
    return subprocess.call([sys.executable, "-m", "tensorboard.main", "--logdir", args.logdir,
                            "--port", str(args.port), "--host", "localhost"])


if __name__ == "__main__":
    sys.exit(main())
