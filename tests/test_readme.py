"""The README: at most 200 lines, the quick start's two commands, links that resolve, and its Python
example runs as written and prints what it claims. (The pages of docs/: tests/test_docs.py.)"""

import re

import pytest

from tests.test_docs import DOCS, ROOT, python_blocks, run_blocks

README = ROOT / "README.md"


def test_readme_is_short_and_starts_with_the_two_quick_start_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    first_shell = re.search(r"^```bash\n(.*?)^```", text, re.S | re.M).group(1)
    commands = [line.split("#")[0].strip() for line in first_shell.splitlines()]
    assert commands == ["bash demo/quickstart.sh", "bash .ci/run"]


def slug(heading: str) -> str:
    """A heading's anchor as Python-Markdown's toc makes it (mkdocs.yml)."""
    text = re.sub(r"[^\w\s-]", "", re.sub(r"<[^>]+>|`", "", heading)).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def test_readme_links_and_images_resolve():
    """GitHub renders docs/*.md from the README's relative links: each file exists, each anchor is a
    heading of its page."""
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if not re.match(r"\w+://", link)]
    assert any(link.startswith("docs/screenshots/") for link in local)
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), link
        if anchor:
            headings = re.findall(r"^#+ (.*)$", target.read_text(encoding="utf-8"), re.M)
            assert anchor in {slug(heading) for heading in headings}, link
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in local}
    unlinked = [path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md") if path.resolve() not in linked]
    assert not unlinked, f"pages the README does not link to: {unlinked}"


@pytest.mark.slow
@pytest.mark.every_backend
def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's example, on every Keras backend."""
    (block,) = python_blocks(README)
    assert "CNNViz" in block and len(block.splitlines()) <= 15
    namespace, lines = run_blocks(README, tmp_path, monkeypatch)
    assert lines == ["[0, 8, 16]"]
    run = namespace["read_run"]("logs/run1")
    event = run.event(16)
    assert event.gradcam.shape == (8, 32, 32)
    assert run.objects.shape == (8, 32, 32)  # masks= is stored with the run
    assert len(event.metrics["pointing_game"]) == 8
