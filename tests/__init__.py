"""tb-cnnviz's tests, and the helpers that the benches share with them (`from tests.helpers
import ...`): run from the repository root, `python3 -m pytest -q tests`."""
