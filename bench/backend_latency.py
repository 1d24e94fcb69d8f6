"""Latency of the plugin's per-step routes against TensorBoard's own image plugin, and the cost
of opening a long run (issue 7).

Prints, measured in one run against real `tensorboard` processes (--load_fast=false and true):
  - p50/p90 of our step image and array routes, each alternated request by request with
    TensorBoard's image plugin serving a PNG of the same pixels from the same server (a
    `tf.summary.image` run beside the cnnviz run of the demo model), and the p50 ratio
    ours / TensorBoard (target: <= 1.5);
  - opening a run as the tab does (runs, then event, probe and Grad-CAM images of a step) on
    a 1,000-step run against a 10-step run, at steps not opened before and after some idle
    time (target: 1000 / 10 <= 2 with --load_fast=true; with the Python loader, whose cost
    TensorBoard's own provider bounds, a measurement without a target), and how many stored
    payloads opening a run reads in each
    (counted in-process), and what TensorBoard's Python data provider itself takes to list and to
    read the blob keys of one one-blob series of each run (the least any first view needs).

    python3 -m bench.backend_latency [--requests 200] [--long-steps 1000] [--json]
"""

import os
import shutil
import statistics
import tempfile
import time

from bench._common import Report, arguments, p50, p90, write_run
from tests.http_api import PREFIX, Api, wait_for_runs
from tests.tensorboard_process import tensorboard

RUN, IMAGES_RUN, LAYER = "demo", "tb_images", "block1_conv2"  # the demo's largest logged maps
EPOCHS = 2  # one event before training and one per epoch


def write_demo_logdir(logdir, probes=8):
    """The cnnviz run of the demo model trained with the real callback, and beside it a
    standard tf.summary.image run holding the pixels of our Grad-CAM PNG ("small") and of
    our largest activations mosaic ("mosaic"). Returns {image name: (height, width)}."""
    import tensorflow as tf

    from demo.model import vgg_style
    from tb_cnnviz import CNNViz, read_run
    from tb_cnnviz.storage import codec
    from tb_cnnviz.datasets import SHAPE_NAMES, shapes

    images, labels, _ = shapes(256, size=40, seed=0)
    model = vgg_style(40)
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = CNNViz(os.path.join(logdir, RUN), images[:probes], labels[:probes], class_names=SHAPE_NAMES)
    model.fit(images, labels, epochs=EPOCHS, batch_size=32, verbose=0, callbacks=[callback])
    run = read_run(os.path.join(logdir, RUN))
    step = run.steps()[-1]
    pixels = {
        "small": codec.png_to_array(run.blobs("train/gradcam", step)[1]),
        "mosaic": codec.png_to_array(run.blobs(f"train/activations/{LAYER}", step)[1]),
    }
    with tf.summary.create_file_writer(os.path.join(logdir, IMAGES_RUN)).as_default():
        for name, array in pixels.items():
            tf.summary.image(name, array[None], step=0)
    return {name: array.shape[:2] for name, array in pixels.items()}


def image_url(client, tag):
    """TensorBoard's own URL for the image of `tag`, as its images dashboard asks for it."""
    listing = client.json(f"/data/plugin/images/images?run={IMAGES_RUN}&tag={tag}&sample=0")
    return f"/data/plugin/images/individualImage?{listing[-1]['query']}"


def ab_latency(client, ours, theirs, requests, warmup):
    """Per-request seconds of `ours(i)` and `theirs`, alternated A B A B after a warm-up."""
    for i in range(warmup):
        client.timed(ours(i))
        client.timed(theirs)
    a, b = [], []
    for i in range(requests):
        a.append(client.timed(ours(i))[0])
        b.append(client.timed(theirs)[0])
    return a, b


