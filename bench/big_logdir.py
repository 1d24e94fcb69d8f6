"""A big logdir in TensorBoard: 50 runs x 500 events against a single run of 500 (issue 9).

Prints, for real `tensorboard` processes with --load_fast=true and =false, both logdirs served
at once:
  - seconds from start until tensorboard answers, and until `runs` lists every step of every
    run (polled each second), and the resident memory of tensorboard (with its data server) then;
  - the `runs` answer time (median of 20);
  - the tab's first view in headless Chromium: from navigating to #cnnviz until the Grad-CAM
    view has drawn its heat maps (main[data-ready]); each view in a fresh browser context, big
    and single logdir alternated; median ratio big / single (target: <= 2).

The logdir is written once (the items of one real event of a tiny model, written at every
step of a run, and the run copied) and kept in --cache for later runs.

    python3 -m bench.big_logdir [--runs 50] [--events 500] [--views 5] [--keep 0] [--cache DIR] [--json]
"""

import contextlib
import os
import shutil
import tempfile
import time

from bench._common import Report, arguments, p50, write_run
from tests.http_api import PREFIX, Api, wait_for_runs
from tests.tensorboard_process import tensorboard

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def logdirs(cache, runs, events):
    """(single-run logdir, big logdir) under `cache`, written unless already complete there."""
    single, big = os.path.join(cache, "single", "logs"), os.path.join(cache, "big", "logs")
    done = os.path.join(cache, "complete")
    if not os.path.exists(done):
        shutil.rmtree(cache, ignore_errors=True)
        template = os.path.join(cache, "template")
        write_run(template, events)
        shutil.copytree(template, os.path.join(single, "run_000"))
        for index in range(runs):
            shutil.copytree(template, os.path.join(big, f"run_{index:03d}"))
        shutil.rmtree(template)
        open(done, "w").close()
    return single, big


def first_view(browser, base):
    """(seconds from navigating to the tab until its first view, Grad-CAM heat maps, is drawn;
    the part of them after the tab asked for `runs`, i.e. without TensorBoard's own start-up)."""
    context = browser.new_context(viewport={"width": 1300, "height": 950})
    try:
        page = context.new_page()
        asked = []
        page.on("request", lambda request: asked.append(time.perf_counter())
                if f"{PREFIX}/runs" in request.url else None)
        start = time.perf_counter()
        page.goto(f"{base}/#cnnviz")
        page.frame_locator("iframe").locator("main[data-ready^='gradcam:']").wait_for(timeout=300_000)
        end = time.perf_counter()
        return end - start, end - asked[0]
    finally:
        context.close()


def measure(report, load_fast, dirs, args):
    flag = f"--load_fast={str(load_fast).lower()} --samples_per_plugin=cnnviz={args.keep}"
    with contextlib.ExitStack() as stack:
        servers, rows = [], []
        for logdir, runs in zip(dirs, (1, args.runs)):
            server = stack.enter_context(tensorboard(logdir, load_fast, samples=args.keep))
            try:
                wait_for_runs(Api(server.base), runs, min(args.keep or args.events, args.events), every=1.0,
                              timeout=args.timeout)
            except AssertionError:  # not loaded in time
                report.say(f"\n{flag}: {runs} x {args.events} not loaded after {args.timeout} s; skipped")
                return
            loaded = time.perf_counter() - server.started
            client = Api(server.base, keep_alive=True, timeout=120)
            runs_time = p50([client.timed(f"{PREFIX}/runs")[0] for _ in range(20)])
            servers.append(server)
            rows.append([f"{runs} x {args.events}", server.answering, loaded, server.rss_mb(), runs_time])
        from playwright import sync_api

        playwright = stack.enter_context(sync_api.sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        views = ([], [])
        for _ in range(args.views):
            for index, server in enumerate(servers):
                views[index].append(first_view(browser, server.base))
    total = [[t for t, _ in times] for times in views]
    tab = [[t for _, t in times] for times in views]
    report.say(f"\n{flag}: {args.views} first views each, alternated")
    report.say(f"{'logdir':10} {'answering':>9} {'loaded':>8} {'RSS':>9} {'runs p50':>9} {'first view p50':>15} "
               f"{'from runs':>10}  (each view)")
    for (name, answering, loaded, rss, runs_time), times, tab_times in zip(rows, total, tab):
        report.say(f"{name:10} {answering:7.1f} s {loaded:6.1f} s {rss:6.0f} MB {runs_time * 1e3:7.1f}ms "
                   f"{p50(times):13.2f} s {p50(tab_times):8.2f} s  ({', '.join(f'{t:.2f}' for t in times)})")
    report.say(f"the tab's part (from its `runs` request), {args.runs} runs / 1 run: {p50(tab[1]) / p50(tab[0]):.2f}")
    report.figure(f"first_view_ratio_{args.runs}x{args.events}_vs_1_load_fast_{str(load_fast).lower()}"
                  + (f"_keep_{args.keep}" if args.keep else ""),
                  p50(total[1]) / p50(total[0]), 2, f"first view {args.runs} runs / 1 run")


def main():
    parser = arguments(__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--views", type=int, default=5, help="first views timed per logdir")
    parser.add_argument("--keep", type=int, default=0, help="--samples_per_plugin=cnnviz=KEEP (0: every step)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for a logdir to load")
    parser.add_argument("--cache", help="where the generated logdirs are kept (default: in the temp dir)")
    args = parser.parse_args()
    report = Report(args.json)
    cache = args.cache or os.path.join(tempfile.gettempdir(), f"cnnviz_big_logdir_{args.runs}x{args.events}")
    dirs = logdirs(cache, args.runs, args.events)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(dirs[1]) for f in files)
    report.say(f"logdirs in {cache}: {args.runs} runs x {args.events} events ({size / 1e6:.0f} MB), and 1 run")
    for load_fast in (True, False):
        measure(report, load_fast, dirs, args)


if __name__ == "__main__":
    main()
