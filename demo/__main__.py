"""Train the demo CNN on synthetic shapes with CNNViz, then serve the logs with TensorBoard.

    python -m demo [--logdir logs] [--epochs 8] [--port 6006] [--no-serve]
"""

import argparse
import os
import shutil
import subprocess
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="logs", help="where runs are written (default: logs)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (default: 8)")
    parser.add_argument("--samples", type=int, default=3000, help="training images (default: 3000)")
    parser.add_argument("--port", type=int, default=6006, help="TensorBoard port (default: 6006)")
    parser.add_argument("--no-serve", action="store_true", help="train only, do not start TensorBoard")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    from demo.model import vgg_style
    from tb_cnnviz import CNNViz
    from tb_cnnviz.datasets import SHAPE_NAMES, pointing_game, shapes

    keras.utils.set_random_seed(0)
    images, labels, _ = shapes(args.samples, size=40, seed=1)
    probes, probe_labels, probe_masks = shapes(8, size=40, seed=2)
    run_dir = os.path.join(args.logdir, "vgg_style")
    shutil.rmtree(run_dir, ignore_errors=True)
    model = vgg_style(40)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = CNNViz(run_dir, probes, probe_labels, class_names=SHAPE_NAMES)
    model.fit(images, labels, epochs=args.epochs, batch_size=32, verbose=2, callbacks=[callback])
    model.evaluate(probes, probe_labels, verbose=0, callbacks=[callback])

    from tb_cnnviz import read_run

    run = read_run(run_dir)
    last = run.event(run.steps()[-1])
    accuracy = float(np.mean(np.asarray(last.predictions["predicted"]) == probe_labels))
    print(f"probe accuracy {accuracy:.2f}, Grad-CAM pointing game "
          f"{pointing_game(last.gradcam, probe_masks):.2f}, faithfulness {last.faithfulness:.2f}")
    print(f"logged {len(run.steps())} train events to {run_dir}")
    if args.no_serve:
        return 0
    print(f"TensorBoard: open http://localhost:{args.port}/ (Ctrl-C to stop)", flush=True)
    return subprocess.call([sys.executable, "-m", "tensorboard.main", "--logdir", args.logdir,
                            "--port", str(args.port), "--host", "localhost"])


if __name__ == "__main__":
    sys.exit(main())
