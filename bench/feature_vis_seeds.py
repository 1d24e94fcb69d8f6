"""Feature visualisation's images activate their filters more than any training image does, over seeds.

For each seed, trains the model the tests share (tests/helpers.py `train_shapes_model`: the
demo's model on 3,000 shapes) and generates with `tb_cnnviz.explanations.feature_vis.FeatureVisualiser`, at
its defaults (128 steps, seed 0), one image for each of the first 4 channels of every conv layer
(6 layers: 24 images, one batch). Then measures each channel's activation, the mean of its map
(the objective), on its image and on each of the 3,000 training images, and prints the least
ratio generated / best training image, and the same for the peak (the max of the map, for
information: the ascent does not aim at it). Dead channels (never positive on the training
images) are left out. A second call checks that the images do not change with the same weights.
Last, the time per call (after the first, which traces) for that model with 4 layers x 4
channels and for the demo's model at 64x64 with its 3 stage-output layers x 8 channels, what the
callback logs by default (its time does not depend on the weights: untrained).

Target (every seed): each checked channel's image beats the best training image by the mean
(ratio > 1), and a second call gives the same images (within 1e-5).

    python3 -m bench.feature_vis_seeds [--seeds 0 1 2 3 4] [--json]
"""

import statistics
import time

from bench._common import seed_arguments

import numpy as np  # noqa: E402

from demo.model import vgg_style  # noqa: E402
from tests.helpers import train_shapes_model  # noqa: E402
from tb_cnnviz.anatomy import conv_layers as layer_utils  # noqa: E402
from tb_cnnviz.datasets import shapes  # noqa: E402
from tb_cnnviz.explanations.feature_vis import FeatureVisualiser  # noqa: E402
from tests.test_feature_vis import compare, reference_images  # noqa: E402


def timed(visualiser, calls=3):
    """(seconds of the first call, which traces; median seconds of `calls` more)."""
    start = time.perf_counter()
    visualiser()
    first = time.perf_counter() - start
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        visualiser()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def visualiser(model, paths, count, references):
    """The first `count` channels of each layer at `paths`, images shaped and ranged as `references`."""
    return FeatureVisualiser(model, {path: list(range(count)) for path in paths}, image_shape=references.shape[1:],
                             value_range=(references.min(), references.max()))


def figures(model, references):
    convs = list(layer_utils.conv_layers(model))
    generate = visualiser(model, convs, 4, references)
    start = time.perf_counter()
    images = generate()
    first = time.perf_counter() - start
    start = time.perf_counter()
    again = generate()
    call = time.perf_counter() - start
    ratios, dead = compare(model, images, references, generate.channels)
    weakest = min(ratios, key=lambda ratio: ratio[2])
    return {"checked": len(ratios), "dead": len(dead), "mean": weakest[2], "weakest": f"{weakest[0]}:{weakest[1]}",
            "peak": min(ratio[3] for ratio in ratios), "first": first, "call": call,
            "change": max(float(np.abs(again[path] - images[path]).max()) for path in images)}


def main():
    args, report = seed_arguments(__doc__)
    references = reference_images()
    rows = []
    for seed in args.seeds:
        model = train_shapes_model(seed).model
        rows.append((seed, figures(model, references)))
    say = report.say
    say(f"\n{'seed':>4s} {'checked':>7s} {'dead':>4s} {'mean ratio':>10s} {'weakest':>16s} {'peak ratio':>10s} "
        f"{'1st call s':>10s} {'call s':>6s} {'2nd call change':>15s}")
    for seed, f in rows:
        say(f"{seed:4d} {f['checked']:7d} {f['dead']:4d} {f['mean']:10.2f} {f['weakest']:>16s} {f['peak']:10.2f} "
            f"{f['first']:10.1f} {f['call']:6.1f} {f['change']:15.1e}")
    last_four = list(layer_utils.conv_layers(model))[-4:]  # of the last seed's model
    tests_first, tests_call = timed(visualiser(model, last_four, 4, references))
    demo_first, demo_call = timed(visualiser(vgg_style(64), ["block1_conv2", "block2_conv2", "block3_conv2"], 8,
                                             shapes(8, size=64, seed=2)[0]))
    over = f"least over channels and {len(rows)} seeds"
    report.figure("feature_vis_seeds.min_mean_ratio", min(f["mean"] for _, f in rows), 1.0,
                  f"generated / best training image's mean activation, {over}", at_least=True)
    report.figure("feature_vis_seeds.max_change", max(f["change"] for _, f in rows), 1e-5,
                  f"largest pixel change between two calls with the same weights, over {len(rows)} seeds")
    report.figure("feature_vis_seeds.min_peak_ratio", min(f["peak"] for _, f in rows), None,
                  f"generated / best training image's peak activation, {over}")
    report.figure("feature_vis_seeds.tests_model_call_s", tests_call, None,
                  f"seconds per call, tests' model 40x40, 4 layers x 4 channels (first, tracing: {tests_first:.1f})")
    report.figure("feature_vis_seeds.demo_model_call_s", demo_call, None,
                  f"seconds per call, demo's model 64x64, 3 layers x 8 channels (first, tracing: {demo_first:.1f})")


if __name__ == "__main__":
    main()
