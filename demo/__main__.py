"""Train CNNs on synthetic shapes with CNNViz logging, then serve the logs with TensorBoard.

    python -m demo [--logdir logs] [--epochs 8] [--port 6006] [--no-serve] [--seed 0]
                   [--model vgg_style|vgg16] [--weights FILE]

Two runs with different learning rates are trained, so run comparison has something to show.
"""

import argparse
import os
import shutil
import subprocess
import sys

LEARNING_RATES = (2e-3, 1e-3)
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
    parser.add_argument("--learning-rates", type=float, nargs="+", default=list(LEARNING_RATES),
                        help="one run per learning rate (default: 0.002 0.001)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the initial weights and the batch order (default: 0)")
    args = parser.parse_args(argv)
    if args.weights and args.model != "vgg16":
        parser.error("--weights needs --model vgg16")
    if args.weights and not os.path.isfile(args.weights):
        parser.error(f"--weights: no such file {args.weights!r}")
    return args


def train_run(args, learning_rate, data, probes):
    """Trains one run with CNNViz logging; returns (its logdir, the trained model)."""
    import keras

    from demo.model import vgg16_backbone, vgg_style
    from tb_cnnviz import CNNViz
    from tb_cnnviz.datasets import SHAPE_NAMES

    keras.utils.set_random_seed(args.seed)
    images, labels = data
    probe_images, probe_labels = probes
    size = images.shape[1]
    if args.model == "vgg16":
        model = vgg16_backbone(size, weights=args.weights)
        options = {"layers": SEED_LAYERS, "gradcam_layer": "block5_conv3"}
    else:
        model = vgg_style(size)
        options = {}
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    run_dir = os.path.join(args.logdir, f"{args.model}_lr{learning_rate:g}")
    shutil.rmtree(run_dir, ignore_errors=True)
    callback = CNNViz(run_dir, probe_images, probe_labels, class_names=SHAPE_NAMES, **options)
    print(f"\n== {run_dir}: {args.model}, Adam learning rate {learning_rate:g}", flush=True)
    verbose = 1 if sys.stdout.isatty() else 2  # a progress bar in a terminal, a line per epoch in logs
    model.fit(images, labels, epochs=args.epochs, batch_size=32, verbose=verbose, callbacks=[callback])
    model.evaluate(probe_images, probe_labels, verbose=0, callbacks=[callback])
    return run_dir, model


def report(run_dir, probe_labels, probe_masks):
    """Prints, and returns, the probe accuracy and Grad-CAM pointing game of a run's last train event."""
    import numpy as np

    from tb_cnnviz import read_run
    from tb_cnnviz.datasets import pointing_game

    run = read_run(run_dir)
    last = run.event(run.steps()[-1])
    accuracy = float(np.mean(np.asarray(last.predictions["predicted"]) == probe_labels))
    pointing = pointing_game(last.gradcam, probe_masks)
    print(f"{run_dir}: probe accuracy {accuracy:.2f}, Grad-CAM pointing game {pointing:.2f}, "
          f"faithfulness {last.faithfulness:.2f}, {len(run.steps())} train and {len(run.steps('eval'))} eval events")
    return {"accuracy": accuracy, "pointing_game": pointing}


def main(argv=None):
    args = parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tb_cnnviz.datasets import shapes

    size = 64 if args.model == "vgg16" else 40
    images, labels, _ = shapes(args.samples, size=size, seed=1)
    probe_images, probe_labels, probe_masks = shapes(8, size=size, seed=2)
    run_dirs = [train_run(args, lr, (images, labels), (probe_images, probe_labels))[0] for lr in args.learning_rates]
    print()
    for run_dir in run_dirs:
        report(run_dir, probe_labels, probe_masks)
    if args.no_serve:
        return 0
    print(f"\nTensorBoard: open http://localhost:{args.port}/#cnnviz (Ctrl-C to stop)", flush=True)
    return subprocess.call([sys.executable, "-m", "tensorboard.main", "--logdir", args.logdir,
                            "--port", str(args.port), "--host", "localhost"])


if __name__ == "__main__":
    sys.exit(main())
