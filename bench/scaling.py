"""How one logging event's time grows with the number of probes and of logged layers.

Prints, for the demo model, the event time for 1..64 probes and for 1..6 logged layers,
each relative to the first row of its table, next to the growth in work (probes or layers)
— growth below the work ratio means batching pays off. Measured in one run.

    python3 -m bench.scaling [--repeats 10] [--json]
"""

import tempfile

from bench._common import Report, arguments, median_event_seconds

from demo.model import vgg_style  # noqa: E402
from tb_cnnviz import CNNViz  # noqa: E402
from tb_cnnviz.datasets import shapes  # noqa: E402


def event_time(model, probes, repeats, **options):
    return median_event_seconds(CNNViz(tempfile.mkdtemp(prefix="cnnviz_scale_"), probes, model=model, **options), repeats)


def table(report, title, unit, rows):
    report.say(f"\n{title}")
    report.say(f"{unit:>8s} {'event ms':>9s} {'time x':>7s} {'work x':>7s}")
    (base_count, base_time) = rows[0]
    for count, seconds in rows:
        report.say(f"{count:8d} {seconds * 1e3:9.1f} {seconds / base_time:7.2f} {count / base_count:7.1f}")


def main():
    parser = arguments(__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    report = Report(args.json)
    model = vgg_style(40)
    images, _, _ = shapes(64, size=40, seed=2)
    by_probes = [(n, event_time(model, images[:n], args.repeats)) for n in (1, 2, 4, 8, 16, 32, 64)]
    table(report, "event time vs probes (all 6 conv layers logged)", "probes", by_probes)
    layers = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2"]
    table(report, "event time vs logged layers (8 probes; stats always cover all 6)", "layers",
          [(k, event_time(model, images[:8], args.repeats, layers=layers[-k:])) for k in range(1, 7)])
    report.figure("event time x for 64x the probes", by_probes[-1][1] / by_probes[0][1], 64,
                  "event time, 64 probes / 1 probe (sub-linear below 64)")


if __name__ == "__main__":
    main()
