"""Long runs: logdir growth, memory and file handles of the training process over many events.

(a) --events events (default 2,000) on the demo model (demo/model.py vgg_style, 40x40, 8
    probes, default CNNViz options), with one train_on_batch step before every
    --train-every-th event so the weights, and with them the maps and their PNG sizes, change
    as in training. RSS and logdir bytes every 100 events. Targets: RSS growth after warm-up
    <= 5 %; logdir bytes linear in events: the bytes per event of the last 100-event window
    no more than 10 % above the first's (training makes later maps compress better, so the
    per-event size may shrink, and a straight line's R^2, printed too, with it).
(b) --long-events events (default 10,000) on a tiny model (tests/helpers.py small_cnn, 2
    probes, max_channels=2), so the writer's share of each event is large and 10,000 events
    take a few minutes. RSS and open file descriptors every 500 events. Targets: RSS growth
    after warm-up <= 5 %, the same number of open file descriptors throughout.

Each part runs in a fresh process, so memory one part freed cannot hide the other's growth.
Warm-up is the first 10 % of the events. RSS is VmRSS from /proc/self/status after
gc.collect(); one sample moves by a few % with the allocator's arenas, so growth is read from
a least-squares line through the samples after warm-up (the raw first and last samples are
printed too).

    python3 -m bench.long_run [--events 2000] [--long-events 10000] [--train-every 10] [--json]
"""

import concurrent.futures
import gc
import multiprocessing
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench._common import DemoTraining, Report, arguments  # noqa: E402

import numpy as np  # noqa: E402

from tests.helpers import small_cnn  # noqa: E402
from tb_cnnviz import CNNViz  # noqa: E402
from tb_cnnviz.datasets import shapes  # noqa: E402


def rss_mb():
    gc.collect()
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def logdir_bytes(logdir):
    return sum(os.path.getsize(os.path.join(logdir, name)) for name in os.listdir(logdir))


def trend_growth(events, values):
    """Growth in % from the first to the last event along a least-squares line."""
    slope, intercept = np.polyfit(events, values, 1)
    start = slope * events[0] + intercept
    return 100 * slope * (events[-1] - events[0]) / start


def r_squared(x, y):
    fit = np.polyval(np.polyfit(x, y, 1), x)
    return 1 - np.sum((y - fit) ** 2) / np.sum((y - np.mean(y)) ** 2)


def warm_growth(say, events, rss, warm_from):
    """Fitted RSS growth in % over the samples from `warm_from` events on, with the raw figures."""
    warm = events >= warm_from
    say(f"RSS after warm-up: {rss[warm][0]:.1f} MB at event {events[warm][0]:.0f}, {rss[-1]:.1f} MB at "
        f"{events[-1]:.0f} (raw {100 * (rss[-1] / rss[warm][0] - 1):+.1f} %), max {rss[warm].max():.1f} MB")
    return trend_growth(events[warm], rss[warm])


def run_events(callback, events, every, sample, between=None):
    """Logs steps 0..events-1 and returns [(events logged, sample())] every `every` events;
    closes the event file after, so that its directory can be removed."""
    samples = []
    for step in range(events):
        if between is not None:
            between(step)
        callback.log(step)
        if (step + 1) % every == 0:
            samples.append((step + 1, sample()))
    callback._writer.close()
    return samples


def demo_run(events, train_every):
    with tempfile.TemporaryDirectory(prefix="cnnviz_long_") as logdir:  # ~0.6 GB at 2,000 events
        demo = DemoTraining(logdir)

        def train(step):
            if step % train_every == 0:
                demo.train_step(step // train_every)

        return run_events(demo.callback, events, 100, lambda: (rss_mb(), logdir_bytes(logdir)), train)


def tiny_run(events):
    probes, probe_labels, _ = shapes(2, size=32, seed=3)
    with tempfile.TemporaryDirectory(prefix="cnnviz_long_tiny_") as logdir:
        callback = CNNViz(logdir, probes, probe_labels, max_channels=2, model=small_cnn())
        return run_events(callback, events, 500, lambda: (rss_mb(), open_fds()))


def in_fresh_process(fn, *args):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def main():
    parser = arguments(__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--long-events", type=int, default=10000)
    parser.add_argument("--train-every", type=int, default=10)
    args = parser.parse_args()

    report = Report(args.json)
    say = report.say

    start = time.perf_counter()
    samples = in_fresh_process(demo_run, args.events, args.train_every)
    events = np.array([n for n, _ in samples], float)
    rss = np.array([s[0] for _, s in samples])
    size = np.array([s[1] for _, s in samples], float)
    say(f"(a) demo vgg_style 40x40, 8 probes, default options, a train step every {args.train_every} "
        f"events: {args.events} events in {time.perf_counter() - start:.0f} s")
    say(f"{'events':>7s} {'RSS MB':>8s} {'logdir MB':>10s} {'KB/event in window':>19s}")
    per_event = np.diff(size) / np.diff(events)
    for i, n in enumerate(events):
        say(f"{n:7.0f} {rss[i]:8.1f} {size[i] / 1e6:10.2f} {per_event[i - 1] / 1e3 if i else float('nan'):19.1f}")
    growth = warm_growth(say, events, rss, args.events // 10)
    report.figure("long_run.demo_rss_growth_pct", growth, 5, "RSS growth after warm-up, fitted, %")
    say(f"logdir bytes vs events: R^2 of a line {r_squared(events, size):.5f}; bytes per event in "
        f"100-event windows {per_event.min() / 1e3:.1f}-{per_event.max() / 1e3:.1f} KB "
        f"(max/min {per_event.max() / per_event.min():.2f})")
    drift = per_event[-1] / per_event[0]
    report.figure("long_run.logdir_bytes_per_event_last_over_first", drift, 1.1, "bytes per event, last window / first")

    start = time.perf_counter()
    samples = in_fresh_process(tiny_run, args.long_events)
    events = np.array([n for n, _ in samples], float)
    rss = np.array([s[0] for _, s in samples])
    fds = [s[1] for _, s in samples]
    say(f"\n(b) tiny small_cnn 32x32, 2 probes, max_channels=2: {args.long_events} events in "
        f"{time.perf_counter() - start:.0f} s")
    say(f"{'events':>7s} {'RSS MB':>8s} {'open fds':>9s}")
    for n, r, f in zip(events, rss, fds):
        say(f"{n:7.0f} {r:8.1f} {f:9d}")
    growth = warm_growth(say, events, rss, args.long_events // 10)
    report.figure("long_run.tiny_rss_growth_pct", growth, 5, "RSS growth after warm-up, fitted, %")
    report.figure("long_run.open_fd_growth", max(fds) - min(fds), 0,
                  f"growth of open file descriptors ({min(fds)}-{max(fds)})")


if __name__ == "__main__":
    main()