def route_latency(report, load_fast, logdir, sizes, args):
    with tensorboard(logdir, load_fast, samples=0) as server:
        client = Api(server.base, keep_alive=True, timeout=120)
        wait_for_runs(client, 1, EPOCHS + 1, timeout=3600)
        step = client.json(f"{PREFIX}/runs")["runs"][0]["steps"]["train"][-1]
        tb = {name: image_url(client, name) for name in sizes}
        base = f"{PREFIX}/{{}}?run={RUN}&step={step}&sample={{}}"
        routes = [  # (label, our route, the TensorBoard image of the same pixel size)
            ("gradcam", "gradcam", "small"),
            ("gradcam.npy", "gradcam.npy", "small"),
            (f"activations {LAYER}", "activations", "mosaic"),
            (f"activations.npy {LAYER}", "activations.npy", "mosaic"),
        ]
        report.say(f"\n--load_fast={str(load_fast).lower()}: {args.requests} requests each, alternated with "
                   f"TensorBoard's individualImage of the same pixel size")
        report.say(f"{'route':34} {'ours p50':>9} {'p90':>7} {'TB p50':>8} {'p90':>7}  {'bytes':>13}")
        for label, route, image in routes:
            url = base.format(route, "{}") + (f"&layer={LAYER}" if "activations" in route else "")
            ours, theirs = ab_latency(client, lambda i: url.format(i % 8), tb[image], args.requests, args.warmup)
            bytes_ = f"{len(client.timed(url.format(0))[1])}/{len(client.timed(tb[image])[1])}"
            report.say(f"{label:34} {p50(ours) * 1e3:7.2f}ms {p90(ours) * 1e3:5.2f}ms {p50(theirs) * 1e3:6.2f}ms "
                       f"{p90(theirs) * 1e3:5.2f}ms  {bytes_:>13}")
            report.figure(f"latency_ratio_{route}_load_fast_{str(load_fast).lower()}", p50(ours) / p50(theirs), 1.5,
                          f"  p50 ours / TensorBoard image ({'x'.join(map(str, sizes[image]))} px)")


def open_run(client, run, step, probes):
    """Seconds of each request the tab makes to show a run at `step` (index.js, then the
    Grad-CAM view): runs, event, then the probe and Grad-CAM image of every sample."""
    times = {"runs": client.timed(f"{PREFIX}/runs")[0],
             "event": client.timed(f"{PREFIX}/event?run={run}&step={step}")[0], "images": 0.0}
    for sample in range(probes):
        times["images"] += client.timed(f"{PREFIX}/probe?run={run}&sample={sample}")[0]
        times["images"] += client.timed(f"{PREFIX}/gradcam?run={run}&step={step}&sample={sample}")[0]
    times["total"] = sum(times.values())
    return times


def python_provider(logdir):
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"cnnviz": 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    return data_provider.MultiplexerDataProvider(multiplexer, logdir)


def provider_costs(logdir, repeats=20):
    """Median ms of TensorBoard's Python provider listing one series (max step only) and
    reading the blob keys of all its steps: "train/predictions", one blob per step."""
    from tensorboard import context
    from tensorboard.data import provider as data_api

    provider, ctx = python_provider(logdir), context.RequestContext()
    series = {"experiment_id": "", "plugin_name": "cnnviz",
              "run_tag_filter": data_api.RunTagFilter(runs=["run"], tags=["train/predictions"])}
    calls = (lambda: provider.list_blob_sequences(ctx, **series),
             lambda: provider.read_blob_sequences(ctx, downsample=10**9, **series))
    medians = []
    for call in calls:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        medians.append(1e3 * statistics.median(times))
    return medians


def payload_reads(logdir, step, probes):
    """Stored payloads (blobs) read to open the run at `step`, through an in-process
    TensorBoard with the Python loader: headers are cached, so this counts decoding."""
    from tensorboard.backend import application
    from tensorboard.plugins import base_plugin
    from werkzeug import test as werkzeug_test

    from tb_cnnviz.plugin.cnnviz_plugin import CNNVizPlugin

    class Counting:
        def __init__(self, inner):
            self.inner, self.reads = inner, 0

        def read_blob(self, ctx=None, *, blob_key):
            self.reads += 1
            return self.inner.read_blob(ctx, blob_key=blob_key)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    inner = python_provider(logdir)
    counting = Counting(inner)
    plugin = CNNVizPlugin(base_plugin.TBContext(logdir=logdir, data_provider=counting, flags=None))
    client = Api(werkzeug_test.Client(application.TensorBoardWSGI([plugin], data_provider=inner)))
    urls = [f"{PREFIX}/runs", f"{PREFIX}/event?run=run&step={step}"]
    urls += [f"{PREFIX}/{route}?run=run&step={step}&sample={s}"
             for s in range(probes) for route in ("probe", "gradcam")]
    for url in urls:
        client.ok(url)
    return counting.reads


