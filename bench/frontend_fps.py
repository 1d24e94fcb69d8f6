"""Frames per second drawn while scrubbing the step slider, in headless Chromium in TensorBoard.

Writes a run of --steps steps of the demo model (demo/model.py vgg_style, 8 probes, default
CNNViz options) with the real callback and a train step before each event, so every step's
maps differ; serves it with a real `tensorboard` and opens the cnnviz tab in headless
Chromium (/usr/bin/chromium). Then, for the Grad-CAM, activations and filters views:

  - warm-up: visit every step once, waiting until each is drawn, so its data is in the
    dashboard's URL cache (frontend/api.js) ("prefetched");
  - scrub: from the first step to the last, one slider `input` event per animation frame (what
    a drag at the display's rate sends) and a `change` at the end (its release), and count
    inside the page, with performance.now(), the distinct steps drawn (the view's
    `main[data-ready]` changing) per second. The link (URL hash) must then name the last step.

Grad-CAM is also scrubbed once before its warm-up ("first pass"): data is fetched during the
drag, helped only by the prefetch of neighbouring steps; printed, not a headline figure.
Target: >= 30 steps drawn per second once prefetched, a ratio >= 0.5 to a 60 Hz display; the
browser's idle requestAnimationFrame rate is printed for reference.

    python3 -m bench.frontend_fps [--steps 200] [--json]
"""

import os
import re
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench._common import DemoTraining, Report, arguments  # noqa: E402

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.http_api import wait_for_runs  # noqa: E402
from tests.tensorboard_process import tensorboard  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
DISPLAY_HZ = 60
RUN = "demo"

# In the tab's frame: moves the slider to each index in `indices` (`input` events, then the
# `change` of a drag's release) and returns the times (performance.now(), ms) and data-ready
# values of every draw. `paced`: one index per animation frame, regardless of drawing (a drag);
# else wait for each step to be drawn (the warm-up).
SCRUB_JS = """async ({ indices, steps, view, paced }) => {
  const slider = document.querySelector("input.step-slider");
  const main = document.querySelector("main.content");
  const draws = [];
  const observer = new MutationObserver(() => draws.push([performance.now(), main.dataset.ready]));
  observer.observe(main, { attributes: true, attributeFilter: ["data-ready"] });
  const wanted = (index) => `${view}:${steps[index]}`;
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const move = (index) => {
    slider.value = String(index);
    slider.dispatchEvent(new Event("input", { bubbles: true }));
  };
  const start = performance.now();
  for (const index of indices) {
    move(index);
    do {
      await frame();
      if (performance.now() - start > 300000) throw new Error(`stuck before ${wanted(index)}`);
    } while (!paced && main.dataset.ready !== wanted(index));
  }
  slider.dispatchEvent(new Event("change", { bubbles: true }));
  while (main.dataset.ready !== wanted(indices[indices.length - 1])) await frame();
  observer.disconnect();
  return { start, draws };
}"""

IDLE_FPS_JS = """async () => {
  const times = [];
  await new Promise((resolve) => {
    const tick = (t) => { times.push(t); if (times.length < 121) requestAnimationFrame(tick); else resolve(); };
    requestAnimationFrame(tick);
  });
  return 1000 * (times.length - 1) / (times[times.length - 1] - times[0]);
}"""


def write_run(logdir, steps):
    demo = DemoTraining(os.path.join(logdir, RUN))
    for step in range(steps):
        demo.train_step(step)
        demo.callback.log(step)
    demo.callback._writer.close()


def plugin_frame(page):
    return next(f for f in page.frames if f.url.endswith("plugin_entry.html?name=cnnviz"))


def scrub(frame, steps, view, indices, paced=True):
    """Distinct steps drawn per second, from the first slider move to the last step's draw."""
    result = frame.evaluate(SCRUB_JS, {"indices": indices, "steps": steps, "view": view, "paced": paced})
    if not re.search(rf"cv-step={steps[indices[-1]]}(&|$)", frame.page.url):
        raise RuntimeError(f"the link does not follow the drag's release: {frame.page.url}")
    drawn = [ready for i, (_, ready) in enumerate(result["draws"]) if i == 0 or ready != result["draws"][i - 1][1]]
    seconds = (result["draws"][-1][0] - result["start"]) / 1000
    return {"drawn": len(drawn), "moves": len(indices), "seconds": seconds, "fps": len(drawn) / seconds}


def measure(logdir, count, say):
    """[(view, kind of scrub, scrub() result)] over the run in `logdir` of `count` steps."""
    with tensorboard(logdir, load_fast=False, reload_interval=1) as server, sync_playwright() as playwright:
        base = server.base
        # TensorBoard loads event files in the background: wait until every step is listed
        steps = wait_for_runs(server.api, {RUN: count}, timeout=300, every=1)[RUN]["steps"]["train"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 950})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/#cnnviz&cv-run={RUN}&cv-step={steps[0]}")
        tab = page.frame_locator("iframe")
        tab.locator(f"main[data-ready='gradcam:{steps[0]}']").wait_for(timeout=60000)
        frame = plugin_frame(page)
        say(f"idle requestAnimationFrame rate: {frame.evaluate(IDLE_FPS_JS):.1f} frames/s; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        forward = list(range(1, len(steps)))
        rows = [("gradcam", "first pass, fetched during the drag", scrub(frame, steps, "gradcam", forward))]
        for view in ("gradcam", "activations", "filters"):
            tab.locator(f"button[data-view={view}]").click()
            scrub(frame, steps, view, [0, *forward], paced=False)  # warm-up: every step drawn once
            scrub(frame, steps, view, [0], paced=False)
            rows.append((view, "prefetched", scrub(frame, steps, view, forward)))
        browser.close()
    if errors:
        raise SystemExit(f"page errors: {errors}")
    return rows


def main():
    parser = arguments(__doc__)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    report = Report(args.json)
    say = report.say

    with tempfile.TemporaryDirectory(prefix="cnnviz_fps_") as tmp:  # the run and tensorboard's log
        logdir = os.path.join(tmp, "logs")
        start = time.perf_counter()
        write_run(logdir, args.steps)
        say(f"run: demo vgg_style 40x40, 8 probes, {args.steps} steps, written in "
            f"{time.perf_counter() - start:.0f} s")
        rows = measure(logdir, args.steps, say)
    say(f"\n{'view':12s} {'scrub':36s} {'moves':>6s} {'drawn':>6s} {'seconds':>8s} {'frames/s':>9s} {'/ 60 Hz':>8s}")
    for view, kind, row in rows:
        say(f"{view:12s} {kind:36s} {row['moves']:6d} {row['drawn']:6d} {row['seconds']:8.2f} "
            f"{row['fps']:9.1f} {row['fps'] / DISPLAY_HZ:8.2f}")
    for view, kind, row in rows[1:]:
        report.figure(f"frontend_fps.{view}_scrub_ratio_to_60hz", row["fps"] / DISPLAY_HZ, 0.5,
                      f"{view} scrub, prefetched, {row['fps']:.1f} frames/s, as a fraction of 60 Hz", at_least=True)


if __name__ == "__main__":
    main()
