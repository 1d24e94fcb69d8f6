#!/usr/bin/env bash
# Quick start: install tb-cnnviz, train the demo with CNNViz, then serve the logs with TensorBoard.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 TF_CPP_MIN_LOG_LEVEL=3
# The Keras backend KERAS_BACKEND names (tensorflow unless set), as its extra: [tensorflow], [jax] or [torch].
python3 -m pip install --quiet --root-user-action=ignore -e ".[${KERAS_BACKEND:-tensorflow}]"
exec python3 -m demo "$@"
