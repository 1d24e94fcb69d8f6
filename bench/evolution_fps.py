"""The Evolution view of a 512-filter layer over 500 steps: draw time and scrubbing frames/s.

Writes a run with the real callback: a tiny model (8x8 input, one Conv2D of --filters filters,
global pooling, a 4-class head; 1 probe, log_weights=False, gradcam_classes=0,
trust_every=None) logged at each of --steps steps, its kernels and biases taking a random walk
between events (each filter at its own pace) so that every statistic changes. Serves it with a
real `tensorboard`, opens the cnnviz tab's Evolution view of that layer in headless Chromium
(/usr/bin/chromium), rows sorted by value, and measures inside the page (performance.now()):

  - draw: the view's `draw` (frontend/view_evolution.js) on data already fetched, into the
    page, up to a laid-out page: a first draw (a copy of the answers, so the colours are
    computed again; the heat map, the top-10 list and both line charts) and a redraw at another
    step (colours cached: what a scrub step costs); median of 10 each;
  - scrub: the step slider moved over every step, one `input` event per animation frame (as
    bench/frontend_fps.py does), counting the distinct steps drawn per second; first while the
    banner's per-step `event` is fetched during the drag ("first pass"), then, after a warm-up
    pass has fetched them all, 3 times ("prefetched", the median is the headline figure).

Targets (issue 19): a draw under 100 ms; >= 30 steps drawn per second while scrubbing,
prefetched.

    python3 -m bench.evolution_fps [--filters 512] [--steps 500] [--json]
"""

import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench._common import Report, arguments  # noqa: E402
from bench.frontend_fps import CHROMIUM, CHROMIUM_ARGS, IDLE_FPS_JS, plugin_frame, scrub  # noqa: E402

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.http_api import wait_for_runs  # noqa: E402
from tests.tensorboard_process import tensorboard  # noqa: E402

RUN = "wide"
LAYER = "conv"
REPEATS = 10
PASSES = 3  # prefetched scrubs: the machine is shared, one pass can fall on a busy second

# In the tab's frame: the view's draw on its fetched answers, timed to a laid-out page.
DRAW_JS = """async ({ run: name, repeats }) => {
  const evolution = await import("./view_evolution.js");
  const { getJSON } = await import("./api.js");
  const { readState } = await import("./state.js");
  const answer = await getJSON("runs", {}, { fresh: true });
  const run = answer.runs.find((one) => one.run === name);
  const steps = run.steps.train;
  const ctx = { state: readState(), store: { update() {} }, deadAt: answer.dead_at };
  const answers = await evolution.load(ctx, run);
  const host = document.createElement("div");
  document.body.append(host);
  const timed = (step, data) => {
    const start = performance.now();
    host.replaceChildren(evolution.draw(ctx, run, step, data));
    void host.offsetHeight;  // style and layout of what was drawn
    return performance.now() - start;
  };
  const first = [];
  const again = [];
  for (let i = 0; i < repeats; i += 1) {
    const copy = structuredClone(answers);  // answers never drawn: their colours are computed
    first.push(timed(steps[steps.length - 1], copy));
    again.push(timed(steps[(i * 37) % steps.length], copy));
  }
  host.remove();
  return { first, again, filters: answers.drift.filters, steps: answers.drift.steps.length };
}"""


