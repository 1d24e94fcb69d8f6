"""Feature visualisations of a trained VGG16-style backbone, for the docs' picture.

Trains a backbone laid out as keras.applications.VGG16 (blocks of 2, 2, 3 and 3 convs named as
VGG16's, narrower: 32 to 128 filters, with batch normalisation so that it learns from scratch on
a CPU; demo/model.py `vgg_style`) at 64x64 on 3,000 synthetic shapes (tb_cnnviz.datasets; no
pretrained weights, nothing downloaded), saves its weights to a local .weights.h5 file, loads
them from that file into a new copy of the model and visualises the channels the callback would
(`CNNViz(feature_vis=4)`: 4 channels of each stage's output conv), with the ascent the callback
uses. Prints the accuracy on 256 shapes it was not
trained on, each layer's high-frequency share (bench/feature_vis_readable.py defines it) and each
image's activation over the best training image's; writes the images as a PNG grid (a row per
layer) to --save (docs/screenshots/feature_vis_backbone.png is this script's, seed 0).

    python3 -m bench.feature_vis_backbone [--seeds 0] [--epochs 6] [--save docs/screenshots/feature_vis_backbone.png] [--json]
"""

import os
import tempfile

from bench._common import arguments, Report

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bench.feature_vis_readable import demo_channels  # noqa: E402
from demo.model import vgg_style  # noqa: E402
from tests.test_feature_vis import compare, high_frequency_share  # noqa: E402
from tb_cnnviz.datasets import shapes, training_shapes  # noqa: E402
from tb_cnnviz.explanations.feature_vis import FeatureVisualiser  # noqa: E402

SIZE = 64


def backbone_classifier():
    """VGG16's layout of blocks, narrower, with a 4-class head."""
    return vgg_style(SIZE, widths=(32, 64, 128, 128), convs=(2, 2, 3, 3))


def trained_from_file(seed, epochs, directory):
    """The classifier trained, saved to a local weights file, and loaded from it into a new copy."""
    keras.utils.set_random_seed(seed)
    images, labels, _ = training_shapes(3000, size=SIZE)
    model = backbone_classifier()
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=epochs, batch_size=32, verbose=2)
    path = os.path.join(directory, "backbone.weights.h5")
    model.save_weights(path)
    loaded = backbone_classifier()
    loaded.load_weights(path)
    return loaded, images


def save_grid(path, found):
    """A row of images per layer (rows padded white to the widest), 3 pixels per pixel."""
    from PIL import Image

    rows = [np.concatenate([np.pad(image, ((2, 2), (2, 2), (0, 0)), constant_values=1) for image in images], axis=1)
            for images in found.values()]
    width = max(row.shape[1] for row in rows)
    grid = np.concatenate([np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=1) for row in rows])
    pixels = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).resize((pixels.shape[1] * 3, pixels.shape[0] * 3), Image.NEAREST).save(path)


def main():
    parser = arguments(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--save", help="PNG file for the last seed's images")
    args = parser.parse_args()
    report = Report(args.json)
    probes, labels, _ = shapes(8, size=SIZE, seed=2)
    held_out, held_out_labels, _ = shapes(256, size=SIZE, seed=3)
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as directory:
            model, references = trained_from_file(seed, args.epochs, directory)
        accuracy = float(np.mean(model.predict(held_out, verbose=0).argmax(1) == held_out_labels))
        channels = demo_channels(model, probes, labels)
        found = FeatureVisualiser(model, channels, image_shape=probes.shape[1:], value_range=(0.0, 1.0))()
        ratios, dead = compare(model, found, references, channels)
        report.say(f"seed {seed}: accuracy on 256 held-out shapes {accuracy:.2f}")
        for path, images in found.items():
            report.say(f"  {path}: channels {channels[path]}, high-frequency share "
                       f"{high_frequency_share(images).mean():.3f}, activation / best training image's "
                       f"{', '.join(f'{mean:.2f}' for layer, _, mean, _ in ratios if layer == path)}")
        report.figure(f"feature_vis_backbone.seed{seed}.min_activation_ratio", min(mean for _, _, mean, _ in ratios),
                      1.0, f"seed {seed}: least activation ratio over {len(ratios)} live channels ({len(dead)} dead)",
                      at_least=True)
        if args.save:
            save_grid(args.save, found)


if __name__ == "__main__":
    main()
