"""The house's layers, read from the code's own imports (docs/ARCHITECTURE.md).

Every import of a project module is an arrow, wherever it stands: at the top of a file,
inside a function, or under `TYPE_CHECKING`. The arrows must point down the layers or
stay in one, must never close a circle, and an import placed inside a function must say
why it waits (a comment on its line or the one above), so none hides a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "objectives"

# lowest first: a module may import its own layer and the ones before it, never later ones
LAYERS = (
    ("foundation", ("objectives", "objectives.errors", "objectives.checks", "objectives.refusals")),
    ("objective core", ("objectives.objective",)),
    ("terms", ("objectives.losses", "objectives.regularizers")),
    (
        "building blocks",
        (
            "objectives.models",
            "objectives.data",
            "objectives.augment",
            "objectives.metrics",
            "objectives.tracking",
        ),
    ),
    ("tasks", ("objectives.tasks",)),
    ("callbacks", ("objectives.callbacks",)),
    ("run layer", ("objectives.run",)),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (the longest known prefix)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, ast.stmt]]:
    """(imported project module, the import statement) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for name in names:
            target = resolve(name, modules)
            if target is not None and target != module:
                found.append((target, node))
    return found


def layer_of(module: str) -> int:
    best, rank = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank is not None, f"{module} belongs to no layer: add its folder to LAYERS"
    return rank


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {m: {t for t, _ in imports_of(m, p, modules)} for m, p in modules.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_the_project_modules() -> None:
    found = circles(graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
        for m, targets in graph().items()
        for t in sorted(targets)
        if layer_of(t) > layer_of(m)
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def _import_blocks(tree: ast.AST) -> list[list[ast.stmt]]:
    """Runs of consecutive import statements inside function bodies."""
    blocks: list[list[ast.stmt]] = []
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            statements = getattr(node, field, None)
            if not isinstance(statements, list):
                continue
            inside = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or any(
                isinstance(a, ast.FunctionDef | ast.AsyncFunctionDef) for a in _parents(tree, node)
            )
            if not inside:
                continue
            run: list[ast.stmt] = []
            for statement in [*statements, None]:
                if isinstance(statement, ast.Import | ast.ImportFrom):
                    run.append(statement)
                    continue
                if run:
                    blocks.append(run)
                run = []
    return blocks


def _parents(tree: ast.AST, target: ast.AST) -> list[ast.AST]:
    """The nodes enclosing `target`, outermost first."""
    path: list[ast.AST] = []

    def walk(node: ast.AST, trail: list[ast.AST]) -> bool:
        if node is target:
            path.extend(trail)
            return True
        return any(walk(child, [*trail, node]) for child in ast.iter_child_nodes(node))

    walk(tree, [])
    return path


@pytest.mark.parametrize("module", sorted(all_modules()))
def test_an_import_inside_a_function_says_why(module: str) -> None:
    """A block of imports in a function carries a comment above it or on one of its lines."""
    path = all_modules()[module]
    lines = path.read_text().splitlines()
    silent = [
        f"{path.relative_to(SRC)}:{block[0].lineno}: {lines[block[0].lineno - 1].strip()}"
        for block in _import_blocks(ast.parse(path.read_text()))
        if not any("#" in line for line in lines[block[0].lineno - 2 : block[-1].end_lineno])
    ]
    assert not silent, "imports inside functions without a reason:\n" + "\n".join(silent)