def long_run(report, load_fast, dirs, args):
    """Both runs served at once by two servers; opens alternate between them, step by step."""
    short, long = dirs
    with tensorboard(short, load_fast, samples=0) as server_short, tensorboard(long, load_fast, samples=0) as server_long:
        clients = Api(server_short.base, keep_alive=True, timeout=120), Api(server_long.base, keep_alive=True, timeout=120)
        for client, steps in zip(clients, (args.short_steps, args.long_steps)):
            wait_for_runs(client, 1, steps, timeout=3600)
        runs = [c.json(f"{PREFIX}/runs")["runs"][0] for c in clients]
        probes = runs[0]["samples"]
        opened = ([], [])
        for i in range(1, args.short_steps + 1):  # from the latest step back: no header cached
            for index, (client, run) in enumerate(zip(clients, runs)):
                time.sleep(args.idle)  # nor any listing made by the previous open
                opened[index].append(open_run(client, run["run"], run["steps"]["train"][-i], probes))
    report.say(f"\n--load_fast={str(load_fast).lower()}: opening a run at a new step after {args.idle:g} s idle, "
               f"median of {args.short_steps} ({probes} probes: {2 * probes} image requests)")
    report.say(f"{'request':10} {f'{args.short_steps} steps':>10} {f'{args.long_steps} steps':>12} {'ratio':>6}")
    for key in ("runs", "event", "images", "total"):
        a, b = (p50([t[key] for t in times]) for times in opened)
        report.say(f"{key:10} {a * 1e3:8.1f}ms {b * 1e3:10.1f}ms {b / a:6.2f}")
    limit = 2 if load_fast else None  # the Python loader's cost is its provider's (docs/performance.md)
    a, b = (p50([t["runs"] + t["event"] for t in times]) for times in opened)
    report.figure(f"open_runs_event_ratio_{args.long_steps}_vs_{args.short_steps}_load_fast_{str(load_fast).lower()}",
                  b / a, limit, f"first runs + event, {args.long_steps} / {args.short_steps} steps")
    a, b = (p50([t["total"] for t in times]) for times in opened)
    report.figure(f"open_first_view_ratio_{args.long_steps}_vs_{args.short_steps}_load_fast_{str(load_fast).lower()}",
                  b / a, limit, f"all requests of the first view, {args.long_steps} / {args.short_steps} steps")


def main():
    parser = arguments(__doc__)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per route, and as many to TB")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--long-steps", type=int, default=1000)
    parser.add_argument("--short-steps", type=int, default=10)
    parser.add_argument("--idle", type=float, default=3.0,
                        help="seconds before each open, longer than the plugin reuses a listing of blob keys")
    args = parser.parse_args()
    report = Report(args.json)
    work = tempfile.mkdtemp(prefix="cnnviz_latency_")
    try:
        sizes = write_demo_logdir(os.path.join(work, "demo", "logs"))
        report.say(f"demo model 40x40, 8 probes; TensorBoard images of the same pixel size: {sizes}")
        for load_fast in (False, True):
            route_latency(report, load_fast, os.path.join(work, "demo", "logs"), sizes, args)
        dirs = [os.path.join(work, f"steps_{n}", "logs") for n in (args.short_steps, args.long_steps)]
        for directory, steps in zip(dirs, (args.short_steps, args.long_steps)):
            write_run(os.path.join(directory, "run"), steps)
        reads = [payload_reads(d, n - 1, 8) for d, n in zip(dirs, (args.short_steps, args.long_steps))]
        report.say(f"\nstored payloads read to open a run (runs, event, 8 probes, 8 Grad-CAM maps): "
                   f"{reads[0]} for {args.short_steps} steps, {reads[1]} for {args.long_steps} steps")
        for directory, steps in zip(dirs, (args.short_steps, args.long_steps)):
            listed, read = provider_costs(directory)
            report.say(f"TensorBoard's Python provider, one series of {steps} steps: lists it (max step) in "
                       f"{listed:.2f} ms, reads its blob keys in {read:.2f} ms")
        for load_fast in (False, True):
            long_run(report, load_fast, dirs, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
