"""Route fuzzing in CI: bench/fuzz_routes.py at a small count against a real `tensorboard`, so a
regression fails here; the bench sends 1,000+ requests per route in both load modes."""

import os

import pytest

from bench import fuzz_routes
from tests.changed_models import FUZZED, write_changed_run
from tests.plugin_helpers import logged_steps, write_logs, write_segmentation_run

JSON = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}


@pytest.mark.slow
def test_fuzzed_requests_get_200_400_or_404_and_leave_the_server_healthy(tmp_path, tensorboard_server):
    logdir = str(tmp_path / "logs")
    write_logs(logdir, epochs=1)
    write_segmentation_run(os.path.join(logdir, "gamma"))  # the mask routes answer it alone
    write_changed_run(os.path.join(logdir, "delta"), FUZZED)  # a model changed between events
    # the Rust data server: it rejects some experiment ids that the Python loader ignores
    with tensorboard_server(logdir, load_fast=True, runs=logged_steps(logdir)) as server:
        report = fuzz_routes.fuzz_server(server.base, per_route=60, seed=8)
    assert not report["failures"], report["failures"][:5]
    assert not report["unhealthy"] and report["runs"] == ["alpha", "beta", "delta", "gamma"]
    counts = report["counts"]
    assert sorted(counts) == sorted([*fuzz_routes.ROUTES, fuzz_routes.STATIC, fuzz_routes.PATHS])
    assert all(sum(c.values()) == 60 for c in counts.values())
    for route in fuzz_routes.ROUTES:  # requests reach every outcome, not only the validation
        assert route == "runs" or all(counts[route][status] for status in ("200", "400", "404")), route


@pytest.mark.parametrize("job, status, headers, body", [
    (("event", "json", False), 500, JSON, b'{"error": "internal"}'),
    (("event", "json", False), 400, {**JSON, "Content-Type": "text/html"}, b"<p>bad</p>"),
    (("event", "json", False), 404, {"Content-Type": "application/json"}, b'{"error": "no"}'),
    (("event", "json", False), 400, JSON, b'{"message": "no error field"}'),
    (("event", "json", False), 400, JSON, b'{"error": "got <script>"}'),
    (("event", "json", False), 200, JSON, b'{"faithfulness": NaN}'),
    (("event", "json", True), 404, JSON, b'{"error": "a valid request refused"}'),
    (("gradcam", "png", False), 200, {**JSON, "Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\ntruncated"),
    (("stats.npy", "npy", False), 200, {**JSON, "Content-Type": "application/octet-stream"}, b"not npy"),
    (("event", "json", False), 404, {**JSON, "Content-Type": "text/plain"}, b"Not found"),
])
def test_the_fuzzer_flags_wrong_answers(job, status, headers, body):
    """A checker that passes everything would make the fuzzing worthless."""
    assert fuzz_routes.problem(fuzz_routes.Job(job[0], job[1], b"/", job[2]), status, headers, body, {})


def test_the_fuzzer_accepts_tensorboards_own_404_for_other_paths():
    job = fuzz_routes.Job(fuzz_routes.PATHS, None, b"/", False)
    headers = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
    assert fuzz_routes.problem(job, 404, headers, b"Not found", {}) is None
