"""What the trust figures cost: one event with all of them on, against one without.

For the demo model (40x40, 8 probes of the synthetic shapes) and VGG16 at 224x224 (weights=None,
nested in a classifier, 8 photographs bundled with scikit-image), four CNNViz callbacks on the
same model log events after a warm-up event each (which traces):
  - target only: a train event with gradcam_classes=0 (maps of the target and the true class)
    and no deletion and insertion (trust_every=None);
  - without: the same with gradcam_classes=3 (the default), which stores the class maps and the
    cheap per-event figures (faithfulness, pointing game, energy, rank correlation with the
    first maps);
  - with curves: a train event that computes deletion and insertion (trust_every=1);
  - all on: an eval event of a callback with sanity_check=True (curves and the cascading test).
Prints the medians of three events each and the ratios to "without" (and of "without" to
"target only"). No targets: trust_every
(docs/trust.md) decides how often a train event pays for the curves; fit_overhead.py checks the total.

    python3 -m bench.trust_cost [--models demo,vgg16] [--json]
"""

import tempfile

from bench._common import Report, arguments, median_event_seconds

import keras  # noqa: E402

from demo.model import vgg16_backbone, vgg_style  # noqa: E402
from tests.helpers import photographs  # noqa: E402
from tb_cnnviz import CNNViz  # noqa: E402
from tb_cnnviz.datasets import SHAPE_NAMES, shapes  # noqa: E402

REPEATS = 3


def demo_model():
    model = vgg_style(40)
    model.compile("adam", "sparse_categorical_crossentropy")
    probes, labels, masks = shapes(8, size=40, seed=2)
    return model, probes, labels, {"masks": masks, "class_names": SHAPE_NAMES}


def vgg16_model():
    model = vgg16_backbone(224, classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model, photographs(224).astype("float32"), None, {}


MODELS = {"demo": demo_model, "vgg16": vgg16_model}


def event_seconds(model, probes, labels, options, logdir, mode, **trust):
    callback = CNNViz(logdir, probes, labels, model=model, strict=True, **options, **trust)
    return median_event_seconds(callback, REPEATS, mode)


def main():
    parser = arguments(__doc__)
    parser.add_argument("--models", default="demo,vgg16", help="comma-separated, of: " + ", ".join(MODELS))
    args = parser.parse_args()
    report = Report(args.json)
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        model, probes, labels, options = MODELS[name]()
        with tempfile.TemporaryDirectory(prefix="cnnviz_trust_cost_") as tmp:
            target_only = event_seconds(model, probes, labels, options, f"{tmp}/t", "train", trust_every=None,
                                        gradcam_classes=0)
            without = event_seconds(model, probes, labels, options, f"{tmp}/a", "train", trust_every=None)
            curves = event_seconds(model, probes, labels, options, f"{tmp}/b", "train", trust_every=1)
            everything = event_seconds(model, probes, labels, options, f"{tmp}/c", "eval", sanity_check=True)
        report.say(f"{name}: event with the target's and true class's maps only {target_only * 1000:.0f} ms, with "
                   f"gradcam_classes=3 (the default) {without * 1000:.0f} ms, with the curves too {curves * 1000:.0f} ms, "
                   f"with the sanity check too {everything * 1000:.0f} ms")
        report.figure(f"trust_cost.{name}.classes_ratio", without / target_only, None,
                      f"{name}: event with gradcam_classes=3 / with gradcam_classes=0")
        report.figure(f"trust_cost.{name}.curves_ratio", curves / without, None,
                      f"{name}: event with deletion and insertion / event without")
        report.figure(f"trust_cost.{name}.all_ratio", everything / without, None,
                      f"{name}: eval event with every figure and the sanity check / train event without the curves")


if __name__ == "__main__":
    main()
