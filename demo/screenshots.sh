#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png (shown in the README and the docs): trains the demo, then the browser
# test takes a screenshot of each view of its run in a real TensorBoard and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
python3 -m demo --no-serve --logdir "$logdir"
CNNVIZ_SCREENSHOT_LOGDIR="$logdir" CNNVIZ_SCREENSHOT_DIR="$PWD/docs/screenshots" \
  python3 -m pytest -q tests/test_dashboard.py -k screenshots
