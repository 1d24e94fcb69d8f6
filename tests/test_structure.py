"""The shape of the code, checked so that it cannot silently break again: sizes of modules,
classes and functions in tb_cnnviz/, and what loading the plugin and the reader imports.
The import contracts between packages are `lint-imports`' (.importlinter, run by .ci/run)."""

import ast
import builtins
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tb_cnnviz"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250  # of code: docstrings, comments and blank lines not counted
MAX_FUNCTION_LINES = 60


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _code_lines(node, source_lines, docstring_lines) -> int:
    """Lines of `node` that hold code: not blank, not only a comment, not a docstring."""
    count = 0
    for number in range(node.lineno, node.end_lineno + 1):
        text = source_lines[number - 1].strip()
        if text and not text.startswith("#") and number not in docstring_lines:
            count += 1
    return count


def _docstring_lines(tree) -> set:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def _too_long(path):
    """[(what, lines, limit)] of the module's parts over their limits."""
    source = path.read_text()
    lines = source.splitlines()
    found = [(str(path.relative_to(PACKAGE.parent)), len(lines), MAX_MODULE_LINES)] if len(lines) > MAX_MODULE_LINES else []
    tree = ast.parse(source)
    docstrings = _docstring_lines(tree)
    for node in ast.walk(tree):
        limit = {ast.ClassDef: MAX_CLASS_LINES, ast.FunctionDef: MAX_FUNCTION_LINES,
                 ast.AsyncFunctionDef: MAX_FUNCTION_LINES}.get(type(node))
        if limit is not None:
            count = _code_lines(node, lines, docstrings)
            if count > limit:
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}", count, limit))
    return found


def test_no_module_class_or_function_is_over_its_size():
    over = [part for path in _modules() for part in _too_long(path)]
    assert not over, "over their size (what, lines, limit): " + "; ".join(map(str, over))


def test_the_size_check_counts_code_lines_only():
    source = 'def f():\n    """Doc\n    string."""\n    # a comment\n\n    return 1\n'
    tree = ast.parse(source)
    assert _code_lines(tree.body[0], source.splitlines(), _docstring_lines(tree)) == 2


def test_no_module_or_package_shadows_a_builtin_or_the_standard_library():
    names = {path.stem if path.name != "__init__.py" else path.parent.name for path in _modules()}
    shadowing = sorted(names & (set(dir(builtins)) | set(sys.stdlib_module_names)))
    assert not shadowing, f"modules named like a builtin or a standard module: {shadowing}"


@pytest.mark.slow
def test_loading_the_plugin_and_the_reader_imports_neither_tensorflow_nor_keras(tmp_path):
    code = f"""
import sys
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tb_cnnviz.plugin.loader import CNNVizLoader
from tb_cnnviz import read_run
import tb_cnnviz.reading.reader

multiplexer = plugin_event_multiplexer.EventMultiplexer()
context = base_plugin.TBContext(logdir={str(tmp_path)!r}, flags=None,
                                data_provider=data_provider.MultiplexerDataProvider(multiplexer, {str(tmp_path)!r}))
plugin = CNNVizLoader().load(context)
assert sorted(plugin.get_plugin_apps())
print(sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras")))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["CNNViz", "gradcam", "gradcam_plus_plus", "sanity_check", "read_run"])
def test_public_names_import_from_the_top_level(name):
    import tb_cnnviz

    assert callable(getattr(tb_cnnviz, name))
    assert name in tb_cnnviz.__all__
