"""Every relative link and image in README.md and docs/ points at a file that exists, and an
anchor (`file.md#heading`) at a heading that file has; the README stays a front page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 350

# [text](target) and ![alt](target), with an optional "title"; the text may hold brackets
# one level deep (`[`loss=huber`](...)`), the target no spaces or parentheses
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def markdown_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text (links by their text, code spans by their
    content), lowercase, punctuation removed but for `-` and `_`, each space a `-`."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings; a repeated heading gets -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image outside code blocks and code spans."""
    found = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        found += [(number, m.group(1)) for m in LINK.finditer(line)]
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One line for each relative link of `path` that does not resolve."""
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        where = f"{path.relative_to(root)}:{number}: {target}"
        resolved = (path.parent / file_part).resolve() if file_part else path
        if file_part.startswith("/") or not resolved.exists():
            problems.append(f"{where}: no such file {file_part}")
        elif anchor and resolved.suffix == ".md" and anchor.lower() not in anchors(resolved):
            problems.append(f"{where}: {resolved.relative_to(root)} has no heading #{anchor}")
    return problems


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert not broken_links(path), "\n".join(broken_links(path))


def test_the_readme_is_a_front_page() -> None:
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move details to docs/"


def test_the_readme_links_every_task_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = sorted((ROOT / "docs" / "tasks").glob("*.md"))
    assert pages
    assert not [p.name for p in pages if f"](docs/tasks/{p.name}" not in readme]


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs" / "tasks").mkdir(parents=True)
    (tmp_path / "docs" / "figures").mkdir()
    (tmp_path / "docs" / "figures" / "a.png").write_bytes(b"")
    (tmp_path / "docs" / "x.md").write_text("# X\n\n## `loss=huber`: the Huber loss, δ = 1\n")
    (tmp_path / "README.md").write_text(
        "# Title\n\n## Two commands\n\n"
        "[ok](docs/x.md) [ok](docs/x.md#losshuber-the-huber-loss-δ--1) [ok](#two-commands)\n"
        "![ok](docs/figures/a.png) [web](https://example.org/none) `[code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n"
        "[bad](docs/y.md) ![bad](docs/figures/b.png) [bad](docs/x.md#nothing) [bad](#no)\n"
    )
    (tmp_path / "docs" / "tasks" / "t.md").write_text(
        "[ok](../x.md) ![ok](../figures/a.png) [bad](docs/x.md) [ok](../../README.md#title)\n"
    )
    readme = broken_links(tmp_path / "README.md", tmp_path)
    assert [line.split(": ", 1)[1] for line in readme] == [
        "docs/y.md: no such file docs/y.md",
        "docs/figures/b.png: no such file docs/figures/b.png",
        "docs/x.md#nothing: docs/x.md has no heading #nothing",
        "#no: README.md has no heading #no",
    ]
    assert all(line.startswith("README.md:10: ") for line in readme)
    page = broken_links(tmp_path / "docs" / "tasks" / "t.md", tmp_path)
    assert page == ["docs/tasks/t.md:1: docs/x.md: no such file docs/x.md"]
