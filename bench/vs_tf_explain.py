"""One full CNNViz event against tf-explain doing far less, side by side in one run.

Prints, for the same model and the same 8 probes, the ratio
    (tf-explain GradCAM().explain on ONE layer + ExtractActivations().explain on ONE layer)
    / (one full CNNViz event: every conv layer's activations, filters and statistics,
       Grad-CAM, Grad-CAM++, faithfulness, PNG encoding and writing)
(target: >= 5). tf-explain 0.3.1 (2021) runs unchanged on Keras 3, provided Grad-CAM's layer
is named: its automatic choice reads `layer.output_shape`, gone in Keras 3. Its Grad-CAM uses
CNNViz's layer (the last conv) and one class index for all probes, as its API takes; its
activations are those of the first conv layer. Each tf-explain call builds a sub-model (and
ExtractActivations a fresh predict function): that is its per-call cost.
Both are warmed up, then timed alternately (A B A B): the ratio is the median of the ratios of
the pairs, each measured back to back, so that the load of this shared machine drifting
between pairs cancels; the times printed are medians too.

    pip install -r bench/requirements.txt   # tf-explain and opencv-python-headless
    python3 -m bench.vs_tf_explain [--repeats 20] [--vgg16] [--json]
"""

import json
import os
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench._common import arguments  # noqa: E402
from demo.model import vgg_style  # noqa: E402
from tb_cnnviz import CNNViz  # noqa: E402
from tb_cnnviz.datasets import SHAPE_NAMES, shapes  # noqa: E402

try:
    from tf_explain.core import ExtractActivations, GradCAM
except ImportError as exc:
    sys.exit(f"tf-explain is needed for this bench ({exc}). Install it with\n"
             "    pip install -r bench/requirements.txt\n"
             "(tf-explain==0.3.1 and opencv-python-headless), or without touching the environment:\n"
             "    pip install --no-deps --target /tmp/tfx tf-explain==0.3.1 opencv-python-headless\n"
             "    PYTHONPATH=/tmp/tfx python3 -m bench.vs_tf_explain")

TARGET = 5.0


def compare(model, size, probes_count, repeats):
    """Median event and tf-explain times and median of their pairs' ratios, over `repeats`
    alternating pairs after a warm-up."""
    probes, labels, _ = shapes(probes_count, size=size, seed=2)
    callback = CNNViz(tempfile.mkdtemp(prefix="cnnviz_vs_tfx_"), probes, labels,
                      class_names=SHAPE_NAMES, model=model)
    convs = list(callback._recorder.probe.convs)
    steps = iter(range(10**9))

    def ours():
        callback.log(next(steps))

    def theirs():
        GradCAM().explain((probes, None), model, class_index=0, layer_name=convs[-1])
        ExtractActivations().explain((probes, None), model, [convs[0]])

    timed = {ours: [], theirs: []}
    for fn in timed:
        fn()
    for _ in range(repeats):
        for fn, times in timed.items():
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return {"convs": convs, "event": statistics.median(timed[ours]), "tfx": statistics.median(timed[theirs]),
            "ratio": statistics.median(b / a for a, b in zip(timed[ours], timed[theirs]))}


def main():
    parser = arguments(__doc__)
    parser.add_argument("--probes", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--vgg16", action="store_true",
                        help="also measure keras.applications.VGG16 (random weights, 64x64, 13 conv layers)")
    args = parser.parse_args()

    # tf-explain passes [model.inputs] (nested) to Model(), which Keras 3 accepts with a warning;
    # its predict() shows a progress bar, and retraces (a new model per call), which TF warns
    # of: none of this output is part of what is compared.
    warnings.filterwarnings("ignore", message="The structure of `inputs`")
    keras.utils.disable_interactive_logging()
    tf.get_logger().setLevel("ERROR")

    cases = [("vgg_style", vgg_style(40), 40)]
    if args.vgg16:
        cases.append(("vgg16", keras.applications.VGG16(weights=None, input_shape=(64, 64, 3), classes=4), 64))
    for name, model, size in cases:
        r = compare(model, size, args.probes, args.repeats)
        passed = r["ratio"] >= TARGET
        if args.json:
            print(json.dumps({"name": f"tf-explain (1 Grad-CAM + 1 activation layer) / CNNViz event, {name}",
                              "value": round(r["ratio"], 2), "target": f">= {TARGET:g}", "pass": passed}))
            continue
        convs = r["convs"]
        print(f"model: {name} {size}x{size}, {len(convs)} conv layers, {args.probes} probes, "
              f"{args.repeats} alternating pairs")
        print(f"  CNNViz full event, all {len(convs)} layers: {r['event'] * 1e3:.1f} ms (median)")
        print(f"  tf-explain GradCAM ({convs[-1]}) + ExtractActivations ({convs[0]}): "
              f"{r['tfx'] * 1e3:.1f} ms (median)")
        print(f"  tf-explain / CNNViz, median of pair ratios: {r['ratio']:.2f}  "
              f"(target >= {TARGET:g}: {'PASS' if passed else 'FAIL'})")


if __name__ == "__main__":
    main()
