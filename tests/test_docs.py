"""The documentation site (docs/, built by mkdocs.yml): every page's Python examples run as written
and print what they claim, and the options reference lists exactly CNNViz's parameters, with their
defaults as in its signature, as its docstring's Args do. (The README's: tests/test_readme.py.)"""

import ast
import contextlib
import inspect
import io
import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Pages whose Python runs elsewhere: the HTTP example needs a running TensorBoard (test_server).
RUN_ELSEWHERE = {"http-api.md": "tests/test_server.py::test_docs_npy_example_against_a_real_server"}


def python_blocks(path) -> list:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", pathlib.Path(path).read_text(encoding="utf-8"), re.S | re.M)


def run_blocks(path, tmp_path, monkeypatch) -> tuple:
    """Runs a page's Python blocks in order, in one namespace, with `tmp_path` as the working
    directory: (namespace, the lines they printed)."""
    monkeypatch.chdir(tmp_path)
    namespace = {}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        for block in python_blocks(path):
            exec(compile(block, str(path), "exec"), namespace)  # noqa: S102
    return namespace, output.getvalue().splitlines()


def page_name(path) -> str:
    return path.relative_to(DOCS).as_posix()


def pages_with_python() -> list:
    return [path for path in sorted(DOCS.rglob("*.md")) if python_blocks(path)]


# -- what each page's examples must print and hold -------------------------------------------------

def check_getting_started(namespace, lines):
    assert lines[0] == "[0, 8, 16] [16]"
    assert lines[1] == "(8, 32, 32)"
    run = namespace["run"]
    assert run.event(16).activations("block1_conv1")[0].shape == (8, 4, 30, 30)
    assert namespace["maps"].shape == (8, 4, 30, 30)
    assert namespace["drift"].shape == (16, 3)
    assert sorted(eval(lines[3])) == [0, 1, 2, 3] and lines[4] == "(32, 32)"  # noqa: S307 - a printed list
    trust = namespace["trust"]
    assert len(trust["pointing_game"]) == 3 and np.isfinite(trust["pointing_game"]).all()
    assert np.isfinite(trust["deletion_auc"][0]) and np.isnan(trust["deletion_auc"][1:]).all()  # trust_every=5


def check_heads(namespace, lines):
    assert lines[0] == "binary"
    binary = namespace["read_run"]("logs/binary")
    assert binary.event(binary.steps()[-1]).predictions["target"] == [0, 1] * 4
    assert lines[1] == "multilabel"
    predicted_set = eval(lines[2])  # noqa: S307 - a printed list
    assert isinstance(predicted_set, list) and set(predicted_set) <= {0, 1, 2, 3}


def check_inputs_outputs(namespace, lines):
    assert lines == ["shape (8, 32, 32, 3)"]


def check_segmentation(namespace, lines):
    assert lines == ["segmentation dec1", "(8, 32, 32)", "True"]


def check_backbones(namespace, lines):
    assert lines == [str(["expanded_conv_project", "block_2_project", "block_5_project", "block_12_project",
                          "Conv_1"])]


def check_custom_loops(namespace, lines):
    assert lines == ["[0, 100, 200]"]
    assert namespace["read_run"]("logs/custom").steps() == [0, 100, 200]


def check_trust(namespace, lines):
    (printed,) = lines
    cascade = eval(printed, {"np": np})  # noqa: S307 - a printed list
    assert cascade[0][0] == "predictions" and [layer for layer, _ in cascade[1:3]] == ["block3_conv2", "block1_conv1"]
    assert all(-1 <= correlation <= 1 for _, correlation in cascade)


def check_filters(namespace, lines):
    assert lines[0] == "(8, 3, 3, 3) kernel"
    assert lines[1] == str(["cos_to_first", "cos_to_prev", "dead_fraction", "mean_activation", "norm"])
    assert lines[2] == "9 9"
    assert lines[3] == "(2, 32, 32, 3) [0, 1]"
    assert lines[4] == str(["change", "dead_fraction", "drift", "norm_trend"])


def check_methods(namespace, lines):
    for name in ("maps", "fine", "pixels"):
        assert namespace[name].shape == (4, 32, 32) and (namespace[name] >= 0).all(), name
    event = namespace["event"]
    assert event.methods == ["gradcam", "gradcam_pp", "hirescam", "layercam", "smoothgrad"]
    assert event.maps("hirescam").shape == (8, 32, 32)
    assert event.method_metrics("smoothgrad")["deletion_auc"].shape == (8,)
    assert np.isfinite(namespace["figures"]["deletion_auc"][0])  # trust_every=5: the first event


