"""The README's Python examples run as written and print what they claim."""

import contextlib
import io
import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.slow
@pytest.mark.every_backend
def test_readme_python_examples_run(tmp_path, monkeypatch):
    """The training examples, on every Keras backend; the HTTP example runs against a real server
    in test_server."""
    blocks = python_blocks()[:6]
    assert "CNNViz" in blocks[0] and "cb.log(step)" in blocks[1] and "gradcam(" in blocks[2]
    assert "methods=" in blocks[3]
    assert "BinaryCrossentropy(from_logits=True)" in blocks[4] and "MobileNetV2" in blocks[5]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    lines = output.getvalue().splitlines()
    assert lines[0] == "[0, 8, 16] [16]"
    assert lines[1] == "(8, 32, 32)"
    assert namespace["maps"].shape == (4, 32, 32)
    assert namespace["drift"].shape == (16, 3)
    assert namespace["run"].event(16).activations("block1_conv1")[0].shape == (8, 4, 30, 30)
    assert namespace["event"].methods == ["gradcam", "gradcam_pp", "hirescam", "layercam", "smoothgrad"]
    assert namespace["event"].maps("hirescam").shape == (8, 32, 32)
    assert np.isfinite(namespace["figures"]["deletion_auc"][0])  # trust_every=5: the first event
    custom = namespace["read_run"]("logs/custom")
    assert custom.steps() == [0, 100, 200]
    assert sorted(eval(lines[3])) == [0, 1, 2, 3] and lines[4] == "(32, 32)"  # noqa: S307 - a printed list
    trust = namespace["trust"]
    assert len(trust["pointing_game"]) == 3 and np.isfinite(trust["pointing_game"]).all()
    assert np.isfinite(trust["deletion_auc"][0]) and np.isnan(trust["deletion_auc"][1:]).all()  # trust_every=5
    assert lines[6] == "binary"
    assert lines[7] == str(["expanded_conv_project", "block_2_project", "block_5_project", "block_12_project",
                            "Conv_1"])
    binary = namespace["read_run"]("logs/binary")
    assert binary.event(binary.steps()[-1]).predictions["target"] == [0, 1] * 4


@pytest.mark.slow
def test_readme_jupyter_magic_starts_tensorboard_with_the_tab(tmp_path, monkeypatch):
    """`%tensorboard ARGS` runs tensorboard.notebook.start(ARGS); do that with the README's ARGS."""
    import json
    import os
    import signal

    from tests.http_api import http_get
    from tests.plugin_helpers import write_logs
    from tests.tensorboard_process import free_port

    magic = re.search(r"^%tensorboard (.*)$", README.read_text(), re.M).group(1)
    assert magic == "--logdir logs"
    write_logs(str(tmp_path / "logs"), epochs=1)
    port = free_port()
    monkeypatch.chdir(tmp_path)
    from tensorboard import manager, notebook

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        notebook.start(f"{magic} --host 127.0.0.1 --port {port}")
    try:
        status, _, body = http_get(f"http://127.0.0.1:{port}/data/plugins_listing")
        assert status == 200 and json.loads(body)["cnnviz"]["enabled"]
    finally:
        for info in manager.get_all():
            if info.port == port:
                os.kill(info.pid, signal.SIGTERM)
