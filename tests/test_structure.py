"""The shape of the code, checked so that it cannot silently break again: sizes of modules,
classes and functions in tb_cnnviz/ and frontend/, and what loading the plugin and the reader
imports.
The import contracts between packages are `lint-imports`' (.importlinter, run by .ci/run)."""

import ast
import builtins
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tb_cnnviz"
FRONTEND = PACKAGE.parent / "frontend"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250  # of code: docstrings, comments and blank lines not counted
MAX_FUNCTION_LINES = 60


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _lines_of_code(first, last, source_lines, skipped) -> int:
    """Lines first..last (1-based) that are not blank and not in `skipped` (comments, docstrings)."""
    return sum(1 for number in range(first, last + 1) if source_lines[number - 1].strip() and number not in skipped)


def _code_lines(node, source_lines, docstring_lines) -> int:
    """Lines of `node` that hold code: not blank, not only a comment, not a docstring."""
    comments = {number for number in range(node.lineno, node.end_lineno + 1)
                if source_lines[number - 1].strip().startswith("#")}
    return _lines_of_code(node.lineno, node.end_lineno, source_lines, docstring_lines | comments)


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


# tree-sitter's JavaScript grammar: a real parser, so that braces in strings, template
# literals and regular expressions cannot fool the count.
JS_FUNCTIONS = {"function_declaration", "function_expression", "arrow_function", "method_definition",
                "generator_function_declaration", "generator_function"}
JS_CLASSES = {"class_declaration", "class"}


def _js_too_long(path):
    """[(what, lines, limit)] of a tab module's parts over the limits of tb_cnnviz's; lines of
    code: blank lines and lines that hold only a comment not counted."""
    import tree_sitter
    import tree_sitter_javascript

    source = path.read_bytes()
    lines = source.decode().splitlines()
    tree = tree_sitter.Parser(tree_sitter.Language(tree_sitter_javascript.language())).parse(source)
    assert not tree.root_node.has_error, f"{path.name} does not parse"
    found = [(path.name, len(lines), MAX_MODULE_LINES)] if len(lines) > MAX_MODULE_LINES else []
    nodes, comment_lines, parts = [tree.root_node], set(), []
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children)
        (start, start_column), (end, end_column) = node.start_point, node.end_point
        if node.type == "comment" and not lines[start][:start_column].strip() and not lines[end][end_column:].strip():
            comment_lines.update(range(start + 1, end + 2))  # 1-based, as _lines_of_code counts
        limit = MAX_FUNCTION_LINES if node.type in JS_FUNCTIONS else MAX_CLASS_LINES if node.type in JS_CLASSES else None
        if limit is not None:
            parts.append((node, limit))
    for node, limit in parts:
        count = _lines_of_code(node.start_point[0] + 1, node.end_point[0] + 1, lines, comment_lines)
        if count > limit:
            found.append((f"{path.name}:{node.start_point[0] + 1} {node.type}", count, limit))
    return found


def test_no_tab_module_class_or_function_is_over_its_size():
    modules = sorted(FRONTEND.glob("*.js"))
    assert len(modules) > 20
    over = [part for path in modules for part in _js_too_long(path)]
    assert not over, "over their size (what, lines, limit): " + "; ".join(map(str, over))


def test_the_tab_size_check_counts_code_lines_only(tmp_path):
    body = "\n".join(f"  total += {number}; // a note" for number in range(MAX_FUNCTION_LINES - 4))
    source = (f"/** Doc\n * comment. */\nexport function sum() {{\n  // why\n\n  let total = `${{1}}}}`;\n{body}\n"
              "  return total;\n}\n")
    (tmp_path / "fits.js").write_text(source)
    assert _js_too_long(tmp_path / "fits.js") == []
    (tmp_path / "long.js").write_text(source.replace("return total;", "total += 1;\n  return total;"))
    assert _js_too_long(tmp_path / "long.js") == [("long.js:3 function_declaration", MAX_FUNCTION_LINES + 1,
                                                   MAX_FUNCTION_LINES)]


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


@pytest.mark.parametrize("name", ["CNNViz", "explain", "gradcam", "gradcam_plus_plus", "sanity_check", "read_run"])
def test_public_names_import_from_the_top_level(name):
    import tb_cnnviz

    assert callable(getattr(tb_cnnviz, name))
    assert name in tb_cnnviz.__all__
