"""The quick start on each Keras backend: the demo's Grad-CAM points at the shapes, and the tab shows it.

For each backend (`KERAS_BACKEND` set for a `python -m demo --no-serve` subprocess: the clean and
the shortcut run, 8 epochs, seed 0, as the quick start trains them), prints what the demo reports
of each run, then serves the logdir with a real `tensorboard` and opens every run's eval step in
Debian's Chromium (Playwright): the Grad-CAM view draws a heat map per probe, every other view
draws, the page raises no error. The README quick start test checks the same on TensorFlow in CI;
a PyTorch demo takes about 5 minutes here, too long for CI's budget, hence this bench.

Targets, per backend: the clean run's pointing game >= 0.9 on its 8 probes, the shortcut run's
energy in the object below the clean run's (what the quick start test asserts), and the tab
shows every run.

    python3 -m bench.quickstart_backends [--backends tensorflow,jax,torch] [--json]
"""

import os
import re
import subprocess
import sys
import tempfile

from bench._common import Report, arguments
from tests.browser_helpers import open_tab, wait_ready
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.tensorboard_process import ROOT, tensorboard

VIEWS = ("activations", "filters", "evolution", "layers", "trust")


def train(backend, logdir):
    """{run: (pointing game, energy in the object)} the demo reports, trained under `backend`."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-m", "demo", "--no-serve", "--logdir", logdir], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the demo under {backend} failed:\n{done.stderr[-3000:]}")
    lines = re.findall(r"^(\S+): .*pointing game (\d\.\d\d), energy in object (\d\.\d\d).*$", done.stdout, re.M)
    return {os.path.basename(run): (float(pointing), float(energy)) for run, pointing, energy in lines}, [
        line for line in done.stdout.splitlines() if "pointing game" in line]


def shown_runs(logdir):
    """The runs whose eval step the tab drew: a heat map per probe, then every other view."""
    from playwright.sync_api import sync_playwright

    shown, errors = [], []
    with tensorboard(logdir, False) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 950})
        page.on("pageerror", lambda error: errors.append(str(error)))
        for run, info in sorted(server.api.runs().items()):
            step = info["steps"]["eval"][-1]
            frame = open_tab(page, server.base, run=run, mode="eval", step=step)
            wait_ready(frame, "gradcam", step)
            if frame.locator("canvas.heat").count() != 8:
                continue
            for view in VIEWS:
                frame.locator(f"button[data-view={view}]").click()
                wait_ready(frame, view)
            shown.append(run)
        browser.close()
    return shown, errors


def main():
    parser = arguments(__doc__)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    args = parser.parse_args()
    report = Report(args.json)
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix=f"cnnviz_quickstart_{backend}_") as logdir:
            runs, said = train(backend, logdir)
            for line in said:
                report.say(f"{backend}: {os.path.basename(line)}")
            (clean_pointing, clean_energy), (_, shortcut_energy) = runs["vgg_style_clean"], runs["vgg_style_shortcut"]
            shown, errors = shown_runs(logdir)
            report.say(f"{backend}: the tab drew {shown}; page errors {errors}")
        report.figure(f"quickstart.clean_pointing_game, {backend}", clean_pointing, 0.9,
                      f"{backend}: clean run's pointing game", at_least=True)
        report.figure(f"quickstart.shortcut_over_clean_energy, {backend}", shortcut_energy / clean_energy, 1.0,
                      f"{backend}: shortcut run's energy in the object / the clean run's")
        report.figure(f"quickstart.runs_shown, {backend}", float(len(shown) == len(runs) == 2 and not errors), 1.0,
                      f"{backend}: both runs drawn in every view without a page error (1 = yes)", at_least=True)


if __name__ == "__main__":
    main()
