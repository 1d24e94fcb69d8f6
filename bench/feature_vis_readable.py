"""Feature visualisations a person can read: less high-frequency power, and each image still beats every training image.

Issue 28's regularisers (tb_cnnviz.explanations.feature_vis `Regularisers`: colour decorrelation,
random scale and rotation beside the jitter, a total-variation penalty) against the algorithm
before them (`PLAIN`: the 1/f Fourier parameterisation, the sigmoid and the jitter alone, Adam at
0.2), side by side in one run. For each seed, trains the model the tests share (tests/helpers.py
`train_shapes_model`: the demo's model on 3,000 shapes) and visualises the channels the demo's
callback visualises (`CNNViz(feature_vis=4)` with 8 probes of 40x40: its run header's
`feature_vis`, 10 channels of block1_conv2, block2_conv2 and block3_conv2), pixels within the
probes' range, as the callback does; 128 steps, seed 0, both ways.

High-frequency share of an image: remove each channel's mean, take the 2-D discrete Fourier
transform of each channel (numpy.fft.fft2, frequencies fy, fx from numpy.fft.fftfreq, in cycles
per pixel), sum the power |F|^2 over the channels; the share is the power at radial frequency
sqrt(fy^2 + fx^2) > 0.25 cycles/pixel (half the Nyquist frequency, 0.5) over the total power
(0 for a flat image; tests/test_feature_vis.py `high_frequency_share`). Its mean over a seed's
images, new / old, is the spectral ratio.

Activation ratio: a channel's activation (the mean of its map, the objective) on its image over
the best of the 3,000 training images' (tests/test_feature_vis.py `compare`; dead channels,
never positive on them, left out).

Targets: the largest spectral ratio over the seeds <= 0.5; the least activation ratio of the new
images over channels and seeds >= 1. Also printed: each seed's figures both ways, and the
seconds per call of each (the median of 5, taking turns, after the first, which traces) on
the last seed's model, for the time an event with feature visualisation takes. --save DIR writes each seed's images as a PNG
(a row per channel: old, new).

    python3 -m bench.feature_vis_readable [--seeds 0 1 2 3 4] [--json] [--save DIR]
"""

import os
import statistics
import tempfile
import time

from bench._common import arguments, Report

import numpy as np  # noqa: E402

from tests.helpers import train_shapes_model  # noqa: E402
from tests.test_feature_vis import compare, high_frequency_share, reference_images  # noqa: E402
from tb_cnnviz import CNNViz  # noqa: E402
from tb_cnnviz.capture.plan import make_plan  # noqa: E402
from tb_cnnviz.datasets import SHAPE_NAMES, shapes  # noqa: E402
from tb_cnnviz.explanations.feature_vis import FeatureVisualiser, Regularisers  # noqa: E402

# The algorithm before issue 28: no colour decorrelation, the jitter alone, no penalty.
PLAIN = Regularisers(learning_rate=0.2, decorrelate=False, scale=0.0, rotation=0.0, total_variation=0.0)


def demo_channels(model, probes, labels) -> dict:
    """{layer: channels} the demo's callback visualises (`CNNViz(feature_vis=4)`, default options)."""
    with tempfile.TemporaryDirectory() as logdir:
        options = CNNViz(logdir, probes, labels, class_names=SHAPE_NAMES, feature_vis=4).options
        return make_plan(options, model).header.feature_vis


def seconds_per_call(visualisers, calls=5) -> list:
    """Median seconds of `calls` calls of each visualiser (each called once already: traced), the
    calls taking turns so that the machine's load falls on each alike."""
    times = [[] for _ in visualisers]
    for _ in range(calls):
        for visualiser, taken in zip(visualisers, times):
            start = time.perf_counter()
            visualiser()
            taken.append(time.perf_counter() - start)
    return [statistics.median(taken) for taken in times]


def figures(model, channels, probes, references):
    """{"old"|"new": {visualiser, images, shares (per image), ratios (activation, per live channel), dead}}."""
    found = {}
    for name, regularisers in (("old", PLAIN), ("new", Regularisers())):
        visualiser = FeatureVisualiser(model, channels, image_shape=probes.shape[1:],
                                       value_range=(float(probes.min()), float(probes.max())),
                                       regularisers=regularisers)
        images = visualiser()
        ratios, dead = compare(model, images, references, channels)
        found[name] = {"visualiser": visualiser, "images": images, "dead": dead,
                       "shares": high_frequency_share(np.concatenate(list(images.values()))),
                       "ratios": {f"{path}:{channel}": mean for path, channel, mean, _ in ratios}}
    return found


def save(directory, seed, found):
    """DIR/feature_vis_seed{seed}.png: a row per channel, its old and new image side by side."""
    from PIL import Image

    rows = []
    for path, old in found["old"]["images"].items():
        new = found["new"]["images"][path]
        rows += [np.concatenate([o, np.ones_like(o[:, :2]), n], axis=1) for o, n in zip(old, new)]
    grid = np.concatenate([np.pad(row, ((1, 1), (0, 0), (0, 0)), constant_values=1) for row in rows])
    pixels = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8)  # the probes' range is [0, 1]
    os.makedirs(directory, exist_ok=True)
    Image.fromarray(pixels).resize((pixels.shape[1] * 4, pixels.shape[0] * 4), Image.NEAREST).save(
        os.path.join(directory, f"feature_vis_seed{seed}.png"))


def main():
    parser = arguments(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--save", help="directory to write each seed's images to, as a PNG")
    args = parser.parse_args()
    report = Report(args.json)
    references = reference_images()
    probes, labels, _ = shapes(8, size=40, seed=2)  # the demo's
    rows = []
    for seed in args.seeds:
        model = train_shapes_model(seed).model
        channels = demo_channels(model, probes, labels)
        found = figures(model, channels, probes, references)
        rows.append((seed, found))
        if args.save:
            save(args.save, seed, found)
    say = report.say
    say(f"channels: {', '.join(f'{path} {indices}' for path, indices in channels.items())}")
    say(f"\n{'seed':>4s} {'old share':>9s} {'new share':>9s} {'new/old':>7s} {'old least act.':>14s} "
        f"{'new least act.':>14s} {'new weakest':>18s} {'dead':>4s}")
    spectral, least = [], []
    for seed, found in rows:
        old, new = found["old"], found["new"]
        spectral.append(new["shares"].mean() / old["shares"].mean())
        weakest = min(new["ratios"], key=new["ratios"].get)
        least.append(new["ratios"][weakest])
        say(f"{seed:4d} {old['shares'].mean():9.3f} {new['shares'].mean():9.3f} {spectral[-1]:7.2f} "
            f"{min(old['ratios'].values()):14.2f} {least[-1]:14.2f} {weakest:>18s} {len(new['dead']):4d}")
    old_call, new_call = seconds_per_call([found[name]["visualiser"] for name in ("old", "new")])
    seeds = f"{len(rows)} seeds"
    report.figure("feature_vis_readable.max_spectral_ratio", max(spectral), 0.5,
                  f"share of spectral power above half the Nyquist frequency, new / old, largest over {seeds}")
    report.figure("feature_vis_readable.min_activation_ratio", min(least), 1.0,
                  f"new image / best training image's mean activation, least over channels and {seeds}",
                  at_least=True)
    report.figure("feature_vis_readable.call_ratio", new_call / old_call, None,
                  f"seconds per call new / old, demo's channels on the last seed's model "
                  f"({new_call:.2f} s / {old_call:.2f} s)")


if __name__ == "__main__":
    main()
