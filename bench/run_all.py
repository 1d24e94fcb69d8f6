"""Runs every bench script and prints each headline figure against its target, PASS or FAIL.

Each script is run with --json: its details go to stderr (shown as it runs), its figures come
back as JSON lines. A script that fails or cannot run (e.g. tf-explain not installed) is
listed as such. Takes about an hour on a 2-core machine; --only picks scripts.

    python3 -m bench.run_all [--only event_cost,fuzz_routes]
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["event_cost", "vs_tf_explain", "fit_overhead", "long_run", "backend_latency", "frontend_fps",
           "scaling", "fuzz_routes", "big_logdir", "demo_seeds", "backbones", "shortcut_seeds", "trust_seeds",
           "curve_steps", "trust_cost", "evolution_fps", "backends", "quickstart_backends", "methods", "demo_methods"]


def run(script):
    """(figures, seconds, error or None) of one bench script."""
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", f"bench.{script}", "--json"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    figures = []
    for line in process.stdout:
        if line.startswith("{"):
            figures.append(json.loads(line))
        else:
            sys.stderr.write(line)  # e.g. the demo's training output
    code = process.wait()
    return figures, time.monotonic() - start, None if code == 0 else f"exited with {code}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated script names, of: " + ", ".join(SCRIPTS))
    args = parser.parse_args()
    scripts = args.only.split(",") if args.only else SCRIPTS
    unknown = set(scripts) - set(SCRIPTS)
    if unknown:
        parser.error(f"unknown scripts {sorted(unknown)}; choose from {SCRIPTS}")
    rows = []
    for script in scripts:
        print(f"== {script}", file=sys.stderr, flush=True)
        figures, seconds, error = run(script)
        rows += [(script, f["name"], f["value"], f["target"],
                  "measured" if f["pass"] is None else "PASS" if f["pass"] else "FAIL") for f in figures]
        if error or not figures:
            rows.append((script, "(script)", "-", "runs", f"FAIL: {error or 'no figures'}"))
        print(f"== {script}: {seconds:.0f} s", file=sys.stderr, flush=True)
    print("| bench | figure | measured | target | result |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    measured = sum(row[-1] == "measured" for row in rows)
    failed = sum(row[-1] not in ("PASS", "measured") for row in rows)
    print(f"\n{len(rows) - measured - failed} of {len(rows) - measured} figures with a target pass"
          f" ({measured} more measured without one)")


if __name__ == "__main__":
    main()