def write_run(run_dir, steps, filters):
    import keras
    import numpy as np

    import tb_cnnviz

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=LAYER)
    pooled = keras.layers.GlobalAveragePooling2D()(conv(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(pooled))
    probe = rng.random((1, 8, 8, 3), np.float32)
    callback = tb_cnnviz.CNNViz(run_dir, probe, np.array([0]), model=model, log_weights=False, gradcam_classes=0,
                                trust_every=None, strict=True)
    kernel, bias = conv.get_weights()
    pace = rng.uniform(0.002, 0.03, filters).astype(np.float32)
    for step in range(steps):
        callback.log(step)
        kernel = kernel + rng.normal(0, 1, kernel.shape).astype(np.float32) * pace
        bias = bias + rng.normal(0, 1, bias.shape).astype(np.float32) * pace
        conv.set_weights([kernel, bias])
    callback._writer.close()


def measure(logdir, steps, say):
    """(draw times, scrub rows) over the run in `logdir`."""
    with tensorboard(logdir, load_fast=False, reload_interval=1) as server, sync_playwright() as playwright:
        wait_for_runs(server.api, 1, steps, timeout=3600)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 950})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.base}/#cnnviz&cv-run={RUN}&cv-view=evolution&cv-evolayer={LAYER}&cv-evosort=value&cv-step=0")
        tab = page.frame_locator("iframe")
        tab.locator("main[data-ready='evolution:0'] canvas.drift").wait_for(timeout=120000)
        frame = plugin_frame(page)
        say(f"idle requestAnimationFrame rate: {frame.evaluate(IDLE_FPS_JS):.1f} frames/s; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        draws = frame.evaluate(DRAW_JS, {"run": RUN, "repeats": REPEATS})
        listed = list(range(steps))  # the run logs steps 0 .. steps - 1
        forward = listed[1:]
        rows = [("first pass, events fetched during the drag", scrub(frame, listed, "evolution", forward))]
        scrub(frame, listed, "evolution", [0], paced=False)
        scrub(frame, listed, "evolution", listed, paced=False)  # warm-up: every step drawn once
        for number in range(1, PASSES + 1):
            scrub(frame, listed, "evolution", [0], paced=False)
            rows.append((f"prefetched, pass {number}", scrub(frame, listed, "evolution", forward)))
        if tab.locator(".evo-head .note", has_text="largest first").count() != 1:
            raise RuntimeError("the rows were not sorted by value")
        browser.close()
    if errors:
        raise SystemExit(f"page errors: {errors}")
    return draws, rows


def main():
    parser = arguments(__doc__)
    parser.add_argument("--filters", type=int, default=512)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    report = Report(args.json)
    say = report.say

    with tempfile.TemporaryDirectory(prefix="cnnviz_evolution_") as tmp:  # the run and tensorboard's log
        logdir = os.path.join(tmp, "logs")
        start = time.perf_counter()
        write_run(os.path.join(logdir, RUN), args.steps, args.filters)
        say(f"run: one Conv2D of {args.filters} filters on 8x8, 1 probe, {args.steps} steps, written in "
            f"{time.perf_counter() - start:.0f} s")
        draws, rows = measure(logdir, args.steps, say)
    say(f"heat map {draws['filters']} filters x {draws['steps']} steps; draw of the whole view, ms "
        f"(median / min / max of {REPEATS}): first {statistics.median(draws['first']):.1f} / {min(draws['first']):.1f} / "
        f"{max(draws['first']):.1f}, redraw at another step {statistics.median(draws['again']):.1f} / "
        f"{min(draws['again']):.1f} / {max(draws['again']):.1f}")
    say(f"\n{'scrub, rows sorted by value':44s} {'moves':>6s} {'drawn':>6s} {'seconds':>8s} {'frames/s':>9s}")
    for kind, row in rows:
        say(f"{kind:44s} {row['moves']:6d} {row['drawn']:6d} {row['seconds']:8.2f} {row['fps']:9.1f}")
    report.figure("evolution_fps.draw_ms", statistics.median(draws["first"]), 100,
                  f"Evolution view of {draws['filters']} filters x {draws['steps']} steps, first draw from fetched data, ms")
    report.figure("evolution_fps.redraw_ms", statistics.median(draws["again"]), None,
                  "the same at another step, colours cached, ms")
    report.figure("evolution_fps.first_pass_fps", rows[0][1]["fps"], None, "scrub, events fetched during the drag, frames/s")
    report.figure("evolution_fps.scrub_fps", statistics.median(row["fps"] for _, row in rows[1:]), 30,
                  f"scrub, prefetched, rows sorted by value, frames/s (median of {PASSES} passes)", at_least=True)


if __name__ == "__main__":
    main()