CHECKS = {
    "getting-started.md": check_getting_started,
    "guide/heads.md": check_heads,
    "guide/inputs-outputs.md": check_inputs_outputs,
    "guide/segmentation.md": check_segmentation,
    "guide/backbones.md": check_backbones,
    "guide/custom-loops.md": check_custom_loops,
    "trust.md": check_trust,
    "filters.md": check_filters,
    "methods.md": check_methods,
}


def test_every_page_with_python_is_run_and_checked():
    """A new page with Python gets its checks here (or says where else it runs); no check is stale."""
    found = {page_name(path) for path in pages_with_python()}
    assert found == set(CHECKS) | set(RUN_ELSEWHERE)


@pytest.mark.slow
@pytest.mark.every_backend
@pytest.mark.parametrize("doc", sorted(set(CHECKS)))  # not `page`: the browser tests' fixture
def test_page_python_examples_run(doc, tmp_path, monkeypatch):
    """A page's examples, on every Keras backend: its blocks in order, in one namespace."""
    namespace, lines = run_blocks(DOCS / doc, tmp_path, monkeypatch)
    CHECKS[doc](namespace, lines)


@pytest.mark.slow
def test_jupyter_magic_starts_tensorboard_with_the_tab(tmp_path, monkeypatch):
    """`%tensorboard ARGS` runs tensorboard.notebook.start(ARGS); do that with the docs' ARGS."""
    import json
    import os
    import signal

    from tests.http_api import http_get
    from tests.plugin_helpers import write_logs
    from tests.tensorboard_process import free_port

    magic = re.search(r"^%tensorboard (.*)$", (DOCS / "getting-started.md").read_text(encoding="utf-8"), re.M).group(1)
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


# -- the options reference against the callback ----------------------------------------------------

def signature_parameters() -> dict:
    from tb_cnnviz import CNNViz

    parameters = inspect.signature(CNNViz.__init__).parameters
    return {name: parameter.default for name, parameter in parameters.items() if name != "self"}


def options_table() -> dict:
    """{option: its default cell} of every `| option | default | meaning |` table of options.md."""
    rows, in_table = {}, False
    for line in (DOCS / "options.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| option | default | meaning |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            option, default = (cell.strip() for cell in line.strip("|").split("|")[:2])
            assert re.fullmatch(r"`\w+`", option), f"one option per row, in backquotes: {line}"
            assert option.strip("`") not in rows, f"{option} is listed twice"
            rows[option.strip("`")] = default
    return rows


def docstring_args() -> list:
    """The names the Args section of CNNViz's docstring gives entries to (`a, b:` names two)."""
    from tb_cnnviz import CNNViz

    doc = inspect.getdoc(CNNViz)
    section = re.search(r"^Args:\n((?:[ ]+.*\n|\n)+)", doc + "\n", re.M).group(1)
    return [name for entry in re.findall(r"^  (\w+(?:, \w+)*):", section, re.M) for name in entry.split(", ")]


def test_options_reference_lists_every_parameter_with_its_signature_default():
    parameters, rows = signature_parameters(), options_table()
    assert sorted(rows) == sorted(parameters), (
        f"missing from docs/options.md: {sorted(set(parameters) - set(rows))}; "
        f"not parameters of CNNViz: {sorted(set(rows) - set(parameters))}")
    for name, default in parameters.items():
        cell = rows[name]
        if default is inspect.Parameter.empty:
            assert cell == "required", (name, cell)
        else:
            assert re.fullmatch(r"`[^`]+`", cell), f"{name}: the default as a Python literal in backquotes, got {cell}"
            value = ast.literal_eval(cell.strip("`"))
            assert (type(value), value) == (type(default), default), (name, cell, default)


def test_callback_docstring_gives_every_parameter_an_entry():
    parameters, documented = signature_parameters(), docstring_args()
    assert len(documented) == len(set(documented)), f"documented twice: {documented}"
    unknown = set(documented) - set(parameters)
    assert not unknown, f"Args names what is no parameter: {sorted(unknown)}"
    missing = set(parameters) - set(documented)
    assert not missing, f"CNNViz's docstring has no Args entry for {sorted(missing)}"


def test_the_command_line_page_lists_every_option_of_each_verb():
    """docs/cli.md's table of options against the parser's: none missing, none that is not one."""
    from tb_cnnviz.cli.main import parser

    verbs = parser()._subparsers._group_actions[0].choices
    options = {option for name in ("explain", "replay") for action in verbs[name]._actions
               for option in action.option_strings if option.startswith("--") and option != "--help"}
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(--[\w-]+)", page, re.M))
    assert listed == options, (sorted(options - listed), sorted(listed - options))
